/**
 * Runs simulated seeds, checks their histories, and shrinks a failing run to a minimal
 * fault schedule that still fails. A run is named by its seed and a **path**: which faults
 * of the seed's schedule were dropped and which rates were zeroed, so
 * `--seed S --path P` replays a shrunk counterexample bit for bit.
 *
 * @module
 */

import { SimCluster } from "./cluster.ts";
import { InvariantError } from "../src/core/errors.ts";
import type { SimOptions, SimRun } from "./cluster.ts";
import { drawFaults } from "./faults.ts";
import type { FaultMix, FaultPreset } from "./faults.ts";
import { checkHistory } from "./checkers/consistency.ts";
import { checkLoaders } from "./checkers/loader.ts";
import type { Violation } from "./history.ts";

/** Which parts of a seed's faults a run leaves out. */
export interface RunPath {
  /** Indices of the seed's scheduled faults that are dropped. */
  readonly droppedFaults: readonly number[];
  /** Rates of the seed's fault mix set to zero. */
  readonly zeroedRates: readonly (keyof FaultMix)[];
}

/** The empty path: the seed's faults as drawn. */
export const FULL_PATH: RunPath = { droppedFaults: [], zeroedRates: [] };

const RATES: readonly (keyof FaultMix)[] = [
  "lossRate",
  "dupRate",
  "tailRate",
  "storeErrorRate",
  "timerJitterMs",
  "clockOffsetMaxMs",
  "coordStaleRate",
  "coordReplyLossRate",
];

/** A checked run. */
export interface SeedReport {
  /** The run. */
  readonly run: SimRun;
  /** The path that replays it. */
  readonly path: RunPath;
  /** The violations found. */
  readonly violations: readonly Violation[];
  /** Each guarantee's status: pass, fail, unknown (search budget ran out) or skipped. */
  readonly results: Readonly<Record<string, string>>;
  /** Wall-clock time of the run and its check, ms. */
  readonly wallMs: number;
}

/** Formats a path for the command line (`f:1,3;r:lossRate`); `""` for the full path. */
export function formatPath(path: RunPath): string {
  const parts: string[] = [];
  if (path.droppedFaults.length > 0) parts.push(`f:${path.droppedFaults.join(",")}`);
  if (path.zeroedRates.length > 0) parts.push(`r:${path.zeroedRates.join(",")}`);
  return parts.join(";");
}

/**
 * Parses a path written by {@linkcode formatPath}; throws a TypeError naming a bad part.
 *
 * @example
 * ```ts
 * import { parsePath } from "./runner.ts";
 * console.log(parsePath("f:1,3;r:lossRate").droppedFaults); // [1, 3]
 * ```
 */
export function parsePath(text: string): RunPath {
  const droppedFaults: number[] = [];
  const zeroedRates: (keyof FaultMix)[] = [];
  for (const part of text.split(";").filter((p) => p !== "")) {
    const [tag, list = ""] = part.split(":");
    for (const item of list.split(",").filter((i) => i !== "")) {
      if (tag === "f" && /^\d+$/.test(item)) droppedFaults.push(Number(item));
      else if (tag === "r" && (RATES as readonly string[]).includes(item)) {
        zeroedRates.push(item as keyof FaultMix);
      } else throw new TypeError(`Invalid path part: ${part}`);
    }
  }
  return { droppedFaults, zeroedRates };
}

/** Options of {@linkcode runSeed}: the simulation's, with a preset for the faults. */
export type SeedOptions = Omit<SimOptions, "faults"> & { readonly faults?: FaultPreset };

/**
 * Runs one seed along a path and checks its history.
 *
 * @example
 * ```ts
 * import { runSeed } from "./runner.ts";
 * const report = runSeed({ seed: 3, nodes: 3, safetyMs: 300, livenessMs: 300 });
 * console.log(report.violations.length); // 0
 * ```
 */
