/**
 * Node sessions over real NATS and PostgreSQL: store reads with sessions against today's
 * rule (`sessionMs: 0`), three node processes each, under the same read-heavy load, in one
 * run.
 *
 * Each configuration gets its own cluster (`test/_process_cluster.ts`: its own table, KV
 * bucket and subject prefix) of three node processes (`test/_cluster_process.ts`) on the
 * shared NATS (bus and JetStream KV coordinator) and PostgreSQL. Every node runs the same
 * paced workload (the `workload` command, same seeds): `--keys` eventual-distributed keys
 * (`maxStalenessMs` 1000) and as many strong-distributed ones (`leaseMs` 2000), today's
 * default bounds, TTL 60 s, 95 % reads (the rest 80 % writes, 12 % deletes, 8 %
 * invalidations), `--ops-per-second` per node. Warp's timer defaults (heartbeat 250 ms,
 * gap timeout 500 ms); sessions at Warp's default `sessionMs` (2000).
 *
 * After `--warmup-s` (the cold misses), the nodes' counters are read, and again at the end
 * of `--window-s`: per second over the window, the cluster's store reads, L1 hits over
 * reads, coordinator calls (per node); from the recorded history, each mode's share of
 * reads answered from L1 in the window. The recorded history of each run is then checked
 * by the simulator's checkers (`--no-check` skips that). Prints the ratio sessions ÷ today
 * of store reads per second.
 *
 * ```sh
 * npx -y deno@2 run --allow-net=127.0.0.1 --allow-env --allow-run --allow-read --allow-sys \
 *   bench/nats_sessions.ts [--window-s 30] [--warmup-s 5] [--keys 200] [--ops-per-second 200]
 * ```
 *
 * Needs NATS with JetStream and PostgreSQL on 127.0.0.1 (`WARP_TEST_NATS_URL`,
 * `WARP_TEST_PG_URL` override them).
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { WarpStats } from "../mod.ts";
import { checkHistory, GUARANTEES } from "../sim/checkers/consistency.ts";
import type { History } from "../sim/history.ts";
import { ProcessCluster } from "../test/_process_cluster.ts";

const NODES = 3;
const TODAY = { stalenessMs: 1000, leaseMs: 2000 } as const;
/** Warp's timer defaults (the test harness's own are shorter). */
const TIMERS = { heartbeatMs: 250, gapTimeoutMs: 500, writeTimeoutMs: 5000 } as const;
const CONCURRENCY = 4;
const READ_SHARE = 0.95;

/** One configuration of the run. */
interface Variant {
  readonly name: string;
  /** Warp's `sessionMs`; `undefined`: its default. */
  readonly sessionMs: number | undefined;
}

const VARIANTS: readonly Variant[] = [
  { name: "today (sessionMs 0)", sessionMs: 0 },
  { name: "sessions (default)", sessionMs: undefined },
];

interface Settings {
  readonly windowMs: number;
  readonly warmupMs: number;
  readonly keys: number;
  readonly opsPerSecond: number;
  readonly check: boolean;
}

/** What one configuration measured over the window. */
interface Measured {
  readonly variant: Variant;
  readonly seconds: number;
  /** Operations completed per second, per node. */
  readonly opsPerNode: number;
  /** Store reads per second, the cluster's. */
  readonly storeReads: number;
  /** L1 hits ÷ (hits + misses), the cluster's counters. */
  readonly hitRatio: number;
  /** Per mode prefix: reads answered from L1 ÷ reads that succeeded, in the window. */
  readonly modeHits: Readonly<Record<string, number>>;
  /** Coordinator calls per second, per node. */
  readonly coordinatorCalls: number;
  /** Session renewals per second, per node. */
  readonly renewals: number;
  /** L1 hits past the age bound, under the freshness proof, per second per node. */
  readonly provenHits: number;
  /** The checkers' verdict on the history, or `undefined` if not checked. */
  readonly check: string | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sums a numeric counter of every node's stats. */
function total(stats: readonly WarpStats[], name: keyof WarpStats): number {
  return stats.reduce((sum, s) => sum + (s[name] as number), 0);
}

async function allStats(cluster: ProcessCluster): Promise<WarpStats[]> {
  return await Promise.all(cluster.nodes.map(async (n) => (await cluster.stats(n.id)).warp));
}

/** Per key prefix (`ev`, `st`): reads invoked in [fromMs, toMs) answered from L1, over ok reads. */
function modeHitRatios(history: History, fromMs: number, toMs: number): Record<string, number> {
  const counts = new Map<string, { l1: number; ok: number }>();
  for (const op of history.ops) {
    if (op.kind !== "read" || op.outcome !== "ok") continue;
    if (op.invokeMs < fromMs || op.invokeMs >= toMs) continue;
    const mode = op.key.split(":")[0]!;
    const count = counts.get(mode) ?? { l1: 0, ok: 0 };
    count.ok++;
    if (op.source === "l1") count.l1++;
    counts.set(mode, count);
  }
  return Object.fromEntries([...counts].map(([mode, c]) => [mode, c.l1 / c.ok]));
}

/** The checkers' verdict, one line: the violations or each guarantee's status. */
function verdict(history: History): string {
  const result = checkHistory(history);
  if (result.violations.length > 0) {
    return `${result.violations.length} violations: ` +
      result.violations.slice(0, 3).map((v) => `${v.guarantee} ${v.key}: ${v.message}`).join("; ");
  }
  const statuses = GUARANTEES.filter((g) => result.results[g] !== "skipped")
    .map((g) => `${g} ${result.results[g]}`);
  return `${history.ops.length} ops, no violation (${statuses.join(", ")})`;
}

async function measure(variant: Variant, settings: Settings): Promise<Measured> {
  const cluster = await ProcessCluster.start({
    size: NODES,
    ...TODAY,
    ...TIMERS,
    sessionMs: variant.sessionMs,
  });
  try {
    const durationMs = settings.warmupMs + settings.windowMs;
    const loads = cluster.nodes.map((node, i) =>
      cluster.workload(node.id, {
        durationMs,
        keys: settings.keys,
        modes: ["ev", "st"],
        readShare: READ_SHARE,
        concurrency: CONCURRENCY,
        opsPerSecond: settings.opsPerSecond,
        seed: 1000 + i,
      })
    );
    await sleep(settings.warmupMs);
    const fromMs = performance.timeOrigin + performance.now();
    const before = await allStats(cluster);
    await Promise.all(loads);
    const toMs = performance.timeOrigin + performance.now();
    const after = await allStats(cluster);
    const seconds = (toMs - fromMs) / 1000;
    const delta = (name: keyof WarpStats) => total(after, name) - total(before, name);
    const hits = delta("hits");
    const misses = delta("misses");
    const history = await cluster.history();
    const windowOps = history.ops.filter((op) =>
      op.completeMs !== null && op.completeMs >= fromMs && op.completeMs < toMs
    ).length;
    return {
      variant,
      seconds,
      opsPerNode: windowOps / seconds / NODES,
      storeReads: delta("storeReads") / seconds,
      hitRatio: hits / (hits + misses),
      modeHits: modeHitRatios(history, fromMs, toMs),
      coordinatorCalls: delta("coordinatorCalls") / seconds / NODES,
      renewals: delta("sessionRenewals") / seconds / NODES,
      provenHits: delta("provenHits") / seconds / NODES,
      check: settings.check ? verdict(history) : undefined,
    };
  } finally {
    await cluster.close();
  }
}

function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))
    .join("  ");
}

