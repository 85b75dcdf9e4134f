/**
 * Test helper: the bus and coordinator a test program (`_cluster_process.ts`,
 * `_lease_process.ts`, `_lock_process.ts`) runs on, chosen by its options, and the
 * harness side that makes and removes the coordinator's namespace. One place for the three
 * stacks the process tests run: NATS (bus and JetStream KV), PostgreSQL (bus and
 * coordinator), and a Redis bus with the PostgreSQL coordinator; the store is PostgreSQL in
 * every one of them.
 *
 * The coordinator's namespace is named after `--bucket`: the KV bucket itself, or the
 * PostgreSQL table `<bucket>_coord`.
 *
 * @module
 */

import postgres from "postgres";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createClient } from "@redis/client";
import type { Coordinator } from "../src/coordinator.ts";
import type { Transport } from "../src/transport.ts";
import { NatsKvCoordinator, NatsTransport } from "../src/nats/mod.ts";
import { PostgresCoordinator, PostgresTransport } from "../src/postgres/mod.ts";
import { RedisTransport } from "../src/redis/mod.ts";

/** The buses a test process can run on. */
export const BUS_KINDS = ["nats", "postgres", "redis"] as const;
/** A bus a test process can run on. */
export type BusKind = typeof BUS_KINDS[number];
/** The coordinators a test process can run on. */
export const COORDINATOR_KINDS = ["nats", "postgres"] as const;
/** A coordinator a test process can run on. */
export type CoordinatorKind = typeof COORDINATOR_KINDS[number];

/** The shared Redis of the test suite. */
export const REDIS_URL = Deno.env.get("WARP_TEST_REDIS_URL") ?? "redis://127.0.0.1:6379";

/** Where a test process's bus and coordinator are. */
export interface StackOptions {
  readonly bus: BusKind;
  readonly coordinator: CoordinatorKind;
  /** The node id, for connection names. */
  readonly node: string;
  /** The NATS server (`host:port`), or a cluster's servers separated by commas. */
  readonly nats: string;
  /** Another NATS server for the bus alone (a proxy a test cuts). @default {nats} */
  readonly busNats?: string | undefined;
  /** The PostgreSQL URL (the store's, the PostgreSQL bus's and coordinator's). */
  readonly pg: string;
  /** The Redis URL. @default {REDIS_URL} */
  readonly redis?: string | undefined;
  /** The coordinator's namespace (see the module's doc). */
  readonly bucket: string;
  /** The coordinator's per-call deadline. @default {the coordinator's own} */
  readonly coordinatorTimeoutMs?: number | undefined;
  /** Replicas of the NATS KV buckets (3 on a cluster of three). @default {1} */
  readonly replicas?: number | undefined;
}

/** nats.js `servers` of a `--nats` value: one `host:port`, or several separated by commas. */
export function natsServers(nats: string): string[] {
  return nats.split(",");
}

/** A test process's bus and coordinator. */
export interface Stack {
  readonly transport: Transport & { readonly stats: object };
  readonly coordinator: Coordinator;
  /** The NATS connection of the bus, when the bus is NATS (for NATS-only baselines). */
  readonly natsConnection: NatsConnection | undefined;
  /** Subscribes on the bus's server directly, bypassing Warp's transport: baselines. */
  rawSubscribe(subject: string, onSeq: (seq: number) => void): Promise<void>;
  /** Publishes a sequence number on the bus's server directly. */
  rawPublish(subject: string, seq: number): Promise<void>;
  close(): Promise<void>;
}

/** The PostgreSQL table of a coordinator namespace. */
export function coordinatorTable(bucket: string): string {
  return `${bucket}_coord`;
}

/** Reads `--bus` and `--coordinator` (default `nats`), refusing anything else. */
export function stackKinds(
  text: { readonly bus?: string | undefined; readonly coordinator?: string | undefined },
): { bus: BusKind; coordinator: CoordinatorKind } {
  const bus = text.bus ?? "nats", coordinator = text.coordinator ?? "nats";
  if (!(BUS_KINDS as readonly string[]).includes(bus)) throw new TypeError(`Invalid --bus: ${bus}`);
  if (!(COORDINATOR_KINDS as readonly string[]).includes(coordinator)) {
    throw new TypeError(`Invalid --coordinator: ${coordinator}`);
  }
  return { bus: bus as BusKind, coordinator: coordinator as CoordinatorKind };
}

/** Connects a test process's bus and coordinator. */
export async function openStack(options: StackOptions): Promise<Stack> {
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const bus = await openBus(options, closers);
    // Over the bus's connection when the bus is NATS on the same server.
    const shared = options.busNats === undefined ? bus.natsConnection : undefined;
    const coordinator = await openCoordinator(options, shared);
    closers.unshift(() => coordinator.close());
    return {
      ...bus,
      coordinator: coordinator.coordinator,
      close: async () => {
        for (const close of closers) await close().catch(() => {});
      },
    };
  } catch (error) {
    for (const close of closers) await close().catch(() => {});
    throw error;
  }
}

/**
 * Connects a test process's coordinator alone (on `nc` for NATS, if given; else on a
 * connection of its own, which `close` ends).
 */
