/**
 * Fencing a PostgreSQL write with a Warp lock's token.
 *
 * A lock alone cannot protect a resource: a holder can check that it holds the lock,
 * then stall (a GC pause, a swapped-out VM, a slow network) past its TTL, and write after
 * another node has taken the lock over. The fix is a **fencing token**: every grant of a
 * Warp lock carries a token larger than every earlier grant's, the holder sends it with
 * each write, and the resource refuses a token below the highest it has accepted. Here
 * the resource is a row in PostgreSQL and the fence is part of the write itself, one
 * statement, so the check and the write are atomic:
 *
 * ```sql
 * UPDATE counter SET value = value + 1, token = $token
 * WHERE id = 1 AND token <= $token
 * RETURNING value          -- no row: the token was stale, nothing was written
 * ```
 *
 * Two workers (two `Locks` clients, each with its own NATS connection, as two service
 * instances would have) first share the counter correctly, then one of them stalls past
 * its TTL holding the lock, and its late write is refused.
 *
 * Part 3 does the same through Warp's own API, with no hand-written SQL: the balance is a
 * Warp key in a `PostgresStore`. Worker 1 takes the lock, reads the balance (100) and its
 * store version, stalls past its TTL; worker 2 takes the lock over and adds 5 with
 * `update`. Worker 1's late `compareAndSet` at the version it read is a typed
 * `{ status: "conflict" }`, not a lost update; it re-reads with `update` and the balance
 * ends at 106. A plain `set` would have left 101.
 *
 * Run it from the repository root:
 *
 * ```sh
 * npx -y deno@2 run --allow-net=127.0.0.1 --allow-env --allow-read docs/examples/fenced_counter.ts
 * ```
 *
 * It needs NATS with JetStream on 127.0.0.1:4222 (`nats-server -js`) and PostgreSQL on
 * 127.0.0.1:5432 with a database `test` the user `postgres` may use. Override them with
 * `WARP_EXAMPLE_NATS_URL` and `WARP_EXAMPLE_POSTGRES_URL`. It creates a table and a KV
 * bucket whose names end in a random suffix, and drops both at the end.
 *
 * @module
 */

import postgres from "postgres";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type LockHandle, Locks, Warp } from "@warp/warp";
import { NatsKvCoordinator, NatsTransport } from "@warp/warp/nats";
import { PostgresStore } from "@warp/warp/postgres";

