/**
 * `PostgresTransport`: the shared bus suite (`test/_bus_suite.ts`), then what is its own —
 * a client you made, a terminated listening backend, and a private server crashed and
 * restarted. Needs PostgreSQL on 127.0.0.1:5432 (`WARP_TEST_POSTGRES_URL`) and the server
 * binaries (`test/_postgres_server.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { POSTGRES_MESSAGE_BYTES_MAX, PostgresTransport } from "../src/postgres/transport.ts";
import type { TransportStatus } from "../src/transport.ts";
import { testBus, uniqueSubject, waitFor } from "./_bus_suite.ts";
import { PrivatePostgres } from "./_postgres_server.ts";

const POSTGRES_URL = Deno.env.get("WARP_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

testBus({
  name: "PostgresTransport",
  connect: () => PostgresTransport.connect({ url: POSTGRES_URL }),
  connectTo: (url, connectTimeoutMs) => PostgresTransport.connect({ url, connectTimeoutMs }),
  scheme: "postgres",
  messageBytesMax: POSTGRES_MESSAGE_BYTES_MAX,
});

Deno.test("PostgresTransport on a client you made: close leaves it open", async () => {
  const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 2 });
  try {
    const bus = await PostgresTransport.connect({ sql });
    const subject = uniqueSubject("given");
    const got: number[] = [];
    bus.subscribe(subject, (data) => got.push(data[0]!));
    await bus.ready;
    bus.publish(subject, new Uint8Array([5]));
    await waitFor("the message", () => got.length === 1);
    await bus.close();
    assert.equal((await sql`SELECT 1 AS one`)[0]!.one, 1);
    await assert.rejects(
      PostgresTransport.connect({ sql, url: POSTGRES_URL } as never),
      TypeError,
    );
  } finally {
    await sql.end();
  }
});

/** Sends one message a millisecond apart until `got` has one, for a bus that reconnects. */
async function deliveredAgain(
  bus: PostgresTransport,
  subject: string,
  got: number[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!got.includes(2)) {
    assert.ok(Date.now() < deadline, "a message was delivered after the reconnect");
    if (bus.connected) bus.publish(subject, new Uint8Array([2]));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("PostgresTransport: a terminated listening backend is reported, dropped publishes counted, delivery resumes", async () => {
  const bus = await PostgresTransport.connect({ url: POSTGRES_URL });
  const admin = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
  try {
    const subject = uniqueSubject("terminated");
    const got: number[] = [];
    const statuses: TransportStatus[] = [];
    bus.onStatus((status) => statuses.push(status));
    bus.subscribe(subject, (data) => got.push(data[0]!));
    await bus.ready;
    const terminated = await admin`
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE query = ${`LISTEN "${subject}"`}`;
    assert.equal(terminated.length, 1, "the listening backend was found");
    await waitFor("disconnected", () => statuses.includes("disconnected"));
    bus.publish(subject, new Uint8Array([1])); // known down: dropped, not sent late
    assert.equal(bus.stats.droppedWhileDisconnected, 1);
    await waitFor("connected", () => statuses.includes("connected"));
    assert.deepEqual(statuses, ["disconnected", "connected"]);
    await deliveredAgain(bus, subject, got, 5000);
    assert.ok(!got.includes(1), "the dropped message never arrived");
  } finally {
    await bus.close();
    await admin.end();
  }
});

Deno.test("PostgresTransport on a private server: down and up are reported, delivery resumes after the restart", async () => {
  const server = await PrivatePostgres.start();
  try {
    const bus = await PostgresTransport.connect({ url: server.url });
    try {
      const subject = uniqueSubject("restart");
      const got: number[] = [];
      const statuses: TransportStatus[] = [];
      bus.onStatus((status) => statuses.push(status));
      bus.subscribe(subject, (data) => got.push(data[0]!));
      await bus.ready;
      bus.publish(subject, new Uint8Array([0]));
      await waitFor("a message before", () => got.length === 1);
      await server.stop("immediate");
      await waitFor("disconnected", () => statuses.includes("disconnected"));
      await server.restart();
      await waitFor("connected", () => statuses.includes("connected"), 10_000);
      await deliveredAgain(bus, subject, got, 10_000);
      assert.deepEqual(statuses, ["disconnected", "connected"]);
    } finally {
      await bus.close();
    }
  } finally {
    await server.remove();
  }
});
