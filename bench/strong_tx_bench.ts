/**
 * A strong transaction of two keys against two sequential strong `set`s of the same keys,
 * side by side in one run: three in-process nodes (one bus, one coordinator, sessions on),
 * the other two caching both keys before every write, so each write revokes two holders.
 * Rounds alternate which side goes first; the table gives each side's median and p90 write
 * latency and the ratio of the medians.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-env --allow-read --allow-sys bench/strong_tx_bench.ts \
 *   [--store memory|postgres] [--rounds 6] [--writes 50]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import postgres from "postgres";
import { InProcessBus, MemoryCoordinator, MemoryStore, Warp } from "../mod.ts";
import type { Store } from "../mod.ts";
import { PostgresStore } from "../src/postgres/mod.ts";

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "memory" },
    rounds: { type: "string", default: "6" },
    writes: { type: "string", default: "50" },
  },
});
const rounds = Number(values.rounds);
const writes = Number(values.writes);
const url = Deno.env.get("WARP_TEST_POSTGRES_URL") ?? "postgres://postgres@127.0.0.1:5432/test";
const table = `warp_bench_stx_${Date.now().toString(36)}`;

const store: Store = values.store === "postgres"
  ? await PostgresStore.connect({ url, table, createTable: true })
  : new MemoryStore();
const bus = new InProcessBus();
const coordinator = new MemoryCoordinator();
const nodes = ["a", "b", "c"].map((nodeId) => {
  const node = new Warp<number>({
    store,
    coordinator,
    transport: bus.connect({ label: nodeId }),
    nodeId,
    heartbeatIntervalMs: 20,
    sessionMs: 300,
  });
  node.register("st:*", { mode: "strong-distributed", leaseMs: 200 });
  return node;
});
const [a, b, c] = nodes as [Warp<number>, Warp<number>, Warp<number>];
while (nodes.some((n) => n.stats.sessionRenewals === 0)) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}

const sides = {
  "transaction([set x, set y])": (v: number) =>
    a.transaction([{ kind: "set", key: "st:x", value: v }, { kind: "set", key: "st:y", value: v }]),
  "set(x); set(y)": async (v: number) => {
    await a.set("st:x", v);
    await a.set("st:y", v);
  },
} as const;
type Side = keyof typeof sides;
const samples: Record<Side, number[]> = { "transaction([set x, set y])": [], "set(x); set(y)": [] };

let v = 0;
for (let round = 0; round < rounds; round++) {
  const order = (Object.keys(sides) as Side[]).toSorted(() => round % 2 === 0 ? 1 : -1);
  for (const side of order) {
    for (let i = 0; i < writes; i++) {
      for (const holder of [b, c]) {
        await holder.get("st:x");
        await holder.get("st:y");
      }
      const start = performance.now();
      await sides[side](++v);
      samples[side].push(performance.now() - start);
    }
  }
}

const quantile = (xs: number[], q: number) => {
  const sorted = xs.toSorted((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};
const base = quantile(samples["set(x); set(y)"], 0.5);
console.log(
  `store ${values.store}, ${rounds} rounds x ${writes} writes per side, 2 holders revoked per key`,
);
console.log("| side | p50 ms | p90 ms | p50 ratio to set; set |");
console.log("| --- | --- | --- | --- |");
for (const side of Object.keys(sides) as Side[]) {
  const p50 = quantile(samples[side], 0.5);
  console.log(
    `| ${side} | ${p50.toFixed(3)} | ${quantile(samples[side], 0.9).toFixed(3)} | ${
      (p50 / base).toFixed(2)
    } |`,
  );
}

for (const node of nodes) await node.close();
if (store instanceof PostgresStore) {
  await store.close();
  const sql = postgres(url, { onnotice: () => {}, max: 1 });
  await sql`DROP TABLE IF EXISTS ${sql(table)}`;
  await sql`DROP SEQUENCE IF EXISTS ${sql(`${table}_version`)}`;
  await sql.end();
}
