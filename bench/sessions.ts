/**
 * Node sessions, measured in the simulator (fault-free, deterministic per seed):
 *
 * 1. **Hit ratio against the ceiling.** The workload of the sessions issue: 5 nodes,
 *    200 keys per mode, 95 % reads, 1000 operations a second per node, `ttlMs` 60 000,
 *    today's `maxStalenessMs` 1000 and `leaseMs` 2000, measured over 20 simulated seconds
 *    (the safety phase, cold start included). Side by side, per seed: Warp with sessions
 *    (`sessionMs` 2000, the library default, and 200, the simulator's), the ceiling
 *    (sessions off, both bounds raised to the TTL: entries live to their TTL or their
 *    invalidation) and today's rule (sessions off, today's bounds). Per mode: the L1 hit
 *    ratio, store reads per key per node per minute, and each session row's hit ratio as
 *    a ratio to the ceiling's in the same seed (target: ≥ 0.95); per row, coordinator calls
 *    per node per second. Medians over the seeds.
 * 2. **What sessions cost as the cluster grows.** 3 to 100 nodes, a light workload (10
 *    operations a second per node over 20 keys per mode), sessions on (2000 ms) and off,
 *    measured from 5 s to 20 s (after the joins): coordinator reads and writes (and lost
 *    compare-and-sets) per node per second, bus publishes and deliveries per node per
 *    second, bytes delivered per node per second, the mean heartbeat and sessions record
 *    size as sent and production-shaped (16-character ids, `Date.now()`-sized
 *    incarnations, counters of a node up for days), and the eventual keys' L1 hit ratio (it
 *    shows whether the heartbeats' freshness proofs keep up as the echoes are budgeted,
 *    `_echo_budget.ts`).
 *
 * Every node runs the library's timer defaults (`heartbeatIntervalMs` 250, `gapTimeoutMs`
 * 500, `maxDriftPpm` 500) and `writeTimeoutMs`/`readTimeoutMs` 5000; the simulator's
 * coordinator answers in 0.3 ms on average, the bus delivers in 0.3 ms, the store in 0.5 ms.
 * Counts come from `_core_meter.ts` (what the cores ask for, inside the window).
 *
 * Run: npx -y deno@2 task bench:sessions [--part hits|cost|all] [--seeds 7,8,9,10,11]
 *      [--nodes 3,6,12,25,50,100] (the cost table's cluster sizes) [--validator] (the hit
 *      runs with the background validator on every node, the simulator's heal settings:
 *      its store reads show in the store-read column)
 *
 * @module
 */

import { parseArgs } from "node:util";
import { SimCluster } from "../sim/cluster.ts";
import type { SimPolicy } from "../sim/cluster.ts";
import type { ConsistencyMode } from "../src/core/registry.ts";
import { meter } from "./_core_meter.ts";

const TTL_MS = 60_000;
const TODAY = { maxStalenessMs: 1000, leaseMs: 2000 } as const;
const TIMEOUTS = { writeTimeoutMs: 5000, readTimeoutMs: 5000 } as const;
const NODE_TIMERS = { heartbeatIntervalMs: 250, gapTimeoutMs: 500, maxDriftPpm: 500 } as const;
const MODES: readonly ConsistencyMode[] = [
  "eventual-distributed",
  "strong-distributed",
  "strong-local",
];
/** The simulator's key prefix of each mode. */
const PREFIX: Record<ConsistencyMode, string> = {
  "eventual-distributed": "ev",
  "strong-distributed": "st",
  "strong-local": "lc",
};

/** One configuration of the hit-ratio table. */
interface Variant {
  readonly name: string;
  readonly sessionMs: number;
  readonly policy: SimPolicy;
}

const HIT_VARIANTS: readonly Variant[] = [
  { name: "sessions, sessionMs 2000", sessionMs: 2000, policy: policy(TODAY) },
  { name: "sessions, sessionMs 200", sessionMs: 200, policy: policy(TODAY) },
  {
    name: "ceiling: no sessions, bounds = TTL",
    sessionMs: 0,
    policy: policy({ maxStalenessMs: TTL_MS, leaseMs: TTL_MS }),
  },
  { name: "today: no sessions, today's bounds", sessionMs: 0, policy: policy(TODAY) },
];
const CEILING = 2;

