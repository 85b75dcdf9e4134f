/**
 * `deno task sim`: fuzz Warp for consistency violations in a simulated cluster.
 *
 * Runs seeds (each its own fault mix and schedule), checks every history against
 * CONSISTENCY.md, and on the first violation shrinks it, prints it as a timeline, writes a
 * space-time diagram, prints the command that replays it, and exits 1.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import type { ConsistencyMode } from "../src/core/registry.ts";
import type { WarpConfig } from "../src/config.ts";
import { CANARIES } from "./cluster.ts";
import type { CanaryName, SimStats } from "./cluster.ts";
import { DRIFT_PPM_RANGE, FAULT_PRESETS } from "./faults.ts";
import type { FaultPreset } from "./faults.ts";
import { configProblems, phaseLengthsMs, userShape } from "./config.ts";
import { describeFault } from "./cluster.ts";
import { formatPath, FULL_PATH, parsePath, runSeed, shrinkSeed } from "./runner.ts";
import type { SeedOptions, SeedReport } from "./runner.ts";
import {
  hitLines,
  polarisLines,
  propagationLines,
  relevantEvents,
  spaceTimeHtml,
  timeline,
  validatorLines,
} from "./report.ts";
import { LOCK_CANARIES, runLockSeed } from "./lock_cluster.ts";
import type { LockCanaryName } from "./lock_cluster.ts";

const HELP = `Usage: deno task sim [options]

Fuzzes Warp's consistency guarantees in a deterministic simulated cluster.

  --scenario NAME   cache (default: the three consistency modes and leases, E1–E4, S1–S2,
                    SL1–SL2, G1–G3) or locks (L1–L4)
  --no-leases       cache scenario without leased keys and lease operations
  --clears          cache scenario with namespace clears (about 2 % of operations, CL)
  --no-updates      cache scenario without update (read-modify-write) keys, M1 and M2
  --no-transactions cache scenario without transactions (2-3 keys, eventual and strong)
  --no-loaders      cache scenario without loader-backed keys (LB1–LB3, F1–F3)
  --no-validator    cache scenario without the background validator on every node (V1)
  --backdoor        cache scenario with keys written in the store behind Warp's back, which
                    the validator counts and heals (V1)
  --coordinator-faults
                    locks scenario: also stale coordinator reads and answers lost after
                    the call took effect (drawn as for the cache scenario's gray seeds)
  --config FILE     fuzz your configuration: a module exporting \`config\` (or a default
                    export), the registrations and node options you pass to new Warp
  --seed N          first seed (default: 32 random bits, printed)
  --seeds N         run N seeds                        (default: run for --duration)
  --duration S      run for S seconds of wall time      (default: 60)
  --nodes N         nodes per cluster                   (default: 5)
  --modes LIST      local,eventual,strong               (default: all)
  --faults PRESET   ${FAULT_PRESETS.join("|")} (default: swarm)
  --max-drift-ppm N the drift bound nodes assume and clocks keep (default: drawn per
                    seed, ${DRIFT_PPM_RANGE[0]} to ${
  DRIFT_PPM_RANGE[1]
} ppm; with --config, its own or 500)
  --canary NAME     break an assumption on purpose: ${CANARIES.join("|")}
                    (locks: ${LOCK_CANARIES.join("|")})
  --forger POWER    a forger on the bus: snooping (reads all, lacks the nodes' secret) or
                    blind (no secret in the cluster, cannot read)
  --path P          with --seed: replay a shrunk run (as printed on a violation)
  --replay          run only --seed (and --path) with a full trace and timeline
  --echoes-max N    every node's echo budget per heartbeat (default: the library's 32;
                    below --nodes, heartbeats echo their peers in turn)
  --safety-ms MS    safety phase length (default 2000); --liveness-ms MS (default 1000)
  --rate N          client ops per second per node (default 200)
  --read-share F    share of reads in the workload (default 0.75)
  --out DIR         where diagrams go (default: reports/sim)
  --verbose         a line per seed
  --json            print the summary as JSON
  --help            this text
`;

const MODE_NAMES: Record<string, ConsistencyMode> = {
  local: "strong-local",
  eventual: "eventual-distributed",
  strong: "strong-distributed",
  "strong-local": "strong-local",
  "eventual-distributed": "eventual-distributed",
  "strong-distributed": "strong-distributed",
};

function fail(message: string): never {
  console.error(`sim: ${message}\n\n${HELP}`);
  process.exit(2);
}

function positiveNumber(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) fail(`--${name} must be a positive number: ${text}`);
  return value;
}

const { values } = (() => {
  try {
    return parseArgs({
      args: Deno.args,
      options: {
        scenario: { type: "string" },
        "no-leases": { type: "boolean" },
        clears: { type: "boolean" },
        "no-updates": { type: "boolean" },
        "no-transactions": { type: "boolean" },
        "no-loaders": { type: "boolean" },
        "no-validator": { type: "boolean" },
        backdoor: { type: "boolean" },
        "coordinator-faults": { type: "boolean" },
        config: { type: "string" },
        "max-drift-ppm": { type: "string" },
        seed: { type: "string" },
        seeds: { type: "string" },
        duration: { type: "string" },
        nodes: { type: "string" },
        modes: { type: "string" },
        faults: { type: "string" },
        canary: { type: "string" },
        forger: { type: "string" },
        path: { type: "string" },
        replay: { type: "boolean" },
        "safety-ms": { type: "string" },
        "echoes-max": { type: "string" },
        "liveness-ms": { type: "string" },
        rate: { type: "string" },
        "read-share": { type: "string" },
        out: { type: "string" },
        verbose: { type: "boolean" },
        json: { type: "boolean" },
        help: { type: "boolean" },
      },
      strict: true,
    });
  } catch (error) {
    fail((error as Error).message);
  }
})();

if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const modes = (values.modes ?? "local,eventual,strong").split(",").map((m) =>
  MODE_NAMES[m.trim()] ?? fail(`unknown mode: ${m}`)
);
const preset = (values.faults ?? "swarm") as FaultPreset;
if (!FAULT_PRESETS.includes(preset)) fail(`unknown fault preset: ${values.faults}`);
const scenario = values.scenario ?? "cache";
if (scenario !== "cache" && scenario !== "locks") fail(`unknown scenario: ${scenario}`);
if (values["coordinator-faults"] && scenario !== "locks") {
  fail(`--coordinator-faults is for the locks scenario: ${scenario}`);
}
const canary = values.canary as CanaryName | undefined;
const canaries: readonly string[] = scenario === "locks" ? LOCK_CANARIES : CANARIES;
if (canary !== undefined && !canaries.includes(canary)) fail(`unknown canary: ${canary}`);
const forger = values.forger as "snooping" | "blind" | undefined;
if (forger !== undefined && forger !== "snooping" && forger !== "blind") {
  fail(`--forger must be snooping or blind: ${forger}`);
}
const firstSeed = values.seed !== undefined
  ? Number(values.seed)
  : crypto.getRandomValues(new Uint32Array(1))[0]!;
if (!Number.isInteger(firstSeed) || firstSeed < 0 || firstSeed > 0xffffffff) {
  fail(`--seed must be a 32-bit integer: ${values.seed}`);
}
const seedsMax = values.seeds !== undefined ? positiveNumber("seeds", values.seeds, 1) : Infinity;
const durationMs = values.seeds !== undefined && values.duration === undefined
  ? Infinity
  : positiveNumber("duration", values.duration, 60) * 1000;
const readShare = values["read-share"] !== undefined ? Number(values["read-share"]) : 0.75;
if (!(readShare >= 0 && readShare < 1)) {
  fail(`--read-share must be in [0, 1): ${values["read-share"]}`);
}
const maxDriftPpm = values["max-drift-ppm"] !== undefined
  ? Number(values["max-drift-ppm"])
  : undefined;
if (maxDriftPpm !== undefined && !(maxDriftPpm >= 0 && maxDriftPpm <= DRIFT_PPM_RANGE[1])) {
  fail(`--max-drift-ppm must be 0 to ${DRIFT_PPM_RANGE[1]}: ${values["max-drift-ppm"]}`);
}
const nodes = positiveNumber("nodes", values.nodes, 5);
const config = values.config !== undefined ? await loadConfig(values.config) : undefined;
const userKeys = config !== undefined
  ? userShape(config, { nodes, leasing: values["no-leases"] !== true, modes })
  : undefined;
if (userKeys !== undefined && userKeys.keys.length === 0) {
  fail(`--config ${values.config} registers no key of the modes asked: ${values.modes}`);
}
const phases = userKeys !== undefined
  ? phaseLengthsMs(userKeys)
  : { safetyMs: 2000, livenessMs: 1000 };
const base: Omit<SeedOptions, "seed"> = {
  nodes,
  modes,
  faults: preset,
  safetyMs: positiveNumber("safety-ms", values["safety-ms"], phases.safetyMs),
  livenessMs: positiveNumber("liveness-ms", values["liveness-ms"], phases.livenessMs),
  opsPerSecondPerNode: positiveNumber("rate", values.rate, 200),
  readShare,
  leases: values["no-leases"] !== true,
  ...(values.clears === true && { clears: true }),
  updates: values["no-updates"] !== true,
  lastWriterWins: values["no-updates"] !== true,
  transactions: values["no-transactions"] !== true,
  strongTransactions: values["no-transactions"] !== true,
  ...(values["no-loaders"] === true && { loaders: false }),
  validator: values["no-validator"] !== true,
  ...(values.backdoor === true && { backdoor: true }),
  ...(canary !== undefined && { canary }),
  ...(forger !== undefined && { forger }),
  ...(maxDriftPpm !== undefined && { maxDriftPpm }),
  ...(config !== undefined && { config }),
  ...(values["echoes-max"] !== undefined &&
    { echoesMax: positiveNumber("echoes-max", values["echoes-max"], 32) }),
};

/**
 * Imports the user's configuration module and checks it: every problem is printed, naming
 * the option and its value, and the run stops (exit 2) before any seed.
 */
