/**
 * The read path of one node past L1: a read that L1 could not answer (`NodeCore` answers
 * hits itself) goes to the store through one *fill* per key at a time (single flight:
 * concurrent misses share one store read), guarded so that a fill never installs or
 * answers a value older than one this node has seen (the stale fill, E2).
 *
 * Design: each fill carries a version floor, `minVersion`, raised by every version this
 * node sees of the key while the fill is in flight (invalidations, writes, answers: the
 * kernel's `versionSeen`); a store answer below it is discarded and read again. A drop, a
 * revoke or a flush names no version, so it marks the fill uncacheable instead: the fill
 * still answers its readers but installs nothing. A strong-distributed fill first
 * registers this node as a holder of the key (`_holders.ts`) and caches only if that
 * worked. Values attached to leases are served only once their leases are checked active
 * (`_lease_protocol.ts`).
 *
 * **Loader-backed keys** (`origin: "loader"`) fill the same way — single flight, the
 * holder registration, the joinability rule, the read deadline, the age rule (a load
 * slower than the staleness bound is loaded again) — except that the fill's read is a
 * load (`_loads.ts`), and, with no store version, the guard against going back in time is
 * memcache's lease token (Nishtala et al., NSDI 2013): the fill records the node's
 * invalidation epoch when its load starts, and a drop, revoke or notice of the key that
 * reaches the node meanwhile marks the load **overtaken**. An overtaken load is neither
 * cached nor answered: it is loaded again (LB1). A flush or a lost session only makes it
 * uncacheable, as for a store fill: they say nothing reached the node, only that
 * something may have been missed, which the age bound and the session cover (LB2, LB3).
 *
 * **Fail-safe** (`_failsafe.ts`): a reader whose fill fails (store error, loader error,
 * hard timeout), or whose read deadline or soft timeout passes, is answered with the
 * node's newest value flagged stale when its settings ask for it. **Refresh-ahead**
 * starts a fill with no reader (`refresh`), installed under the same rules.
 *
 * Rejected, for store-backed keys: the lease token in place of version floors — with
 * store versions at hand, comparing versions keeps a fill that raced only an older
 * invalidation, where a token would throw its answer away, and the same floor also stops
 * writes in flight and answers from going back in time.
 *
 * @module
 */

import { WarpError } from "./errors.ts";
import type { LoadResult, OpResult, StoreReadResult } from "./effects.ts";
import type { KeyPolicy, ReadSettings } from "./registry.ts";
import type { DropWatcher, NodeKernel, ReadOp, VersionWatcher } from "./_kernel.ts";
import type { FailSafe } from "./_failsafe.ts";
import type { Loads } from "./_loads.ts";

/** Store reads one fill makes before it gives up on answers too old to serve. */
const FILL_ATTEMPTS_MAX = 4;
/** Lease checks one read makes before it gives up on a slow coordinator. */
const LEASE_ROUNDS_MAX = 3;

/** One store read (or load) of a key in flight, and the readers waiting on it. */
export interface Fill {
  readonly key: string;
  readonly policy: KeyPolicy;
  /** The settings of the read that started it (its TTL, its load's hard timeout). */
  readonly settings: ReadSettings;
  readonly waiters: number[];
  /** Local time the current store read was issued. */
  askMs: number;
  /** Strong: local time the holder registration was confirmed (issued). */
  leaseAskMs: number;
  /** The oldest version this fill may return. */
  minVersion: number;
  /** Whether the result may be cached (no revoke, drop or pending write raced it). */
  cacheable: boolean;
  readonly flushEpoch: number;
  attempts: number;
  /** Whether the store read has been issued (joiners after that get an older read). */
  readIssued: boolean;
  /** Lease checks made for this fill's answer. */
  leaseRounds: number;
  /** Loader-backed: the io of the load in flight, or 0. */
  loadIo: number;
  /** Loader-backed: the node's invalidation epoch when the current load started. */
  epoch: number;
  /** Loader-backed: a drop of the key reached the node while the current load ran (LB1). */
  overtaken: boolean;
  /** Whether the validator started it to repair an entry (its reads are tagged so). */
  healing: boolean;
}

