import assert from "node:assert/strict";
import fc from "fast-check";
import { WarpError } from "../core/errors.ts";
import { MemoryCoordinator } from "./memory.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

Deno.test("MemoryCoordinator.create() rejects with CONTENDED when the key exists", async () => {
  const coordinator = new MemoryCoordinator();
  assert.equal(await coordinator.create("k", bytes(1)), 1);
  const error = await coordinator.create("k", bytes(2)).catch((e) => e);
  assert.ok(error instanceof WarpError);
  assert.equal(error.code, "CONTENDED");
  assert.equal(error.message, 'Key already exists: "k"');
  assert.deepEqual(await coordinator.get("k"), { value: bytes(1), revision: 1 });
});

Deno.test("MemoryCoordinator.update() rejects with CONTENDED when the revision moved", async () => {
  const coordinator = new MemoryCoordinator();
  const first = await coordinator.create("k", bytes(1));
  const second = await coordinator.update("k", bytes(2), first);
  assert.equal(second, 2);
  await assert.rejects(coordinator.update("k", bytes(3), first), {
    code: "CONTENDED",
    message: 'Revision moved on key "k": expected 1, actual 2',
  });
  await assert.rejects(coordinator.update("absent", bytes(3), 1), { code: "CONTENDED" });
  assert.deepEqual(await coordinator.get("k"), { value: bytes(2), revision: 2 });
});

Deno.test("MemoryCoordinator.delete() with a moved revision rejects with CONTENDED", async () => {
  const coordinator = new MemoryCoordinator();
  const revision = await coordinator.create("k", bytes(1));
  await coordinator.update("k", bytes(2), revision);
  await assert.rejects(coordinator.delete("k", revision), { code: "CONTENDED" });
  await coordinator.delete("k", revision + 1);
  assert.equal(await coordinator.get("k"), undefined);
  await assert.rejects(coordinator.delete("k", revision + 1), { code: "CONTENDED" });
  await coordinator.delete("k");
});

Deno.test("MemoryCoordinator revisions come from one counter over all keys and deletes", async () => {
  const coordinator = new MemoryCoordinator();
  assert.equal(await coordinator.create("a", bytes()), 1);
  assert.equal(await coordinator.create("b", bytes()), 2);
  await coordinator.delete("a");
  assert.equal(coordinator.revision, 3);
  assert.equal(await coordinator.create("a", bytes()), 4);
  assert.equal(await coordinator.update("b", bytes(), 2), 5);
});

Deno.test("MemoryCoordinator.create() lets exactly one of concurrent creators win", async () => {
  const coordinator = new MemoryCoordinator({ latencyMs: 1 });
  const results = await Promise.allSettled(
    Array.from({ length: 10 }, (_, i) => coordinator.create("lock", bytes(i))),
  );
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
  for (const result of results) {
    if (result.status === "rejected") assert.equal(result.reason.code, "CONTENDED");
  }
});

Deno.test("MemoryCoordinator copies bytes in and out", async () => {
  const coordinator = new MemoryCoordinator();
  const value = bytes(1, 2);
  await coordinator.create("k", value);
  value[0] = 9;
  const entry = await coordinator.get("k");
  assert.deepEqual(entry?.value, bytes(1, 2));
  entry!.value[1] = 9;
  assert.deepEqual((await coordinator.get("k"))?.value, bytes(1, 2));
});

Deno.test("MemoryCoordinator rejects every call with COORDINATOR_UNAVAILABLE while unavailable", async () => {
  const coordinator = new MemoryCoordinator();
  const revision = await coordinator.create("k", bytes(1));
  coordinator.unavailable = true;
  for (
    const call of [
      () => coordinator.get("k"),
      () => coordinator.create("j", bytes()),
      () => coordinator.update("k", bytes(2), revision),
      () => coordinator.delete("k"),
    ]
  ) {
    await assert.rejects(call(), { name: "WarpError", code: "COORDINATOR_UNAVAILABLE" });
  }
  coordinator.unavailable = false;
  assert.deepEqual(await coordinator.get("k"), { value: bytes(1), revision });
  assert.equal(coordinator.revision, revision);
});

Deno.test("MemoryCoordinator.watch() reports writes and deletes after the writing call", async () => {
  const coordinator = new MemoryCoordinator();
  const seen: unknown[] = [];
  const stop = coordinator.watch("k", (entry) => seen.push(entry));
  coordinator.watch("other", () => assert.fail("Wrong key notified"));
  const revision = await coordinator.create("k", bytes(1));
  await coordinator.update("k", bytes(2), revision);
  await coordinator.delete("k");
  await Promise.resolve();
  assert.deepEqual(seen, [
    { value: bytes(1), revision: 1 },
    { value: bytes(2), revision: 2 },
    undefined,
  ]);
  stop();
  stop();
  await coordinator.create("k", bytes(3));
  await Promise.resolve();
  assert.equal(seen.length, 3);
});

