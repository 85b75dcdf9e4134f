/**
 * Where the time of an L1 hit goes: the same hit read through Warp with four clocks
 * (the default `performance.now`, `Date.now`, a clock thread, and a constant that costs
 * nothing), next to its parts on their own: the clock read, `L1Cache.get` with and
 * without the LRU touch, and `Promise.resolve` plus an `await`.
 *
 * The clock thread is a prototype of one way to take the OS clock off the hot path: a
 * worker writes its monotonic time into shared memory every millisecond, and the hit
 * reads that number. It lags the true time by up to a period plus the worker's
 * scheduling delay, so it is measured here for its cost only.
 *
 * Subtracting one row from another prices one part; `bench/run.ts` prints the medians.
 *
 * @module
 */

import assert from "node:assert/strict";
import { L1Cache, resolvePolicy } from "../src/core/mod.ts";
import { MemoryStore, Warp } from "../mod.ts";

const KEYS_COUNT = 1024;
const KEY_MASK = KEYS_COUNT - 1;
const HOUR_MS = 3_600_000;
const keys = Array.from({ length: KEYS_COUNT }, (_, i) => `user:${i}`);
const values = keys.map((key, i) => ({ id: i, name: `name of ${key}` }));

const SYNC_GROUP = "hit cost (sync parts)";
const ASYNC_GROUP = "hit cost (async parts)";

let sink = 0;
function consume(value: unknown): void {
  if (value !== undefined) sink++;
}

const map = new Map<string, unknown>(keys.map((key, i) => [key, values[i]]));

const policy = resolvePolicy("user:*", { mode: "strong-local", ttlMs: HOUR_MS });
const l1 = new L1Cache({ entriesMax: 10_000, bytesMax: 64 * 1024 * 1024 });
for (const [i, key] of keys.entries()) {
  l1.install(key, { value: values[i], found: true, version: 1, sizeBytes: 32 }, HOUR_MS, policy);
}

/** A strong-local node on `clock`, every key cached; checked to hit. */
async function warpOn(clock: () => number): Promise<Warp> {
  const warp = new Warp({ store: new MemoryStore(), clock });
  warp.register("user:*", { mode: "strong-local", ttlMs: HOUR_MS });
  for (const [i, key] of keys.entries()) await warp.set(key, values[i]);
  const before = warp.stats;
  for (const key of keys) assert.notEqual(warp.peek(key), undefined);
  assert.equal(warp.stats.hits - before.hits, KEYS_COUNT, "every peek must hit L1");
  assert.equal(warp.stats.storeReads, before.storeReads, "a hit must not read the store");
  return warp;
}

/** Epoch milliseconds, written by the clock thread. */
const sharedNow = new Float64Array(new SharedArrayBuffer(8));
const CLOCK_THREAD_SOURCE = `
self.onmessage = (event) => {
  const now = new Float64Array(event.data);
  const idle = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    now[0] = performance.timeOrigin + performance.now();
    Atomics.wait(idle, 0, 0, 1);
  }
};`;
const clockThread = new Worker(
  URL.createObjectURL(new Blob([CLOCK_THREAD_SOURCE], { type: "text/javascript" })),
  { type: "module" },
);
clockThread.postMessage(sharedNow.buffer);
while (sharedNow[0] === 0) await new Promise((resolve) => setTimeout(resolve, 1));

const clocks: [string, () => number][] = [
  ["performance.now, the default", () => performance.now()],
  ["Date.now", Date.now],
  ["clock thread", () => sharedNow[0]!],
  ["constant", () => 0],
];
const warps: [string, Warp][] = [];
for (const [name, clock] of clocks) warps.push([name, await warpOn(clock)]);

let next = 0;

// ------------------------------------------------------------------ sync parts

Deno.bench({
  name: "Map.get",
  group: SYNC_GROUP,
  baseline: true,
  fn() {
    consume(map.get(keys[next++ & KEY_MASK]!));
  },
});

Deno.bench({
  name: "performance.now()",
  group: SYNC_GROUP,
  fn() {
    sink += performance.now();
  },
});

Deno.bench({
  name: "Date.now()",
  group: SYNC_GROUP,
  fn() {
    sink += Date.now();
  },
});

Deno.bench({
  name: "L1Cache.get",
  group: SYNC_GROUP,
  fn() {
    consume(l1.get(keys[next++ & KEY_MASK]!));
  },
});

Deno.bench({
  name: "L1Cache.get + touch",
  group: SYNC_GROUP,
  fn() {
    const entry = l1.get(keys[next++ & KEY_MASK]!)!;
    l1.touch(entry);
    consume(entry);
  },
});

for (const [name, warp] of warps) {
  Deno.bench({
    name: `warp.peek (clock: ${name})`,
    group: SYNC_GROUP,
    fn() {
      consume(warp.peek(keys[next++ & KEY_MASK]!));
    },
  });
}

// ------------------------------------------------------------------ async parts

// deno-lint-ignore require-await
async function mapGetAsync(key: string): Promise<unknown> {
  return map.get(key);
}

Deno.bench({
  name: "await async Map.get (floor)",
  group: ASYNC_GROUP,
  baseline: true,
  async fn() {
    consume(await mapGetAsync(keys[next++ & KEY_MASK]!));
  },
});

Deno.bench({
  name: "await Promise.resolve(Map.get)",
  group: ASYNC_GROUP,
  async fn() {
    consume(await Promise.resolve(map.get(keys[next++ & KEY_MASK]!)));
  },
});

for (const [name, warp] of warps) {
  Deno.bench({
    name: `await warp.get (clock: ${name})`,
    group: ASYNC_GROUP,
    async fn() {
      consume(await warp.get(keys[next++ & KEY_MASK]!));
    },
  });
}

globalThis.addEventListener("unload", () => {
  assert.ok(sink > 0, "the benchmarks read nothing");
  clockThread.terminate();
  for (const [, warp] of warps) void warp.close();
});
