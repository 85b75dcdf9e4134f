import assert from "node:assert/strict";
import { InProcessBus, type InProcessTransport } from "./in_process.ts";

const bytes = (...values: number[]) => new Uint8Array(values);
/** Lets every queued delivery run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

async function closeAll(...endpoints: InProcessTransport[]): Promise<void> {
  for (const endpoint of endpoints) await endpoint.close();
}

Deno.test("InProcessTransport.publish() delivers to every subscriber, the publisher included", async () => {
  const bus = new InProcessBus();
  const [a, b, c] = [bus.connect(), bus.connect(), bus.connect()];
  const seen: string[] = [];
  a.subscribe("warp.all", (data) => seen.push(`a${data[0]}`));
  b.subscribe("warp.all", (data) => seen.push(`b${data[0]}`));
  c.subscribe("warp.node.c", (data) => seen.push(`c${data[0]}`));
  a.publish("warp.all", bytes(1));
  a.publish("warp.node.c", bytes(2));
  a.publish("warp.nobody", bytes(3));
  await settle();
  assert.deepEqual(seen, ["a1", "b1", "c2"]);
  assert.deepEqual(bus.counts, { published: 3, delivered: 3, dropped: 0 });
  await closeAll(a, b, c);
});

Deno.test("InProcessTransport.publish() never calls a handler synchronously", async () => {
  const bus = new InProcessBus();
  const a = bus.connect();
  let calls = 0;
  a.subscribe("s", () => calls++);
  a.publish("s", bytes());
  assert.equal(calls, 0);
  await Promise.resolve();
  assert.equal(calls, 1);
  await a.close();
});

Deno.test("InProcessTransport.publish() delivers in publish order", async () => {
  const bus = new InProcessBus();
  const [a, b] = [bus.connect(), bus.connect()];
  const seen: number[] = [];
  b.subscribe("s", (data) => seen.push(data[0]!));
  for (let i = 0; i < 100; i++) (i % 2 === 0 ? a : b).publish("s", bytes(i));
  await settle();
  assert.deepEqual(seen, Array.from({ length: 100 }, (_, i) => i));
  await closeAll(a, b);
});

Deno.test("InProcessTransport.publish() gives every handler its own copy of the bytes", async () => {
  const bus = new InProcessBus();
  const [a, b] = [bus.connect(), bus.connect()];
  const seen: Uint8Array[] = [];
  const handler = (data: Uint8Array) => {
    seen.push(data);
    data[0] = 99;
  };
  a.subscribe("s", handler);
  b.subscribe("s", handler);
  b.subscribe("s", handler);
  const data = bytes(1);
  a.publish("s", data);
  data[0] = 2;
  await settle();
  assert.equal(seen.length, 3);
  assert.equal(new Set(seen).size, 3);
  assert.equal(data[0], 2);
  await closeAll(a, b);
});

Deno.test("InProcessTransport.disconnect() drops messages to and from the endpoint", async () => {
  const bus = new InProcessBus();
  const [a, b] = [bus.connect(), bus.connect()];
  const seen: string[] = [];
  a.subscribe("s", (data) => seen.push(`a${data[0]}`));
  b.subscribe("s", (data) => seen.push(`b${data[0]}`));
  b.disconnect();
  a.publish("s", bytes(1)); // reaches a only
  b.publish("s", bytes(2)); // reaches nobody
  await settle();
  assert.deepEqual(seen, ["a1"]);
  assert.deepEqual(bus.counts, { published: 2, delivered: 1, dropped: 3 });
  b.reconnect();
  a.publish("s", bytes(3));
  await settle();
  assert.deepEqual(seen, ["a1", "a3", "b3"]);
  await closeAll(a, b);
});

Deno.test("InProcessTransport.disconnect() loses messages already on their way", async () => {
  const bus = new InProcessBus();
  const [a, b] = [bus.connect(), bus.connect()];
  let calls = 0;
  b.subscribe("s", () => calls++);
  a.publish("s", bytes());
  b.disconnect();
  b.reconnect();
  await settle();
  assert.equal(calls, 0);
  assert.equal(bus.counts.dropped, 1);
  await closeAll(a, b);
});

Deno.test("InProcessTransport.onStatus() reports disconnected and connected asynchronously", async () => {
  const bus = new InProcessBus();
  const a = bus.connect();
  const statuses: string[] = [];
  a.onStatus((status) => statuses.push(status));
  a.disconnect();
  a.disconnect();
  assert.deepEqual(statuses, []);
  a.reconnect();
  a.reconnect();
  await settle();
  assert.deepEqual(statuses, ["disconnected", "connected"]);
  await a.close();
});

Deno.test("InProcessBus.filter loses exactly the messages it rejects", async () => {
  const bus = new InProcessBus();
  const [a, b, c] = [
    bus.connect({ label: "a" }),
    bus.connect({ label: "b" }),
    bus.connect({ label: "c" }),
  ];
  const seen: string[] = [];
  for (const endpoint of [a, b, c]) {
    endpoint.subscribe("s", (data) => seen.push(`${endpoint.label}${data[0]}`));
  }
  // A one-way partition: a cannot reach c, c still reaches a.
  bus.filter = (_subject, _data, from, to) => !(from.label === "a" && to.label === "c");
  a.publish("s", bytes(1));
  c.publish("s", bytes(2));
  await settle();
  assert.deepEqual(seen.sort(), ["a1", "a2", "b1", "b2", "c2"]);
  assert.equal(bus.counts.dropped, 1);
  bus.filter = (_subject, data) => data[0] !== 3;
  a.publish("s", bytes(3));
  await settle();
  assert.equal(seen.length, 5);
  await closeAll(a, b, c);
});

Deno.test("InProcessTransport.subscribe() returns a function that stops delivery", async () => {
  const bus = new InProcessBus();
  const a = bus.connect();
  let calls = 0;
  const unsubscribe = a.subscribe("s", () => calls++);
  a.publish("s", bytes());
  unsubscribe();
  unsubscribe();
  a.publish("s", bytes());
  await settle();
  assert.equal(calls, 0);
  assert.deepEqual(bus.counts, { published: 2, delivered: 0, dropped: 1 });
  await a.close();
});

Deno.test("InProcessTransport.subscribe() throws a RangeError beyond subscriptionsMax", async () => {
  const bus = new InProcessBus({ subscriptionsMax: 2 });
  const a = bus.connect();
  const first = a.subscribe("s", () => {});
  a.subscribe("s", () => {});
  assert.throws(() => a.subscribe("t", () => {}), {
    name: "RangeError",
    message: "Too many subscriptions: 2",
  });
  first();
  a.subscribe("t", () => {});
  await a.close();
});

Deno.test("InProcessTransport.subscribe() allows 1024 subscriptions by default", async () => {
  const a = new InProcessBus().connect();
  for (let i = 0; i < 1024; i++) a.subscribe(`s.${i}`, () => {});
  assert.throws(() => a.subscribe("s.x", () => {}), RangeError);
  await a.close();
});

Deno.test("InProcessTransport.close() unsubscribes everything and drops later publishes", async () => {
  const bus = new InProcessBus();
  const [a, b] = [bus.connect(), bus.connect()];
  let calls = 0;
  a.subscribe("s", () => calls++);
  b.subscribe("s", () => calls++);
  b.publish("s", bytes());
  await a.close();
  await a.close();
  assert.equal(a.connected, false);
  a.publish("s", bytes());
  await settle();
  assert.equal(calls, 1);
  assert.throws(() => a.subscribe("s", () => {}), { name: "WarpError", code: "CLOSED" });
  await b.close();
});

Deno.test("InProcessTransport rejects invalid subjects, data and oversized messages", async () => {
  const a = new InProcessBus({ payloadBytesMax: 4 }).connect();
  for (const subject of ["", "a b", "a..b", ".a", "a.*", "a.>", "x".repeat(257)]) {
    assert.throws(() => a.publish(subject, bytes()), TypeError, subject);
    assert.throws(() => a.subscribe(subject, () => {}), TypeError, subject);
  }
  assert.throws(() => a.publish("", bytes()), { message: 'Invalid subject: ""' });
  assert.throws(() => a.publish("s", [1] as unknown as Uint8Array), TypeError);
  assert.throws(() => a.publish("s", bytes(1, 2, 3, 4, 5)), {
    name: "RangeError",
    message: "Message too large: 5 bytes",
  });
  a.publish("s", bytes(1, 2, 3, 4));
  assert.throws(() => a.subscribe("s", "f" as never), TypeError);
  assert.throws(() => new InProcessBus().connect({ label: "" }), TypeError);
  await a.close();
});
