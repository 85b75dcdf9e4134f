import assert from "node:assert/strict";
import { InProcessBus, MemoryCoordinator, MemoryStore, Warp } from "../mod.ts";
import type { ReadResult } from "../mod.ts";
import { encodeMessage, MESSAGE_BYTES_MAX, WIRE_MAGIC, WIRE_VERSION } from "../src/wire.ts";
import {
  Cluster,
  GAP_TIMEOUT_MS,
  GatedStore,
  HEARTBEAT_MS,
  LEASE_MS,
  rejectsWith,
  SESSION_MS,
  sleep,
  STALENESS_MS,
  waitFor,
} from "./_cluster.ts";

/** The part of a read's answer these tests compare: what, which version, from where. */
function answer<T>(
  read: ReadResult<T>,
): Pick<ReadResult<T>, "found" | "value" | "version" | "source"> {
  return { found: read.found, value: read.value, version: read.version, source: read.source };
}

/**
 * Awaits `promise` while a timer of the test keeps the event loop alive. Warp unrefs its
 * own timer, even while an operation waits on it (a lease, a deadline): without this,
 * `deno test` ends the test early (BUG, see the ignored test below).
 */
async function keepAlive<R>(promise: Promise<R>): Promise<R> {
  const timer = setInterval(() => {}, 10);
  try {
    return await promise;
  } finally {
    clearInterval(timer);
  }
}

// ------------------------------------------------------------------ 1. writes reach the others

Deno.test("Warp.set() on an eventual-distributed key reaches the other nodes once its invalidation arrives", async () => {
  const cluster = new Cluster();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await a.set("evl:1", "old");
    assert.equal(await b.get("evl:1"), "old");
    assert.equal(await c.get("evl:1"), "old");
    assert.equal((await b.read("evl:1")).source, "l1");
    const version = await a.set("evl:1", "new");
    assert.equal(a.peek("evl:1"), "new");
    // evl:* entries live a minute: only the invalidation can take them away this fast.
    await waitFor(
      () => b.peek("evl:1") === undefined && c.peek("evl:1") === undefined,
      "the invalidation to evict the old version on b and c",
    );
    for (const node of [b, c]) {
      assert.equal(node.stats.invalidationsApplied, 1);
      const result = await node.read("evl:1");
      assert.deepEqual(answer(result), { found: true, value: "new", version, source: "store" });
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.set() on a strong-distributed key is visible on every node when it resolves", async () => {
  const cluster = new Cluster();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await a.set("st:1", "old");
    assert.equal(await b.get("st:1"), "old");
    assert.equal(await c.get("st:1"), "old");
    // Healthy cluster: a fresh strong entry is served from L1.
    assert.equal((await b.read("st:1")).source, "l1");
    assert.equal((await c.read("st:1")).source, "l1");
    const start = performance.now();
    const version = await a.set("st:1", "new");
    const elapsedMs = performance.now() - start;
    // Nobody may serve the old value once set() resolved: checked synchronously.
    assert.notEqual(b.peek("st:1"), "old");
    assert.notEqual(c.peek("st:1"), "old");
    const values = await Promise.all([a.get("st:1"), b.get("st:1"), c.get("st:1")]);
    assert.deepEqual(values, ["new", "new", "new"]);
    assert.equal((await cluster.stored("st:1")).version, version);
    // Every holder acknowledged: the write did not wait out a lease.
    assert.equal(a.stats.leaseWaits, 0);
    assert.equal(a.stats.acksReceived, 2);
    assert.ok(elapsedMs < LEASE_MS, `A healthy strong write took ${elapsedMs} ms`);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.delete() on a strong-distributed key is visible on every node when it resolves", async () => {
  const cluster = new Cluster();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await a.set("st:1", "old");
    await b.get("st:1");
    await c.get("st:1");
    await a.delete("st:1");
    assert.equal(b.peek("st:1"), undefined);
    assert.equal(c.peek("st:1"), undefined);
    const reads = await Promise.all([a.read("st:1"), b.read("st:1"), c.read("st:1")]);
    for (const read of reads) assert.equal(read.found, false);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp operations on a strong-local key send no bus message", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await a.set("sl:1", "one");
    assert.equal(a.peek("sl:1"), "one");
    assert.equal((await a.read("sl:1")).source, "l1");
    assert.equal(await b.get("sl:1"), "one");
    await a.set("sl:1", "two");
    await a.invalidate("sl:1");
    await a.delete("sl:1");
    assert.equal(await a.get("sl:1"), undefined);
    await sleep(3 * HEARTBEAT_MS);
    // Heartbeats are the node's own liveness signal; nothing else may have been sent.
    const sent = cluster.routed.filter((m) => m.type !== "hb");
    assert.deepEqual(sent, []);
    assert.ok(cluster.routed.length > 0, "The spy saw no heartbeat either: is it wired?");
    // b was never told: strong-local is this node only, so b still serves what it read.
    assert.equal(b.peek("sl:1"), "one");
  } finally {
    await cluster.close();
  }
});

