/**
 * The Warp API of loader-backed keys, loaders and resilience: `getOrSet` with a loader
 * context, not-found as a value, hard and soft timeouts, `close()` with a hung loader,
 * fail-safe under a store or loader outage, refresh-ahead, the per-call status of `read`
 * and `readMany`, and the validation of every new argument. In-process clusters
 * (`_cluster.ts`): one store, coordinator and bus, sessions of 300 ms.
 */

import assert from "node:assert/strict";
import { MemoryStore, Warp } from "../mod.ts";
import type { LoaderContext } from "../mod.ts";
import { Cluster, rejectsWith, sleep, waitFor } from "./_cluster.ts";

/** The application's own table, which loaders read and the application writes. */
class Source {
  readonly rows = new Map<string, number>();
  loads = 0;
  /** A loader over this table: `row:<id>` loads row `id`. */
  readonly loader = (context: LoaderContext<unknown>): number | undefined => {
    this.loads++;
    return this.rows.get(context.key.slice(context.key.indexOf(":") + 1));
  };
}

/** A promise that never settles, and a record of the signal it was given. */
function hang(signals: AbortSignal[]): (context: LoaderContext<unknown>) => Promise<never> {
  return (context) => {
    signals.push(context.signal);
    return new Promise<never>(() => {});
  };
}

