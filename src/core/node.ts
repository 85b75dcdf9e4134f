/**
 * The pure state machine of one Warp node: its configuration, its public types (the
 * {@linkcode Canary} flags among them, each read where its rule lives), and `NodeCore`,
 * which validates inputs, admits caller operations and composes one private module per
 * protocol: `_fills.ts` (the read path), `_loads.ts` (the application's loader),
 * `_failsafe.ts` (stale answers), `_tuning.ts` (refresh-ahead and TTL rules),
 * `_eventual.ts`, `_peers.ts`, `_holders.ts` and `_strong.ts` (the strong protocol's holder
 * and writer sides, with `_strong_batch.ts`, its side of a transaction), `_sessions.ts`
 * and `_lease_protocol.ts`, over the `_kernel.ts` they share; `_node_config.ts` checks and
 * resolves the configuration. See `docs/modules.md`.
 *
 * @module
 */

import { WarpError } from "./errors.ts";
import type {
  CoordReadResult,
  CoordWriteResult,
  Effect,
  LoadResult,
  StoreReadResult,
  StoreWriteResult,
} from "./effects.ts";
import { entryAnswer, L1Cache } from "./l1.ts";
import { isLeaseId, leaseListProblem, leaseTtlMs } from "./leases.ts";
import type { Entry } from "./l1.ts";
import { ECHOES_MAX, isAbsurd, validateMessage } from "./messages.ts";
import type { NodeId } from "./messages.ts";
import { readSettings, Registry } from "./registry.ts";
import type { KeyOptions, KeyPolicy, ReadOptions } from "./registry.ts";
import { NodeKernel } from "./_kernel.ts";
import { EventualWrites } from "./_eventual.ts";
import { Fills } from "./_fills.ts";
import { LeaseProtocol } from "./_lease_protocol.ts";
import { Peers } from "./_peers.ts";
import { StrongHolders } from "./_holders.ts";
import { StrongWrites } from "./_strong.ts";
import { StrongBatches, strongTxKeys } from "./_strong_batch.ts";
import type { TransactionOutcome } from "./_strong_batch.ts";
import { Sessions } from "./_sessions.ts";
import { FailSafe } from "./_failsafe.ts";
import { nodeSettings, zeroNodeStats } from "./_node_config.ts";
import { loadResultProblem, Loads } from "./_loads.ts";
import { tuneHit } from "./_tuning.ts";
import { blockingRegistration, NamespaceClears, namespaceProblem } from "./_namespaces.ts";
import type { NodeEvent } from "./events.ts";
import { Validator, validatorSettings } from "./_validator.ts";
import type { ValidatorReport } from "./_validator.ts";

export { holderRecordKey } from "./_holders.ts";
export type { TransactionOutcome } from "./_strong_batch.ts";
export type { Canary, NodeConfig, NodeStats, WriteInput } from "./node_types.ts";
import type { NodeConfig, NodeStats, WriteInput } from "./node_types.ts";

