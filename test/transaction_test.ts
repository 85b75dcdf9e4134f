import assert from "node:assert/strict";
import { MemoryStore, merges, Warp } from "../mod.ts";
import type { Store } from "../mod.ts";
import { Cluster, waitFor } from "./_cluster.ts";
import postgres from "postgres";
import { PostgresStore } from "../src/postgres/mod.ts";

const POSTGRES_URL = Deno.env.get("WARP_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

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
      [{ kind: "check", key: "sl:1" } as never],
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

Deno.test("Warp.transaction() over two strong keys cached on other nodes: once ok, no node serves the old values", async () => {
  const cluster = new Cluster();
  await cluster.ready();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const vx = await a.set("st:acct:x", 100);
    await a.set("st:acct:y", 0);
    for (const node of [b, c]) {
      assert.equal(await node.get("st:acct:x"), 100);
      assert.equal(await node.get("st:acct:y"), 0);
      assert.equal(node.peek("st:acct:x"), 100, "cached before the transaction");
    }
    const result = await a.transaction([
      { kind: "set", key: "st:acct:y", value: 10 },
      { kind: "set", key: "st:acct:x", value: 90, expectedVersion: vx },
      { kind: "set", key: "evl:log", value: "x->y" },
    ]);
    assert.equal(result.status, "ok");
    for (const node of [a, b, c]) {
      assert.notEqual(node.peek("st:acct:x"), 100, `${node.nodeId} serves the old x`);
      assert.notEqual(node.peek("st:acct:y"), 0, `${node.nodeId} serves the old y`);
    }
    for (const node of [b, c]) {
      assert.equal(await node.get("st:acct:x"), 90);
      assert.equal(await node.get("st:acct:y"), 10);
    }
    assert.equal(await a.get("evl:log"), "x->y");
    const versions = (result as { versions: readonly number[] }).versions;
    assert.deepEqual(await cluster.stored("st:acct:x"), { value: 90, version: versions[1] });
    // The slots are free again: b caches the new value and a plain write still works.
    await waitFor(() => b.peek("st:acct:x") === 90, "b to cache the new x");
    await c.set("st:acct:x", 91);
    assert.equal(await b.get("st:acct:x"), 91);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.transaction() over strong keys that conflicts writes nothing and leaves every cache as it was", async () => {
  const cluster = new Cluster();
  await cluster.ready();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const stale = await a.set("st:p", "p1");
    await a.set("st:p", "p2");
    await a.set("st:q", "q1");
    for (const node of [b, c]) {
      assert.equal(await node.get("st:p"), "p2");
      assert.equal(await node.get("st:q"), "q1");
    }
    // st:p comes first in key order: its stale version is seen before anything is revoked.
    const result = await a.transaction([
      { kind: "set", key: "st:q", value: "q2" },
      { kind: "set", key: "st:p", value: "p3", expectedVersion: stale },
    ]);
    assert.deepEqual(result, { status: "conflict" });
    for (const node of [b, c]) {
      assert.equal(node.peek("st:p"), "p2", `${node.nodeId} keeps p`);
      assert.equal(node.peek("st:q"), "q1", `${node.nodeId} keeps q`);
    }
    assert.equal((await cluster.stored("st:q")).value, "q1");
    // A conflict found at the commit (an eventual key's check): nothing new anywhere.
    const late = await a.transaction([
      { kind: "set", key: "st:q", value: "q3" },
      { kind: "check", key: "evl:never", expectedVersion: 5 },
    ]);
    assert.deepEqual(late, { status: "conflict" });
    for (const node of [a, b, c]) {
      assert.notEqual(node.peek("st:q"), "q3");
      assert.equal(await node.get("st:q"), "q1");
    }
    await b.set("st:q", "q4"); // the slot was given back
    assert.equal(await c.get("st:q"), "q4");
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.transaction() over overlapping strong keys in opposite orders, concurrently: no deadlock, each ok or conflict", async () => {
  const cluster = new Cluster();
  await cluster.ready();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const keys = ["st:k1", "st:k2", "st:k3"];
    for (const key of keys) await a.set(key, 0);
    const runs = [];
    for (let round = 0; round < 5; round++) {
      runs.push(
        a.transaction(keys.map((key) => ({ kind: "set", key, value: round * 10 + 1 }))),
        b.transaction(
          keys.toReversed().map((key) => ({ kind: "set", key, value: round * 10 + 2 })),
        ),
        c.transaction([
          { kind: "set", key: "st:k3", value: round * 10 + 3 },
          { kind: "set", key: "st:k1", value: round * 10 + 3 },
        ]),
      );
    }
    const outcomes = await Promise.allSettled(runs);
    let ok = 0;
    for (const outcome of outcomes) {
      if (outcome.status === "fulfilled") {
        ok += outcome.value.status === "ok" ? 1 : 0;
      } else {
        // Contention may fail one with a typed error, never hang.
        assert.equal(outcome.reason.name, "WarpError", String(outcome.reason));
      }
    }
    assert.ok(ok > 0, "some transaction committed");
    // All or nothing: every transaction writes k1 and k3 alike, so the last one decides both.
    assert.equal((await cluster.stored("st:k1")).value, (await cluster.stored("st:k3")).value);
    for (const node of [a, b, c]) {
      for (const key of keys) {
        assert.deepEqual(await node.get(key), (await cluster.stored(key)).value, key);
      }
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.transaction() over a strong key whose store was written around Warp conflicts once, then the retry commits", async () => {
  const cluster = new Cluster();
  await cluster.ready();
  const [a, b] = cluster.nodes as [Warp, Warp];
  try {
    await a.set("st:ext", 1);
    // The application writes the store directly: the holder record's version is stale.
    const outside = await cluster.store.set("st:ext", new TextEncoder().encode("2"));
    const stale = await a.transaction([{ kind: "set", key: "st:ext", value: 3 }]);
    assert.deepEqual(stale, { status: "conflict" });
    const retry = await a.transaction([{ kind: "set", key: "st:ext", value: 3 }]);
    assert.equal(retry.status, "ok");
    await cluster.store.set("st:ext", new TextEncoder().encode("4"));
    const current = (await cluster.stored("st:ext")).version;
    assert.deepEqual(
      await b.transaction([{ kind: "set", key: "st:ext", value: 5, expectedVersion: current }]),
      { status: "conflict" },
    );
    const again = await b.transaction([
      { kind: "set", key: "st:ext", value: 5, expectedVersion: current },
    ]);
    assert.equal(again.status, "ok");
    assert.ok(current > outside);
    assert.equal(await a.get("st:ext"), 5);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.transaction() over strong keys on PostgreSQL: caches revoked on commit, left alone on conflict, no deadlock in opposite orders", async () => {
  const table = `warp_test_stx_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const store = await PostgresStore.connect({ url: POSTGRES_URL, table, createTable: true });
  const cluster = new Cluster({ storeOf: () => store });
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  const stored = async (key: string) => {
    const record = await store.get(key);
    return record.value === undefined
      ? undefined
      : JSON.parse(new TextDecoder().decode(record.value));
  };
  try {
    await cluster.ready();
    const vx = await a.set("st:x", 1);
    await a.set("st:y", 1);
    for (const node of [b, c]) {
      assert.equal(await node.get("st:x"), 1);
      assert.equal(await node.get("st:y"), 1);
    }
    const conflict = await a.transaction([
      { kind: "set", key: "st:x", value: 2, expectedVersion: vx - 1 },
      { kind: "set", key: "st:y", value: 2 },
    ]);
    assert.deepEqual(conflict, { status: "conflict" });
    for (const node of [b, c]) assert.equal(node.peek("st:x"), 1);
    assert.equal(await stored("st:y"), 1);
    const ok = await a.transaction([
      { kind: "set", key: "st:y", value: 3 },
      { kind: "set", key: "st:x", value: 3, expectedVersion: vx },
    ]);
    assert.equal(ok.status, "ok");
    for (const node of [a, b, c]) {
      assert.notEqual(node.peek("st:x"), 1);
      assert.notEqual(node.peek("st:y"), 1);
      assert.equal(await node.get("st:x"), 3);
      assert.equal(await node.get("st:y"), 3);
    }
    const keys = ["st:x", "st:y"];
    const outcomes = await Promise.allSettled(
      [a, b, c].flatMap((node, i) =>
        [0, 1].map((round) =>
          node.transaction(
            (i % 2 === 0 ? keys : keys.toReversed()).map((key) => ({
              kind: "set" as const,
              key,
              value: 10 * round + i,
            })),
          )
        )
      ),
    );
    for (const outcome of outcomes) {
      if (outcome.status === "rejected") assert.equal(outcome.reason.name, "WarpError");
    }
    assert.ok(outcomes.some((o) => o.status === "fulfilled" && o.value.status === "ok"));
    assert.equal(await stored("st:x"), await stored("st:y"));
    for (const node of [a, b, c]) {
      for (const key of keys) assert.equal(await node.get(key), await stored(key));
    }
  } finally {
    await cluster.close();
    await store.close();
    const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
    await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    await sql`DROP SEQUENCE IF EXISTS ${sql(`${table}_version`)}`;
    await sql.end();
  }
});
