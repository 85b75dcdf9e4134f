import assert from "node:assert/strict";
import postgres from "postgres";
import { POSTGRES_VALUE_BYTES_MAX, PostgresStore } from "../src/store/postgres.ts";
import { VALUE_BYTES_MAX_DEFAULT } from "../src/warp.ts";

const POSTGRES_URL = Deno.env.get("WARP_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const RUN = `${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
let tableCount = 0;

const bytes = (text: string) => new TextEncoder().encode(text);
const CONFLICT = { name: "WarpError", code: "STORE_CONFLICT" };

/** Runs `fn` with a store on a fresh table, then drops the table and closes. */
async function withStore(fn: (store: PostgresStore) => Promise<void>): Promise<void> {
  const table = `warp_test_${RUN}_${tableCount++}`;
  const store = await PostgresStore.connect({ url: POSTGRES_URL, table, createTable: true });
  try {
    await fn(store);
  } finally {
    await store.close();
    const sql = postgres(POSTGRES_URL, { onnotice: () => {} });
    try {
      await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    } finally {
      await sql.end();
    }
  }
}

Deno.test("PostgresStore versions grow by one per write, across deletes", async () => {
  await withStore(async (store) => {
    assert.deepEqual(await store.get("k"), { value: undefined, version: 0 });
    assert.equal(await store.set("k", bytes("a")), 1);
    assert.equal(await store.set("k", bytes("b")), 2);
    assert.deepEqual(await store.get("k"), { value: bytes("b"), version: 2 });
    assert.equal(await store.delete("k"), 3);
    assert.deepEqual(await store.get("k"), { value: undefined, version: 3 });
    assert.equal(await store.delete("k"), 4);
    assert.equal(await store.set("k", bytes("c")), 5);
    assert.deepEqual(await store.get("k"), { value: bytes("c"), version: 5 });
    // Deleting a never-written key leaves a tombstone at version 1.
    assert.equal(await store.delete("never"), 1);
    assert.deepEqual(await store.get("never"), { value: undefined, version: 1 });
  });
});

Deno.test("PostgresStore conditional writes succeed only at the expected version", async () => {
  await withStore(async (store) => {
    assert.equal(await store.set("k", bytes("a"), { expectedVersion: 0 }), 1);
    await assert.rejects(store.set("k", bytes("x"), { expectedVersion: 0 }), CONFLICT);
    await assert.rejects(store.set("k", bytes("x"), { expectedVersion: 2 }), {
      ...CONFLICT,
      message: 'Version conflict on key "k": expected 2',
    });
    assert.equal(await store.set("k", bytes("b"), { expectedVersion: 1 }), 2);
    await assert.rejects(store.delete("k", { expectedVersion: 1 }), CONFLICT);
    assert.equal(await store.delete("k", { expectedVersion: 2 }), 3);
    // A deleted key is not at version 0: it is at its tombstone's version.
    await assert.rejects(store.set("k", bytes("x"), { expectedVersion: 0 }), CONFLICT);
    assert.equal(await store.set("k", bytes("c"), { expectedVersion: 3 }), 4);
    // A conditional write of a never-written key at a version above 0 creates nothing.
    await assert.rejects(store.set("absent", bytes("x"), { expectedVersion: 1 }), CONFLICT);
    assert.deepEqual(await store.get("absent"), { value: undefined, version: 0 });
    assert.equal(await store.delete("absent2", { expectedVersion: 0 }), 1);
    assert.deepEqual(await store.get("k"), { value: bytes("c"), version: 4 });
  });
});

Deno.test("PostgresStore lets exactly one of many concurrent conditional writers win", async () => {
  await withStore(async (store) => {
    const writers = 16;
    const creates = await Promise.allSettled(
      Array.from(
        { length: writers },
        (_, i) => store.set("race", bytes(`${i}`), { expectedVersion: 0 }),
      ),
    );
    assert.equal(creates.filter((r) => r.status === "fulfilled").length, 1);
    for (const round of [1, 2, 3]) {
      const updates = await Promise.allSettled(
        Array.from(
          { length: writers },
          (_, i) => store.set("race", bytes(`${round}:${i}`), { expectedVersion: round }),
        ),
      );
      const winners = updates.filter((r) => r.status === "fulfilled");
      assert.equal(winners.length, 1, `round ${round}`);
      assert.equal((winners[0] as PromiseFulfilledResult<number>).value, round + 1);
      for (const r of updates) {
        if (r.status === "rejected") assert.equal(r.reason.code, "STORE_CONFLICT");
      }
    }
    // Unconditional writers never lose an increment.
    await Promise.all(Array.from({ length: writers }, () => store.set("race", bytes("u"))));
    assert.equal((await store.get("race")).version, 4 + writers);
  });
});

Deno.test("PostgresStore round-trips arbitrary bytes and keys", async () => {
  await withStore(async (store) => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const large = new Uint8Array(1 << 20).map((_, i) => (i * 7919) & 0xff);
    const cases: [string, Uint8Array][] = [
      ["empty", new Uint8Array()],
      ["all bytes", all],
      ["large", large],
      ["ключ 日本 😀 'quote' \"double\" ; DROP TABLE x; --", bytes("text")],
    ];
    for (const [key, value] of cases) await store.set(key, value);
    for (const [key, value] of cases) {
      const record = await store.get(key);
      assert.ok(record.value instanceof Uint8Array);
      assert.equal(Object.getPrototypeOf(record.value), Uint8Array.prototype);
      assert.deepEqual(record.value, value, key);
    }
  });
});

