/**
 * Batch reads: `getMany` and `getOrSetMany` go through each key's own fill (its version or
 * epoch rules), send the misses' store reads as one `Store.getMany` (or 16 at a time
 * without it), call `loadMany` once with the misses, and answer per key.
 */

import assert from "node:assert/strict";
import { MemoryStore, Warp, WarpError } from "../mod.ts";
import type { ManyResult, Store, StoreRecord } from "../mod.ts";
import { Cluster, sleep, waitFor } from "./_cluster.ts";

function values<T>(results: readonly ManyResult<T>[]): (T | undefined)[] {
  return results.map((r) => r.value);
}

function errorCode(result: ManyResult<unknown> | undefined): string | undefined {
  if (result === undefined || result.ok) return undefined;
  return result.error instanceof WarpError ? result.error.code : result.error.name;
}

/** A store without `getMany` that counts the reads in flight at once. */
class PlainStore implements Store {
  readonly inner = new MemoryStore({ latencyMs: 2 });
  inFlight = 0;
  inFlightMax = 0;
  get: Store["get"] = async (key) => {
    this.inFlight++;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    try {
      return await this.inner.get(key);
    } finally {
      this.inFlight--;
    }
  };
  set: Store["set"] = (key, value, options) => this.inner.set(key, value, options);
  delete: Store["delete"] = (key, options) => this.inner.delete(key, options);
  list: Store["list"] = (options) => this.inner.list(options);
}

/** A store whose next `getMany` reads at once but answers only when released. */
class GatedManyStore implements Store {
  readonly inner: MemoryStore;
  #gate: { reached: () => void; gate: Promise<void> } | undefined;
  constructor(inner: MemoryStore) {
    this.inner = inner;
  }
  hold(): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => reached = resolve);
    const gate = new Promise<void>((resolve) => release = resolve);
    this.#gate = { reached, gate };
    return { reached: reachedPromise, release };
  }
  async getMany(keys: readonly string[]): Promise<StoreRecord[]> {
    const hold = this.#gate;
    this.#gate = undefined;
    const records = await this.inner.getMany(keys);
    if (hold !== undefined) {
      hold.reached();
      await hold.gate;
    }
    return records;
  }
  get: Store["get"] = (key) => this.inner.get(key);
  set: Store["set"] = (key, value, options) => this.inner.set(key, value, options);
  delete: Store["delete"] = (key, options) => this.inner.delete(key, options);
  list: Store["list"] = (options) => this.inner.list(options);
}

