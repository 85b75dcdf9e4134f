/**
 * Metrics of Warp nodes in the core's vocabulary: the {@linkcode WarpMetrics} interface a
 * node reports to (a no-op by default), and the catalogue of figures
 * ({@linkcode WARP_METRICS}) both adapters expose: OpenTelemetry (`@warp/warp/otel`) and
 * the Prometheus text format (`@warp/warp/prometheus`). Names follow OpenTelemetry's rules
 * under a `warp.` prefix; the Prometheus adapter derives its names from them
 * (`warp.requests` → `warp_requests_total`). A key is never an attribute: their number is
 * unbounded. The reference, with a dashboard query per figure, is `docs/metrics.md`.
 *
 * Design: pull, not push. Nearly every figure is a counter the node keeps anyway (its
 * `stats`); an adapter reads them when its reader collects, so a node that reports pays
 * nothing per read. Only durations are pushed (`recordOperation`), and only for operations
 * that reach the core (an L1 hit through `get` or `peek` is counted, not timed: timing it
 * would cost as much as the hit). Rejected: one counter call per event from inside the
 * read path — the cost would fall on every hit of every node, observed or not.
 *
 * @module
 */

/**
 * What a duration was spent on: a caller operation of a `Warp` node that reached the core,
 * or (`lock`) the wait of a `Locks.acquire` from its call to the grant.
 */
export type OperationName =
  | "read"
  | "load"
  | "write"
  | "delete"
  | "invalidate"
  | "lease"
  | "lock"
  | "other";

/** The plain counters the catalogue reads from a node's `stats` (`WarpStats` has them all). */
export type MetricsCounterName =
  | "hits"
  | "misses"
  | "staleAnswers"
  | "entries"
  | "bytes"
  | "evictions"
  | "entriesFlushed"
  | "staleFillsDiscarded"
  | "fillsNotCached"
  | "invalidationsApplied"
  | "malformedMessages"
  | "messagesDropped"
  | "gapsDetected"
  | "flushes"
  | "coordinatorReads"
  | "leaseWaits"
  | "leaseChecks"
  | "leaseDeadValues"
  | "sessionRenewals"
  | "sessionsLost"
  | "storeReads"
  | "storeWrites"
  | "loads"
  | "loadTimeouts"
  | "loadsOvertaken"
  | "refreshes"
  | "listenerErrors";

/** What the catalogue reads from a node's `stats`: a `WarpStats` is one. */
export type MetricsStats = Readonly<Record<MetricsCounterName, number>> & {
  /** Messages published, by type. */
  readonly messagesSentByType: Readonly<Record<MessageType, number>>;
  /** Messages received that decoded, by type. */
  readonly messagesReceivedByType: Readonly<Record<MessageType, number>>;
  /** Coordinator compare-and-sets by result. */
  readonly compareAndSets: CompareAndSetCounts;
  /** The background validator's checks by verdict (absent or zeros when it is off). */
  readonly validatorChecks?: Readonly<Record<ValidatorCheckResult, number>>;
  /**
   * The validator's checked keys, how many of them were consistent within 1 s, 10 s and
   * 60 s, and its heals (absent or zeros when it is off).
   */
  readonly validatorKeys?: Readonly<Record<ValidatorKeyCount, number>>;
};

/**
 * A count of the background validator's keys, as the `count` attribute of
 * `warp.validator.keys`: keys checked, of them those consistent within 1 s, 10 s and 60 s
 * of the check, and heals started.
 */
export type ValidatorKeyCount =
  | "checked"
  | "consistent_within_1s"
  | "consistent_within_10s"
  | "consistent_within_60s"
  | "healed";

/** Every {@linkcode ValidatorKeyCount}, in the order the metric reports them. */
const VALIDATOR_KEY_COUNTS: readonly ValidatorKeyCount[] = [
  "checked",
  "consistent_within_1s",
  "consistent_within_10s",
  "consistent_within_60s",
  "healed",
];

/** A background validator check's verdict, as the `verdict` attribute of `warp.validator.checks`. */
export type ValidatorCheckResult =
  | "consistent"
  | "older_within_bound"
  | "inconsistent"
  | "deleted_in_store"
  | "newer_than_store";

/** Every {@linkcode ValidatorCheckResult}, in the order the metric reports them. */
const VALIDATOR_RESULTS: readonly ValidatorCheckResult[] = [
  "consistent",
  "older_within_bound",
  "inconsistent",
  "deleted_in_store",
  "newer_than_store",
];

