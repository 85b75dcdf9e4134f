/**
 * Private: strict options. Every options object of the public API is checked against the
 * names it may hold, so a typo (`ttl` for `ttlMs`) or an option of another call is a
 * `TypeError` naming it — with the nearest known name — instead of being ignored.
 *
 * Each list is checked against its TypeScript interface at compile time (both ways), so an
 * option added to an interface and not here fails `deno check`, not a user.
 *
 * @module
 */

import type { KeyOptions, ReadOptions } from "./core/registry.ts";
import type { SetOptions, WarpKeyOptions, WarpOptions, WarpReadOptions } from "./warp.ts";
import { describe } from "./_describe.ts";
import type { ValidatorOptions } from "./core/_validator.ts";

/** The options of `new Warp`. */
export const WARP_OPTION_NAMES = [
  "store",
  "transport",
  "coordinator",
  "codec",
  "nodeId",
  "prefix",
  "valueBytesMax",
  "entriesMax",
  "bytesMax",
  "maxDriftPpm",
  "heartbeatIntervalMs",
  "gapTimeoutMs",
  "ioTimeoutMs",
  "waitersMax",
  "opsMax",
  "peersMax",
  "echoesMax",
  "clock",
  "leaseCheckMs",
  "leaseTimeoutMs",
  "keys",
  "sessionMs",
  "coordinatorStalenessMs",
  "logger",
  "metrics",
  "auth",
  "validator",
] as const satisfies readonly (keyof WarpOptions<unknown>)[];

/** The options of the background validator (`validator` of `new Warp`). */
export const VALIDATOR_OPTION_NAMES = [
  "mode",
  "storeReadsPerS",
  "afterInvalidationShare",
  "samplePerS",
  "checkDelayMs",
  "checksMax",
] as const satisfies readonly (keyof ValidatorOptions)[];

/** The options of a read (`get`, `read`, `getOrSet`, batches), without `loader`. */
export const READ_OPTION_NAMES = [
  "ttlMs",
  "softTimeoutMs",
  "hardTimeoutMs",
  "failSafeMaxMs",
] as const satisfies readonly (keyof ReadOptions)[];

/** The options of a registration, without `loader`. */
export const KEY_OPTION_NAMES = [
  "mode",
  "origin",
  "ttlMs",
  "maxStalenessMs",
  "leaseMs",
  "writeTimeoutMs",
  "readTimeoutMs",
  "softTimeoutMs",
  "hardTimeoutMs",
  "failSafeMaxMs",
  "failSafeThrottleMs",
  "refreshAheadRatio",
  "ttlJitterRatio",
  "sliding",
  "maxAgeMs",
  "ttlMinMs",
  "ttlMaxMs",
  "hotHitGapMs",
  "ttlStepMs",
] as const satisfies readonly (keyof KeyOptions)[];

/** The options of `set`. */
export const SET_OPTION_NAMES = ["lease"] as const satisfies readonly (keyof SetOptions)[];

// Compile-time completeness: every option of each interface is listed.
type Unlisted<I, L extends readonly string[]> = Exclude<keyof I, L[number]>;
const complete = <T extends never>(): T | undefined => undefined;
complete<Unlisted<WarpOptions<unknown>, typeof WARP_OPTION_NAMES>>();
complete<Unlisted<WarpReadOptions<unknown>, [...typeof READ_OPTION_NAMES, "loader"]>>();
complete<Unlisted<WarpKeyOptions<unknown>, [...typeof KEY_OPTION_NAMES, "loader", "merge"]>>();
complete<Unlisted<SetOptions, typeof SET_OPTION_NAMES>>();
complete<Unlisted<ValidatorOptions, typeof VALIDATOR_OPTION_NAMES>>();

/**
 * Throws a `TypeError` for the first own key of `options` not in `known`, naming it, the
 * call (`what`), the nearest known name when one is close, and the known names.
 *
 * @example
 * ```ts
 * import { checkKnownOptions } from "./_options.ts";
 * try {
 *   checkKnownOptions({ mode: "strong-local", ttl: 5000 }, ["mode", "ttlMs"], 'register("d:*")');
 * } catch (error) {
 *   console.log((error as Error).message);
 *   // Unknown option ttl of register("d:*"), did you mean ttlMs? (known options: mode, ttlMs)
 * }
 * ```
 */
export function checkKnownOptions(
  options: object,
  known: readonly string[],
  what: string,
): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const near = nearest(name, known);
    throw new TypeError(
      `Unknown option ${describeName(name)} of ${what}${
        near === undefined ? "" : `, did you mean ${near}?`
      } (known options: ${known.join(", ")})`,
    );
  }
}

/** A name as it reads in a message: as is when it is a plain identifier, else quoted. */
function describeName(name: string): string {
  return /^[A-Za-z_$][\w$]{0,63}$/.test(name) ? name : describe(name);
}

/**
 * The known name closest to `name`: one that starts with it or it with one (`ttl`, `ttlMs`),
 * or within an edit distance of 2 of it or of it without its `Ms` (case ignored);
 * `undefined` when none is that close.
 */
function nearest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  if (lower.length > 64) return undefined;
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const c = candidate.toLowerCase();
    const bare = c.endsWith("ms") ? c.slice(0, -2) : c; // the unit forgotten or misspelt
    const distance = c.startsWith(lower) || lower.startsWith(c)
      ? 1
      : Math.min(editDistance(lower, c), editDistance(lower, bare));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
