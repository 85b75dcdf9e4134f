/**
 * `update` on the real stack: three Warp node processes (NATS bus and coordinator, a
 * PostgreSQL store) increment one counter of each distributed mode concurrently through
 * `update`, and the store's final value must equal the increments acknowledged (plus, under
 * a fault, at most the ones whose outcome is unknown): M1 outside the simulator.
 *
 * @module
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { PG_URL, type ProcessCluster } from "./_process_cluster.ts";
import { sleep, withCluster } from "./_cluster_faults.ts";

const KEYS = ["ev:ctr", "st:ctr"] as const;

interface Tally {
  ok: number;
  conflict: number;
  failed: number;
  unknown: number;
  attempts: number;
  errors: string[];
}

/** Every node increments every key `count` times; the tallies per key, summed over nodes. */
async function incrementEverywhere(
  cluster: ProcessCluster,
  count: number,
): Promise<Record<string, Tally>> {
  const runs = cluster.nodes.flatMap((_, i) =>
    KEYS.map(async (key) => ({
      key,
      tally: await cluster.command(i, { op: "increment", key, count }) as unknown as Tally,
    }))
  );
  const sums: Record<string, Tally> = {};
  for (const { key, tally } of await Promise.all(runs)) {
    const sum = sums[key] ??= {
      ok: 0,
      conflict: 0,
      failed: 0,
      unknown: 0,
      attempts: 0,
      errors: [],
    };
    sum.ok += tally.ok;
    sum.conflict += tally.conflict;
    sum.failed += tally.failed;
    sum.unknown += tally.unknown;
    sum.attempts += tally.attempts;
    sum.errors.push(...tally.errors);
  }
  return sums;
}

/** What the PostgreSQL table holds for `key`: the counter (JSON) and its version. */
async function stored(cluster: ProcessCluster, key: string): Promise<number> {
  const sql = postgres(PG_URL, { onnotice: () => {}, max: 1 });
  try {
    const [row] = await sql<{ value: Uint8Array }[]>`
      SELECT value FROM ${sql(cluster.table)} WHERE key = ${key}`;
    return JSON.parse(new TextDecoder().decode(row!.value)); // no lease: the bare JSON
  } finally {
    await sql.end();
  }
}

Deno.test("three processes increment one counter per mode through update: no increment lost", async () => {
  await withCluster({}, async (cluster) => {
    const tallies = await incrementEverywhere(cluster, 30);
    for (const key of KEYS) {
      const t = tallies[key]!;
      assert.deepEqual(
        [t.failed, t.unknown, t.conflict],
        [0, 0, 0],
        `${key}: ${JSON.stringify(t)}`,
      );
      assert.equal(t.ok, 3 * 30);
      assert.equal(await stored(cluster, key), t.ok, key);
      assert.ok(t.attempts > t.ok, `${key}: the nodes contended (${t.attempts} attempts)`);
    }
  });
});

Deno.test("three processes increment through update while one node's NATS connection is cut: final = acknowledged, plus at most the unknown", async () => {
  await withCluster({ proxied: true }, async (cluster) => {
    const proxy = cluster.node(1).proxy!;
    const fault = (async () => {
      await sleep(300);
      proxy.blackhole();
      await sleep(1500);
      proxy.restore();
    })();
    const tallies = await incrementEverywhere(cluster, 40);
    await fault;
    for (const key of KEYS) {
      const t = tallies[key]!;
      const final = await stored(cluster, key);
      assert.ok(
        final >= t.ok && final <= t.ok + t.unknown,
        `${key}: stored ${final}, acknowledged ${t.ok}, unknown ${t.unknown} (${t.errors})`,
      );
      assert.ok(t.ok > 0, `${key}: some increments went through`);
      console.log(
        `${key}: stored ${final}; ok ${t.ok}, unknown ${t.unknown}, failed ${t.failed}, conflict ${t.conflict}; errors ${[
          ...new Set(t.errors),
        ]}`,
      );
    }
  });
});
