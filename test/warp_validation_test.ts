/**
 * Warp refuses bad arguments before anything happens: keys that no adapter can carry,
 * values over the size and depth limits, odd options. Each test checks the refusal *and*
 * that the store, every L1 and the bus show nothing of the refused call.
 */

import assert from "node:assert/strict";
import {
  InProcessBus,
  JSON_DEPTH_MAX,
  MemoryStore,
  type Transport,
  type Unsubscribe,
  Warp,
  WarpError,
} from "../mod.ts";
import { encodeMessage, WIRE_MAGIC } from "../src/wire.ts";
import { Cluster, waitFor } from "./_cluster.ts";

/** The effects a cluster shows: store operations and keys, L1 entries, bus messages but heartbeats. */
function footprint(cluster: Cluster) {
  return {
    store: { ...cluster.store.counts, size: cluster.store.size },
    entries: cluster.nodes.map((node) => node.stats.entries),
    messages: cluster.routed.filter((m) => m.type !== "hb").length,
  };
}

const LONE_SURROGATE = "ev:\ud800";
const NUL = "ev:\u0000";
const HUGE = "ev:" + "x".repeat(10_000_000);

Deno.test("Warp refuses a key with a lone surrogate or NUL up front, with a TypeError naming it, and does nothing", async () => {
  const cluster = new Cluster();
  const [a] = cluster.nodes as [Warp];
  try {
    await a.set("ev:ok", 1); // something in the store, L1 and on the bus already
    const before = footprint(cluster);
    for (const key of [LONE_SURROGATE, NUL, "st:\udc00x", HUGE]) {
      const named = (e: unknown) =>
        e instanceof TypeError && e.message.startsWith("Invalid key") && e.message.length < 200;
      await assert.rejects(a.set(key, "v"), named);
      await assert.rejects(a.get(key), named);
      await assert.rejects(a.read(key), named);
      await assert.rejects(a.delete(key), named);
      await assert.rejects(a.invalidate(key), named);
      await assert.rejects(a.getOrSet(key, () => "v"), named);
      await assert.rejects(a.attachKey(key, "u0.abcdefgh"), named);
      await assert.rejects(a.warmup([key]), named);
      assert.throws(() => a.peek(key), named);
      assert.throws(() => a.register(key, { mode: "strong-local" }), TypeError);
    }
    await assert.rejects(a.warmup({ prefix: "ev:\ud800" }), TypeError);
    await new Promise((resolve) => setTimeout(resolve, 50)); // let any stray message land
    assert.deepEqual(footprint(cluster), before);
    assert.equal(a.failure, undefined);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.set() refuses a value over valueBytesMax with VALUE_TOO_LARGE and writes nothing", async () => {
  const cluster = new Cluster({ node: { valueBytesMax: 1000 } });
  const [a] = cluster.nodes as [Warp];
  try {
    const before = footprint(cluster);
    await assert.rejects(a.set("ev:big", "x".repeat(1000)), (e) => {
      assert.ok(e instanceof WarpError && e.code === "VALUE_TOO_LARGE", String(e));
      assert.match(e.message, /"ev:big" is 1002 bytes encoded, over valueBytesMax 1000$/);
      return true;
    });
    await a.getOrSet("ev:small", () => "x".repeat(998)); // 1000 bytes of JSON: allowed
    assert.deepEqual(footprint(cluster).store.size, before.store.size + 1);
    assert.equal(a.peek("ev:big"), undefined);
  } finally {
    await cluster.close();
  }
});

Deno.test("Warp.set() refuses a 200 000-deep value with VALUE_TOO_LARGE, no stack overflow", async () => {
  const cluster = new Cluster();
  const [a] = cluster.nodes as [Warp];
  try {
    let deep: unknown = null;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const before = footprint(cluster);
    await assert.rejects(a.set("ev:deep", deep), { code: "VALUE_TOO_LARGE" });
    let ok: unknown = null;
    for (let i = 0; i < JSON_DEPTH_MAX; i++) ok = { d: ok };
    await a.set("ev:deep", ok);
    assert.equal(footprint(cluster).store.size, before.store.size + 1);
  } finally {
    await cluster.close();
  }
});

Deno.test("new Warp() checks every option first: a refused node has subscribed to nothing", () => {
  const subscribed: string[] = [];
  const transport: Transport = {
    publish() {},
    subscribe(subject: string): Unsubscribe {
      subscribed.push(subject);
      return () => {};
    },
    close: () => Promise.resolve(),
  };
  const store = new MemoryStore();
  const refused: [string, Record<string, unknown>, ErrorConstructor][] = [
    ["the broadcast name as node id", { nodeId: "all" }, TypeError],
    ["a prefix of 129 characters", { prefix: "p".repeat(129) }, TypeError],
    ["a prefix with a slash", { prefix: "a/b" }, TypeError],
    ["a prefix that is a number", { prefix: 42 }, TypeError],
    ["a string limit", { entriesMax: "x".repeat(10_000_000) }, TypeError],
    ["a codec without decode", { codec: { encode: () => new Uint8Array() } }, TypeError],
    ["a clock that is not a function", { clock: 5 }, TypeError],
    ["an ioTimeoutMs past the longest timer", { ioTimeoutMs: 2 ** 31 }, RangeError],
    ["a zero valueBytesMax", { valueBytesMax: 0 }, RangeError],
    ["a valueBytesMax over 1 GiB", { valueBytesMax: 2 ** 30 + 1 }, RangeError],
    ["a negative entriesMax", { entriesMax: -1 }, RangeError],
  ];
  for (const [what, options, type] of refused) {
    assert.throws(
      () => new Warp({ store, transport, ...options }),
      (e) => e instanceof type && e.message.length < 250,
      what,
    );
  }
  assert.throws(() => new Warp({ store: { get() {} } as never }), TypeError);
  assert.throws(() => new Warp(null as never), TypeError);
  assert.deepEqual(subscribed, []);
});

Deno.test("Warp.stats.messagesDropped counts every message not acted on, malformed ones included", async () => {
  const bus = new InProcessBus();
  const node = new Warp({ store: new MemoryStore(), transport: bus.connect(), nodeId: "n" });
  const sender = bus.connect();
  try {
    const received = node.stats.messagesReceived;
    // Another wire version, then a well-framed "drop" whose key is NUL, which no key may be.
    for (let i = 0; i < 100; i++) sender.publish("warp.all", new Uint8Array([WIRE_MAGIC, 9, i]));
    sender.publish("warp.all", new Uint8Array([WIRE_MAGIC, 1, 2, 1, 0x78, 1, 1, 1, 0]));
    await waitFor(() => node.stats.malformedMessages === 101, "the malformed messages");
    assert.equal(node.stats.messagesDropped, 101);
    assert.equal(node.stats.messagesReceived, received);
    sender.publish(
      "warp.all",
      encodeMessage({ t: "drop", from: "x", inc: 1, seq: 1, key: "ev:1" }),
    );
    await waitFor(() => node.stats.messagesReceived === received + 1, "the valid message");
    assert.equal(node.stats.messagesDropped, 101);
  } finally {
    await node.close();
    await sender.close();
  }
});
