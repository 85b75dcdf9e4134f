/**
 * Latency of Warp over real NATS and PostgreSQL, between node processes, against raw
 * NATS (and PostgreSQL) between the same processes in the same run:
 *
 * - **invalidation propagation**: from `set` of an eventual key returning on node A to
 *   the entry leaving L1 on node B (B notes the instant the message that evicted it was
 *   handled), against a raw NATS publish on A to its delivery on B;
 * - **strong write**: `set` of a strong-distributed key cached on all three nodes (so the
 *   write revokes two holders and waits for their acks), against a raw NATS
 *   request/reply round trip from A to B followed by a raw PostgreSQL `UPDATE` of one row.
 *
 * Times are taken inside the node processes on the shared epoch clock
 * (`performance.timeOrigin + performance.now()`), so the harness's own pipes are not
 * measured. The two kinds of sample are interleaved, so both see the same noise. Prints
 * medians and p99s and their ratios to the baseline.
 *
 * Runs twice, each time in a cluster of its own: with node sessions (Warp's default
 * `sessionMs`) and without (`sessionMs: 0`); `--sessions on` or `off` runs one.
 *
 * ```sh
 * npx -y deno@2 run --allow-net=127.0.0.1 --allow-env --allow-run --allow-read --allow-sys \
 *   bench/nats_bench.ts [--iterations 300] [--sessions both|on|off]
 * ```
 *
 * Needs NATS with JetStream and PostgreSQL on 127.0.0.1 (`WARP_TEST_NATS_URL`,
 * `WARP_TEST_PG_URL` override them).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ProcessCluster } from "../test/_process_cluster.ts";
import {
  expectOk,
  ms,
  propagation,
  ratioCells,
  row,
  summarize,
  type Summary,
} from "./_process_bench.ts";

/** Strong writes on A with the key cached on A, B and C; raw request/reply + UPDATE. */
async function strongWrites(
  cluster: ProcessCluster,
  iterations: number,
): Promise<{ warp: number[]; raw: number[]; request: number[]; store: number[]; kv: number[] }> {
  const kv: number[] = [];
  const warp: number[] = [];
  const raw: number[] = [];
  const request: number[] = [];
  const store: number[] = [];
  const subject = `${cluster.prefix}.bench.rpc`;
  await cluster.command(1, { op: "rawreply", subject });
  // A row for the raw UPDATE to change.
  expectOk(await cluster.command(0, { op: "set", key: "sl:raw", value: "raw" }), "raw row");
  expectOk(await cluster.command(0, { op: "set", key: "st:bench", value: "first" }), "set");
  for (let i = 0; i < iterations; i++) {
    for (const node of [0, 1, 2]) {
      expectOk(await cluster.command(node, { op: "get", key: "st:bench" }), "strong read");
    }
    for (const node of [1, 2]) {
      const peek = await cluster.command(node, { op: "peek", key: "st:bench" });
      if (peek.cached !== true) throw new Error(`node ${node} did not cache st:bench`);
    }
    const set = await cluster.command(0, { op: "set", key: "st:bench", value: `v${i}` });
    expectOk(set, "strong set");
    warp.push((set.completeMs as number) - (set.invokeMs as number));

    const baseline = await cluster.command(0, { op: "baseline", subject, key: "sl:raw" });
    raw.push(baseline.totalMs as number);
    request.push(baseline.requestMs as number);
    store.push(baseline.storeMs as number);
    kv.push(baseline.kvMs as number);
  }
  return { warp, raw, request, store, kv };
}

/** The configurations `--sessions` selects: Warp's default `sessionMs`, and 0. */
const SESSIONS: Readonly<Record<string, readonly { name: string; sessionMs?: number }[]>> = {
  both: [{ name: "sessions on (default sessionMs)" }, {
    name: "sessions off (sessionMs 0)",
    sessionMs: 0,
  }],
  on: [{ name: "sessions on (default sessionMs)" }],
  off: [{ name: "sessions off (sessionMs 0)", sessionMs: 0 }],
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      iterations: { type: "string", default: "300" },
      sessions: { type: "string", default: "both" },
    },
  });
  const iterations = Number(values.iterations);
  if (!Number.isSafeInteger(iterations) || iterations < 10) {
    throw new RangeError(`Invalid --iterations, expected an integer >= 10: ${values.iterations}`);
  }
  const variants = Object.hasOwn(SESSIONS, values.sessions) ? SESSIONS[values.sessions] : undefined;
  if (variants === undefined) {
    throw new RangeError(`Invalid --sessions, expected both, on or off: ${values.sessions}`);
  }
  for (const variant of variants) await run(variant.name, variant.sessionMs, iterations);
}

/** Measures both kinds in a cluster of its own with this `sessionMs` and prints them. */
async function run(name: string, sessionMs: number | undefined, iterations: number): Promise<void> {
  const cluster = await ProcessCluster.start({ stalenessMs: 60_000, leaseMs: 2000, sessionMs });
  try {
    // Warm up connections, JIT and the coordinator records before measuring.
    await propagation(cluster, 20);
    await strongWrites(cluster, 20);
    const invalidation = await propagation(cluster, iterations);
    const strong = await strongWrites(cluster, iterations);

    const lines: [string, Summary, Summary, string][] = [
      [
        "invalidation A→B vs raw publish→deliver",
        summarize(invalidation.warp),
        summarize(invalidation.raw),
        "p99 ≤ 1.5×",
      ],
      [
        "strong set (3 holders) vs request/reply + UPDATE",
        summarize(strong.warp),
        summarize(strong.raw),
        "≤ 2×",
      ],
    ];
    const widths = [48, 11, 11, 11, 11, 7, 7, 10];
    console.log(
      `\nWarp over NATS between node processes, ${name}: ${iterations} samples each, ` +
        `medians and p99s\n`,
    );
    console.log(
      row(
        ["measure", "warp p50", "warp p99", "base p50", "base p99", "×p50", "×p99", "target"],
        widths,
      ),
    );
    for (const [name, warp, base, target] of lines) {
      console.log(row([name, ...ratioCells(warp, base), target], widths));
    }
    const request = summarize(strong.request);
    const store = summarize(strong.store);
    const kv = summarize(strong.kv);
    const floor = summarize(strong.raw.map((total, i) => total + strong.kv[i]!));
    const warp = summarize(strong.warp);
    console.log(
      `\nbaseline parts: request/reply p50 ${ms(request.p50)}, p99 ${ms(request.p99)}; ` +
        `UPDATE p50 ${ms(store.p50)}, p99 ${ms(store.p99)}`,
    );
    console.log(
      `strong write protocol floor (baseline + KV get + KV compare-and-set, p50 ` +
        `${ms(kv.p50)}): p50 ${ms(floor.p50)}, p99 ${ms(floor.p99)}; ` +
        `warp ×${(warp.p50 / floor.p50).toFixed(2)} p50, ×${(warp.p99 / floor.p99).toFixed(2)} p99`,
    );
  } finally {
    await cluster.close();
  }
}

if (import.meta.main) await main();