// ------------------------------------------------------------------ 2. the fill race

Deno.test("Warp.get() on an eventual-distributed key discards a slow fill that raced a newer invalidation", async () => {
  const cluster = new Cluster({ storeOf: (i, s) => i === 1 ? new GatedStore(s) : s });
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  const slow = cluster.stores[1] as GatedStore;
  try {
    await a.set("evl:1", "old");
    const hold = slow.hold("get", "evl:1");
    const reading = b.read("evl:1");
    await hold.reached; // b's store read got "old" and is held
    const invalidations = cluster.receivedCount(1, "inv");
    const version = await a.set("evl:1", "new");
    await waitFor(
      () => cluster.receivedCount(1, "inv") === invalidations + 1,
      "the invalidation to reach b",
    );
    hold.release();
    const result = await reading;
    assert.equal(result.value, "new");
    assert.equal(result.version, version);
    assert.equal(b.peek("evl:1"), "new");
    assert.equal(b.stats.staleFillsDiscarded, 1);
    assert.deepEqual(answer(await b.read("evl:1")), {
      found: true,
      value: "new",
      version,
      source: "l1",
    });
  } finally {
    await cluster.close();
  }
});

// Regression test for a bug found by review (now fixed): a read that starts after a strong write resolved joins a
// fill whose store read was issued before the write, and returns the old value: S1/S2.
Deno.test({
  name:
    "Warp.get() on a strong-distributed key started after a write resolved never returns the old value",
  fn: async () => {
    const cluster = new Cluster({ storeOf: (i, s) => i === 1 ? new GatedStore(s) : s });
    const [a, b] = cluster.nodes as [Warp, Warp, Warp];
    const slow = cluster.stores[1] as GatedStore;
    try {
      await a.set("st:1", "old");
      const hold = slow.hold("get", "st:1");
      const concurrent = b.read("st:1");
      await hold.reached; // b registered as holder and read "old"; the answer is held
      await a.set("st:1", "new"); // revokes b, which acknowledges
      assert.notEqual(b.peek("st:1"), "old");
      const after = b.read("st:1"); // invoked after the write resolved
      hold.release();
      // The concurrent read overlapped the write: either value is linearizable.
      assert.ok(["old", "new"].includes((await concurrent).value as string));
      assert.equal((await after).value, "new");
      assert.notEqual(b.peek("st:1"), "old");
      assert.equal((await b.read("st:1")).value, "new");
    } finally {
      await cluster.close();
    }
  },
});

Deno.test("Warp.get() on a strong-distributed key does not cache a slow fill that raced a write", async () => {
  const cluster = new Cluster({ storeOf: (i, s) => i === 1 ? new GatedStore(s) : s });
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  const slow = cluster.stores[1] as GatedStore;
  try {
    await a.set("st:1", "old");
    const hold = slow.hold("get", "st:1");
    const concurrent = b.read("st:1");
    await hold.reached;
    await a.set("st:1", "new");
    hold.release();
    assert.ok(["old", "new"].includes((await concurrent).value as string));
    assert.notEqual(b.peek("st:1"), "old");
    assert.equal((await b.read("st:1")).value, "new");
  } finally {
    await cluster.close();
  }
});