function positiveNumber(text: string, name: string, min: number): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value < min) {
    throw new RangeError(`Invalid --${name}, expected a number >= ${min}: ${text}`);
  }
  return value;
}

function parseSettings(): Settings {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      "window-s": { type: "string", default: "30" },
      "warmup-s": { type: "string", default: "5" },
      keys: { type: "string", default: "200" },
      "ops-per-second": { type: "string", default: "200" },
      "no-check": { type: "boolean", default: false },
    },
  });
  const keys = positiveNumber(values.keys, "keys", 1);
  if (!Number.isSafeInteger(keys)) throw new RangeError(`Invalid --keys: ${values.keys}`);
  return {
    windowMs: positiveNumber(values["window-s"], "window-s", 1) * 1000,
    warmupMs: positiveNumber(values["warmup-s"], "warmup-s", 0) * 1000,
    keys,
    opsPerSecond: positiveNumber(values["ops-per-second"], "ops-per-second", 1),
    check: !values["no-check"],
  };
}

async function main(): Promise<void> {
  const settings = parseSettings();
  const measured: Measured[] = [];
  for (const variant of VARIANTS) measured.push(await measure(variant, settings));

  console.log(
    `Sessions over NATS + PostgreSQL: ${NODES} node processes, ${settings.keys} eventual + ` +
      `${settings.keys} strong-distributed keys, ${READ_SHARE * 100} % reads, ` +
      `${settings.opsPerSecond} ops/s per node, TTL 60 s, staleness ${TODAY.stalenessMs} ms, ` +
      `lease ${TODAY.leaseMs} ms; ${settings.windowMs / 1000} s measured after ` +
      `${settings.warmupMs / 1000} s of warm-up\n`,
  );
  const widths = [20, 10, 12, 9, 9, 9, 12, 10, 12];
  console.log(row([
    "configuration",
    "ops/s/node",
    "store reads/s",
    "L1 hits",
    "ev hits",
    "st hits",
    "coord/s/node",
    "renew/s/n",
    "proven/s/n",
  ], widths));
  for (const m of measured) {
    console.log(row([
      m.variant.name,
      m.opsPerNode.toFixed(1),
      m.storeReads.toFixed(1),
      m.hitRatio.toFixed(3),
      (m.modeHits.ev ?? NaN).toFixed(3),
      (m.modeHits.st ?? NaN).toFixed(3),
      m.coordinatorCalls.toFixed(1),
      m.renewals.toFixed(2),
      m.provenHits.toFixed(1),
    ], widths));
  }
  const [today, sessions] = measured as [Measured, Measured];
  console.log(
    `\nstore reads/s, sessions ÷ today: ${(sessions.storeReads / today.storeReads).toFixed(3)}` +
      `; coordinator calls/s, sessions ÷ today: ` +
      `${(sessions.coordinatorCalls / today.coordinatorCalls).toFixed(3)}`,
  );
  for (const m of measured) {
    if (m.check !== undefined) console.log(`history, ${m.variant.name}: ${m.check}`);
  }
}

if (import.meta.main) await main();
