/**
 * The deterministic simulated cluster: N nodes running the production {@linkcode NodeCore}
 * on one thread, over virtual true time, with a simulated linearizable store and
 * coordinator and a simulated network — and every fault of CONSISTENCY.md.
 *
 * One root seed derives independent streams (workload, network, faults, store, each
 * node), so a run replays bit for bit from its seed and options.
 *
 * The plumbing is the simulator's shared layer: the timeline and its phases
 * (`_timeline.ts`), the nodes' clocks (`_clocks.ts`), processes with their pauses and
 * timers (`_processes.ts`), the bus (`_network.ts`), the store (`_store.ts`) and the
 * coordinator (`_coordinator.ts`). This file is the cache scenario: its workload, what each
 * effect of a `NodeCore` does, the history it records, and its canaries.
 *
 * @module
 */

import { NodeCore } from "../src/core/node.ts";
import type { Canary } from "../src/core/node.ts";
import type { CoordRecord, OpResult } from "../src/core/effects.ts";
import { makeLeaseId } from "../src/core/leases.ts";
import type { LeaseRecord } from "../src/core/leases.ts";
import type { WarpError } from "../src/core/errors.ts";
import type { Message } from "../src/core/messages.ts";
import { Registry } from "../src/core/registry.ts";
import type { ConsistencyMode } from "../src/core/registry.ts";
import type { WarpConfig } from "../src/config.ts";
import { deriveSeed, Prng } from "./prng.ts";
import { Timeline } from "./_timeline.ts";
import { drawNodeClock } from "./_clocks.ts";
import { processFields, ProcessHost } from "./_processes.ts";
import { Forger } from "./_forger.ts";
import type { ForgerPower } from "./_forger.ts";
import type { EffectOf, SimProcess } from "./_processes.ts";
import { SimNetwork } from "./_network.ts";
import { SimStore } from "./_store.ts";
import type { StoreFailure } from "./_store.ts";
import { SimCoordinator } from "./_coordinator.ts";
import { LoaderWorkload } from "./_loaders.ts";
import type { LoaderCanary } from "./_loaders.ts";
import type { CoordFailure } from "./_coordinator.ts";
import { CALM, drawDriftPpm, drawFaults } from "./faults.ts";
import type { Fault, FaultMix, FaultPreset } from "./faults.ts";
import {
  builtInShape,
  coreOptions,
  keyInfo,
  keyPolicies,
  longestTimerMs,
  userShape,
} from "./config.ts";
import type { ClusterShape, SimKey, SimPolicy } from "./config.ts";
import { HISTORY_FORMAT } from "./history.ts";
import { LWW_KEYS, SimUpdates, UPDATE_KEYS } from "./_updates.ts";
import type { UpdateHost } from "./_updates.ts";
import { startTransaction } from "./_transactions.ts";
import { SIM_VALIDATOR, ValidatorLog } from "./_validator_log.ts";
import { Backdoor } from "./_backdoor.ts";
import type { TransactionHost } from "./_transactions.ts";
import type {
  History,
  HistoryOp,
  KeyInfo,
  L1Sample,
  LeaseOp,
  LeaseRecordLog,
  Outcome,
  StoreLogEntry,
  TransactionRecord,
} from "./history.ts";

/** The canaries: runs that break an assumption on purpose and must be caught. */
export type CanaryName =
  | "drift-beyond-bound"
  | "clock-step"
  | "ignore-invalidations"
  | "skip-fill-check"
  | "no-staleness-bound"
  | "revoke-without-wait"
  | "lease-ttl-ignored"
  | "attach-unchecked"
  | "absent-version-skew"
  | "flush-rules-off"
  | "staleness-without-drift"
  | "lease-wait-without-drift"
  | "trust-own-lease-check"
  | "trust-stale-registration"
  | "session-from-answer"
  | "session-wait-without-drift"
  | "complete-without-session"
  | "trust-heartbeat-arrival"
  | "trust-absent-lease-read"
  | "lease-staleness-ignored"
  | "clear-ignored"
  | "reducer-reads-l1"
  | "wall-clock-lww"
  | "transaction-without-invalidation"
  | "half-applied-transaction"
  | "strong-tx-without-claim"
  | "failed-update-cached"
  | "forger-has-secret"
  | "unbound-acks"
  | "unconditional-heal"
  | "count-within-bound"
  | LoaderCanary;

/** The canary names, for the CLI and tests. */
export const CANARIES: readonly CanaryName[] = [
  "drift-beyond-bound",
  "clock-step",
  "ignore-invalidations",
  "skip-fill-check",
  "no-staleness-bound",
  "revoke-without-wait",
  "lease-ttl-ignored",
  "attach-unchecked",
  "absent-version-skew",
  "flush-rules-off",
  "staleness-without-drift",
  "lease-wait-without-drift",
  "trust-own-lease-check",
  "trust-stale-registration",
  "session-from-answer",
  "session-wait-without-drift",
  "complete-without-session",
  "trust-heartbeat-arrival",
  "trust-absent-lease-read",
  "lease-staleness-ignored",
  "clear-ignored",
  "reducer-reads-l1",
  "wall-clock-lww",
  "transaction-without-invalidation",
  "half-applied-transaction",
  "strong-tx-without-claim",
  "failed-update-cached",
  "forger-has-secret",
  "unbound-acks",
  "fallback-serves-removed",
  "cache-overtaken-loads",
  "unconditional-heal",
  "count-within-bound",
];

/** The canaries that break a lease assumption; they turn leases on. */
export const LEASE_CANARIES: readonly CanaryName[] = [
  "revoke-without-wait",
  "lease-ttl-ignored",
  "attach-unchecked",
  "trust-own-lease-check",
  "trust-absent-lease-read",
  "lease-staleness-ignored",
];

/** The canaries that break a transaction assumption; they turn transactions on. */
const TRANSACTION_CANARIES: readonly (CanaryName | undefined)[] = [
  "transaction-without-invalidation",
  "half-applied-transaction",
  "strong-tx-without-claim",
];

/** The canaries that switch on a deliberate bug in the core, and its flag. */
const CORE_CANARY_FLAGS: Partial<Record<CanaryName, keyof Canary>> = {
  "skip-fill-check": "skipFillCheck",
  "no-staleness-bound": "ignoreStalenessBound",
  "revoke-without-wait": "revokeWithoutWait",
  "attach-unchecked": "attachUnchecked",
  "staleness-without-drift": "stalenessWithoutDrift",
  "lease-wait-without-drift": "leaseWaitWithoutDrift",
  "trust-own-lease-check": "trustOwnLeaseCheck",
  "absent-version-skew": "absentVersionOffByOne",
  "flush-rules-off": "ignoreGaps",
  "trust-stale-registration": "trustStaleRegistration",
  "session-from-answer": "sessionFromAnswer",
  "session-wait-without-drift": "sessionWaitWithoutDrift",
  "complete-without-session": "completeWithoutSession",
  "trust-heartbeat-arrival": "trustHeartbeatArrival",
  "trust-absent-lease-read": "trustAbsentLeaseRead",
  "clear-ignored": "ignoreClears",
  "failed-update-cached": "installFailedConditional",
  "unbound-acks": "acceptUnboundAcks",
  "fallback-serves-removed": "fallbackServesRemoved",
  "cache-overtaken-loads": "cacheOvertakenLoads",
  "unconditional-heal": "unconditionalHeal",
  "count-within-bound": "countWithinBound",
};

/** The core canaries set on every node (the others break node 0 only). */
const EVERY_NODE_CANARIES: readonly CanaryName[] = [
  ...LEASE_CANARIES,
  "failed-update-cached",
  "unbound-acks",
  "lease-wait-without-drift",
  "flush-rules-off",
  "trust-stale-registration",
  "session-from-answer",
  "session-wait-without-drift",
  "complete-without-session",
  "trust-heartbeat-arrival",
  "trust-absent-lease-read",
  "fallback-serves-removed",
  "cache-overtaken-loads",
  "unconditional-heal",
  "count-within-bound",
];

/** The canaries that break a loader-backed rule; they need the loader workload. */
const LOADER_CANARIES: readonly CanaryName[] = ["fallback-serves-removed", "cache-overtaken-loads"];

export type { SimPolicy };

