/**
 * A user session store on three Warp nodes, as three instances of a web service would run
 * it: each node has its own NATS connection and its own PostgreSQL client, and they share
 * one table (the store), one JetStream KV bucket (the coordinator) and one bus prefix.
 *
 * Two kinds of keys:
 *
 * - `session:<userId>:<sessionId>`: one session, **eventual-distributed** with
 *   `maxStalenessMs: 500`. A request carrying a session cookie reads it; most reads are
 *   answered from memory, and after a logout no node serves it for more than 500 ms, even
 *   if every invalidation message were lost (in practice they arrive in about a millisecond).
 * - `user-sessions:<userId>`: the user's session ids and the user's **lease**,
 *   **strong-distributed**. Once a write of it completes, no node can read the old list.
 *
 * Every session of a user is attached to the user's lease (docs/leases.md). "Log out
 * everywhere" is one `revokeLease`: when it returns, no node serves any of those sessions,
 * from memory or from the store — at once, not within the 500 ms staleness bound, and
 * without knowing the session keys. Each login keeps the lease alive; a user who does not
 * come back for the lease's TTL is logged out everywhere by its expiry.
 *
 * Run it from the repository root:
 *
 * ```sh
 * npx -y deno@2 run --allow-net=127.0.0.1 --allow-env --allow-read docs/examples/session_store.ts
 * ```
 *
 * It needs NATS with JetStream on 127.0.0.1:4222 (`nats-server -js`) and PostgreSQL on
 * 127.0.0.1:5432 with a database `test` the user `postgres` may use. Override them with
 * `WARP_EXAMPLE_NATS_URL` (e.g. `127.0.0.1:4222`) and `WARP_EXAMPLE_POSTGRES_URL` (e.g.
 * `postgres://postgres@127.0.0.1:5432/test`). It creates a table and a KV bucket whose
 * names end in a random suffix, and drops both at the end.
 *
 * @module
 */

import postgres from "postgres";
import { Warp } from "@warp/warp";
import { NatsKvCoordinator, NatsTransport } from "@warp/warp/nats";
import { PostgresStore } from "@warp/warp/postgres";