function policy(bounds: { maxStalenessMs: number; leaseMs: number }): SimPolicy {
  return { ttlMs: TTL_MS, ...bounds, ...TIMEOUTS };
}

/** What one run of the hit-ratio workload measured. */
interface HitRun {
  /** Per mode: L1 hit ratio of the safety phase's reads. */
  readonly hitRatio: Record<string, number>;
  /** Per mode: store reads per key per node per minute. */
  readonly storeReadsPerKeyMin: Record<string, number>;
  readonly coordPerNodeSec: number;
  readonly coordReadsPerNodeSec: number;
  readonly coordWritesPerNodeSec: number;
}

/** Whether the hit runs have the background validator on (`--validator`). */
let validatorOn = false;

function hitRun(seed: number, variant: Variant): HitRun {
  const nodes = 5, keysPerMode = 200, safetyMs = 20_000;
  const { result: run, tally } = meter(
    { fromMs: 0, toMs: safetyMs, nodes, encode: false },
    () =>
      new SimCluster({
        seed,
        nodes,
        faults: "none",
        nodeConfigs: "default",
        keysPerMode,
        readShare: 0.95,
        opsPerSecondPerNode: 1000,
        safetyMs,
        livenessMs: 1000,
        sessionMs: variant.sessionMs,
        policy: variant.policy,
        ...NODE_TIMERS,
        validator: validatorOn,
      }).run(),
  );
  const minutes = safetyMs / 60_000, seconds = safetyMs / 1000;
  const hitRatio: Record<string, number> = {}, storeReadsPerKeyMin: Record<string, number> = {};
  for (const mode of MODES) {
    const reads = run.stats.hits[`${mode}/safety`] ?? { l1: 0, store: 0 };
    hitRatio[mode] = reads.l1 / (reads.l1 + reads.store);
    storeReadsPerKeyMin[mode] = (tally.storeReads[PREFIX[mode]] ?? 0) /
      (keysPerMode * nodes * minutes);
  }
  const reads = sum(tally.coordReads), writes = sum(tally.coordWrites);
  return {
    hitRatio,
    storeReadsPerKeyMin,
    coordPerNodeSec: (reads + writes) / nodes / seconds,
    coordReadsPerNodeSec: reads / nodes / seconds,
    coordWritesPerNodeSec: writes / nodes / seconds,
  };
}

function hits(seeds: readonly number[]): void {
  const runs = HIT_VARIANTS.map((variant) => seeds.map((seed) => hitRun(seed, variant)));
  console.log(
    `\n### Hit ratio against the ceiling (medians of seeds ${seeds.join(", ")})\n\n` +
      "5 nodes, faults none, 200 keys per mode, 95 % reads, 1000 ops/s per node, ttlMs 60 000, " +
      "measured over the 20 s safety phase (cold start included).\n",
  );
  const header = ["mode", "row", "L1 hit ratio", "÷ ceiling", "store reads /key/node/min"];
  const lines: string[][] = [];
  for (const mode of MODES) {
    for (const [v, variant] of HIT_VARIANTS.entries()) {
      const mine = runs[v]!;
      const ratio = v === CEILING ? "1" : fixed(
        median(mine.map((r, s) => r.hitRatio[mode]! / runs[CEILING]![s]!.hitRatio[mode]!)),
        3,
      );
      lines.push([
        mode,
        variant.name,
        fixed(median(mine.map((r) => r.hitRatio[mode]!)), 3),
        ratio,
        fixed(median(mine.map((r) => r.storeReadsPerKeyMin[mode]!)), 2),
      ]);
    }
  }
  table(header, lines, 2);
  console.log();
  table(
    ["row", "coordinator calls /node/s", "reads", "writes"],
    HIT_VARIANTS.map((variant, v) => [
      variant.name,
      fixed(median(runs[v]!.map((r) => r.coordPerNodeSec)), 1),
      fixed(median(runs[v]!.map((r) => r.coordReadsPerNodeSec)), 1),
      fixed(median(runs[v]!.map((r) => r.coordWritesPerNodeSec)), 1),
    ]),
    1,
  );
}