// Regression test for a bug found by review (now fixed): an eventual write whose store acknowledgement arrives
// after the invalidation of a newer version installs its older value: E2.
Deno.test({
  name:
    "Warp.set() on an eventual-distributed key does not install its value over a newer version it already heard of",
  fn: async () => {
    const cluster = new Cluster({ storeOf: (i, s) => i === 0 ? new GatedStore(s) : s });
    const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
    const slow = cluster.stores[0] as GatedStore;
    try {
      const hold = slow.hold("set", "evl:1");
      const writing = a.set("evl:1", "a's"); // version 1 lands, its answer is held
      await hold.reached;
      const newer = await b.set("evl:1", "b's"); // version 2
      await waitFor(
        () => cluster.receivedCount(0, "inv", "b") >= 1, // twice if b's write waited for its session
        "b's invalidation to reach a",
      );
      // a served version 2: from here on it must never serve version 1 (E2).
      assert.equal((await a.read("evl:1")).version, newer);
      await c.invalidate("evl:1");
      await waitFor(() => cluster.receivedCount(0, "drop", "c") === 1, "c's drop to reach a");
      hold.release();
      assert.equal(await writing, 1);
      assert.notEqual(a.peek("evl:1"), "a's");
      assert.equal((await a.read("evl:1")).version, newer);
    } finally {
      await cluster.close();
    }
  },
});

// ------------------------------------------------------------------ 3. lost invalidations

Deno.test("Warp heals a lost eventual-distributed invalidation after the next heartbeat and the gap timeout", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    // b must know a's sequence before the loss, else a's next heartbeat is its first word.
    await waitFor(() => cluster.receivedCount(1, "hb", "a") >= 1, "b to hear a heartbeat");
    await a.set("evl:1", "old");
    assert.equal(await b.get("evl:1"), "old");
    cluster.lose = (message, from, to) => message?.t === "inv" && from === "a" && to === "b";
    const start = performance.now();
    const version = await a.set("evl:1", "new");
    assert.equal(b.peek("evl:1"), "old"); // the invalidation was lost: still served
    await waitFor(() => b.peek("evl:1") === undefined, "the gap rule to flush b's entry");
    const healedMs = performance.now() - start;
    assert.ok(b.stats.gapsDetected >= 1);
    assert.ok(b.stats.flushes >= 1);
    // evl:* entries live a minute: the flush, not the age bound, took it away.
    assert.ok(healedMs < 2_000, `Healing took ${healedMs} ms`);
    assert.ok(
      healedMs >= GAP_TIMEOUT_MS * 0.9,
      `Flushed after ${healedMs} ms, before the gap timeout`,
    );
    assert.deepEqual(answer(await b.read("evl:1")), {
      found: true,
      value: "new",
      version,
      source: "store",
    });
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp never serves an eventual-distributed entry longer than maxStalenessMs when the bus loses everything", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await a.set("ev:1", "old");
    cluster.endpoints[1]!.disconnect();
    const readAtMs = performance.now();
    assert.equal((await b.read("ev:1")).value, "old");
    const version = await a.set("ev:1", "new");
    assert.equal(b.peek("ev:1"), "old"); // b heard nothing
    let servedOld = 0;
    for (;;) {
      // Measured before the peek, so a pause in between cannot inflate it.
      const ageMs = performance.now() - readAtMs;
      const value = b.peek("ev:1");
      if (value !== "old") break;
      servedOld++;
      assert.ok(ageMs < STALENESS_MS, `b served the old value ${ageMs} ms after reading it`);
      await sleep(2);
    }
    assert.ok(servedOld > 0);
    assert.equal(await b.get("ev:1"), "new");
    assert.equal((await b.read("ev:1")).version, version);
  } finally {
    await cluster.close();
  }
});

// ------------------------------------------------------------------ 4. silent holders

