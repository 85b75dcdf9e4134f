/**
 * What the background validator costs:
 *
 * 1. **The read path**: an L1 hit (`peek`, and `get` awaited) on a node with the validator
 *    off, side by side in one run with nodes running it in `count` mode at its defaults and
 *    at a high rate (100 store reads/s, 50 samples/s). Rows: `off` twice (the pair shows
 *    the noise), `count, defaults`, `count, 100 reads/s`; each a fresh node with 1024
 *    strong-local keys cached, read in the same order. Timing as in `_compare.ts`:
 *    shuffled rounds, each row's time divided by the first row's in the same round;
 *    medians and quartiles printed. The validator's timers run between rounds: a check is
 *    a timer and a store read, never part of a hit.
 * 2. **Its store reads per second at the defaults**, on the pure core over virtual time
 *    (60 s, 1000 cached eventual keys, a peer's invalidations arriving at 0, 10, 100 and
 *    1000 a second, each key read back into L1 after its invalidation): the rate follows
 *    from the algorithm, not from this machine, so virtual time gives it exactly.
 *
 * Run: npx -y deno@2 run --allow-read --allow-env bench/validator_bench.ts [--rounds 60] [--hits 20000]
 *
 * @module
 */

import assert from "node:assert/strict";
import { measureRounds, roundsAndHits } from "./_compare.ts";
import { MemoryStore, Warp } from "../mod.ts";
import type { ValidatorOptions } from "../mod.ts";
import { NodeCore } from "../src/core/mod.ts";

const KEYS_COUNT = 1024;
const KEY_MASK = KEYS_COUNT - 1;
const HOUR_MS = 3_600_000;

async function node(validator: ValidatorOptions | undefined): Promise<Warp> {
  const warp = new Warp({ store: new MemoryStore(), ...(validator && { validator }) });
  warp.register("user:*", { mode: "strong-local", ttlMs: HOUR_MS });
  for (let i = 0; i < KEYS_COUNT; i++) await warp.set(`user:${i}`, { id: i });
  const before = warp.stats.storeReads;
  for (let i = 0; i < KEYS_COUNT; i++) assert.notEqual(warp.peek(`user:${i}`), undefined);
  assert.equal(warp.stats.storeReads, before, "a hit must not read the store");
  return warp;
}

async function readPath(rounds: number, hitsPerRound: number): Promise<void> {
  const rows: [string, Warp][] = [
    ["off", await node(undefined)],
    ["off (copy)", await node(undefined)],
    ["count, defaults", await node({ mode: "count" })],
    ["count, 100 reads/s", await node({ mode: "count", storeReadsPerS: 100, samplePerS: 50 })],
  ];
  const keys = Array.from({ length: KEYS_COUNT }, (_, i) => `user:${i}`);
  let sink = 0;
  for (const api of ["peek", "get"] as const) {
    await measureRounds(
      `L1 hit through ${api}, validator off vs on`,
      rows,
      rounds,
      async (warp) => {
        // Let the validator's timers and store reads run outside the timed loop.
        await new Promise((resolve) => setTimeout(resolve, 0));
        const start = performance.now();
        if (api === "peek") {
          for (
            let i = 0;
            i < hitsPerRound;
            i++
          ) if (warp.peek(keys[i & KEY_MASK]!) !== undefined) sink++;
        } else {
          for (
            let i = 0;
            i < hitsPerRound;
            i++
          ) if (await warp.get(keys[i & KEY_MASK]!) !== undefined) sink++;
        }
        return (performance.now() - start) * 1e6 / hitsPerRound;
      },
    );
  }
  for (const [name, warp] of rows) {
    const report = warp.validatorReport();
    if (report !== undefined) {
      console.log(
        `  ${name}: ${report.checked} checks, ${report.storeReads} store reads, ${report.consistent} consistent during the run`,
      );
    }
    await warp.close();
  }
  assert.ok(sink > 0);
}

/** Store reads per second of a default `count` validator with invalidations at `perS`. */
function readsPerSecond(perS: number): { reads: number; skipped: number } {
  const core = new NodeCore({ nodeId: "a", incarnation: 1, validator: { mode: "count" } });
  core.register("ev:*", { mode: "eventual-distributed", ttlMs: HOUR_MS, maxStalenessMs: 60_000 });
  const keys = 1000;
  let version = 1;
  let reads = 0;
  let op = 1;
  const perform = (now: number) => {
    for (const effect of core.takeEffects()) {
      if (effect.type !== "store-get") continue;
      if (effect.origin === "validator") reads++;
      core.onStoreRead(
        effect.io,
        { ok: true, found: true, value: 1, version, sizeBytes: 8 },
        now,
      );
    }
  };
  core.tick(0);
  for (let i = 0; i < keys; i++) {
    core.get(op++, `ev:${i}`, 0);
    perform(0);
  }
  const durationMs = 60_000;
  const stepMs = perS === 0 ? 100 : 1000 / perS;
  let seq = 0;
  for (let t = stepMs; t <= durationMs; t += stepMs) {
    core.tick(t);
    perform(t);
    if (perS > 0) {
      const key = `ev:${seq % keys}`;
      version++;
      core.onMessage({ t: "inv", from: "b", inc: 1, seq: ++seq, key, version }, t);
      core.get(op++, key, t); // read back into L1, as a hot key would be
      perform(t);
    }
  }
  const report = core.validatorReport()!;
  assert.equal(report.storeReads, reads);
  return { reads: reads / (durationMs / 1000), skipped: report.skippedByRateLimit };
}

const { rounds, hitsPerRound } = roundsAndHits({ rounds: 60, hits: 20_000 });
await readPath(rounds, hitsPerRound);
console.log(
  "\nValidator store reads per second at its defaults (count, 5 reads/s, 1 sample/s, 10 % of invalidations):",
);
for (const perS of [0, 10, 100, 1000]) {
  const { reads, skipped } = readsPerSecond(perS);
  console.log(
    `  invalidations ${String(perS).padStart(4)}/s: ${
      reads.toFixed(2)
    } store reads/s (${skipped} checks skipped by the budget in 60 s)`,
  );
}
