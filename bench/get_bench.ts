/**
 * The read hot path: a key already in L1 and fresh, read through Warp in each mode and
 * through other in-memory caches, each group against its floor (the `baseline`, so that
 * `deno bench` prints ratios).
 *
 * - "get (L1 hit, async)": the floor is awaiting an async function that returns
 *   `Map.get`; then `await warp.get(key)` per mode, BentoCache (memory driver only) and
 *   cache-manager v7 (default Keyv memory store).
 * - "get (L1 hit, sync)": the floor is lru-cache's `get`; then `warp.peek(key)` per mode
 *   and a bare `Map.get` for reference.
 * - In both groups, an eventual-distributed key attached to a lease: the cost of the
 *   lease lookup on a hit.
 *
 * Reads cycle over {@linkcode KEYS_COUNT} keys, so that no one hot map slot is measured.
 * Before any timing, every fixture checks that its reads are L1 hits with no store read.
 *
 * Run: `deno task bench`, or `deno run --allow-read --allow-env --allow-sys --allow-run
 * bench/run.ts` for a table of medians and ratios.
 *
 * @module
 */

import assert from "node:assert/strict";
import { LRUCache } from "lru-cache";
import { BentoCache, bentostore } from "bentocache";
import { memoryDriver } from "bentocache/drivers/memory";
import { createCache } from "cache-manager";
import { InProcessBus, MemoryCoordinator, MemoryStore, Warp } from "../mod.ts";
import type { ConsistencyMode } from "../mod.ts";

/** Keys read in turn; a power of two so the cycle is a mask. */
const KEYS_COUNT = 1024;
/** Long enough that no entry expires, and no lease lapses, during a run. */
const HOUR_MS = 3_600_000;
const KEY_MASK = KEYS_COUNT - 1;
const keys = Array.from({ length: KEYS_COUNT }, (_, i) => `user:${i}`);
const values = keys.map((key, i) => ({ id: i, name: `name of ${key}` }));

const ASYNC_GROUP = "get (L1 hit, async)";
const SYNC_GROUP = "get (L1 hit, sync)";

/** Everything to release once the benchmarks are done. */
const closers: (() => Promise<unknown> | void)[] = [];

/**
 * Results land here so no read can be optimised away; the last benchmark checks it, so
 * it is observably used.
 */
let sink = 0;
function consume(value: unknown): void {
  if (value !== undefined) sink++;
}

// ------------------------------------------------------------------ fixtures

const map = new Map<string, unknown>(keys.map((key, i) => [key, values[i]]));
// deno-lint-ignore require-await
async function mapGetAsync(key: string): Promise<unknown> {
  return map.get(key);
}

const lru = new LRUCache<string, object>({ max: 10_000 });
keys.forEach((key, i) => lru.set(key, values[i]!));

const MODES: readonly ConsistencyMode[] = [
  "strong-local",
  "eventual-distributed",
  "strong-distributed",
];

async function warpNode(mode: ConsistencyMode, leased = false): Promise<Warp> {
  const store = new MemoryStore();
  const bus = new InProcessBus();
  const transport = mode === "strong-local" ? undefined : bus.connect();
  const warp = new Warp({
    store,
    coordinator: new MemoryCoordinator(),
    ...(transport !== undefined && { transport }),
    // One lease check lasts the whole run: the hit pays only for looking the lease up.
    ...(leased && { leaseCheckMs: HOUR_MS }),
  });
  closers.push(async () => {
    await warp.close();
    await transport?.close();
  });
  warp.register("user:*", { mode, ttlMs: HOUR_MS, maxStalenessMs: HOUR_MS, leaseMs: HOUR_MS });
  const lease = leased ? await warp.grantLease({ ttlMs: HOUR_MS }) : undefined;
  for (const [i, key] of keys.entries()) {
    await warp.set(key, values[i], lease === undefined ? undefined : { lease });
    await warp.get(key);
  }
  // A hit is counted in stats.hits and reads nothing from the store.
  const before = warp.stats;
  for (const key of keys) assert.deepEqual(warp.peek(key), await warp.get(key));
  const after = warp.stats;
  assert.equal(after.hits - before.hits, 2 * KEYS_COUNT, `${mode}: every read must hit L1`);
  assert.equal(after.storeReads, before.storeReads, `${mode}: a hit must not read the store`);
  assert.equal(after.misses, before.misses, `${mode}: a hit must not count a miss`);
  return warp;
}

