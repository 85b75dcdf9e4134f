/**
 * Namespaces: views that prefix keys and patterns, and `clear()` of a namespace on every
 * node as an invalidation of each of its keys (a `clr` broadcast numbered like `drop`).
 */

import assert from "node:assert/strict";
import { MemoryStore, Warp, WarpError } from "../mod.ts";
import type { LoaderContext } from "../mod.ts";
import { Cluster, GAP_TIMEOUT_MS, rejectsWith, sleep, waitFor } from "./_cluster.ts";

Deno.test("Warp.namespace() prefixes keys and patterns, nests, and answers batches with its own keys", async () => {
  const warp = new Warp<string>({ store: new MemoryStore() });
  try {
    const users = warp.namespace("users");
    assert.equal(users.prefix, "users:");
    users.register("*", { mode: "eventual-distributed" });
    await users.set("1", "Ada");
    assert.equal(await warp.get("users:1"), "Ada");
    assert.equal(users.peek("1"), "Ada");
    const eu = users.namespace("eu");
    assert.equal(eu.name, "users:eu");
    await eu.set("2", "Bob");
    assert.equal(await warp.get("users:eu:2"), "Bob");
    const many = await users.getMany(["1", "eu:2", "3"]);
    assert.deepEqual(many.map((r) => [r.key, r.value]), [["1", "Ada"], ["eu:2", "Bob"], [
      "3",
      undefined,
    ]]);
    for (const bad of ["", "a*", "a:", "a\u0000", 7]) {
      assert.throws(() => warp.namespace(bad as string), TypeError, String(bad));
    }
    await assert.rejects(warp.clearNamespace("x*"), TypeError);
  } finally {
    await warp.close();
  }
});

Deno.test("WarpNamespace.clear() drops the namespace, nested ones included, here and on every node, and nothing else", async () => {
  const cluster = new Cluster();
  await cluster.ready();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    for (const key of ["evl:1", "evl:2", "evl:x:3", "ev:1", "sl:1"]) await a.set(key, key);
    for (const node of [b, c]) {
      for (const key of ["evl:1", "evl:2", "evl:x:3", "ev:1"]) await node.get(key);
      assert.equal(node.peek("evl:1"), "evl:1");
    }
    const epoch = await a.namespace("evl").clear();
    assert.equal(epoch, 1);
    for (const key of ["evl:1", "evl:2", "evl:x:3"]) assert.equal(a.peek(key), undefined);
    assert.equal(a.peek("ev:1"), "ev:1", "another namespace stays");
    assert.equal(a.peek("sl:1"), "sl:1");
    for (const node of [b, c]) {
      await waitFor(() => node.stats.clears === 1, "the clear reaches every node");
      for (const key of ["evl:1", "evl:2", "evl:x:3"]) assert.equal(node.peek(key), undefined);
      assert.equal(node.peek("ev:1"), "ev:1");
      // The store is untouched: the next read reads it.
      assert.equal(await node.get("evl:1"), "evl:1");
    }
    assert.equal(await a.namespace("evl").clear(), 2, "the epoch counts clears");
  } finally {
    await cluster.close();
  }
});

Deno.test("WarpNamespace.clear() voids a load in flight: it is loaded again, never cached from before the clear (LB1)", async () => {
  const cluster = new Cluster({ size: 2 });
  await cluster.ready();
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    cluster.register("src:*", { mode: "eventual-distributed", origin: "loader" });
    const source = new Map([["src:1", "old"]]);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => release = resolve);
    let loads = 0;
    const loader = async ({ key }: LoaderContext<unknown>) => {
      const value = source.get(key);
      if (++loads === 1) await gate; // the first load read "old", and is slow
      return value;
    };
    const reading = b.getOrSet("src:1", loader);
    await waitFor(() => loads === 1, "b's load started");
    source.set("src:1", "new");
    await a.namespace("src").clear();
    await waitFor(() => b.stats.clears === 1, "b applied the clear");
    release();
    assert.equal(await reading, "new", "the overtaken load was loaded again");
    assert.equal(b.peek("src:1"), "new");
    assert.ok(b.stats.loadsOvertaken >= 1);
  } finally {
    await cluster.close();
  }
});

Deno.test("WarpNamespace.clear() whose clr is lost still empties the namespace on the node that missed it (a gap flushes)", async () => {
  const cluster = new Cluster({ size: 2 });
  await cluster.ready();
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    await a.set("evl:1", "v");
    await b.get("evl:1");
    assert.equal(b.peek("evl:1"), "v");
    cluster.lose = (message) => message?.t === "clr";
    await a.namespace("evl").clear();
    cluster.lose = undefined;
    assert.equal(b.stats.clears, 0, "b never heard the clear");
    await waitFor(() => b.peek("evl:1") === undefined, "b flushes on the gap", 20 * GAP_TIMEOUT_MS);
    assert.ok(b.stats.gapsDetected >= 1);
  } finally {
    await cluster.close();
  }
});

Deno.test("WarpNamespace.clear() is refused with NOT_SUPPORTED where a strong-distributed key may live, and clears nothing", async () => {
  const cluster = new Cluster({ size: 2 });
  await cluster.ready();
  const [a] = cluster.nodes as [Warp, Warp];
  try {
    await a.set("st:1", "strong");
    await a.set("sl:1", "local");
    const error = await rejectsWith(a.namespace("st").clear(), "NOT_SUPPORTED");
    assert.match(error.message, /st:\*/);
    assert.equal(a.peek("st:1"), "strong");
    a.register("mixed:s*", { mode: "strong-distributed" });
    a.register("mixed:l*", { mode: "strong-local" });
    await rejectsWith(a.clearNamespace("mixed"), "NOT_SUPPORTED");
    await a.clearNamespace("mixed:l"); // only strong-local keys can be there
    assert.equal(await a.clearNamespace("sl"), 1);
    assert.equal(a.peek("sl:1"), undefined);
    assert.ok(error instanceof WarpError);
  } finally {
    await cluster.close();
  }
});

Deno.test("WarpNamespace.clear() on a node without a bus clears its own L1 at once", async () => {
  const warp = new Warp<number>({ store: new MemoryStore() });
  try {
    warp.register("n:*", { mode: "strong-local" });
    await warp.set("n:1", 1);
    await warp.clearNamespace("n");
    assert.equal(warp.peek("n:1"), undefined);
    await sleep(1);
    assert.equal(await warp.get("n:1"), 1);
  } finally {
    await warp.close();
  }
});
