/**
 * Checks a recorded history file against Warp's consistency contract and prints, per
 * guarantee, pass, fail, unknown or skipped, then each violation in a sentence.
 *
 * ```sh
 * deno run --allow-read sim/check_history.ts FILE [--json] [--budget N]
 * ```
 *
 * - `--json`: print the full result (violations, results, stats) as JSON instead.
 * - `--budget N`: the step budget of each key's linearizability search (default 100000).
 *
 * Exits 1 if any guarantee is violated, 2 on bad arguments or a malformed history, 0
 * otherwise. `unknown` (a search out of budget) does not fail the run, but is printed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  checkHistory,
  type CheckHistoryResult,
  GUARANTEES,
  STEPS_MAX_DEFAULT,
  validateHistory,
} from "./checkers/mod.ts";

/** What {@linkcode main} reads and writes; replaced in tests. */
export interface CliIo {
  /** Reads a file as text. @default {Deno.readTextFile} */
  readonly readTextFile: (path: string) => Promise<string>;
  /** Prints a line of the report. @default {console.log} */
  readonly out: (line: string) => void;
  /** Prints a line about bad input. @default {console.error} */
  readonly err: (line: string) => void;
}

const USAGE = "Usage: check_history.ts FILE [--json] [--budget N]";

/**
 * Runs the command line with `args` (without the program name) and returns the exit code:
 * 0 no violation, 1 a violation, 2 bad arguments or input.
 *
 * @example Checking a history file
 * ```ts ignore
 * import { main } from "./check_history.ts";
 * Deno.exitCode = await main(["history.json", "--budget", "200000"]);
 * ```
 */
export async function main(args: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const { readTextFile = Deno.readTextFile, out = console.log, err = console.error } = io;
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: { json: { type: "boolean" }, budget: { type: "string" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0) {
    err(`Expected exactly one history file: ${parsed.positionals.join(" ") || "none"}\n${USAGE}`);
    return 2;
  }
  const budget = parsed.values.budget === undefined
    ? STEPS_MAX_DEFAULT
    : Number(parsed.values.budget);
  if (!Number.isSafeInteger(budget) || budget < 1) {
    err(`Invalid --budget, expected a positive integer: ${parsed.values.budget}`);
    return 2;
  }

  let result: CheckHistoryResult;
  try {
    const history = validateHistory(JSON.parse(await readTextFile(file)));
    result = checkHistory(history, { stepsMax: budget });
  } catch (error) {
    err(`Cannot check ${file}: ${(error as Error).message}`);
    return 2;
  }
  if (parsed.values.json) out(JSON.stringify(result, null, 2));
  else printReport(result, budget, out);
  return result.violations.length > 0 ? 1 : 0;
}

function printReport(result: CheckHistoryResult, budget: number, out: (line: string) => void) {
  const { stats } = result;
  out(`${stats.ops} ops on ${stats.keys} keys`);
  out("guarantee  result   checked  violations");
  for (const g of GUARANTEES) {
    out(
      `${g.padEnd(9)}  ${result.results[g].padEnd(7)}  ${String(stats.checked[g]).padStart(7)}  ` +
        String(stats.violations[g]).padStart(10),
    );
  }
  for (const { guarantee, key } of stats.unknownKeys) {
    out(
      `UNKNOWN ${guarantee} ${key}: the linearizability search ran out of its budget of ` +
        `${budget} steps; neither pass nor fail (raise --budget)`,
    );
  }
  if (stats.sl1SkippedKeys > 0) {
    out(`SL1 skipped ${stats.sl1SkippedKeys} strong-local keys with several writer nodes`);
  }
  for (const violation of result.violations) {
    out(
      `FAIL ${violation.guarantee} ${violation.key} (ops ${
        violation.ops.join(", ")
      }): ${violation.message}`,
    );
  }
  const total = GUARANTEES.reduce((sum, g) => sum + stats.violations[g], 0);
  if (total > result.violations.length) {
    out(`... and ${total - result.violations.length} more violations not listed`);
  }
  out(total === 0 ? "No violation" : `${total} violations`);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
