/**
 * Warp on PostgreSQL alone: the store (`PostgresStore`), the coordinator for
 * strong-distributed keys, locks, leases and sessions (`PostgresCoordinator`) and the bus
 * (`PostgresTransport`, over `LISTEN`/`NOTIFY`), for a service whose only shared server is
 * PostgreSQL. See `docs/deploy-postgres.md`.
 *
 * ```sh
 * npx -y deno@2 task example:deploy-postgres
 * ```
 *
 * It needs PostgreSQL on 127.0.0.1:5432 with a database `test` the user `postgres` may use
 * (`WARP_EXAMPLE_POSTGRES_URL` overrides it). It creates two tables whose names end in a
 * random suffix, and drops them at the end.
 *
 * @module
 */

import postgres from "postgres";
import { PostgresCoordinator, PostgresStore, PostgresTransport } from "@warp/warp/postgres";
import { runDemo } from "./_deploy_demo.ts";

const POSTGRES_URL = Deno.env.get("WARP_EXAMPLE_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const RUN = crypto.randomUUID().slice(0, 8);
const STORE_TABLE = `warp_example_store_${RUN}`;
const COORDINATOR_TABLE = `warp_example_coordinator_${RUN}`;

try {
  await runDemo(`Warp on PostgreSQL alone (${POSTGRES_URL})`, `example.${RUN}`, async () => {
    // Each node its own clients, as each instance of a service would have. `createTable` is
    // safe when nodes start together (the DDL runs under a lock).
    const store = await PostgresStore.connect({
      url: POSTGRES_URL,
      table: STORE_TABLE,
      createTable: true,
    });
    const coordinator = await PostgresCoordinator.connect({
      url: POSTGRES_URL,
      table: COORDINATOR_TABLE,
      createTable: true,
    });
    // A direct or session-pooled connection: LISTEN hears nothing through transaction pooling.
    const transport = await PostgresTransport.connect({ url: POSTGRES_URL });
    return {
      store,
      coordinator,
      transport,
      close: async () => {
        await transport.close();
        await coordinator.close();
        await store.close();
      },
    };
  });
} finally {
  const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
  await sql`DROP TABLE IF EXISTS ${sql(STORE_TABLE)}, ${sql(COORDINATOR_TABLE)}`;
  await sql`DROP SEQUENCE IF EXISTS ${sql(`${STORE_TABLE}_version`)}`;
  await sql.end();
}