Deno.test("Warp.set() on a strong-distributed key reaches a holder cut off from the bus through its session", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await cluster.ready();
    await a.set("st:1", "old");
    assert.equal(await b.get("st:1"), "old"); // b is a holder now
    cluster.endpoints[1]!.disconnect();
    const start = performance.now();
    const version = await keepAlive(a.set("st:1", "new"));
    const elapsedMs = performance.now() - start;
    // b took the notice in at its next renewal: well before its session could have ended.
    assert.ok(elapsedMs < SESSION_MS, `The write took ${elapsedMs} ms`);
    assert.equal(a.stats.noticesPosted, 1);
    assert.equal(a.stats.leaseWaits, 0);
    assert.notEqual(b.peek("st:1"), "old");
    assert.deepEqual(await cluster.stored("st:1"), { value: "new", version });
    cluster.endpoints[1]!.reconnect();
    assert.equal(await b.get("st:1"), "new");
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.set() on a strong-distributed key waits out the session of a holder cut off from bus and coordinator", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await cluster.ready();
    await a.set("st:1", "old");
    assert.equal(await b.get("st:1"), "old");
    cluster.endpoints[1]!.disconnect();
    cluster.coordinatorCut[1] = true;
    const start = performance.now();
    const version = await keepAlive(a.set("st:1", "new"));
    const elapsedMs = performance.now() - start;
    // Done when b's session provably ended: waited out from the notice, or b removed from
    // the members by one that saw its entry unchanged for a whole session (from b's last
    // renewal, at most a third of a session before the cut).
    assert.ok(elapsedMs >= (SESSION_MS * 2) / 3, `The write took only ${elapsedMs} ms`);
    assert.equal(a.stats.noticesPosted, 1);
    assert.notEqual(b.peek("st:1"), "old", "b's session has lapsed: it serves nothing");
    assert.deepEqual(await cluster.stored("st:1"), { value: "new", version });
    cluster.endpoints[1]!.reconnect();
    cluster.coordinatorCut[1] = false;
    assert.equal(await b.get("st:1"), "new");
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.set() on a strong-distributed key waits out a silent holder's lease (sessions off)", async () => {
  const cluster = new Cluster({ node: { sessionMs: 0 } });
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await a.set("st:1", "old");
    assert.equal(await b.get("st:1"), "old"); // b is a holder now
    cluster.endpoints[1]!.disconnect();
    const start = performance.now();
    const version = await keepAlive(a.set("st:1", "new"));
    const elapsedMs = performance.now() - start;
    assert.notEqual(b.peek("st:1"), "old");
    assert.ok(elapsedMs >= LEASE_MS, `The write took only ${elapsedMs} ms`);
    assert.equal(a.stats.leaseWaits, 1);
    assert.deepEqual(await cluster.stored("st:1"), { value: "new", version });
    cluster.endpoints[1]!.reconnect();
    assert.equal(await b.get("st:1"), "new");
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.set() on a strong-distributed key fails with TIMEOUT when a silent holder's session outlasts the deadline", async () => {
  // a's deadline is legal for its own session (above 2 heartbeats + sessionMs, which
  // register checks) but shorter than b's session, which a must wait out once b is silent.
  const B_SESSION_MS = 3000;
  const cluster = new Cluster({ nodeOf: (i) => i === 1 ? { sessionMs: B_SESSION_MS } : {} });
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  const options = { mode: "strong-distributed", leaseMs: LEASE_MS } as const;
  a.register("stt:*", { ...options, writeTimeoutMs: 500 });
  for (const node of [b, c]) node.register("stt:*", { ...options, writeTimeoutMs: 5000 });
  try {
    const oldVersion = await a.set("stt:1", "old");
    assert.equal(await b.get("stt:1"), "old");
    cluster.endpoints[1]!.disconnect();
    const start = performance.now();
    await rejectsWith(keepAlive(a.set("stt:1", "new")), "TIMEOUT");
    const elapsedMs = performance.now() - start;
    assert.ok(elapsedMs < B_SESSION_MS, `The write failed only after ${elapsedMs} ms`);
    assert.deepEqual(await cluster.stored("stt:1"), { value: "old", version: oldVersion });
    assert.notEqual(a.peek("stt:1"), "new");
    // The slot was given back: once b is heard from again, a write goes through.
    cluster.endpoints[1]!.reconnect();
    await keepAlive(a.set("stt:1", "newer"));
    assert.equal(await b.get("stt:1"), "newer");
  } finally {
    await cluster.close();
  }
});

// Regression test for a bug found by review (now fixed): Warp unrefs its timer while a write waits on it, so
// nothing keeps the event loop alive during a lease wait: `deno test` fails this test with
// "Promise resolution is still pending but the event loop has already resolved", and a
// script that does not await at top level exits before the write completes.
Deno.test({
  name:
    "Warp.set() on a strong-distributed key keeps the event loop alive while it waits out a lease",
  fn: async () => {
    const cluster = new Cluster();
    const [a, b] = cluster.nodes as [Warp, Warp, Warp];
    try {
      await a.set("st:1", "old");
      await b.get("st:1");
      cluster.endpoints[1]!.disconnect();
      await a.set("st:1", "new");
    } finally {
      await cluster.close();
    }
  },
});

// ------------------------------------------------------------------ 5. coordinator down

