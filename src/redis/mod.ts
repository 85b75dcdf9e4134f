/**
 * Warp's Redis adapter: {@linkcode RedisTransport}, the message bus between nodes over
 * Redis publish/subscribe (node-redis). A separate entry point, so importing Warp's core
 * never pulls in a Redis client.
 *
 * @example A cluster on PostgreSQL with a Redis bus
 * ```ts ignore
 * import { Warp } from "@warp/warp";
 * import { PostgresCoordinator, PostgresStore } from "@warp/warp/postgres";
 * import { RedisTransport } from "@warp/warp/redis";
 *
 * const url = "postgres://postgres@127.0.0.1:5432/test";
 * const store = await PostgresStore.connect({ url, createTable: true });
 * const coordinator = await PostgresCoordinator.connect({ url, createTable: true });
 * const transport = await RedisTransport.connect({ url: "redis://127.0.0.1:6379" });
 * const warp = new Warp({ store, coordinator, transport });
 * await warp.close();
 * await Promise.all([transport.close(), coordinator.close(), store.close()]);
 * ```
 *
 * @module
 */

export * from "./transport.ts";
export type { BusErrorEvent, BusOptions, BusStats } from "../transport/_channel_bus.ts";
export type { ChannelBus } from "../transport/_channel_bus.ts";