/** A node as metrics see it: its id and its counters, read at each collection. */
export interface MetricsSource {
  /** The node's id (the `node` attribute of every figure). */
  readonly nodeId: string;
  /** The node's counters now. */
  readonly stats: MetricsStats;
}

/**
 * Where a node reports its metrics. Give one to every node of a process
 * (`new Warp({ metrics })`, and `new Locks({ metrics })` for lock waits); a `Warp` adds
 * itself at construction and removes itself at `close`.
 */
export interface WarpMetrics {
  /** `node` starts reporting: read its `stats` at each collection, until `removeNode`. */
  addNode(node: MetricsSource): void;
  /** `node` closed: stop reading it. */
  removeNode(node: MetricsSource): void;
  /**
   * Node `nodeId` heard its own invalidation of `type` back from the bus `seconds` after it
   * published it (right after the store commit): the bus part of the invalidation lag,
   * measured on one clock.
   */
  recordInvalidationEcho(nodeId: string, type: "inv" | "drop", seconds: number): void;
  /** An operation of node `nodeId` completed (`ok`) or failed (`error`) after `seconds`. */
  recordOperation(
    nodeId: string,
    operation: OperationName,
    outcome: "ok" | "error",
    seconds: number,
  ): void;
}

/**
 * The default: reports nowhere. A node given it reads no clock for durations.
 *
 * @example
 * ```ts
 * import { noopMetrics } from "./metrics.ts";
 * import { MemoryStore, Warp } from "../mod.ts";
 * const warp = new Warp({ store: new MemoryStore(), metrics: noopMetrics });
 * await warp.close();
 * ```
 */
export const noopMetrics: WarpMetrics = Object.freeze({
  addNode() {},
  removeNode() {},
  recordInvalidationEcho() {},
  recordOperation() {},
});

/** One figure of the catalogue. */
export interface MetricDefinition {
  /** Its OpenTelemetry name, `warp.` first. */
  readonly name: string;
  /** `counter` (monotonic sum), `gauge` (a value now) or `histogram` (durations). */
  readonly kind: "counter" | "gauge" | "histogram";
  /** Its unit, UCUM as OpenTelemetry wants: `s`, `By`, or a count in braces. */
  readonly unit: string;
  /** What it counts. */
  readonly description: string;
  /** The attribute that splits it beyond `node`, if any. */
  readonly attribute?: string;
  /**
   * Its values in `stats`: one per attribute value (`undefined` when it has no attribute).
   * Histograms have none: they are recorded.
   */
  readonly read?: (stats: MetricsStats) => readonly (readonly [string | undefined, number])[];
}

/** The bucket bounds of every duration histogram, seconds: 100 µs to 10 s. */
export const DURATION_BUCKETS_S: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** The figures an invalidation counts under: its message types. */
const INVALIDATION_TYPES = ["inv", "drop", "clr", "revoke", "lrev"] as const;

const one = (value: number) => [[undefined, value] as const];