/**
 * The pure, I/O-free state machine of one Warp node: L1 cache, the three consistency
 * modes, single-flight fills, the invalidation and heartbeat protocol, and the strong
 * write protocol against the coordinator.
 *
 * **Driver contract.** A driver (the in-process runtime, the NATS runtime, the
 * simulator) owns the clock, the store, the coordinator and the bus:
 * 1. Every input carries `nowMs`, the node's own monotonic clock in milliseconds.
 * 2. After every call, take the effects with {@linkcode NodeCore.takeEffects} and perform
 *    them in order: `broadcast`/`send` on the bus; `store-*` and `coord-*` asynchronously,
 *    reporting each outcome exactly once with the matching `on…` method and the `io`
 *    id; `resolve`/`reject` answer the caller's operation `op`.
 * 3. Call {@linkcode NodeCore.tick} once right after creation (it starts the heartbeat),
 *    then at or after {@linkcode NodeCore.nextDeadlineMs}; an early or spurious tick is
 *    harmless.
 * 4. Feed every bus message to {@linkcode NodeCore.onMessage}; it validates and drops
 *    malformed ones.
 * 5. On a hot read, call {@linkcode NodeCore.hit} first: it answers from L1 with no
 *    allocation, or returns `undefined`; then call `get`. A hit past an entry's
 *    refresh-ahead point starts a background refresh: if
 *    {@linkcode NodeCore.effectsPending} is then true, take and perform the effects.
 * 6. Run the application's loader for every `load` effect, reporting with
 *    {@linkcode NodeCore.onLoad}; abort it on `load-abort` (its report is then ignored).
 * If a method throws an `InvariantError`, the node is broken: stop using it.
 *
 * @example A strong-local key, driven by hand
 * ```ts
 * import { NodeCore } from "./node.ts";
 * const node = new NodeCore({ nodeId: "a", incarnation: 1 });
 * node.register("user:*", { mode: "strong-local" });
 * node.set(1, "user:1", { value: "ada", payload: "ada", sizeBytes: 3 }, 0);
 * const [write] = node.takeEffects();
 * if (write?.type !== "store-write") throw new Error("expected a store write");
 * node.onStoreWrite(write.io, { ok: true, version: 1 }, 5);
 * console.log(node.takeEffects()[0]?.type); // "resolve"
 * console.log(node.hit("user:1", 6)?.value); // "ada"
 * ```
 */
export class NodeCore {
  /** This node's id. */
  readonly nodeId: NodeId;
  /** This node's incarnation. */
  readonly incarnation: number;
  /** Counters. */
  readonly stats: NodeStats = zeroNodeStats();

  readonly #registry = new Registry();
  /** The kernel's L1, held here too so that `hit` reaches it in one step. */
  readonly #l1: L1Cache;
  readonly #opsMax: number;
  readonly #kernel: NodeKernel;
  readonly #fills: Fills;
  readonly #eventual: EventualWrites;
  readonly #peers: Peers;
  readonly #holders: StrongHolders;
  readonly #strong: StrongWrites;
  readonly #batches: StrongBatches;
  readonly #leases: LeaseProtocol;
  readonly #sessions: Sessions;
  readonly #loads: Loads;
  readonly #clears: NamespaceClears;
  /** The background validator, or `undefined` when off (it then costs nothing). */
  readonly #validator: Validator | undefined;
  #closed = false;
  /** The kernel's `readEvents`, here too so that `hit` checks it in one step. */
  #readEvents = false;

