import assert from "node:assert/strict";
import fc from "fast-check";
import { WarpError } from "../core/errors.ts";
import { MemoryStore } from "./memory.ts";
import { isKey } from "../core/messages.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

Deno.test("MemoryStore.get() returns version 0 and no value for a key never written", async () => {
  const store = new MemoryStore();
  assert.deepEqual(await store.get("k"), { value: undefined, version: 0 });
});

Deno.test("MemoryStore.set() returns strictly increasing versions per key", async () => {
  const store = new MemoryStore();
  assert.equal(await store.set("a", bytes(1)), 1);
  assert.equal(await store.set("a", bytes(2)), 2);
  assert.equal(await store.set("b", bytes(3)), 1);
  assert.deepEqual(await store.get("a"), { value: bytes(2), version: 2 });
});

Deno.test("MemoryStore.delete() leaves a tombstone whose version later writes exceed", async () => {
  const store = new MemoryStore();
  await store.set("k", bytes(1));
  assert.equal(await store.delete("k"), 2);
  assert.deepEqual(await store.get("k"), { value: undefined, version: 2 });
  assert.equal(await store.delete("k"), 3);
  assert.equal(await store.set("k", bytes(2)), 4);
});

Deno.test("MemoryStore.set() rejects with STORE_CONFLICT when expectedVersion is stale", async () => {
  const store = new MemoryStore();
  await store.set("k", bytes(1));
  await store.set("k", bytes(2));
  const error = await store.set("k", bytes(3), { expectedVersion: 1 }).catch((e) => e);
  assert.ok(error instanceof WarpError);
  assert.equal(error.code, "STORE_CONFLICT");
  assert.match(error.message, /"k".*expected 1.*actual 2/);
  assert.deepEqual(await store.get("k"), { value: bytes(2), version: 2 });
  assert.equal(await store.set("k", bytes(3), { expectedVersion: 2 }), 3);
});

Deno.test("MemoryStore.set() with expectedVersion 0 succeeds only for a key never written", async () => {
  const store = new MemoryStore();
  assert.equal(await store.set("k", bytes(1), { expectedVersion: 0 }), 1);
  await assert.rejects(store.set("k", bytes(1), { expectedVersion: 0 }), {
    code: "STORE_CONFLICT",
  });
  await store.delete("k");
  await assert.rejects(store.set("k", bytes(1), { expectedVersion: 0 }), {
    code: "STORE_CONFLICT",
  });
});

Deno.test("MemoryStore.delete() rejects with STORE_CONFLICT when expectedVersion is stale", async () => {
  const store = new MemoryStore();
  await store.set("k", bytes(1));
  await assert.rejects(store.delete("k", { expectedVersion: 3 }), { code: "STORE_CONFLICT" });
  assert.equal(await store.delete("k", { expectedVersion: 1 }), 2);
});

Deno.test("MemoryStore copies bytes on set and on get", async () => {
  const store = new MemoryStore();
  const value = bytes(1, 2, 3);
  await store.set("k", value);
  value[0] = 9;
  const read = await store.get("k");
  assert.deepEqual(read.value, bytes(1, 2, 3));
  read.value![1] = 9;
  assert.deepEqual((await store.get("k")).value, bytes(1, 2, 3));
});

Deno.test("MemoryStore operations complete asynchronously, also with latencyMs 0", async () => {
  const store = new MemoryStore();
  let done = false;
  const pending = store.set("k", bytes(1)).then(() => done = true);
  assert.equal(done, false);
  await pending;
  assert.equal(done, true);
});

Deno.test("MemoryStore applies a write after latencyMs has passed", async () => {
  const store = new MemoryStore({ latencyMs: 5 });
  const started = performance.now();
  await store.set("k", bytes(1));
  assert.ok(performance.now() - started >= 4);
  assert.equal((await store.get("k")).version, 1);
});

Deno.test("MemoryStore.failNext() makes the next operation reject without effect", async () => {
  const store = new MemoryStore();
  await store.set("k", bytes(1));
  const failure = new Error("Disk full");
  store.failNext(failure);
  store.failNext(failure);
  await assert.rejects(store.set("k", bytes(2)), (e) => e === failure);
  await assert.rejects(store.delete("k"), (e) => e === failure);
  assert.deepEqual(await store.get("k"), { value: bytes(1), version: 1 });
  assert.equal(await store.set("k", bytes(2)), 2);
});