const warps = new Map<string, Warp>();
for (const mode of MODES) warps.set(mode, await warpNode(mode));
// A value attached to a lease is also checked against what the node knows of the lease.
warps.set("eventual-distributed + lease", await warpNode("eventual-distributed", true));

// Memory driver only: no L2, no bus. Serialized, as it stores by default; unserialized,
// as Warp keeps decoded values.
async function bentoCache(serialize: boolean): Promise<BentoCache<{ memory: never }>> {
  const bento = new BentoCache({
    default: "memory",
    stores: {
      memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000, serialize })),
    },
  });
  closers.push(() => bento.disconnectAll());
  for (const [i, key] of keys.entries()) await bento.set({ key, value: values[i], ttl: "1h" });
  for (const [i, key] of keys.entries()) {
    assert.deepEqual(await bento.get({ key }), values[i], "bentocache must hold every key");
  }
  return bento as unknown as BentoCache<{ memory: never }>;
}
const bentoSerialized = await bentoCache(true);
const bentoPlain = await bentoCache(false);

const cacheManager = createCache();
closers.push(() => cacheManager.disconnect());
for (const [i, key] of keys.entries()) await cacheManager.set(key, values[i], HOUR_MS);
for (const [i, key] of keys.entries()) {
  assert.deepEqual(await cacheManager.get(key), values[i], "cache-manager must hold every key");
}

// ------------------------------------------------------------------ async group

let next = 0;

Deno.bench({
  name: "await Map.get (async floor)",
  group: ASYNC_GROUP,
  baseline: true,
  async fn() {
    consume(await mapGetAsync(keys[next++ & KEY_MASK]!));
  },
});

for (const [mode, warp] of warps) {
  Deno.bench({
    name: `await warp.get (${mode})`,
    group: ASYNC_GROUP,
    async fn() {
      consume(await warp.get(keys[next++ & KEY_MASK]!));
    },
  });
}

Deno.bench({
  name: "await bentocache.get (memory, serialize)",
  group: ASYNC_GROUP,
  async fn() {
    consume(await bentoSerialized.get({ key: keys[next++ & KEY_MASK]! }));
  },
});

Deno.bench({
  name: "await bentocache.get (memory, no serialize)",
  group: ASYNC_GROUP,
  async fn() {
    consume(await bentoPlain.get({ key: keys[next++ & KEY_MASK]! }));
  },
});

Deno.bench({
  name: "await cache-manager.get (keyv memory)",
  group: ASYNC_GROUP,
  async fn() {
    consume(await cacheManager.get(keys[next++ & KEY_MASK]!));
  },
});

// ------------------------------------------------------------------ sync group

Deno.bench({
  name: "lru-cache.get",
  group: SYNC_GROUP,
  baseline: true,
  fn() {
    consume(lru.get(keys[next++ & KEY_MASK]!));
  },
});

for (const [mode, warp] of warps) {
  Deno.bench({
    name: `warp.peek (${mode})`,
    group: SYNC_GROUP,
    fn() {
      consume(warp.peek(keys[next++ & KEY_MASK]!));
    },
  });
}

Deno.bench({
  name: "Map.get",
  group: SYNC_GROUP,
  fn() {
    consume(map.get(keys[next++ & KEY_MASK]!));
  },
});

// ------------------------------------------------------------------ teardown

// deno bench has no afterAll hook; `unload` fires once every benchmark has run. Closing
// is synchronous up to its first await (unsubscribes, timers cleared), which is all that
// could keep the process alive.
globalThis.addEventListener("unload", () => {
  assert.ok(sink > 0, "the benchmarks read nothing");
  for (const close of closers) void close();
});
