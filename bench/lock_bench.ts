/**
 * Lock latency on the real NATS server: `Locks` acquire + release of a free lock, beside
 * the raw JetStream KV operations it is built on (create + delete) in the same run, on the
 * same connection. Medians and p99 of interleaved rounds.
 *
 * Run: npx -y deno@2 run --allow-net=127.0.0.1 --allow-env --allow-read bench/lock_bench.ts [rounds]
 *
 * @module
 */

import { connect } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import { Locks } from "../src/locks.ts";
import { NatsKvCoordinator } from "../src/nats/coordinator.ts";

async function main(): Promise<void> {
  const rounds = Number(Deno.args[0] ?? 2000);
  const servers = Deno.env.get("WARP_TEST_NATS_URL") ?? "127.0.0.1:4222";
  const nc = await connect({ servers });
  const bucket = `warp_lock_bench_${crypto.randomUUID().slice(0, 8)}`;
  const coordinator = await NatsKvCoordinator.create(nc, { bucket, timeoutMs: 5000 });
  const raw = await new Kvm(nc).open(bucket);
  const locks = new Locks({ coordinator, nodeId: "bench" });

  const warp: number[] = [], base: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      let t = performance.now();
      const lock = await locks.acquire("bench", { ttlMs: 10_000 });
      await lock.release();
      warp.push(performance.now() - t);
      t = performance.now();
      const revision = await raw.create("raw-bench", "x");
      await raw.delete("raw-bench", { previousSeq: revision });
      base.push(performance.now() - t);
    }
  } finally {
    locks.close();
    await coordinator.destroy();
    await nc.close();
  }

  const pct = (xs: number[], p: number) =>
    [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!;
  const row = (name: string, xs: number[]) =>
    console.log(
      `| ${name.padEnd(40)} | ${(pct(xs, 0.5) * 1000).toFixed(0).padStart(7)} µs | ${
        (pct(xs, 0.99) * 1000).toFixed(0).padStart(7)
      } µs | ${(pct(xs, 0.5) / pct(base, 0.5)).toFixed(2).padStart(6)}× |`,
    );
  console.log(`\n${rounds} interleaved rounds against ${servers}\n`);
  console.log(
    `| ${"operation".padEnd(40)} | ${"p50".padStart(10)} | ${"p99".padStart(10)} | ${
      "ratio".padStart(7)
    } |`,
  );
  console.log(`| ${"-".repeat(40)} | ${"-".repeat(10)} | ${"-".repeat(10)} | ${"-".repeat(7)} |`);
  row("baseline: raw KV create + delete", base);
  row("Locks acquire + release", warp);
}

// A script, not a Deno.bench file: `deno bench bench/` imports it and must not run it.
if (import.meta.main) await main();
