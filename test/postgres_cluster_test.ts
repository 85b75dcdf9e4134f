/**
 * The real runtime where users already are: three Warp nodes in three processes on
 * PostgreSQL alone (store, `PostgresTransport`, `PostgresCoordinator`), and on PostgreSQL
 * with a Redis bus (`RedisTransport`). Operations are recorded into a history and checked
 * by the simulator's checkers, with faults injected while every node writes: a private
 * PostgreSQL crashed and restarted, and every client backend of it terminated
 * (`pg_terminate_backend`). The shared servers are never touched. Needs PostgreSQL's
 * binaries (`test/_postgres_server.ts`), PostgreSQL on 127.0.0.1:5432 and Redis on 6379.
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import type { ProcessClusterOptions } from "./_process_cluster.ts";
import { PrivatePostgres } from "./_postgres_server.ts";
import {
  assertRecovered,
  assertWritesSeen,
  LOAD_MS,
  runUnderFault,
  sleep,
  withCluster,
} from "./_cluster_faults.ts";

/** The two stacks: the bus and coordinator of every node (the store is PostgreSQL). */
const STACKS: readonly { name: string; options: ProcessClusterOptions }[] = [
  { name: "PostgreSQL bus and coordinator", options: { bus: "postgres", coordinator: "postgres" } },
  { name: "Redis bus, PostgreSQL coordinator", options: { bus: "redis", coordinator: "postgres" } },
];

/** Runs `fn` with a private PostgreSQL, removed afterwards whatever happens. */
async function withPrivatePostgres(fn: (server: PrivatePostgres) => Promise<void>): Promise<void> {
  const server = await PrivatePostgres.start();
  try {
    await fn(server);
  } finally {
    await server.remove();
  }
}

for (const { name, options } of STACKS) {
  Deno.test(`three processes on ${name}: a write on one node is seen by the others, per mode`, async () => {
    await withCluster(options, async (cluster) => {
      await assertWritesSeen(cluster);
      const stats = await cluster.stats(1);
      assert.ok((stats.transport.received ?? 0) > 0, "the bus delivered messages");
    });
  });

  Deno.test(`three processes on ${name} under load: the private PostgreSQL crashed and restarted`, async () => {
    await withPrivatePostgres(async (server) => {
      await withCluster({ ...options, pgUrl: server.url }, async (cluster) => {
        let restartedMs = 0;
        // The load runs 4 s longer than in the other fault tests: after a restart the nodes
        // reconnect (up to 1 s of backoff) and rejoin their sessions before eventual writes
        // complete again, about a second on a quiet machine and more on a loaded one.
        const { history } = await runUnderFault(
          `${name}: PostgreSQL restart`,
          cluster,
          async () => {
            await server.stop("immediate");
            await sleep(1500);
            await server.restart();
            restartedMs = performance.timeOrigin + performance.now();
          },
          LOAD_MS + 4000,
        );
        assertRecovered(cluster, history, restartedMs);
      });
    });
  });

  Deno.test(`three processes on ${name} under load: every client backend terminated`, async () => {
    await withPrivatePostgres(async (server) => {
      await withCluster({ ...options, pgUrl: server.url }, async (cluster) => {
        let terminatedMs = 0;
        let terminated = 0;
        const { history } = await runUnderFault(
          `${name}: backends terminated`,
          cluster,
          async () => {
            const admin = postgres(server.url, { onnotice: () => {}, max: 1 });
            try {
              const rows = await admin`
              SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`;
              terminated = rows.length;
              terminatedMs = performance.timeOrigin + performance.now();
            } finally {
              await admin.end();
            }
          },
        );
        console.log(`  ${terminated} backends terminated`);
        assert.ok(terminated >= 6, "the nodes' connections were terminated");
        assertRecovered(cluster, history, terminatedMs);
      });
    });
  });
}
