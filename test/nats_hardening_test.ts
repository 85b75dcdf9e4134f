/**
 * Hardening over the real services: prefix isolation of nested prefixes on NATS, keys no
 * adapter can carry refused up front on PostgreSQL + NATS, and the longest names that the
 * adapters must carry.
 *
 * Needs NATS with JetStream on 127.0.0.1:4222 and PostgreSQL on 127.0.0.1:5432
 * (`WARP_TEST_NATS_URL`, `WARP_TEST_PG_URL`): if either is unreachable the tests fail.
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { KEY_LENGTH_MAX, Locks, type Transport, type Unsubscribe, Warp } from "../mod.ts";
import { NatsKvCoordinator, NatsTransport } from "../src/nats/mod.ts";
import { PostgresStore } from "../src/store/postgres.ts";
import { PREFIX_LENGTH_MAX } from "../src/_check.ts";
import { decodeMessage } from "../src/wire.ts";
import { NATS_URL, PG_URL } from "./_process_cluster.ts";
import { waitFor } from "./_cluster.ts";

const RUN = `h${Date.now().toString(36)}${Math.floor(Math.random() * 2 ** 32).toString(36)}`;

/** A transport that notes the sender of every message its node receives. */
class HeardTransport implements Transport {
  readonly senders: string[] = [];
  readonly #inner: NatsTransport;

  constructor(inner: NatsTransport) {
    this.#inner = inner;
  }

  publish(subject: string, data: Uint8Array): void {
    this.#inner.publish(subject, data);
  }

  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe {
    return this.#inner.subscribe(subject, (data) => {
      this.senders.push(decodeMessage(data)?.from ?? "malformed");
      handler(data);
    });
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** Runs `fn` with a fresh store table, a coordinator bucket and a NATS connection. */
async function withServices(
  fn: (services: {
    store: PostgresStore;
    coordinator: NatsKvCoordinator;
    nc: NatsConnection;
    table: string;
  }) => Promise<void>,
): Promise<void> {
  const table = `warp_hardening_${RUN}`;
  const nc = await connect({ servers: NATS_URL });
  const store = await PostgresStore.connect({ url: PG_URL, table, createTable: true });
  const coordinator = await NatsKvCoordinator.create(nc, { bucket: `warp_hardening_${RUN}` });
  try {
    await fn({ store, coordinator, nc, table });
  } finally {
    await coordinator.destroy();
    await store.close();
    const sql = postgres(PG_URL, { onnotice: () => {} });
    try {
      await sql`DROP TABLE IF EXISTS ${sql(table)}`;
    } finally {
      await sql.end();
    }
    await nc.close();
  }
}

Deno.test("Warp nodes of nested prefixes (p and p.node) on NATS never hear each other", async () => {
  await withServices(async ({ store, coordinator }) => {
    const outer = `${RUN}`;
    const inner = `${RUN}.node`;
    const transports: HeardTransport[] = [];
    const nodes: Warp[] = [];
    const open = async (prefix: string, nodeId: string) => {
      const transport = new HeardTransport(await NatsTransport.connect({ servers: NATS_URL }));
      transports.push(transport);
      const node = new Warp({ store, coordinator, transport, prefix, nodeId });
      node.register("k:*", { mode: "eventual-distributed", maxStalenessMs: 60_000 });
      nodes.push(node);
      return node;
    };
    try {
      // The id "all" in the outer prefix would be subscribed to the inner broadcasts.
      assert.throws(() => new Warp({ store, prefix: outer, nodeId: "all" }), /reserved/);
      const x = await open(outer, "x");
      const y = await open(inner, "y");
      const z = await open(inner, "z");
      await y.set("k:1", "old");
      assert.equal(await x.get("k:1"), "old");
      assert.equal(await z.get("k:1"), "old");
      await y.set("k:1", "new");
      await waitFor(() => z.peek("k:1") === undefined, "the invalidation to reach z");
      await new Promise((resolve) => setTimeout(resolve, 300)); // heartbeats too
      assert.equal(x.peek("k:1"), "old", "x kept its entry: it heard nothing from y");
      assert.deepEqual(new Set(transports[0]!.senders), new Set(["x"]));
      assert.deepEqual(new Set(transports[2]!.senders), new Set(["y", "z"]));
    } finally {
      for (const node of nodes) await node.close();
      for (const transport of transports) await transport.close();
    }
  });
});

Deno.test("Warp on PostgreSQL + NATS refuses a NUL or lone-surrogate key with a TypeError, touching nothing", async () => {
  await withServices(async ({ store, coordinator, nc, table }) => {
    const prefix = `${RUN}k`;
    const transport = await NatsTransport.connect({ servers: NATS_URL });
    const node = new Warp({ store, coordinator, transport, prefix });
    const seen: string[] = [];
    const sub = nc.subscribe(`${prefix}.>`, {
      callback: (_error, msg) => {
        seen.push(decodeMessage(msg.data)?.t ?? "malformed");
      },
    });
    try {
      node.register("*", { mode: "strong-distributed" });
      for (const key of ["a\u0000b", "a\ud800", "\udc00"]) {
        await assert.rejects(node.set(key, 1), (e) => e instanceof TypeError, key);
        await assert.rejects(node.get(key), (e) => e instanceof TypeError);
        await assert.rejects(node.delete(key), (e) => e instanceof TypeError);
      }
      await nc.flush();
      const sql = postgres(PG_URL, { onnotice: () => {} });
      try {
        const [row] = await sql`SELECT count(*)::int AS rows FROM ${sql(table)}`;
        assert.equal(row?.rows, 0);
      } finally {
        await sql.end();
      }
      assert.deepEqual(seen.filter((type) => type !== "hb"), []);
    } finally {
      sub.unsubscribe();
      await node.close();
      await transport.close();
    }
  });
});

Deno.test("Warp and Locks on NATS KV take the longest key under the longest prefix", async () => {
  await withServices(async ({ store, coordinator }) => {
    const prefix = `p${RUN}`.padEnd(PREFIX_LENGTH_MAX, "x");
    const key = "k".repeat(KEY_LENGTH_MAX);
    const node = new Warp({ store, coordinator, prefix });
    const locks = new Locks({ coordinator, prefix });
    try {
      node.register("k*", { mode: "strong-distributed" });
      const version = await node.set(key, "v");
      const read = await node.read(key);
      assert.deepEqual([read.found, read.value, read.version], [true, "v", version]);
      const lock = await locks.acquire(key, { ttlMs: 5000 });
      assert.ok(lock.token > 0);
      await lock.release();
    } finally {
      locks.close();
      await node.close();
    }
  });
});
