/**
 * Warp where users already are, against the raw operations it is made of, side by side in
 * one run:
 *
 * - **invalidation propagation between node processes**, over `PostgresTransport` and
 *   over `RedisTransport` (three nodes, PostgreSQL store and coordinator): from `set` of an
 *   eventual key returning on node A to the entry leaving L1 on node B, against a raw
 *   `NOTIFY` → `LISTEN` (postgres.js) and a raw `PUBLISH` → `SUBSCRIBE` (node-redis)
 *   between the same processes (`bench/_process_bench.ts`, as `bench/nats_bench.ts` does
 *   for NATS);
 * - **on `PostgresCoordinator`, in this process**: a compare-and-set `update` against a
 *   plain `UPDATE … WHERE revision = $n`; a lock `acquire` + `release` (`Locks`) against
 *   the plain `INSERT` and `DELETE` it amounts to; and a strong-distributed `set` of one
 *   node on PostgreSQL alone against the plain statements its I/O is made of (recorded
 *   from one `set`: each coordinator read, compare-and-set, store read and conditional
 *   write, and `pg_notify` issued as the simplest statement that does it, without the
 *   revision counter, the CTEs or Warp).
 *
 * Samples of a measure and its baseline are interleaved, so both see the same noise. Prints
 * medians and p99s and their ratios.
 *
 * ```sh
 * npx -y deno@2 task bench:postgres [--iterations 200]
 * ```
 *
 * Needs PostgreSQL on 127.0.0.1:5432 and Redis on 6379 (`WARP_TEST_PG_URL`,
 * `WARP_TEST_REDIS_URL` override them).
 *
 * @module
 */

import { parseArgs } from "node:util";
import postgres from "postgres";
import { Locks, type Store, Warp } from "../mod.ts";
import type { Coordinator, CoordinatorCallOptions } from "../src/coordinator.ts";
import type { Transport } from "../src/transport.ts";
import {
  PostgresCoordinator,
  PostgresStore,
  PostgresTransport,
  reconnectBackoff,
} from "../src/postgres/mod.ts";
import { PG_URL, ProcessCluster } from "../test/_process_cluster.ts";
import type { BusKind } from "../test/_stack.ts";
import { propagation, ratioCells, row, summarize, type Summary } from "./_process_bench.ts";

/** One line of the table: a measure, its baseline, and what they are. */
type Line = readonly [name: string, warp: Summary, base: Summary];

const WIDTHS = [52, 11, 11, 11, 11, 7, 7];

function print(title: string, lines: readonly Line[]): void {
  console.log(`\n${title}\n`);
  console.log(
    row(["measure", "warp p50", "warp p99", "base p50", "base p99", "×p50", "×p99"], WIDTHS),
  );
  for (const [name, warp, base] of lines) {
    console.log(row([name, ...ratioCells(warp, base)], WIDTHS));
  }
}

/** Invalidation propagation over one bus, between three node processes. */
async function busLine(bus: BusKind, iterations: number): Promise<Line> {
  const cluster = await ProcessCluster.start({
    stalenessMs: 60_000,
    leaseMs: 2000,
    bus,
    coordinator: "postgres",
  });
  try {
    await propagation(cluster, 20); // warm up connections and JIT
    const { warp, raw } = await propagation(cluster, iterations);
    const what = bus === "postgres" ? "raw NOTIFY→LISTEN" : "raw PUBLISH→SUBSCRIBE";
    return [`invalidation A→B over ${bus} vs ${what}`, summarize(warp), summarize(raw)];
  } finally {
    await cluster.close();
  }
}

/** Times `warp` and `base` alternately, `iterations` times each, in milliseconds. */
async function interleaved(
  iterations: number,
  warp: (i: number) => Promise<unknown>,
  base: (i: number) => Promise<unknown>,
): Promise<{ warp: Summary; base: Summary }> {
  const warpMs: number[] = [], baseMs: number[] = [];
  for (let i = 0; i < iterations + 20; i++) {
    let start = performance.now();
    await warp(i);
    const w = performance.now() - start;
    start = performance.now();
    await base(i);
    const b = performance.now() - start;
    if (i >= 20) warpMs.push(w), baseMs.push(b); // the first 20 warm up
  }
  return { warp: summarize(warpMs), base: summarize(baseMs) };
}

/** A call one strong `set` made, to issue again as a plain statement. */
type Call =
  | "coordinator get"
  | "coordinator create"
  | "coordinator update"
  | "coordinator delete"
  | "store get"
  | "store write"
  | "publish";

/** Records the calls made through it while `recording` is on. */
class Recorder {
  recording = false;
  readonly calls: Call[] = [];

  note(call: Call): void {
    if (this.recording) this.calls.push(call);
  }

  coordinator(inner: Coordinator): Coordinator {
    return {
      get: (key: string, options?: CoordinatorCallOptions) => {
        this.note("coordinator get");
        return inner.get(key, options);
      },
      create: (key: string, value: Uint8Array, options?: CoordinatorCallOptions) => {
        this.note("coordinator create");
        return inner.create(key, value, options);
      },
      update: (key, value, revision, options?: CoordinatorCallOptions) => {
        this.note("coordinator update");
        return inner.update(key, value, revision, options);
      },
      delete: (key: string, revision?: number) => {
        this.note("coordinator delete");
        return inner.delete(key, revision);
      },
    };
  }

