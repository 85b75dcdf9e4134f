/**
 * Private: what the benchmarks between node processes share (`bench/nats_bench.ts`,
 * `bench/postgres_bench.ts`): percentiles, the invalidation-propagation measure against a
 * raw publish on the same bus between the same processes, and table rows.
 *
 * @module
 */

import type { ProcessCluster } from "../test/_process_cluster.ts";

/** Percentile by nearest rank of sorted samples. */
export function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[index]!;
}

/** The median and 99th percentile of some samples. */
export interface Summary {
  readonly p50: number;
  readonly p99: number;
}

/** The median and p99 of `samples`. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

/** Throws unless an operation record says ok. */
export function expectOk(record: Record<string, unknown>, what: string): void {
  if (record.outcome !== "ok") throw new Error(`${what} failed: ${JSON.stringify(record)}`);
}

let nextSeq = 1;

/**
 * Invalidation propagation A → B (from `set` returning on node 0 to the entry leaving L1 on
 * node 1), and a raw publish → delivery A → B on the bus's own server (`rawpub`,
 * `rawsub`), interleaved so both see the same noise.
 */
export async function propagation(
  cluster: ProcessCluster,
  iterations: number,
): Promise<{ warp: number[]; raw: number[] }> {
  const warp: number[] = [];
  const raw: number[] = [];
  const subject = `${cluster.prefix}.bench.raw`;
  await cluster.command(1, { op: "rawsub", subject });
  expectOk(await cluster.command(0, { op: "set", key: "ev:bench", value: "first" }), "set");
  for (let i = 0; i < iterations; i++) {
    // B caches the key (maxStalenessMs is long: only the invalidation can evict it).
    expectOk(await cluster.command(1, { op: "get", key: "ev:bench" }), "read on B");
    const peek = await cluster.command(1, { op: "peek", key: "ev:bench" });
    if (peek.cached !== true) throw new Error("B did not cache ev:bench");
    await cluster.command(1, { op: "watch", key: "ev:bench" });
    const set = await cluster.command(0, { op: "set", key: "ev:bench", value: `v${i}` });
    expectOk(set, "set on A");
    const evicted = await cluster.event(1, (e) => e.event === "evicted" && e.key === "ev:bench");
    warp.push((evicted.atMs as number) - (set.completeMs as number));

    const seq = nextSeq++;
    const published = await cluster.command(0, { op: "rawpub", subject, seq });
    const delivered = await cluster.event(1, (e) => e.event === "raw" && e.seq === seq);
    raw.push((delivered.atMs as number) - (published.atMs as number));
  }
  return { warp, raw };
}

/** A duration for a table cell. */
export function ms(value: number): string {
  return `${value.toFixed(3)} ms`;
}

/** One table row: the first cell left-aligned, the others right-aligned. */
export function row(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((cell, i) => i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))
    .join("  ");
}

/** The cells of a measure against its baseline: both p50s and p99s, and their ratios. */
export function ratioCells(warp: Summary, base: Summary): string[] {
  return [
    ms(warp.p50),
    ms(warp.p99),
    ms(base.p50),
    ms(base.p99),
    (warp.p50 / base.p50).toFixed(2),
    (warp.p99 / base.p99).toFixed(2),
  ];
}