/** What one run of the cost workload measured, per node per second unless named. */
interface CostRun {
  readonly sessionReads: number;
  readonly sessionWrites: number;
  /** Share of the sessions record's compare-and-sets that lost the race. */
  readonly renewalsLost: number;
  readonly holderReads: number;
  readonly holderWrites: number;
  readonly storeReads: number;
  readonly publishes: number;
  readonly deliveries: number;
  readonly kibDelivered: number;
  readonly kibDeliveredProduction: number;
  /** Bytes, per heartbeat and per sessions record written. */
  readonly heartbeat: number;
  readonly heartbeatProduction: number;
  readonly record: number;
  readonly recordProduction: number;
  /** L1 hit ratio of the eventual keys' reads (whole run). */
  readonly eventualHitRatio: number;
}

const COST_FROM_MS = 5000, COST_TO_MS = 20_000;

/** A row of the cost table: sessions on or off, and the nodes' echo budget. */
interface CostVariant {
  readonly name: string;
  readonly sessionMs: number;
  /** `echoesMax`; 256 echoes every peer (the behaviour before the budget). */
  readonly echoesMax?: number;
}

const COST_VARIANTS: readonly CostVariant[] = [
  { name: "2000 ms, every echo", sessionMs: 2000, echoesMax: 256 },
  { name: "2000 ms, ≤ 32 echoes", sessionMs: 2000 },
  { name: "off", sessionMs: 0 },
];

function costRun(seed: number, nodes: number, variant: CostVariant): CostRun {
  const { sessionMs } = variant;
  const { result: run, tally: t } = meter({
    fromMs: COST_FROM_MS,
    toMs: COST_TO_MS,
    nodes,
    encode: true,
  }, () =>
    new SimCluster({
      seed,
      nodes,
      faults: "none",
      nodeConfigs: "default",
      modes: ["eventual-distributed", "strong-distributed"],
      keysPerMode: 20,
      readShare: 0.95,
      opsPerSecondPerNode: 10,
      safetyMs: COST_TO_MS,
      livenessMs: 1000,
      sessionMs,
      policy: policy(TODAY),
      ...NODE_TIMERS,
      ...(variant.echoesMax !== undefined && { echoesMax: variant.echoesMax }),
    }).run());
  const perNodeSec = (x: number) => x / nodes / ((COST_TO_MS - COST_FROM_MS) / 1000);
  const recordWrites = t.coordWrites.sessions;
  return {
    sessionReads: perNodeSec(t.coordReads.sessions),
    sessionWrites: perNodeSec(recordWrites),
    renewalsLost: t.coordConflicts.sessions / recordWrites,
    holderReads: perNodeSec(t.coordReads.holder),
    holderWrites: perNodeSec(t.coordWrites.holder),
    storeReads: perNodeSec(sum(t.storeReads)),
    publishes: perNodeSec(t.publishes),
    deliveries: perNodeSec(t.deliveries),
    kibDelivered: perNodeSec(t.bytesDelivered) / 1024,
    kibDeliveredProduction: perNodeSec(t.bytesDeliveredProduction) / 1024,
    heartbeat: t.heartbeatBytes / t.heartbeats,
    heartbeatProduction: t.heartbeatBytesProduction / t.heartbeats,
    record: t.sessionsRecordBytes / recordWrites,
    recordProduction: t.sessionsRecordBytesProduction / recordWrites,
    eventualHitRatio: hitRatioOf(run.stats.hits, "eventual-distributed"),
  };
}

/** The L1 hit ratio of `mode`'s reads over every phase of a run. */
function hitRatioOf(
  hits: Record<string, { l1: number; store: number }>,
  mode: ConsistencyMode,
): number {
  let l1 = 0, store = 0;
  for (const [name, reads] of Object.entries(hits)) {
    if (!name.startsWith(`${mode}/`)) continue;
    l1 += reads.l1;
    store += reads.store;
  }
  return l1 / (l1 + store);
}

