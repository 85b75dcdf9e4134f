/**
 * `Store.transact` on both stores: all or nothing, checks on versions, exactly one of two
 * racing transactions over the same keys wins, and bad steps are refused before any I/O.
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { MemoryStore } from "../mod.ts";
import type { Store } from "../mod.ts";
import { PostgresStore } from "../src/postgres/mod.ts";

const POSTGRES_URL = Deno.env.get("WARP_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const CONFLICT = { name: "WarpError", code: "STORE_CONFLICT" };
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) =>
  value === undefined ? undefined : new TextDecoder().decode(value);

type TransactStore = Store & Required<Pick<Store, "transact">>;

async function withPostgres(fn: (store: TransactStore) => Promise<void>): Promise<void> {
  const table = `warp_test_tx_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const store = await PostgresStore.connect({ url: POSTGRES_URL, table, createTable: true });
  try {
    await fn(store);
  } finally {
    await store.close();
    const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
    await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    await sql`DROP SEQUENCE IF EXISTS ${sql(`${table}_version`)}`;
    await sql.end();
  }
}

const STORES: [string, (fn: (store: TransactStore) => Promise<void>) => Promise<void>][] = [
  ["MemoryStore", (fn) => fn(new MemoryStore())],
  ["PostgresStore", withPostgres],
];

for (const [name, withStore] of STORES) {
  Deno.test(`${name}.transact() writes every step or none`, async () => {
    await withStore(async (store) => {
      const a = await store.set("a", bytes("5"));
      const [va, vb] = await store.transact([
        { kind: "write", key: "a", value: bytes("4"), expectedVersion: a },
        { kind: "write", key: "b", value: bytes("1"), expectedVersion: 0 },
      ]);
      assert.ok(va! > a && vb! > 0);
      // A failed check anywhere: nothing written, whatever the order of the steps.
      await assert.rejects(
        store.transact([
          { kind: "write", key: "c", value: bytes("x") },
          { kind: "write", key: "b", value: bytes("2") },
          { kind: "check", key: "a", expectedVersion: a },
        ]),
        CONFLICT,
      );
      assert.equal((await store.get("c")).version, 0);
      assert.deepEqual([text((await store.get("b")).value), (await store.get("b")).version], [
        "1",
        vb,
      ]);
      // A check that holds, a delete.
      const [checked, deleted] = await store.transact([
        { kind: "check", key: "a", expectedVersion: va! },
        { kind: "write", key: "b" },
      ]);
      assert.equal(checked, va);
      assert.deepEqual(await store.get("b"), { value: undefined, version: deleted });
    });
  });

  Deno.test(`${name}.transact(): of two racing transfers over the same keys, one wins`, async () => {
    await withStore(async (store) => {
      const a = await store.set("acct:a", bytes("10"));
      const b = await store.set("acct:b", bytes("0"));
      const transfer = (from: string, to: string) =>
        store.transact([
          { kind: "write", key: "acct:a", value: bytes(from), expectedVersion: a },
          { kind: "write", key: "acct:b", value: bytes(to), expectedVersion: b },
        ]);
      const results = await Promise.allSettled([transfer("9", "1"), transfer("8", "2")]);
      const won = results.filter((r) => r.status === "fulfilled");
      assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
      const sum = Number(text((await store.get("acct:a")).value)) +
        Number(text((await store.get("acct:b")).value));
      assert.equal(sum, 10);
    });
  });

  Deno.test(`${name}.transact() refuses bad steps before any I/O`, async () => {
    await withStore(async (store) => {
      await assert.rejects(store.transact([]), RangeError);
      await assert.rejects(
        store.transact([{ kind: "write", key: "k" }, { kind: "write", key: "k" }]),
        TypeError,
      );
      await assert.rejects(store.transact([{ kind: "check", key: "k" }]), TypeError);
      await assert.rejects(
        store.transact([{ kind: "write", key: "k", value: "v" as never }]),
        TypeError,
      );
      await assert.rejects(
        store.transact([{ kind: "check", key: "k", expectedVersion: -1 }]),
        RangeError,
      );
      await assert.rejects(store.transact([{ kind: "other" as never, key: "k" }]), TypeError);
      assert.equal((await store.get("k")).version, 0);
    });
  });
}