  store(inner: Store): Store {
    return {
      get: (key) => {
        this.note("store get");
        return inner.get(key);
      },
      set: (key, value, options) => {
        this.note("store write");
        return inner.set(key, value, options);
      },
      delete: (key, options) => {
        this.note("store write");
        return inner.delete(key, options);
      },
      list: (options) => inner.list(options),
    };
  }

  transport(inner: Transport): Transport {
    return {
      publish: (subject, data) => {
        this.note("publish");
        inner.publish(subject, data);
      },
      subscribe: (subject, handler) => inner.subscribe(subject, handler),
      close: () => inner.close(),
    };
  }
}

/** The PostgreSQL coordinator's measures, in this process. */
async function coordinatorLines(iterations: number): Promise<{ lines: Line[]; made: string }> {
  const suffix = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const tables = { coordinator: `bench_coord_${suffix}`, store: `bench_store_${suffix}` };
  const raw = `bench_raw_${suffix}`;
  const client = { max: 4, backoff: reconnectBackoff };
  const sql = postgres(PG_URL, { onnotice: () => {}, ...client });
  const coordinator = await PostgresCoordinator.connect({
    url: PG_URL,
    client,
    table: tables.coordinator,
    createTable: true,
  });
  const store = await PostgresStore.connect({
    url: PG_URL,
    client,
    table: tables.store,
    createTable: true,
  });
  const transport = await PostgresTransport.connect({ url: PG_URL, client: { max: 2 } });
  const recorder = new Recorder();
  const warp = new Warp({
    store: recorder.store(store),
    coordinator: recorder.coordinator(coordinator),
    transport: recorder.transport(transport),
    prefix: `bench.${suffix}`,
  });
  const locks = new Locks({ coordinator, nodeId: "bench", prefix: `bench.${suffix}` });
  try {
    await sql`CREATE TABLE ${sql(raw)} (key text PRIMARY KEY, value bytea, revision bigint)`;
    await sql`INSERT INTO ${sql(raw)} VALUES ('cas', '\\x00', 1), ('row', '\\x00', 1)`;
    const value = new Uint8Array(64);
    const lines: Line[] = [];

    // Compare-and-set: the counter, the CTEs and the notification, against a bare UPDATE.
    let revision = await coordinator.create("cas", value);
    let rawRevision = 1;
    const cas = await interleaved(iterations, async () => {
      revision = await coordinator.update("cas", value, revision);
    }, async () => {
      const [r] = await sql`
        UPDATE ${sql(raw)} SET value = ${value}, revision = revision + 1
        WHERE key = 'cas' AND revision = ${rawRevision} RETURNING revision`;
      rawRevision = Number(r!.revision);
    });
    lines.push(["coordinator update vs UPDATE … WHERE revision = $n", cas.warp, cas.base]);

    // A lock: create its record, then delete it at its revision.
    const lock = await interleaved(iterations, async () => {
      const held = await locks.acquire("job", { ttlMs: 5000 });
      await held.release();
    }, async () => {
      await sql`INSERT INTO ${sql(raw)} VALUES ('lock', ${value}, 1)`;
      await sql`DELETE FROM ${sql(raw)} WHERE key = 'lock' AND revision = 1`;
    });
    lines.push(["lock acquire + release vs INSERT + DELETE", lock.warp, lock.base]);

    // A strong set, against the plain statements of the calls one set makes.
    warp.register("st:*", { mode: "strong-distributed" });
    await warp.set("st:bench", "warm");
    recorder.recording = true;
    await warp.set("st:bench", "recorded");
    recorder.recording = false;
    const calls = [...recorder.calls];
    const plain = async () => {
      for (const call of calls) {
        switch (call) {
          case "coordinator get":
          case "store get":
            await sql`SELECT value, revision FROM ${sql(raw)} WHERE key = 'row'`;
            break;
          case "coordinator create":
          case "coordinator update":
          case "coordinator delete":
          case "store write":
            await sql`UPDATE ${sql(raw)} SET value = ${value} WHERE key = 'row' AND revision = 1`;
            break;
          case "publish":
            await sql`SELECT pg_notify(${raw}, 'x')`;
            break;
        }
      }
    };
    const strong = await interleaved(iterations, (i) => warp.set("st:bench", `v${i}`), plain);
    lines.push(["strong set (1 node) vs its statements, plain", strong.warp, strong.base]);
    return { lines, made: calls.join(", ") };
  } finally {
    locks.close();
    await warp.close();
    await transport.close();
    await store.close();
    await coordinator.destroy();
    await sql`DROP TABLE IF EXISTS ${sql(raw)}`;
    await sql`DROP TABLE IF EXISTS ${sql(tables.store)}`;
    await sql`DROP SEQUENCE IF EXISTS ${sql(`${tables.store}_version`)}`;
    await sql.end();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { iterations: { type: "string", default: "200" } },
  });
  const iterations = Number(values.iterations);
  if (!Number.isSafeInteger(iterations) || iterations < 10) {
    throw new RangeError(`Invalid --iterations, expected an integer >= 10: ${values.iterations}`);
  }
  const buses = [await busLine("postgres", iterations), await busLine("redis", iterations)];
  print(
    `Invalidation propagation between three node processes (PostgreSQL store and coordinator), ${iterations} samples each`,
    buses,
  );
  const { lines, made } = await coordinatorLines(iterations);
  print(`PostgresCoordinator in one process, ${iterations} samples each`, lines);
  console.log(`\nOne strong set (a node alone, sessions on) was made of: ${made}`);
}

if (import.meta.main) await main();