export function runSeed(options: SeedOptions, path: RunPath = FULL_PATH): SeedReport {
  const started = performance.now();
  const drawn = drawFaults(
    options.seed,
    options.faults ?? "swarm",
    options.nodes ?? 5,
    options.safetyMs ?? 2000,
    options.classicSwarm,
  );
  const mix = { ...drawn.mix };
  for (const rate of path.zeroedRates) (mix as Record<string, unknown>)[rate] = 0;
  const dropped = new Set(path.droppedFaults);
  const schedule = drawn.schedule.filter((_, i) => !dropped.has(i));
  const cluster = new SimCluster({ ...options, faults: { mix, schedule } });
  let run: SimRun;
  try {
    run = cluster.run();
  } catch (error) {
    // A broken invariant is a bug like any violation: report it, shrink it, replay it.
    if (!(error instanceof InvariantError)) throw error;
    run = cluster.partial();
    const violation = { guarantee: "invariant", key: "", ops: [], message: error.message };
    return {
      run,
      path,
      violations: [violation],
      results: { invariant: "fail" },
      wallMs: performance.now() - started,
    };
  }
  const checked = checkHistory(run.history);
  const results: Record<string, string> = { invariant: "pass", ...checked.results };
  const violations = [...checked.violations];
  // A linearizability search that ran out of budget is searched once more with ten times
  // it: strong transactions keep writes open through their revocations, which makes a few
  // seeds' searches long, and an `unknown` checks nothing.
  const open = LINEARIZABLE.filter((g) => results[g] === "unknown");
  if (open.length > 0) {
    const again = checkHistory(run.history, { guarantees: open, stepsMax: RECHECK_STEPS_MAX });
    violations.push(...again.violations);
    for (const guarantee of open) results[guarantee] = again.results[guarantee];
  }
  const loaders = run.history.loaders;
  if (loaders !== undefined) {
    // The loader-backed keys' rules; E1 is shared with the store-backed keys.
    const loaded = checkLoaders(loaders, run.history.maxDriftPpm ?? 500);
    violations.push(...loaded.violations);
    for (const [guarantee, status] of Object.entries(loaded.results)) {
      results[guarantee] = combineStatus(results[guarantee], status);
    }
  }
  return { run, path, violations, results, wallMs: performance.now() - started };
}

/** The guarantees judged by a linearizability search with a step budget. */
const LINEARIZABLE = ["S1", "SL1"] as const;
/** The step budget of a search run again after the default one ran out (10 × 100,000). */
const RECHECK_STEPS_MAX = 1_000_000;

/** Two checks' statuses of one guarantee as one: fail, then unknown, then pass, then skipped. */
function combineStatus(a: string | undefined, b: string): string {
  for (const status of ["fail", "unknown", "pass"]) {
    if (a === status || b === status) return status;
  }
  return b;
}

/**
 * Shrinks a failing seed: drops each fault and zeroes each rate in turn, keeping every
 * change after which some violation remains, until no single change keeps it failing.
 * Returns the smallest failing report found.
 */
export function shrinkSeed(options: SeedOptions, failing: SeedReport, budget = 200): SeedReport {
  let best = failing;
  let tries = 0;
  let changed = true;
  const total = best.run.schedule.length + best.path.droppedFaults.length;
  while (changed && tries < budget) {
    changed = false;
    for (let i = 0; i < total && tries < budget; i++) {
      if (best.path.droppedFaults.includes(i)) continue;
      const path = {
        ...best.path,
        droppedFaults: [...best.path.droppedFaults, i].sort((a, b) => a - b),
      };
      tries++;
      const report = runSeed(options, path);
      if (report.violations.length > 0) {
        best = report;
        changed = true;
      }
    }
    for (const rate of RATES) {
      if (tries >= budget || best.path.zeroedRates.includes(rate) || best.run.mix[rate] === 0) {
        continue;
      }
      const path = { ...best.path, zeroedRates: [...best.path.zeroedRates, rate] };
      tries++;
      const report = runSeed(options, path);
      if (report.violations.length > 0) {
        best = report;
        changed = true;
      }
    }
  }
  return best;
}
