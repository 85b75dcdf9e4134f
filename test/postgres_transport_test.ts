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
import { testBus, testBusOutage, uniqueSubject, waitFor } from "./_bus_suite.ts";
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

testBusOutage(
  "PostgresTransport: a terminated listening backend is reported, publishes meanwhile dropped, delivery resumes",
  async () => {
    const bus = await PostgresTransport.connect({ url: POSTGRES_URL });
    const admin = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
    return {
      bus,
      fault: async (subject) => {
        const terminated = await admin`
          SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE query = ${`LISTEN "${subject}"`}`;
        assert.equal(terminated.length, 1, "the listening backend was found");
      },
      recover: () => Promise.resolve(),
      close: async () => {
        await bus.close();
        await admin.end();
      },
    };
  },
);

testBusOutage(
  "PostgresTransport on a private server: a crash and restart are reported, delivery resumes",
  async () => {
    const server = await PrivatePostgres.start();
    const bus = await PostgresTransport.connect({ url: server.url });
    return {
      bus,
      fault: () => server.stop("immediate"),
      recover: () => server.restart(),
      close: async () => {
        await bus.close();
        await server.remove();
      },
    };
  },
);
