import assert from "node:assert/strict";
import { MemoryStore, merges, Warp } from "../mod.ts";
import type { Store } from "../mod.ts";
import { Cluster, waitFor } from "./_cluster.ts";

Deno.test("Warp.transaction() commits all writes, then invalidates them on every node", async () => {
  const cluster = new Cluster();
  await cluster.ready();
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    const va = await a.set("evl:acct:a", 100);
    assert.equal(await b.get("evl:acct:a"), 100);
    assert.equal(b.peek("evl:acct:a"), 100, "b caches the old balance");
    const result = await a.transaction([
      { kind: "set", key: "evl:acct:a", value: 90, expectedVersion: va },
      { kind: "set", key: "evl:acct:b", value: 10, expectedVersion: 0 },
    ]);
    assert.equal(result.status, "ok");
    const versions = (result as { versions: readonly number[] }).versions;
    assert.equal(a.peek("evl:acct:a"), undefined, "nothing is installed on commit");
    await waitFor(() => b.peek("evl:acct:a") === undefined, "b to drop the old balance");
    assert.equal(await b.get("evl:acct:a"), 90);
    assert.equal(await b.get("evl:acct:b"), 10);
    assert.deepEqual(await cluster.stored("evl:acct:a"), { value: 90, version: versions[0] });
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.transaction() with a stale check writes nothing and leaves every cache alone", async () => {
  const cluster = new Cluster();
  await cluster.ready();
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    const old = await a.set("evl:x", "x1");
    await a.set("evl:x", "x2");
    assert.equal(await b.get("evl:y"), undefined);
    await b.set("evl:y", "y1");
    const result = await a.transaction([
      { kind: "check", key: "evl:x", expectedVersion: old },
      { kind: "set", key: "evl:y", value: "y2" },
      { kind: "delete", key: "sl:z" },
    ]);
    assert.deepEqual(result, { status: "conflict" });
    assert.equal((await cluster.stored("evl:y")).value, "y1");
    assert.equal((await cluster.stored("sl:z")).version, 0);
    assert.equal(b.peek("evl:y"), "y1");
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.transaction() refuses what it cannot do, before any write", async () => {
  const cluster = new Cluster();
  const [a] = cluster.nodes as [Warp];
  a.register("views:*", { mode: "eventual-distributed", merge: merges.add });
  try {
    const refused = [
      [{ kind: "set", key: "st:1", value: 1 }],
      [{ kind: "set", key: "views:1", value: 1 }],
      [{ kind: "set", key: "sl:1", value: 1 }, { kind: "set", key: "sl:1", value: 2 }],
      [],
    ] as const;
    await assert.rejects(a.transaction(refused[0]), TypeError);
    await assert.rejects(a.transaction(refused[1]), TypeError);
    await assert.rejects(a.transaction(refused[2]), TypeError);
    await assert.rejects(a.transaction(refused[3]), RangeError);
    await assert.rejects(a.transaction([{ kind: "set", key: "nope", value: 1 }]), {
      name: "WarpError",
      code: "UNREGISTERED_KEY",
    });
    assert.equal(cluster.store.counts.transact, 0);
    // A store without transact.
    const { transact: _, ...plain } = Object.fromEntries(
      ["get", "set", "delete", "list"].map((m) => {
        const store = cluster.store as unknown as Record<string, (...a: unknown[]) => unknown>;
        return [m, store[m]!.bind(cluster.store)];
      }),
    ) as unknown as Store & { transact?: unknown };
    const lone = new Warp({ store: plain as Store });
    lone.register("sl:*", { mode: "strong-local" });
    await assert.rejects(lone.transaction([{ kind: "set", key: "sl:1", value: 1 }]), TypeError);
    await lone.close();
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.transaction() on strong-local keys: the next read sees every write", async () => {
  const warp = new Warp<number>({ store: new MemoryStore() });
  warp.register("sl:*", { mode: "strong-local" });
  try {
    await warp.set("sl:a", 1);
    assert.equal(await warp.get("sl:a"), 1);
    const result = await warp.transaction([
      { kind: "set", key: "sl:a", value: 2 },
      { kind: "delete", key: "sl:b" },
    ]);
    assert.deepEqual(result, { status: "ok", versions: [2, 1] });
    assert.equal(warp.peek("sl:a"), undefined);
    assert.equal(await warp.get("sl:a"), 2);
    assert.equal(await warp.get("sl:b"), undefined);
  } finally {
    await warp.close();
  }
});
