/**
 * Warp at twelve nodes on a NATS cluster: three private nats-servers routed into one
 * cluster (`test/_nats_cluster.ts`), the coordinator's buckets replicated on all three (R3)
 * where the server decides compare-and-sets once on a replicated stream (2.9.21 or later;
 * R1 on an older one, nats-server #4320 — the invalidations measured here do not go
 * through the coordinator), and twelve Warp node processes (`test/_process_cluster.ts`), each connected to one of the
 * servers (nats.js picks one at random, so most deliveries cross a route), sessions on.
 *
 * - **invalidation fan-out**: from `set` of an eventual key returning on node 1 to the
 *   entry leaving L1 on each of the 11 others (every receiver's sample, and the slowest
 *   receiver's per write), against a raw NATS publish on node 1 to its delivery on each of
 *   the same 11 processes, interleaved in the same run;
 * - **bus messages per node per second**, idle (heartbeats and nothing else) and during
 *   the fan-out, from the nodes' transport counters.
 *
 * Times are taken inside the node processes on the shared epoch clock, as in
 * `bench/nats_bench.ts`. Medians and p99s, and their ratios to the raw baseline.
 *
 * ```sh
 * npx -y deno@2 run --allow-net=127.0.0.1 --allow-env --allow-run --allow-read \
 *   --allow-write=/tmp --allow-sys bench/nats_cluster_bench.ts [--iterations 200] [--nodes 12]
 * ```
 *
 * Needs PostgreSQL on 127.0.0.1 (the store) and the nats-server binary; never touches
 * the shared NATS server.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { NatsCluster, natsServerVersion } from "../test/_nats_cluster.ts";
import { natsServerProblem } from "../src/nats/_connect.ts";
import { ProcessCluster } from "../test/_process_cluster.ts";
import { expectOk, ratioCells, row, summarize, type Summary } from "./_process_bench.ts";

let nextSeq = 1;
/** Reads that did not leave the key cached and were made again. */
let refills = 0;

/** One write on node 0 and its invalidation's arrival on every other node; raw likewise. */
async function fanOut(
  cluster: ProcessCluster,
  iterations: number,
): Promise<{ warp: number[]; warpLast: number[]; raw: number[]; rawLast: number[] }> {
  const receivers = cluster.nodes.slice(1).map((_, i) => i + 1);
  const subject = `${cluster.prefix}.bench.fan`;
  await Promise.all(receivers.map((r) => cluster.command(r, { op: "rawsub", subject })));
  expectOk(await cluster.command(0, { op: "set", key: "ev:fan", value: "first" }), "set");
  const warp: number[] = [], warpLast: number[] = [], raw: number[] = [], rawLast: number[] = [];
  for (let i = 0; i < iterations; i++) {
    await Promise.all(receivers.map(async (r) => {
      // A fill may be voided (a flush on a late heartbeat of a loaded machine): read again.
      for (let attempt = 1;; attempt++) {
        expectOk(await cluster.command(r, { op: "get", key: "ev:fan" }), "read");
        const peek = await cluster.command(r, { op: "peek", key: "ev:fan" });
        if (peek.cached === true) break;
        if (attempt === 20) throw new Error(`node ${r} did not cache ev:fan`);
        refills++;
      }
      await cluster.command(r, { op: "watch", key: "ev:fan" });
    }));
    const set = await cluster.command(0, { op: "set", key: "ev:fan", value: `v${i}` });
    expectOk(set, "set on node 1");
    const evicted = await Promise.all(
      receivers.map((r) =>
        cluster.event(r, (e) => e.event === "evicted" && e.key === "ev:fan", 10_000)
      ),
    );
    const delays = evicted.map((e) => (e.atMs as number) - (set.completeMs as number));
    warp.push(...delays);
    warpLast.push(Math.max(...delays));

    const seq = nextSeq++;
    const published = await cluster.command(0, { op: "rawpub", subject, seq });
    const delivered = await Promise.all(
      receivers.map((r) => cluster.event(r, (e) => e.event === "raw" && e.seq === seq, 10_000)),
    );
    const rawDelays = delivered.map((e) => (e.atMs as number) - (published.atMs as number));
    raw.push(...rawDelays);
    rawLast.push(Math.max(...rawDelays));
  }
  return { warp, warpLast, raw, rawLast };
}

