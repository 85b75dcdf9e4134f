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

import { PostgresTransport } from "@warp/warp/postgres";
import { connectPostgres, dropTables, exampleTables, nodeOf, runDemo } from "./_deploy_demo.ts";

const POSTGRES_URL = Deno.env.get("WARP_EXAMPLE_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const RUN = crypto.randomUUID().slice(0, 8);
const TABLES = exampleTables(RUN);

try {
  await runDemo(`Warp on PostgreSQL alone (${POSTGRES_URL})`, `example.${RUN}`, async () => {
    // PostgresStore and PostgresCoordinator.connect({ url, table, createTable: true }).
    const { store, coordinator } = await connectPostgres(POSTGRES_URL, TABLES);
    // A direct or session-pooled connection: LISTEN hears nothing through transaction pooling.
    const transport = await PostgresTransport.connect({ url: POSTGRES_URL });
    return nodeOf(store, coordinator, transport);
  });
} finally {
  await dropTables(POSTGRES_URL, [TABLES.store, TABLES.coordinator]);
}