export async function openCoordinator(
  options: Omit<StackOptions, "bus" | "busNats" | "redis">,
  nc?: NatsConnection,
): Promise<{ coordinator: Coordinator; close(): Promise<void> }> {
  const timeout = {
    ...(options.coordinatorTimeoutMs !== undefined && { timeoutMs: options.coordinatorTimeoutMs }),
    ...(options.replicas !== undefined && { replicas: options.replicas }),
  };
  if (options.coordinator === "postgres") {
    const coordinator = await PostgresCoordinator.connect({
      url: options.pg,
      client: { max: 4 },
      table: coordinatorTable(options.bucket),
      ...timeout,
    });
    return { coordinator, close: () => coordinator.close() };
  }
  if (nc !== undefined) {
    const coordinator = await NatsKvCoordinator.create(nc, { bucket: options.bucket, ...timeout });
    return { coordinator, close: () => coordinator.close() };
  }
  const coordinator = await NatsKvCoordinator.connect({
    servers: natsServers(options.nats),
    name: `warp-${options.node}-coordinator`,
    bucket: options.bucket,
    ...timeout,
  });
  return { coordinator, close: () => coordinator.close() };
}

type BusPart = Omit<Stack, "coordinator" | "close">;

async function openBus(
  options: StackOptions,
  closers: (() => Promise<unknown>)[],
): Promise<BusPart> {
  switch (options.bus) {
    case "nats": {
      const transport = await NatsTransport.connect({
        servers: natsServers(options.busNats ?? options.nats),
        name: `warp-${options.node}`,
      });
      closers.push(() => transport.close());
      const nc = transport.connection;
      return {
        transport,
        natsConnection: nc,
        rawSubscribe: async (subject, onSeq) => {
          nc.subscribe(subject, { callback: (_error, msg) => onSeq(readSeq(msg.data)) });
          await nc.flush();
        },
        rawPublish: (subject, seq) => Promise.resolve(nc.publish(subject, writeSeq(seq))),
      };
    }
    case "postgres": {
      const transport = await PostgresTransport.connect({ url: options.pg, client: { max: 2 } });
      closers.push(() => transport.close());
      // postgres.js's own LISTEN/NOTIFY: the raw baseline between the same processes.
      const raw = postgres(options.pg, { onnotice: () => {}, max: 1 });
      closers.push(() => raw.end({ timeout: 1 }));
      return {
        transport,
        natsConnection: undefined,
        rawSubscribe: async (subject, onSeq) => {
          await raw.listen(subject, (payload) => onSeq(Number(payload)));
        },
        rawPublish: async (subject, seq) => {
          await raw.notify(subject, String(seq));
        },
      };
    }
    case "redis": {
      const url = options.redis ?? REDIS_URL;
      const transport = await RedisTransport.connect({ url });
      closers.push(() => transport.close());
      const publisher = createClient({ url });
      const subscriber = publisher.duplicate();
      for (const client of [publisher, subscriber]) {
        client.on("error", () => {});
        await client.connect();
        closers.push(() => Promise.resolve(client.destroy()));
      }
      return {
        transport,
        natsConnection: undefined,
        rawSubscribe: (subject, onSeq) =>
          subscriber.subscribe(subject, (message) => onSeq(Number(message))),
        rawPublish: async (subject, seq) => {
          await publisher.publish(subject, String(seq));
        },
      };
    }
  }
}

function writeSeq(seq: number): Uint8Array {
  const data = new Uint8Array(64);
  new DataView(data.buffer).setFloat64(0, seq);
  return data;
}

function readSeq(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset).getFloat64(0);
}

/**
 * The harness side: makes the coordinator's namespace before the nodes start (a NATS KV
 * bucket, or a PostgreSQL coordinator table), and `remove` deletes it afterwards, never
 * throwing (a private server may already be gone, and its namespace with it).
 */
export async function makeCoordinatorNamespace(
  kind: CoordinatorKind,
  where: {
    readonly nats: string;
    readonly pg: string;
    readonly bucket: string;
    readonly replicas?: number | undefined;
  },
): Promise<{ remove(): Promise<void> }> {
  if (kind === "postgres") {
    const table = coordinatorTable(where.bucket);
    const made = await PostgresCoordinator.connect({ url: where.pg, table, createTable: true });
    await made.close();
    return {
      remove: async () => {
        const sql = postgres(where.pg, { onnotice: () => {}, max: 1, connect_timeout: 2 });
        await sql`DROP TABLE IF EXISTS ${sql(table)}`.catch(() => {});
        await sql.end({ timeout: 1 });
      },
    };
  }
  const nc = await connect({ servers: natsServers(where.nats), name: "warp-harness" });
  try {
    await NatsKvCoordinator.create(nc, {
      bucket: where.bucket,
      ...(where.replicas !== undefined && { replicas: where.replicas }),
    });
  } finally {
    await nc.close();
  }
  return {
    remove: async () => {
      try {
        const coordinator = await NatsKvCoordinator.connect({
          servers: natsServers(where.nats),
          bucket: where.bucket,
          timeoutMs: 2000,
          maxReconnectAttempts: 0,
        });
        await coordinator.destroy();
      } catch {
        // The server is gone (a private one, stopped by its test): so is the bucket.
      }
    },
  };
}