/** Every figure Warp reports, in the order of `docs/metrics.md`. */
export const WARP_METRICS: readonly MetricDefinition[] = [
  {
    name: "warp.requests",
    kind: "counter",
    unit: "{request}",
    description:
      "Reads by result: hit (answered from L1), miss (store or loader asked), stale (a miss answered by fail-safe)",
    attribute: "result",
    read: (s) => [["hit", s.hits], ["miss", s.misses - s.staleAnswers], ["stale", s.staleAnswers]],
  },
  {
    name: "warp.operation.duration",
    kind: "histogram",
    unit: "s",
    description:
      "Duration of operations that reached the core (an L1 hit by get or peek is not timed), and of lock waits",
  },
  {
    name: "warp.invalidation.echo_delay",
    kind: "histogram",
    unit: "s",
    description:
      "Time from publishing an invalidation (right after the store commit) until the writer hears it back from the bus: the bus part of the invalidation lag, on the writer's clock",
    attribute: "type",
  },
  {
    name: "warp.validator.checks",
    kind: "counter",
    unit: "{check}",
    description:
      "Background validator checks by verdict: consistent, older within the bound, inconsistent and deleted in store (a difference that outlasted its bound: counted once more, as found first older), newer than the store (a bug)",
    attribute: "verdict",
    read: (s) => VALIDATOR_RESULTS.map((v) => [v, s.validatorChecks?.[v] ?? 0] as const),
  },
  {
    name: "warp.validator.keys",
    kind: "counter",
    unit: "{key}",
    description:
      "Background validator keys: checked, of them consistent within 1 s, 10 s and 60 s of the check (divide by checked for Polaris's share), and heals started",
    attribute: "count",
    read: (s) => VALIDATOR_KEY_COUNTS.map((c) => [c, s.validatorKeys?.[c] ?? 0] as const),
  },
  {
    name: "warp.l1.entries",
    kind: "gauge",
    unit: "{entry}",
    description: "L1 entries held",
    read: (s) => one(s.entries),
  },
  {
    name: "warp.l1.size",
    kind: "gauge",
    unit: "By",
    description: "Approximate bytes of the L1 entries held",
    read: (s) => one(s.bytes),
  },
  {
    name: "warp.l1.evictions",
    kind: "counter",
    unit: "{entry}",
    description: "L1 entries removed to respect entriesMax and bytesMax (capacity) or by a flush",
    attribute: "reason",
    read: (s) => [["capacity", s.evictions], ["flush", s.entriesFlushed]],
  },
  {
    name: "warp.fills.rejected",
    kind: "counter",
    unit: "{fill}",
    description:
      "Store or loader answers not cached: older than a version already seen, or raced by an invalidation",
    attribute: "reason",
    read: (s) => [["older_version", s.staleFillsDiscarded], ["raced", s.fillsNotCached]],
  },
  {
    name: "warp.invalidations.sent",
    kind: "counter",
    unit: "{message}",
    description: "Invalidation messages published, by type (inv, drop, revoke, lrev)",
    attribute: "type",
    read: (s) => INVALIDATION_TYPES.map((t) => [t, s.messagesSentByType[t]] as const),
  },
  {
    name: "warp.invalidations.received",
    kind: "counter",
    unit: "{message}",
    description: "Invalidation messages received that decoded, by type",
    attribute: "type",
    read: (s) => INVALIDATION_TYPES.map((t) => [t, s.messagesReceivedByType[t]] as const),
  },
  {
    name: "warp.invalidations.applied",
    kind: "counter",
    unit: "{entry}",
    description: "L1 entries an invalidation, drop or revocation removed",
    read: (s) => one(s.invalidationsApplied),
  },
  {
    name: "warp.bus.messages.dropped",
    kind: "counter",
    unit: "{message}",
    description: "Bus messages not acted on: malformed (did not decode) or refused by the core",
    attribute: "reason",
    read: (s) => [
      ["malformed", s.malformedMessages],
      ["refused", s.messagesDropped - s.malformedMessages],
    ],
  },
  {
    name: "warp.gaps",
    kind: "counter",
    unit: "{gap}",
    description: "Gaps found in peers' invalidation sequences",
    read: (s) => one(s.gapsDetected),
  },
  {
    name: "warp.flushes",
    kind: "counter",
    unit: "{flush}",
    description: "Flushes of every eventual-distributed entry (gap, peer joined, session change)",
    read: (s) => one(s.flushes),
  },
  {
    name: "warp.coordinator.compare_and_sets",
    kind: "counter",
    unit: "{call}",
    description: "Coordinator compare-and-sets (create, update) by result: ok, conflict, error",
    attribute: "result",
    read: (s) => [
      ["ok", s.compareAndSets.ok],
      ["conflict", s.compareAndSets.conflict],
      ["error", s.compareAndSets.error],
    ],
  },
  {
    name: "warp.coordinator.reads",
    kind: "counter",
    unit: "{call}",
    description: "Coordinator reads",
    read: (s) => one(s.coordinatorReads),
  },
  {
    name: "warp.strong.lease_waits",
    kind: "counter",
    unit: "{write}",
    description: "Strong writes that waited out a silent holder's lease instead of its ack",
    read: (s) => one(s.leaseWaits),
  },
  {
    name: "warp.lease.checks",
    kind: "counter",
    unit: "{check}",
    description: "Coordinator reads of lease records (checks before serving attached values)",
    read: (s) => one(s.leaseChecks),
  },
  {
    name: "warp.lease.dead_values",
    kind: "counter",
    unit: "{read}",
    description: "Reads that found a value attached to a revoked or expired lease",
    read: (s) => one(s.leaseDeadValues),
  },
  {
    name: "warp.session.renewals",
    kind: "counter",
    unit: "{renewal}",
    description: "Successful renewals (and joins) of this node's session",
    read: (s) => one(s.sessionRenewals),
  },
  {
    name: "warp.session.losses",
    kind: "counter",
    unit: "{loss}",
    description: "Times this node found its session ended and dropped its distributed entries",
    read: (s) => one(s.sessionsLost),
  },
  {
    name: "warp.store.reads",
    kind: "counter",
    unit: "{call}",
    description: "Store reads",
    read: (s) => one(s.storeReads),
  },
  {
    name: "warp.store.writes",
    kind: "counter",
    unit: "{call}",
    description: "Store writes and deletes",
    read: (s) => one(s.storeWrites),
  },
  {
    name: "warp.loads",
    kind: "counter",
    unit: "{load}",
    description: "Loader calls started",
    read: (s) => one(s.loads),
  },
  {
    name: "warp.loads.timeouts",
    kind: "counter",
    unit: "{load}",
    description: "Loads aborted at their hard timeout",
    read: (s) => one(s.loadTimeouts),
  },
  {
    name: "warp.loads.overtaken",
    kind: "counter",
    unit: "{load}",
    description: "Loads discarded and started again because an invalidation overtook them",
    read: (s) => one(s.loadsOvertaken),
  },
  {
    name: "warp.refreshes",
    kind: "counter",
    unit: "{refresh}",
    description: "Background refreshes started by refresh-ahead",
    read: (s) => one(s.refreshes),
  },
  {
    name: "warp.listener.errors",
    kind: "counter",
    unit: "{call}",
    description: "Event listener or logger calls that threw (counted, never passed on)",
    read: (s) => one(s.listenerErrors),
  },
];

