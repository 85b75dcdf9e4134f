/**
 * `PostgresCoordinator`: the shared coordinator suite (`test/_coordinator_suite.ts`), then
 * what is PostgreSQL's own: tables, the connect deadline, nodes creating the table at once,
 * revisions that become visible in revision order, watches across a terminated backend,
 * and a private server crashed and restarted. Needs PostgreSQL on 127.0.0.1:5432
 * (`WARP_TEST_POSTGRES_URL`) and the server binaries (`test/_postgres_server.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { PostgresCoordinator } from "../src/postgres/coordinator.ts";
import type { CoordinatorEntry } from "../src/coordinator.ts";
import { getWhenBack, testCoordinator } from "./_coordinator_suite.ts";
import { PrivatePostgres } from "./_postgres_server.ts";
import { silentServer } from "./_silent_server.ts";

const POSTGRES_URL = Deno.env.get("WARP_TEST_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const RUN = `${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
let tableCount = 0;

const bytes = (text: string) => new TextEncoder().encode(text);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const UNAVAILABLE = { name: "WarpError", code: "COORDINATOR_UNAVAILABLE" };

function freshTable(): string {
  return `warp_coord_${RUN}_${tableCount++}`;
}

testCoordinator({
  name: "PostgresCoordinator",
  ttlMs: 500,
  modelRuns: 20,
  async open() {
    const table = freshTable();
    const coordinator = await PostgresCoordinator.connect({
      url: POSTGRES_URL,
      table,
      createTable: true,
    });
    const others: PostgresCoordinator[] = [];
    return {
      coordinator,
      another: async () => {
        const other = await PostgresCoordinator.connect({ url: POSTGRES_URL, table });
        others.push(other);
        return other;
      },
      now: () => performance.now(),
      elapse: sleep,
      close: async () => {
        for (const other of others) await other.close();
        await coordinator.destroy();
      },
    };
  },
});

/** Runs `fn` on a coordinator of a fresh table, then drops it. */
async function withCoordinator(
  fn: (coordinator: PostgresCoordinator, table: string) => Promise<void>,
  options: { url?: string } = {},
): Promise<void> {
  const table = freshTable();
  const coordinator = await PostgresCoordinator.connect({
    url: options.url ?? POSTGRES_URL,
    table,
    createTable: true,
    timeoutMs: 2000,
  });
  try {
    await fn(coordinator, table);
  } finally {
    await coordinator.destroy().catch(() => coordinator.close());
  }
}

Deno.test("PostgresCoordinator.connect() rejects invalid options with TypeError and RangeError", async () => {
  for (const table of ["Warp", "1x", "a-b", 'x"; DROP TABLE y; --', "a".repeat(64)]) {
    await assert.rejects(PostgresCoordinator.connect({ url: POSTGRES_URL, table }), TypeError);
  }
  for (const options of [{ timeoutMs: 0 }, { watchersMax: 1.5 }, { expiredSweepMs: -1 }]) {
    await assert.rejects(
      PostgresCoordinator.connect({ url: POSTGRES_URL, ...options }),
      RangeError,
    );
  }
  const sql = postgres(POSTGRES_URL, { onnotice: () => {} });
  try {
    await assert.rejects(
      PostgresCoordinator.connect({ sql, url: POSTGRES_URL } as never),
      TypeError,
    );
  } finally {
    await sql.end();
  }
  await assert.rejects(PostgresCoordinator.connect({ url: POSTGRES_URL, connectTimeoutMs: 0 }), {
    name: "RangeError",
    message: "Invalid connectTimeoutMs: 0",
  });
});

Deno.test("PostgresCoordinator.connect() rejects a missing table, and a table that is not a coordinator's", async () => {
  const table = freshTable();
  await assert.rejects(PostgresCoordinator.connect({ url: POSTGRES_URL, table }), UNAVAILABLE);
  const sql = postgres(POSTGRES_URL, { onnotice: () => {} });
  try {
    await sql`CREATE TABLE ${sql(table)} (ttl_ms bigint, digest bytea, revision bigint)`;
    await assert.rejects(PostgresCoordinator.connect({ url: POSTGRES_URL, table }), {
      ...UNAVAILABLE,
      message:
        `Coordinator table has no revision counter row (create it with createTable): ${table}`,
    });
  } finally {
    await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    await sql.end();
  }
});

Deno.test("PostgresCoordinator.connect() gives up at connectTimeoutMs on a server that never answers", async () => {
  const server = silentServer();
  try {
    const startedMs = performance.now();
    await assert.rejects(
      PostgresCoordinator.connect({ url: server.url("postgres"), connectTimeoutMs: 300 }),
      { name: "WarpError", code: "TIMEOUT" },
    );
    const tookMs = performance.now() - startedMs;
    assert.ok(tookMs >= 290 && tookMs < 2000, `gave up after ${tookMs.toFixed(0)} ms`);
  } finally {
    await server.close();
  }
});

