/**
 * Events and logging of a Warp node: each event type caused on purpose and seen by a
 * listener with its fields, the counts equal to `stats`, a throwing listener or logger
 * counted without breaking the node, and the level each event is logged at.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Observer } from "../src/observe.ts";
import {
  encodeMessage,
  EVENT_LOG_LEVELS,
  InProcessBus,
  type Logger,
  MemoryCoordinator,
  MemoryStore,
  Warp,
  WARP_EVENT_TYPES,
  type WarpEvent,
} from "../mod.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Listens to every event type of `warp`, in order. */
function record(warp: Warp): WarpEvent[] {
  const events: WarpEvent[] = [];
  for (const type of WARP_EVENT_TYPES) warp.on(type, (event) => events.push(event));
  return events;
}

/** A logger that keeps every call. */
function recordingLogger(): { logger: Logger; calls: [string, Record<string, unknown>, string][] } {
  const calls: [string, Record<string, unknown>, string][] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) =>
    void calls.push([level, fields, message]);
  return {
    logger: { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") },
    calls,
  };
}

Deno.test("Warp emits hit, miss and stale events, one per read, as many as stats counts", async () => {
  const store = new MemoryStore();
  const warp = new Warp({ store });
  warp.register("k:*", { mode: "strong-local", ttlMs: 30, failSafeMaxMs: 60_000 });
  const events = record(warp);
  try {
    await warp.get("k:1"); // miss
    await warp.set("k:1", 1);
    await warp.get("k:1"); // hit (the fast path)
    warp.peek("k:1"); // hit
    await warp.read("k:1"); // hit (through the core)
    await sleep(50);
    store.failNext(new Error("store down"));
    assert.equal((await warp.read("k:1")).stale, true); // miss answered stale
    const reads = events.filter((e) => ["hit", "miss", "stale"].includes(e.type));
    assert.deepEqual(reads, [
      { type: "miss", key: "k:1" },
      { type: "hit", key: "k:1" },
      { type: "hit", key: "k:1" },
      { type: "hit", key: "k:1" },
      { type: "miss", key: "k:1" },
      { type: "stale", key: "k:1" },
    ]);
    const { hits, misses, staleAnswers } = warp.stats;
    assert.deepEqual([hits, misses, staleAnswers], [3, 2, 1]);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp emits gap and flush events with the peer and reason, and flushes by gap timeout", async () => {
  const bus = new InProcessBus();
  const forger = bus.connect();
  const warp = new Warp({
    store: new MemoryStore(),
    nodeId: "a",
    transport: bus.connect(),
    gapTimeoutMs: 20,
  });
  warp.register("e:*", { mode: "eventual-distributed" });
  const events = record(warp);
  const inv = (seq: number) =>
    encodeMessage({ t: "inv", from: "z", inc: 1, seq, key: "e:none", version: 1 });
  try {
    await warp.set("e:1", 1);
    await warp.set("e:2", 2); // two eventual entries in L1
    forger.publish("warp.all", inv(5)); // first heard at 5: 1 to 4 may be lost
    await sleep(5);
    await warp.set("e:3", 3); // one entry again
    forger.publish("warp.all", inv(7)); // 6 is missing
    await sleep(60); // past gapTimeoutMs: the gap flushes
    const protocol = events.filter((e) => e.type === "gap" || e.type === "flush");
    assert.deepEqual(protocol, [
      { type: "gap", peer: "z", reason: "peer-joined" },
      { type: "flush", reason: "peer-joined", entries: 2 },
      { type: "gap", peer: "z", reason: "sequence" },
      { type: "flush", reason: "gap", entries: 1 },
    ]);
    assert.equal(warp.stats.gapsDetected, 2);
    assert.equal(warp.stats.flushes, 2);
    assert.equal(warp.stats.entriesFlushed, 3);
  } finally {
    await warp.close();
    forger.close();
  }
});

Deno.test("Warp emits session-lost, then a flush, when its session record is removed", async () => {
  const coordinator = new MemoryCoordinator();
  const bus = new InProcessBus();
  const warp = new Warp({
    store: new MemoryStore(),
    coordinator,
    transport: bus.connect(),
    sessionMs: 300,
  });
  warp.register("e:*", { mode: "eventual-distributed" });
  const events = record(warp);
  try {
    await warp.set("e:1", 1);
    await sleep(150); // joined and renewed
    // Another member removes this one, as it would a member that stopped renewing.
    const entry = await coordinator.get("warp/sessions");
    assert.ok(entry !== undefined);
    const record = JSON.parse(new TextDecoder().decode(entry.value));
    record.members = [];
    const bytes = new TextEncoder().encode(JSON.stringify(record));
    await coordinator.update("warp/sessions", bytes, entry.revision);
    await sleep(250); // the next renewal finds the node gone
    const lost = events.findIndex((e) => e.type === "session-lost");
    assert.ok(lost >= 0, `no session-lost in ${JSON.stringify(events)}`);
    assert.deepEqual(events[lost + 1], { type: "flush", reason: "session-lost", entries: 1 });
    assert.equal(warp.stats.sessionsLost, 1);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp emits timeout events for a slow store and a loader past its hard timeout, and loader-error", async () => {
  const warp = new Warp({ store: new MemoryStore({ latencyMs: 80 }), ioTimeoutMs: 20 });
  warp.register("k:*", { mode: "strong-local" });
  warp.register("row:*", { mode: "strong-local", origin: "loader", hardTimeoutMs: 20 });
  const events = record(warp);
  try {
    await assert.rejects(warp.get("k:1"));
    await assert.rejects(warp.getOrSet("row:1", () => new Promise(() => {})));
    const failure = new Error("source down");
    await assert.rejects(warp.getOrSet("row:2", () => Promise.reject(failure)));
    const seen = events.filter((e) => e.type !== "miss");
    assert.deepEqual(seen, [
      { type: "timeout", operation: "store-read", key: "k:1", timeoutMs: 20 },
      { type: "timeout", operation: "load", key: "row:1", timeoutMs: 20 },
      { type: "loader-error", key: "row:2", error: failure },
    ]);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp emits a refresh event when refresh-ahead starts", async () => {
  const warp = new Warp({ store: new MemoryStore() });
  let loads = 0;
  warp.register("row:*", {
    mode: "strong-local",
    origin: "loader",
    ttlMs: 200,
    refreshAheadRatio: 0.5,
    loader: () => ++loads,
  });
  const events = record(warp);
  try {
    assert.equal(await warp.get("row:1"), 1);
    await sleep(120); // past the refresh point, before the TTL
    assert.equal(await warp.get("row:1"), 1);
    await sleep(10);
    assert.deepEqual(events.filter((e) => e.type === "refresh"), [{
      type: "refresh",
      key: "row:1",
    }]);
    assert.equal(loads, 2);
  } finally {
    await warp.close();
  }
});

Deno.test("Warp counts a listener or logger that throws, and goes on serving", async () => {
  const warp = new Warp({
    store: new MemoryStore(),
    logger: {
      debug() {},
      info() {},
      warn() {
        throw new Error("logger down");
      },
      error() {},
    },
  });
  warp.register("k:*", { mode: "strong-local" });
  const seen: string[] = [];
  warp.on("miss", () => {
    throw new Error("listener bug");
  });
  warp.on("miss", (event) => seen.push(event.key)); // the next listener still runs
  try {
    assert.equal(await warp.get("k:1"), undefined);
    await warp.set("k:1", 1);
    assert.equal(await warp.get("k:1"), 1);
    await assert.rejects(warp.getOrSet("k:2", () => Promise.reject(new Error("x"))), /x/);
    assert.deepEqual(seen, ["k:1", "k:2"]);
    // The throwing listener at each miss; the logger's warn for the loader error.
    assert.equal(warp.stats.listenerErrors, 3);
    assert.equal(await warp.get("k:1"), 1, "the node still serves");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp logs each event at its documented level, and reads not at all", async () => {
  const { logger, calls } = recordingLogger();
  const store = new MemoryStore();
  const warp = new Warp({ store, logger });
  warp.register("k:*", { mode: "strong-local", ttlMs: 30, failSafeMaxMs: 60_000 });
  warp.register("row:*", { mode: "strong-local", origin: "loader" });
  try {
    await warp.get("k:1");
    await warp.set("k:1", 1);
    await warp.get("k:1");
    await sleep(50);
    store.failNext(new Error("store down"));
    await warp.read("k:1"); // stale: warn
    const failure = new Error("source down");
    await assert.rejects(warp.getOrSet("row:1", () => Promise.reject(failure)));
    assert.deepEqual(calls.map(([level, fields]) => [level, fields.event]), [
      ["warn", "stale"],
      ["warn", "loader-error"],
    ]);
    const [, fields, message] = calls[1]!;
    assert.deepEqual(fields, {
      event: "loader-error",
      key: "row:1",
      err: failure,
      reason: "source down",
    });
    assert.equal(message, "Loader failed");
    assert.equal(EVENT_LOG_LEVELS.hit, undefined);
    assert.equal(EVENT_LOG_LEVELS["node-failed"], "error");
  } finally {
    await warp.close();
  }
});

Deno.test("Warp.on and off refuse an unknown event type or a non-function, and off stops delivery", async () => {
  const warp = new Warp({ store: new MemoryStore() });
  warp.register("k", { mode: "strong-local" });
  try {
    assert.throws(() => warp.on("hits" as never, () => {}), /Invalid event type/);
    assert.throws(() => warp.on("hit", "no" as never), /Invalid listener/);
    const keys: string[] = [];
    const listener = (event: { key: string }) => void keys.push(event.key);
    warp.on("miss", listener);
    await warp.get("k");
    warp.off("miss", listener);
    warp.off("miss", listener); // twice: ignored
    await warp.invalidate("k");
    await warp.get("k");
    assert.deepEqual(keys, ["k"]);
  } finally {
    await warp.close();
  }
});

Deno.test("Observer hands node-failed to its listeners and logs it at error, the invariant as err", () => {
  const { logger, calls } = recordingLogger();
  const observer = new Observer(logger);
  const order: string[] = [];
  observer.on("node-failed", () => order.push("listener"));
  const error = new Error("L1 byte count went negative: -1");
  observer.emit({ type: "node-failed", error });
  order.push("logged");
  assert.deepEqual(order, ["listener", "logged"]);
  assert.deepEqual(calls, [[
    "error",
    { event: "node-failed", err: error, reason: "L1 byte count went negative: -1" },
    "Node failed, it serves nothing more",
  ]]);
  assert.equal(observer.errors, 0);
});