/** Bus messages received per node per second over `fn` (its wall time). */
async function receivedPerNodeSecond(
  cluster: ProcessCluster,
  fn: () => Promise<unknown>,
): Promise<{ received: number; published: number; seconds: number }> {
  const count = async () => {
    const stats = await Promise.all(cluster.nodes.map((_, i) => cluster.stats(i)));
    return {
      received: stats.reduce((sum, s) => sum + (s.transport.received ?? 0), 0),
      published: stats.reduce((sum, s) => sum + (s.transport.published ?? 0), 0),
    };
  };
  const before = await count();
  const startMs = performance.now();
  await fn();
  const seconds = (performance.now() - startMs) / 1000;
  const after = await count();
  const n = cluster.nodes.length;
  return {
    received: (after.received - before.received) / n / seconds,
    published: (after.published - before.published) / n / seconds,
    seconds,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      iterations: { type: "string", default: "200" },
      nodes: { type: "string", default: "12" },
    },
  });
  const iterations = Number(values.iterations), size = Number(values.nodes);
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError(`Invalid --iterations: ${values.iterations}`);
  }
  if (!Number.isSafeInteger(size) || size < 2 || size > 64) {
    throw new RangeError(`Invalid --nodes, expected 2 to 64: ${values.nodes}`);
  }
  const version = natsServerVersion();
  const replicas = natsServerProblem({ version, jetstream: true }, 3) === undefined ? 3 : 1;
  const nats = await NatsCluster.start(3);
  try {
    const cluster = await ProcessCluster.start({
      size,
      natsUrl: nats.urls,
      replicas,
      stalenessMs: 60_000,
      leaseMs: 2000,
      // Warp's own timer defaults, not the fault tests' short ones.
      heartbeatMs: 250,
      gapTimeoutMs: 500,
    });
    try {
      await fanOut(cluster, 10); // warm up connections, JIT, session records
      const idle = await receivedPerNodeSecond(
        cluster,
        () => new Promise((resolve) => setTimeout(resolve, 5000)),
      );
      let result: Awaited<ReturnType<typeof fanOut>> | undefined;
      const busy = await receivedPerNodeSecond(cluster, async () => {
        result = await fanOut(cluster, iterations);
      });
      const { warp, warpLast, raw, rawLast } = result!;
      const lines: [string, Summary, Summary][] = [
        ["invalidation 1→each of 11 vs raw publish→deliver", summarize(warp), summarize(raw)],
        ["the same, slowest of the 11 per write", summarize(warpLast), summarize(rawLast)],
      ];
      const widths = [50, 11, 11, 11, 11, 7, 7];
      console.log(
        `\nWarp at ${size} node processes on a 3-server NATS cluster (nats-server ${version}, ` +
          `R${replicas} coordinator, sessions on): ${iterations} writes, medians and p99s\n`,
      );
      console.log(
        row(["measure", "warp p50", "warp p99", "base p50", "base p99", "×p50", "×p99"], widths),
      );
      for (const [name, w, b] of lines) console.log(row([name, ...ratioCells(w, b)], widths));
      console.log(
        `\nbus messages per node per second: idle ${idle.received.toFixed(1)} received, ` +
          `${idle.published.toFixed(1)} published (${idle.seconds.toFixed(1)} s); during the ` +
          `fan-out ${busy.received.toFixed(1)} received, ${busy.published.toFixed(1)} published ` +
          `(${busy.seconds.toFixed(1)} s, ${(iterations / busy.seconds).toFixed(1)} writes/s ` +
          `with their reads); cluster total idle ${(idle.received * size).toFixed(0)} ` +
          `deliveries/s; ${refills} reads made again (the entry was not cached)`,
      );
    } finally {
      await cluster.close();
    }
  } finally {
    await nats.stop();
  }
}

if (import.meta.main) await main();
