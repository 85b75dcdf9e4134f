/**
 * What loader-backed keys, fail-safe and the TTL rules cost on the hot path: `NodeCore.hit`
 * on 1024 cached keys, side by side in one run with **today's** `NodeCore.hit` — the core
 * of the base commit (default: where this branch left `main`), exported with
 * `git archive` into a temporary folder and imported next to this one.
 *
 * Rows, each a fresh node with every key cached (installed as the API would), the same
 * keys read in the same order:
 * - `today`, two copies of its module, and `options off` (this branch, a store-backed
 *   strong-local key, no new option), two copies too: where a module's code lands moves a
 *   hit by more than the change, so the summary line compares the pair with the pair;
 * - `fail-safe, timeouts`: fail-safe, soft and hard timeouts and TTL jitter set (they act
 *   on misses and installs only);
 * - `loader-backed`: entries installed by loads;
 * - `refresh-ahead (not due)`: refresh-ahead on, the refresh point not reached: the hit
 *   makes the one comparison of before;
 * - `sliding TTL` and `access-frequency TTL`: the two rules that act on every hit, so the
 *   cost of a feature that is on.
 *
 * Timing: `rounds` rounds; in each, every row reads `hits` keys in a shuffled row order,
 * timed with `performance.now()`, and its time is divided by today's in the same round.
 * Per row: the median ns per hit, and the quartiles of that ratio. The rows that leave the
 * fast path on every hit are measured last, in a second table: once they have run, `hit`
 * has been compiled for their path too, which is what an application with such keys runs.
 * A timed assertion would only be flaky: this prints.
 *
 * Run: npx -y deno@2 task bench:hit-features [--base REF] [--rounds 200] [--hits 20000]
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
import { NodeCore } from "../src/core/node.ts";
import type { KeyOptions } from "../src/core/registry.ts";

const KEYS_COUNT = 1024;
const KEY_MASK = KEYS_COUNT - 1;
const HOUR_MS = 3_600_000;
const NOW_MS = 1000;

/** The part of a node the bench drives: both cores, today's and this branch's, have it. */
interface HitCore {
  register(pattern: string, options: KeyOptions): unknown;
  set(op: number, key: string, input: object, nowMs: number): void;
  get(op: number, key: string, nowMs: number): void;
  takeEffects(): { type: string; io?: number }[];
  onStoreWrite(io: number, result: { ok: true; version: number }, nowMs: number): void;
  hit(key: string, nowMs: number): { value: unknown } | undefined;
}

type CoreClass = new (config: { nodeId: string; incarnation: number }) => HitCore;

const { base: baseArg, rounds, hitsPerRound } = roundsAndHits({ rounds: 200, hits: 20_000 });

const keys = Array.from({ length: KEYS_COUNT }, (_, i) => `k:${i}`);

/**
 * A copy of `src/core` as of `ref` (`undefined`: this working tree), extracted into a
 * temporary folder and imported: a module of its own, with its own compiled code.
 */
async function coreCopy(ref: string | undefined): Promise<CoreClass> {
  const [module] = await importTreeCopy(ref, "src/core", ["src/core/node.ts"]);
  return module!.NodeCore as CoreClass;
}

/** A node of `Core` with every key cached: written through the store (store-backed). */
function storeBacked(Core: CoreClass, options: Partial<KeyOptions> = {}): HitCore {
  const core = new Core({ nodeId: "a", incarnation: 1 });
  core.register("k:*", { mode: "strong-local", ttlMs: HOUR_MS, ...options } as KeyOptions);
  for (const [i, key] of keys.entries()) {
    core.set(i + 1, key, { value: { id: i }, payload: "x", sizeBytes: 32 }, 0);
    const write = core.takeEffects().find((e) => e.type === "store-write")!;
    core.onStoreWrite(write.io!, { ok: true, version: 1 }, 0);
    core.takeEffects();
  }
  return core;
}