async function loadConfig(file: string): Promise<WarpConfig> {
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(resolve(file)).href);
  } catch (error) {
    fail(`cannot import --config ${file}: ${(error as Error).message}`);
  }
  const exported = module.config ?? module.default;
  if (exported === undefined) {
    fail(`--config ${file} exports neither \`config\` nor a default: ${Object.keys(module)}`);
  }
  const problems = configProblems(exported, maxDriftPpm);
  if (problems.length > 0) {
    console.error(`sim: the configuration in ${file} cannot be simulated:`);
    for (const problem of problems) console.error(`  ${problem}`);
    process.exit(2);
  }
  return exported as WarpConfig;
}
const path = values.path !== undefined
  ? (() => {
    try {
      return parsePath(values.path!);
    } catch (error) {
      fail((error as Error).message);
    }
  })()
  : FULL_PATH;
const outDir = values.out ?? "reports/sim";

function replayCommand(seed: number, runPath = path): string {
  const p = formatPath(runPath);
  return [
    "npx -y deno@2 task sim --replay",
    `--seed ${seed}`,
    p !== "" ? `--path "${p}"` : "",
    `--nodes ${base.nodes}`,
    `--modes ${values.modes ?? "local,eventual,strong"}`,
    `--faults ${preset}`,
    `--safety-ms ${base.safetyMs} --liveness-ms ${base.livenessMs}`,
    `--rate ${base.opsPerSecondPerNode} --read-share ${readShare}`,
    canary !== undefined ? `--canary ${canary}` : "",
    forger !== undefined ? `--forger ${forger}` : "",
    values["no-leases"] ? "--no-leases" : "",
    values.clears ? "--clears" : "",
    values["no-updates"] ? "--no-updates" : "",
    values["no-transactions"] ? "--no-transactions" : "",
    values["no-loaders"] ? "--no-loaders" : "",
    values["no-validator"] ? "--no-validator" : "",
    values.backdoor ? "--backdoor" : "",
    maxDriftPpm !== undefined ? `--max-drift-ppm ${maxDriftPpm}` : "",
    values.config !== undefined ? `--config ${values.config}` : "",
    values["echoes-max"] !== undefined ? `--echoes-max ${values["echoes-max"]}` : "",
  ].filter((s) => s !== "").join(" ");
}

