/**
 * Behaviour check for a refactoring of the core or the simulator: runs the same seeds
 * through this tree's simulator and through another checkout's (say the commit before the
 * refactoring), and compares per seed the trace hash and a fingerprint of everything else the
 * run produced — for the cache scenario its history, the nodes' summed counters, the message
 * counts and the violations; for the lock scenario its history, stats, results and
 * violations. The simulator is deterministic, so a change that preserves behaviour gives
 * equal values for every seed; each difference is printed with its seed.
 *
 * Run (make the baseline with `git worktree add /tmp/baseline <commit>`):
 *
 *     npx -y deno@2 run --allow-read --allow-env bench/trace_compare.ts --base /tmp/baseline \
 *       [--seeds 300] [--first 1] [--presets swarm,partition,crash,network,clock,none] \
 *       [--canary-seeds 20] [--leases true] [--lock-seeds 100] [--lock-canary-seeds 10]
 *
 * The lock scenario runs `--lock-seeds` swarm seeds, as many without faults and as many
 * with three nodes and two locks, and `--lock-canary-seeds` per lock canary (0: none).
 *
 * Exits 1 on any difference, 0 when every seed matched.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { SeedOptions, SeedReport } from "../sim/runner.ts";
import type { FaultPreset } from "../sim/faults.ts";
import type { CanaryName } from "../sim/cluster.ts";
import type { LockSeedReport, LockSimOptions } from "../sim/lock_cluster.ts";

type RunSeed = (options: SeedOptions) => SeedReport;
type RunLockSeed = (options: LockSimOptions) => LockSeedReport;

/** FNV-1a over a string: enough to compare two runs, not a cryptographic hash. */
function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h.toString(16).padStart(8, "0");
}

/** What must be equal between two runs of one seed. */
function fingerprint(report: SeedReport): string {
  const { run } = report;
  const rest = JSON.stringify({
    history: run.history,
    node: run.stats.node,
    messages: run.stats.messages,
    events: run.stats.events,
    violations: report.violations.map((v) => `${v.guarantee} ${v.key}`),
  });
  return `${run.traceHash}/${fnv(rest)}`;
}

/** What must be equal between two lock runs of one seed. */
function lockFingerprint(report: LockSeedReport): string {
  const rest = JSON.stringify({
    history: report.history,
    stats: report.stats,
    results: report.results,
    violations: report.violations.map((v) => `${v.guarantee} ${v.key} ${v.message}`),
  });
  return `${report.traceHash}/${fnv(rest)}`;
}

async function runnerOf(root: string): Promise<RunSeed> {
  const url = pathToFileURL(resolve(root, "sim/runner.ts")).href;
  const module = await import(url) as { runSeed: RunSeed };
  return module.runSeed;
}

async function lockRunnerOf(root: string): Promise<RunLockSeed> {
  const url = pathToFileURL(resolve(root, "sim/lock_cluster.ts")).href;
  const module = await import(url) as { runLockSeed: RunLockSeed };
  return module.runLockSeed;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      base: { type: "string" },
      seeds: { type: "string", default: "300" },
      first: { type: "string", default: "1" },
      presets: { type: "string", default: "swarm,partition,crash,network,clock,none" },
      "canary-seeds": { type: "string", default: "20" },
      leases: { type: "string", default: "true" },
      "lock-seeds": { type: "string", default: "100" },
      "lock-canary-seeds": { type: "string", default: "10" },
    },
  });
  if (values.base === undefined) throw new TypeError("Missing --base: the baseline checkout");
  const here = resolve(import.meta.dirname ?? ".", "..");
  const ours = await runnerOf(here);
  const theirs = await runnerOf(values.base);
  const oursLock = await lockRunnerOf(here);
  const theirsLock = await lockRunnerOf(values.base);
  const seeds = Number(values.seeds);
  const first = Number(values.first);
  const leases = values.leases === "true";
  const { CANARIES } = await import("../sim/cluster.ts") as { CANARIES: readonly CanaryName[] };
  const { LOCK_CANARIES } = await import("../sim/lock_cluster.ts");

  const jobs: { label: string; fingerprints: (seed: number) => [string, string]; count: number }[] =
    [];
  const cache = (options: (seed: number) => SeedOptions) => (seed: number): [string, string] => [
    fingerprint(ours(options(seed))),
    fingerprint(theirs(options(seed))),
  ];
  const lock = (options: (seed: number) => LockSimOptions) => (seed: number): [string, string] => [
    lockFingerprint(oursLock(options(seed))),
    lockFingerprint(theirsLock(options(seed))),
  ];
  for (const preset of values.presets.split(",").filter((p) => p !== "")) {
    jobs.push({
      label: `${preset}${leases ? " +leases" : ""}`,
      fingerprints: cache((seed) => ({ seed, faults: preset as FaultPreset, leases })),
      count: seeds,
    });
  }
  for (const canary of CANARIES) {
    jobs.push({
      label: `canary ${canary}`,
      fingerprints: cache((seed) => ({ seed, canary })),
      count: Number(values["canary-seeds"]),
    });
  }
  const lockSeeds = Number(values["lock-seeds"]);
  const lockJobs = [
    { label: "locks swarm", options: (seed: number) => ({ seed }) },
    { label: "locks none", options: (seed: number) => ({ seed, faults: "none" as const }) },
    {
      label: "locks swarm, 3 nodes, 2 locks",
      options: (seed: number) => ({ seed, nodes: 3, locks: ["A", "B"] }),
    },
  ];
  for (const job of lockJobs) {
    jobs.push({ label: job.label, fingerprints: lock(job.options), count: lockSeeds });
  }
  for (const canary of LOCK_CANARIES) {
    jobs.push({
      label: `locks canary ${canary}`,
      fingerprints: lock((seed) => ({ seed, canary })),
      count: Number(values["lock-canary-seeds"]),
    });
  }

  let failures = 0;
  for (const job of jobs) {
    const started = performance.now();
    let equal = 0;
    for (let seed = first; seed < first + job.count; seed++) {
      const [a, b] = job.fingerprints(seed);
      if (a === b) {
        equal++;
      } else {
        failures++;
        console.log(`DIFFERENT ${job.label} seed ${seed}: ours ${a}, base ${b}`);
      }
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(0);
    console.log(`${job.label}: ${equal}/${job.count} seeds equal (${seconds} s)`);
  }
  console.log(failures === 0 ? "all equal" : `${failures} seed(s) differ`);
  return failures === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
