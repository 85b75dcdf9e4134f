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
 *   expired), latency spikes, timer jitter; with `coordinatorFaults`, also reads answered
 *   from an older state and answers lost after the call took effect. A safety phase under
 *   faults, then a liveness phase without them, in which holders still crash (sometimes just
 *   after a renewal, the worst case for L3).
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
 * The plumbing (timeline, clocks, processes, coordinator) is the layer the cache scenario
 * uses too (`_timeline.ts`, `_clocks.ts`, `_processes.ts`, `_coordinator.ts`); this file is
 * the lock scenario: its workload, the fenced resource, the history and the canaries.
 *
 * @module
 */

import { Fence, LockCore } from "../src/core/lock.ts";
import type { LockGrant, LockRecord } from "../src/core/lock.ts";
import { InvariantError } from "../src/core/errors.ts";
import type { WarpError } from "../src/core/errors.ts";
import { deriveSeed, Prng } from "./prng.ts";
import { Timeline } from "./_timeline.ts";
import { drawNodeClock } from "./_clocks.ts";
import { processFields, ProcessHost } from "./_processes.ts";
import type { EffectOf, SimProcess } from "./_processes.ts";
import { SimCoordinator } from "./_coordinator.ts";
import type { CoordCell, CoordFailure } from "./_coordinator.ts";
import { drawCoordinatorFaults, drawDriftPpm } from "./faults.ts";
import type { CoordinatorFaultRates, Fault } from "./faults.ts";
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

/**
 * Continuous fault rates of a lock run; the coordinator's own faults (stale reads, answers
 * lost after taking effect) only with `coordinatorFaults` or an explicit mix.
 */
export interface LockFaultMix extends CoordinatorFaultRates {
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

/**
 * A discrete fault of a lock run, in the safety phase: the cache scenario's coordinator
 * outages, pauses (started at once) and crashes, and latency spikes on coordinator hops.
 */
export type LockFault =
  | Extract<Fault, { kind: "coord-outage" }>
  | Omit<Extract<Fault, { kind: "pause" }>, "after">
  /** `node` -1: whichever node holds a lock then (a random one if none). */
  | Extract<Fault, { kind: "crash" }>
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
  /**
   * Add the coordinator's own faults to the drawn swarm mix, as the cache scenario's gray
   * seeds draw them: reads answered from a state up to 5–400 ms old, and answers lost after
   * the call took effect. Drawn from their own stream, so every other draw of the seed stays
   * as it was. No effect with `faults: "none"` or an explicit mix (which says its own).
   * @default {false}
   */
  readonly coordinatorFaults?: boolean;
}

/** What a lock run measured. */
export interface LockSimStats {
  /** Events processed by the loop. */
  events: number;
  /** Locks granted. */
  grants: number;
  /** Fenced operations attempted. */
  claims: number;
  /** Fenced operations admitted. */
  admitted: number;
  /** Fenced operations rejected (an older token). */
  rejected: number;
  /** Grants whose record replaced another holder's (a takeover after expiry). */
  takeovers: number;
  /** Successful renewals. */
  renewals: number;
  /** Renews or releases of grants no longer held. */
  misuses: number;
  /** Node crashes. */
  crashes: number;
  /** Coordinator calls that failed with COORDINATOR_UNAVAILABLE. */
  coordTimeouts: number;
  /** Coordinator reads answered from an older state (only in a run with coordinator faults). */
  coordStaleReads?: number;
  /** Coordinator answers lost after their call took effect (only with coordinator faults). */
  coordLostAnswers?: number;
  /** Simulated time covered, ms. */
  simMs: number;
}