Deno.test("PostgresStore.list() pages by key order, skipping tombstones", async () => {
  await withStore(async (store) => {
    const keys = ["a:1", "a:2", "a:3", "a:4", "a:5", "b:1", "a", "a;", "a:\u{10FFFF}", "ä:1"];
    for (const key of keys) await store.set(key, bytes(key));
    await store.delete("a:3");
    const seen: string[] = [];
    let page = await store.list({ prefix: "a:", limit: 2 });
    const pages = [page.keys];
    while (page.cursor !== undefined) {
      page = await store.list({ prefix: "a:", limit: 2, cursor: page.cursor });
      pages.push(page.keys);
    }
    for (const keysOfPage of pages) seen.push(...keysOfPage);
    assert.deepEqual(seen, ["a:1", "a:2", "a:4", "a:5", "a:\u{10FFFF}"]);
    assert.deepEqual(pages.map((p) => p.length), [2, 2, 1]);
    // A page that ends exactly at the last key has no cursor.
    assert.deepEqual(await store.list({ prefix: "b", limit: 1 }), { keys: ["b:1"] });
    const everything = await store.list();
    assert.deepEqual(everything.keys, [
      "a",
      "a:1",
      "a:2",
      "a:4",
      "a:5",
      "a:\u{10FFFF}",
      "a;",
      "b:1",
      "ä:1",
    ]);
    assert.equal(everything.cursor, undefined);
    assert.deepEqual(await store.list({ prefix: "\u{10FFFF}" }), { keys: [] });
    assert.deepEqual(await store.list({ prefix: "a:", cursor: "a:4" }), {
      keys: ["a:5", "a:\u{10FFFF}"],
    });
    // LIKE wildcards in a prefix are plain characters.
    await store.set("x%y", bytes("1"));
    await store.set("x_y", bytes("1"));
    await store.set("xzy", bytes("1"));
    assert.deepEqual((await store.list({ prefix: "x%" })).keys, ["x%y"]);
    assert.deepEqual((await store.list({ prefix: "x_" })).keys, ["x_y"]);
  });
});

Deno.test("PostgresStore rejects invalid arguments with TypeError and RangeError", async () => {
  await withStore(async (store) => {
    for (const key of ["", "x".repeat(1025), "\ud800", "a\u0000b", 1 as unknown as string]) {
      await assert.rejects(store.get(key), TypeError);
      await assert.rejects(store.set(key, bytes("x")), TypeError);
      await assert.rejects(store.delete(key), TypeError);
    }
    await assert.rejects(store.set("k", "x" as unknown as Uint8Array), {
      name: "TypeError",
      message: 'Invalid value: expected a Uint8Array, got "x"',
    });
    for (const expectedVersion of [-1, 1.5, NaN]) {
      await assert.rejects(store.set("k", bytes("x"), { expectedVersion }), RangeError);
    }
    for (const limit of [0, 10_001, 1.5]) {
      await assert.rejects(store.list({ limit }), { name: "RangeError" });
    }
    await assert.rejects(store.list({ prefix: "\u0000" }), TypeError);
  });
  for (const table of ["Warp", "1x", "a-b", 'x"; DROP TABLE y; --', "a".repeat(64)]) {
    await assert.rejects(PostgresStore.connect({ url: POSTGRES_URL, table }), TypeError);
  }
});

Deno.test("PostgresStore refuses a value over POSTGRES_VALUE_BYTES_MAX before any I/O, and stores Warp's default maximum", async () => {
  await withStore(async (store) => {
    await assert.rejects(store.set("big", new Uint8Array(POSTGRES_VALUE_BYTES_MAX + 1)), {
      name: "WarpError",
      code: "VALUE_TOO_LARGE",
    });
    assert.deepEqual(await store.get("big"), { value: undefined, version: 0 });
    const value = new Uint8Array(VALUE_BYTES_MAX_DEFAULT).fill(7);
    assert.equal(await store.set("big", value), 1);
    assert.equal((await store.get("big")).value?.byteLength, VALUE_BYTES_MAX_DEFAULT);
  });
});

Deno.test("PostgresStore.connect() rejects a missing table and an unreachable server", async () => {
  await assert.rejects(
    PostgresStore.connect({ url: POSTGRES_URL, table: `warp_missing_${RUN}` }),
    /does not exist/,
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  await assert.rejects(
    PostgresStore.connect({ url: `postgres://postgres@127.0.0.1:${port}/test` }),
  );
});

Deno.test("PostgresStore.close() leaves a given client open", async () => {
  const sql = postgres(POSTGRES_URL, { onnotice: () => {} });
  const table = `warp_test_${RUN}_given`;
  try {
    const store = await PostgresStore.connect({ sql, table, createTable: true });
    await store.set("k", bytes("v"));
    await store.close();
    await store.close();
    const rows = await sql`SELECT version FROM ${sql(table)} WHERE key = 'k'`;
    assert.equal(rows[0]?.version, "1");
  } finally {
    await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    await sql.end();
  }
});
