/**
 * Warp on NATS and PostgreSQL: the bus over core NATS (`NatsTransport`), the coordinator
 * over JetStream KV (`NatsKvCoordinator`), the store in PostgreSQL (`PostgresStore`). See
 * `docs/deploy-nats.md`.
 *
 * ```sh
 * npx -y deno@2 task example:deploy-nats
 * ```
 *
 * It needs NATS with JetStream on 127.0.0.1:4222 (`nats-server -js`) and PostgreSQL on
 * 127.0.0.1:5432 with a database `test` the user `postgres` may use
 * (`WARP_EXAMPLE_NATS_URL`, `WARP_EXAMPLE_POSTGRES_URL` override them). It creates a table
 * and a KV bucket whose names end in a random suffix, and removes both at the end.
 *
 * @module
 */

import { NatsKvCoordinator, NatsTransport } from "@warp/warp/nats";
import { PostgresStore } from "@warp/warp/postgres";
import { dropTables, exampleTables, nodeOf, runDemo } from "./_deploy_demo.ts";

const NATS_URL = Deno.env.get("WARP_EXAMPLE_NATS_URL") ?? "127.0.0.1:4222";
const POSTGRES_URL = Deno.env.get("WARP_EXAMPLE_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const RUN = crypto.randomUUID().slice(0, 8);
const STORE_TABLE = exampleTables(RUN).store;
const BUCKET = `warp_example_${RUN}`;

try {
  await runDemo(
    `Warp on NATS (${NATS_URL}) and PostgreSQL (${POSTGRES_URL})`,
    `example.${RUN}`,
    async () => {
      // Credentials and TLS pass through to nats.js: `user`/`pass`, `token`, `tls`, or an
      // `authenticator` (credsAuthenticator, nkeyAuthenticator... from @warp/warp/nats).
      const transport = await NatsTransport.connect({ servers: NATS_URL, name: "warp-example" });
      // The coordinator checks the server first: JetStream enabled, nats-server 2.9 or later.
      const coordinator = await NatsKvCoordinator.create(transport.connection, { bucket: BUCKET });
      const store = await PostgresStore.connect({
        url: POSTGRES_URL,
        table: STORE_TABLE,
        createTable: true,
      });
      return nodeOf(store, coordinator, transport);
    },
  );
} finally {
  const coordinator = await NatsKvCoordinator.connect({ servers: NATS_URL, bucket: BUCKET });
  await coordinator.destroy();
  await dropTables(POSTGRES_URL, [STORE_TABLE]);
}