Deno.test("Warp.set() on a strong-distributed key fails fast with COORDINATOR_UNAVAILABLE, and reads still work", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const oldVersion = await a.set("st:1", "old");
    const writesBefore = cluster.store.counts.set;
    cluster.coordinator.unavailable = true;
    const start = performance.now();
    const error = await rejectsWith(a.set("st:1", "new"), "COORDINATOR_UNAVAILABLE");
    const elapsedMs = performance.now() - start;
    assert.ok(elapsedMs < 500, `Failing took ${elapsedMs} ms (writeTimeoutMs is 5000)`);
    assert.match(error.message, /st:1/);
    assert.equal(cluster.store.counts.set, writesBefore);
    assert.deepEqual(await cluster.stored("st:1"), { value: "old", version: oldVersion });
    // Read-through: b cannot register as a holder, so it reads the store and keeps nothing.
    const read = await b.read("st:1");
    assert.deepEqual(answer(read), {
      found: true,
      value: "old",
      version: oldVersion,
      source: "store",
    });
    assert.equal(read.freshForMs, 0, "read through, not cached");
    assert.equal(b.peek("st:1"), undefined);
    assert.equal(await b.get("st:2"), undefined);
    cluster.coordinator.unavailable = false;
    assert.equal(await a.set("st:1", "new"), oldVersion + 1);
    assert.equal(await b.get("st:1"), "new");
  } finally {
    await cluster.close();
  }
});

// ------------------------------------------------------------------ 6. failed store writes

for (const key of ["evl:1", "sl:1"]) {
  Deno.test(`Warp.set() that the store fails leaves every L1 untouched (${key})`, async () => {
    const cluster = new Cluster();
    const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
    try {
      const oldVersion = await a.set(key, "old");
      assert.equal(await b.get(key), "old");
      assert.equal(await c.get(key), "old");
      const routedBefore = cluster.routed.filter((m) => m.type !== "hb").length;
      const diskFull = new Error("Disk full");
      cluster.store.failNext(diskFull);
      const error = await rejectsWith(a.set(key, "new"), "STORE_ERROR");
      assert.ok(hasCause(error, diskFull), "The store's error is not in the cause chain");
      await sleep(0);
      for (const node of [a, b, c]) assert.equal(node.peek(key), "old");
      assert.equal(cluster.routed.filter((m) => m.type !== "hb").length, routedBefore);
      assert.deepEqual(await cluster.stored(key), { value: "old", version: oldVersion });
    } finally {
      await cluster.close();
    }
  });
}

Deno.test("Warp.set() on a strong-distributed key that the store fails installs the new value nowhere", async () => {
  const cluster = new Cluster();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const oldVersion = await a.set("st:1", "old");
    await b.get("st:1");
    await c.get("st:1");
    const diskFull = new Error("Disk full");
    cluster.store.failNext(diskFull);
    const error = await rejectsWith(a.set("st:1", "new"), "STORE_ERROR");
    assert.ok(hasCause(error, diskFull), "The store's error is not in the cause chain");
    await sleep(0);
    for (const node of [a, b, c]) assert.notEqual(node.peek("st:1"), "new");
    assert.deepEqual(await cluster.stored("st:1"), { value: "old", version: oldVersion });
    for (const node of [a, b, c]) assert.equal(await node.get("st:1"), "old");
  } finally {
    await cluster.close();
  }
});

// Regression test for a bug found by review (now fixed): the cause is a second WarpError wrapping the store's error.
Deno.test({
  name: "Warp.set() that the store fails rejects with STORE_ERROR whose cause is the store's error",
  fn: async () => {
    const cluster = new Cluster();
    const [a] = cluster.nodes as [Warp, Warp, Warp];
    try {
      for (const key of ["evl:1", "sl:1", "st:1"]) {
        const diskFull = new Error("Disk full");
        cluster.store.failNext(diskFull);
        const error = await rejectsWith(a.set(key, "new"), "STORE_ERROR");
        assert.equal(error.cause, diskFull, key);
      }
    } finally {
      await cluster.close();
    }
  },
});