/** A lease now: `active` (a check still trusted), `dead` (for good), or `unknown`. */
export type LeaseVerdict = "active" | "dead" | "unknown";

/** What the read path needs of the lease protocol (`_lease_protocol.ts`). */
export interface LeaseChecks {
  /** `dead` if any lease of `ids` is dead, `active` if all are, else `unknown`. */
  verdict(ids: readonly string[]): LeaseVerdict;
  /** Checks every lease of `ids` not known active now, then calls `then` (whatever came back). */
  ensure(ids: readonly string[], then: () => void): void;
}

/** What the read path needs of the eventual protocol (`_eventual.ts`). */
export interface FlushEpoch {
  /** How many flushes there have been: a fill that began before the latest does not cache. */
  readonly flushEpoch: number;
}

/** The L1 hit rule, which `NodeCore` keeps so that a read that hits never reaches this module. */
export interface HitRule {
  /** Answers read `op` from L1 if L1 may serve `key` now; returns whether it did. */
  serveHit(op: number, key: string): boolean;
}

/** What the read path needs of the strong protocol (`_holders.ts`): holder registration. */
export interface HolderRegistration {
  /**
   * Registers this node as a holder of `key`, so that a writer must revoke it or wait out
   * its lease; `then` gets the local time the registration was asked (the lease runs
   * from then), or `undefined` if it could not register: the fill reads through, uncached.
   */
  registerHolder(key: string, then: (askMs: number | undefined) => void): void;
}

/** What the read path is composed with. */
export interface FillParts {
  /** Most callers waiting on one key's fill (`waitersMax`). */
  readonly waitersMax: number;
  readonly leases: LeaseChecks;
  readonly holders: HolderRegistration;
  readonly flushes: FlushEpoch;
  readonly hits: HitRule;
  readonly loads: Loads;
  readonly failSafe: FailSafe;
}

/** The read path of one node. */
export class Fills implements VersionWatcher, DropWatcher {
  readonly #k: NodeKernel;
  readonly #parts: FillParts;
  /** The fill of each key that new readers join. */
  readonly #fills = new Map<string, Fill>();
  /**
   * Fills replaced by a newer one (no longer joinable) that still answer their own
   * readers: their version floors must rise like the current fill's (simulator seed 9800857).
   */
  readonly #supersededFills = new Map<string, Fill[]>();