Deno.test("Warp.getMany() answers hits from L1 and reads every miss with one Store.getMany", async () => {
  const store = new MemoryStore();
  const warp = new Warp<string>({ store });
  try {
    warp.register("u:*", { mode: "eventual-distributed" });
    for (let i = 0; i < 5; i++) await warp.set(`u:${i}`, `v${i}`);
    await warp.invalidate("u:1");
    await warp.invalidate("u:3");
    for (let i = 5; i < 8; i++) await store.set(`u:${i}`, new Uint8Array([0x22, 0x61, 0x22]));
    const before = store.counts;
    const keys = ["u:0", "u:1", "u:2", "u:3", "u:4", "u:5", "u:6", "u:7", "u:8"];
    const results = await warp.getMany(keys);
    assert.deepEqual(values(results), ["v0", "v1", "v2", "v3", "v4", "a", "a", "a", undefined]);
    assert.deepEqual(results.map((r) => r.ok && r.result.source), [
      "l1",
      "store",
      "l1",
      "store",
      "l1",
      "store",
      "store",
      "store",
      "store",
    ]);
    assert.deepEqual(results.map((r) => r.key), keys);
    const after = store.counts;
    assert.equal(after.getMany - before.getMany, 1, "one getMany for the six misses");
    assert.equal(after.get - before.get, 0, "no single reads");
    // Installed through the fill path: now hits.
    assert.equal(warp.peek("u:5"), "a");
    assert.deepEqual(
      (await warp.getMany(keys)).map((r) => r.ok && r.result.source),
      keys.map(() => "l1"),
    );
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.getMany() reports a failure per key: unregistered keys, a failed store read", async () => {
  const store = new MemoryStore();
  const warp = new Warp<string>({ store });
  try {
    warp.register("u:*", { mode: "strong-local" });
    await warp.set("u:1", "one");
    store.failNext(new Error("disk on fire"));
    const results = await warp.getMany(["u:1", "u:2", "x:1", "u:3"]);
    assert.equal(results[0]?.value, "one");
    assert.equal(errorCode(results[1]), "STORE_ERROR");
    assert.equal(errorCode(results[2]), "UNREGISTERED_KEY");
    assert.equal(errorCode(results[3]), "STORE_ERROR", "the one query failed for both misses");
    // Nothing was cached from the failed read; the next batch reads again and succeeds.
    const again = await warp.getMany(["u:2", "u:3"]);
    assert.deepEqual(again.map((r) => r.ok), [true, true]);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.getMany() without Store.getMany keeps at most 16 store reads in flight", async () => {
  const store = new PlainStore();
  const warp = new Warp<number>({ store });
  try {
    warp.register("n:*", { mode: "strong-local" });
    const keys = Array.from({ length: 100 }, (_, i) => `n:${i}`);
    for (const key of keys.slice(0, 50)) await warp.set(key, 1);
    for (const key of keys.slice(0, 50)) await warp.invalidate(key);
    const results = await warp.getMany(keys);
    assert.equal(results.filter((r) => r.value === 1).length, 50);
    assert.ok(results.every((r) => r.ok));
    assert.ok(store.inFlightMax <= 16, `at most 16 in flight, saw ${store.inFlightMax}`);
    assert.ok(store.inFlightMax > 1, `reads in parallel, saw ${store.inFlightMax}`);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.getMany() keeps each key's version rule: a batch read that an invalidation overtook installs nothing older (E2)", async () => {
  let gated: GatedManyStore | undefined;
  const cluster = new Cluster({
    size: 2,
    storeOf: (i, shared) => i === 0 ? (gated = new GatedManyStore(shared)) : shared,
  });
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    await b.set("evl:1", "old");
    const hold = gated!.hold();
    const reading = a.getMany(["evl:1", "evl:2"]);
    await hold.reached; // the store answered "old" to a's batch, held on its way back
    await b.set("evl:1", "new"); // its invalidation reaches a before the batch answer
    await waitFor(() => a.stats.messagesReceived > 0, "a hears b's invalidation");
    await sleep(5);
    hold.release();
    const [one, two] = await reading;
    assert.equal(one?.value, "new", "the old answer was discarded and read again");
    assert.equal(two?.ok && two.result.found, false);
    assert.notEqual(a.peek("evl:1"), "old");
    assert.ok(a.stats.staleFillsDiscarded >= 1);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.getOrSetMany() calls loadMany once with only the misses and writes store-backed values", async () => {
  const store = new MemoryStore();
  const warp = new Warp<string>({ store });
  try {
    warp.register("r:*", { mode: "eventual-distributed" });
    await warp.set("r:1", "cached");
    await store.set("r:2", new TextEncoder().encode('"stored"'));
    const calls: string[][] = [];
    const results = await warp.getOrSetMany(["r:1", "r:2", "r:3", "r:4"], (keys) => {
      calls.push(keys);
      return { "r:3": "loaded-3" }; // r:4 left out: not found
    });
    assert.deepEqual(calls, [["r:3", "r:4"]]);
    assert.deepEqual(values(results), ["cached", "stored", "loaded-3", undefined]);
    assert.deepEqual(results.map((r) => r.ok && r.result.source), [
      "l1",
      "store",
      "loader",
      "loader",
    ]);
    const r3 = results[2]!;
    assert.ok(r3.ok && r3.result.version >= 1, "written to the store");
    assert.deepEqual((await store.get("r:3")).value, new TextEncoder().encode('"loaded-3"'));
    assert.equal((await store.get("r:4")).version, 0, "not-found writes nothing");
    assert.equal(warp.peek("r:3"), "loaded-3");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.getOrSetMany() loads loader-backed keys through their epochs, once, and fails per key", async () => {
  const warp = new Warp<number>({ store: new MemoryStore() });
  try {
    warp.register("p:*", { mode: "eventual-distributed", origin: "loader" });
    warp.register("s:*", { mode: "strong-local" });
    const calls: string[][] = [];
    const source = new Map([["p:1", 1], ["p:2", 2], ["s:1", 10]]);
    const loadMany = (keys: string[]) => {
      calls.push(keys);
      return new Map(keys.map((key) => [key, source.get(key)]));
    };
    const first = await warp.getOrSetMany(["p:1", "s:1", "x:1"], loadMany);
    assert.equal(calls.length, 1);
    assert.deepEqual([...calls[0]!].sort(), ["p:1", "s:1"], "one call, loader- and store-backed");
    assert.deepEqual(values(first), [1, 10, undefined]);
    assert.equal(errorCode(first[2]), "UNREGISTERED_KEY");
    assert.equal(warp.peek("p:1"), 1);
    // An invalidation drops p:1; the next batch loads only it and p:2.
    await warp.invalidate("p:1");
    source.set("p:1", 11);
    const second = await warp.getOrSetMany(["p:1", "p:2", "s:1"], loadMany);
    assert.deepEqual(values(second), [11, 2, 10]);
    assert.deepEqual([...calls[1]!].sort(), ["p:1", "p:2"]);
    assert.equal(calls.length, 2);
    // A rejecting loadMany fails each of its keys alone.
    await warp.invalidate("p:1");
    const failed = await warp.getOrSetMany(["p:1", "p:2"], () => {
      throw new Error("source down");
    });
    assert.equal(errorCode(failed[0]), "LOADER_ERROR");
    assert.equal(failed[1]?.value, 2, "p:2 was still cached");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.getMany() and getOrSetMany() refuse bad arguments whole, before anything happens", async () => {
  const store = new MemoryStore();
  const warp = new Warp({ store });
  try {
    warp.register("k:*", { mode: "strong-local" });
    await assert.rejects(warp.getMany("k:1" as unknown as string[]), TypeError);
    await assert.rejects(warp.getMany(["k:1", 7 as unknown as string]), TypeError);
    await assert.rejects(
      warp.getMany(Array.from({ length: 10_001 }, (_, i) => `k:${i}`)),
      RangeError,
    );
    await assert.rejects(
      warp.getMany(["k:1"], { loader: () => 1 } as unknown as undefined),
      TypeError,
    );
    await assert.rejects(warp.getOrSetMany(["k:1"], "x" as unknown as () => never), TypeError);
    const answers = await warp.getOrSetMany(["k:2"], () => [1] as unknown as Map<string, unknown>);
    assert.equal(errorCode(answers[0]), "LOADER_ERROR", "a loadMany answer of the wrong shape");
    assert.equal(store.counts.get + store.counts.getMany, 1, "only the last call read");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.readMany() still rejects when one read fails, now over one Store.getMany", async () => {
  const store = new MemoryStore();
  const warp = new Warp({ store });
  try {
    warp.register("k:*", { mode: "strong-local" });
    await store.set("k:1", new TextEncoder().encode("1"));
    const [one, two] = await warp.readMany(["k:1", "k:2"]);
    assert.equal(one?.value, 1);
    assert.equal(two?.found, false);
    assert.equal(store.counts.getMany, 1);
    await assert.rejects(warp.readMany(["k:3", "x:1"]), WarpError);
  } finally {
    await warp.close();
  }
});