/** Options of a simulated run. */
export interface SimOptions {
  /** The root seed (a 32-bit integer). */
  readonly seed: number;
  /** Number of nodes. @default {5} */
  readonly nodes?: number;
  /** The modes whose keys the workload uses. @default {all three} */
  readonly modes?: readonly ConsistencyMode[];
  /** Hot keys per mode: few keys, much contention. @default {3} */
  readonly keysPerMode?: number;
  /** Length of the safety phase, under faults, in simulated ms. @default {2000} */
  readonly safetyMs?: number;
  /** Length of the liveness phase, faults off, in simulated ms. @default {1000} */
  readonly livenessMs?: number;
  /** Client operations per simulated second per node. @default {200} */
  readonly opsPerSecondPerNode?: number;
  /** Share of client operations that are reads; the rest are writes, deletes, invalidates. @default {0.75} */
  readonly readShare?: number;
  /** Most client operations in flight per node. @default {4} */
  readonly inflightPerNode?: number;
  /** A fault preset drawn from the seed, or an explicit mix and schedule. @default {"swarm"} */
  readonly faults?: FaultPreset | { readonly mix: FaultMix; readonly schedule: readonly Fault[] };
  /**
   * The drift bound every node assumes and every clock keeps, ppm.
   * @default {drawn per seed, log-uniform from 100 to 100 000; a `config`'s own, else 500}
   */
  readonly maxDriftPpm?: number;
  /**
   * The built-in nodes' configurations: today's defaults on every node, or drawn per node
   * (`mixed`: timers, `leaseCheckMs` and key timings differ between nodes). Ignored with
   * a `config`. @default {drawn per seed: mixed in half of them}
   */
  readonly nodeConfigs?: "default" | "mixed";
  /**
   * A user's configuration (`deno task sim --config`): every node runs it, and the
   * workload uses keys generated from its registrations instead of the built-in ones.
   * Check it with `configProblems` first. @default {undefined}
   */
  readonly config?: WarpConfig;
  /** Built-in key timings on every node (overriding defaults and draws). */
  readonly policy?: Partial<SimPolicy>;
  /** Heartbeat interval of the built-in nodes. @default {50, or drawn in a mixed cluster} */
  readonly heartbeatIntervalMs?: number;
  /** Gap timeout of the built-in nodes. @default {100, or drawn in a mixed cluster} */
  readonly gapTimeoutMs?: number;
  /**
   * Echo budget per heartbeat of the built-in nodes (`echoesMax`): below the cluster's
   * size, heartbeats echo their peers in turn (`src/core/_echo_budget.ts`).
   * @default {the library's 32}
   */
  readonly echoesMax?: number;
  /** The nodes' `sessionMs`; 0 runs them without sessions (the age bound and cache leases). @default {200} */
  readonly sessionMs?: number;
  /**
   * Draw a swarm seed's faults as before triggered pauses, store spikes and gray seeds
   * were added, so that a seed pinned earlier replays its schedule. @default {false}
   */
  readonly classicSwarm?: boolean;
  /**
   * Explicit client operations (fast-check exploration), issued in addition to the random
   * workload; set `opsPerSecondPerNode` to 0 for these alone. @default {[]}
   */
  readonly clientOps?: readonly ScriptedOp[];
  /** Break an assumption on purpose. @default {undefined} */
  readonly canary?: CanaryName;
  /**
   * A forger on the bus while faults are on (`sim/_forger.ts`): `snooping` reads every
   * message and lacks the secret the nodes authenticate with; `blind` cannot read and the
   * nodes run without a secret. The canaries `forger-has-secret` (a snooping forger that
   * signs) and `unbound-acks` (a blind one, nonces unchecked) must be caught.
   * @default {undefined} no forger
   */
  readonly forger?: ForgerPower;
  /** Record a trace of every message and operation for timelines and diagrams. @default {false} */
  readonly trace?: boolean;
  /**
   * Add keys whose writes attach leases, and lease operations (grant, keep-alive,
   * revoke) to the workload, checked by G1–G3. A lease canary turns it on.
   * @default {false}
   */
  readonly leases?: boolean;
  /**
   * Add namespace clears to the workload (about 2 % of the operations: the eventual keys'
   * namespace `ev`, or the node's own strong-local keys' `lc:nI`), checked by CL. The
   * clear canary turns it on. Off by default so that pinned seeds replay their workload.
   * @default {false}
   */
  readonly clears?: boolean;
  /**
   * Add `update`s to the workload (a counter and a set-union key per distributed mode,
   * written only by updates), checked by M1. The canaries `reducer-reads-l1` and
   * `wall-clock-lww` turn it on.
   * @default {false}
   */
  readonly updates?: boolean;
  /**
   * With `updates`: add a last-writer-wins key per distributed mode (`ev:lww`, `st:lww`),
   * each update writing a value of its own through `merges.lastWriterWins`, checked by M2.
   * Off by default so that pinned seeds replay their workload (the update key is drawn from
   * a longer list); the CLI adds it with the updates. The canary `wall-clock-lww` turns it
   * on. @default {false}
   */
  readonly lastWriterWins?: boolean;
  /**
   * Add transactions to the workload: keys written in one store transaction as
   * `Warp.transaction` does (strong keys prepared first, eventual ones invalidated as
   * committed writes), recorded as write ops checked by S1/S2 and E1–E4, and as
   * transactions checked by T1. @default {false}
   */
  readonly transactions?: boolean;
  /**
   * With `transactions`: two or three keys each, eventual- and strong-distributed mixed,
   * in the order drawn; without, two eventual keys (the workload seeds pinned before
   * strong transactions replay). The transaction canaries turn it on. @default {false}
   */
  readonly strongTransactions?: boolean;
  /**
   * Add loader-backed keys of each mode (`sim/_loaders.ts`): loads from the application's
   * source, the application's writes of it followed by `invalidate`, fail-safe, soft and
   * hard timeouts, refresh-ahead; checked by LB1–LB3 and F1–F3. Off with `classicSwarm`
   * or a `config`, so that pinned seeds replay.
   * @default {true, unless classicSwarm or config}
   */
  readonly loaders?: boolean;
  /**
   * Run the background validator on every node (`heal` mode, `SIM_VALIDATOR`), its
   * verdicts and installs checked by V1. The canary `unconditional-heal` turns it on. Off
   * by default so that pinned seeds replay (its store reads draw on the store's stream);
   * the CLI runs it unless `--no-validator`. @default {false}
   */
  readonly validator?: boolean;
  /**
   * Add keys (`bd:*`, eventual-distributed) that the nodes only read and another
   * application writes in the store directly, sending no invalidation (`sim/_backdoor.ts`):
   * the validator then has real inconsistencies to count and heal, checked by V1. Outside
   * the history's keys (a write behind Warp's back is outside the contract). Turns the
   * validator on. @default {false}
   */
  readonly backdoor?: boolean;
}

/** A client operation at a given true time, on a node, for scripted runs. */
export interface ScriptedOp {
  /** True time of the call, ms. */
  readonly atMs: number;
  /** The node that makes it (an index). */
  readonly node: number;
  /** The key. */
  readonly key: string;
  /** The operation. */
  readonly kind: "read" | "write" | "delete" | "invalidate";
}

/** One traced event, for timelines and the space-time diagram. */
export type TraceEvent =
  | {
    readonly t: number;
    readonly type: "send";
    readonly from: number;
    readonly to: number;
    readonly msg: string;
    readonly deliverAt: number | null;
    readonly why?: string;
  }
  | {
    readonly t: number;
    readonly type: "op";
    readonly node: number;
    readonly op: number;
    readonly text: string;
  }
  | { readonly t: number; readonly type: "fault"; readonly text: string };

/** Reads per mode and phase, split by where they were answered. */
export type HitCounts = Record<string, { l1: number; store: number }>;

/** What a run measured besides its history. */
export interface SimStats {
  /** Events processed by the loop. */
  events: number;
  /** Simulated time covered, ms. */
  simMs: number;
  /** Client operations issued. */
  ops: number;
  /** Messages sent, lost (any cause), duplicated. */
  messages: { sent: number; lost: number; duplicated: number };
  /** Reads answered from L1 and from the store, per `mode/phase`. */
  hits: HitCounts;
  /**
   * Polaris-style: for each probe offset X (ms), how many ok distributed writes had no
   * node still able to serve an older version X ms after the write completed.
   */
  polaris: { offsetsMs: number[]; consistent: number[]; writes: number };
  /** Sum of the nodes' counters at the end. */
  node: Record<string, number>;
  /** Sum of the nodes' validator figures (crashed incarnations included), when it ran. */
  validator?: Record<string, number>;
  /**
   * The forger's messages (acks among them), and those the nodes refused for want of a
   * signature; `undefined` without a forger.
   */
  forger?: { sent: number; acks: number; refused: number };
  /**
   * EP, propagation once faults stop: the run's bounds; the Polaris probes of the eventual
   * writes that completed in the fault-free phase; and how long after the faults stopped
   * some node last held, ready to serve, an entry older than a write completed before
   * (sampled every 10 ms; `null` if none was seen at all).
   */
  propagation: {
    boundMs: number;
    healBoundMs: number;
    liveness: { offsetsMs: number[]; consistent: number[]; writes: number };
    healLatencyMs: number | null;
  };
}

/** The outcome of a simulated run (before checking). */
export interface SimRun {
  /** The seed the run was drawn from. */
  readonly seed: number;
  /** The options it ran with. */
  readonly options: SimOptions;
  /** What the nodes ran: the drift bound, each node's configuration, the keys. */
  readonly shape: ClusterShape;
  /** The fault rates drawn for it. */
  readonly mix: FaultMix;
  /** The faults it injected, in order. */
  readonly schedule: readonly Fault[];
  /** The client operations it recorded. */
  readonly history: History;
  /** What it counted. */
  readonly stats: SimStats;
  /** A hash of every processed event: equal for equal runs. */
  readonly traceHash: string;
  /** Every processed event, if asked for (`trace`); else `undefined`. */
  readonly trace: readonly TraceEvent[] | undefined;
}

const POLARIS_OFFSETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
/**
 * The fault-free delay bound of EP: delays are exponential, so 20 means are exceeded by one
 * message in e^20 (about 5 × 10^8).
 */
const DELAY_MEANS_MAX = 20;
/** How often the fault-free phase samples what every node could serve (EP). */
const SAMPLE_EVERY_MS = 10;
const COORD_LATENCY_MEAN_MS = 0.3;
const COORD_TIMEOUT_MS = 50;
/** The TTL of simulated leases: the shortest allowed, so leases lapse within a run. */
const SIM_LEASE_TTL_MS = 1000;
/** Leases granted most recently: keep-alives and attaching writes pick among them. */
const LEASE_WINDOW = 4;

/** A node of the cache scenario: a process running a NodeCore, and its client workload. */
interface SimNode extends SimProcess<NodeCore> {
  inflight: number;
  readonly ops: Map<number, HistoryOpDraft>;
  readonly leaseOps: Map<number, LeaseOpDraft>;
  readonly clearOps: Map<number, ClearOpDraft>;
  /** Local time each key's L1 value was asked (for SL2 ages): key → local ms. */
  readonly askedAt: Map<string, number>;
  /** Core ops of the update and transaction workloads in flight: op → its callback. */
  readonly opCallbacks: Map<number, (result: OpResult | WarpError) => void>;
  /** With clears: true time of the latest store call of each key (CL's `fetchedByMs`). */
  readonly fetchedBy: Map<string, number>;
}

interface ClearOpDraft {
  id: number;
  process: string;
  ns: string;
  invokeMs: number;
  completeMs: number | null;
  outcome: Outcome;
}

interface HistoryOpDraft {
  id: number;
  process: string;
  key: string;
  kind: HistoryOp["kind"];
  value?: unknown;
  found?: boolean;
  version?: number;
  source?: "l1" | "store";
  ageMs?: number;
  fetchedByMs?: number;
  invokeMs: number;
  completeMs: number | null;
  outcome: Outcome;
  probe?: boolean;
  leases?: string[];
}

