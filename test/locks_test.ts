import assert from "node:assert/strict";
import { Fence, Locks, MemoryCoordinator, WarpError } from "../mod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pair(coordinator = new MemoryCoordinator()) {
  return [
    new Locks({ coordinator, nodeId: "a" }),
    new Locks({ coordinator, nodeId: "b" }),
  ] as const;
}

Deno.test("Locks.acquire() grants one holder at a time with increasing fencing tokens", async () => {
  const [a, b] = pair();
  const first = await a.acquire("job", { ttlMs: 5000 });
  assert.equal(await b.tryAcquire("job"), undefined);
  await first.release();
  const second = await b.acquire("job", { ttlMs: 5000 });
  assert.ok(second.token > first.token);
  await second.release();
  a.close();
  b.close();
});

Deno.test("Locks waiter wakes on release through the coordinator's watch, not after the TTL", async () => {
  const [a, b] = pair();
  const held = await a.acquire("job", { ttlMs: 60_000 });
  const started = performance.now();
  const waiting = b.acquire("job", { ttlMs: 5000, timeoutMs: 5000 });
  await sleep(20);
  await held.release();
  const next = await waiting;
  assert.ok(performance.now() - started < 1000, "woke on the release");
  await next.release();
  a.close();
  b.close();
});

Deno.test("Locks waiter takes over a silent holder's lock within ttl × (1 + drift) + margin", async () => {
  const [a, b] = pair();
  const held = await a.acquire("job", { ttlMs: 300 });
  a.close(); // the holder goes silent: no renewal, no release
  const started = performance.now();
  const next = await b.acquire("job", { ttlMs: 300, timeoutMs: 5000 });
  const waited = performance.now() - started;
  assert.ok(waited >= 290 && waited < 1000, `took over after ${waited.toFixed(0)} ms`);
  assert.ok(next.token > held.token);
  await next.release();
  b.close();
});

Deno.test("LockHandle.signal fires when the lock is lost for want of renewal, and renew() then fails", async () => {
  const [a, b] = pair();
  const lock = await a.acquire("job", { ttlMs: 150 });
  assert.ok(lock.held);
  // A held lock does not keep the process alive by itself; the test does.
  const keepAlive = setTimeout(() => {}, 5000);
  const lost = new Promise<unknown>((resolve) =>
    lock.signal.addEventListener("abort", () => resolve(lock.signal.reason))
  );
  const reason = await lost;
  assert.ok(reason instanceof WarpError && reason.code === "LOCK_NOT_HELD");
  assert.ok(!lock.held);
  await assert.rejects(lock.renew(), (e) => e instanceof WarpError && e.code === "LOCK_NOT_HELD");
  clearTimeout(keepAlive);
  a.close();
  b.close();
});

Deno.test("LockHandle.renew() extends the lock so no waiter takes it over", async () => {
  const [a, b] = pair();
  const lock = await a.acquire("job", { ttlMs: 200 });
  // b waits less long than a keeps renewing: it must time out, never take over.
  const waiting = b.acquire("job", { ttlMs: 200, timeoutMs: 400 }).then(() => "acquired", (e) => e);
  for (let i = 0; i < 6; i++) {
    await sleep(80);
    await lock.renew();
  }
  const outcome = await waiting;
  assert.ok(outcome instanceof WarpError && outcome.code === "TIMEOUT", String(outcome));
  assert.ok(lock.held);
  await lock.release();
  a.close();
  b.close();
});

Deno.test("Locks.withLock() passes the token, renews past the TTL and releases after", async () => {
  const [a, b] = pair();
  const fence = new Fence();
  const result = await a.withLock("job", async (token) => {
    assert.ok(fence.admit(token));
    await sleep(350); // longer than the TTL: the background renewal keeps it
    assert.equal(await b.tryAcquire("job", { ttlMs: 100 }), undefined);
    return "done";
  }, { ttlMs: 200 });
  assert.equal(result, "done");
  const after = await b.tryAcquire("job");
  assert.ok(after !== undefined && fence.admit(after.token));
  await after.release();
  a.close();
  b.close();
});

Deno.test("Fence refuses a stale holder's token after a takeover (L2)", async () => {
  const [a, b] = pair();
  const fence = new Fence();
  const stale = await a.acquire("job", { ttlMs: 100 });
  a.close();
  const fresh = await b.acquire("job", { ttlMs: 5000, timeoutMs: 5000 });
  assert.ok(fence.admit(fresh.token));
  assert.equal(fence.admit(stale.token), false);
  await fresh.release();
  b.close();
});

Deno.test("Locks.acquire() honours an abort signal and a stale handle cannot release (L4)", async () => {
  const [a, b] = pair();
  const held = await a.acquire("job", { ttlMs: 60_000 });
  const controller = new AbortController();
  const waiting = b.acquire("job", { timeoutMs: 5000, signal: controller.signal });
  controller.abort(new Error("gave up"));
  await assert.rejects(waiting, /gave up/);
  await held.release();
  await assert.rejects(held.release(), (e) => e instanceof WarpError && e.code === "LOCK_NOT_HELD");
  a.close();
  b.close();
});

Deno.test("Locks validates its arguments, naming the value", async () => {
  const [a] = pair();
  await assert.rejects(a.acquire(""), TypeError);
  await assert.rejects(a.acquire("x", { ttlMs: -1 }), /ttlMs must be/);
  assert.throws(() => new Locks({ coordinator: undefined as never }), TypeError);
  a.close();
});

Deno.test("Locks.acquire() checks its options before taking the lock: a refused call takes nothing", async () => {
  const [a, b] = pair();
  try {
    const odd: unknown[] = [
      { signal: {} },
      { signal: "abort" },
      null,
      "options",
      { ttlMs: "5000" },
      { timeoutMs: -1 },
      { ttlMs: 0 },
    ];
    for (const options of odd) {
      await assert.rejects(
        a.acquire("job", options as never),
        (e) => (e instanceof TypeError || e instanceof RangeError) && e.message.length < 200,
        String(options),
      );
      await assert.rejects(a.tryAcquire("job", options as never));
      await assert.rejects(a.withLock("job", () => {}, options as never));
    }
    for (const name of ["", "a\ud800", "a\u0000", "x".repeat(10_000_000), 7]) {
      await assert.rejects(
        a.acquire(name as never),
        (e) =>
          e instanceof TypeError && e.message.startsWith("Invalid lock name") &&
          e.message.length < 200,
      );
    }
    // Nothing was taken: the other node gets the lock at once.
    const held = await b.tryAcquire("job");
    assert.ok(held !== undefined, "the lock is free");
    await held.release();
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("new Locks() refuses odd options with a TypeError or RangeError naming them", () => {
  const coordinator = new MemoryCoordinator();
  const refused: Record<string, unknown>[] = [
    { coordinator, prefix: 42 },
    { coordinator, prefix: "a/b" },
    { coordinator, prefix: "p".repeat(129) },
    { coordinator, nodeId: "a b" },
    { coordinator, waitersMax: 0 },
    { coordinator, waitersMax: "10" },
    { coordinator, pollMs: "x".repeat(10_000_000) },
    { coordinator, clock: 1 },
    { coordinator: { get() {} } },
  ];
  for (const options of refused) {
    assert.throws(
      () => new Locks(options as never),
      (e) => (e instanceof TypeError || e instanceof RangeError) && e.message.length < 250,
      JSON.stringify(Object.keys(options)),
    );
  }
  assert.throws(() => new Locks(null as never), TypeError);
});
