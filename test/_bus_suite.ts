/**
 * The test suite both channel buses pass, `PostgresTransport`
 * (`test/postgres_transport_test.ts`) and `RedisTransport` (`test/redis_transport_test.ts`):
 * binary messages between two connections, the publisher receiving its own, subjects kept
 * apart, the size limit (counted and reported), handlers and unsubscribing, argument
 * errors, a closed bus, and the connect deadline. Each file adds its own faults.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { BusErrorEvent, BusStats } from "../src/transport/_channel_bus.ts";
import type { Transport, TransportStatus } from "../src/transport.ts";
import { silentServer } from "./_silent_server.ts";

/** A bus as the suite drives it. */
export interface BusUnderTest extends Transport {
  readonly stats: BusStats;
  readonly ready: Promise<void>;
  readonly connected: boolean;
  onError(listener: (event: BusErrorEvent) => void): void;
}

/** How to run the suite on one bus. */
export interface BusSuite {
  /** The class name, which starts every test name. */
  readonly name: string;
  /** Connects a bus to the shared server. */
  connect(): Promise<BusUnderTest>;
  /** Connects to `url` with a connect deadline (for the silent-server test). */
  connectTo(url: string, connectTimeoutMs: number): Promise<BusUnderTest>;
  /** The URL scheme of a silent server standing in for this bus's server. */
  readonly scheme: "postgres" | "redis";
  /** The largest message the bus sends. */
  readonly messageBytesMax: number;
}

/** A subject unique to one test run. */
export function uniqueSubject(label: string): string {
  return `warp.test.${label}.${Date.now().toString(36)}${Math.floor(Math.random() * 1e9)}`;
}

