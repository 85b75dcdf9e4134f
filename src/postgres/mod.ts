/**
 * Warp's PostgreSQL adapters, for clusters whose only shared service is PostgreSQL:
 * {@linkcode PostgresStore} (the store), {@linkcode PostgresCoordinator} (compare-and-set
 * registers for strong-distributed keys, locks, leases and sessions) and
 * {@linkcode PostgresTransport} (the bus, over `LISTEN`/`NOTIFY`). A separate entry point,
 * so importing Warp's core never pulls in a PostgreSQL client.
 *
 * Each takes a URL (`url`), postgres.js options passed through unchanged (`client`:
 * credentials, `ssl`), or a client you made (`sql`), and a connect deadline
 * (`connectTimeoutMs`, 10 s by default).
 *
 * @example A cluster on PostgreSQL alone
 * ```ts ignore
 * import { Warp } from "@warp/warp";
 * import { PostgresCoordinator, PostgresStore, PostgresTransport } from "@warp/warp/postgres";
 *
 * const url = "postgres://postgres@127.0.0.1:5432/test";
 * const store = await PostgresStore.connect({ url, createTable: true });
 * const coordinator = await PostgresCoordinator.connect({ url, createTable: true });
 * const transport = await PostgresTransport.connect({ url });
 * const warp = new Warp({ store, coordinator, transport });
 * warp.register("account:*", { mode: "strong-distributed" });
 * await warp.set("account:7", { balance: 10 });
 * await warp.close();
 * await Promise.all([transport.close(), coordinator.close(), store.close()]);
 * ```
 *
 * @module
 */

export * from "../store/postgres.ts";
export * from "./coordinator.ts";
export * from "./transport.ts";
export { CONNECT_TIMEOUT_MS_DEFAULT, reconnectBackoff } from "./_client.ts";
export type { PostgresClientOptions, PostgresConnectionOptions } from "./_client.ts";
export type { BusErrorEvent, BusOptions, BusStats } from "../transport/_channel_bus.ts";
export type { ChannelBus } from "../transport/_channel_bus.ts";