interface LeaseOpDraft {
  id: number;
  process: string;
  kind: LeaseOp["kind"];
  lease: string;
  invokeMs: number;
  completeMs: number | null;
  outcome: Outcome;
  error?: string;
}

/** Error codes after which a write certainly did not happen; others leave it unknown. */
const DEFINITE_FAILURES = new Set([
  "UNREGISTERED_KEY",
  "COORDINATOR_UNAVAILABLE",
  "CONTENDED",
  "LIMIT_EXCEEDED",
  "STORE_CONFLICT",
]);

/**
 * A simulated cluster. Create it with options, {@linkcode SimCluster.run} it once.
 *
 * @example
 * ```ts
 * import { SimCluster } from "./cluster.ts";
 * const run = new SimCluster({ seed: 7, nodes: 3, safetyMs: 300, livenessMs: 300 }).run();
 * console.log(run.history.ops.length > 0); // true
 * ```
 */
export class SimCluster {
  readonly #options: SimOptions;
  readonly #shape: ClusterShape;
  readonly #nodes: SimNode[] = [];
  readonly #timeline: Timeline;
  readonly #mix: FaultMix;
  readonly #schedule: readonly Fault[];
  readonly #workload: Prng;
  readonly #host: ProcessHost<NodeCore, SimNode>;
  readonly #network: SimNetwork<Message>;
  readonly #forger: Forger | undefined;
  /** Whether the nodes authenticate bus messages (they share a secret the forger may lack). */
  readonly #authenticates: boolean;
  #forgeriesRefused = 0;
  readonly #store: SimStore;
  readonly #coordinator: SimCoordinator<CoordRecord>;
  readonly #loaders: LoaderWorkload<SimNode> | undefined;
  /** How old a stale coordinator read may be, ms (what the built-in nodes assume). */
  readonly #staleMaxMs: number;
  readonly #leasing: boolean;
  readonly #leasePool: string[] = [];
  readonly #leaseOps: LeaseOpDraft[] = [];
  readonly #clearing: boolean;
  readonly #clearOps: ClearOpDraft[] = [];
  readonly #leaseLog = new Map<
    string,
    { ttlMs: number; activeWritesMs: number[]; revokedAtMs: number | null }
  >();
  #leaseSeq = 0;
  readonly #keys: SimKey[];
  readonly #keyInfo: Record<string, KeyInfo> = {};
  /** Strong-local keys by owner and slot. */
  readonly #localKeys = new Map<string, string>();
  readonly #ops: HistoryOpDraft[] = [];
  readonly #storeLog: StoreLogEntry[] = [];
  readonly #l1Samples: L1Sample[] = [];
  /** Per eventual key, the newest version of a write completed ok before the faults stopped. */
  #preHealNewest: Map<string, number> | undefined;
  readonly #trace: TraceEvent[] | undefined;
  readonly #stats: SimStats;
  readonly #n: number;
  readonly #safetyMs: number;
  readonly #endMs: number;
  #nextOp = 1;
  #issuing = true;
  /** The update workload (M1), when on; its keys. */
  readonly #updates: SimUpdates<SimNode> | undefined;
  readonly #updateKeys: readonly string[];
  /** The keys transactions write (eventual- and strong-distributed, not leased), when on. */
  readonly #txnKeys: readonly string[];
  /** Whether transactions take 2–3 keys of both distributed modes. */
  readonly #strongTxns: boolean;
  /** The transactions of the history (T1), when on. */
  readonly #transactions: TransactionRecord[] = [];
  /** The validators' verdicts and installs (V1), when they run. */
  readonly #validator: ValidatorLog | undefined;
  /** Writes behind Warp's back, when on. */
  readonly #backdoor: Backdoor | undefined;

