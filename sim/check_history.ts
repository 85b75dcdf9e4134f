/**
 * Checks a recorded history file, against Warp's consistency contract or against a
 * sequential model, and exits with a code a CI can read.
 *
 * ```sh
 * deno run --allow-read sim/check_history.ts FILE [--model NAME] [--budget N] [--json] ...
 * ```
 *
 * - `FILE`: a `warp-history/1` JSON history (`sim/history.ts`), or a Jepsen/Knossos EDN
 *   history (`.edn`, or `--format edn`).
 * - `--model register|cas-register|kv|append-kv|multi-register`: check linearizability
 *   against that model instead of Warp's contract (an EDN history is always checked
 *   against a model: by default `multi-register` if it has transactions of several
 *   micro-ops, `kv` if its values are `[key value]` tuples, else `cas-register`).
 * - `--budget N`: the most model steps the linearizability search may take on one key
 *   (default 100000); `--budget-total N`: on all keys together (default no limit).
 * - `--initial JSON`: the registers' value before any write (default null, absent).
 * - `--nil-read unknown|absent`: what an EDN `:ok` read of `nil` means (default unknown,
 *   as in Knossos).
 * - `--json`: print the full result as JSON instead of the report; `--help`: the usage.
 *
 * Exit codes: 0 every check passed; 1 a violation; 2 bad arguments or input (the message
 * names the problem and where); 3 unknown (a search ran out of budget) or nothing
 * checked.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  checkHistory,
  type CheckHistoryResult,
  checkModel,
  type CheckModelResult,
  GUARANTEES,
  importJepsenHistory,
  MODEL_NAMES,
  type ModelName,
  STEPS_MAX_DEFAULT,
  validateHistory,
} from "./checkers/mod.ts";
import type { History } from "./history.ts";

/** What {@linkcode main} reads and writes; replaced in tests. */
export interface CliIo {
  /** Reads a file as text. @default {Deno.readTextFile} */
  readonly readTextFile: (path: string) => Promise<string>;
  /** Prints a line of the report. @default {console.log} */
  readonly out: (line: string) => void;
  /** Prints a line about bad input. @default {console.error} */
  readonly err: (line: string) => void;
}

/**
 * The exit codes of {@linkcode main}.
 *
 * @example A CI step that tells "unknown" from "broken"
 * ```ts ignore
 * import { EXIT, main } from "./check_history.ts";
 * const code = await main(["history.edn"]);
 * if (code === EXIT.unknown) console.log("inconclusive: raise --budget");
 * ```
 */
export const EXIT = {
  /** Every check passed. */
  pass: 0,
  /** A violation: not linearizable, or a guarantee broken. */
  violation: 1,
  /** Bad arguments or input. */
  badInput: 2,
  /** A search ran out of budget, or nothing was checked. */
  unknown: 3,
} as const;

const USAGE = "Usage: check_history.ts FILE [--model " + MODEL_NAMES.join("|") +
  "] [--format json|edn] [--budget N] [--budget-total N] [--initial JSON] " +
  "[--nil-read unknown|absent] [--json]";

/** Keys listed one per line at most; failing and unknown ones are always listed. */
const KEYS_LISTED_MAX = 20;

interface Settings {
  readonly file: string;
  readonly model: ModelName | undefined;
  readonly edn: boolean;
  readonly stepsMax: number;
  readonly stepsTotalMax: number | undefined;
  readonly initial: unknown;
  readonly nilRead: "unknown" | "absent";
  readonly json: boolean;
}

/**
 * Runs the command line with `args` (without the program name) and returns the exit code
 * ({@linkcode EXIT}).
 *
 * @example Checking a Jepsen history in a CI step
 * ```ts ignore
 * import { main } from "./check_history.ts";
 * Deno.exitCode = await main(["history.edn", "--budget", "200000"]);
 * ```
 */