/** A checked lock run. */
export interface LockSeedReport {
  /** The seed. */
  readonly seed: number;
  /** The violations found. */
  readonly violations: readonly Violation[];
  /** Each lock guarantee's status. */
  readonly results: Readonly<Record<LockGuarantee, "pass" | "fail" | "skipped">>;
  /** What the run counted. */
  readonly stats: LockSimStats;
  /** The recorded history. */
  readonly history: LockHistory;
  /** What L3 judged: stretches, the longest wait and the bound. */
  readonly l3: LockL3Stats;
  /** The fault rates drawn. */
  readonly mix: LockFaultMix;
  /** The faults injected, in order. */
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

/** A node of the lock scenario: a process running a LockCore, and its workload. */
interface LockNode extends SimProcess<LockCore> {
  /** The node's workload stream. */
  readonly work: Prng;
  holding: Holding | undefined;
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
  /** The network's stream: coordinator hops and the resource's latencies. */
  readonly #net: Prng;
  readonly #faultPrng: Prng;
  readonly #nodes: LockNode[] = [];
  readonly #timeline: Timeline;
  readonly #host: ProcessHost<LockCore, LockNode>;
  readonly #coordinator: SimCoordinator<LockRecord>;
  readonly #fences = new Map<string, Fence>();
  readonly #handlers = new Map<number, OpHandler>();
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
  /** Crash the next node whose renewal succeeds (liveness worst case for L3). */
  #crashAfterRenewal = false;
  #nextOp = 1;
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
    this.#timeline = new Timeline(this.#safetyMs);
    this.#net = new Prng(deriveSeed(seed, "lock-network"));
    this.#faultPrng = new Prng(deriveSeed(seed, "lock-faults"));
    const faults = options.faults ?? "swarm";
    if (typeof faults === "string") {
      const drawn = drawLockMix(this.#faultPrng, faults);
      this.#mix = options.coordinatorFaults && faults === "swarm"
        ? drawCoordinatorFaults(new Prng(deriveSeed(seed, "lock-faults-coord")), drawn, "gray")
        : drawn;
      this.#schedule = faults === "none"
        ? []
        : drawLockSchedule(this.#faultPrng, this.#n, this.#safetyMs, this.#ttlMs);
    } else {
      this.#mix = faults.mix;
      this.#schedule = faults.schedule;
    }
    this.#host = new ProcessHost(this.#timeline, {
      timerJitterMs: this.#mix.timerJitterMs,
      perform: (node, core, effect, op) => this.#perform(node, core, effect, op),
    });
    this.#coordinator = new SimCoordinator<LockRecord>(this.#timeline, {
      nodes: this.#n,
      prng: this.#net,
      latencyMeanMs: this.#mix.latencyMeanMs,
      latencyCapFactor: HOP_CAP_FACTOR,
      spikeCapMs: SPIKE_CAP_MS,
      timeoutMs: COORD_TIMEOUT_MS,
      // A spike can make a hop outlast the timeout: the timeout races every call.
      timeout: "raced",
      hopDraws: "per-hop",
      staleRate: this.#mix.coordStaleRate ?? 0,
      staleMaxMs: this.#mix.coordStaleMaxMs ?? 0,
      replyLossRate: this.#mix.coordReplyLossRate ?? 0,
    });
    for (const lock of this.#locks) this.#fences.set(lock, new Fence());
    const clocks = { ...this.#mix, maxDriftPpm: this.#maxDriftPpm };
    for (let i = 0; i < this.#n; i++) {
      const prng = new Prng(deriveSeed(seed, `lock-node-${i}`));
      const clock = drawNodeClock(
        prng,
        clocks,
        (drift) => options.canary === "drift-beyond-bound" && i === 0 ? -0.5 : drift,
      );
      this.#nodes.push({
        ...processFields<LockCore>(i, prng, clock),
        work: new Prng(deriveSeed(seed, `lock-workload-${i}`)),
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
    this.#timeline.runUntil(horizon);
    return this.#result(horizon);
  }

  /** The run so far, after {@linkcode run} threw (an invariant broke in a core). */
  partial(): { history: LockHistory; stats: LockSimStats; traceHash: string } {
    return this.#result(this.#now);
  }

  #at(at: number, run: () => void): void {
    this.#timeline.at(at, run);
  }

  /** The current true time. */
  get #now(): number {
    return this.#timeline.now;
  }

  /** What the node's clock reads now. */
  #local(node: LockNode): number {
    return this.#host.local(node);
  }

  // ------------------------------------------------------------------ nodes

  #start(node: LockNode): void {
    const core = this.#host.start(node, (incarnation) =>
      new LockCore({
        nodeId: node.id,
        incarnation,
        maxDriftPpm: this.#maxDriftPpm,
        marginMs: this.#marginMs,
      }));
    node.holding = undefined;
    this.#next(node, core);
  }

  /** Runs `act` on the node now, or when its pause ends, if `core` still runs then. */
  #whenRunning(node: LockNode, core: LockCore, act: () => void): void {
    this.#host.whenRunning(node, core, act);
  }

  /** Calls the core as client op `op`, performs its effects and arms its next timer. */
  #step(node: LockNode, core: LockCore, input: () => void, op?: number): void {
    this.#host.step(node, core, input, op);
  }

  #perform(
    node: LockNode,
    core: LockCore,
    effect: EffectOf<LockCore>,
    op: number | undefined,
  ): void {
    const by = `${node.id}/${node.incarnation}`; // the sender, whenever its write applies
    const coordinator = this.#coordinator;
    switch (effect.type) {
      case "coord-get":
        this.#call(
          node,
          core,
          () => coordinator.get(effect.key),
          (r) => core.onRead(effect.io, r, this.#local(node)),
        );
        return;
      case "coord-put":
        this.#call(node, core, () => {
          const previous = coordinator.current(effect.key);
          const r = coordinator.put(effect.key, effect.record, effect.revision);
          if (r.ok) {
            const kind = previous === undefined ? "create" : "update";
            this.#log(by, effect.key, kind, op, effect.record.holder, previous);
          }
          return r;
        }, (r) => core.onWrite(effect.io, r, this.#local(node)));
        return;
      case "coord-delete":
        this.#call(node, core, () => {
          const previous = coordinator.current(effect.key);
          const r = coordinator.remove(effect.key, effect.revision);
          if (r.ok) this.#log(by, effect.key, "delete", op, undefined, previous);
          return r;
        }, (r) => core.onWrite(effect.io, r, this.#local(node)));
        return;
      case "coord-watch":
        // A watch that names the revision its waiter saw hears at once if the key moved
        // past it before the watch registered.
        coordinator.watch(
          `${node.index}:${effect.io}`,
          node.index,
          effect.key,
          effect.revision,
          (record, revision) =>
            this.#host.deliver(
              node,
              core,
              (c) => c.onWatch(effect.io, { ok: true, record, revision }, this.#local(node)),
            ),
        );
        return;
      case "coord-unwatch":
        coordinator.unwatch(`${node.index}:${effect.io}`);
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

  /** A coordinator call from `node`; its answer is an input to the node's core. */
  #call<R>(
    node: LockNode,
    core: LockCore,
    apply: () => R,
    answer: (r: R | CoordFailure) => void,
  ): void {
    this.#coordinator.call(
      node.index,
      apply,
      (r) => this.#host.deliver(node, core, () => answer(r)),
    );
  }

  #log(
    by: string,
    key: string,
    kind: LockWriteRecord["kind"],
    op: number | undefined,
    holder: string | undefined,
    prev: CoordCell<LockRecord> | undefined,
  ): void {
    const write: LockWriteRecord = {
      key,
      lock: key.slice("lock/".length),
      trueMs: this.#now,
      kind,
      revision: this.#coordinator.revision,
      by,
      ...(op !== undefined && { op }),
      ...(holder !== undefined && { holder }),
      ...(prev !== undefined && { prevHolder: prev.record.holder }),
    };
    this.#writes.push(write);
    this.#byRevision.set(write.revision, write);
  }

  // ------------------------------------------------------------------ workload

  /** After a think time, the node's next acquisition. */
  #next(node: LockNode, core: LockCore): void {
    const think = node.work.range(0.5, this.#ttlMs / 5);
    this.#at(
      this.#now + think,
      () => this.#whenRunning(node, core, () => this.#acquire(node, core)),
    );
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
      beliefEndTrueMs: node.clock.trueTimeOf(grant.heldUntilMs),
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
      this.#whenRunning(node, core, () => {
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
        this.#at(this.#now + back, () => this.#whenRunning(node, core, answered));
      });
    };
    const pauseMs = this.#ttlMs * node.work.range(1.5, 3);
    if (
      this.#options.canary === "pause-past-ttl" && node.index === 0 &&
      this.#now + pauseMs < this.#safetyMs && node.work.chance(0.3)
    ) {
      // The classic stale holder: checked, then stopped (a GC pause), then acts.
      this.#host.pause(node, pauseMs);
      this.#whenRunning(node, core, send);
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
        holding.record.beliefEndTrueMs = node.clock.trueTimeOf(holding.heldUntilMs);
        holding.record.renewals++;
        this.#stats.renewals++;
        if (this.#crashAfterRenewal && !this.#timeline.faultsOn) {
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
        this.#whenRunning(node, core, () => {
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
    if (!this.#timeline.faultsOn) return;
    switch (fault.kind) {
      case "coord-outage":
        this.#coordinator.outage(fault.node, fault.durationMs);
        return;
      case "latency-spike":
        this.#coordinator.spike(fault.node, fault.extraMeanMs, fault.durationMs);
        return;
      case "pause":
        this.#host.pause(this.#nodes[fault.node]!, fault.durationMs);
        return;
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
    this.#host.crash(node);
    this.#crashes.push({ node: node.id, trueMs: this.#now });
    this.#stats.crashes++;
    if (node.holding !== undefined) node.holding.record.crashTrueMs = this.#now;
    node.holding = undefined;
    for (const [op, h] of this.#handlers) {
      if (h.core !== core) continue;
      h.onCrash();
      this.#handlers.delete(op);
    }
    this.#coordinator.unwatchNode(node.index);
    const restartAt = this.#timeline.faultsOn
      ? this.#timeline.faultEndMs(downMs)
      : this.#now + downMs;
    this.#at(restartAt, () => {
      if (node.core === undefined) this.#start(node);
    });
  }

  /** End of the safety phase: every fault stops, every node runs. */
  #heal(): void {
    this.#timeline.endFaults();
    this.#coordinator.heal();
    for (const node of this.#nodes) {
      this.#host.resume(node);
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
    this.#stats.events = this.#timeline.events;
    this.#stats.simMs = horizon;
    this.#stats.coordTimeouts = this.#coordinator.timeouts;
    const mix = this.#mix;
    if ((mix.coordStaleRate ?? 0) > 0 || (mix.coordReplyLossRate ?? 0) > 0) {
      this.#stats.coordStaleReads = this.#coordinator.staleReads;
      this.#stats.coordLostAnswers = this.#coordinator.lostAnswers;
    }
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
      traceHash: this.#timeline.hash,
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
