import assert from "node:assert/strict";
import { WarpError } from "../core/errors.ts";
import { MemoryCoordinator } from "./memory.ts";
import { testCoordinator } from "../../test/_coordinator_suite.ts";

testCoordinator({
  name: "MemoryCoordinator",
  ttlMs: 100,
  open() {
    let nowMs = 0;
    const coordinator = new MemoryCoordinator({ clock: () => nowMs });
    return Promise.resolve({
      coordinator,
      another: () => Promise.resolve(coordinator),
      now: () => nowMs,
      elapse: (ms: number) => {
        nowMs += ms;
        return Promise.resolve();
      },
      close: () => Promise.resolve(),
    });
  },
});

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

Deno.test("MemoryCoordinator revisions come from one counter over all keys and deletes", async () => {
  const coordinator = new MemoryCoordinator();
  assert.equal(await coordinator.create("a", bytes()), 1);
  assert.equal(await coordinator.create("b", bytes()), 2);
  await coordinator.delete("a");
  assert.equal(coordinator.revision, 3);
  assert.equal(await coordinator.create("a", bytes()), 4);
  assert.equal(await coordinator.update("b", bytes(), 2), 5);
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

Deno.test("MemoryCoordinator refuses its internal TTL key form and invalid options", async () => {
  const coordinator = new MemoryCoordinator();
  await assert.rejects(coordinator.get(""), {
    name: "TypeError",
    message: 'Invalid key, it is empty: ""',
  });
  await assert.rejects(coordinator.create("\u0000ttl:1000\u0000k", bytes()), TypeError);
  for (const options of [{ latencyMs: NaN }, { keysMax: 0 }, { watchersMax: 1.5 }]) {
    assert.throws(() => new MemoryCoordinator(options), RangeError);
  }
});

Deno.test("MemoryCoordinator.create() rejects with LIMIT_EXCEEDED beyond keysMax", async () => {
  const coordinator = new MemoryCoordinator({ keysMax: 1 });
  await coordinator.create("a", bytes());
  await assert.rejects(coordinator.create("b", bytes()), { code: "LIMIT_EXCEEDED" });
  await coordinator.delete("a");
  await coordinator.create("b", bytes());
});