const NATS_URL = Deno.env.get("WARP_EXAMPLE_NATS_URL") ?? "127.0.0.1:4222";
const POSTGRES_URL = Deno.env.get("WARP_EXAMPLE_POSTGRES_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";
const RUN = crypto.randomUUID().slice(0, 8);
const TABLE = `warp_example_counter_${RUN}`;
const STORE_TABLE = `warp_example_store_${RUN}`;
const BUCKET = `warp_example_counter_${RUN}`;
const LOCK = "counter";
const INCREMENTS_PER_WORKER = 5;
/**
 * A worker's other work between two increments. Without it the releasing worker takes the
 * lock straight back (its create reaches the coordinator before the waiter's watch wakes
 * it): a lock promises exclusion, not fairness.
 */
const OTHER_WORK_MS = 5;
/** The stalling holder's TTL, and how long it stalls: well past the TTL. */
const SHORT_TTL_MS = 500;
const STALL_MS = 800;

/** One service instance: its own NATS connection and lock client. */
interface Worker {
  readonly name: string;
  readonly nc: NatsConnection;
  readonly coordinator: NatsKvCoordinator;
  readonly locks: Locks;
}

const sql = postgres(POSTGRES_URL, { onnotice: () => {}, max: 4 });

/** The fenced write: increments only if `token` is not below the highest accepted. */
async function fencedIncrement(token: number): Promise<number | undefined> {
  const rows = await sql<{ value: number }[]>`
    UPDATE ${sql(TABLE)} SET value = value + 1, token = ${token}
    WHERE id = 1 AND token <= ${token}
    RETURNING value`;
  return rows[0]?.value; // undefined: the fence refused a stale token
}

async function startWorker(name: string): Promise<Worker> {
  const nc = await connect({ servers: NATS_URL, name });
  const coordinator = await NatsKvCoordinator.create(nc, { bucket: BUCKET });
  return { name, nc, coordinator, locks: new Locks({ coordinator, nodeId: name }) };
}

async function stopWorker(worker: Worker): Promise<void> {
  worker.locks.close();
  await worker.coordinator.close();
  await worker.nc.close();
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const show = (value: number | undefined) =>
  value === undefined ? "REFUSED (stale token, no row updated)" : `accepted, counter = ${value}`;

/** Part 1: both workers increment concurrently, each increment under the lock. */
async function contend(workers: Worker[]): Promise<void> {
  console.log(`\n1. Two workers, ${INCREMENTS_PER_WORKER} fenced increments each, concurrently`);
  await Promise.all(workers.map(async (worker) => {
    for (let i = 0; i < INCREMENTS_PER_WORKER; i++) {
      await worker.locks.withLock(LOCK, async (token) => {
        console.log(`[${worker.name}] token ${token}: ${show(await fencedIncrement(token))}`);
      }, { ttlMs: 5000 });
      await sleep(OTHER_WORK_MS);
    }
  }));
}

/** Part 2: worker 1 stalls past its TTL holding the lock; its late write is refused. */
async function stall(first: Worker, second: Worker): Promise<void> {
  console.log(`\n2. ${first.name} takes the lock with ttlMs ${SHORT_TTL_MS} and stalls`);
  const lock: LockHandle = await first.locks.acquire(LOCK, { ttlMs: SHORT_TTL_MS });
  const grantedAt = performance.now();
  console.log(`[${first.name}] token ${lock.token}, held: ${lock.held}; stalling ${STALL_MS} ms`);
  const stalled = sleep(STALL_MS); // checked `held`, then paused: no renewal, no release

  const taken = await second.locks.acquire(LOCK, { ttlMs: 5000, timeoutMs: 10_000 });
  console.log(
    `[${second.name}] took over after ${(performance.now() - grantedAt).toFixed(1)} ms: ` +
      `token ${taken.token}: ${show(await fencedIncrement(taken.token))}`,
  );

  await stalled;
  const late = await fencedIncrement(lock.token);
  console.log(
    `[${first.name}] wakes up, held: ${lock.held} (signal: ${
      (lock.signal.reason as Error | undefined)?.message
    }), writes anyway with token ${lock.token}: ${show(late)}`,
  );
  if (late !== undefined) throw new Error(`The fence accepted a stale token: ${lock.token}`);
  await taken.release();
}

/** One worker's Warp node: the shared PostgresStore table, its own NATS connection as bus. */
async function warpOf(worker: Worker): Promise<{ warp: Warp<number>; close(): Promise<void> }> {
  const store = await PostgresStore.connect({
    url: POSTGRES_URL,
    table: STORE_TABLE,
    createTable: true,
  });
  const transport = NatsTransport.fromConnection(worker.nc);
  const warp = new Warp<number>({
    store,
    transport,
    coordinator: worker.coordinator,
    nodeId: worker.name,
    prefix: `example.${RUN}`,
  });
  warp.register("balance:*", { mode: "strong-distributed" });
  return {
    warp,
    close: async () => {
      await warp.close();
      await store.close();
    },
  };
}

/** Part 3: the issue's lost update, through Warp: the stalled write is a typed conflict. */
async function stallThroughWarp(first: Worker, second: Worker): Promise<void> {
  console.log(`\n3. The same stall through Warp: compareAndSet and update on a PostgresStore`);
  const a = await warpOf(first);
  const b = await warpOf(second);
  try {
    await a.warp.set("balance:1", 100);
    const lock = await first.locks.acquire("balance", { ttlMs: SHORT_TTL_MS });
    const read = await a.warp.read("balance:1"); // strong: the current value and version
    console.log(
      `[${first.name}] token ${lock.token}: balance ${read.value} at version ${read.version}; stalling ${STALL_MS} ms`,
    );
    const stalled = sleep(STALL_MS);
    const taken = await second.locks.acquire("balance", { ttlMs: 5000, timeoutMs: 10_000 });
    const added = await b.warp.update("balance:1", (balance) => (balance ?? 0) + 5);
    console.log(
      `[${second.name}] took over, update +5: ${added.status}, balance ${
        added.status === "ok" ? added.value : "?"
      }`,
    );
    await taken.release();
    await stalled;
    const late = await a.warp.compareAndSet("balance:1", read.version, read.value! + 1);
    console.log(
      `[${first.name}] wakes up, compareAndSet(version ${read.version}, ${read.value! + 1}): ${
        JSON.stringify(late)
      }`,
    );
    if (late.status !== "conflict") throw new Error("A stale compareAndSet landed: a lost update");
    const retried = await a.warp.update("balance:1", (balance) => (balance ?? 0) + 1);
    const final = await b.warp.get("balance:1");
    console.log(
      `[${first.name}] re-reads and adds 1 with update: ${retried.status}; balance = ${final} (expected 106)`,
    );
    if (final !== 106) throw new Error(`Lost or doubled update: ${final}`);
  } finally {
    await a.close();
    await b.close();
  }
}

async function main(): Promise<void> {
  console.log(`NATS ${NATS_URL}, PostgreSQL ${POSTGRES_URL}`);
  await sql`
    CREATE TABLE ${sql(TABLE)} (
      id integer PRIMARY KEY,
      value integer NOT NULL,
      token bigint NOT NULL -- the highest fencing token accepted so far
    )`;
  await sql`INSERT INTO ${sql(TABLE)} VALUES (1, 0, 0)`;
  console.log(`table ${TABLE} (counter 0, highest token 0), KV bucket ${BUCKET}`);
  const workers: Worker[] = [];
  try {
    workers.push(await startWorker("worker-1"), await startWorker("worker-2"));
    await contend(workers);
    await stall(workers[0]!, workers[1]!);
    const [row] = await sql<{ value: number; token: string }[]>`
      SELECT value, token FROM ${sql(TABLE)} WHERE id = 1`;
    const expected = 2 * INCREMENTS_PER_WORKER + 1;
    console.log(`\ncounter = ${row!.value} (expected ${expected}), highest token ${row!.token}`);
    if (row!.value !== expected) throw new Error(`Lost or doubled increments: ${row!.value}`);
    await stallThroughWarp(workers[0]!, workers[1]!);
  } finally {
    await workers[0]?.coordinator.destroy().catch(() => {});
    for (const worker of workers) await stopWorker(worker);
    await sql`DROP TABLE IF EXISTS ${sql(TABLE)}`;
    await sql`DROP TABLE IF EXISTS ${sql(STORE_TABLE)}`;
    await sql`DROP SEQUENCE IF EXISTS ${sql(`${STORE_TABLE}_version`)}`;
    await sql.end({ timeout: 1 });
    console.log(`Cleaned up: dropped table ${TABLE} and KV bucket ${BUCKET}`);
  }
}

if (import.meta.main) await main();