  /** Prepares a run; nothing happens until {@linkcode run}. */
  constructor(options: SimOptions) {
    if (!Number.isInteger(options.seed)) throw new TypeError(`Invalid seed: ${options.seed}`);
    this.#options = options;
    this.#n = options.nodes ?? 5;
    // Up to 128: the many-node cost table (bench/sessions.ts) runs 100.
    if (!Number.isInteger(this.#n) || this.#n < 1 || this.#n > 128) {
      throw new RangeError(`nodes must be 1 to 128: ${this.#n}`);
    }
    this.#safetyMs = options.safetyMs ?? 2000;
    this.#endMs = this.#safetyMs + (options.livenessMs ?? 1000);
    const seed = options.seed >>> 0;
    this.#timeline = new Timeline(this.#safetyMs);
    this.#workload = new Prng(deriveSeed(seed, "workload"));
    const faults = options.faults ?? "swarm";
    if (typeof faults === "string") {
      const drawn = drawFaults(seed, faults, this.#n, this.#safetyMs, options.classicSwarm);
      this.#mix = drawn.mix;
      this.#schedule = drawn.schedule;
    } else {
      this.#mix = faults.mix;
      this.#schedule = faults.schedule;
    }
    this.#trace = options.trace ? [] : undefined;
    this.#clearing = options.clears === true || options.canary === "clear-ignored";
    this.#leasing = options.leases === true ||
      (options.canary !== undefined && LEASE_CANARIES.includes(options.canary));
    this.#shape = this.#drawShape(seed);
    if (options.canary === "lease-staleness-ignored") {
      // Reads are often stale, as stale as the bound allows; the nodes assume they never are.
      this.#mix = { ...this.#mix, coordStaleRate: 0.5, coordStaleMaxMs: Infinity };
    }
    this.#staleMaxMs = this.#staleBoundMs();
    this.#keys = [...this.#shape.keys];
    if (this.#keys.length === 0) {
      throw new RangeError(`The configuration leaves the workload no key: modes ${options.modes}`);
    }
    const canaried = this.#canaryFaults(options.canary);
    if (canaried !== undefined) this.#schedule = [...this.#schedule, ...canaried];
    this.#stats = {
      events: 0,
      simMs: 0,
      ops: 0,
      messages: { sent: 0, lost: 0, duplicated: 0 },
      hits: {},
      polaris: {
        offsetsMs: POLARIS_OFFSETS_MS,
        consistent: POLARIS_OFFSETS_MS.map(() => 0),
        writes: 0,
      },
      node: {},
      propagation: {
        ...this.#propagationBounds(),
        liveness: {
          offsetsMs: POLARIS_OFFSETS_MS,
          consistent: POLARIS_OFFSETS_MS.map(() => 0),
          writes: 0,
        },
        healLatencyMs: null,
      },
    };
    const lww = options.canary === "wall-clock-lww";
    const updating = options.updates === true || options.canary === "reducer-reads-l1" ||
      options.canary === "failed-update-cached" || lww;
    const lastWriterWins = lww || options.lastWriterWins === true;
    this.#updateKeys = !updating || options.config !== undefined
      ? []
      : (options.modes ?? ["eventual-distributed", "strong-distributed"]).flatMap((mode) =>
        mode === "strong-local"
          ? []
          : [...UPDATE_KEYS[mode], ...(lastWriterWins ? LWW_KEYS[mode] : [])]
      );
    this.#defineKeys();
    this.#strongTxns = options.strongTransactions === true ||
      TRANSACTION_CANARIES.includes(options.canary);
    this.#txnKeys = options.transactions === true || this.#strongTxns
      ? this.#keys.filter((k) => {
        const mode = this.#keyInfo[k.key]?.mode;
        return !k.leased &&
          (mode === "eventual-distributed" || (this.#strongTxns && mode === "strong-distributed"));
      }).map((k) => k.key)
      : [];
    this.#updates = this.#updateKeys.length === 0 ? undefined : new SimUpdates<SimNode>(
      this.#updateHost(),
      new Prng(deriveSeed(seed, "updates")),
      options.canary,
    );
    const power = options.canary === "forger-has-secret"
      ? "snooping"
      : options.canary === "unbound-acks"
      ? "blind"
      : options.forger;
    this.#authenticates = power === "snooping";
    this.#forger = power === undefined ? undefined : new Forger(
      this.#timeline,
      new Prng(deriveSeed(seed, "forger")),
      {
        nodes: this.#n,
        id: (i) => this.#nodes[i]!.id,
        incarnation: (i) => this.#nodes[i]!.incarnation,
        keys: this.#keys.map((k) => k.key),
        deliver: (to, message, signed) => this.#forged(to, message, signed),
      },
      power,
      options.canary === "forger-has-secret",
    );
    // The network's stream also draws the coordinator's hops and stale reads.
    const net = new Prng(deriveSeed(seed, "network"));
    const validator = options.validator === true || options.backdoor === true ||
        options.canary === "unconditional-heal" || options.canary === "count-within-bound"
      ? new ValidatorLog(() => this.#now, (node) => this.#local(node as SimNode))
      : undefined;
    this.#validator = validator;
    this.#backdoor = options.backdoor !== true ? undefined : new Backdoor({
      now: () => this.#now,
      at: (atMs, run) => this.#at(atMs, run),
      issuing: () => this.#issuing,
      nodes: this.#n,
      read: (index, key) => {
        const node = this.#nodes[index]!;
        const core = node.core;
        this.#host.whenRunning(node, core, () => {
          const id = this.#nextOp++;
          node.opCallbacks.set(id, () => {});
          this.#host.step(node, core!, (c) => c.get(id, key, this.#local(node)));
        });
      },
      writeStore: (key, value) => {
        const result = this.#store.write(key, value, undefined);
        if (!result.ok) throw new Error(`Unconditional store write failed: ${key}`);
        this.#logStoreWrite(key, result.version, value);
        return result.version;
      },
    }, new Prng(deriveSeed(seed, "backdoor")));
    this.#host = new ProcessHost(this.#timeline, {
      timerJitterMs: this.#mix.timerJitterMs,
      perform: (node, core, effect) => this.#perform(node, core, effect),
      traceFault: (text) => this.#traceFault(text),
      ...(validator !== undefined &&
        { afterStep: (node: SimNode, core: NodeCore) => validator.drain(node, core) }),
    });
    this.#network = new SimNetwork<Message>(this.#timeline, {
      nodes: this.#n,
      prng: net,
      mix: this.#mix,
      counts: this.#stats.messages,
      receive: (from, to, message) => this.#receive(this.#nodes[to]!, from, message),
      ...(this.#forger !== undefined && {
        tap: (from: number, to: number, message: Message) =>
          this.#forger!.observe(from, to, message),
      }),
      ...(this.#trace !== undefined && {
        traceSend: (from, to, message, deliverAt, why) =>
          this.#traceSend(from, to, message, deliverAt, why),
      }),
    });
    this.#store = new SimStore(
      this.#timeline,
      this.#n,
      new Prng(deriveSeed(seed, "store")),
      this.#mix,
    );
    this.#coordinator = new SimCoordinator<CoordRecord>(this.#timeline, {
      nodes: this.#n,
      prng: net,
      latencyMeanMs: COORD_LATENCY_MEAN_MS,
      timeoutMs: COORD_TIMEOUT_MS,
      // The hops stay far below the timeout: only a call a fault lost times out.
      timeout: "when-lost",
      hopDraws: "at-send",
      staleRate: this.#mix.coordStaleRate ?? 0,
      staleMaxMs: this.#staleMaxMs,
      replyLossRate: this.#mix.coordReplyLossRate ?? 0,
      forgetsExpired: options.canary !== "lease-ttl-ignored",
    });
    this.#loaders = this.#makeLoaders();
    const maxDrift = this.#shape.maxDriftPpm / 1e6;
    // Half the drifting clocks sit at the bound, fast or slow: the legal worst case, where a
    // dropped drift factor shows (its own stream, so the classic draws stay as they were).
    const extremes = new Prng(deriveSeed(seed, "drift-extremes"));
    for (let i = 0; i < this.#n; i++) {
      const prng = new Prng(deriveSeed(seed, `node-${i}`));
      const clock = drawNodeClock(
        prng,
        { ...this.#mix, maxDriftPpm: this.#shape.maxDriftPpm },
        (drawn) => {
          let drift = drawn;
          if (!options.classicSwarm && extremes.chance(0.5)) drift = Math.sign(drift) * maxDrift;
          if (options.canary === "drift-beyond-bound" && i === 0) drift = -0.5; // 500 000 ppm slow
          // The drift canaries need the legal worst case: the silent node's clock slowest,
          // the writers' fastest, each at the bound.
          if (options.canary === "staleness-without-drift" && i === 0) drift = -maxDrift;
          if (
            options.canary === "lease-wait-without-drift" ||
            options.canary === "session-wait-without-drift"
          ) drift = i === 0 ? -maxDrift : maxDrift;
          return drift;
        },
      );
      this.#nodes.push({
        ...processFields<NodeCore>(i, prng, clock),
        inflight: 0,
        ops: new Map(),
        leaseOps: new Map(),
        clearOps: new Map(),
        askedAt: new Map(),
        fetchedBy: new Map(),
        opCallbacks: new Map(),
      });
    }
  }

  /** Runs the whole scenario: safety phase, liveness phase, quiescence, probes. */
  run(): SimRun {
    for (const node of this.#nodes) this.#start(node);
    this.#forger?.start();
    for (const fault of this.#schedule) this.#at(fault.atMs, () => this.#inject(fault));
    for (const node of this.#nodes) this.#scheduleClient(node);
    this.#loaders?.start();
    this.#backdoor?.start();
    for (const op of this.#options.clientOps ?? []) {
      const node = this.#nodes[op.node];
      if (node === undefined || !this.#keyInfo[op.key]) {
        throw new RangeError(`Scripted op names an unknown node or key: ${JSON.stringify(op)}`);
      }
      this.#at(op.atMs, () => {
        if (this.#issuing && node.core !== undefined && node.pausedUntil <= this.#now) {
          this.#issue(node, op.key, 0, false, op.kind);
        }
      });
    }
    this.#at(this.#safetyMs, () => this.#heal());
    this.#at(this.#safetyMs + SAMPLE_EVERY_MS, () => this.#sampleFaultFree());
    this.#at(this.#endMs, () => {
      this.#issuing = false;
    });
    // After writes stop and the longest protocol timer has run out, every node must serve
    // the newest version of every key (E4). A timer of d ms on a node's clock takes up to
    // d / (1 − drift) of true time.
    const longestMs = longestTimerMs(this.#shape, true) / (1 - this.#shape.maxDriftPpm / 1e6);
    const probeAt = this.#endMs + longestMs + 50;
    this.#at(probeAt, () => this.#probe());
    const horizon = probeAt + longestMs + 100;
    this.#timeline.runUntil(horizon);
    return this.#result(horizon);
  }

  #at(at: number, run: () => void): void {
    this.#timeline.at(at, run);
  }

  /** The current true time. */
  get #now(): number {
    return this.#timeline.now;
  }

  /** What the node's clock reads now. */
  #local(node: SimNode): number {
    return this.#host.local(node);
  }

  // ------------------------------------------------------------------ nodes

  /** The drift bound and what each node runs: the user's configuration, or the built-in one. */
  #drawShape(seed: number): ClusterShape {
    const options = this.#options;
    const modes = options.modes ?? ["strong-local", "eventual-distributed", "strong-distributed"];
    if (options.config !== undefined) {
      return userShape(options.config, {
        nodes: this.#n,
        leasing: this.#leasing,
        modes,
        ...(options.maxDriftPpm !== undefined && { maxDriftPpm: options.maxDriftPpm }),
      });
    }
    // Its own stream: the drift bound and the nodes' configurations change no other draw.
    const prng = new Prng(deriveSeed(seed, "config"));
    // The session-wait canary needs the widest legal drift: the factor it drops is worth
    // sessionMs × drift.
    const maxDriftPpm = options.maxDriftPpm ??
      (options.canary === "session-wait-without-drift" ? 100_000 : drawDriftPpm(prng));
    const mixed = options.canary === "trust-own-lease-check" ||
      (options.nodeConfigs ?? (prng.chance(0.5) ? "mixed" : "default")) === "mixed";
    const shape = builtInShape(prng, {
      nodes: this.#n,
      modes,
      keysPerMode: options.keysPerMode ?? 3,
      leasing: this.#leasing,
      maxDriftPpm,
      mixed,
      // Under the simulator's 300 ms, entries age out about as soon as EP's heal bound
      // (~200 ms) ends: losing the flush rules shows only with a longer staleness bound,
      // here the library's default.
      ...((options.policy !== undefined || options.canary === "flush-rules-off") && {
        policy: {
          ...(options.canary === "flush-rules-off" && { maxStalenessMs: 1000 }),
          ...options.policy,
        },
      }),
      ...(options.heartbeatIntervalMs !== undefined &&
        { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      ...(options.gapTimeoutMs !== undefined && { gapTimeoutMs: options.gapTimeoutMs }),
      ...(options.echoesMax !== undefined && { echoesMax: options.echoesMax }),
      ...(options.sessionMs !== undefined && { sessionMs: options.sessionMs }),
      ...(options.canary === "complete-without-session" && { sessionMs: 1500 }),
      ...(options.canary === "session-wait-without-drift" && { sessionMs: 1000 }),
    });
    if (options.canary !== "trust-own-lease-check") return shape;
    // The broken node checks leases for longer than anyone else, as a mixed cluster may.
    const nodes = [...shape.nodes];
    const longest = Math.max(...nodes.slice(1).map((n) => n.leaseCheckMs ?? 1000));
    nodes[0] = { ...nodes[0]!, leaseCheckMs: Math.min(4 * longest, 1000) };
    return { ...shape, nodes };
  }

  #start(node: SimNode): void {
    const config = this.#shape.nodes[node.index]!;
    const canary = this.#options.canary;
    const core = this.#host.start(node, (incarnation) => {
      const core = new NodeCore({
        ...coreOptions(config),
        // Built-in nodes assume the run's staleness bound (as they assume its drift bound);
        // the canary assumes reads are never stale.
        ...(this.#options.config === undefined &&
          { coordinatorStalenessMs: canary === "lease-staleness-ignored" ? 0 : this.#staleMaxMs }),
        nodeId: node.id,
        incarnation,
        ...((node.index === 0 || EVERY_NODE_CANARIES.includes(canary!)) && this.#coreCanary()),
        // A user's configuration runs its own validator settings; built-in shapes the sim's.
        ...(this.#validator !== undefined && { validator: config.validator ?? SIM_VALIDATOR }),
      });
      if (this.#validator !== undefined) core.observe("protocol");
      for (const [pattern, options] of Object.entries(config.keys ?? {})) {
        core.register(pattern, options);
      }
      this.#loaders?.register(core);
      this.#backdoor?.register(core);
      return core;
    });
    node.askedAt.clear();
    node.fetchedBy.clear();
    this.#host.step(node, core, (c) => c.tick(this.#local(node)));
  }

  /** Delivers `input` to the node's core now, or when its pause ends. */
  #deliver(node: SimNode, input: (core: NodeCore) => void): void {
    this.#host.deliver(node, node.core, input);
  }

  #perform(node: SimNode, core: NodeCore, effect: EffectOf<NodeCore>): void {
    switch (effect.type) {
      case "broadcast":
        for (const target of this.#nodes) {
          this.#network.send(node.index, target.index, effect.message);
        }
        return;
      case "send": {
        const target = this.#nodes.find((n) => n.id === effect.to);
        if (target !== undefined) this.#network.send(node.index, target.index, effect.message);
        return;
      }
      case "store-get":
        this.#storeCall(node, core, () => {
          const cell = this.#store.cell(effect.key);
          const leased = cell?.value as { v: unknown; leases: string[] } | undefined;
          if (cell?.found && isLeased(leased)) {
            // A value written with leases: the store record carries them.
            return {
              ok: true as const,
              found: true,
              value: leased.v,
              version: cell.version,
              sizeBytes: 16,
              leases: leased.leases,
            };
          }
          return {
            ok: true as const,
            found: cell?.found ?? false,
            value: cell?.value,
            version: cell?.version ?? 0,
            sizeBytes: 16,
          };
        }, (result) => {
          const deliver = () => core.onStoreRead(effect.io, result, this.#local(node));
          if (effect.origin === "validator" && this.#validator !== undefined) {
            this.#validator.answer(node, core, effect.key, deliver);
          } else deliver();
        });
        if (this.#isLocal(effect.key)) node.askedAt.set(effect.key, this.#local(node));
        if (this.#clearing) node.fetchedBy.set(effect.key, this.#now);
        return;
      case "store-write":
        this.#storeCall(node, core, () => {
          const result = this.#store.write(effect.key, effect.payload, effect.expectedVersion);
          if (result.ok) this.#logStoreWrite(effect.key, result.version, effect.payload);
          return result;
        }, (result) => core.onStoreWrite(effect.io, result, this.#local(node)));
        if (this.#isLocal(effect.key)) node.askedAt.set(effect.key, this.#local(node));
        if (this.#clearing) node.fetchedBy.set(effect.key, this.#now);
        return;
      case "coord-get":
        this.#coordCall(
          node,
          core,
          () => this.#coordinator.get(effect.key),
          (result) => core.onCoordRead(effect.io, result, this.#local(node)),
        );
        return;
      case "coord-put":
        this.#coordCall(
          node,
          core,
          () => {
            const { key, record } = effect;
            const result = this.#coordinator.put(key, record, effect.revision, effect.ttlMs);
            if (result.ok && key.startsWith("lease/") && "lease" in record) {
              this.#logLeaseWrite(key.slice("lease/".length), record);
            }
            return result;
          },
          (result) => core.onCoordWrite(effect.io, result, this.#local(node)),
          "coord-write",
        );
        return;
      case "load":
      case "load-abort":
        this.#loaders?.perform(node, core, effect);
        return;
      case "resolve":
      case "reject": {
        const update = node.opCallbacks.get(effect.op);
        if (update === undefined) break;
        node.opCallbacks.delete(effect.op);
        update(effect.type === "resolve" ? effect.result : effect.error);
        return;
      }
    }
    switch (effect.type) {
      case "resolve":
        if (node.leaseOps.has(effect.op)) this.#leaseDone(node, effect.op, undefined);
        else if (node.clearOps.has(effect.op)) this.#clearDone(node, effect.op, undefined);
        else if (this.#loaders?.owns(effect.op)) {
          this.#loaders.resolve(node, effect.op, effect.result);
        } else this.#complete(node, effect.op, effect.result);
        return;
      case "reject":
        if (node.leaseOps.has(effect.op)) this.#leaseDone(node, effect.op, effect.error);
        else if (node.clearOps.has(effect.op)) this.#clearDone(node, effect.op, effect.error);
        else if (this.#loaders?.owns(effect.op)) this.#loaders.reject(node, effect.op);
        else this.#fail(node, effect.op, effect.error);
        return;
    }
  }

  /**
   * How old a stale coordinator read may be: the drawn figure, within what the nodes assume
   * (`coordinatorStalenessMs`, below half of every `leaseCheckMs`). A user's configuration
   * assumes its own bound (0 unless it says: then no read is stale).
   */
  #staleBoundMs(): number {
    const drawn = this.#mix.coordStaleMaxMs ?? 0;
    const bounds = this.#options.config !== undefined
      ? this.#shape.nodes.map((n) => n.coordinatorStalenessMs ?? 0)
      : this.#shape.nodes.map((n) => (n.leaseCheckMs ?? 1000) / 2 - 1);
    return Math.max(0, Math.min(drawn, ...bounds));
  }

  #logLeaseWrite(id: string, record: LeaseRecord): void {
    let log = this.#leaseLog.get(id);
    if (log === undefined) {
      log = { ttlMs: SIM_LEASE_TTL_MS, activeWritesMs: [], revokedAtMs: null };
      this.#leaseLog.set(id, log);
    }
    if (record.lease === "active") log.activeWritesMs.push(this.#now);
    else log.revokedAtMs ??= this.#now;
  }

  /** Logs a write the store applied, with the value a read returns (E1s). */
  #logStoreWrite(key: string, version: number, payload: unknown, tx?: number): void {
    const entry: { -readonly [K in keyof StoreLogEntry]: StoreLogEntry[K] } = {
      key,
      version,
      atMs: this.#now,
      ...(tx !== undefined && { tx }),
    };
    const leased = payload as { v: unknown; leases: string[] } | undefined;
    if (payload === undefined) entry.deleted = true;
    else if (isLeased(leased)) {
      entry.value = leased.v;
      entry.leases = leased.leases;
    } else entry.value = payload;
    this.#storeLog.push(entry);
  }

  /** A store call from `node`; its answer is an input to the node's core. */
  #storeCall<R>(
    node: SimNode,
    core: NodeCore,
    apply: () => R,
    answer: (r: R | StoreFailure) => void,
  ): void {
    this.#host.calling(node, "store-call");
    this.#store.call(node.index, apply, (r) => this.#host.deliver(node, core, () => answer(r)));
  }

  /** A coordinator call from `node`; its answer is an input to the node's core. */
  #coordCall<R>(
    node: SimNode,
    core: NodeCore,
    apply: () => R,
    answer: (r: R | CoordFailure) => void,
    call: "coord-call" | "coord-write" = "coord-call",
  ): void {
    this.#host.calling(node, call);
    this.#coordinator.call(
      node.index,
      apply,
      (r) => this.#host.deliver(node, core, () => answer(r)),
    );
  }

  // ------------------------------------------------------------------ network

  #receive(node: SimNode, from: number, message: Message): void {
    if (this.#options.canary === "ignore-invalidations" && node.index === 0 && from !== 0) {
      // A broken node: it drops invalidations but acknowledges revocations it never applied.
      if (message.t === "revoke") {
        this.#network.send(0, from, {
          t: "ack",
          from: node.id,
          inc: node.incarnation,
          id: message.id,
          key: message.key,
          to: message.inc,
          nonce: message.nonce,
        });
      }
      if (message.t === "revoke" || message.t === "inv" || message.t === "drop") return;
    }
    this.#deliver(node, (core) => {
      this.#loaders?.delivering(node, message);
      core.onMessage(message, this.#local(node));
    });
  }

  /** A forged message for node `to`: dropped if the nodes authenticate and it is unsigned. */
  #forged(to: number, message: Message, signed: boolean): void {
    if (this.#authenticates && !signed) {
      this.#forgeriesRefused++;
      return;
    }
    this.#receive(this.#nodes[to]!, -1, message);
  }

  #traceSend(
    from: number,
    to: number,
    message: Message,
    deliverAt: number | null,
    why?: string,
  ): void {
    if (this.#trace === undefined || message.t === "hb") return;
    const key = "key" in message ? ` ${message.key}` : "";
    const version = message.t === "inv" ? ` v${message.version}` : "";
    this.#trace.push({
      t: this.#now,
      type: "send",
      from,
      to,
      msg: `${message.t}${key}${version}`,
      deliverAt,
      ...(why !== undefined && { why }),
    });
  }

  // ------------------------------------------------------------------ faults

  #inject(fault: Fault): void {
    const timeline = this.#timeline;
    if (!timeline.faultsOn) return;
    this.#traceFault(describeFault(fault));
    switch (fault.kind) {
      case "partition":
        this.#network.partition(fault.links, fault.durationMs);
        return;
      case "clog":
        this.#network.clog(fault.from, fault.to, fault.extraMs, fault.durationMs);
        return;
      case "bus-outage":
        this.#network.busOutage(fault.node, fault.durationMs);
        return;
      case "coord-outage":
        this.#coordinator.outage(fault.node, fault.durationMs);
        return;
      case "crash":
        this.#crash(this.#nodes[fault.node]!);
        timeline.undoAfter(fault.downMs, () => this.#restart(this.#nodes[fault.node]!));
        return;
      case "pause": {
        const node = this.#nodes[fault.node]!;
        if (fault.after !== undefined) this.#host.armPause(node, fault.after, fault.durationMs);
        else this.#host.pause(node, fault.durationMs);
        return;
      }
      case "store-spike":
        this.#store.spike(fault.node, fault.extraMeanMs, fault.durationMs);
        this.#loaders?.source.spike(fault.node, fault.extraMeanMs, fault.durationMs);
        return;
      case "clock-step": {
        // A clock that jumps is an unbounded rate, beyond the drift bound every lease needs;
        // Warp's runtime measures durations on a monotonic clock, which never steps. Steps
        // run only as the "clock-step" canary, which must be caught.
        if (this.#options.canary !== "clock-step") {
          this.#traceFault("(clock step skipped: outside the drift assumption)");
          return;
        }
        const node = this.#nodes[fault.node]!;
        node.clock.step(fault.stepMs); // forward only: the runtime's clock is monotonic
        if (node.core !== undefined) this.#deliver(node, (c) => c.tick(this.#local(node)));
        return;
      }
    }
  }

  #crash(node: SimNode): void {
    if (node.core === undefined) return;
    this.#validator?.add(node.core);
    this.#host.crash(node);
    node.inflight = 0;
    node.ops.clear(); // their outcome stays unknown
    node.leaseOps.clear();
    node.clearOps.clear();
    node.opCallbacks.clear();
    this.#loaders?.crashed(node);
  }

  #restart(node: SimNode): void {
    if (node.core === undefined) {
      this.#traceFault(`restart ${node.id}`);
      this.#start(node);
    }
  }

  /** End of the safety phase: every fault stops, every node runs. */
  #heal(): void {
    this.#timeline.endFaults();
    this.#network.heal();
    this.#coordinator.heal();
    this.#store.heal();
    this.#loaders?.source.heal();
    for (const node of this.#nodes) {
      this.#host.resume(node);
      this.#restart(node);
    }
    this.#traceFault("heal: faults off, liveness phase");
  }

  #traceFault(text: string): void {
    this.#trace?.push({ t: this.#now, type: "fault", text });
  }

  #canaryFaults(canary: CanaryName | undefined): Fault[] | undefined {
    const s = this.#options.safetyMs ?? 2000;
    switch (canary) {
      case "drift-beyond-bound":
      case "ignore-invalidations":
      case "revoke-without-wait":
      case "lease-wait-without-drift":
      case "trust-own-lease-check":
        // Node 0 is cut off from the bus for a while: writers must wait out its leases.
        return [{ kind: "bus-outage", atMs: s * 0.2, node: 0, durationMs: s * 0.5 }];
      case "no-staleness-bound":
      case "staleness-without-drift":
        return [{ kind: "bus-outage", atMs: s * 0.2, node: 0, durationMs: s * 0.6 }];
      case "session-wait-without-drift":
        // Node 0 (a holder, slowest clock) stops answering revokes, then loses the
        // coordinator too, just after a renewal: writers (fastest) that posted their notices
        // after that renewal must wait out its session, at the widest drift.
        return [
          { kind: "bus-outage", atMs: s * 0.2, node: 0, durationMs: s * 0.6 },
          { kind: "coord-outage", atMs: s * 0.3, node: 0, durationMs: s * 0.5 },
        ];
      case "session-from-answer":
        // Node 0 stops just as its next coordinator call (a renewal, mostly) takes effect,
        // and comes back to its answer long after: writers meanwhile waited out its session.
        return [
          { kind: "pause", atMs: s * 0.2, node: 0, durationMs: s * 0.3, after: "coord-write" },
          { kind: "pause", atMs: s * 0.6, node: 0, durationMs: s * 0.2, after: "coord-write" },
        ];
      case "trust-heartbeat-arrival": {
        // Everything node 0 sends arrives 1.2 s late: its old heartbeats keep coming while
        // its invalidations are still on their way.
        return Array.from({ length: this.#n - 1 }, (_, i) => ({
          kind: "clog" as const,
          atMs: s * 0.2,
          durationMs: s * 0.6,
          from: 0,
          to: i + 1,
          extraMs: 1200,
        }));
      }
      case "complete-without-session":
        // From just after the first joins, node 0 neither reaches the coordinator nor hears
        // anyone: it learns of no member that joined after it, and (sessions of 1.5 s) keeps
        // believing in its first session, while they write without being taken in.
        return [
          { kind: "coord-outage", atMs: 3, node: 0, durationMs: s * 0.7 },
          {
            kind: "partition",
            atMs: 3,
            durationMs: s * 0.7,
            links: Array.from({ length: this.#n - 1 }, (_, i) => [i + 1, 0] as const),
            label: "one-way to n0",
          },
        ];
      case "flush-rules-off":
        // Every node misses every invalidation until just before the faults stop: the gaps
        // they must notice and flush are still open when the fault-free phase begins.
        return Array.from({ length: this.#n }, (_, node) => ({
          kind: "bus-outage" as const,
          atMs: s * 0.4,
          node,
          durationMs: s * 0.6 - 1,
        }));
      case "clock-step": {
        // While node 0 cannot hear revocations, the other nodes' clocks keep jumping ahead:
        // a writer waiting out node 0's lease believes it has run out too early.
        // Node 0 also loses the coordinator, so a writer must wait out its session.
        const faults: Fault[] = [
          { kind: "bus-outage", atMs: s * 0.2, node: 0, durationMs: s * 0.5 },
          { kind: "coord-outage", atMs: s * 0.2, node: 0, durationMs: s * 0.5 },
        ];
        for (let t = s * 0.2; t < s * 0.7; t += 20) {
          for (let node = 1; node < this.#n; node++) {
            faults.push({ kind: "clock-step", atMs: t, node, stepMs: this.#strongLeaseMs() / 4 });
          }
        }
        return faults;
      }
      default:
        return undefined;
    }
  }

  /** The loader-backed workload, unless the run replays classic seeds or a user's configuration. */
  #makeLoaders(): LoaderWorkload<SimNode> | undefined {
    const options = this.#options;
    const canary = options.canary;
    const on = options.loaders ??
      (canary !== undefined && LOADER_CANARIES.includes(canary)
        ? true
        : options.classicSwarm !== true && options.config === undefined);
    if (!on) return undefined;
    return new LoaderWorkload<SimNode>({
      seed: options.seed >>> 0,
      nodes: this.#n,
      modes: options.modes ?? ["strong-local", "eventual-distributed", "strong-distributed"],
      keysPerMode: 2,
      safetyMs: this.#safetyMs,
      endMs: this.#endMs,
      opsPerSecondPerNode: (options.opsPerSecondPerNode ?? 200) / 2,
      mix: this.#mix,
      inflightPerNode: options.inflightPerNode ?? 4,
      ...(canary !== undefined && LOADER_CANARIES.includes(canary) &&
        { canary: canary as LoaderCanary }),
    }, {
      timeline: this.#timeline,
      host: this.#host,
      nodes: this.#nodes,
      hits: this.#stats.hits,
      local: (node) => this.#local(node),
      issuing: () => this.#issuing,
      counted: () => this.#stats.ops++,
    });
  }

  #coreCanary(): { canary: Canary } | undefined {
    const flag = CORE_CANARY_FLAGS[this.#options.canary!];
    return flag === undefined ? undefined : { canary: { [flag]: true } };
  }

  /** The `leaseMs` of strong keys (the same on every node). */
  #strongLeaseMs(): number {
    for (const options of Object.values(this.#shape.nodes[0]?.keys ?? {})) {
      if (options.mode === "strong-distributed") return options.leaseMs ?? 2000;
    }
    return 2000;
  }

  // ------------------------------------------------------------------ workload

  /** Each key's info for the history, from the policy each node resolves it to. */
  #defineKeys(): void {
    const registries = this.#shape.nodes.map((config) => {
      const registry = new Registry();
      for (const [pattern, options] of Object.entries(config.keys ?? {})) {
        registry.register(pattern, options);
      }
      return registry;
    });
    const ids = registries.map((_, i) => `n${i}`);
    // Update keys too: their reads and their updates' writes are ops of the history.
    for (const key of [...this.#keys, ...this.#updateKeys.map((k): SimKey => ({ key: k }))]) {
      this.#keyInfo[key.key] = keyInfo(key, keyPolicies(registries, key), ids);
      if (key.owner !== undefined) this.#localKeys.set(`${key.owner}/${key.slot}`, key.key);
    }
  }

  /** Whether `key` is strong-local (no messages, one node). */
  #isLocal(key: string): boolean {
    return this.#keyInfo[key]?.mode === "strong-local";
  }

  #scheduleClient(node: SimNode): void {
    const rate = this.#options.opsPerSecondPerNode ?? 200;
    if (rate <= 0) return;
    const next = this.#now + this.#workload.exp(1000 / rate);
    if (next >= this.#endMs) return;
    this.#at(next, () => {
      this.#clientOp(node);
      this.#scheduleClient(node);
    });
  }

  #clientOp(node: SimNode): void {
    const w = this.#workload;
    // Draw the operation whatever the node's state, so faults do not shift the workload.
    const picked = w.pick(this.#keys);
    const roll = w.float();
    const leaseRoll = this.#leasing ? w.float() : 1;
    const clearRoll = this.#clearing ? w.float() : 1;
    const updateRoll = this.#updates !== undefined ? w.float() : 1;
    const updateKey = this.#updates !== undefined ? w.pick(this.#updateKeys) : "";
    const txn = this.#txnKeys.length >= 2;
    const txnRoll = txn ? w.float() : 1;
    // Two or three keys, in the order drawn (the core claims strong ones in key order).
    const txnKeys = !txn
      ? []
      : this.#strongTxns
      ? [...new Set([w.pick(this.#txnKeys), w.pick(this.#txnKeys), w.pick(this.#txnKeys)])]
        .slice(0, w.float() < 0.5 ? 2 : 3)
      : [...new Set([w.pick(this.#txnKeys), w.pick(this.#txnKeys)])];
    if (!this.#issuing || node.core === undefined || node.pausedUntil > this.#now) return;
    if (node.inflight >= (this.#options.inflightPerNode ?? 4)) return;
    if (clearRoll < 0.02) {
      this.#issueClear(node, clearRoll / 0.02);
      return;
    }
    if (leaseRoll < 0.1) {
      this.#issueLeaseOp(node, leaseRoll / 0.1);
      return;
    }
    if (updateRoll < 0.3) {
      this.#issueUpdate(node, updateKey, updateRoll / 0.3);
      return;
    }
    if (txnRoll < (this.#strongTxns ? 0.05 : 0.1)) {
      this.#invoked(node, this.#nextOp, `transaction ${txnKeys.join(" ")}`);
      startTransaction(this.#transactionHost(), node, txnKeys);
      return;
    }
    if (picked.owner !== undefined && picked.owner !== node.index) {
      // Another node's strong-local key: use this node's own of the same slot, if any.
      const own = this.#localKeys.get(`${node.index}/${picked.slot}`);
      if (own !== undefined) this.#issue(node, own, roll);
      return;
    }
    this.#issue(node, picked.key, roll);
  }

  #issue(
    node: SimNode,
    key: string,
    roll: number,
    probe = false,
    forced?: HistoryOp["kind"],
  ): void {
    const core = node.core!;
    const id = this.#nextOp++;
    const reads = forced !== undefined ? 0.5 : this.#options.readShare ?? 0.75;
    const rest = (roll - reads) / (1 - reads); // of the rest: 80% write, 12% delete, 8% invalidate
    const kind: HistoryOp["kind"] = forced ??
      (roll < reads ? "read" : rest < 0.8 ? "write" : rest < 0.92 ? "delete" : "invalidate");
    const draft: HistoryOpDraft = {
      id,
      process: node.id,
      key,
      kind,
      invokeMs: this.#now,
      completeMs: null,
      outcome: "unknown",
    };
    if (probe) draft.probe = true;
    if (kind === "write") draft.value = `${node.id}-${id}`;
    let payload: unknown = draft.value;
    if (kind === "write" && this.#keyInfo[key]?.leased && this.#leasePool.length > 0) {
      // Most writes of a leased key attach one of the newest leases.
      const window = this.#leasePool.slice(-LEASE_WINDOW);
      if (this.#workload.float() < 0.8) {
        const lease = this.#workload.pick(window);
        draft.leases = [lease];
        payload = { v: draft.value, leases: [lease] };
      }
    }
    this.#ops.push(draft);
    node.ops.set(id, draft);
    this.#invoked(node, id, `${kind} ${key}${kind === "write" ? ` = ${draft.value}` : ""}`);
    const local = this.#local(node);
    this.#host.step(node, core, () => {
      switch (kind) {
        case "read":
          return core.get(id, key, local);
        case "write":
          return core.set(
            id,
            key,
            {
              value: draft.value,
              payload,
              sizeBytes: 16,
              ...(draft.leases !== undefined && { leases: draft.leases }),
            },
            local,
          );
        case "delete":
          return core.delete(id, key, local);
        case "invalidate":
          return core.invalidate(id, key, local);
      }
    });
  }

  #complete(node: SimNode, op: number, result: OpResult): void {
    const draft = node.ops.get(op);
    if (draft === undefined) return;
    node.ops.delete(op);
    node.inflight--;
    draft.completeMs = this.#now;
    draft.outcome = "ok";
    draft.version = result.version;
    if (draft.kind === "read") {
      draft.found = result.found;
      draft.value = result.found ? result.value : undefined;
      draft.source = result.source === "l1" ? "l1" : "store";
      if (draft.source === "l1" && this.#isLocal(draft.key)) {
        const askedAt = node.askedAt.get(draft.key);
        if (askedAt !== undefined) draft.ageMs = this.#local(node) - askedAt;
      }
      if (draft.source === "l1" && this.#clearing) {
        const fetchedBy = node.fetchedBy.get(draft.key);
        if (fetchedBy !== undefined) draft.fetchedByMs = fetchedBy;
      }
      const info = this.#keyInfo[draft.key]!;
      const phase = draft.invokeMs < this.#safetyMs ? "safety" : "liveness";
      const name = `${info.mode}${info.leased ? "+leases" : ""}/${phase}`;
      const bucket = (this.#stats.hits[name] ??= { l1: 0, store: 0 });
      bucket[draft.source]++;
    } else if (draft.kind !== "invalidate" && !this.#isLocal(draft.key)) {
      this.#polaris(draft.key, result.version);
    }
    this.#trace?.push({
      t: this.#now,
      type: "op",
      node: node.index,
      op,
      text: `ok ${draft.kind} ${draft.key} v${result.version}${
        draft.kind === "read" ? ` = ${String(draft.value)} from ${draft.source}` : ""
      }`,
    });
  }

  #fail(node: SimNode, op: number, error: WarpError): void {
    const draft = node.ops.get(op);
    if (draft === undefined) return;
    node.ops.delete(op);
    node.inflight--;
    draft.completeMs = this.#now;
    draft.outcome = draft.kind === "read" || DEFINITE_FAILURES.has(error.code) ? "fail" : "unknown";
    if (draft.outcome === "unknown") draft.completeMs = null;
    this.#trace?.push({
      t: this.#now,
      type: "op",
      node: node.index,
      op,
      text: `${error.code} ${draft.kind} ${draft.key}`,
    });
  }

  /**
   * A namespace clear: of the eventual keys (`ev`), or of this node's own strong-local
   * keys (`lc:nI`), whichever the workload has.
   */
  #issueClear(node: SimNode, roll: number): void {
    const namespaces = [
      ...(this.#keys.some((k) => k.key.startsWith("ev:")) ? ["ev"] : []),
      ...(this.#keys.some((k) => k.owner === node.index) ? [`lc:n${node.index}`] : []),
    ];
    if (namespaces.length === 0) return;
    const ns = namespaces[Math.min(namespaces.length - 1, Math.floor(roll * namespaces.length))]!;
    const core = node.core!;
    const id = this.#nextOp++;
    const draft: ClearOpDraft = {
      id,
      process: node.id,
      ns,
      invokeMs: this.#now,
      completeMs: null,
      outcome: "unknown",
    };
    this.#clearOps.push(draft);
    node.clearOps.set(id, draft);
    this.#invoked(node, id, `clear ${ns}`);
    const local = this.#local(node);
    this.#host.step(node, core, () => core.clear(id, ns, local));
  }

  #clearDone(node: SimNode, op: number, error: WarpError | undefined): void {
    const draft = node.clearOps.get(op)!;
    node.clearOps.delete(op);
    node.inflight--;
    draft.completeMs = this.#now;
    draft.outcome = error === undefined ? "ok" : "unknown";
    if (error !== undefined) draft.completeMs = null;
    this.#trace?.push({
      t: this.#now,
      type: "op",
      node: node.index,
      op,
      text: `${error === undefined ? "ok" : error.code} clear ${draft.ns}`,
    });
  }

  /**
   * On a key only updates write: an update (two in three), else a read whose answer is
   * not recorded (it fills L1, which a correct update never consults).
   */
  #issueUpdate(node: SimNode, key: string, roll: number): void {
    if (roll >= 2 / 3) {
      this.#issue(node, key, 0, false, "read");
      return;
    }
    const id = this.#nextOp++;
    this.#invoked(node, id, `update ${key}`);
    this.#updates!.start(node, key, id);
  }

  /** What the transaction workload does through this cluster. */
  #transactionHost(): TransactionHost<SimNode> {
    return {
      now: () => this.#now,
      nextOp: () => this.#nextOp++,
      record: (draft) => this.#ops.push(draft as HistoryOpDraft),
      recordTransaction: (tx) => this.#transactions.push(tx),
      isStrong: (key) => this.#keyInfo[key]?.mode === "strong-distributed",
      skipPrepare: this.#options.canary === "strong-tx-without-claim",
      prepare: (node, core, id, keys, done) => {
        node.opCallbacks.set(id, done);
        this.#host.step(
          node,
          core,
          () => core.prepareTransaction(id, keys.map((key) => ({ key })), this.#local(node)),
        );
      },
      finish: (node, core, id, outcome) =>
        this.#host.step(node, core, () => core.finishTransaction(id, outcome, this.#local(node))),
      commit: (node, core, tx, writes, answer) =>
        this.#storeCall(node, core, () => {
          // The canary: the store applies only the first write, and says it applied all.
          const half = this.#options.canary === "half-applied-transaction";
          const result = this.#store.transact(writes, half ? 1 : writes.length);
          if (result.ok) {
            result.versions.slice(0, result.applied).forEach((v, i) =>
              this.#logStoreWrite(writes[i]!.key, v, writes[i]!.payload, tx)
            );
          }
          return result;
        }, (result) =>
          answer(
            result.ok
              ? result.versions
              : result.error.code === "STORE_CONFLICT"
              ? "conflict"
              : undefined,
          )),
      committed: (node, core, id, key, version, done) => {
        if (this.#options.canary === "transaction-without-invalidation") {
          // The canary: answered once committed, its keys never invalidated anywhere.
          done({ found: false, value: undefined, version, source: "none" });
          return;
        }
        node.opCallbacks.set(id, done);
        const input = {
          value: undefined,
          payload: undefined,
          sizeBytes: 0,
          committedVersion: version,
        };
        this.#host.step(node, core, () => core.set(id, key, input, this.#local(node)));
      },
      ended: (node) => {
        node.inflight--;
      },
    };
  }

  /** What the update workload does through this cluster. */
  #updateHost(): UpdateHost<SimNode> {
    return {
      now: () => this.#now,
      local: (node) => this.#local(node),
      readStore: (node, core, key, answer) =>
        this.#storeCall(node, core, () => {
          const cell = this.#store.cell(key);
          return {
            ok: true as const,
            found: cell?.found ?? false,
            value: cell?.value,
            version: cell?.version ?? 0,
          };
        }, (result) => answer(result.ok ? result : undefined)),
      write: (node, core, key, value, expectedVersion, done) => {
        const id = this.#nextOp++;
        node.opCallbacks.set(id, done);
        const input = { value, payload: value, sizeBytes: 16, expectedVersion };
        this.#host.step(node, core, () => core.set(id, key, input, this.#local(node)));
      },
      after: (node, ms, run) => {
        const core = node.core;
        this.#at(this.#now + ms, () => {
          if (node.core === core) this.#host.whenRunning(node, core, run);
        });
      },
      definite: (code) => DEFINITE_FAILURES.has(code),
      recordWrite: (draft) => {
        const recorded = { ...draft, id: this.#nextOp++ } as HistoryOpDraft;
        this.#ops.push(recorded);
        return recorded;
      },
      ended: (node) => {
        node.inflight--;
      },
    };
  }

  /** A lease operation: grant a new lease, or keep alive or revoke a known one. */
  #issueLeaseOp(node: SimNode, roll: number): void {
    const core = node.core!;
    const w = this.#workload;
    let kind: LeaseOp["kind"] = roll < 0.3 ? "grant" : roll < 0.8 ? "keepalive" : "revoke";
    if (this.#leasePool.length === 0) kind = "grant";
    const lease = kind === "grant"
      ? makeLeaseId(SIM_LEASE_TTL_MS, `s${String(++this.#leaseSeq).padStart(7, "0")}`)
      : kind === "keepalive"
      ? w.pick(this.#leasePool.slice(-LEASE_WINDOW))
      : w.pick(this.#leasePool);
    const id = this.#nextOp++;
    const draft: LeaseOpDraft = {
      id,
      process: node.id,
      kind,
      lease,
      invokeMs: this.#now,
      completeMs: null,
      outcome: "unknown",
    };
    this.#leaseOps.push(draft);
    node.leaseOps.set(id, draft);
    this.#invoked(node, id, `${kind} lease ${lease}`);
    const local = this.#local(node);
    this.#host.step(node, core, () => {
      if (kind === "grant") core.grantLease(id, lease, local);
      else if (kind === "keepalive") core.keepAliveLease(id, lease, local);
      else core.revokeLease(id, lease, local);
    });
  }

  /** Counts client op `id` as in flight on `node`, and traces its invocation. */
  #invoked(node: SimNode, id: number, what: string): void {
    this.#stats.ops++;
    node.inflight++;
    this.#trace?.push({
      t: this.#now,
      type: "op",
      node: node.index,
      op: id,
      text: `invoke ${what}`,
    });
  }

  #leaseDone(node: SimNode, op: number, error: WarpError | undefined): void {
    const draft = node.leaseOps.get(op)!;
    node.leaseOps.delete(op);
    node.inflight--;
    draft.completeMs = this.#now;
    if (error === undefined) {
      draft.outcome = "ok";
      if (draft.kind === "grant") this.#leasePool.push(draft.lease);
    } else {
      draft.error = error.code;
      // A lease write whose answer did not come may still have landed.
      const maybe = error.code === "OUTCOME_UNKNOWN" || error.code === "COORDINATOR_UNAVAILABLE";
      draft.outcome = maybe ? "unknown" : "fail";
      if (maybe) draft.completeMs = null;
    }
    this.#trace?.push({
      t: this.#now,
      type: "op",
      node: node.index,
      op,
      text: `${error?.code ?? "ok"} ${draft.kind} lease ${draft.lease}`,
    });
  }

  /**
   * Probes, after a write of `key` at `version`, whether any node could still serve older;
   * an eventual write in the fault-free phase is also counted apart, and sampled at its
   * EP deadline.
   */
  #polaris(key: string, version: number): void {
    const counters = [this.#stats.polaris];
    if (!this.#timeline.faultsOn && this.#keyInfo[key]!.mode === "eventual-distributed") {
      counters.push(this.#stats.propagation.liveness);
      this.#at(this.#now + this.#stats.propagation.boundMs, () => this.#sampleL1(key));
    }
    for (const counter of counters) counter.writes++;
    POLARIS_OFFSETS_MS.forEach((offset, i) => {
      this.#at(this.#now + offset, () => {
        const stale = this.#nodes.some((node) => {
          const entry = node.core?.servable(key, this.#local(node));
          return entry !== undefined && entry.version < version;
        });
        if (!stale) { for (const counter of counters) counter.consistent[i]!++; }
      });
    });
  }

  /**
   * EP's bounds for this run. A write completed in the fault-free phase: its invalidation
   * is broadcast when it completes and arrives within the delay bound. A write completed
   * before: the writer's next heartbeat (one interval and a timer's jitter on a clock that
   * may run slow by the drift bound) arrives within the delay bound and opens a gap, whose
   * timer flushes one gap timeout (and jitter) later. Each gets 1 ms of margin.
   */
  #propagationBounds(): { boundMs: number; healBoundMs: number } {
    const slow = 1 - this.#shape.maxDriftPpm / 1e6;
    const delayMs = DELAY_MEANS_MAX * this.#mix.delayMeanMs;
    // Nodes may differ: the slowest heartbeat and the longest gap timeout bound the heal.
    const heartbeatMs = Math.max(...this.#shape.nodes.map((n) => n.heartbeatIntervalMs ?? 250));
    const gapMs = Math.max(...this.#shape.nodes.map((n) => n.gapTimeoutMs ?? 500));
    const timersMs = (heartbeatMs + gapMs) / slow;
    return {
      boundMs: delayMs + 1,
      healBoundMs: timersMs + 2 * this.#mix.timerJitterMs + delayMs + 1,
    };
  }

  /**
   * Records which nodes could serve an entry of `key` older than the store's newest version
   * (EP samples); returns the oldest such version, `Infinity` if none.
   */
  #sampleL1(key: string): number {
    const newest = this.#store.cell(key)?.version ?? 0;
    let oldest = Infinity;
    for (const node of this.#nodes) {
      const entry = node.core?.servable(key, this.#local(node));
      if (entry === undefined || entry.version >= newest) continue;
      this.#l1Samples.push({ atMs: this.#now, process: node.id, key, version: entry.version });
      oldest = Math.min(oldest, entry.version);
    }
    return oldest;
  }

  /** Every 10 ms of the fault-free phase: samples every eventual key on every node (EP). */
  #sampleFaultFree(): void {
    if (this.#preHealNewest === undefined) {
      this.#preHealNewest = new Map();
      for (const op of this.#ops) {
        if (op.outcome !== "ok" || (op.kind !== "write" && op.kind !== "delete")) continue;
        if (op.completeMs! >= this.#safetyMs) continue;
        if (this.#keyInfo[op.key]!.mode !== "eventual-distributed") continue;
        this.#preHealNewest.set(
          op.key,
          Math.max(this.#preHealNewest.get(op.key) ?? 0, op.version!),
        );
      }
    }
    const propagation = this.#stats.propagation;
    for (const [key, info] of Object.entries(this.#keyInfo)) {
      if (info.mode !== "eventual-distributed") continue;
      if (this.#sampleL1(key) < (this.#preHealNewest.get(key) ?? 0)) {
        propagation.healLatencyMs = this.#now - this.#safetyMs;
      }
    }
    if (this.#now + SAMPLE_EVERY_MS <= this.#endMs) {
      this.#at(this.#now + SAMPLE_EVERY_MS, () => this.#sampleFaultFree());
    }
  }

  #probe(): void {
    this.#trace?.push({ t: this.#now, type: "fault", text: "probe: every node reads every key" });
    for (const node of this.#nodes) {
      for (const key of this.#keys) {
        if ((key.owner ?? node.index) !== node.index || node.core === undefined) continue;
        this.#issue(node, key.key, 0, true);
      }
    }
  }

  // ------------------------------------------------------------------ result

  /** The run so far, after {@linkcode run} threw (an invariant broke in a node). */
  partial(): SimRun {
    return this.#result(this.#now);
  }

  #result(horizon: number): SimRun {
    this.#stats.events = this.#timeline.events;
    this.#stats.simMs = horizon;
    const sums: Record<string, number> = {};
    for (const node of this.#nodes) {
      for (const [k, v] of Object.entries(node.core?.stats ?? {})) sums[k] = (sums[k] ?? 0) + v;
    }
    this.#stats.node = sums;
    if (this.#validator !== undefined) {
      const totals = { ...this.#validator.totals };
      for (const node of this.#nodes) this.#validator.add(node.core, totals);
      this.#stats.validator = totals;
    }
    if (this.#forger !== undefined) {
      this.#stats.forger = { ...this.#forger.counts, refused: this.#forgeriesRefused };
    }
    const final: Record<string, { version: number; value: unknown }> = {};
    for (const { key } of this.#keys) {
      const cell = this.#store.cell(key);
      final[key] = { version: cell?.version ?? 0, value: cell?.found ? cell.value : null };
    }
    const ops: HistoryOp[] = this.#ops.map((d) => ({ ...d }));
    return {
      seed: this.#options.seed,
      options: this.#options,
      shape: this.#shape,
      mix: this.#mix,
      schedule: this.#schedule,
      history: {
        format: HISTORY_FORMAT,
        keys: this.#keyInfo,
        ops,
        final,
        storeLog: this.#storeLog,
        ...(this.#txnKeys.length > 0 && { transactions: this.#transactions }),
        propagation: {
          fromMs: this.#safetyMs,
          boundMs: this.#stats.propagation.boundMs,
          healBoundMs: this.#stats.propagation.healBoundMs,
          samples: this.#l1Samples,
        },
        maxDriftPpm: this.#shape.maxDriftPpm,
        ...(this.#clearing && { clears: this.#clearOps.map((d) => ({ ...d })) }),
        ...(this.#updates !== undefined && { updates: { ops: this.#updates.ops } }),
        ...(this.#loaders !== undefined && { loaders: this.#loaders.history() }),
        ...(this.#validator !== undefined &&
          {
            validator: {
              ...this.#validator.history(this.#stats.validator?.checked ?? 0),
              ...(this.#backdoor !== undefined && { keyBoundsMs: this.#backdoor.bounds() }),
            },
          }),
        ...(this.#leasing && {
          leases: {
            leaseCheckMs: Math.max(...this.#shape.nodes.map((n) => n.leaseCheckMs ?? 1000)),
            maxDriftPpm: this.#shape.maxDriftPpm,
            ops: this.#leaseOps.map((d) => ({ ...d })),
            records: Object.fromEntries(
              [...this.#leaseLog].map(([id, log]): [string, LeaseRecordLog] => [id, {
                ttlMs: log.ttlMs,
                activeWritesMs: [...log.activeWritesMs],
                revokedAtMs: log.revokedAtMs,
              }]),
            ),
          },
        }),
      },
      stats: this.#stats,
      traceHash: this.#timeline.hash,
      trace: this.#trace,
    };
  }
}

/** Whether a stored payload is a value with leases (`{ v, leases }`), not a plain value. */
function isLeased(payload: unknown): payload is { v: unknown; leases: string[] } {
  return typeof payload === "object" && payload !== null &&
    Array.isArray((payload as { leases?: unknown }).leases);
}

/** A fault in words, for timelines. */
export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case "partition":
      return `partition (${fault.label}) for ${fault.durationMs.toFixed(0)} ms`;
    case "clog":
      return `clog n${fault.from}→n${fault.to} +${fault.extraMs.toFixed(0)} ms for ${
        fault.durationMs.toFixed(0)
      } ms`;
    case "crash":
      return `crash n${fault.node} for ${fault.downMs.toFixed(0)} ms`;
    case "pause":
      return `pause n${fault.node} for ${fault.durationMs.toFixed(0)} ms${
        fault.after === undefined ? "" : ` at its next ${fault.after}`
      }`;
    case "clock-step":
      return `clock of n${fault.node} jumps +${fault.stepMs.toFixed(0)} ms`;
    case "bus-outage":
      return `bus outage at n${fault.node} for ${fault.durationMs.toFixed(0)} ms`;
    case "coord-outage":
      return `coordinator unreachable from n${fault.node} for ${fault.durationMs.toFixed(0)} ms`;
    case "store-spike":
      return `store calls of n${fault.node} +${fault.extraMeanMs.toFixed(0)} ms (mean) for ${
        fault.durationMs.toFixed(0)
      } ms`;
  }
}

export { CALM };