  /** Makes the read path of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel, parts: FillParts) {
    this.#k = kernel;
    this.#parts = parts;
  }

  /**
   * Reads `key` as caller op `op` with `settings`, admitted by `NodeCore` and not
   * answered from L1. While a recent failure throttles the key, a reader that asked for
   * fail-safe gets the stale value at once.
   */
  miss(op: number, key: string, policy: KeyPolicy, settings: ReadSettings): void {
    const k = this.#k;
    k.stats.misses++;
    if (k.readEvents) k.note({ type: "miss", key });
    if (this.#parts.failSafe.throttled(key)) {
      const stale = this.#parts.failSafe.fallback(key, settings);
      if (stale !== undefined) {
        k.resolve(op, stale);
        return;
      }
    }
    const readOp: ReadOp = {
      kind: "read",
      key,
      timer: k.arm(k.now + policy.readTimeoutMs, () => this.#timeout(op)),
      fill: undefined,
      settings,
      softTimer: 0,
    };
    if (settings.softTimeoutMs !== Infinity && settings.failSafeMaxMs > 0) {
      readOp.softTimer = k.arm(k.now + settings.softTimeoutMs, () => this.#softTimeout(op));
    }
    k.ops.set(op, readOp);
    this.#miss(op, readOp, policy, 0);
  }

  /**
   * Refresh-ahead: a hit found `key`'s entry past its refresh point. Starts a fill with no
   * reader, unless one is in flight (one refresh per key per node); it installs under the
   * rules of any fill. A store-backed key is refreshed from the store, never the loader:
   * a newer version another node wrote is found there, and an unchanged one is renewed.
   */
  refresh(key: string, policy: KeyPolicy): void {
    if (this.#fills.has(key)) return;
    this.#k.stats.refreshes++;
    if (this.#k.events !== undefined) this.#k.note({ type: "refresh", key });
    const fill = this.#newFill(key, policy, policy, []);
    this.#fills.set(key, fill);
    this.#start(fill);
  }

  /**
   * The validator's repair (`_validator.ts`): a refresh of `key` that may return nothing
   * older than `minVersion` — the version the store was found to hold — under every rule
   * of a fill, so an invalidation racing it wins and nothing older replaces anything newer.
   * A fill in flight has its floor raised instead; returns whether a store read started.
   */
  heal(key: string, policy: KeyPolicy, minVersion: number): boolean {
    if (this.#fills.has(key)) {
      this.versionSeen(key, minVersion);
      return false;
    }
    const fill = this.#newFill(key, policy, policy, []);
    fill.minVersion = minVersion;
    fill.healing = true;
    this.#fills.set(key, fill);
    this.#start(fill);
    return true;
  }

  /** Raises the floors of every fill of `key` in flight, superseded ones too. */
  versionSeen(key: string, version: number): void {
    const fill = this.#fills.get(key);
    if (fill !== undefined && fill.minVersion < version) fill.minVersion = version;
    for (const old of this.#supersededFills.get(key) ?? []) {
      if (old.minVersion < version) old.minVersion = version;
    }
  }

  /** The keys of every fill and load in flight, superseded ones included. */
  *keysInFlight(): IterableIterator<string> {
    yield* this.#fills.keys();
    yield* this.#supersededFills.keys();
  }

  /**
   * A dropped key: the store fill in flight still answers, but caches nothing; a load in
   * flight (superseded ones too) is overtaken, so it is loaded again (LB1). The new load
   * starts after the drop and may be cached — unless the key is strong-distributed, whose
   * holder registration the revoke voided.
   */
  dropped(key: string): void {
    const fill = this.#fills.get(key);
    if (fill !== undefined) {
      fill.overtaken = true;
      if (fill.policy.origin !== "loader" || fill.policy.mode === "strong-distributed") {
        fill.cacheable = false;
      }
    }
    for (const old of this.#supersededFills.get(key) ?? []) old.overtaken = true;
  }

  /**
   * A read L1 could not answer at once. A fresh entry whose leases are not known active
   * waits for their check; one attached to a dead lease is dropped; then the store.
   */
  #miss(op: number, readOp: ReadOp, policy: KeyPolicy, leaseRounds: number): void {
    const k = this.#k;
    const key = readOp.key;
    const entry = k.l1.get(key);
    if (entry?.leases !== undefined && k.now < entry.freshUntilMs) {
      const verdict = this.#parts.leases.verdict(entry.leases);
      if (verdict === "unknown" && leaseRounds < LEASE_ROUNDS_MAX) {
        this.#parts.leases.ensure(entry.leases, () => {
          if (k.ops.get(op) !== readOp) return; // timed out meanwhile
          if (!this.#parts.hits.serveHit(op, key)) this.#miss(op, readOp, policy, leaseRounds + 1);
        });
        return;
      }
      // Dead, or uncheckable: the store decides (its answer goes through the same rule).
      k.l1.delete(key);
    }
    let fill = this.#fills.get(key);
    if (fill !== undefined && !this.#joinable(fill)) fill = undefined; // superseded below
    if (fill !== undefined && fill.waiters.length >= this.#parts.waitersMax) {
      k.reject(op, new WarpError("LIMIT_EXCEEDED", `Too many readers waiting on key: ${key}`));
      return;
    }
    readOp.fill = fill;
    if (fill !== undefined) {
      fill.waiters.push(op);
      return;
    }
    fill = this.#newFill(key, policy, readOp.settings, [op]);
    readOp.fill = fill;
    const superseded = this.#fills.get(key);
    if (superseded !== undefined) {
      const list = this.#supersededFills.get(key);
      if (list === undefined) this.#supersededFills.set(key, [superseded]);
      else list.push(superseded);
    }
    this.#fills.set(key, fill);
    this.#start(fill);
  }

  #newFill(key: string, policy: KeyPolicy, settings: ReadSettings, waiters: number[]): Fill {
    const k = this.#k;
    return {
      key,
      policy,
      settings,
      waiters,
      askMs: k.now,
      leaseAskMs: k.now,
      minVersion: 0,
      cacheable: true,
      flushEpoch: this.#parts.flushes.flushEpoch,
      attempts: 0,
      readIssued: false,
      leaseRounds: 0,
      loadIo: 0,
      epoch: 0,
      overtaken: false,
      healing: false,
    };
  }

  /**
   * Starts a new fill. A strong-distributed one first makes sure this node is a registered
   * holder with no write pending, so that any writer either revokes this node or waits
   * out its lease — measured from when the registration was *asked*.
   */
  #start(fill: Fill): void {
    if (fill.policy.mode !== "strong-distributed") {
      this.#read(fill);
      return;
    }
    this.#parts.holders.registerHolder(fill.key, (askMs) => {
      // Not registered: read through the store, linearizable, without caching.
      if (askMs === undefined) fill.cacheable = false;
      else fill.leaseAskMs = askMs;
      this.#read(fill);
    });
  }

