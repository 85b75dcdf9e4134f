/**
 * Private: what the three deployment examples (`deploy_nats.ts`, `deploy_postgres.ts`,
 * `deploy_postgres_redis.ts`) do once their nodes are connected, so that each of them shows
 * only what differs: how a node reaches its store, coordinator and bus.
 *
 * Three nodes, as three instances of a service would run them, register the same keys:
 * `account:*` strong-distributed (a write returns once no node can serve the old value)
 * and `catalog:*` eventual-distributed (the new value everywhere within 500 ms). Node 1
 * writes an account, nodes 2 and 3 read it at once; node 2 writes a catalog entry, node 3
 * sees it as soon as the invalidation arrives; then a lock passes from node 1 to node 2 with
 * a larger fencing token.
 *
 * @module
 */

import postgres from "postgres";
import { Locks, Warp } from "@warp/warp";
import type { Coordinator, Store, Transport } from "@warp/warp";
import { PostgresCoordinator, PostgresStore } from "@warp/warp/postgres";

/** One node's connections, made by the example, and how to close them. */
export interface NodeConnections {
  readonly store: Store;
  readonly coordinator: Coordinator;
  readonly transport: Transport;
  close(): Promise<void>;
}

/** Something the example opened and must close. */
type Closable = { close(): Promise<void> };

/** One node's connections, closed in reverse: the bus, then the coordinator, then the store. */
export function nodeOf(
  store: Store & Closable,
  coordinator: Coordinator & Closable,
  transport: Transport,
): NodeConnections {
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
}

function elapsed(startMs: number): string {
  return `${(performance.now() - startMs).toFixed(2)} ms`;
}

/** Connects three nodes with `connectNode`, runs the demo, and closes everything. */
export async function runDemo(
  title: string,
  prefix: string,
  connectNode: (index: number) => Promise<NodeConnections>,
): Promise<void> {
  console.log(`${title}\n`);
  const connections: NodeConnections[] = [];
  const nodes: Warp[] = [];
  try {
    for (const index of [1, 2, 3]) {
      const node = await connectNode(index);
      connections.push(node);
      const warp = new Warp({ ...node, nodeId: `node-${index}`, prefix });
      warp.register("account:*", { mode: "strong-distributed" });
      warp.register("catalog:*", { mode: "eventual-distributed", maxStalenessMs: 500 });
      nodes.push(warp);
    }
    const [a, b, c] = nodes as [Warp, Warp, Warp];

    console.log("1. A strong write on node 1 is what nodes 2 and 3 read, the moment it returns");
    await Promise.all([b.get("account:7"), c.get("account:7")]); // both cache the key
    let start = performance.now();
    await a.set("account:7", { balance: 10 });
    console.log(`   node 1 set account:7 = { balance: 10 } in ${elapsed(start)}`);
    for (const [name, node] of [["node 2", b], ["node 3", c]] as const) {
      const read = await node.read("account:7");
      const again = await node.read("account:7");
      console.log(
        `   ${name} reads ${
          JSON.stringify(read.value)
        } (from ${read.source}, then from ${again.source})`,
      );
    }

    console.log("\n2. An eventual write on node 2 reaches node 3 by the bus");
    await c.set("catalog:1", { name: "Lamp (old)" });
    await c.get("catalog:1");
    start = performance.now();
    await b.set("catalog:1", { name: "Lamp" });
    console.log(`   node 2 set catalog:1 in ${elapsed(start)}`);
    start = performance.now();
    while (c.peek("catalog:1") !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    console.log(`   node 3 dropped its old entry ${elapsed(start)} after that`);
    console.log(`   node 3 reads ${JSON.stringify(await c.get("catalog:1"))}`);

    console.log("\n3. A lock passes from node 1 to node 2, with a larger fencing token");
    const locks = connections.map((node, i) =>
      new Locks({ coordinator: node.coordinator, nodeId: `node-${i + 1}`, prefix })
    );
    const first = await locks[0]!.acquire("nightly-report", { ttlMs: 10_000 });
    const refused = await locks[1]!.tryAcquire("nightly-report");
    console.log(`   node 1 holds it (token ${first.token}); node 2 tries: ${refused ?? "refused"}`);
    const waiting = locks[1]!.acquire("nightly-report", { ttlMs: 10_000, timeoutMs: 5000 });
    await first.release();
    const second = await waiting;
    console.log(`   node 1 released; node 2 holds it (token ${second.token})`);
    await second.release();
    for (const lock of locks) lock.close();
  } finally {
    for (const node of nodes) await node.close();
    for (const node of connections) await node.close();
  }
}

/** The tables of a PostgreSQL example, named after its run. */
export function exampleTables(run: string): { store: string; coordinator: string } {
  return { store: `warp_example_store_${run}`, coordinator: `warp_example_coordinator_${run}` };
}

/**
 * One node's store and coordinator on PostgreSQL, each with its own client, as each
 * instance of a service would have. `createTable` is safe when nodes start together (the
 * DDL runs under a lock).
 */
export async function connectPostgres(
  url: string,
  tables: { store: string; coordinator: string },
): Promise<{ store: PostgresStore; coordinator: PostgresCoordinator }> {
  const store = await PostgresStore.connect({ url, table: tables.store, createTable: true });
  const coordinator = await PostgresCoordinator.connect({
    url,
    table: tables.coordinator,
    createTable: true,
  });
  return { store, coordinator };
}

/** Drops an example's tables (and the store's version sequence). */
export async function dropTables(url: string, tables: readonly string[]): Promise<void> {
  const sql = postgres(url, { onnotice: () => {}, max: 1 });
  try {
    for (const table of tables) {
      await sql`DROP TABLE IF EXISTS ${sql(table)}`;
      await sql`DROP SEQUENCE IF EXISTS ${sql(`${table}_version`)}`;
    }
  } finally {
    await sql.end();
  }
}
