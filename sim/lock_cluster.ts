/**
 * The deterministic simulated cluster for locks: N nodes each running the production
 * {@linkcode LockCore} against a simulated linearizable coordinator, on one thread over
 * virtual true time, with the faults that matter to locks. The lock protocol uses only the
 * coordinator, so there is no bus here.
 *
 * - **Coordinator**: compare-and-set registers with one global revision counter (create,
 *   update at a revision, delete at a revision; a delete gets a revision too), and watches
 *   that deliver each change to the watchers of the key after a latency. A watch registers
 *   one latency after it is asked for (a change in between is not reported, as the driver
 *   contract allows), and a watcher whose node cannot reach the coordinator misses events.
 * - **Calls**: every hop is a truncated exponential latency (mean drawn per seed, 0.3–2 ms,
 *   cut at 5× the mean); a call without an answer after 50 ms fails with
 *   COORDINATOR_UNAVAILABLE, though it may still take effect: a request that reached the
 *   coordinator applies even when its reply is lost, and a request slowed by a latency
 *   spike applies after its caller gave up on it.
 * - **Clocks**: node n reads `offset + (1 + drift)·T`, drift within the bound; timers fire
 *   up to the seed's jitter late.
 * - **Faults** (swarm: each kind on or off per seed): coordinator outages per node, pauses
 *   (some longer than the TTL; a paused node's inputs wait for the pause to end while its
 *   clock runs on), crashes (often of the holder; the restarted node is a new LockCore
 *   with a new incarnation, its grants vanish and its record stays until waiters judge it
 *   expired), latency spikes, timer jitter. A safety phase under faults, then a liveness
 *   phase without them, in which holders still crash (sometimes just after a renewal, the
 *   worst case for L3).
 * - **Workload**: every node loops: acquire (sometimes only try), then, while
 *   `holds(handle, now + guard)`, makes fenced operations on a resource guarded by a
 *   {@linkcode Fence} (the check and the send happen in one step; the operation arrives
 *   after at most 3 ms, less than the 5 ms guard), renews when half its belief is gone, and
 *   releases (or lets the lock expire). After a grant ends it sometimes renews or releases
 *   it anyway (L4).
 *
 * Canaries break an assumption on purpose and must be caught by L1 while L2 holds:
 * `drift-beyond-bound` (node 0's clock runs at half speed) and `pause-past-ttl` (node 0
 * checks its belief, pauses for 1.5–3 TTLs, then sends its fenced operation).
 *
 * @module
 */

import { Fence, LockCore } from "../src/core/lock.ts";
import type { LockEffect, LockGrant, LockRecord } from "../src/core/lock.ts";
import { InvariantError, WarpError } from "../src/core/errors.ts";
import { deriveSeed, Prng } from "./prng.ts";
import { EventQueue } from "./_event_queue.ts";
import { drawDriftPpm } from "./faults.ts";
import { checkLockHistory, LOCK_HISTORY_FORMAT, lockL3BoundMs } from "./checkers/locks.ts";
import type {
  LockAcquireRecord,
  LockCheckResult,
  LockClaimRecord,
  LockGrantRecord,
  LockGuarantee,
  LockHistory,
  LockL3Stats,
  LockMisuseRecord,
  LockWriteRecord,
} from "./checkers/locks.ts";
import type { Violation } from "./history.ts";

/** The lock canaries: runs that break an assumption on purpose and must be caught. */
export type LockCanaryName = "drift-beyond-bound" | "pause-past-ttl";

/** The lock canary names, for the CLI and tests. */
export const LOCK_CANARIES: readonly LockCanaryName[] = ["drift-beyond-bound", "pause-past-ttl"];

/** Continuous fault rates of a lock run. */
export interface LockFaultMix {
  /** Mean one-way latency of a coordinator hop, ms (each hop is cut at 5× the mean). */
  readonly latencyMeanMs: number;
  /** Mean latency of a fenced operation to the resource, ms (cut at 3 ms). */
  readonly resourceLatencyMeanMs: number;
  /** A timer fires up to this late, ms. */
  readonly timerJitterMs: number;
  /** Largest clock offset, ms. */
  readonly clockOffsetMaxMs: number;
  /** Whether clocks drift (within the bound). */
  readonly drift: boolean;
}

/** A discrete fault of a lock run, in the safety phase. */
export type LockFault =
  | {
    readonly kind: "coord-outage";
    readonly atMs: number;
    readonly node: number;
    readonly durationMs: number;
  }
  | {
    readonly kind: "pause";
    readonly atMs: number;
    readonly node: number;
    readonly durationMs: number;
  }
  /** `node` -1: whichever node holds a lock then (a random one if none). */
  | {
    readonly kind: "crash";
    readonly atMs: number;
    readonly node: number;
    readonly downMs: number;
  }
  /** Every coordinator hop of the node takes up to `extraMeanMs` more (cut at 150 ms). */
  | {
    readonly kind: "latency-spike";
    readonly atMs: number;
    readonly node: number;
    readonly durationMs: number;
    readonly extraMeanMs: number;
  };

