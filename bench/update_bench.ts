/**
 * `update` of a contended counter against the plain statement it replaces, side by side in
 * one run: three Warp node processes (NATS bus and coordinator, PostgreSQL store) increment
 * one counter through `update`, two increments in flight each, and the same three
 * processes run a plain `UPDATE … SET n = n + 1` loop on a one-row table, two in flight
 * each. Rounds of the two alternate, so both see the same noise.
 *
 * The baseline is what a user without Warp writes: PostgreSQL serialises the increments on
 * its row lock, with no read, no conflict and no retry; `update` reads, reduces, writes
 * conditionally and retries on a conflict, and an eventual-distributed key also broadcasts
 * an invalidation (a strong-distributed one goes through the strong write protocol).
 *
 * ```sh
 * npx -y deno@2 task bench:update [--count 150] [--rounds 3]
 * ```
 *
 * Needs NATS with JetStream on 127.0.0.1:4222 and PostgreSQL on 127.0.0.1:5432.
 *
 * @module
 */

import { parseArgs } from "node:util";
import postgres from "postgres";
import { PG_URL, ProcessCluster } from "../test/_process_cluster.ts";
import { ratioCells, row, summarize } from "./_process_bench.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { count: { type: "string" }, rounds: { type: "string" } },
});
const COUNT = Number(values.count ?? 150);
const ROUNDS = Number(values.rounds ?? 3);
const KEYS = ["ev:bench", "st:bench"] as const;
const WIDTHS = [44, 11, 11, 11, 11, 7, 7];

interface Tally {
  readonly ok: number;
  readonly errors: string[];
  readonly attempts: number;
  readonly latenciesMs: number[];
}

/** Runs `command` on every node at once; the wall time and each node's answer. */
async function everywhere<R>(
  cluster: ProcessCluster,
  command: Record<string, unknown>,
): Promise<{ wallMs: number; results: R[] }> {
  const start = performance.now();
  const results = await Promise.all(
    cluster.nodes.map((_, i) => cluster.command(i, command) as unknown as Promise<R>),
  );
  return { wallMs: performance.now() - start, results };
}

const cluster = await ProcessCluster.start({ writeTimeoutMs: 10_000 });
const sql = postgres(PG_URL, { onnotice: () => {}, max: 1 });
const table = `${cluster.table}_n`;
try {
  await sql`CREATE TABLE ${sql(table)} (id integer PRIMARY KEY, n bigint NOT NULL)`;
  await sql`INSERT INTO ${sql(table)} VALUES (1, 0)`;
  const latencies: Record<string, number[]> = { raw: [], "ev:bench": [], "st:bench": [] };
  const rates: Record<string, number[]> = { raw: [], "ev:bench": [], "st:bench": [] };
  let attempts = 0, oks = 0;
  const failures: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const raw = await everywhere<{ latenciesMs: number[] }>(cluster, {
      op: "rawincrement",
      table,
      count: COUNT,
    });
    latencies.raw!.push(...raw.results.flatMap((r) => r.latenciesMs));
    rates.raw!.push((3 * COUNT) / (raw.wallMs / 1000));
    for (const key of KEYS) {
      const run = await everywhere<Tally>(cluster, { op: "increment", key, count: COUNT });
      const ok = run.results.reduce((sum, r) => sum + r.ok, 0);
      failures.push(...run.results.flatMap((r) => r.errors.map((e) => `${key} ${e}`)));
      latencies[key]!.push(...run.results.flatMap((r) => r.latenciesMs));
      rates[key]!.push(ok / (run.wallMs / 1000));
      attempts += run.results.reduce((sum, r) => sum + r.attempts, 0);
      oks += ok;
    }
  }
  const [counter] = await sql<{ n: string }[]>`SELECT n FROM ${sql(table)} WHERE id = 1`;
  if (Number(counter!.n) !== 3 * COUNT * ROUNDS) throw new Error(`Raw counter ${counter!.n}`);

  console.log(
    `\nA contended counter, 3 processes × 2 in flight, ${COUNT} increments each, ${ROUNDS} rounds\n`,
  );
  console.log(
    row([
      "latency of one increment",
      "warp p50",
      "warp p99",
      "base p50",
      "base p99",
      "×p50",
      "×p99",
    ], WIDTHS),
  );
  const base = summarize(latencies.raw!);
  for (const key of KEYS) {
    const name = `update ${key} vs UPDATE … SET n = n + 1`;
    console.log(row([name, ...ratioCells(summarize(latencies[key]!), base)], WIDTHS));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\nthroughput, median of ${ROUNDS} rounds (increments per second, all nodes):`);
  console.log(`  raw UPDATE … SET n = n + 1   ${median(rates.raw!).toFixed(0)}`);
  for (const key of KEYS) {
    const rate = median(rates[key]!);
    console.log(
      `  update ${key.padEnd(20)} ${rate.toFixed(0)} (${
        (rate / median(rates.raw!)).toFixed(3)
      } × raw)`,
    );
  }
  console.log(`attempts per acknowledged update: ${(attempts / oks).toFixed(2)}`);
  console.log(
    `updates that failed (not retried, reported): ${failures.length} ${failures.join(", ")}`,
  );
} finally {
  await sql`DROP TABLE IF EXISTS ${sql(table)}`;
  await sql.end();
  await cluster.close();
}