Deno.test("PostgresCoordinator: five nodes creating one table at once all succeed", async () => {
  const table = freshTable();
  try {
    const results = await Promise.allSettled(
      Array.from(
        { length: 5 },
        () => PostgresCoordinator.connect({ url: POSTGRES_URL, table, createTable: true }),
      ),
    );
    const failures = results.flatMap((r) => r.status === "rejected" ? [String(r.reason)] : []);
    assert.deepEqual(failures, []);
    const coordinators = results.map((r) =>
      (r as PromiseFulfilledResult<PostgresCoordinator>).value
    );
    const revisions = await Promise.all(
      coordinators.map((c, i) => c.create(`node/${i}`, bytes("x"))),
    );
    assert.equal(new Set(revisions).size, 5, "one counter: five distinct revisions");
    for (const c of coordinators) await c.close();
  } finally {
    const sql = postgres(POSTGRES_URL, { onnotice: () => {} });
    await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    await sql.end();
  }
});

Deno.test("PostgresCoordinator: writes become visible in revision order, whatever the key", async () => {
  // If writes were numbered before they commit (a sequence), a snapshot could hold revision
  // r + 1 of one key without revision r of another that commits a moment later: the
  // session protocol, which compares revisions of different records, would be misled.
  await withCoordinator(async (coordinator, table) => {
    const writers = await Promise.all(
      Array.from({ length: 6 }, () => PostgresCoordinator.connect({ url: POSTGRES_URL, table })),
    );
    const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
    try {
      const written: number[] = [];
      const snapshots: number[][] = [];
      const endMs = performance.now() + 1500;
      const write = async (c: PostgresCoordinator, w: number) => {
        for (let i = 0; performance.now() < endMs; i++) {
          written.push(await c.create(`w${w}/${i}`, bytes("x")));
        }
      };
      const read = async () => {
        while (performance.now() < endMs) {
          const rows = await sql`SELECT revision FROM ${sql(table)} WHERE ttl_ms = 0`;
          snapshots.push(rows.map((row) => Number(row.revision)));
        }
      };
      await Promise.all([...writers.map(write), read()]);
      const all = new Set(written);
      let checked = 0;
      for (const snapshot of snapshots) {
        if (snapshot.length === 0) continue;
        const seen = new Set(snapshot);
        const top = Math.max(...snapshot);
        const missing = [...all].filter((r) => r < top && !seen.has(r));
        assert.deepEqual(missing, [], `a snapshot up to ${top} lacks earlier revisions`);
        checked++;
      }
      console.log(`  ${written.length} creates by 6 clients, ${checked} snapshots checked`);
      assert.ok(written.length > 100 && checked > 10);
      void coordinator;
    } finally {
      for (const writer of writers) await writer.close();
      await sql.end();
    }
  });
});

Deno.test("PostgresCoordinator.watch() reports a change made while its backend was terminated", async () => {
  await withCoordinator(async (coordinator, table) => {
    const first = await coordinator.create("watched", bytes("1"));
    const seen: (CoordinatorEntry | undefined)[] = [];
    const stop = await coordinator.watch("watched", (entry) => seen.push(entry));
    const admin = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
    try {
      const terminated = await admin`
        SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
        WHERE query = ${`LISTEN "${table}"`} AND pid <> pg_backend_pid()`;
      assert.equal(terminated.length, 1, "the listening backend was found and terminated");
      // Written at once, before the listener is back: no notification can reach it.
      const second = await coordinator.update("watched", bytes("2"), first);
      const deadline = Date.now() + 5000;
      while (!seen.some((entry) => entry?.revision === second)) {
        assert.ok(Date.now() < deadline, `the change was never reported: ${JSON.stringify(seen)}`);
        await sleep(20);
      }
      // And the watch works as before once back.
      const third = await coordinator.update("watched", bytes("3"), second);
      while (!seen.some((entry) => entry?.revision === third)) {
        assert.ok(Date.now() < deadline, "a later change was reported");
        await sleep(20);
      }
    } finally {
      stop();
      await admin.end();
    }
  });
});

Deno.test("PostgresCoordinator on a private server: fails with COORDINATOR_UNAVAILABLE while it is down, works when it is back", async () => {
  const server = await PrivatePostgres.start();
  try {
    await withCoordinator(async (coordinator) => {
      const revision = await coordinator.create("k", bytes("1"));
      const seen: (CoordinatorEntry | undefined)[] = [];
      await coordinator.watch("k", (entry) => seen.push(entry));
      await server.stop("immediate");
      const startedMs = performance.now();
      await assert.rejects(coordinator.get("k"), UNAVAILABLE);
      await assert.rejects(coordinator.update("k", bytes("2"), revision), UNAVAILABLE);
      assert.ok(performance.now() - startedMs < 5000, "failed within the call deadline");
      await server.restart();
      // The committed state survived the crash; the failed update never happened.
      assert.deepEqual(await getWhenBack(coordinator, "k"), { value: bytes("1"), revision });
      const deadline = Date.now() + 10_000;
      const next = await coordinator.update("k", bytes("3"), revision);
      assert.ok(next > revision, "the counter did not go back");
      while (!seen.some((e) => e?.revision === next)) {
        assert.ok(Date.now() < deadline, "the watch reported the write after the restart");
        await sleep(20);
      }
    }, { url: server.url });
  } finally {
    await server.remove();
  }
});