const NATS_URL = Deno.env.get("WARP_EXAMPLE_NATS_URL") ?? "127.0.0.1:4222";
const POSTGRES_URL = Deno.env.get("WARP_EXAMPLE_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const RUN = crypto.randomUUID().slice(0, 8);
const TABLE = `warp_example_sessions_${RUN}`;
const BUCKET = `warp_example_sessions_${RUN}`;
const PREFIX = `warp_example.${RUN}`;
const SESSION_STALENESS_MS = 500;
const LEASE_TTL_MS = 30 * 60_000;
/** How long a lease check is trusted, and so how long `revokeLease` takes. */
const LEASE_CHECK_MS = 250;

/** What a session key holds. */
interface Session {
  readonly userId: string;
  readonly sessionId: string;
  readonly device: string;
  readonly createdAt: string;
}

/** What an index key holds: the user's lease and session ids. */
interface Index {
  readonly lease: string;
  readonly sessionIds: string[];
}

/** A session key's or an index key's value. */
type Value = Session | Index;

/** One instance of the service: a Warp node and what it owns. */
interface Instance {
  readonly name: string;
  readonly warp: Warp<Value>;
  readonly transport: NatsTransport;
  readonly coordinator: NatsKvCoordinator;
  readonly store: PostgresStore;
}

const sessionKey = (userId: string, sessionId: string) => `session:${userId}:${sessionId}`;
const indexKey = (userId: string) => `user-sessions:${userId}`;
const ms = (start: number) => `${(performance.now() - start).toFixed(2)} ms`;

async function startInstance(name: string, createTable: boolean): Promise<Instance> {
  const transport = await NatsTransport.connect({ servers: NATS_URL, name });
  const coordinator = await NatsKvCoordinator.create(transport.connection, { bucket: BUCKET });
  const store = await PostgresStore.connect({ url: POSTGRES_URL, table: TABLE, createTable });
  const warp = new Warp<Value>({
    store,
    transport,
    coordinator,
    prefix: PREFIX,
    nodeId: name,
    leaseCheckMs: LEASE_CHECK_MS,
  });
  warp.register("session:*", {
    mode: "eventual-distributed",
    maxStalenessMs: SESSION_STALENESS_MS,
    ttlMs: 30 * 60_000,
  });
  warp.register("user-sessions:*", { mode: "strong-distributed" });
  return { name, warp, transport, coordinator, store };
}

/**
 * Login: keeps the user's lease alive (or grants one), writes the session attached to it,
 * then adds its id to the user's index.
 */
async function login(node: Instance, userId: string, device: string): Promise<string> {
  const sessionId = crypto.randomUUID().slice(0, 8);
  const session = { userId, sessionId, device, createdAt: new Date().toISOString() };
  const start = performance.now();
  // A read-modify-write: two logins of one user racing on different nodes could each add
  // to the same old list. A real service would route a user's logins to one place or
  // retry on a version check; this example logs in one device at a time.
  const index = await node.warp.get(indexKey(userId)) as Index | undefined;
  let lease = index?.lease;
  if (lease !== undefined) {
    // A lease revoked or expired meanwhile rejects: that user starts afresh.
    lease = await node.warp.keepAlive(lease).then(() => lease, () => undefined);
  }
  lease ??= await node.warp.grantLease({ ttlMs: LEASE_TTL_MS });
  await node.warp.set(sessionKey(userId, sessionId), session, { lease });
  const sessionIds = lease === index?.lease ? [...index.sessionIds, sessionId] : [sessionId];
  await node.warp.set(indexKey(userId), { lease, sessionIds });
  console.log(`[${node.name}] login ${userId} on ${device}: session ${sessionId} (${ms(start)})`);
  return sessionId;
}

/** Logout everywhere: one revocation drops every session of the user on every node. */
async function logoutEverywhere(node: Instance, userId: string): Promise<string[]> {
  const start = performance.now();
  const index = await node.warp.get(indexKey(userId)) as Index | undefined;
  if (index === undefined) return [];
  await node.warp.revokeLease(index.lease);
  await node.warp.delete(indexKey(userId));
  console.log(
    `[${node.name}] logout ${userId} everywhere: ${index.sessionIds.length} sessions, one ` +
      `revokeLease (${ms(start)}; it waits out every node's lease check, ${LEASE_CHECK_MS} ms)`,
  );
  return index.sessionIds;
}

/** Prints what a node sees for the user's index and for each given session id. */
async function show(node: Instance, userId: string, sessionIds: readonly string[]): Promise<void> {
  let start = performance.now();
  const index = await node.warp.read(indexKey(userId));
  const listed = index.found ? JSON.stringify((index.value as Index).sessionIds) : "(none)";
  console.log(
    `[${node.name}]   ${indexKey(userId)} = ${listed}  from ${index.source}, ${ms(start)}`,
  );
  for (const id of sessionIds) {
    start = performance.now();
    const result = await node.warp.read(sessionKey(userId, id));
    const session = result.value as Session | undefined;
    const seen = result.found ? `${session?.device}, since ${session?.createdAt}` : "(gone)";
    console.log(
      `[${node.name}]   ${sessionKey(userId, id)} = ${seen}  from ${result.source}, ${ms(start)}`,
    );
  }
}

async function main(): Promise<void> {
  console.log(`NATS ${NATS_URL}, PostgreSQL ${POSTGRES_URL.replace(/:[^:@/]*@/, ":***@")}`);
  console.log(`table ${TABLE}, KV bucket ${BUCKET}, bus prefix ${PREFIX}\n`);
  const nodes: Instance[] = [];
  try {
    for (const name of ["node-1", "node-2", "node-3"]) {
      nodes.push(await startInstance(name, nodes.length === 0));
    }
    const [node1, node2, node3] = nodes as [Instance, Instance, Instance];

    console.log("1. Ada logs in twice, through node 1");
    const ids = [await login(node1, "ada", "laptop"), await login(node1, "ada", "phone")];

    console.log("\n2. Every node reads her sessions (first from the store, then from memory)");
    for (const node of nodes) await show(node, "ada", ids);
    await show(node3, "ada", ids);

    console.log("\n3. Ada logs out everywhere, through node 2");
    await logoutEverywhere(node2, "ada");
    const loggedOut = performance.now();

    console.log("\n4. Every node finds them gone at once (node 3 had them in memory)");
    for (const node of nodes) {
      for (const id of ids) {
        if ((await node.warp.read(sessionKey("ada", id))).found) {
          throw new Error(`${node.name} served ${sessionKey("ada", id)} after the revocation`);
        }
      }
    }
    console.log(`[all]      checked ${(performance.now() - loggedOut).toFixed(2)} ms after it`);
    await show(node3, "ada", ids);
    await show(node1, "ada", ids);

    const stats = (node: Instance) =>
      `${node.name}: ${node.transport.stats.published} published, ` +
      `${node.transport.stats.received} received`;
    console.log(`\nBus messages: ${nodes.map(stats).join("; ")}`);
  } finally {
    await cleanUp(nodes);
  }
}

/** Closes every node, then drops the example's table and KV bucket. */
async function cleanUp(nodes: readonly Instance[]): Promise<void> {
  for (const node of nodes) await node.warp.close();
  await nodes[0]?.coordinator.destroy();
  for (const node of nodes) {
    await node.coordinator.close();
    await node.store.close();
    await node.transport.close();
  }
  const sql = postgres(POSTGRES_URL, { onnotice: () => {} });
  try {
    await sql`DROP TABLE IF EXISTS ${sql(TABLE)}`;
  } finally {
    await sql.end({ timeout: 5 });
  }
  console.log(`Cleaned up: dropped table ${TABLE} and KV bucket ${BUCKET}`);
}

await main();
