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

import postgres from "postgres";
import { PostgresCoordinator, PostgresStore } from "@warp/warp/postgres";
import { RedisTransport } from "@warp/warp/redis";
import { runDemo } from "./_deploy_demo.ts";

const POSTGRES_URL = Deno.env.get("WARP_EXAMPLE_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = Deno.env.get("WARP_EXAMPLE_REDIS_URL") ?? "redis://127.0.0.1:6379";
const RUN = crypto.randomUUID().slice(0, 8);
const STORE_TABLE = `warp_example_store_${RUN}`;
const COORDINATOR_TABLE = `warp_example_coordinator_${RUN}`;

try {
  await runDemo(
    `Warp on PostgreSQL (${POSTGRES_URL}) with a Redis bus (${REDIS_URL})`,
    `example.${RUN}`,
    async () => {
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
      // Its own connection to subscribe; TLS and credentials go in the URL (rediss://) or
      // in `client` (node-redis options), passed through unchanged.
      const transport = await RedisTransport.connect({ url: REDIS_URL });
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
    },
  );
} finally {
  const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 1 });
  await sql`DROP TABLE IF EXISTS ${sql(STORE_TABLE)}, ${sql(COORDINATOR_TABLE)}`;
  await sql`DROP SEQUENCE IF EXISTS ${sql(`${STORE_TABLE}_version`)}`;
  await sql.end();
}