/** Options of a simulated lock run. */
export interface LockSimOptions {
  /** The root seed (a 32-bit integer). */
  readonly seed: number;
  /** Number of nodes. @default {5} */
  readonly nodes?: number;
  /** The locks the workload contends for. @default {["L"]} */
  readonly locks?: readonly string[];
  /** Time to live of every grant, ms. @default {100} */
  readonly ttlMs?: number;
  /** Length of the safety phase, under faults, ms. @default {2000} */
  readonly safetyMs?: number;
  /** Length of the liveness phase, faults off, ms. @default {2000} */
  readonly livenessMs?: number;
  /**
   * The drift bound every LockCore assumes and every clock keeps, ppm.
   * @default {drawn per seed, log-uniform from 100 to 100 000}
   */
  readonly maxDriftPpm?: number;
  /** The LockCore's takeover margin, ms. @default {1} */
  readonly marginMs?: number;
  /** Faults drawn from the seed (`swarm`), none, or an explicit mix and schedule. @default {"swarm"} */
  readonly faults?: "swarm" | "none" | {
    readonly mix: LockFaultMix;
    readonly schedule: readonly LockFault[];
  };
  /** Break an assumption on purpose. @default {undefined} */
  readonly canary?: LockCanaryName;
}

/** What a lock run measured. */
export interface LockSimStats {
  /** Events processed by the loop. */
  events: number;
  grants: number;
  claims: number;
  admitted: number;
  rejected: number;
  /** Grants whose record replaced another holder's (a takeover after expiry). */
  takeovers: number;
  renewals: number;
  misuses: number;
  crashes: number;
  /** Coordinator calls that failed with COORDINATOR_UNAVAILABLE. */
  coordTimeouts: number;
  /** Simulated time covered, ms. */
  simMs: number;
}

/** A checked lock run. */
export interface LockSeedReport {
  readonly seed: number;
  readonly violations: readonly Violation[];
  readonly results: Readonly<Record<LockGuarantee, "pass" | "fail" | "skipped">>;
  readonly stats: LockSimStats;
  readonly history: LockHistory;
  /** What L3 judged: stretches, the longest wait and the bound. */
  readonly l3: LockL3Stats;
  readonly mix: LockFaultMix;
  readonly schedule: readonly LockFault[];
  /** A hash of every processed event: equal for equal runs. */
  readonly traceHash: string;
}

/** A call without an answer after this long fails (COORDINATOR_UNAVAILABLE). */
const COORD_TIMEOUT_MS = 50;
/** Each hop's exponential latency is cut at this many times its mean. */
const HOP_CAP_FACTOR = 5;
/** A latency spike adds at most this much to a hop. */
const SPIKE_CAP_MS = 150;
const RESOURCE_LATENCY_CAP_MS = 3;
/** A holder acts only with this much belief left on its clock (> the resource latency). */
const GUARD_MS = 5;
/** LockCore's retry interval after a coordinator error. */
const CORE_RETRY_MS = 50;
/** Crashes of holders in the liveness phase. */
const LIVENESS_CRASHES = 3;

interface Holding {
  readonly record: Draft<LockGrantRecord>;
  readonly handle: number;
  heldUntilMs: number;
  opsLeft: number;
  readonly release: boolean;
  renewing: boolean;
  ended: boolean;
}

type Draft<T> = { -readonly [K in keyof T]: T[K] };

interface LockNode {
  readonly index: number;
  readonly id: string;
  readonly prng: Prng;
  readonly work: Prng;
  core: LockCore | undefined;
  incarnation: number;
  readonly offsetMs: number;
  readonly drift: number;
  pausedUntil: number;
  tickAt: number;
  holding: Holding | undefined;
}

interface Watch {
  readonly node: LockNode;
  readonly core: LockCore;
  readonly io: number;
  readonly key: string;
  registered: boolean;
}

interface OpHandler {
  readonly node: LockNode;
  readonly core: LockCore;
  onResolve(grant: LockGrant | undefined): void;
  onReject(error: WarpError): void;
  onCrash(): void;
}

/**
 * A simulated lock cluster. Create it with options, {@linkcode LockSimCluster.run} it once.
 *
 * @example
 * ```ts
 * import { LockSimCluster } from "./lock_cluster.ts";
 * const run = new LockSimCluster({ seed: 7, safetyMs: 300, livenessMs: 300 }).run();
 * console.log(run.history.grants.length > 0); // true
 * ```
 */