export async function main(args: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const { readTextFile = Deno.readTextFile, out = console.log, err = console.error } = io;
  if (args.includes("--help") || args.includes("-h")) {
    out(USAGE);
    out("Exit codes: 0 pass, 1 violation, 2 bad input, 3 unknown or nothing checked");
    return EXIT.pass;
  }
  let settings: Settings;
  try {
    settings = parseSettings(args);
  } catch (error) {
    err(`${(error as Error).message}\n${USAGE}`);
    return EXIT.badInput;
  }
  let text: string;
  try {
    text = await readTextFile(settings.file);
  } catch (error) {
    err(`Cannot read ${settings.file}: ${(error as Error).message}`);
    return EXIT.badInput;
  }
  try {
    const loaded = load(text, settings);
    if (loaded.model === undefined) {
      const result = checkHistory(loaded.history, budgets(settings));
      if (settings.json) out(JSON.stringify(result, null, 2));
      else printContract(result, settings, out);
      return contractExit(result);
    }
    const result = checkModel(loaded.history, loaded.model, {
      ...budgets(settings),
      initial: settings.initial,
    });
    if (settings.json) out(JSON.stringify(result, null, 2));
    else printModel(result, settings, loaded.note, out);
    return modelExit(result);
  } catch (error) {
    if (!(error instanceof TypeError || error instanceof SyntaxError)) throw error;
    err(`Cannot check ${settings.file}: ${error.message}`);
    return EXIT.badInput;
  }
}