/** Resolves when `predicate` holds, polling every 10 ms; rejects after `timeoutMs`. */
export async function waitFor(
  what: string,
  predicate: () => boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Registers the suite's tests, each named after `suite.name`. */
export function testBus(suite: BusSuite): void {
  const test = (name: string, fn: (a: BusUnderTest, b: BusUnderTest) => Promise<void>) =>
    Deno.test(`${suite.name} ${name}`, async () => {
      const a = await suite.connect();
      try {
        const b = await suite.connect();
        try {
          await fn(a, b);
        } finally {
          await b.close();
        }
      } finally {
        await a.close();
      }
    });

  test(
    "delivers binary messages, in order, to every subscriber, the publisher included",
    async (a, b) => {
      const subject = uniqueSubject("order");
      const atA: Uint8Array[] = [], atB: Uint8Array[] = [];
      a.subscribe(subject, (data) => atA.push(data));
      b.subscribe(subject, (data) => atB.push(data));
      await Promise.all([a.ready, b.ready]);
      const sizes = [0, 1, 2, 3, 255, 256, 1000, suite.messageBytesMax];
      const sent = sizes.map((size, i) =>
        Uint8Array.from({ length: size }, (_, j) => (i + j) & 0xff)
      );
      const all = Uint8Array.from({ length: 256 }, (_, i) => i);
      sent.push(all);
      for (const message of sent) a.publish(subject, message);
      await waitFor(
        "every message at both",
        () => atA.length === sent.length && atB.length === sent.length,
      );
      assert.deepEqual(atB.map((m) => [...m]), sent.map((m) => [...m]));
      assert.deepEqual(atA.map((m) => [...m]), sent.map((m) => [...m]));
      await waitFor("all counted", () => a.stats.published === sent.length);
      assert.equal(b.stats.received, sent.length);
    },
  );

  test("keeps subjects apart, long and odd ones included", async (a, b) => {
    const base = uniqueSubject("apart");
    const subjects = [base, `${base}.x`, `${base}.${"y".repeat(300)}`, `${base}.ключ 日本 "q"`];
    const got = new Map<string, string[]>();
    for (const subject of subjects) {
      got.set(subject, []);
      b.subscribe(subject, (data) => got.get(subject)!.push(new TextDecoder().decode(data)));
    }
    await b.ready;
    for (const subject of subjects) a.publish(subject, new TextEncoder().encode(subject));
    await waitFor("one message per subject", () => [...got.values()].every((m) => m.length >= 1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const subject of subjects) assert.deepEqual(got.get(subject), [subject]);
  });

  test("refuses a message over its size limit: counted, reported, not sent", async (a, b) => {
    const subject = uniqueSubject("large");
    const received: Uint8Array[] = [];
    b.subscribe(subject, (data) => received.push(data));
    await b.ready;
    const events: BusErrorEvent[] = [];
    a.onError((event) => events.push(event));
    a.publish(subject, new Uint8Array(suite.messageBytesMax + 1));
    a.publish(subject, new Uint8Array([7]));
    await waitFor("the small one", () => received.length === 1);
    assert.deepEqual([...received[0]!], [7]);
    assert.equal(a.stats.oversized, 1);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.type, "oversized");
    assert.equal(events[0]!.subject, subject);
    assert.equal((events[0]!.error as { code?: string }).code, "VALUE_TOO_LARGE");
    assert.match(events[0]!.error.message, new RegExp(`: ${suite.messageBytesMax + 1}$`));
  });

  test("handlers: each gets its copy, a throwing one is counted, unsubscribing stops delivery", async (a) => {
    const subject = uniqueSubject("handlers");
    const first: number[] = [], second: number[] = [];
    const stopFirst = a.subscribe(subject, (data) => first.push(data[0]!));
    const stopSecond = a.subscribe(subject, (data) => {
      second.push(data[0]!);
      throw new Error("Handler bug");
    });
    await a.ready;
    a.publish(subject, new Uint8Array([1]));
    await waitFor("both handlers", () => first.length === 1 && second.length === 1);
    assert.equal(a.stats.handlerErrors, 1);
    stopFirst();
    stopFirst();
    a.publish(subject, new Uint8Array([2]));
    await waitFor("the second handler", () => second.length === 2);
    stopSecond();
    a.publish(subject, new Uint8Array([3]));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual([first, second], [[1], [1, 2]]);
  });

  test("rejects invalid arguments, and a closed bus refuses subscriptions", async (a) => {
    for (const subject of ["", "x".repeat(1025), "\ud800", 7 as unknown as string]) {
      assert.throws(() => a.publish(subject, new Uint8Array()), TypeError);
      assert.throws(() => a.subscribe(subject, () => {}), TypeError);
    }
    assert.throws(() => a.publish("s", "x" as unknown as Uint8Array), {
      name: "TypeError",
      message: 'Invalid data: expected a Uint8Array, got "x"',
    });
    assert.throws(() => a.subscribe("s", "f" as never), TypeError);
    assert.throws(() => a.onStatus!("f" as never), TypeError);
    assert.throws(() => a.onError("f" as never), TypeError);
    await a.close();
    await a.close();
    assert.throws(() => a.subscribe("s", () => {}), { name: "WarpError", code: "CLOSED" });
    a.publish("s", new Uint8Array([1])); // a no-op, never a throw
    assert.equal(a.connected, false);
  });

  Deno.test(`${suite.name}.connect() gives up at connectTimeoutMs on a server that never answers`, async () => {
    const server = silentServer();
    try {
      const startedMs = performance.now();
      await assert.rejects(suite.connectTo(server.url(suite.scheme), 300), {
        name: "WarpError",
        code: "TIMEOUT",
      });
      const tookMs = performance.now() - startedMs;
      assert.ok(tookMs >= 290 && tookMs < 3000, `gave up after ${tookMs.toFixed(0)} ms`);
    } finally {
      await server.close();
    }
  });
}

/** A bus and the means to take its server away and bring it back, for {@linkcode testBusOutage}. */
export interface BusOutage {
  readonly bus: BusUnderTest;
  /** Cuts the bus off (a backend terminated, a server stopped); `subject` is subscribed. */
  fault(subject: string): Promise<void>;
  /** Brings the server back, if the fault took it away. */
  recover(): Promise<void>;
  /** Closes the bus and removes what `open` started. */
  close(): Promise<void>;
}

/**
 * Registers a test that a bus reports an outage and recovers from it: `"disconnected"` then
 * `"connected"`, a message published while it knows it is down dropped and counted (never
 * delivered late), and delivery resumed on the same subscription.
 */
export function testBusOutage(name: string, open: () => Promise<BusOutage>): void {
  Deno.test(name, async () => {
    const outage = await open();
    try {
      const { bus } = outage;
      const subject = uniqueSubject("outage");
      const got: number[] = [];
      const statuses: TransportStatus[] = [];
      bus.onStatus!((status) => statuses.push(status));
      bus.subscribe(subject, (data) => got.push(data[0]!));
      await bus.ready;
      bus.publish(subject, new Uint8Array([0]));
      await waitFor("a message before the fault", () => got.length === 1);
      await outage.fault(subject);
      await waitFor("disconnected", () => statuses.includes("disconnected"));
      bus.publish(subject, new Uint8Array([1])); // known down: dropped, not sent late
      assert.equal(bus.stats.droppedWhileDisconnected, 1);
      await outage.recover();
      await waitFor("connected", () => statuses.at(-1) === "connected", 10_000);
      const deadline = Date.now() + 10_000;
      while (!got.includes(2)) {
        assert.ok(Date.now() < deadline, "a message was delivered after the reconnect");
        if (bus.connected) bus.publish(subject, new Uint8Array([2]));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(!got.includes(1), "the dropped message never arrived");
      assert.equal(statuses[0], "disconnected");
    } finally {
      await outage.close();
    }
  });
}