/**
 * The type of a bus message: `inv`, `drop`, `clr` (namespace clear), `hb` (heartbeat),
 * `revoke`, `ack`, `lrev` (the
 * `t` of the core's `Message`; the runtime's counting of `message.t` keeps the two in step).
 */
export type MessageType = "inv" | "drop" | "clr" | "hb" | "revoke" | "ack" | "lrev";

/** Compare-and-sets by result. */
export interface CompareAndSetCounts {
  /** Took effect. */
  readonly ok: number;
  /** Refused: the record had moved (another node won). */
  readonly conflict: number;
  /** Failed or timed out: the outcome is unknown to this node. */
  readonly error: number;
}

function byType(): Record<MessageType, number> {
  return { inv: 0, drop: 0, clr: 0, hb: 0, revoke: 0, ack: 0, lrev: 0 };
}

/**
 * The counters the runtime keeps beside the core's: messages by type, compare-and-sets
 * by result, coordinator reads. Private to the runtime; `stats` shows them.
 *
 * @example
 * ```ts
 * import { RuntimeCounters } from "./metrics.ts";
 * const counters = new RuntimeCounters();
 * counters.sent("inv");
 * counters.compareAndSet("conflict");
 * console.log(counters.snapshot().messagesSentByType.inv); // 1
 * ```
 */
export class RuntimeCounters {
  readonly #sent = byType();
  readonly #received = byType();
  readonly #cas = { ok: 0, conflict: 0, error: 0 };
  #coordinatorReads = 0;

  /** A message of `type` was published. */
  sent(type: MessageType): void {
    this.#sent[type]++;
  }

  /** A message of `type` was received and decoded. */
  received(type: MessageType): void {
    this.#received[type]++;
  }

  /** A compare-and-set ended with `result`. */
  compareAndSet(result: keyof CompareAndSetCounts): void {
    this.#cas[result]++;
  }

  /** A coordinator read was made. */
  coordinatorRead(): void {
    this.#coordinatorReads++;
  }

  /** A copy of the counters. */
  snapshot(): {
    messagesSentByType: Readonly<Record<MessageType, number>>;
    messagesReceivedByType: Readonly<Record<MessageType, number>>;
    compareAndSets: CompareAndSetCounts;
    coordinatorReads: number;
  } {
    return {
      messagesSentByType: { ...this.#sent },
      messagesReceivedByType: { ...this.#received },
      compareAndSets: { ...this.#cas },
      coordinatorReads: this.#coordinatorReads,
    };
  }
}