Deno.test("Warp loader-backed eventual key: cached in L1 only, loaded again past its TTL, and fresh on every node after invalidate", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  const source = new Source();
  cluster.register("row:*", {
    mode: "eventual-distributed",
    origin: "loader",
    ttlMs: 60_000,
    maxStalenessMs: 60_000,
  });
  cluster.register("brief:*", { mode: "eventual-distributed", origin: "loader", ttlMs: 80 });
  try {
    await cluster.ready();
    source.rows.set("1", 10);
    assert.equal(await a.getOrSet("row:1", source.loader), 10);
    assert.equal(await b.getOrSet("row:1", source.loader), 10);
    assert.equal(source.loads, 2);
    assert.equal(await a.getOrSet("row:1", source.loader), 10, "a hit");
    assert.equal(source.loads, 2);
    assert.equal(cluster.store.counts.set + cluster.store.counts.get, 0, "never Warp's store");
    // The application writes its table, then invalidates: every node loads again.
    source.rows.set("1", 20);
    await a.invalidate("row:1");
    await waitFor(() => b.peek("row:1") === undefined, "the drop to reach b");
    assert.equal(await b.getOrSet("row:1", source.loader), 20);
    assert.equal(await a.getOrSet("row:1", source.loader), 20);
    // The first complaint: past the TTL the loader runs again and sees the change.
    source.rows.set("2", 1);
    assert.equal(await a.getOrSet("brief:2", source.loader), 1);
    source.rows.set("2", 2);
    await sleep(120);
    assert.equal(await a.getOrSet("brief:2", source.loader), 2);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp loader-backed strong key: after invalidate() completes, a read on any node loads again (LB3)", async () => {
  const cluster = new Cluster();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  const source = new Source();
  cluster.register("row:*", { mode: "strong-distributed", origin: "loader", ttlMs: 60_000 });
  try {
    await cluster.ready();
    source.rows.set("1", 10);
    for (const node of [a, b, c]) assert.equal(await node.getOrSet("row:1", source.loader), 10);
    assert.equal((await a.read("row:1", { loader: source.loader })).source, "l1");
    source.rows.set("1", 20);
    await b.invalidate("row:1");
    for (const node of [a, b, c]) {
      const read = await node.read("row:1", { loader: source.loader });
      assert.deepEqual([read.value, read.source], [20, "loader"]);
    }
    assert.equal(cluster.store.counts.set, 0);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.getOrSet() with a loader that never settles: TIMEOUT at the hard timeout, the signal aborted, the key free at once", async () => {
  const warp = new Warp({ store: new MemoryStore() });
  warp.register("row:*", { mode: "strong-local", origin: "loader", hardTimeoutMs: 100 });
  const signals: AbortSignal[] = [];
  try {
    const started = performance.now();
    const first = warp.getOrSet("row:1", hang(signals));
    const joined = warp.getOrSet("row:1", () => 1); // joins the hung load
    await rejectsWith(first, "TIMEOUT");
    await rejectsWith(joined, "TIMEOUT");
    const elapsedMs = performance.now() - started;
    assert.ok(elapsedMs >= 95 && elapsedMs < 2000, `rejected after ${elapsedMs} ms`);
    assert.equal(signals.length, 1);
    assert.ok(signals[0]!.aborted, "the hung loader was told to stop");
    assert.equal(await warp.getOrSet("row:1", () => 7), 7, "a new loader runs at once");
    assert.equal(warp.stats.loadTimeouts, 1);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.close() settles getOrSet calls waiting on a loader that never settles with CLOSED, and aborts it", async () => {
  const warp = new Warp({ store: new MemoryStore() });
  warp.register("row:*", { mode: "eventual-distributed", origin: "loader" });
  warp.register("doc:*", { mode: "eventual-distributed" }); // store-backed
  const signals: AbortSignal[] = [];
  const calls = [
    warp.getOrSet("row:1", hang(signals)),
    warp.getOrSet("row:1", hang(signals)),
    warp.getOrSet("doc:1", hang(signals)),
  ];
  await waitFor(() => signals.length === 2, "both loaders to start");
  await warp.close();
  for (const call of calls) await rejectsWith(call, "CLOSED");
  assert.ok(signals.every((signal) => signal.aborted));
});

Deno.test("Warp.getOrSet() rejects with LOADER_ERROR naming the key when the loader throws, its error as cause", async () => {
  const warp = new Warp({ store: new MemoryStore() });
  warp.register("row:*", { mode: "strong-local", origin: "loader" });
  warp.register("doc:*", { mode: "strong-local" });
  const boom = new Error("connection refused");
  try {
    for (const key of ["row:1", "doc:1"]) {
      const error = await rejectsWith(
        warp.getOrSet(key, () => {
          throw boom;
        }),
        "LOADER_ERROR",
      );
      assert.equal(error.cause, boom);
      assert.match(error.message, new RegExp(key));
    }
    const bad = await rejectsWith(
      warp.getOrSet("row:2", (context) => {
        context.setTtl(-1);
        return 1;
      }),
      "LOADER_ERROR",
    );
    assert.ok(bad.cause instanceof RangeError && bad.cause.message.includes("-1"));
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.getOrSet() takes a loader's undefined as not-found: answered, cached for a loader-backed key, never written", async () => {
  const store = new MemoryStore();
  const warp = new Warp({ store });
  warp.register("row:*", { mode: "strong-local", origin: "loader" });
  warp.register("doc:*", { mode: "strong-local" });
  try {
    let loads = 0;
    const none = () => {
      loads++;
      return undefined;
    };
    assert.equal(await warp.getOrSet("row:1", none), undefined);
    assert.equal(await warp.getOrSet("row:1", none), undefined);
    assert.equal(loads, 1, "the not-found answer is cached");
    const read = await warp.read("row:1", { loader: none });
    assert.deepEqual([read.found, read.source], [false, "l1"]);
    assert.equal(await warp.getOrSet("doc:1", none), undefined);
    assert.equal(store.counts.set, 0, "not-found writes nothing");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.getOrSet() of a store-backed key honours skipCache() and setTtl(), and answers the value another node wrote first", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    assert.equal(
      await a.getOrSet("sl:once", (context) => {
        context.skipCache();
        return "not kept";
      }),
      "not kept",
    );
    assert.equal(cluster.store.counts.set, 0);
    const read = await a.read("sl:short", {
      loader: (context) => {
        context.setTtl(1000);
        return "kept";
      },
    });
    assert.deepEqual([read.value, read.source, read.version], ["kept", "loader", 1]);
    assert.ok(read.freshForMs > 900 && read.freshForMs <= 1000, `freshForMs ${read.freshForMs}`);
    // b's loader finishes after a wrote: b's conditional write loses, and b answers a's value.
    let release = () => {};
    const gate = new Promise<void>((resolve) => release = resolve);
    const slow = b.getOrSet("evl:race", async () => {
      await gate;
      return "b's";
    });
    await waitFor(() => b.stats.loads === 1, "b's loader to start");
    await a.set("evl:race", "a's");
    release();
    assert.equal(await slow, "a's");
    assert.deepEqual(await cluster.stored("evl:race"), { value: "a's", version: 1 });
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.read() answers a stale value flagged as such past a soft timeout, and the load installs in the background", async () => {
  const warp = new Warp({ store: new MemoryStore() });
  warp.register("row:*", {
    mode: "strong-local",
    origin: "loader",
    ttlMs: 50,
    softTimeoutMs: 30,
    failSafeMaxMs: 60_000,
  });
  try {
    await warp.getOrSet("row:1", () => "v1");
    await sleep(70);
    let finish = () => {};
    const slowLoad = new Promise<void>((resolve) => finish = resolve);
    const seen: unknown[] = [];
    const read = await warp.read("row:1", {
      ttlMs: 60_000,
      loader: async (context) => {
        seen.push(context.stale);
        await slowLoad;
        return "v2";
      },
    });
    assert.deepEqual(
      [read.value, read.stale, read.source, read.freshForMs],
      ["v1", true, "fallback", 0],
    );
    assert.deepEqual(seen, ["v1"], "the loader saw the stale value");
    finish();
    await waitFor(() => warp.peek("row:1") === "v2", "the background load to install");
    assert.equal((await warp.read("row:1")).stale, false);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp answers cached eventual keys stale while the store is down, only when fail-safe is on, and never an invalidated one", async () => {
  const store = new MemoryStore();
  const warp = new Warp({ store, sessionMs: 0 }); // entries keep to the age bound
  warp.register("safe:*", {
    mode: "eventual-distributed",
    maxStalenessMs: 50,
    failSafeMaxMs: 60_000,
    failSafeThrottleMs: 1000,
  });
  warp.register("plain:*", { mode: "eventual-distributed", maxStalenessMs: 50 });
  try {
    await warp.set("safe:1", "v");
    await warp.set("safe:2", "w");
    await warp.set("plain:1", "v");
    await warp.invalidate("safe:2");
    await sleep(80); // every entry is past its staleness bound
    const outage = new Error("store down");
    for (let i = 0; i < 3; i++) store.failNext(outage);
    const stale = await warp.read("safe:1");
    assert.deepEqual([stale.value, stale.stale, stale.source], ["v", true, "fallback"]);
    await rejectsWith(warp.get("safe:2"), "STORE_ERROR"); // invalidated: no fallback (F2)
    await rejectsWith(warp.get("plain:1"), "STORE_ERROR"); // fail-safe is off by default
    const reads = store.counts.get;
    assert.equal((await warp.read("safe:1")).stale, true, "throttled: no retry for a while");
    assert.equal(store.counts.get, reads);
    assert.equal(warp.stats.staleAnswers, 2);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp refreshes a hot loader-backed key ahead of its TTL with its registered loader, serving from L1 meanwhile", async () => {
  const source = new Source();
  const warp = new Warp({ store: new MemoryStore() });
  warp.register("row:*", {
    mode: "strong-local",
    origin: "loader",
    ttlMs: 200,
    refreshAheadRatio: 0.5,
    loader: source.loader,
  });
  try {
    source.rows.set("1", 1);
    assert.equal(await warp.get("row:1"), 1);
    source.rows.set("1", 2);
    await sleep(110); // past the refresh point, before the TTL
    assert.equal(await warp.get("row:1"), 1, "served from L1 at once");
    await waitFor(() => warp.peek("row:1") === 2, "the background refresh to install");
    assert.equal(source.loads, 2);
    assert.equal(warp.stats.refreshes, 1);
    assert.equal(warp.stats.misses, 1, "no caller ever waited on the refresh");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.readMany() answers each key's status in order", async () => {
  const warp = new Warp({ store: new MemoryStore() });
  warp.register("doc:*", { mode: "strong-local", ttlMs: 10_000 });
  warp.register("row:*", { mode: "strong-local", origin: "loader", loader: () => 5 });
  try {
    await warp.set("doc:1", "one");
    const [doc, row, absent] = await warp.readMany(["doc:1", "row:1", "doc:2"]);
    assert.deepEqual([doc?.value, doc?.source, doc?.version, doc?.stale], ["one", "l1", 1, false]);
    assert.ok(doc!.freshForMs > 9000 && doc!.freshForMs <= 10_000);
    assert.deepEqual([row?.value, row?.source, row?.version], [5, "loader", 0]);
    assert.deepEqual([absent?.found, absent?.source], [false, "store"]);
    await assert.rejects(warp.readMany("doc:1" as unknown as string[]), TypeError);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp refuses misuse of loaders and loader-backed keys with a TypeError or RangeError naming the value", async () => {
  const warp = new Warp({ store: new MemoryStore() });
  warp.register("row:*", { mode: "strong-local", origin: "loader" });
  warp.register("doc:*", { mode: "strong-local" });
  try {
    await assert.rejects(warp.getOrSet("row:1", 5 as unknown as () => 1), TypeError);
    await assert.rejects(
      warp.read("row:1", { loader: () => 1, hardTimeoutMs: -5 }),
      (e: unknown) => e instanceof RangeError && e.message.includes("-5"),
    );
    await assert.rejects(
      warp.read("row:1"),
      (e: unknown) => e instanceof TypeError && e.message.includes("row:1"),
    );
    await assert.rejects(
      warp.set("row:1", 1),
      (e: unknown) => e instanceof TypeError && e.message.includes("invalidate"),
    );
    assert.throws(
      () => warp.register("bad:*", { mode: "strong-local", loader: () => 1 }),
      (e: unknown) => e instanceof TypeError && e.message.includes("bad:*"),
    );
    assert.throws(() => warp.register("x:*", { mode: "strong-local", origin: "db" as "loader" }));
    assert.equal(warp.stats.loads, 0);
    assert.equal(await warp.getOrSet("row:1", () => 3), 3, "the node still works");
    // Options are checked on a hit too, not only when a miss reaches the core.
    await assert.rejects(warp.get("row:1", { ttlMs: 0 }), RangeError);
    await assert.rejects(warp.getOrSet("row:1", () => 3, { failSafeMaxMs: -1 }), RangeError);
    await assert.rejects(
      warp.read("row:1", { softTimeoutMs: "1" as unknown as number }),
      TypeError,
    );
  } finally {
    await warp.close();
  }
});