/** Prints a violation as a readable counterexample and writes its diagram. */
function explain(report: SeedReport): void {
  const seed = report.run.seed;
  const traced = runSeed({ ...base, seed, trace: true }, report.path);
  const violation = traced.violations[0] ?? report.violations[0]!;
  const ops = traced.run.history.ops;
  const offending = new Set(violation.ops);
  console.log(
    `\nVIOLATION of ${violation.guarantee} on ${violation.key} (seed ${seed}${
      formatPath(report.path) ? `, path ${formatPath(report.path)}` : ""
    })`,
  );
  console.log(`  ${violation.message}`);
  console.log(`\nFaults left after shrinking (${traced.run.schedule.length}):`);
  for (const fault of traced.run.schedule) {
    console.log(`  at ${fault.atMs.toFixed(1)} ms: ${describeFault(fault)}`);
  }
  const mix = traced.run.mix;
  const shape = traced.run.shape;
  console.log(`  drift bound ${shape.maxDriftPpm} ppm; nodes ${shape.mixed ? "mixed:" : "alike"}`);
  if (shape.mixed) {
    shape.nodes.forEach((node, i) => {
      console.log(
        `    n${i}: leaseCheckMs ${node.leaseCheckMs}, heartbeatIntervalMs ${node.heartbeatIntervalMs}, gapTimeoutMs ${node.gapTimeoutMs}, keys ${
          JSON.stringify(node.keys)
        }`,
      );
    });
  }
  console.log(
    `  loss ${(mix.lossRate * 100).toFixed(1)}%, dup ${(mix.dupRate * 100).toFixed(1)}%, tail ${
      (mix.tailRate * 100).toFixed(1)
    }%, store errors ${(mix.storeErrorRate * 100).toFixed(1)}%`,
  );
  console.log(`\nOperations involved:`);
  for (const op of ops.filter((o) => offending.has(o.id))) {
    console.log(
      `  op ${op.id} on ${op.process}: ${op.kind} ${op.key} → ${op.outcome}, version ${
        op.version ?? "?"
      }${op.kind === "read" ? `, value ${JSON.stringify(op.value)} from ${op.source}` : ""}, [${
        op.invokeMs.toFixed(3)
      }, ${op.completeMs?.toFixed(3) ?? "∞"}]`,
    );
  }
  const events = relevantEvents(traced.run.trace ?? [], ops, violation);
  console.log(`\nTimeline of ${violation.key} (true time, ms; >> marks the offending operations):`);
  console.log(timeline(events.slice(-200), offending));
  mkdirSync(outDir, { recursive: true });
  const file = `${outDir}/violation-${seed}.html`;
  writeFileSync(
    file,
    spaceTimeHtml(
      `Warp simulator: ${violation.guarantee} violation, seed ${seed}`,
      base.nodes!,
      events,
      ops,
      violation,
    ),
  );
  console.log(`\nSpace-time diagram: ${file}`);
  console.log(`Replay: ${replayCommand(seed, report.path)}`);
}