function parseSettings(args: readonly string[]): Settings {
  const { values, positionals } = parseArgs({
    args: [...args],
    options: {
      "model": { type: "string" },
      "format": { type: "string" },
      "budget": { type: "string" },
      "budget-total": { type: "string" },
      "initial": { type: "string" },
      "nil-read": { type: "string" },
      "json": { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  const [file, ...extra] = positionals;
  if (file === undefined || extra.length > 0) {
    throw new TypeError(`Expected exactly one history file: ${positionals.join(" ") || "none"}`);
  }
  const model = values.model;
  if (model !== undefined && !(MODEL_NAMES as readonly string[]).includes(model)) {
    throw new TypeError(`Invalid --model, expected one of ${MODEL_NAMES.join(", ")}: ${model}`);
  }
  const format = values.format ?? (file.toLowerCase().endsWith(".edn") ? "edn" : "json");
  if (format !== "json" && format !== "edn") {
    throw new TypeError(`Invalid --format, expected json or edn: ${format}`);
  }
  const nilRead = values["nil-read"] ?? "unknown";
  if (nilRead !== "unknown" && nilRead !== "absent") {
    throw new TypeError(`Invalid --nil-read, expected unknown or absent: ${nilRead}`);
  }
  let initial: unknown = null;
  if (values.initial !== undefined) {
    try {
      initial = JSON.parse(values.initial);
    } catch {
      throw new TypeError(`Invalid --initial, expected a JSON value: ${values.initial}`);
    }
  }
  return {
    file,
    model: model as ModelName | undefined,
    edn: format === "edn",
    stepsMax: positive("--budget", values.budget) ?? STEPS_MAX_DEFAULT,
    stepsTotalMax: positive("--budget-total", values["budget-total"]),
    initial,
    nilRead,
    json: values.json ?? false,
  };
}

function positive(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) {
    throw new TypeError(`Invalid ${name}, expected a positive integer: ${text}`);
  }
  return n;
}

function budgets(settings: Settings) {
  return {
    stepsMax: settings.stepsMax,
    ...(settings.stepsTotalMax === undefined ? {} : { stepsTotalMax: settings.stepsTotalMax }),
  };
}

/** The history, and the model to check it against (none: Warp's contract). */
function load(
  text: string,
  settings: Settings,
): { history: History; model: ModelName | undefined; note: string } {
  if (settings.edn) {
    const imported = importJepsenHistory(text, { nilRead: settings.nilRead });
    const model = settings.model ??
      (imported.transactions ? "multi-register" : imported.keyed ? "kv" : "cas-register");
    const ignored = imported.ignored === 0
      ? ""
      : `; ${imported.ignored} ${imported.ignored === 1 ? "op" : "ops"} of non-client ` +
        "processes left out";
    const shape = imported.transactions
      ? "transactions"
      : imported.keyed
      ? "independent keys"
      : "one register";
    return { history: imported.history, model, note: ` (EDN, ${shape}${ignored})` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`Invalid JSON: ${(error as Error).message}`);
  }
  const against = settings.model === undefined ? "contract" : "model";
  return { history: validateHistory(value, { against }), model: settings.model, note: "" };
}

function modelExit(result: CheckModelResult): number {
  switch (result.status) {
    case "pass":
      return EXIT.pass;
    case "fail":
      return EXIT.violation;
    default:
      return EXIT.unknown;
  }
}

function contractExit(result: CheckHistoryResult): number {
  if (result.violations.length > 0) return EXIT.violation;
  const statuses = GUARANTEES.map((g) => result.results[g]);
  if (statuses.includes("unknown") || statuses.every((s) => s === "skipped")) return EXIT.unknown;
  return EXIT.pass;
}

function printModel(
  result: CheckModelResult,
  settings: Settings,
  note: string,
  out: (line: string) => void,
): void {
  const { stats } = result;
  out(
    `${stats.ops} ops${note} against ${result.model}: ${stats.checked} checked, ` +
      `${stats.failed} failed and dropped, ${stats.unknown} of unknown outcome; ` +
      `${result.keys.length} ${result.keys.length === 1 ? "key" : "keys"}`,
  );
  if (result.status === "empty") {
    out("NOTHING CHECKED: no op the model can check (every op failed, or no read said anything)");
    return;
  }
  out("key                   result     ops     steps");
  let listed = 0;
  for (const key of result.keys) {
    if (key.status === "pass" && ++listed > KEYS_LISTED_MAX) continue;
    out(
      `${key.key.padEnd(20)}  ${key.status.padEnd(7)}  ${String(key.ops).padStart(6)}  ` +
        String(key.steps).padStart(8),
    );
  }
  if (listed > KEYS_LISTED_MAX) out(`... and ${listed - KEYS_LISTED_MAX} more keys that passed`);
  for (const key of result.keys) {
    if (key.status === "fail") {
      out(`FAIL ${key.key} (ops ${key.involved!.join(", ")}): ${key.explanation}`);
    }
    if (key.status === "unknown") {
      out(
        `UNKNOWN ${key.key}: the search ran out of its budget (${budgetText(settings)}); ` +
          "neither pass nor fail (raise --budget or --budget-total)",
      );
    }
  }
  const skipped = result.keys.filter((k) => k.status === "skipped").length;
  const rest = skipped === 0 ? "" : `; ${skipped} ${skipped === 1 ? "key" : "keys"} not searched`;
  const failed = result.keys.find((k) => k.status === "fail");
  out(
    result.status === "pass"
      ? `Linearizable (${stats.steps} steps)`
      : failed !== undefined
      ? `Not linearizable: key ${failed.key}${rest}`
      : `Unknown: the budget ran out${rest}`,
  );
}

function budgetText(settings: Settings): string {
  const total = settings.stepsTotalMax === undefined
    ? ""
    : `, ${settings.stepsTotalMax} steps in all`;
  return `${settings.stepsMax} steps per key${total}`;
}

function printContract(
  result: CheckHistoryResult,
  settings: Settings,
  out: (line: string) => void,
): void {
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
      `UNKNOWN ${guarantee} ${key}: the linearizability search ran out of its budget ` +
        `(${budgetText(settings)}); neither pass nor fail (raise --budget or --budget-total)`,
    );
  }
  if (stats.skippedKeys.length > 0) {
    out(
      `${stats.skippedKeys.length} keys not searched for linearizability: another key had ` +
        "already failed",
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
  const checkedAny = GUARANTEES.some((g) => result.results[g] !== "skipped");
  out(total > 0 ? `${total} violations` : checkedAny ? "No violation" : "Nothing checked");
}

if (import.meta.main) Deno.exit(await main(Deno.args));