  /** Creates a node; validates the configuration (TypeError/RangeError on misuse). */
  constructor(config: NodeConfig) {
    const settings = nodeSettings(config); // every check, before anything is built
    this.nodeId = config.nodeId;
    this.incarnation = config.incarnation;
    this.#l1 = new L1Cache({ entriesMax: settings.entriesMax, bytesMax: settings.bytesMax });
    this.#opsMax = settings.opsMax;
    const {
      driftPpm,
      heartbeatIntervalMs,
      gapTimeoutMs,
      waitersMax,
      peersMax,
      echoesMax,
      leaseCheckMs,
      leaseTimeoutMs,
      leasesMax,
      sessionMs,
      stalenessMs,
    } = settings;
    // Composition: each protocol gets the kernel, and the others only as narrow interfaces.
    const kernel = new NodeKernel({
      nodeId: this.nodeId,
      incarnation: this.incarnation,
      stats: this.stats,
      l1: this.#l1,
      drift: driftPpm / 1e6,
      canary: config.canary ?? {},
      sessions: sessionMs > 0,
      currentReads: stalenessMs === 0,
      nonce: config.nonce,
    });
    this.#kernel = kernel;
    this.#leases = new LeaseProtocol(kernel, {
      checkMs: leaseCheckMs,
      timeoutMs: leaseTimeoutMs,
      leasesMax,
      stalenessMs,
    });
    // The session's hooks reach modules made below; they run only after construction.
    const hooks = {
      revoked: (key: string, rev: number) => {
        this.#holders.revokedByNotice(key, rev);
        this.#validator?.invalidated(key);
      },
      membersRemoved: () => this.#eventual.flush("members-removed"),
      lost: () => {
        this.#eventual.flush("session-lost");
        this.#holders.sessionLost();
        this.#fills.sessionLost();
      },
      joined: () => {
        this.#holders.sessionLost();
        this.#fills.sessionLost();
      },
      changed: () => {
        this.#peers.refreshProof();
        this.#eventual.sessionChanged();
        this.#clears.sessionChanged();
      },
    };
    this.#sessions = new Sessions(kernel, {
      sessionMs,
      pollMs: heartbeatIntervalMs,
      membersMax: Math.min(peersMax, ECHOES_MAX),
    }, hooks);
    this.#eventual = new EventualWrites(kernel, this.#sessions);
    this.#holders = new StrongHolders(kernel, this.#sessions);
    this.#strong = new StrongWrites(kernel, {
      retransmitMs: heartbeatIntervalMs,
      ackWaitMs: 2 * heartbeatIntervalMs,
      pollMs: heartbeatIntervalMs,
      notices: this.#sessions,
    }, this.#holders);
    this.#batches = new StrongBatches(kernel, this.#strong);
    this.#loads = new Loads(kernel);
    this.#fills = new Fills(kernel, {
      waitersMax,
      leases: this.#leases,
      holders: this.#holders,
      flushes: this.#eventual,
      hits: { serveHit: (op, key) => this.#serveHit(op, key) },
      loads: this.#loads,
      failSafe: new FailSafe(kernel, this.#leases),
    });
    this.#peers = new Peers(kernel, {
      heartbeatIntervalMs,
      gapTimeoutMs,
      peersMax,
      echoesMax,
      flusher: this.#eventual,
    });
    this.#clears = new NamespaceClears(kernel, this.#sessions, () => this.#fills.keysInFlight());
    if (sessionMs > 0) this.#peers.useMembership(this.#sessions);
    const validator = validatorSettings(config.validator);
    this.#validator = validator.mode === "off" ? undefined : new Validator(kernel, {
      servable: (key) => this.servable(key, kernel.now),
      policyOf: (key) => this.#registry.find(key),
      heal: (key, policy, minVersion) => this.#fills.heal(key, policy, minVersion),
    }, validator);
    kernel.watchVersions(this.#fills);
    kernel.watchVersions(this.#eventual);
    kernel.watchDrops(this.#fills);
    kernel.watchDrops(this.#strong);
  }

  // ---------------------------------------------------------------- registration

  /** Registers an exact key or glob pattern; see {@linkcode Registry.register}. */
  register(pattern: string, options: KeyOptions): KeyPolicy {
    return this.#registry.register(pattern, options);
  }

  /** The policy of `key`, or `undefined` if unregistered. */
  policyOf(key: string): KeyPolicy | undefined {
    return this.#registry.find(key);
  }

  // ---------------------------------------------------------------- driver API

  /** Takes the effects produced since the last call, in order. */
  takeEffects(): Effect[] {
    return this.#kernel.takeEffects();
  }

  /** Whether effects wait to be taken (after a `hit` that started a refresh). */
  get effectsPending(): boolean {
    return this.#kernel.effectsPending;
  }

  /**
   * Starts or stops recording the events of `events.ts` for {@linkcode NodeCore.takeEvents}:
   * `"all"`, every read's outcome included; `"protocol"`, all but those; `"off"`, none
   * (the default: an unobserved node records nothing, and a hit checks one flag).
   */
  observe(level: "all" | "protocol" | "off"): void {
    const kernel = this.#kernel;
    kernel.readEvents = this.#readEvents = level === "all";
    if (level === "off") kernel.events = undefined;
    else kernel.events ??= [];
  }

  /**
   * Takes the events recorded since the last call, in order (empty while not observed),
   * and how many were lost to the bound in all (`NODE_EVENTS_MAX` untaken).
   */
  takeEvents(): NodeEvent[] {
    const events = this.#kernel.events;
    if (events === undefined || events.length === 0) return [];
    this.#kernel.events = [];
    return events;
  }

  /** The earliest local time at which {@linkcode tick} has work, or `Infinity`. */
  nextDeadlineMs(): number {
    return this.#kernel.nextDeadlineMs();
  }

  /** Runs every timer due at `nowMs`. */
  tick(nowMs: number): void {
    this.#kernel.advance(nowMs);
    if (!this.#closed) {
      this.#peers.startHeartbeat();
      this.#sessions.start();
      this.#validator?.start();
    }
    this.#kernel.runDueTimers();
  }

  /** Number of L1 entries. */
  get l1Size(): number {
    return this.#l1.size;
  }

  /** L1 entries evicted to respect the bounds. */
  get l1Evictions(): number {
    return this.#l1.evictions;
  }

  /** Approximate L1 bytes. */
  get l1Bytes(): number {
    return this.#l1.bytes;
  }

  /** The L1 entry of `key` whatever its freshness, for inspection (tests, validator). */
  inspect(key: string): Entry | undefined {
    return this.#l1.get(key);
  }

  /**
   * The background validator's figures (`NodeConfig.validator`), or `undefined` when it is
   * off: checks, verdicts, heals, budget, and the share consistent within 1 s, 10 s, 60 s.
   */
  validatorReport(): ValidatorReport | undefined {
    return this.#validator?.report();
  }

  /**
   * Every store-backed entry L1 would serve at `nowMs`: its key, version and whether it
   * holds a value (a full pass over L1, for an explicit audit; the validator never makes one).
   */
  servableEntries(nowMs: number): { key: string; version: number; found: boolean }[] {
    const out: { key: string; version: number; found: boolean }[] = [];
    for (const entry of this.#l1.entries()) {
      if (entry.policy.origin === "loader" || this.servable(entry.key, nowMs) !== entry) continue;
      out.push({ key: entry.key, version: entry.version, found: entry.found });
    }
    return out;
  }

  /** Number of caller operations in flight. */
  get opsInFlight(): number {
    return this.#kernel.ops.size;
  }

  /**
   * The hot read path: the entry of `key` if L1 may serve it at `nowMs` under its mode's
   * rules, else `undefined`. No allocation; no effects, except that a hit past the
   * entry's refresh-ahead point starts a background refresh (see `effectsPending`).
   */
  hit(key: string, nowMs: number): Entry | undefined {
    const entry = this.#l1.get(key);
    if (entry === undefined || nowMs >= entry.freshUntilMs || this.#closed) return undefined;
    // One comparison for every rule past the fast path: the bound, and the tuning's.
    if (nowMs >= entry.checkAtMs && !this.#slowHit(entry, nowMs)) return undefined;
    if (entry.leases !== undefined && !this.#leases.servable(entry.leases, nowMs)) return undefined;
    this.#l1.touch(entry);
    this.stats.hits++;
    if (this.#readEvents) this.#kernel.note({ type: "hit", key });
    return entry;
  }

  /**
   * A hit past the entry's `checkAtMs`: past its bound it needs the session's proof; with
   * tuning (`_tuning.ts`) its TTL moves, and a refresh may be due.
   */
  #slowHit(entry: Entry, nowMs: number): boolean {
    if (nowMs >= entry.boundUntilMs) {
      if (!this.#proven(entry, nowMs)) return false;
      this.stats.provenHits++;
    }
    if (entry.tuning === undefined) return true;
    if (tuneHit(entry, nowMs)) {
      this.#kernel.advance(nowMs);
      this.#fills.refresh(entry.key, entry.policy);
    }
    return nowMs < entry.freshUntilMs;
  }

  /**
   * The entry L1 would serve for `key` at `nowMs`, without counting a hit or checking
   * leases (for inspection: the simulator's propagation probes).
   */
  servable(key: string, nowMs: number): Entry | undefined {
    const entry = this.#l1.get(key);
    if (entry === undefined || nowMs >= entry.freshUntilMs || this.#closed) return undefined;
    if (nowMs >= entry.boundUntilMs && !this.#proven(entry, nowMs)) return undefined;
    return entry;
  }

  /**
   * Whether an entry past its bound may still be served under this node's session: a
   * strong entry while the session lives (a writer must revoke this node, or see its
   * session end, before it commits); an eventual entry while, besides, every member's
   * invalidations sent before `freshAsOfMs` are in and that is within the staleness bound.
   */
  #proven(entry: Entry, nowMs: number): boolean {
    const k = this.#kernel;
    if (nowMs >= k.liveUntilMs) return false;
    return entry.policy.mode !== "eventual-distributed" ||
      nowMs < k.freshAsOfMs + entry.policy.maxStalenessMs * (1 - k.drift);
  }

  /**
   * Reads `key` as caller operation `op`: from L1 if it may serve it, else the store (or,
   * for a loader-backed key, a `load` effect). `options` override the registration's read
   * settings for this read (TTL, timeouts, fail-safe); validated (TypeError/RangeError).
   */
  get(op: number, key: string, nowMs: number, options?: ReadOptions): void {
    this.#kernel.advance(nowMs);
    const policy = this.#admit(op, key);
    if (policy === undefined) return;
    const settings = readSettings(policy, options);
    if (!this.#serveHit(op, key)) this.#fills.miss(op, key, policy, settings);
  }

  /**
   * Runs the loader of store-backed `key` as caller operation `op` — `getOrSet` after a
   * read found no value — under its hard timeout (`load` effect). Resolves with the value
   * (`source: "loader"`) and installs nothing: the caller writes it (`set`). A
   * loader-backed key loads through `get` instead (TypeError here).
   */
  load(op: number, key: string, nowMs: number, options?: ReadOptions): void {
    this.#kernel.advance(nowMs);
    const registered = this.#registry.find(key);
    if (registered?.origin === "loader") {
      throw new TypeError(`A loader-backed key loads through get, not load: ${key}`);
    }
    const settings = registered === undefined ? undefined : readSettings(registered, options);
    if (this.#admit(op, key) === undefined || settings === undefined) return;
    this.#loads.run(op, key, settings);
  }

  /** Answers read `op` from L1 if L1 may serve `key` now; returns whether it did. */
  #serveHit(op: number, key: string): boolean {
    const now = this.#kernel.now;
    const entry = this.hit(key, now);
    if (entry === undefined) return false;
    this.#kernel.resolve(op, entryAnswer(entry, now, "l1"));
    return true;
  }

  /**
   * Writes `input` under `key` as caller operation `op`. With `input.leases`, each lease is
   * checked active first (a dead one rejects with `LEASE_REVOKED` or `LEASE_EXPIRED`, G3)
   * and the value is attached to them.
   */
  set(op: number, key: string, input: WriteInput, nowMs: number): void {
    this.#kernel.advance(nowMs);
    if (this.#registry.find(key)?.origin === "loader") {
      throw new TypeError(
        `A loader-backed key is never written to the store: write your source, then invalidate it: ${key}`,
      );
    }
    if (input.leases !== undefined) {
      const problem = leaseListProblem(input.leases);
      if (problem !== undefined) {
        throw new TypeError(`Invalid leases of a write of ${key}: ${problem}`);
      }
    }
    if (input.ttlMs !== undefined && !(Number.isFinite(input.ttlMs) && input.ttlMs > 0)) {
      throw new RangeError(`Invalid ttlMs of a write of ${key}: ${input.ttlMs}`);
    }
    if (
      input.expectedVersion !== undefined &&
      (!Number.isSafeInteger(input.expectedVersion) || input.expectedVersion < 0)
    ) {
      throw new TypeError(`Invalid expectedVersion of a write of ${key}: ${input.expectedVersion}`);
    }
    if (input.committedVersion !== undefined) this.#checkCommitted(key, input);
    const policy = this.#admit(op, key);
    if (policy === undefined) return;
    const leases = input.payload === undefined ? undefined : input.leases;
    if (leases === undefined || leases.length === 0) {
      this.#dispatchWrite(op, key, policy, input);
      return;
    }
    this.#leases.attach(
      op,
      key,
      leases,
      policy.writeTimeoutMs,
      () => this.#dispatchWrite(op, key, policy, input),
    );
  }

  /**
   * Prepares the strong-distributed writes of a transaction as caller operation `op`:
   * claims each key's write slot in one global key order, revokes its holders and pins
   * its store version (`_strong_batch.ts`). Resolves with `value` the pinned versions, in
   * the order of `keys`: the driver then commits the transaction with each of these keys
   * conditional on its pinned version, and reports the outcome with
   * {@linkcode finishTransaction}`(op, …)` — always, or the slots stay claimed until taken
   * over. Rejects with `STORE_CONFLICT` when a key's `expectedVersion` is not the pinned
   * one, or as a strong write does (`CONTENDED`, `TIMEOUT`, …): then nothing is claimed.
   * Keys must be distinct, registered strong-distributed and store-backed (TypeError).
   */
  prepareTransaction(
    op: number,
    keys: readonly { readonly key: string; readonly expectedVersion?: number }[],
    nowMs: number,
  ): void {
    this.#kernel.advance(nowMs);
    const prepared = strongTxKeys(keys, (key) => this.#registry.find(key));
    if (this.#mayStart(op)) this.#batches.prepare(op, prepared);
  }

  /**
   * Reports how the driver's commit of the transaction prepared as `op` ended: committed
   * (each key's new version, in the prepared order: the slots are released at them and
   * nothing is cached here), failed (released, unchanged) or unknown (left claimed, so a
   * later writer takes them over and the pinned versions fence the commit). A transaction
   * not prepared is a TypeError.
   */
  finishTransaction(op: number, outcome: TransactionOutcome, nowMs: number): void {
    this.#kernel.advance(nowMs);
    if (outcome.kind === "committed") {
      for (const version of outcome.versions) {
        if (!Number.isSafeInteger(version) || version < 1) {
          throw new TypeError(`Invalid committed version of transaction ${op}: ${version}`);
        }
      }
    }
    if (!this.#closed) this.#batches.finish(op, outcome);
  }

  #checkCommitted(key: string, input: WriteInput): void {
    const version = input.committedVersion!;
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new TypeError(`Invalid committedVersion of a write of ${key}: ${version}`);
    }
    if (this.#registry.find(key)?.mode === "strong-distributed") {
      throw new TypeError(`A strong-distributed key cannot take a committed write: ${key}`);
    }
    if ((input.leases?.length ?? 0) > 0 || input.expectedVersion !== undefined) {
      throw new TypeError(`A committed write has no leases and no expectedVersion: ${key}`);
    }
  }

  /** Deletes `key` from the store (a tombstone version) as caller operation `op`. */
  delete(op: number, key: string, nowMs: number): void {
    this.set(op, key, { value: undefined, payload: undefined, sizeBytes: 0 }, nowMs);
  }

  /**
   * Drops `key` from L1 on every node, without touching the store, as caller operation
   * `op`. For a store-backed key it completes at once: the drop is best effort on other
   * nodes. For a loader-backed key it is the application's word that its source changed:
   * an eventual one completes once this node is an active member (so every node's
   * freshness proof counts its drop, LB2); a strong-distributed one completes only when no
   * node can still serve what it loaded before (the strong write's revocations without
   * the store write, LB3).
   */
  invalidate(op: number, key: string, nowMs: number): void {
    this.#kernel.advance(nowMs);
    const policy = this.#admit(op, key);
    if (policy === undefined) return;
    if (policy.origin === "loader" && policy.mode === "strong-distributed") {
      this.#strong.invalidate(op, key, policy);
    } else {
      this.#eventual.invalidate(op, key, policy);
    }
  }

  /**
   * Clears namespace `ns` — every key that starts with `ns:` — on every node, as caller
   * operation `op`: as an invalidation of each of its keys (see `_namespaces.ts`), here at
   * once, elsewhere within each key's bound. Resolves with `version` the namespace's epoch
   * on this node. A namespace that a strong-distributed registration may reach is refused
   * with `NOT_SUPPORTED`; past `timeoutMs` (waiting for this node's session) the caller
   * hears `OUTCOME_UNKNOWN`. A bad name is a TypeError.
   */
  clear(op: number, ns: string, nowMs: number, timeoutMs = 10_000): void {
    this.#kernel.advance(nowMs);
    const problem = namespaceProblem(ns);
    if (problem !== undefined) throw new TypeError(`Invalid namespace, ${problem}: ${ns}`);
    if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) {
      throw new RangeError(`Invalid timeoutMs of a clear of ${ns}: ${timeoutMs}`);
    }
    if (!this.#mayStart(op)) return;
    const blocking = blockingRegistration(this.#registry.policies(), ns);
    if (blocking !== undefined) {
      this.#kernel.reject(
        op,
        new WarpError(
          "NOT_SUPPORTED",
          `Namespace ${ns} may hold strong-distributed keys (${blocking.pattern}), which clear does not support: invalidate them one by one`,
        ),
      );
      return;
    }
    this.#clears.clear(op, ns, timeoutMs);
  }

  /** How many clears of namespace `ns` this node has applied (its epoch here). */
  namespaceEpoch(ns: string): number {
    return this.#clears.epoch(ns);
  }

  // ---------------------------------------------------------------- leases

  /**
   * Grants lease `id` (made by `makeLeaseId`, the TTL inside it) as caller operation `op`:
   * creates its coordinator record, which the coordinator forgets `ttl` after its last
   * write. Resolves with `value` the id and `version` the record's revision.
   */
  grantLease(op: number, id: string, nowMs: number): void {
    this.#kernel.advance(nowMs);
    const ttlMs = this.#admitLease(op, id);
    if (ttlMs !== undefined) this.#leases.grant(op, id, ttlMs);
  }

  /**
   * Keeps lease `id` alive as caller operation `op`: rewrites its record, which restarts
   * its TTL. A revoked or expired lease rejects with `LEASE_REVOKED` / `LEASE_EXPIRED` (G3).
   */
  keepAliveLease(op: number, id: string, nowMs: number): void {
    this.#kernel.advance(nowMs);
    const ttlMs = this.#admitLease(op, id);
    if (ttlMs !== undefined) this.#leases.keepAlive(op, id, ttlMs);
  }

  /**
   * Revokes lease `id` as caller operation `op`: writes its record as revoked, tells every
   * node (best effort), then waits `leaseCheckMs × (1 + drift)` so that no node can still
   * trust a check made before the write. When it resolves, no node serves a value attached
   * to the lease (G1). Revoking a revoked or expired lease succeeds.
   */
  revokeLease(op: number, id: string, nowMs: number): void {
    this.#kernel.advance(nowMs);
    const ttlMs = this.#admitLease(op, id);
    if (ttlMs !== undefined) this.#leases.revoke(op, id, ttlMs);
  }

  /** What this node knows of lease `id`, for inspection (tests, the simulator). */
  leaseState(id: string, nowMs: number): "unknown" | "active" | "revoked" | "expired" {
    return this.#leases.state(id, nowMs);
  }

  /** Closes the node: every operation in flight fails with `CLOSED`. */
  close(nowMs: number): void {
    const kernel = this.#kernel;
    kernel.advance(nowMs);
    if (this.#closed) return;
    this.#closed = true;
    this.#sessions.close();
    for (const op of [...kernel.ops.keys()]) {
      kernel.reject(op, new WarpError("CLOSED", `Node closed: ${this.nodeId}`));
    }
    this.#loads.abortAll();
    kernel.cancelTimers();
  }

  /** Whether {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---------------------------------------------------------------- I/O results

  /** Reports the outcome of a `store-get` effect. */
  onStoreRead(io: number, result: StoreReadResult, nowMs: number): void {
    this.#complete(this.#kernel.storeReads, io, result, nowMs);
  }

  /** Reports the outcome of a `store-write` effect. */
  onStoreWrite(io: number, result: StoreWriteResult, nowMs: number): void {
    this.#complete(this.#kernel.storeWrites, io, result, nowMs);
  }

  /** Reports the outcome of a `coord-get` effect. */
  onCoordRead(io: number, result: CoordReadResult, nowMs: number): void {
    this.#complete(this.#kernel.coordReads, io, result, nowMs);
  }

  /** Reports the outcome of a `coord-put` effect. */
  onCoordWrite(io: number, result: CoordWriteResult, nowMs: number): void {
    this.#complete(this.#kernel.coordWrites, io, result, nowMs);
  }

  /** Reports the outcome of a `load` effect (a malformed report is a TypeError). */
  onLoad(io: number, result: LoadResult, nowMs: number): void {
    const problem = loadResultProblem(result);
    if (problem !== undefined) throw new TypeError(`Invalid load result of io ${io}: ${problem}`);
    this.#complete(this.#kernel.loads, io, result, nowMs);
  }

  /** Feeds a message from the bus; malformed or foreign messages are dropped and counted. */
  onMessage(raw: unknown, nowMs: number): void {
    this.#kernel.advance(nowMs);
    const message = validateMessage(raw);
    if (message === undefined || this.#closed) {
      this.stats.messagesDropped++;
      return;
    }
    if (isAbsurd(message)) {
      this.stats.absurdMessages++;
      this.stats.messagesDropped++;
      return;
    }
    this.stats.messagesReceived++;
    switch (message.t) {
      case "inv":
        this.#peers.track(message.from, message.inc, message.seq, false);
        this.#eventual.applyInvalidation(message.key, message.version);
        if (message.from !== this.nodeId) this.#validator?.invalidated(message.key);
        return;
      case "drop":
        this.#peers.track(message.from, message.inc, message.seq, false);
        this.#kernel.drop(message.key);
        if (message.from !== this.nodeId) this.#validator?.invalidated(message.key);
        return;
      case "hb":
        this.#peers.heartbeat(
          message.from,
          message.inc,
          message.seq,
          message.round,
          message.echo,
        );
        return;
      case "revoke":
        this.#holders.onRevoke(message);
        if (message.from !== this.nodeId) this.#validator?.invalidated(message.key);
        return;
      case "ack":
        this.#strong.onAck(message);
        return;
      case "lrev":
        this.#leases.revoked(message.lease);
        return;
      case "clr":
        this.#peers.track(message.from, message.inc, message.seq, false);
        if (message.from === this.nodeId && message.inc === this.incarnation) return; // applied
        this.#clears.apply(message.ns);
        return;
    }
  }

  // ---------------------------------------------------------------- admission

  #admit(op: number, key: string): KeyPolicy | undefined {
    if (!this.#mayStart(op)) return undefined;
    const policy = this.#registry.find(key);
    if (policy === undefined) {
      this.#kernel.reject(
        op,
        new WarpError("UNREGISTERED_KEY", `Key matches no registered key or pattern: ${key}`),
      );
    }
    return policy;
  }

  /** Admits lease operation `op` on `id`; returns the TTL the id carries. */
  #admitLease(op: number, id: string): number | undefined {
    const ttlMs = isLeaseId(id) ? leaseTtlMs(id) : undefined;
    if (ttlMs === undefined) throw new TypeError(`Invalid lease id: ${id}`);
    return this.#mayStart(op) ? ttlMs : undefined;
  }

  /** Whether caller operation `op` may start: else it is rejected (closed, over the limit). */
  #mayStart(op: number): boolean {
    const kernel = this.#kernel;
    if (kernel.ops.has(op)) throw new TypeError(`Operation id already in flight: ${op}`);
    if (this.#closed) {
      kernel.reject(op, new WarpError("CLOSED", `Node closed: ${this.nodeId}`));
      return false;
    }
    if (kernel.ops.size >= this.#opsMax) {
      kernel.reject(
        op,
        new WarpError("LIMIT_EXCEEDED", `Too many operations in flight, at most ${this.#opsMax}`),
      );
      return false;
    }
    return true;
  }

  #dispatchWrite(op: number, key: string, policy: KeyPolicy, input: WriteInput): void {
    if (policy.mode === "strong-distributed") this.#strong.write(op, key, policy, input);
    else this.#eventual.write(op, key, policy, input);
  }

  #complete<R>(table: Map<number, (r: R) => void>, io: number, result: R, nowMs: number): void {
    this.#kernel.advance(nowMs);
    const handler = table.get(io);
    if (handler === undefined) return; // unknown or duplicate report: ignore
    table.delete(io);
    if (!this.#closed) handler(result);
  }
}