Deno.test("MemoryStore.list() pages through keys in ascending order without tombstones", async () => {
  const store = new MemoryStore();
  for (const key of ["b:2", "a:1", "b:1", "b:3", "c:1", "b:0"]) await store.set(key, bytes());
  await store.delete("b:0");
  assert.deepEqual(await store.list(), { keys: ["a:1", "b:1", "b:2", "b:3", "c:1"] });
  const first = await store.list({ prefix: "b:", limit: 2 });
  assert.deepEqual(first, { keys: ["b:1", "b:2"], cursor: "b:2" });
  const second = await store.list({ prefix: "b:", limit: 2, cursor: first.cursor! });
  assert.deepEqual(second, { keys: ["b:3"] });
  assert.deepEqual(await store.list({ prefix: "z" }), { keys: [] });
  assert.deepEqual(await store.list({ prefix: "b:", limit: 3 }), { keys: ["b:1", "b:2", "b:3"] });
});

Deno.test("MemoryStore.list() matches a sorted, filtered model for any keys and page size", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(
        // Any valid key: astral characters included, lone surrogates and NUL not.
        fc.string({ minLength: 1, maxLength: 4, unit: "binary" }).filter((key) => isKey(key)),
        { maxLength: 40 },
      ),
      fc.array(fc.nat(), { maxLength: 10 }),
      fc.string({ maxLength: 2 }),
      fc.integer({ min: 1, max: 7 }),
      async (keys, deletions, prefix, limit) => {
        const store = new MemoryStore();
        for (const key of keys) await store.set(key, bytes());
        const deleted = new Set<string>();
        for (const index of deletions) {
          if (keys.length === 0) break;
          const key = keys[index % keys.length]!;
          deleted.add(key);
          await store.delete(key);
        }
        const expected = keys.filter((k) => !deleted.has(k) && k.startsWith(prefix))
          .sort((a, b) => a < b ? -1 : a > b ? 1 : 0);
        const listed: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages <= expected.length; pages++) {
          const page = await store.list({ prefix, limit, ...(cursor ? { cursor } : {}) });
          assert.ok(page.keys.length <= limit);
          listed.push(...page.keys);
          cursor = page.cursor;
          if (cursor === undefined) break;
        }
        assert.equal(cursor, undefined);
        assert.deepEqual(listed, expected);
      },
    ),
  );
});

Deno.test("MemoryStore.list() rejects a limit outside 1 to 10000 with a RangeError", async () => {
  const store = new MemoryStore();
  for (const limit of [0, -1, 10_001, 1.5, NaN]) {
    await assert.rejects(store.list({ limit }), RangeError);
  }
  await assert.rejects(store.list({ limit: 0 }), { message: "Invalid limit: 0" });
  assert.deepEqual(await store.list({ limit: 10_000 }), { keys: [] });
});

Deno.test("MemoryStore rejects invalid keys and values with a TypeError", async () => {
  const store = new MemoryStore();
  await assert.rejects(store.get(""), {
    name: "TypeError",
    message: 'Invalid key, it is empty: ""',
  });
  await assert.rejects(store.get("x".repeat(1025)), TypeError);
  await assert.rejects(store.get(1 as unknown as string), {
    message: "Invalid key, expected a string: 1",
  });
  // What PostgreSQL text cannot hold is refused here too, so tests see what production sees.
  await assert.rejects(store.set("a\ud800", bytes()), /lone surrogate/);
  await assert.rejects(store.set("a\u0000", bytes()), /NUL/);
  await assert.rejects(
    store.set("k", "v" as unknown as Uint8Array),
    { name: "TypeError", message: 'Invalid value: expected a Uint8Array, got "v"' },
  );
  await assert.rejects(store.set("k", bytes(), { expectedVersion: -1 }), RangeError);
  await assert.rejects(store.delete("k", { expectedVersion: 0.5 }), RangeError);
  assert.equal(await store.set("x".repeat(1024), bytes()), 1);
  assert.equal(store.counts.set, 1);
});

Deno.test("MemoryStore rejects a new key beyond keysMax with LIMIT_EXCEEDED", async () => {
  const store = new MemoryStore({ keysMax: 2 });
  await store.set("a", bytes());
  await store.set("b", bytes());
  await assert.rejects(store.set("c", bytes()), { code: "LIMIT_EXCEEDED" });
  assert.equal(await store.set("a", bytes()), 2);
  assert.equal(store.size, 2);
});

Deno.test("MemoryStore constructor rejects a negative latencyMs with a RangeError", () => {
  assert.throws(() => new MemoryStore({ latencyMs: -1 }), {
    name: "RangeError",
    message: "Invalid latencyMs: -1",
  });
  assert.throws(() => new MemoryStore({ keysMax: 0 }), RangeError);
});