interface Totals {
  seeds: number;
  events: number;
  simMs: number;
  ops: number;
  wallMs: number;
  results: Record<string, Record<string, number>>;
  stats: SimStats | undefined;
  /** Per seed that had any: how long stale entries outlived the faults (EP). */
  healLatenciesMs: number[];
}

function accumulate(totals: Totals, report: SeedReport): void {
  totals.seeds++;
  totals.events += report.run.stats.events;
  totals.simMs += report.run.stats.simMs;
  totals.ops += report.run.stats.ops;
  totals.wallMs += report.wallMs;
  for (const [guarantee, status] of Object.entries(report.results)) {
    const row = (totals.results[guarantee] ??= {});
    row[status] = (row[status] ?? 0) + 1;
  }
  const s = report.run.stats;
  if (s.propagation.healLatencyMs !== null) {
    totals.healLatenciesMs.push(s.propagation.healLatencyMs);
  }
  if (totals.stats === undefined) {
    totals.stats = structuredClone(s);
    return;
  }
  for (const [name, h] of Object.entries(s.hits)) {
    const t = (totals.stats.hits[name] ??= { l1: 0, store: 0 });
    t.l1 += h.l1;
    t.store += h.store;
  }
  totals.stats.polaris.writes += s.polaris.writes;
  s.polaris.consistent.forEach((c, i) => totals.stats!.polaris.consistent[i]! += c);
  const propagation = totals.stats.propagation;
  propagation.boundMs = Math.max(propagation.boundMs, s.propagation.boundMs);
  propagation.healBoundMs = Math.max(propagation.healBoundMs, s.propagation.healBoundMs);
  propagation.liveness.writes += s.propagation.liveness.writes;
  s.propagation.liveness.consistent.forEach((c, i) => propagation.liveness.consistent[i]! += c);
  if (s.validator !== undefined) {
    const validator = (totals.stats.validator ??= {});
    for (const [name, n] of Object.entries(s.validator)) {
      validator[name] = (validator[name] ?? 0) + n;
    }
  }
}

/** `S1, S2 ×58`: each guarantee violated once, with its count when more than one. */
function countedGuarantees(violations: readonly { readonly guarantee: string }[]): string {
  const counts = new Map<string, number>();
  for (const { guarantee } of violations) counts.set(guarantee, (counts.get(guarantee) ?? 0) + 1);
  return [...counts].map(([name, n]) => (n === 1 ? name : `${name} ×${n}`)).join(", ");
}