  /** The fill's read: from the store, or the application's loader. */
  #read(fill: Fill): void {
    if (fill.policy.origin === "loader") this.#load(fill);
    else this.#storeRead(fill);
  }

  /** Another attempt after an answer too old to serve, or `STALE_READ` after the last. */
  #retry(fill: Fill): void {
    if (fill.attempts < FILL_ATTEMPTS_MAX) {
      this.#read(fill);
      return;
    }
    const what = fill.policy.origin === "loader"
      ? "Loads kept being overtaken by invalidations, or slower than maxStalenessMs"
      : "Store kept returning values too old to serve";
    this.#end(fill, new WarpError("STALE_READ", `${what}: ${fill.key}`));
  }

  /** The read deadline: the reader gets its fail-safe value, or `TIMEOUT`. */
  #timeout(op: number): void {
    const k = this.#k;
    const pending = k.ops.get(op);
    if (pending === undefined || pending.kind !== "read") return;
    this.#leave(pending, op);
    const stale = this.#parts.failSafe.fallback(pending.key, pending.settings);
    if (stale !== undefined) k.resolve(op, stale);
    else k.reject(op, new WarpError("TIMEOUT", `Read did not complete in time: ${pending.key}`));
  }

  /** The soft timeout: a reader with a fail-safe value takes it; the fill goes on. */
  #softTimeout(op: number): void {
    const k = this.#k;
    const pending = k.ops.get(op);
    if (pending === undefined || pending.kind !== "read") return;
    pending.softTimer = 0;
    const stale = this.#parts.failSafe.fallback(pending.key, pending.settings);
    if (stale === undefined) return; // nothing to fall back on: keep waiting
    this.#leave(pending, op);
    k.resolve(op, stale);
  }

  /** Takes reader `op` off its fill's waiters. */
  #leave(readOp: ReadOp, op: number): void {
    const fill = readOp.fill;
    if (fill === undefined) return;
    const i = fill.waiters.indexOf(op);
    if (i >= 0) fill.waiters.splice(i, 1);
  }

  /**
   * Whether a reader invoked now may share `fill`'s answer. The answer comes from a store
   * read issued before this reader was invoked; for a strong key that is linearizable only
   * if no write can have committed since: the fill was not revoked and its lease still
   * runs (a writer must revoke this node or wait out that lease before committing).
   * Seed 30 of the simulator found the read that broke S2 without this rule.
   */
  #joinable(fill: Fill): boolean {
    if (fill.policy.mode !== "strong-distributed" || !fill.readIssued) return true;
    const k = this.#k;
    if (!fill.cacheable) return false;
    // Under sessions the registration holds while the session lives (a writer must revoke
    // this node, or see its session end, before it commits).
    if (k.sessions) return k.now < k.liveUntilMs;
    return k.now < fill.leaseAskMs + fill.policy.leaseMs * (1 - k.drift);
  }

  /** This node's session ended: no strong fill in flight may cache (its registration is void). */
  sessionLost(): void {
    for (const fill of this.#fills.values()) {
      if (fill.policy.mode === "strong-distributed") fill.cacheable = false;
    }
  }

  #storeRead(fill: Fill): void {
    fill.askMs = this.#k.now;
    fill.attempts++;
    fill.readIssued = true;
    this.#k.storeGet(
      fill.key,
      (result) => this.#onStoreRead(fill, result),
      fill.healing ? "validator" : undefined,
    );
  }

  /**
   * Starts a load of a loader-backed fill, recording the invalidation epoch: a drop of the
   * key from now on overtakes it. The loader runs for the first reader still waiting (its
   * loader, `getOrSet`'s), and gets the node's stale value for its context.
   */
  #load(fill: Fill): void {
    const k = this.#k;
    fill.askMs = k.now;
    fill.attempts++;
    fill.readIssued = true;
    fill.overtaken = false;
    fill.epoch = k.dropEpoch;
    const entry = k.l1.get(fill.key);
    const stale = entry === undefined ? undefined : { found: entry.found, value: entry.value };
    const op = fill.waiters.find((w) => k.ops.has(w));
    fill.loadIo = this.#parts.loads.start(
      fill.key,
      op,
      stale,
      fill.settings.hardTimeoutMs,
      (result) => this.#onLoad(fill, result),
    );
  }

  #onLoad(fill: Fill, result: LoadResult): void {
    const k = this.#k;
    fill.loadIo = 0;
    if (this.#fills.get(fill.key) !== fill) fill.cacheable = false;
    if (!result.ok) {
      this.#end(fill, result.error);
      return;
    }
    const { policy } = fill;
    // LB1: a drop that reached this node while the load ran may be of a write the load
    // missed; its value must be neither cached nor served. LB2: as for a store fill.
    const overtaken = fill.overtaken && !k.canary.cacheOvertakenLoads;
    if (overtaken || this.#tooSlow(fill)) {
      if (overtaken) k.stats.loadsOvertaken++;
      this.#retry(fill);
      return;
    }
    const cacheable = result.cache !== false && this.#cacheable(fill);
    const data = {
      value: result.value,
      found: result.found,
      version: 0,
      sizeBytes: result.sizeBytes,
      epoch: fill.epoch,
    };
    if (cacheable) {
      k.install(fill.key, policy, data, this.#askMs(fill), result.ttlMs ?? fill.settings.ttlMs);
    } else {
      k.stats.fillsNotCached++;
    }
    this.#end(fill, {
      found: data.found,
      value: data.value,
      version: 0,
      epoch: fill.epoch,
      source: "loader",
      stale: false,
      freshForMs: cacheable ? this.#freshFor(fill.key) : 0,
    });
  }

  /** E3, LB2: a read slower than the staleness bound may already be too old to serve. */
  #tooSlow(fill: Fill): boolean {
    const { policy } = fill;
    return policy.mode === "eventual-distributed" &&
      this.#k.now - fill.askMs >= policy.maxStalenessMs * (1 - this.#k.drift);
  }

  /** Whether nothing raced the fill: no drop, revoke, flush, lost registration or session. */
  #cacheable(fill: Fill): boolean {
    return fill.cacheable &&
      (fill.policy.mode !== "eventual-distributed" ||
        fill.flushEpoch === this.#parts.flushes.flushEpoch);
  }

  /** When the fill's entry was read, for its lifetime: a strong one from its registration. */
  #askMs(fill: Fill): number {
    return fill.policy.mode === "strong-distributed" ? fill.leaseAskMs : fill.askMs;
  }

  /** How much longer L1 may serve `key`'s entry, at most. */
  #freshFor(key: string): number {
    const entry = this.#k.l1.get(key);
    return entry === undefined ? 0 : Math.max(0, entry.freshUntilMs - this.#k.now);
  }

  #onStoreRead(fill: Fill, result: StoreReadResult): void {
    const k = this.#k;
    // A superseded fill still answers its own readers, but never installs.
    if (this.#fills.get(fill.key) !== fill) fill.cacheable = false;
    if (!result.ok) {
      this.#end(
        fill,
        new WarpError("STORE_ERROR", `Store read failed: ${fill.key}`, {
          cause: result.error.cause ?? result.error,
        }),
      );
      return;
    }
    const { policy } = fill;
    // E2: a value older than one this node applied or served since the fill began would
    // take the node back in time. E3: a read slower than the staleness bound may be too old.
    const tooOld = result.version < fill.minVersion && !k.canary.skipFillCheck;
    if (tooOld || this.#tooSlow(fill)) {
      if (tooOld) k.stats.staleFillsDiscarded++;
      this.#retry(fill);
      return;
    }
    if (result.leases !== undefined && result.leases.length > 0) {
      const verdict = this.#parts.leases.verdict(result.leases);
      if (verdict === "unknown") {
        if (fill.leaseRounds >= LEASE_ROUNDS_MAX) {
          this.#end(
            fill,
            new WarpError(
              "COORDINATOR_UNAVAILABLE",
              `The leases of ${fill.key} could not be checked: ${result.leases.join(", ")}`,
            ),
          );
          return;
        }
        fill.leaseRounds++;
        this.#parts.leases.ensure(result.leases, () => this.#onStoreRead(fill, result));
        return;
      }
      if (verdict === "dead") {
        // A value attached to a revoked or expired lease reads as absent (G1, G2).
        k.stats.leaseDeadValues++;
        result = {
          ok: true,
          found: false,
          value: undefined,
          version: result.version,
          sizeBytes: 0,
        };
      }
    }
    const cacheable = this.#cacheable(fill);
    if (cacheable) {
      k.install(fill.key, policy, result, this.#askMs(fill), fill.settings.ttlMs);
    } else {
      k.stats.fillsNotCached++;
    }
    // Answer with the newest value this node knows: an entry installed meanwhile may be newer.
    const entry = k.l1.get(fill.key);
    const newer = entry !== undefined && entry.version > result.version;
    let answer: OpResult = {
      found: newer ? entry.found : result.found,
      value: newer ? entry.value : result.value,
      version: newer ? entry.version : result.version,
      source: "store",
      stale: false,
      freshForMs: cacheable || newer ? this.#freshFor(fill.key) : 0,
    };
    // E2 covers what a node *answered*, cached or not: writes in flight must not install
    // anything older than this (simulator seed 702025: an uncached answer, then an older
    // write's late install).
    if (k.canary.absentVersionOffByOne && !answer.found) {
      answer = { ...answer, version: answer.version + 1 };
    }
    k.noteVersion(fill.key, answer.version);
    this.#end(fill, answer);
  }

  /**
   * Ends `fill`: its key is free, and every reader still waiting gets `outcome` — on a
   * failure, its fail-safe value if its settings ask for one (and then the key's retries
   * are throttled).
   */
  #end(fill: Fill, outcome: OpResult | WarpError): void {
    if (fill.loadIo !== 0) this.#parts.loads.abort(fill.loadIo);
    if (this.#fills.get(fill.key) === fill) {
      this.#fills.delete(fill.key);
    } else {
      const list = this.#supersededFills.get(fill.key) ?? [];
      const index = list.indexOf(fill);
      if (index >= 0) list.splice(index, 1);
      if (list.length === 0) this.#supersededFills.delete(fill.key);
    }
    const k = this.#k;
    let fellBack = false;
    for (const op of fill.waiters) {
      const pending = k.ops.get(op);
      if (pending === undefined || pending.kind !== "read") continue; // timed out meanwhile
      if (!(outcome instanceof WarpError)) {
        k.resolve(op, outcome);
        continue;
      }
      const stale = this.#parts.failSafe.fallback(fill.key, pending.settings);
      fellBack ||= stale !== undefined;
      if (stale !== undefined) k.resolve(op, stale);
      else k.reject(op, outcome);
    }
    if (fellBack) this.#parts.failSafe.throttle(fill.key, fill.policy.failSafeThrottleMs);
  }
}
