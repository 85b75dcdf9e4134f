/**
 * Batch reads against PostgreSQL, side by side in one run: `getMany` of 100 keys that all
 * miss L1 (one `PostgresStore.getMany` statement) against the same 100 keys read with 100
 * `get` calls started together (`Promise.all`, 100 statements over the pool) and one after
 * the other. Before every sample the 100 keys are invalidated (untimed), so each sample
 * reads the store. Samples of the three are interleaved, so all see the same noise. Prints
 * medians and p99s and the ratios to `getMany`.
 *
 * ```sh
 * npx -y deno@2 task bench:get-many [--iterations 200] [--keys 100]
 * ```
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (`WARP_TEST_PG_URL` overrides it).
 *
 * @module
 */

import { parseArgs } from "node:util";
import postgres from "postgres";
import { Warp } from "../mod.ts";
import { PostgresStore } from "../src/postgres/mod.ts";
import { PG_URL } from "../test/_process_cluster.ts";
import { ratioCells, row, summarize } from "./_process_bench.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    iterations: { type: "string", default: "200" },
    keys: { type: "string", default: "100" },
  },
});
const iterations = Number(args.iterations);
const keyCount = Number(args.keys);
const table = `warp_bench_many_${Date.now().toString(36)}`;
const store = await PostgresStore.connect({ url: PG_URL, table, createTable: true });
const warp = new Warp<{ id: number; name: string }>({ store });
warp.register("row:*", { mode: "strong-local", ttlMs: 600_000 });
const keys = Array.from({ length: keyCount }, (_, i) => `row:${i}`);
for (const [i, key] of keys.entries()) await warp.set(key, { id: i, name: `user ${i}` });

async function cold(): Promise<void> {
  for (const key of keys) await warp.invalidate(key);
}

async function timed(read: () => Promise<unknown>): Promise<number> {
  await cold();
  const start = performance.now();
  await read();
  return performance.now() - start;
}

const measures = {
  many: [] as number[],
  parallel: [] as number[],
  sequential: [] as number[],
};
const reads = {
  many: async () => {
    const results = await warp.getMany(keys);
    if (!results.every((r) => r.ok && r.result.source === "store")) throw new Error("not cold");
  },
  parallel: () => Promise.all(keys.map((key) => warp.get(key))),
  sequential: async () => {
    for (const key of keys) await warp.get(key);
  },
};
for (let i = 0; i < 10; i++) for (const read of Object.values(reads)) await timed(read); // warm-up
for (let i = 0; i < iterations; i++) {
  for (const name of ["many", "parallel", "sequential"] as const) {
    measures[name].push(await timed(reads[name]));
  }
}
await warp.close();
await store.close();
const sql = postgres(PG_URL, { onnotice: () => {}, max: 1 });
await sql`DROP TABLE IF EXISTS ${sql(table)}`;
await sql`DROP SEQUENCE IF EXISTS ${sql(`${table}_version`)}`;
await sql.end();

const many = summarize(measures.many);
const widths = [44, 11, 11, 11, 11, 7, 7];
console.log(
  `\ngetMany of ${keyCount} cold keys vs ${keyCount} gets, PostgresStore, ${iterations} samples each\n`,
);
console.log(
  row(["measure", "base p50", "base p99", "many p50", "many p99", "×p50", "×p99"], widths),
);
for (
  const [name, samples] of [
    [`${keyCount} gets at once (Promise.all)`, measures.parallel],
    [`${keyCount} gets one after the other`, measures.sequential],
  ] as const
) {
  console.log(row([name, ...ratioCells(summarize(samples), many)], widths));
}
console.log(`\n×: the baseline's time over getMany's (above 1: getMany is faster)`);