export class LockSimCluster {
  readonly #options: LockSimOptions;
  readonly #n: number;
  readonly #locks: readonly string[];
  readonly #ttlMs: number;
  readonly #maxDriftPpm: number;
  readonly #marginMs: number;
  readonly #safetyMs: number;
  readonly #endMs: number;
  readonly #mix: LockFaultMix;
  readonly #schedule: readonly LockFault[];
  readonly #net: Prng;
  readonly #faultPrng: Prng;
  readonly #nodes: LockNode[] = [];
  readonly #queue = new EventQueue();
  readonly #cells = new Map<string, { record: LockRecord; revision: number }>();
  #revision = 0;
  readonly #watches = new Map<string, Watch>();
  readonly #fences = new Map<string, Fence>();
  readonly #handlers = new Map<number, OpHandler>();
  readonly #coordDown: Int32Array;
  readonly #spikeMs: Float64Array;
  readonly #grants: Draft<LockGrantRecord>[] = [];
  readonly #claims: Draft<LockClaimRecord>[] = [];
  readonly #acquires: Draft<LockAcquireRecord>[] = [];
  readonly #misuses: Draft<LockMisuseRecord>[] = [];
  readonly #writes: LockWriteRecord[] = [];
  readonly #byRevision = new Map<number, LockWriteRecord>();
  readonly #crashes: { node: string; trueMs: number }[] = [];
  readonly #stats: LockSimStats = {
    events: 0,
    grants: 0,
    claims: 0,
    admitted: 0,
    rejected: 0,
    takeovers: 0,
    renewals: 0,
    misuses: 0,
    crashes: 0,
    coordTimeouts: 0,
    simMs: 0,
  };
  /** The client op whose call is running, to tag the writes it emits. */
  #currentOp: number | undefined;
  /** Crash the next node whose renewal succeeds (liveness worst case for L3). */
  #crashAfterRenewal = false;
  #nextOp = 1;
  #faultsOn = true;
  #issuing = true;

  /** Prepares a run; nothing happens until {@linkcode run}. */
  constructor(options: LockSimOptions) {
    if (!Number.isInteger(options.seed)) throw new TypeError(`Invalid seed: ${options.seed}`);
    this.#options = options;
    this.#n = options.nodes ?? 5;
    if (!Number.isInteger(this.#n) || this.#n < 2 || this.#n > 64) {
      throw new RangeError(`nodes must be 2 to 64: ${this.#n}`);
    }
    this.#locks = options.locks ?? ["L"];
    if (this.#locks.length === 0) throw new RangeError("locks must name at least one lock: []");
    this.#ttlMs = options.ttlMs ?? 100;
    if (!(this.#ttlMs >= 20)) throw new RangeError(`ttlMs must be at least 20: ${this.#ttlMs}`);
    const seed = options.seed >>> 0;
    // Its own stream: the bound changes no other draw.
    this.#maxDriftPpm = options.maxDriftPpm ??
      drawDriftPpm(new Prng(deriveSeed(seed, "lock-config")));
    this.#marginMs = options.marginMs ?? 1;
    this.#safetyMs = options.safetyMs ?? 2000;
    this.#endMs = this.#safetyMs + (options.livenessMs ?? 2000);
    this.#net = new Prng(deriveSeed(seed, "lock-network"));
    this.#faultPrng = new Prng(deriveSeed(seed, "lock-faults"));
    const faults = options.faults ?? "swarm";
    if (typeof faults === "string") {
      this.#mix = drawLockMix(this.#faultPrng, faults);
      this.#schedule = faults === "none"
        ? []
        : drawLockSchedule(this.#faultPrng, this.#n, this.#safetyMs, this.#ttlMs);
    } else {
      this.#mix = faults.mix;
      this.#schedule = faults.schedule;
    }
    this.#coordDown = new Int32Array(this.#n);
    this.#spikeMs = new Float64Array(this.#n);
    for (const lock of this.#locks) this.#fences.set(lock, new Fence());
    const maxDrift = this.#maxDriftPpm / 1e6;
    for (let i = 0; i < this.#n; i++) {
      const prng = new Prng(deriveSeed(seed, `lock-node-${i}`));
      let drift = this.#mix.drift ? prng.range(-maxDrift, maxDrift) : 0;
      if (options.canary === "drift-beyond-bound" && i === 0) drift = -0.5;
      this.#nodes.push({
        index: i,
        id: `n${i}`,
        prng,
        work: new Prng(deriveSeed(seed, `lock-workload-${i}`)),
        core: undefined,
        incarnation: 0,
        offsetMs: prng.range(0, this.#mix.clockOffsetMaxMs),
        drift,
        pausedUntil: 0,
        tickAt: Infinity,
        holding: undefined,
      });
    }
  }

  /** The drift bound of this run, ppm. */
  get maxDriftPpm(): number {
    return this.#maxDriftPpm;
  }

  /** The fault mix and schedule of this run. */
  get faults(): { mix: LockFaultMix; schedule: readonly LockFault[] } {
    return { mix: this.#mix, schedule: this.#schedule };
  }

  /** The slack of the L3 bound, ms: twelve capped hops and two timer jitters, plus 1. */
  get slackMs(): number {
    return 12 * HOP_CAP_FACTOR * this.#mix.latencyMeanMs + 2 * this.#mix.timerJitterMs + 1;
  }

  /** Runs the safety phase, the liveness phase and a drain; returns the history. */
  run(): { history: LockHistory; stats: LockSimStats; traceHash: string } {
    for (const node of this.#nodes) this.#start(node);
    for (const fault of this.#schedule) this.#at(fault.atMs, () => this.#inject(fault));
    this.#at(this.#safetyMs, () => this.#heal());
    const live = new Prng(deriveSeed(this.#options.seed >>> 0, "lock-liveness"));
    const settle = this.#settleMs();
    for (let i = 0; i < LIVENESS_CRASHES; i++) {
      const at = live.range(this.#safetyMs + settle, this.#endMs - 3 * this.#ttlMs);
      const afterRenewal = live.chance(0.5);
      this.#at(at, () => {
        if (afterRenewal) this.#crashAfterRenewal = true;
        else this.#crashHolder(20);
      });
    }
    this.#at(this.#endMs, () => {
      this.#issuing = false;
    });
    const horizon = this.#endMs + 4 * this.#ttlMs;
    this.#queue.runUntil(horizon);
    return this.#result(horizon);
  }

  /** The run so far, after {@linkcode run} threw (an invariant broke in a core). */
  partial(): { history: LockHistory; stats: LockSimStats; traceHash: string } {
    return this.#result(this.#now);
  }

  // ------------------------------------------------------------------ event loop

  #at(at: number, run: () => void): void {
    this.#queue.at(at, run);
  }

  /** The current true time. */
  get #now(): number {
    return this.#queue.now;
  }

  // ------------------------------------------------------------------ nodes and clocks

  #local(node: LockNode): number {
    return node.offsetMs + (1 + node.drift) * this.#now;
  }

  #toTrue(node: LockNode, localMs: number): number {
    return (localMs - node.offsetMs) / (1 + node.drift);
  }

  #start(node: LockNode): void {
    node.incarnation++;
    node.core = new LockCore({
      nodeId: node.id,
      incarnation: node.incarnation,
      maxDriftPpm: this.#maxDriftPpm,
      marginMs: this.#marginMs,
    });
    node.tickAt = Infinity;
    node.holding = undefined;
    this.#next(node, node.core);
  }

  /** Runs `input` on the node's core now, or when its pause ends. */
  #deliver(node: LockNode, core: LockCore, input: () => void): void {
    if (node.core !== core) return;
    if (node.pausedUntil > this.#now) {
      this.#at(node.pausedUntil, () => this.#deliver(node, core, input));
      return;
    }
    input();
  }

  /** Calls the core, performs its effects and arms its next timer. */
  #step(node: LockNode, core: LockCore, input: () => void, op?: number): void {
    this.#currentOp = op;
    input();
    this.#currentOp = undefined;
    for (const effect of core.takeEffects()) this.#perform(node, core, effect, op);
    const deadline = core.nextDeadlineMs();
    if (deadline === Infinity || node.core !== core) return;
    const jitter = this.#mix.timerJitterMs > 0 ? node.prng.range(0, this.#mix.timerJitterMs) : 0;
    const at = Math.max(this.#now, this.#toTrue(node, deadline) + 1e-6 + jitter);
    if (at >= node.tickAt) return;
    node.tickAt = at;
    this.#at(at, () => {
      if (node.core !== core || node.tickAt !== at) return;
      node.tickAt = Infinity;
      this.#deliver(node, core, () => this.#step(node, core, () => core.tick(this.#local(node))));
    });
  }

  #perform(node: LockNode, core: LockCore, effect: LockEffect, op: number | undefined): void {
    const by = `${node.id}/${node.incarnation}`; // the sender, whenever its write applies
    switch (effect.type) {
      case "coord-get":
        this.#call(node, core, () => {
          const cell = this.#cells.get(effect.key);
          return { ok: true as const, record: cell?.record, revision: cell?.revision ?? 0 };
        }, (r) => core.onRead(effect.io, r, this.#local(node)));
        return;
      case "coord-put":
        this.#call(
          node,
          core,
          () => this.#put(by, effect.key, effect.record, effect.revision, op),
          (r) => core.onWrite(effect.io, r, this.#local(node)),
        );
        return;
      case "coord-delete":
        this.#call(
          node,
          core,
          () => this.#delete(by, effect.key, effect.revision, op),
          (r) => core.onWrite(effect.io, r, this.#local(node)),
        );
        return;
      case "coord-watch": {
        const watch: Watch = { node, core, io: effect.io, key: effect.key, registered: false };
        const id = `${node.index}:${effect.io}`;
        this.#watches.set(id, watch);
        // A watch that names the revision its waiter saw (a proposed field of the effect)
        // hears at once if the key moved past it before the watch registered.
        const seen = (effect as { readonly revision?: number }).revision;
        this.#at(this.#now + this.#hop(node), () => {
          if (this.#watches.get(id) !== watch || !this.#reachable(node)) {
            this.#watches.delete(id); // the runtime would resubscribe; the waiter's timer copes
            return;
          }
          watch.registered = true;
          const cell = this.#cells.get(effect.key);
          if (seen !== undefined && (cell?.revision ?? 0) !== seen) {
            this.#tell(watch, id, cell?.record, cell?.revision ?? this.#revision);
          }
        });
        return;
      }
      case "coord-unwatch":
        this.#watches.delete(`${node.index}:${effect.io}`);
        return;
      case "resolve":
        this.#handlers.get(effect.op)?.onResolve(effect.grant);
        this.#handlers.delete(effect.op);
        return;
      case "reject":
        this.#handlers.get(effect.op)?.onReject(effect.error);
        this.#handlers.delete(effect.op);
        return;
      case "lost":
        this.#lost(node, effect.handle);
        return;
    }
  }

  // ------------------------------------------------------------------ coordinator

  #reachable(node: LockNode): boolean {
    return this.#coordDown[node.index] === 0;
  }

  /** One hop's latency for `node`: a truncated exponential, plus a spike while one lasts. */
  #hop(node: LockNode): number {
    const mean = this.#mix.latencyMeanMs;
    let hop = Math.min(this.#net.exp(mean), HOP_CAP_FACTOR * mean);
    const spike = this.#spikeMs[node.index]!;
    if (spike > 0) hop += Math.min(this.#net.exp(spike), SPIKE_CAP_MS);
    return hop;
  }

  /**
   * A coordinator call: applies when the request arrives (if the node can reach the
   * coordinator then), answers after the reply's hop, or fails after COORD_TIMEOUT_MS.
   */
  #call<R>(
    node: LockNode,
    core: LockCore,
    apply: () => R,
    answer: (r: R | { ok: false; conflict: false; error: WarpError }) => void,
  ): void {
    let answered = false;
    const respond = (r: R | { ok: false; conflict: false; error: WarpError }) => {
      if (answered) return;
      answered = true;
      this.#deliver(node, core, () => this.#step(node, core, () => answer(r)));
    };
    this.#at(this.#now + COORD_TIMEOUT_MS, () => {
      if (answered) return;
      this.#stats.coordTimeouts++;
      respond({
        ok: false,
        conflict: false,
        error: new WarpError("COORDINATOR_UNAVAILABLE", "Simulated coordinator timeout"),
      });
    });
    if (!this.#reachable(node)) return;
    this.#at(this.#now + this.#hop(node), () => {
      if (!this.#reachable(node)) return; // lost on the way
      const result = apply(); // it took effect; the reply may still be lost or late
      this.#at(this.#now + this.#hop(node), () => {
        if (this.#reachable(node)) respond(result);
      });
    });
  }

  #put(
    by: string,
    key: string,
    record: LockRecord,
    revision: number | undefined,
    op: number | undefined,
  ) {
    const cell = this.#cells.get(key);
    const matches = revision === undefined ? cell === undefined : cell?.revision === revision;
    if (!matches) {
      return {
        ok: false as const,
        conflict: true,
        error: new WarpError("CONTENDED", `Revision moved: ${key}`),
      };
    }
    const next = { record, revision: ++this.#revision };
    this.#cells.set(key, next);
    this.#log(by, key, cell === undefined ? "create" : "update", op, record.holder, cell);
    this.#notify(key, next.record, next.revision);
    return { ok: true as const, revision: next.revision };
  }

  #delete(by: string, key: string, revision: number, op: number | undefined) {
    const cell = this.#cells.get(key);
    if (cell === undefined || cell.revision !== revision) {
      return {
        ok: false as const,
        conflict: true,
        error: new WarpError("CONTENDED", `Revision moved: ${key}`),
      };
    }
    this.#cells.delete(key);
    this.#revision++;
    this.#log(by, key, "delete", op, undefined, cell);
    this.#notify(key, undefined, this.#revision);
    return { ok: true as const, revision: this.#revision };
  }

  #log(
    by: string,
    key: string,
    kind: LockWriteRecord["kind"],
    op: number | undefined,
    holder: string | undefined,
    prev: { record: LockRecord } | undefined,
  ): void {
    const write: LockWriteRecord = {
      key,
      lock: key.slice("lock/".length),
      trueMs: this.#now,
      kind,
      revision: this.#revision,
      by,
      ...(op !== undefined && { op }),
      ...(holder !== undefined && { holder }),
      ...(prev !== undefined && { prevHolder: prev.record.holder }),
    };
    this.#writes.push(write);
    this.#byRevision.set(write.revision, write);
  }

  /** Sends a change to every registered watcher of `key` that can reach the coordinator. */
  #notify(key: string, record: LockRecord | undefined, revision: number): void {
    for (const [id, watch] of this.#watches) {
      if (watch.key !== key || !watch.registered || !this.#reachable(watch.node)) continue;
      this.#tell(watch, id, record, revision);
    }
  }

  /** Delivers one watch event after a hop, unless the watch ended or the node is cut off. */
  #tell(watch: Watch, id: string, record: LockRecord | undefined, revision: number): void {
    this.#at(this.#now + this.#hop(watch.node), () => {
      if (this.#watches.get(id) !== watch || !this.#reachable(watch.node)) return;
      const { node, core } = watch;
      this.#deliver(node, core, () =>
        this.#step(
          node,
          core,
          () => core.onWatch(watch.io, { ok: true, record, revision }, this.#local(node)),
        ));
    });
  }

  // ------------------------------------------------------------------ workload

  /** After a think time, the node's next acquisition. */
  #next(node: LockNode, core: LockCore): void {
    const think = node.work.range(0.5, this.#ttlMs / 5);
    this.#at(this.#now + think, () => this.#deliver(node, core, () => this.#acquire(node, core)));
  }

  #acquire(node: LockNode, core: LockCore): void {
    const w = node.work;
    const lock = w.pick(this.#locks);
    const tryOnly = w.chance(0.2);
    if (!this.#issuing) return;
    const timeoutMs = tryOnly ? 0 : Math.round(this.#ttlMs * w.range(2, 6));
    const op = this.#nextOp++;
    const record: Draft<LockAcquireRecord> = {
      lock,
      node: node.id,
      op,
      startTrueMs: this.#now,
      timeoutMs,
      outcome: "pending",
    };
    this.#acquires.push(record);
    const end = (outcome: string) => {
      record.outcome = outcome;
      record.endTrueMs = this.#now;
    };
    this.#handlers.set(op, {
      node,
      core,
      onResolve: (grant) => {
        end("granted");
        this.#granted(node, core, grant!);
      },
      onReject: (error) => {
        end(error.code);
        this.#next(node, core);
      },
      onCrash: () => end("crashed"),
    });
    this.#step(
      node,
      core,
      () => core.acquire(op, lock, { ttlMs: this.#ttlMs, timeoutMs }, this.#local(node)),
      op,
    );
  }

  #granted(node: LockNode, core: LockCore, grant: LockGrant): void {
    const holder = `${node.id}/${node.incarnation}/${grant.handle}`;
    const record: Draft<LockGrantRecord> = {
      lock: grant.name,
      node: node.id,
      holder,
      token: grant.token,
      grantTrueMs: this.#now,
      beliefEndTrueMs: this.#toTrue(node, grant.heldUntilMs),
      renewals: 0,
    };
    this.#grants.push(record);
    this.#stats.grants++;
    const install = this.#byRevision.get(grant.token);
    if (install?.kind === "update" && install.prevHolder !== holder) this.#stats.takeovers++;
    const w = node.work;
    const holding: Holding = {
      record,
      handle: grant.handle,
      heldUntilMs: grant.heldUntilMs,
      opsLeft: w.int(1, 8),
      release: w.chance(0.75),
      renewing: false,
      ended: false,
    };
    node.holding = holding;
    if (!core.holds(grant.handle, this.#local(node))) {
      this.#endHolding(node, core, holding, false); // answered after its belief ended
      return;
    }
    this.#holdStep(node, core, holding, w.range(0.5, this.#ttlMs / 6));
  }

  #holdStep(node: LockNode, core: LockCore, holding: Holding, afterMs: number): void {
    this.#at(this.#now + afterMs, () =>
      this.#deliver(node, core, () => {
        if (holding.ended) return;
        const w = node.work;
        const local = this.#local(node);
        if (!core.holds(holding.handle, local + GUARD_MS)) return; // "lost" will end it
        if (holding.opsLeft > 0) {
          holding.opsLeft--;
          const think = w.range(0.5, this.#ttlMs / 6);
          // The next step (another op, or the release) waits for this op's answer.
          this.#fencedOp(node, core, holding, () => this.#holdStep(node, core, holding, think));
          const remaining = holding.heldUntilMs - local;
          if (
            !holding.renewing && node.pausedUntil <= this.#now &&
            (holding.opsLeft > 0 || !holding.release) &&
            remaining < this.#ttlMs / 2 && w.chance(0.8)
          ) {
            this.#renew(node, core, holding);
          }
          return;
        }
        if (holding.release) {
          const op = this.#nextOp++;
          this.#handlers.set(op, { node, core, onResolve() {}, onReject() {}, onCrash() {} });
          holding.record.releaseTrueMs = this.#now;
          this.#step(node, core, () => core.release(op, holding.handle, this.#local(node)), op);
          this.#endHolding(node, core, holding, true);
        } // else: stop renewing and let it expire; "lost" ends it
      }));
  }

  /**
   * Checks the belief and sends a fenced operation to the resource; `answered` runs when
   * the resource's answer is back (one more resource latency).
   */
  #fencedOp(node: LockNode, core: LockCore, holding: Holding, answered: () => void): void {
    const checkTrueMs = this.#now;
    const send = () => {
      const claim: Draft<LockClaimRecord> = {
        lock: holding.record.lock,
        node: node.id,
        holder: holding.record.holder,
        token: holding.record.token,
        checkTrueMs,
        arrivalTrueMs: NaN,
        admitted: false,
      };
      this.#claims.push(claim);
      this.#stats.claims++;
      const latency = Math.min(
        this.#net.exp(this.#mix.resourceLatencyMeanMs),
        RESOURCE_LATENCY_CAP_MS,
      );
      const back = Math.min(
        this.#net.exp(this.#mix.resourceLatencyMeanMs),
        RESOURCE_LATENCY_CAP_MS,
      );
      this.#at(this.#now + latency, () => {
        claim.arrivalTrueMs = this.#now;
        claim.admitted = this.#fences.get(claim.lock)!.admit(claim.token);
        if (claim.admitted) this.#stats.admitted++;
        else this.#stats.rejected++;
        this.#at(this.#now + back, () => this.#deliver(node, core, answered));
      });
    };
    const pauseMs = this.#ttlMs * node.work.range(1.5, 3);
    if (
      this.#options.canary === "pause-past-ttl" && node.index === 0 &&
      this.#now + pauseMs < this.#safetyMs && node.work.chance(0.3)
    ) {
      // The classic stale holder: checked, then stopped (a GC pause), then acts.
      node.pausedUntil = Math.max(node.pausedUntil, this.#now + pauseMs);
      this.#deliver(node, core, send);
      return;
    }
    send();
  }

  #renew(node: LockNode, core: LockCore, holding: Holding): void {
    const op = this.#nextOp++;
    holding.renewing = true;
    this.#handlers.set(op, {
      node,
      core,
      onResolve: (grant) => {
        holding.renewing = false;
        if (holding.ended || grant === undefined) return;
        holding.heldUntilMs = Math.max(holding.heldUntilMs, grant.heldUntilMs);
        holding.record.beliefEndTrueMs = this.#toTrue(node, holding.heldUntilMs);
        holding.record.renewals++;
        this.#stats.renewals++;
        if (this.#crashAfterRenewal && !this.#faultsOn) {
          this.#crashAfterRenewal = false;
          this.#crashFor(node, 20);
        }
      },
      onReject: () => {
        holding.renewing = false; // LOCK_NOT_HELD comes with "lost"; an error keeps the belief
      },
      onCrash() {},
    });
    this.#step(node, core, () => core.renew(op, holding.handle, this.#local(node)), op);
  }

  #lost(node: LockNode, handle: number): void {
    const holding = node.holding;
    if (holding === undefined || holding.handle !== handle || holding.ended) return;
    if (this.#now < holding.record.beliefEndTrueMs) holding.record.lostTrueMs = this.#now;
    this.#endHolding(node, node.core!, holding, true);
  }

  /**
   * The grant is over for the node: then loop. If the core dropped the grant (released,
   * lost), sometimes renew or release it anyway (L4).
   */
  #endHolding(node: LockNode, core: LockCore, holding: Holding, dropped: boolean): void {
    holding.ended = true;
    if (node.holding === holding) node.holding = undefined;
    const w = node.work;
    const misuse = w.chance(0.3);
    const kind = w.chance(0.5) ? "renew" as const : "release" as const;
    const bogus = w.chance(0.1);
    if (misuse && dropped) {
      this.#at(this.#now + w.range(0, 5), () =>
        this.#deliver(node, core, () => {
          this.#misuse(node, core, holding, kind, bogus ? 1e9 : holding.handle);
        }));
    }
    this.#next(node, core);
  }

  #misuse(
    node: LockNode,
    core: LockCore,
    holding: Holding,
    kind: "renew" | "release",
    handle: number,
  ): void {
    const op = this.#nextOp++;
    const record: Draft<LockMisuseRecord> = {
      lock: holding.record.lock,
      node: node.id,
      op,
      kind,
      handle,
      trueMs: this.#now,
      outcome: "pending",
    };
    this.#misuses.push(record);
    this.#stats.misuses++;
    this.#handlers.set(op, {
      node,
      core,
      onResolve: () => {
        record.outcome = "ok";
      },
      onReject: (error) => {
        record.outcome = error.code;
      },
      onCrash: () => {
        if (record.outcome === "pending") record.outcome = "crashed";
      },
    });
    const local = this.#local(node);
    this.#step(
      node,
      core,
      () => kind === "renew" ? core.renew(op, handle, local) : core.release(op, handle, local),
      op,
    );
  }

  // ------------------------------------------------------------------ faults

  #inject(fault: LockFault): void {
    if (!this.#faultsOn) return;
    const end = (fn: () => void, durationMs: number) =>
      this.#at(Math.min(this.#now + durationMs, this.#safetyMs), fn);
    switch (fault.kind) {
      case "coord-outage":
        this.#coordDown[fault.node]!++;
        end(() => this.#coordDown[fault.node]!--, fault.durationMs);
        return;
      case "latency-spike":
        this.#spikeMs[fault.node] = fault.extraMeanMs;
        end(() => {
          this.#spikeMs[fault.node] = 0;
        }, fault.durationMs);
        return;
      case "pause": {
        const node = this.#nodes[fault.node]!;
        node.pausedUntil = Math.max(
          node.pausedUntil,
          Math.min(this.#now + fault.durationMs, this.#safetyMs),
        );
        return;
      }
      case "crash":
        if (fault.node < 0) this.#crashHolder(fault.downMs);
        else this.#crashFor(this.#nodes[fault.node]!, fault.downMs);
        return;
    }
  }

  #crashHolder(downMs: number): void {
    const holders = this.#nodes.filter((n) => n.holding !== undefined && n.core !== undefined);
    const node = holders.length > 0
      ? holders[this.#faultPrng.int(0, holders.length - 1)]!
      : this.#nodes[this.#faultPrng.int(0, this.#n - 1)]!;
    this.#crashFor(node, downMs);
  }

  #crashFor(node: LockNode, downMs: number): void {
    const core = node.core;
    if (core === undefined) return;
    node.core = undefined;
    node.tickAt = Infinity;
    this.#crashes.push({ node: node.id, trueMs: this.#now });
    this.#stats.crashes++;
    if (node.holding !== undefined) node.holding.record.crashTrueMs = this.#now;
    node.holding = undefined;
    for (const [op, h] of this.#handlers) {
      if (h.core !== core) continue;
      h.onCrash();
      this.#handlers.delete(op);
    }
    for (const [id, watch] of this.#watches) if (watch.core === core) this.#watches.delete(id);
    const restartAt = this.#faultsOn
      ? Math.min(this.#now + downMs, this.#safetyMs)
      : this.#now + downMs;
    this.#at(restartAt, () => {
      if (node.core === undefined) this.#start(node);
    });
  }

  /** End of the safety phase: every fault stops, every node runs. */
  #heal(): void {
    this.#faultsOn = false;
    this.#coordDown.fill(0);
    this.#spikeMs.fill(0);
    for (const node of this.#nodes) {
      node.pausedUntil = Math.min(node.pausedUntil, this.#now);
      if (node.core === undefined) this.#start(node);
    }
  }

  /** How long after the safety phase calls started under faults may still be settling. */
  #settleMs(): number {
    return 2 * (SPIKE_CAP_MS + HOP_CAP_FACTOR * this.#mix.latencyMeanMs) + COORD_TIMEOUT_MS +
      CORE_RETRY_MS + this.#mix.timerJitterMs;
  }

  // ------------------------------------------------------------------ result

  #result(horizon: number): { history: LockHistory; stats: LockSimStats; traceHash: string } {
    this.#stats.events = this.#queue.events;
    this.#stats.simMs = horizon;
    const history: LockHistory = {
      format: LOCK_HISTORY_FORMAT,
      grants: this.#grants.map((g) => ({ ...g })),
      claims: this.#claims.filter((c) => !Number.isNaN(c.arrivalTrueMs)).map((c) => ({ ...c })),
      acquires: this.#acquires.map((a) => ({ ...a })),
      misuses: this.#misuses.map((m) => ({ ...m })),
      writes: [...this.#writes],
      crashes: [...this.#crashes],
      l3: {
        fromMs: this.#safetyMs + this.#settleMs(),
        untilMs: this.#endMs,
        boundMs: lockL3BoundMs(this.#ttlMs, this.#maxDriftPpm, this.#marginMs, this.slackMs),
      },
      maxDriftPpm: this.#maxDriftPpm,
    };
    return {
      history,
      stats: { ...this.#stats },
      traceHash: this.#queue.hash,
    };
  }
}

/** Draws a swarm mix for a lock run: each kind of fault on or off, with its own rate. */
export function drawLockMix(prng: Prng, preset: "swarm" | "none"): LockFaultMix {
  const latencyMeanMs = prng.range(0.3, 2);
  const resourceLatencyMeanMs = prng.range(0.1, 1);
  if (preset === "none") {
    return {
      latencyMeanMs,
      resourceLatencyMeanMs,
      timerJitterMs: 0,
      clockOffsetMaxMs: 0,
      drift: false,
    };
  }
  return {
    latencyMeanMs,
    resourceLatencyMeanMs,
    timerJitterMs: prng.chance(0.5) ? prng.range(0, 5) : 0,
    clockOffsetMaxMs: prng.chance(0.7) ? prng.range(0, 100_000) : 0,
    drift: prng.chance(0.8),
  };
}

/** Draws a swarm schedule of lock faults, all in the safety phase. */
export function drawLockSchedule(
  prng: Prng,
  nodes: number,
  safetyMs: number,
  ttlMs: number,
): LockFault[] {
  const faults: LockFault[] = [];
  const count = (max: number, p = 0.6) => (prng.chance(p) ? prng.int(1, max) : 0);
  const at = (durationMs: number) => prng.range(0, Math.max(0, safetyMs - durationMs));
  for (let i = count(3); i > 0; i--) {
    const durationMs = prng.range(10, Math.min(400, safetyMs / 2));
    faults.push({
      kind: "coord-outage",
      atMs: at(durationMs),
      node: prng.int(0, nodes - 1),
      durationMs,
    });
  }
  for (let i = count(3); i > 0; i--) {
    const durationMs = prng.range(5, 3 * ttlMs); // often longer than the TTL
    faults.push({ kind: "pause", atMs: at(durationMs), node: prng.int(0, nodes - 1), durationMs });
  }
  for (let i = count(3); i > 0; i--) {
    const downMs = prng.range(5, 300);
    faults.push({
      kind: "crash",
      atMs: at(downMs),
      node: prng.chance(0.7) ? -1 : prng.int(0, nodes - 1),
      downMs,
    });
  }
  for (let i = count(2, 0.5); i > 0; i--) {
    const durationMs = prng.range(20, Math.min(400, safetyMs / 2));
    faults.push({
      kind: "latency-spike",
      atMs: at(durationMs),
      node: prng.int(0, nodes - 1),
      durationMs,
      extraMeanMs: prng.range(10, 150),
    });
  }
  return faults.sort((a, b) => a.atMs - b.atMs);
}

/**
 * Runs one lock seed and checks its history (L1–L4). A broken invariant in a core is
 * reported as a violation of `invariant`.
 *
 * @example
 * ```ts
 * import { runLockSeed } from "./lock_cluster.ts";
 * const report = runLockSeed({ seed: 3, safetyMs: 500, livenessMs: 1000 });
 * console.log(report.violations.length, report.results.L2); // 0 "pass"
 * ```
 */
export function runLockSeed(options: LockSimOptions): LockSeedReport {
  const cluster = new LockSimCluster(options);
  let run: ReturnType<LockSimCluster["run"]>;
  const extra: Violation[] = [];
  try {
    run = cluster.run();
  } catch (error) {
    if (!(error instanceof InvariantError)) throw error;
    run = cluster.partial();
    extra.push({ guarantee: "invariant", key: "", ops: [], message: error.message });
  }
  const checked: LockCheckResult = checkLockHistory(run.history);
  return {
    seed: options.seed,
    violations: [...extra, ...checked.violations],
    results: checked.results,
    stats: run.stats,
    history: run.history,
    l3: checked.l3,
    mix: cluster.faults.mix,
    schedule: cluster.faults.schedule,
    traceHash: run.traceHash,
  };
}