function cost(seeds: readonly number[], sizes: readonly number[]): void {
  console.log(
    `\n### Session cost as the cluster grows (medians of seeds ${seeds.join(", ")})\n\n` +
      "Faults none, every node started at 0 s; 10 ops/s per node over 20 eventual and 20 " +
      "strong-distributed keys, 95 % reads; measured from 5 s to 20 s. Per node per second; " +
      "a broadcast is one publish and N deliveries (its sender's too). Bytes as the simulator's " +
      "nodes send them / production-shaped.\n",
  );
  const lines: string[][] = [];
  for (const nodes of sizes) {
    for (const variant of COST_VARIANTS) {
      const runs = seeds.map((seed) => costRun(seed, nodes, variant));
      const m = (pick: (r: CostRun) => number, digits: number) =>
        fixed(median(runs.map(pick)), digits);
      const on = variant.sessionMs > 0;
      lines.push([
        String(nodes),
        variant.name,
        m((r) => r.sessionReads, 2),
        m((r) => r.sessionWrites, 2),
        on ? `${m((r) => 100 * r.renewalsLost, 1)} %` : "–",
        m((r) => r.holderReads, 2),
        m((r) => r.holderWrites, 2),
        m((r) => r.storeReads, 2),
        m((r) => r.publishes, 2),
        m((r) => r.deliveries, 1),
        `${m((r) => r.kibDelivered, 1)} / ${m((r) => r.kibDeliveredProduction, 1)}`,
        fixed(median(runs.map((r) => r.kibDeliveredProduction)) * nodes / 1024, 2),
        `${m((r) => r.heartbeat, 0)} / ${m((r) => r.heartbeatProduction, 0)}`,
        on ? `${m((r) => r.record, 0)} / ${m((r) => r.recordProduction, 0)}` : "–",
        m((r) => r.eventualHitRatio, 3),
      ]);
    }
  }
  table(
    [
      "nodes",
      "sessions",
      "sessions reads",
      "sessions writes",
      "of which lost",
      "holder reads",
      "holder writes",
      "store reads",
      "bus publishes",
      "bus deliveries",
      "KiB delivered",
      "cluster MiB/s",
      "heartbeat B",
      "sessions record B",
      "ev hit ratio",
    ],
    lines,
    2,
  );
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}

/** Prints a Markdown table: the first `textColumns` columns left-aligned, the rest right. */
function table(
  header: readonly string[],
  lines: readonly (readonly string[])[],
  textColumns: number,
): void {
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const left = (i: number) => i < textColumns;
  const row = (cells: readonly string[]) =>
    `| ${
      cells.map((c, i) => left(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(" | ")
    } |`;
  console.log(row(header));
  console.log(
    `| ${widths.map((w, i) => left(i) ? "-".repeat(w) : `${"-".repeat(w - 1)}:`).join(" | ")} |`,
  );
  for (const line of lines) console.log(row(line));
}

function main(): void {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      part: { type: "string", default: "all" },
      seeds: { type: "string", default: "7,8,9,10,11" },
      nodes: { type: "string", default: "3,6,12,25,50,100" },
      validator: { type: "boolean", default: false },
    },
  });
  validatorOn = values.validator;
  const seeds = values.seeds.split(",").map(Number);
  if (seeds.length === 0 || !seeds.every(Number.isInteger)) {
    throw new TypeError(`Invalid --seeds, expected integers separated by commas: ${values.seeds}`);
  }
  const sizes = values.nodes.split(",").map(Number);
  if (sizes.length === 0 || !sizes.every((n) => Number.isInteger(n) && n >= 1 && n <= 256)) {
    throw new TypeError(`Invalid --nodes, expected node counts from 1 to 256: ${values.nodes}`);
  }
  if (!["hits", "cost", "all"].includes(values.part)) {
    throw new TypeError(`Invalid --part, expected hits, cost or all: ${values.part}`);
  }
  if (values.part !== "cost") hits(seeds);
  if (values.part !== "hits") cost(seeds, sizes);
}

// A script, not a Deno.bench file: `deno bench bench/` imports it and must not run it.
if (import.meta.main) main();
