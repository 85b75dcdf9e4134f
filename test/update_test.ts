import assert from "node:assert/strict";
import { MemoryStore, merges, Warp } from "../mod.ts";
import type { UpdateResult } from "../mod.ts";
import { Cluster, sleep } from "./_cluster.ts";

const MODES = { "sl:ctr": "strong-local", "ev:ctr": "eventual", "st:ctr": "strong" } as const;

async function keepAlive<R>(promise: Promise<R>): Promise<R> {
  const timer = setInterval(() => {}, 10);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

for (const [key, mode] of Object.entries(MODES)) {
  Deno.test(`Warp.update() loses no increment of a ${mode} key updated concurrently`, async () => {
    const cluster = new Cluster();
    await cluster.ready();
    // A strong-local key has one writer by definition: one node updates it, many at once.
    const writers = key.startsWith("sl:") ? [cluster.nodes[0]!] : cluster.nodes;
    try {
      const results = await keepAlive(Promise.all(
        writers.flatMap((node) =>
          Array.from(
            { length: 6 },
            () =>
              node.update(key, (n) => ((n as number | undefined) ?? 0) + 1, { attemptsMax: 50 }),
          )
        ),
      ));
      const ok = results.filter((r) => r.status === "ok");
      assert.equal(ok.length, results.length, JSON.stringify(results.map((r) => r.status)));
      assert.deepEqual(await cluster.stored(key), {
        value: results.length,
        version: results.length,
      });
      // Each landed on its own version, with the value one above the version it read.
      const versions = new Set(ok.map((r) => r.version));
      assert.equal(versions.size, results.length);
      for (const r of ok) assert.equal(r.value, r.version);
      for (const node of writers) assert.equal(await node.get(key), results.length);
    } finally {
      await cluster.close();
    }
  });
}

Deno.test("Warp.update() reduces the store's value, never a stale L1 one", async () => {
  const store = new MemoryStore();
  // Two nodes without a bus: b's L1 keeps "1" after a's write, for a long staleness bound.
  const a = new Warp<number>({ store });
  const b = new Warp<number>({ store });
  for (const node of [a, b]) {
    node.register("n", { mode: "eventual-distributed", maxStalenessMs: 60_000 });
  }
  try {
    await b.set("n", 1);
    await a.set("n", 10);
    assert.equal(b.peek("n"), 1, "b's L1 is stale");
    const seen: (number | undefined)[] = [];
    const result = await b.update("n", (n) => {
      seen.push(n);
      return n! + 1;
    });
    assert.deepEqual(seen, [10]);
    assert.deepEqual(result, { status: "ok", value: 11, version: 3, attempts: 1 });
    assert.equal(b.peek("n"), 11);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("Warp.update() reports a conflict after attemptsMax lost races, and writes nothing", async () => {
  const store = new MemoryStore();
  const warp = new Warp<number>({ store });
  warp.register("n", { mode: "strong-local" });
  try {
    await warp.set("n", 0);
    let reducerCalls = 0;
    const result = await warp.update("n", (n) => {
      reducerCalls++;
      // Another writer lands between every read and write.
      void store.set("n", new TextEncoder().encode(String(100 + reducerCalls)));
      return n! + 1;
    }, { attemptsMax: 3, backoffMs: 1 });
    assert.equal(result.status, "conflict");
    assert.equal(result.attempts, 3);
    assert.equal(reducerCalls, 3);
    const stored = await store.get("n");
    assert.equal(new TextDecoder().decode(stored.value), "103");
    assert.equal(warp.peek("n"), 0, "L1 keeps what this node wrote; no failed value reached it");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.update() stops when its reducer aborts or its signal fires", async () => {
  const warp = new Warp<number>({ store: new MemoryStore() });
  warp.register("n", { mode: "strong-local" });
  try {
    await warp.set("n", 5);
    const byReducer = await warp.update("n", (n, { abort }) => n! < 10 ? abort() : n! - 10);
    assert.deepEqual(byReducer, { status: "aborted", by: "reducer", version: 1, attempts: 1 });
    const controller = new AbortController();
    controller.abort();
    const bySignal = await warp.update("n", (n) => n! + 1, { signal: controller.signal });
    assert.equal(bySignal.status, "aborted");
    assert.equal(await warp.get("n"), 5);
    await assert.rejects(
      warp.update("n", () => {
        throw new Error("Reducer bug");
      }),
      /Reducer bug/,
    );
    assert.equal(await warp.get("n"), 5);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.update() and compareAndSet() reject bad arguments with typed errors", async () => {
  const warp = new Warp<number>({ store: new MemoryStore() });
  warp.register("n", { mode: "strong-local" });
  try {
    await assert.rejects(warp.update("n", 3 as never), TypeError);
    await assert.rejects(warp.update("n", (n) => n!, { attemptsMax: 0 }), RangeError);
    await assert.rejects(warp.update("n", (n) => n!, { backoffMs: -1 }), RangeError);
    await assert.rejects(warp.update("n", (n) => n!, { signal: {} as AbortSignal }), TypeError);
    await assert.rejects(warp.compareAndSet("n", -1, 1), RangeError);
    await assert.rejects(warp.compareAndSet("n", 1.5, 1), RangeError);
    await assert.rejects(warp.update("", (n) => n!), TypeError);
    assert.throws(
      () => warp.register("m", { mode: "strong-local", merge: 1 as never }),
      TypeError,
    );
    assert.throws(
      () => warp.register("l", { mode: "strong-local", origin: "loader", merge: merges.add }),
      TypeError,
    );
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.compareAndSet() turns the fenced example's lost update into a conflict", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    const read = await a.set("st:balance", 100);
    // a read version `read` (balance 100) and stalls; b writes meanwhile.
    const version = await b.set("st:balance", 105);
    assert.deepEqual(await a.compareAndSet("st:balance", read, 101), { status: "conflict" });
    assert.deepEqual(await cluster.stored("st:balance"), { value: 105, version });
    // Nothing of the failed write reached any L1.
    for (const node of cluster.nodes) assert.notEqual(node.peek("st:balance"), 101);
    assert.equal(await a.get("st:balance"), 105);
    assert.deepEqual(await a.compareAndSet("st:balance", version, 106), {
      status: "ok",
      version: version + 1,
    });
    assert.equal(await b.get("st:balance"), 106);
    assert.deepEqual(await a.compareAndSet("st:new", 0, 1), { status: "ok", version: 1 });
    assert.deepEqual(await b.compareAndSet("st:new", 0, 2), { status: "conflict" });
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.update() on a strong-distributed key: a conflicting write leaves no L1 trace", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    await a.set("st:k", 1);
    assert.equal(await b.get("st:k"), 1);
    let raced = false;
    const result: UpdateResult<unknown> = await keepAlive(a.update("st:k", (n) => {
      if (!raced) {
        raced = true;
        void cluster.store.set("st:k", new TextEncoder().encode("7")); // lands first
      }
      return (n as number) + 1;
    }));
    assert.equal(result.status, "ok");
    assert.equal(result.attempts, 2);
    assert.deepEqual(await cluster.stored("st:k"), { value: 8, version: 3 });
    for (const node of cluster.nodes) {
      const cached = node.peek("st:k");
      assert.ok(cached === undefined || cached === 8, `never 2: ${cached}`);
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.set() of a key registered with a merge merges with the stored value", async () => {
  const cluster = new Cluster();
  await cluster.ready();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  for (const node of cluster.nodes) {
    node.register("views:*", { mode: "eventual-distributed", merge: merges.add });
    node.register("tags:*", { mode: "strong-distributed", merge: merges.union });
    node.register("high:*", { mode: "eventual-distributed", merge: merges.max });
    node.register("last:*", { mode: "eventual-distributed", merge: merges.lastWriterWins });
  }
  try {
    await keepAlive(Promise.all([
      ...[a, b, c].flatMap((node) => [1, 2, 3].map((n) => node.set("views:home", n))),
      ...[a, b, c].map((node) => node.set("tags:1", [node.nodeId])),
      a.set("high:1", 5),
      b.set("high:1", 9),
      c.set("high:1", 2),
    ]));
    assert.equal((await cluster.stored("views:home")).value, 18);
    assert.deepEqual(((await cluster.stored("tags:1")).value as string[]).sort(), ["a", "b", "c"]);
    assert.equal((await cluster.stored("high:1")).value, 9);
    const first = await a.set("last:1", "x");
    const second = await b.set("last:1", "y");
    assert.ok(second > first);
    assert.equal(await c.get("last:1"), "y");
    await assert.rejects(a.set("views:home", "nope" as never), TypeError);
    assert.equal((await cluster.stored("views:home")).value, 18);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.update() stops backing off when its signal fires", async () => {
  const store = new MemoryStore();
  const warp = new Warp<number>({ store });
  warp.register("n", { mode: "strong-local" });
  try {
    await warp.set("n", 0);
    const controller = new AbortController();
    const started = performance.now();
    const pending = warp.update("n", (n) => {
      void store.set("n", new TextEncoder().encode("1"));
      setTimeout(() => controller.abort(), 5);
      return n! + 1;
    }, { backoffMs: 10_000, backoffMaxMs: 10_000, signal: controller.signal });
    const result = await keepAlive(pending);
    assert.equal(result.status, "aborted");
    assert.ok(performance.now() - started < 5000);
    await sleep(0);
  } finally {
    await warp.close();
  }
});