function summary(totals: Totals, violations: number, wallMs: number): void {
  if (values.json) {
    console.log(JSON.stringify({ firstSeed, ...totals, violations, wallMs }, null, 2));
    return;
  }
  const perSecond = (n: number) => (n / (wallMs / 1000)).toFixed(0);
  console.log(`\n  seeds run         ${totals.seeds} (first seed ${firstSeed})`);
  console.log(`  violations        ${violations}`);
  console.log(`  client ops        ${totals.ops}`);
  console.log(`  events            ${totals.events} (${perSecond(totals.events)} events/s)`);
  console.log(`  seeds/s           ${perSecond(totals.seeds)}`);
  console.log(
    `  simulated time    ${(totals.simMs / 1000).toFixed(1)} s (${
      (totals.simMs / wallMs).toFixed(0)
    }× real time)`,
  );
  console.log(
    `\n  guarantee  ${["pass", "fail", "unknown", "skipped"].map((s) => s.padStart(8)).join("")}`,
  );
  for (const [guarantee, row] of Object.entries(totals.results).sort()) {
    console.log(
      `  ${guarantee.padEnd(9)}  ${
        ["pass", "fail", "unknown", "skipped"].map((s) => String(row[s] ?? 0).padStart(8)).join("")
      }`,
    );
  }
  if (totals.stats !== undefined) {
    console.log(`\n  L1 hit ratio per mode and phase:`);
    for (const line of hitLines(totals.stats)) console.log(`    ${line}`);
    console.log(`\n  Every node consistent after a distributed write (Polaris):`);
    for (const line of polarisLines(totals.stats)) console.log(`    ${line}`);
    console.log(`\n  Propagation once faults stop (EP):`);
    for (const line of propagationLines(totals.stats, totals.healLatenciesMs)) {
      console.log(`    ${line}`);
    }
    if (totals.stats.validator !== undefined) {
      console.log(`\n  Background validator (V1), all nodes:`);
      for (const line of validatorLines(totals.stats.validator)) console.log(`    ${line}`);
    }
  }
}

/** The drift bound of the runs, in words. */
function driftText(): string {
  return maxDriftPpm !== undefined
    ? `drift bound ${maxDriftPpm} ppm`
    : config !== undefined
    ? `drift bound ${config.maxDriftPpm ?? 500} ppm`
    : `drift bound drawn per seed (${DRIFT_PPM_RANGE[0]}–${DRIFT_PPM_RANGE[1]} ppm)`;
}

/** The lock scenario: seeds of the lock simulator, checked against L1–L4. */
function mainLocks(): number {
  const started = performance.now();
  const results: Record<string, Record<string, number>> = {};
  let seeds = 0, events = 0, grants = 0, worstL3 = 0, boundL3 = 0;
  const coordinatorFaults = values["coordinator-faults"] === true;
  console.log(
    `Warp lock simulator: ${base.nodes} nodes, faults swarm${
      coordinatorFaults ? " with coordinator faults" : ""
    }, ${driftText()}${canary ? `, canary ${canary}` : ""}, first seed ${firstSeed}`,
  );
  for (let i = 0; i < seedsMax && performance.now() - started < durationMs; i++) {
    const seed = (firstSeed + i) >>> 0;
    const report = runLockSeed({
      seed,
      nodes: base.nodes!,
      ...(canary !== undefined && { canary: canary as unknown as LockCanaryName }),
      ...(maxDriftPpm !== undefined && { maxDriftPpm }),
      ...(coordinatorFaults && { coordinatorFaults }),
    });
    seeds++;
    events += report.stats.events;
    grants += report.stats.grants;
    if (report.l3.worstDelayMs > worstL3) worstL3 = report.l3.worstDelayMs;
    boundL3 = report.l3.boundMs;
    for (const [g, status] of Object.entries(report.results)) {
      const row = (results[g] ??= {});
      row[status] = (row[status] ?? 0) + 1;
    }
    if (values.verbose) {
      console.log(
        `seed ${seed}: drift bound ${report.history.maxDriftPpm} ppm, ${report.stats.grants} grants, ${report.violations.length} violation(s), hash ${report.traceHash}`,
      );
    }
    if (report.violations.length > 0) {
      for (const v of report.violations.slice(0, 5)) {
        console.log(`VIOLATION of ${v.guarantee} on ${v.key}: ${v.message}`);
      }
      console.log(
        `Replay: npx -y deno@2 task sim --scenario locks --seed ${seed} --seeds 1 --nodes ${base.nodes}${
          canary ? ` --canary ${canary}` : ""
        }${maxDriftPpm !== undefined ? ` --max-drift-ppm ${maxDriftPpm}` : ""}${
          coordinatorFaults ? " --coordinator-faults" : ""
        } --verbose`,
      );
      return 1;
    }
  }
  const wall = (performance.now() - started) / 1000;
  console.log(`\n  seeds run         ${seeds} (first seed ${firstSeed})`);
  console.log(`  grants            ${grants}`);
  console.log(
    `  events            ${events} (${(events / wall).toFixed(0)} events/s), ${
      (seeds / wall).toFixed(0)
    } seeds/s`,
  );
  console.log(`  worst L3 takeover ${worstL3.toFixed(1)} ms (bound ${boundL3.toFixed(1)} ms)`);
  console.log(
    `\n  guarantee  ${["pass", "fail", "unknown", "skipped"].map((s) => s.padStart(8)).join("")}`,
  );
  for (const [g, row] of Object.entries(results).sort()) {
    console.log(
      `  ${g.padEnd(9)}  ${
        ["pass", "fail", "unknown", "skipped"].map((s) => String(row[s] ?? 0).padStart(8)).join("")
      }`,
    );
  }
  return seeds === 0 ? 1 : 0;
}

