/**
 * Runs `deno bench --json` a few times and prints one compact table per group: each
 * benchmark's time per iteration, the median over the runs, and its ratio to the
 * group's baseline. On a noisy machine one run is not enough; the median of several is
 * steadier than any one of them.
 *
 * `deno bench --json` reports, per benchmark, `min`, `avg`, `p75`, `p99`, `p995`,
 * `p999` and `max` in nanoseconds, but no median: the table shows the median over runs
 * of `avg` and of `p75`, the ratio is of the `avg` medians, and `spread` is the lowest
 * and highest `avg` of the runs.
 *
 * Usage (the child `deno bench` gets the permissions of the `bench` task):
 *
 * ```sh
 * deno run --allow-read --allow-run bench/run.ts [--runs 3] [--filter TEXT] [PATH...]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The part of `deno bench --json` output read here. */
interface BenchReport {
  readonly benches: readonly {
    readonly origin: string;
    readonly group: string | null;
    readonly name: string;
    readonly baseline: boolean;
    readonly results: readonly { readonly ok?: { readonly avg: number; readonly p75: number } }[];
  }[];
}

/** One benchmark's numbers across runs. */
interface Row {
  readonly group: string;
  readonly name: string;
  readonly baseline: boolean;
  readonly avgs: number[];
  readonly p75s: number[];
}

const RUNS_MAX = 20;
const BENCH_PERMISSIONS = ["--allow-read", "--allow-env", "--allow-sys"];

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function formatNs(ns: number): string {
  return ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(1)} ns`;
}

async function benchOnce(paths: readonly string[], filter: string | undefined) {
  const args = ["bench", "--json", ...BENCH_PERMISSIONS];
  if (filter !== undefined) args.push("--filter", filter);
  const output = await new Deno.Command(Deno.execPath(), {
    args: [...args, ...paths],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`deno bench failed: exit code ${output.code}`);
  return JSON.parse(new TextDecoder().decode(output.stdout)) as BenchReport;
}

function collect(rows: Map<string, Row>, report: BenchReport): void {
  for (const bench of report.benches) {
    const ok = bench.results[0]?.ok;
    if (ok === undefined) throw new Error(`Benchmark failed: ${bench.name}`);
    const group = bench.group ?? "(no group)";
    const id = `${bench.origin}\n${group}\n${bench.name}`;
    let row = rows.get(id);
    if (row === undefined) {
      row = { group, name: bench.name, baseline: bench.baseline, avgs: [], p75s: [] };
      rows.set(id, row);
    }
    row.avgs.push(ok.avg);
    row.p75s.push(ok.p75);
  }
}

function table(group: string, rows: readonly Row[]): string {
  const baseline = rows.find((row) => row.baseline);
  const baselineNs = baseline === undefined ? undefined : median(baseline.avgs);
  const lines = [
    [`${group}`, "avg (median)", "p75 (median)", "ratio", "spread of avg"],
    ...rows.map((row) => {
      const avg = median(row.avgs);
      return [
        row.baseline ? `${row.name} (baseline)` : row.name,
        formatNs(avg),
        formatNs(median(row.p75s)),
        baselineNs === undefined ? "-" : `${(avg / baselineNs).toFixed(2)}×`,
        `${formatNs(Math.min(...row.avgs))} … ${formatNs(Math.max(...row.avgs))}`,
      ];
    }),
  ];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((line) => line[i]!.length)));
  const format = (line: string[]) =>
    `| ${
      line.map((cell, i) => i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)).join(
        " | ",
      )
    } |`;
  const rule = `|${
    widths.map((width, i) => "-".repeat(width + 1) + (i === 0 ? "-" : ":")).join("|")
  }|`;
  return [format(lines[0]!), rule, ...lines.slice(1).map(format)].join("\n");
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { runs: { type: "string", default: "3" }, filter: { type: "string" } },
    allowPositionals: true,
  });
  const runs = Number(values.runs);
  if (!Number.isSafeInteger(runs) || runs < 1 || runs > RUNS_MAX) {
    throw new RangeError(`runs must be an integer from 1 to ${RUNS_MAX}: ${values.runs}`);
  }
  const paths = positionals.length > 0 ? positionals : ["bench/"];
  const rows = new Map<string, Row>();
  let runtime = "";
  for (let run = 1; run <= runs; run++) {
    console.error(`run ${run} of ${runs}…`);
    const report = await benchOnce(paths, values.filter);
    runtime = (report as { runtime?: string }).runtime ?? "";
    collect(rows, report);
  }
  const groups = Map.groupBy(rows.values(), (row) => row.group);
  console.log(`${runtime}, ${runs} run${runs === 1 ? "" : "s"}, time per iteration\n`);
  for (const [group, groupRows] of groups) console.log(`${table(group, groupRows)}\n`);
}

if (import.meta.main) await main();