Deno.test("MemoryCoordinator.watch() never calls a listener inside the writing call", () => {
  const coordinator = new MemoryCoordinator();
  let called = false;
  coordinator.watch("k", () => called = true);
  const pending = coordinator.create("k", bytes());
  assert.equal(called, false);
  return pending.then(() => Promise.resolve()).then(() => assert.equal(called, true));
});

Deno.test("MemoryCoordinator.watch() throws a RangeError beyond watchersMax", () => {
  const coordinator = new MemoryCoordinator({ watchersMax: 2 });
  const stop = coordinator.watch("a", () => {});
  coordinator.watch("a", () => {});
  assert.throws(() => coordinator.watch("b", () => {}), {
    name: "RangeError",
    message: "Too many watchers: 2",
  });
  stop();
  coordinator.watch("b", () => {});
});

Deno.test("MemoryCoordinator rejects invalid arguments with TypeError and RangeError", async () => {
  const coordinator = new MemoryCoordinator();
  await assert.rejects(coordinator.get(""), {
    name: "TypeError",
    message: 'Invalid key, it is empty: ""',
  });
  for (const key of ["a\u0000", "\u0000ttl:1000\u0000k", "a\ud800", "x".repeat(4097)]) {
    await assert.rejects(coordinator.create(key, bytes()), TypeError);
  }
  await assert.rejects(coordinator.create("k", [1] as unknown as Uint8Array), TypeError);
  await assert.rejects(coordinator.update("k", bytes(), 0), {
    name: "RangeError",
    message: "Invalid revision: 0",
  });
  await assert.rejects(coordinator.delete("k", 1.5), RangeError);
  assert.throws(() => coordinator.watch("k", "f" as never), TypeError);
  assert.throws(() => new MemoryCoordinator({ latencyMs: NaN }), RangeError);
});

Deno.test("MemoryCoordinator.create() rejects with LIMIT_EXCEEDED beyond keysMax", async () => {
  const coordinator = new MemoryCoordinator({ keysMax: 1 });
  await coordinator.create("a", bytes());
  await assert.rejects(coordinator.create("b", bytes()), { code: "LIMIT_EXCEEDED" });
  await coordinator.delete("a");
  await coordinator.create("b", bytes());
});

type Op =
  | { type: "create"; key: string }
  | { type: "update"; key: string; offset: number }
  | { type: "delete"; key: string; offset: number | undefined };

Deno.test("MemoryCoordinator behaves like a map of compare-and-set registers", async () => {
  const key = fc.constantFrom("a", "b", "c");
  const offset = fc.integer({ min: -1, max: 1 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ type: fc.constant("create" as const), key }),
    fc.record({ type: fc.constant("update" as const), key, offset }),
    fc.record({
      type: fc.constant("delete" as const),
      key,
      offset: fc.option(offset, { nil: undefined }),
    }),
  );
  await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
    const coordinator = new MemoryCoordinator();
    const model = new Map<string, number>();
    let revision = 0;
    for (const [i, o] of ops.entries()) {
      const current = model.get(o.key);
      const sent = o.type === "create" || o.offset === undefined
        ? undefined
        : Math.max(1, (current ?? 1) + o.offset);
      const call = o.type === "create"
        ? coordinator.create(o.key, bytes(i))
        : o.type === "update"
        ? coordinator.update(o.key, bytes(i), sent!)
        : coordinator.delete(o.key, sent);
      const outcome = await call.then(() => true, (e) => {
        assert.equal(e.code, "CONTENDED");
        return false;
      });
      const expected = o.type === "create"
        ? current === undefined
        : sent === undefined || sent === current;
      assert.equal(outcome, expected, `op ${i}: ${JSON.stringify(o)}`);
      if (!expected) continue;
      revision++;
      if (o.type === "delete") model.delete(o.key);
      else model.set(o.key, revision);
      assert.equal(coordinator.revision, revision);
    }
    for (const k of ["a", "b", "c"]) {
      assert.equal((await coordinator.get(k))?.revision, model.get(k));
    }
  }));
});

Deno.test("MemoryCoordinator forgets a record written with a TTL, in its own key space", async () => {
  let now = 0;
  const coordinator = new MemoryCoordinator({ clock: () => now });
  const bytes = new Uint8Array([1]);
  const first = await coordinator.create("lease/x", bytes, { ttlMs: 100 });
  // The same key without a TTL, or with another, is another record.
  assert.equal(await coordinator.get("lease/x"), undefined);
  assert.equal(await coordinator.get("lease/x", { ttlMs: 200 }), undefined);
  now = 90;
  const second = await coordinator.update("lease/x", bytes, first, { ttlMs: 100 });
  now = 189; // 99 ms after the last write: still there
  assert.equal((await coordinator.get("lease/x", { ttlMs: 100 }))?.revision, second);
  now = 190;
  assert.equal(await coordinator.get("lease/x", { ttlMs: 100 }), undefined);
  await assert.rejects(coordinator.update("lease/x", bytes, second, { ttlMs: 100 }), {
    code: "CONTENDED",
  });
  assert.ok((await coordinator.create("lease/x", bytes, { ttlMs: 100 })) > second);
  await assert.rejects(coordinator.get("k", { ttlMs: 0 }), RangeError);
});
