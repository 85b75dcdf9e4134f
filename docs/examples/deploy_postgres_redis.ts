/**
 * Warp on PostgreSQL with a Redis bus: the store and the coordinator in PostgreSQL
 * (`PostgresStore`, `PostgresCoordinator`), invalidations over Redis publish/subscribe
 * (`RedisTransport`). See `docs/deploy-postgres-redis.md`.
 *
 * ```sh
 * npx -y deno@2 task example:deploy-postgres-redis
 * ```
 *
 * It needs PostgreSQL on 127.0.0.1:5432 with a database `test` the user `postgres` may use,
 * and Redis on 127.0.0.1:6379 (`WARP_EXAMPLE_POSTGRES_URL`, `WARP_EXAMPLE_REDIS_URL`
 * override them). It creates two tables whose names end in a random suffix, and drops them
 * at the end.
 *
 * @module
 */

import { RedisTransport } from "@warp/warp/redis";
import { connectPostgres, dropTables, exampleTables, nodeOf, runDemo } from "./_deploy_demo.ts";

const POSTGRES_URL = Deno.env.get("WARP_EXAMPLE_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = Deno.env.get("WARP_EXAMPLE_REDIS_URL") ?? "redis://127.0.0.1:6379";
const RUN = crypto.randomUUID().slice(0, 8);
const TABLES = exampleTables(RUN);

try {
  await runDemo(
    `Warp on PostgreSQL (${POSTGRES_URL}) with a Redis bus (${REDIS_URL})`,
    `example.${RUN}`,
    async () => {
      // PostgresStore and PostgresCoordinator, as in deploy_postgres.ts.
      const { store, coordinator } = await connectPostgres(POSTGRES_URL, TABLES);
      // Its own connection to subscribe; TLS and credentials go in the URL (rediss://) or
      // in `client` (node-redis options), passed through unchanged.
      const transport = await RedisTransport.connect({ url: REDIS_URL });
      return nodeOf(store, coordinator, transport);
    },
  );
} finally {
  await dropTables(POSTGRES_URL, [TABLES.store, TABLES.coordinator]);
}