/** A node of this branch with every key loaded (loader-backed). */
function loaderBacked(): HitCore {
  const core = new NodeCore({ nodeId: "a", incarnation: 1 });
  core.register("k:*", { mode: "strong-local", origin: "loader", ttlMs: HOUR_MS });
  for (const [i, key] of keys.entries()) {
    core.get(i + 1, key, 0);
    const load = core.takeEffects().find((e) => e.type === "load")!;
    if (load.type !== "load") throw new Error("expected a load");
    core.onLoad(load.io, { ok: true, found: true, value: { id: i }, sizeBytes: 32 }, 0);
    core.takeEffects();
  }
  return core;
}

function checkHits(name: string, core: HitCore): void {
  for (const key of keys) {
    if (core.hit(key, NOW_MS) === undefined) throw new Error(`${name}: ${key} does not hit`);
  }
}

let sink = 0;
let next = 0;

/** Nanoseconds per hit of `core` over `hitsPerRound` hits. */
function timeHits(core: HitCore): number {
  const start = performance.now();
  for (let i = 0; i < hitsPerRound; i++) {
    if (core.hit(keys[next++ & KEY_MASK]!, NOW_MS) !== undefined) sink++;
  }
  return ((performance.now() - start) * 1e6) / hitsPerRound;
}

const base = await baseCommit(baseArg);
const commit = new TextDecoder().decode(await git("rev-parse", "--short", base)).trim();
// Two copies of each core: where a module's code lands, and how it is compiled, moves a
// hit by more than any change here (two copies of one source differ by up to 20 % on this
// machine), so today and this branch are compared copy pair against copy pair.
const Today = [await coreCopy(base), await coreCopy(base)];
const Branch = NodeCore as unknown as CoreClass;
const BranchCopy = await coreCopy(undefined);
const todayRow: [string, HitCore] = [`today (${commit}), copy 1`, storeBacked(Today[0]!)];
const offRow: [string, HitCore] = ["options off", storeBacked(Branch)];
// Part 1 first: no row here ever leaves hit's fast path, so hit's code is as an
// application without the every-hit rules would run it.
const fastRows: [string, HitCore][] = [
  todayRow,
  [`today (${commit}), copy 2`, storeBacked(Today[1]!)],
  offRow,
  ["options off, copy 2", storeBacked(BranchCopy)],
  [
    "fail-safe, timeouts, TTL jitter",
    storeBacked(Branch, {
      failSafeMaxMs: 60_000,
      softTimeoutMs: 50,
      hardTimeoutMs: 2000,
      ttlJitterRatio: 0.1,
    }),
  ],
  ["loader-backed", loaderBacked()],
  ["refresh-ahead (not due)", storeBacked(Branch, { refreshAheadRatio: 0.9 })],
];
for (const [name, core] of fastRows) checkHits(name, core);
console.log(
  `NodeCore.hit, ${KEYS_COUNT} keys, ${rounds} rounds × ${hitsPerRound} hits per row, base ${base}`,
);
const fast = await measureRounds(
  "1. the fast path: features off, or on but acting on misses only",
  fastRows,
  rounds,
  timeHits,
);
const pairRatios = fast[0]!.map((todayNs, round) =>
  (fast[2]![round]! + fast[3]![round]!) / (todayNs + fast[1]![round]!)
);
console.log(
  `options off (both copies) ÷ today (both copies), per round: p25 ${
    quantile(pairRatios, 0.25).toFixed(3)
  }  p50 ${quantile(pairRatios, 0.5).toFixed(3)}  p75 ${quantile(pairRatios, 0.75).toFixed(3)}`,
);

const everyHitRows: [string, HitCore][] = [
  todayRow,
  offRow,
  ["sliding TTL (every hit)", storeBacked(Branch, { sliding: true, maxAgeMs: 2 * HOUR_MS })],
  [
    "access-frequency TTL (every hit)",
    storeBacked(Branch, { ttlMinMs: HOUR_MS / 2, ttlMaxMs: 2 * HOUR_MS, hotHitGapMs: 1 }),
  ],
];
for (const [name, core] of everyHitRows) checkHits(name, core);
await measureRounds(
  "2. the rules that act on every hit, on (and what they cost the other keys)",
  everyHitRows,
  rounds,
  timeHits,
);
if (sink === 0) throw new Error("the benchmark read nothing");