function main(): number {
  if (scenario === "locks") return mainLocks();
  const started = performance.now();
  const totals: Totals = {
    seeds: 0,
    events: 0,
    simMs: 0,
    ops: 0,
    wallMs: 0,
    results: {},
    stats: undefined,
    healLatenciesMs: [],
  };
  const interactive = Deno.stdout.isTerminal();
  if (values.replay) {
    const report = runSeed({ ...base, seed: firstSeed, trace: true }, path);
    accumulate(totals, report);
    console.log(
      `replayed seed ${firstSeed}: trace hash ${report.run.traceHash}, ${report.violations.length} violation(s)`,
    );
    if (report.violations.length > 0) explain(report);
    summary(totals, report.violations.length, performance.now() - started);
    return report.violations.length > 0 ? 1 : 0;
  }
  if (!values.json) {
    console.log(
      `Warp simulator: ${base.nodes} nodes, ${
        config !== undefined ? `configuration ${values.config}` : `modes ${modes.join(", ")}`
      }, faults ${preset}, ${driftText()}${
        canary ? `, canary ${canary}` : ""
      }, first seed ${firstSeed}`,
    );
  }
  let lastPrint = 0;
  for (let i = 0; i < seedsMax && performance.now() - started < durationMs; i++) {
    const seed = (firstSeed + i) >>> 0;
    const report = runSeed({ ...base, seed }, path);
    accumulate(totals, report);
    if (values.verbose) {
      console.log(
        `seed ${seed}: drift bound ${report.run.shape.maxDriftPpm} ppm, nodes ${
          report.run.shape.mixed ? "mixed" : "alike"
        }, ${report.run.stats.events} events, ${report.run.history.ops.length} ops, ${report.violations.length} violation(s), hash ${report.run.traceHash}`,
      );
    }
    const now = performance.now();
    if (
      !values.json && !values.verbose &&
      (interactive ? now - lastPrint > 200 : now - lastPrint > 10_000)
    ) {
      lastPrint = now;
      const elapsed = (now - started) / 1000;
      const line = `  ${totals.seeds} seeds, ${(totals.seeds / elapsed).toFixed(0)} seeds/s, ${
        (totals.events / elapsed / 1e6).toFixed(2)
      } M events/s, 0 violations`;
      if (interactive) Deno.stdout.writeSync(new TextEncoder().encode(`\r${line}`));
      else console.log(line);
    }
    if (report.violations.length > 0) {
      if (interactive) console.log();
      console.log(
        `seed ${seed} violates ${countedGuarantees(report.violations)}; shrinking…`,
      );
      const shrunk = shrinkSeed({ ...base, seed }, report);
      explain(shrunk);
      summary(totals, report.violations.length, performance.now() - started);
      return 1;
    }
  }
  if (interactive && !values.json) console.log();
  summary(totals, 0, performance.now() - started);
  if (totals.seeds === 0) {
    console.error("sim: no seed ran");
    return 1;
  }
  return 0;
}

process.exit(main());