function hasCause(error: unknown, cause: unknown): boolean {
  for (let e = error, depth = 0; e !== undefined && depth < 10; depth++) {
    if (e === cause) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

// ------------------------------------------------------------------ 7. single flight

for (const key of ["ev:missing", "st:missing", "sl:missing"]) {
  Deno.test(`Warp.get() of a missing key, 50 at once, reads the store once (${key})`, async () => {
    const cluster = new Cluster();
    const [, b] = cluster.nodes as [Warp, Warp, Warp];
    try {
      await cluster.ready(); // a strong key is cached only under a live session
      const before = cluster.store.counts.get;
      const values = await Promise.all(Array.from({ length: 50 }, () => b.get(key)));
      assert.deepEqual(values, Array(50).fill(undefined));
      assert.equal(cluster.store.counts.get - before, 1);
      assert.equal((await b.read(key)).source, "l1");
      assert.equal(cluster.store.counts.get - before, 1);
    } finally {
      await cluster.close();
    }
  });
}

// ------------------------------------------------------------------ 8. getOrSet and warmup

Deno.test("Warp.getOrSet() calls the loader once under concurrency, stores the value, then serves it", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    let calls = 0;
    const loader = async () => {
      calls++;
      await sleep(5);
      return { report: 42 };
    };
    const values = await Promise.all(Array.from({ length: 20 }, () => a.getOrSet("evl:r", loader)));
    assert.equal(calls, 1);
    for (const value of values) assert.deepEqual(value, { report: 42 });
    assert.deepEqual(await cluster.stored("evl:r"), { value: { report: 42 }, version: 1 });
    const never = () => {
      throw new Error("The loader must not run");
    };
    assert.deepEqual(await a.getOrSet("evl:r", never), { report: 42 });
    assert.deepEqual(await b.getOrSet("evl:r", never), { report: 42 });
    assert.equal(cluster.store.counts.set, 1);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.warmup() loads a list of keys into L1", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await a.set("evl:w1", "one");
    await a.set("evl:w2", "two");
    const result = await b.warmup(["evl:w1", "evl:w2", "evl:absent", "nope:1"]);
    assert.deepEqual(result, { loaded: 3, failed: 1 });
    const reads = cluster.store.counts.get;
    assert.equal(b.peek("evl:w1"), "one");
    assert.equal(b.peek("evl:w2"), "two");
    assert.equal((await b.read("evl:absent")).source, "l1");
    assert.equal(cluster.store.counts.get, reads);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.warmup() with a prefix loads every stored key under it", async () => {
  const cluster = new Cluster();
  const [a, b] = cluster.nodes as [Warp, Warp, Warp];
  try {
    await a.set("evl:p1", 1);
    await a.set("evl:p2", 2);
    await a.set("evl:q1", 3);
    assert.deepEqual(await b.warmup({ prefix: "evl:p" }), { loaded: 2, failed: 0 });
    assert.equal(b.peek("evl:p1"), 1);
    assert.equal(b.peek("evl:p2"), 2);
    assert.equal(b.peek("evl:q1"), undefined);
    assert.deepEqual(await b.warmup({ prefix: "evl:", limit: 1 }), { loaded: 1, failed: 0 });
  } finally {
    await cluster.close();
  }
});

// ------------------------------------------------------------------ 9. errors

Deno.test("Warp rejects an unregistered key with UNREGISTERED_KEY naming it", async () => {
  const cluster = new Cluster();
  const [a] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const calls: [string, () => Promise<unknown>][] = [
      ["get", () => a.get("nope:1")],
      ["read", () => a.read("nope:1")],
      ["set", () => a.set("nope:1", 1)],
      ["delete", () => a.delete("nope:1")],
      ["invalidate", () => a.invalidate("nope:1")],
      ["getOrSet", () => a.getOrSet("nope:1", () => 1)],
    ];
    for (const [name, call] of calls) {
      const error = await rejectsWith(call(), "UNREGISTERED_KEY");
      assert.match(error.message, /nope:1/, name);
    }
    // peek agrees with get: synchronously, the same typed error.
    assert.throws(() => a.peek("nope:1"), { name: "WarpError", code: "UNREGISTERED_KEY" });
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp rejects an invalid key with a TypeError naming it", async () => {
  const cluster = new Cluster();
  const [a] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const long = "k".repeat(2000);
    for (const key of ["", 5, long, undefined] as unknown as string[]) {
      for (const call of [a.get, a.read, a.set, a.delete, a.invalidate]) {
        await assert.rejects(
          () => (call as (k: string, v?: unknown) => Promise<unknown>).call(a, key, 1),
          (error: unknown) =>
            error instanceof TypeError && error.message.includes(String(key).slice(0, 20)),
        );
      }
      await assert.rejects(() => a.getOrSet(key, () => 1), TypeError);
      await assert.rejects(() => a.warmup([key]), TypeError);
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.register() refuses a strong-distributed key on a node with a transport and no coordinator", async () => {
  const bus = new InProcessBus();
  const transport = bus.connect();
  const warp = new Warp({ store: new MemoryStore(), transport });
  try {
    assert.throws(
      () => warp.register("user:*", { mode: "strong-distributed" }),
      (error: unknown) => error instanceof TypeError && error.message.includes("user:*"),
    );
    // The other modes need no coordinator.
    warp.register("session:*", { mode: "eventual-distributed" });
    warp.register("local:*", { mode: "strong-local" });
  } finally {
    await warp.close();
    await transport.close();
  }
});

Deno.test("Warp.register() refuses invalid options with a TypeError or RangeError naming the value", async () => {
  const warp = new Warp({ store: new MemoryStore(), coordinator: new MemoryCoordinator() });
  try {
    const bogus = { mode: "bogus" } as unknown as { mode: "strong-local" };
    assert.throws(
      () => warp.register("a:*", bogus),
      (error: unknown) => error instanceof TypeError && error.message.includes("bogus"),
    );
    assert.throws(
      () => warp.register("b:*", { mode: "strong-local", ttlMs: -1 }),
      (error: unknown) => error instanceof RangeError && /ttlMs.*-1/.test(error.message),
    );
    assert.throws(
      () => warp.register("c:*", { mode: "eventual-distributed", maxStalenessMs: Number.NaN }),
      (error: unknown) => error instanceof TypeError && error.message.includes("NaN"),
    );
    assert.throws(() => warp.register("", { mode: "strong-local" }), TypeError);
    warp.register("d:*", { mode: "strong-local" });
    assert.throws(
      () => warp.register("d:*", { mode: "strong-local" }),
      (error: unknown) => error instanceof TypeError && error.message.includes("d:*"),
    );
  } finally {
    await warp.close();
  }
});

Deno.test("Warp operations after close() reject with CLOSED", async () => {
  const cluster = new Cluster();
  const [a] = cluster.nodes as [Warp, Warp, Warp];
  await cluster.close();
  await a.close(); // twice is fine
  for (const key of ["ev:1", "st:1", "sl:1"]) {
    await rejectsWith(a.get(key), "CLOSED");
    await rejectsWith(a.read(key), "CLOSED");
    await rejectsWith(a.set(key, 1), "CLOSED");
    await rejectsWith(a.delete(key), "CLOSED");
    await rejectsWith(a.invalidate(key), "CLOSED");
    await rejectsWith(a.getOrSet(key, () => 1), "CLOSED");
  }
  assert.deepEqual(await a.warmup(["ev:1"]), { loaded: 0, failed: 1 });
});

Deno.test("Warp.close() fails the operations in flight with CLOSED", async () => {
  const cluster = new Cluster({ storeOf: (i, s) => i === 0 ? new GatedStore(s) : s });
  const [a] = cluster.nodes as [Warp, Warp, Warp];
  const slow = cluster.stores[0] as GatedStore;
  const hold = slow.hold("get", "evl:1");
  const reading = a.get("evl:1");
  await hold.reached;
  await a.close();
  await rejectsWith(reading, "CLOSED");
  hold.release();
  await sleep(0);
  await cluster.close();
});

// Regression test for a bug found by review (now fixed): get() answers from L1 before checking that the node is open.
Deno.test({
  name: "Warp.get() after close() rejects with CLOSED even for a key cached in L1",
  fn: async () => {
    const cluster = new Cluster();
    const [a] = cluster.nodes as [Warp, Warp, Warp];
    for (const key of ["evl:1", "st:1", "sl:1"]) await a.set(key, "cached");
    await cluster.close();
    for (const key of ["evl:1", "st:1", "sl:1"]) {
      await rejectsWith(a.get(key), "CLOSED");
      await rejectsWith(a.getOrSet(key, () => "loaded"), "CLOSED");
    }
  },
});

// ------------------------------------------------------------------ 10. invalidate

Deno.test("Warp.invalidate() drops an eventual-distributed key on every node and leaves the store alone", async () => {
  const cluster = new Cluster();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  try {
    const version = await a.set("evl:1", "value");
    await b.get("evl:1");
    await c.get("evl:1");
    const writes = cluster.store.counts.set + cluster.store.counts.delete;
    await a.invalidate("evl:1");
    assert.equal(a.peek("evl:1"), undefined);
    await waitFor(
      () => b.peek("evl:1") === undefined && c.peek("evl:1") === undefined,
      "the drop to reach b and c",
    );
    assert.equal(cluster.store.counts.set + cluster.store.counts.delete, writes);
    assert.deepEqual(await cluster.stored("evl:1"), { value: "value", version });
    for (const node of [a, b, c]) {
      assert.deepEqual(answer(await node.read("evl:1")), {
        found: true,
        value: "value",
        version,
        source: "store",
      });
    }
  } finally {
    await cluster.close();
  }
});

// ------------------------------------------------------------------ 11. isolation

for (const key of ["evl:1", "st:1", "sl:1"]) {
  Deno.test(`Warp.set() keeps its own copy: mutating the value afterwards changes nothing (${key})`, async () => {
    const cluster = new Cluster();
    const [a, b] = cluster.nodes as [Warp, Warp, Warp];
    try {
      const value = { name: "Ada", tags: ["math"] };
      await a.set(key, value);
      value.name = "Grace";
      value.tags.push("navy");
      const expected = { name: "Ada", tags: ["math"] };
      // A strong writer installs its value once it has released the key's slot.
      await waitFor(() => a.peek(key) !== undefined, "the writer to cache its value");
      assert.deepEqual(a.peek(key), expected);
      assert.deepEqual(await a.get(key), expected);
      assert.deepEqual(await b.get(key), expected);
      assert.deepEqual((await cluster.stored(key)).value, expected);
    } finally {
      await cluster.close();
    }
  });
}

// ------------------------------------------------------------------ 12. malformed messages

Deno.test("Warp drops and counts malformed bus messages and keeps working", async () => {
  const cluster = new Cluster();
  const [a, b, c] = cluster.nodes as [Warp, Warp, Warp];
  const rogue = cluster.bus.connect({ label: "rogue" });
  try {
    const valid = encodeMessage({ t: "inv", from: "x", inc: 1, seq: 1, key: "evl:1", version: 9 });
    const oversized = new Uint8Array(MESSAGE_BYTES_MAX + 1);
    oversized.set([WIRE_MAGIC, WIRE_VERSION, valid[2]!]);
    const garbage = [
      new Uint8Array([1, 2, 3]),
      new Uint8Array(0),
      new TextEncoder().encode(JSON.stringify({ t: "inv", from: "x", key: "evl:1" })),
      valid.subarray(0, valid.length - 1),
      Uint8Array.from([...valid, 0]),
      oversized,
    ];
    for (const data of garbage) rogue.publish("warp.all", data);
    rogue.publish("warp.node.b", new Uint8Array([0xff, 0xff]));
    await waitFor(() => b.stats.malformedMessages === garbage.length + 1, "b to see the garbage");
    await sleep(0);
    assert.equal(a.stats.malformedMessages, garbage.length);
    assert.equal(c.stats.malformedMessages, garbage.length);
    for (const node of [a, b, c]) assert.equal(node.failure, undefined);
    // Still working, invalidations included.
    await a.set("evl:1", "old");
    assert.equal(await b.get("evl:1"), "old");
    await a.set("evl:1", "new");
    await waitFor(() => b.peek("evl:1") === undefined, "the invalidation to reach b");
    assert.equal(await b.get("evl:1"), "new");
    assert.equal(await c.get("evl:1"), "new");
  } finally {
    await rogue.close();
    await cluster.close();
  }
});

Deno.test("new Warp() registers its keys option at construction, validated as by register()", async () => {
  const warp = new Warp<string>({
    store: new MemoryStore(),
    keys: {
      "session:*": { mode: "eventual-distributed", maxStalenessMs: 500 },
      "config:site": { mode: "strong-distributed" },
    },
  });
  try {
    await warp.set("session:1", "ada");
    assert.equal(await warp.get("session:1"), "ada");
    await warp.set("config:site", "dark");
    assert.throws(() => warp.register("session:*", { mode: "strong-local" }), TypeError);
  } finally {
    await warp.close();
  }
  assert.throws(
    () =>
      new Warp({ store: new MemoryStore(), keys: { "a:*": { mode: "weak" as "strong-local" } } }),
    (error: Error) =>
      error instanceof TypeError && /Invalid mode for "a:\*".*: "weak"$/.test(error.message),
  );
  assert.throws(
    () => new Warp({ store: new MemoryStore(), keys: [] as never }),
    (error: Error) => error instanceof TypeError && /^Invalid keys, .*: $/.test(error.message),
  );
  assert.throws(
    () =>
      new Warp({
        store: new MemoryStore(),
        transport: new InProcessBus().connect(),
        keys: { "s:*": { mode: "strong-distributed" } },
      }),
    (error: Error) => error instanceof TypeError && /needs a coordinator/.test(error.message),
  );
});
