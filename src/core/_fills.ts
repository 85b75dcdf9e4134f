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
 * registers this node as a holder of the key (`_strong.ts`) and caches only if that
 * worked. Values attached to leases are served only once their leases are checked active
 * (`_lease_protocol.ts`).
 *
 * Rejected: a per-key token taken before the store read and voided by any invalidation
 * (memcache's lease tokens) — with store versions at hand, comparing versions keeps a
 * fill that raced only an older invalidation, where a token would throw its answer away,
 * and the same floor also stops writes in flight and answers from going back in time.
 *
 * @module
 */

import { WarpError } from "./errors.ts";
import type { OpResult, StoreReadResult } from "./effects.ts";
import type { KeyPolicy } from "./registry.ts";
import type { DropWatcher, NodeKernel, ReadOp, VersionWatcher } from "./_kernel.ts";

/** Store reads one fill makes before it gives up on answers too old to serve. */
const FILL_ATTEMPTS_MAX = 4;
/** Lease checks one read makes before it gives up on a slow coordinator. */
const LEASE_ROUNDS_MAX = 3;

/** One store read of a key in flight, and the readers waiting on it. */
export interface Fill {
  readonly key: string;
  readonly policy: KeyPolicy;
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

/** What the read path needs of the strong protocol (`_strong.ts`): holder registration. */
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

  /** Reads `key` as caller op `op`, admitted by `NodeCore` and not answered from L1. */
  miss(op: number, key: string, policy: KeyPolicy): void {
    const k = this.#k;
    k.stats.misses++;
    const readOp: ReadOp = {
      kind: "read",
      key,
      timer: k.arm(k.now + policy.readTimeoutMs, () => this.#timeout(op)),
      fill: undefined,
    };
    k.ops.set(op, readOp);
    this.#miss(op, readOp, policy, 0);
  }

  /** Raises the floors of every fill of `key` in flight, superseded ones too. */
  versionSeen(key: string, version: number): void {
    const fill = this.#fills.get(key);
    if (fill !== undefined && fill.minVersion < version) fill.minVersion = version;
    for (const old of this.#supersededFills.get(key) ?? []) {
      if (old.minVersion < version) old.minVersion = version;
    }
  }

  /** A dropped key: the fill in flight still answers, but caches nothing. */
  dropped(key: string): void {
    const fill = this.#fills.get(key);
    if (fill !== undefined) fill.cacheable = false;
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
    fill = {
      key,
      policy,
      waiters: [op],
      askMs: k.now,
      leaseAskMs: k.now,
      minVersion: 0,
      cacheable: true,
      flushEpoch: this.#parts.flushes.flushEpoch,
      attempts: 0,
      readIssued: false,
      leaseRounds: 0,
    };
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

  /**
   * Starts a new fill. A strong-distributed one first makes sure this node is a registered
   * holder with no write pending, so that any writer either revokes this node or waits
   * out its lease — measured from when the registration was *asked*.
   */
  #start(fill: Fill): void {
    if (fill.policy.mode !== "strong-distributed") {
      this.#storeRead(fill);
      return;
    }
    this.#parts.holders.registerHolder(fill.key, (askMs) => {
      // Not registered: read through the store, linearizable, without caching.
      if (askMs === undefined) fill.cacheable = false;
      else fill.leaseAskMs = askMs;
      this.#storeRead(fill);
    });
  }

  #timeout(op: number): void {
    const k = this.#k;
    const pending = k.ops.get(op);
    if (pending === undefined || pending.kind !== "read") return;
    const fill = pending.fill;
    if (fill !== undefined) {
      const i = fill.waiters.indexOf(op);
      if (i >= 0) fill.waiters.splice(i, 1);
    }
    k.reject(op, new WarpError("TIMEOUT", `Read did not complete in time: ${pending.key}`));
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
    this.#k.storeGet(fill.key, (result) => this.#onStoreRead(fill, result));
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
    const tooSlow = policy.mode === "eventual-distributed" &&
      k.now - fill.askMs >= policy.maxStalenessMs * (1 - k.drift);
    if (tooOld || tooSlow) {
      if (tooOld) k.stats.staleFillsDiscarded++;
      if (fill.attempts >= FILL_ATTEMPTS_MAX) {
        this.#end(
          fill,
          new WarpError("STALE_READ", `Store kept returning values too old to serve: ${fill.key}`),
        );
      } else {
        this.#storeRead(fill);
      }
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
    const cacheable = fill.cacheable &&
      (policy.mode !== "eventual-distributed" ||
        fill.flushEpoch === this.#parts.flushes.flushEpoch);
    if (cacheable) {
      const askMs = policy.mode === "strong-distributed" ? fill.leaseAskMs : fill.askMs;
      k.install(fill.key, policy, result, askMs);
    } else {
      k.stats.fillsNotCached++;
    }
    // Answer with the newest value this node knows: an entry installed meanwhile may be newer.
    const entry = k.l1.get(fill.key);
    let answer = entry !== undefined && entry.version > result.version
      ? { found: entry.found, value: entry.value, version: entry.version, source: "store" as const }
      : {
        found: result.found,
        value: result.value,
        version: result.version,
        source: "store" as const,
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

  #end(fill: Fill, outcome: OpResult | WarpError): void {
    if (this.#fills.get(fill.key) === fill) {
      this.#fills.delete(fill.key);
    } else {
      const list = this.#supersededFills.get(fill.key) ?? [];
      const index = list.indexOf(fill);
      if (index >= 0) list.splice(index, 1);
      if (list.length === 0) this.#supersededFills.delete(fill.key);
    }
    for (const op of fill.waiters) {
      if (!this.#k.ops.has(op)) continue; // timed out meanwhile
      if (outcome instanceof WarpError) this.#k.reject(op, outcome);
      else this.#k.resolve(op, outcome);
    }
  }
}
