/**
 * What events, the logger and metrics cost on the L1-hit path of the API (`peek`, and
 * `get` awaited), side by side in one run with **today's** `Warp` — the `src/` of the base
 * commit (default: where this branch left `main`), exported with `git archive` into a
 * temporary folder and imported next to this one.
 *
 * Rows, each a fresh node with 1024 strong-local keys cached, read in the same order:
 * - `today`, two copies, and `nobody listens` (this branch, no listener, no logger, no
 *   metrics), two copies: where a module's code lands moves a hit by more than a change
 *   this small, so the summary compares the pair with the pair;
 * - `metrics (Prometheus)`: a node reporting to `PrometheusMetrics` (hits are counted by
 *   the core anyway, not timed);
 * - `a flush listener`: an observer exists, no read event is recorded;
 * - `a hit listener`: every hit records an event and calls the listener — the cost of a
 *   feature that is on.
 *
 * Timing: `rounds` rounds; in each, every row reads `hits` keys in a shuffled row order,
 * and its time is divided by today's (copy 1) in the same round. Per row: the median ns
 * per hit and the quartiles of that ratio. A timed assertion would only be flaky: this
 * prints.
 *
 * Run: npx -y deno@2 run --allow-read --allow-env --allow-run=git,tar --allow-write=/tmp
 *      bench/observe_hit_bench.ts [--base REF] [--rounds 100] [--hits 20000]
 *
 * @module
 */

import {
  baseCommit,
  git,
  importTreeCopy,
  measureRounds,
  quantile,
  roundsAndHits,
} from "./_compare.ts";
import { MemoryStore, Warp } from "../mod.ts";
import { PrometheusMetrics } from "../src/metrics/prometheus.ts";

const KEYS_COUNT = 1024;
const KEY_MASK = KEYS_COUNT - 1;
const HOUR_MS = 3_600_000;

/** The part of a node the bench drives: today's `Warp` and this branch's both have it. */
interface HitWarp {
  register(pattern: string, options: { mode: "strong-local"; ttlMs: number }): unknown;
  set(key: string, value: unknown): Promise<number>;
  peek(key: string): unknown;
  get(key: string): Promise<unknown>;
  close(): Promise<void>;
}

type WarpClass = new (options: Record<string, unknown>) => HitWarp;
type StoreClass = new () => unknown;

const { base: baseArg, rounds, hitsPerRound } = roundsAndHits({ rounds: 100, hits: 20_000 });

const keys = Array.from({ length: KEYS_COUNT }, (_, i) => `k:${i}`);

/** A copy of `src/` as of `ref` (`undefined`: this working tree), imported on its own. */
async function srcCopy(ref: string | undefined): Promise<[WarpClass, StoreClass]> {
  const [warp, store] = await importTreeCopy(ref, "src", ["src/warp.ts", "src/store/memory.ts"]);
  return [warp!.Warp as WarpClass, store!.MemoryStore as StoreClass];
}

/** A node of `Class` with every key cached, set up by `setup`. */
async function node(
  [Class, Store]: [WarpClass, StoreClass],
  options: Record<string, unknown> = {},
  setup: (warp: HitWarp) => void = () => {},
): Promise<HitWarp> {
  const warp = new Class({ store: new Store(), ...options });
  warp.register("k:*", { mode: "strong-local", ttlMs: HOUR_MS });
  setup(warp);
  for (const [i, key] of keys.entries()) await warp.set(key, { id: i });
  for (const key of keys) {
    if (warp.peek(key) === undefined) throw new Error(`${key} does not hit`);
  }
  return warp;
}

let sink = 0;
let next = 0;

function timePeeks(warp: HitWarp): number {
  const start = performance.now();
  for (let i = 0; i < hitsPerRound; i++) {
    if (warp.peek(keys[next++ & KEY_MASK]!) !== undefined) sink++;
  }
  return ((performance.now() - start) * 1e6) / hitsPerRound;
}

async function timeGets(warp: HitWarp): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < hitsPerRound; i++) {
    if (await warp.get(keys[next++ & KEY_MASK]!) !== undefined) sink++;
  }
  return ((performance.now() - start) * 1e6) / hitsPerRound;
}

/** Times `rows` with `time`, then the two copies of this tree against today's two. */
async function measure(
  title: string,
  rows: readonly [string, HitWarp][],
  time: (warp: HitWarp) => number | Promise<number>,
): Promise<void> {
  const times = await measureRounds(title, rows, rounds, time);
  const pair = times[0]!.map((todayNs, round) =>
    (times[2]![round]! + times[3]![round]!) / (todayNs + times[1]![round]!)
  );
  console.log(
    `nobody listens (both copies) ÷ today (both copies), per round: p25 ${
      quantile(pair, 0.25).toFixed(3)
    }  p50 ${quantile(pair, 0.5).toFixed(3)}  p75 ${quantile(pair, 0.75).toFixed(3)}`,
  );
}

const base = await baseCommit(baseArg);
const commit = new TextDecoder().decode(await git("rev-parse", "--short", base)).trim();
const today = [await srcCopy(base), await srcCopy(base)];
const branch: [WarpClass, StoreClass] = [
  Warp as unknown as WarpClass,
  MemoryStore as unknown as StoreClass,
];
const branchCopy = await srcCopy(undefined);
const rows: [string, HitWarp][] = [
  [`today (${commit}), copy 1`, await node(today[0]!)],
  [`today (${commit}), copy 2`, await node(today[1]!)],
  ["nobody listens", await node(branch)],
  ["nobody listens, copy 2", await node(branchCopy)],
  ["metrics (Prometheus)", await node(branch, { metrics: new PrometheusMetrics() })],
  ["a flush listener", await node(branch, {}, (w) => (w as Warp).on("flush", () => {}))],
  ["a hit listener", await node(branch, {}, (w) => (w as Warp).on("hit", () => sink++))],
];
console.log(
  `Warp L1 hits, ${KEYS_COUNT} keys, ${rounds} rounds × ${hitsPerRound} hits per row, base ${base}`,
);
await measure("1. peek (synchronous)", rows, timePeeks);
await measure("2. get (awaited)", rows, timeGets);
for (const [, warp] of rows) await warp.close();
if (sink === 0) throw new Error("the benchmark read nothing");
