/**
 * Key registration: which consistency mode, TTL and options apply to a key.
 *
 * Keys are registered exactly (`config:site`) or by a glob pattern where `*` matches any
 * run of characters, including none (`session:*`, `tenant:*:user:*`). For a key, an exact
 * registration wins; otherwise the **most specific** matching pattern wins: the one with
 * the most literal (non-`*`) characters, then the fewest `*`, then the one registered
 * first. A key that matches nothing is an error naming the key.
 *
 * Matching takes time linear in the key in practice and O(key × pattern) at worst, with
 * no backtracking: see {@linkcode globMatch}.
 *
 * @module
 */

import { keyProblem } from "./messages.ts";
import { WarpError } from "./errors.ts";
import { describe } from "./_describe.ts";

/**
 * How a key is kept consistent across nodes.
 * - `strong-local`: this node only; no messages. Linearizable for a single writer node.
 * - `eventual-distributed`: writes are local, invalidations spread; staleness is bounded
 *   by `maxStalenessMs`.
 * - `strong-distributed`: a write completes only when no node can serve the old value.
 */
export type ConsistencyMode = "strong-local" | "eventual-distributed" | "strong-distributed";

const MODES: readonly ConsistencyMode[] = [
  "strong-local",
  "eventual-distributed",
  "strong-distributed",
];

/**
 * Where a key's values come from.
 * - `store`: Warp's store; the application writes with `set` and `delete`.
 * - `loader`: the application's loader over its own source (a database table, a service);
 *   values are cached in L1 only, never written to Warp's store, and loaded again at
 *   their TTL. The application writes its source itself, then calls `invalidate(key)`.
 */
export type ValueOrigin = "store" | "loader";

const ORIGINS: readonly ValueOrigin[] = ["store", "loader"];

/**
 * The knobs of one read that misses L1, set per registration and overridable per call
 * (`NodeCore.get` options, `Warp.read` and `getOrSet` options).
 */
export interface ReadSettings {
  /** How long the entry this read installs may be served (a loader may set its own). */
  readonly ttlMs: number;
  /**
   * A reader still waiting this long is answered with the fail-safe value, flagged stale,
   * if there is one (needs `failSafeMaxMs`); the store read or load goes on and installs.
   * `Infinity`: off.
   */
  readonly softTimeoutMs: number;
  /**
   * A load (a loader call) still running this long is aborted, the key is free for the
   * next reader at once, and its readers are answered by fail-safe or rejected with
   * `TIMEOUT`.
   */
  readonly hardTimeoutMs: number;
  /**
   * Fail-safe (stale-if-error): when the store or the loader fails or times out, answer
   * with the newest value this node holds, flagged stale, if its freshness ended at most
   * this long ago and nothing removed it. 0: off.
   */
  readonly failSafeMaxMs: number;
}

/** Per-call overrides of a registration's {@linkcode ReadSettings}; each optional. */
export type ReadOptions = Partial<ReadSettings>;

/** Options of a registration. */
export interface KeyOptions {
  /** The consistency mode of the keys. */
  readonly mode: ConsistencyMode;
  /**
   * Where the values come from: Warp's store, or the application's loader (loader-backed
   * keys: L1 only, consistency from `invalidate`). @default {"store"}
   */
  readonly origin?: ValueOrigin;
  /** How long an entry may be served after it was read from the store. @default {60000} */
  readonly ttlMs?: number;
  /**
   * eventual-distributed only: the most a read may lag behind a completed write.
   * An entry is never served longer than this after the store read that produced it.
   * @default {1000}
   */
  readonly maxStalenessMs?: number;
  /**
   * strong-distributed only: the cache lease, how long a node may serve an entry without
   * asking the coordinator again; a writer that cannot reach a holder waits this long.
   * @default {2000}
   */
  readonly leaseMs?: number;
  /** Deadline of a write (set, delete, or a strong `invalidate`) of these keys. @default {5000} */
  readonly writeTimeoutMs?: number;
  /** Deadline of a read that misses L1. @default {5000} */
  readonly readTimeoutMs?: number;
  /** See {@linkcode ReadSettings.softTimeoutMs}. @default {Infinity} off */
  readonly softTimeoutMs?: number;
  /** See {@linkcode ReadSettings.hardTimeoutMs}. @default {readTimeoutMs} */
  readonly hardTimeoutMs?: number;
  /**
   * See {@linkcode ReadSettings.failSafeMaxMs}. Off by default in every mode: a stale
   * answer on a strong-distributed key needs this registration or its caller to ask.
   * @default {0}
   */
  readonly failSafeMaxMs?: number;
  /**
   * After a failure that fail-safe answered, reads of the key answer the stale value
   * without calling the store or the loader again for this long. @default {1000}
   */
  readonly failSafeThrottleMs?: number;
  /**
   * Refresh-ahead: a hit past this fraction of an entry's lifetime (lowered by a random
   * tenth of it, drawn per entry) starts one background refresh of the key, which
   * installs under the rules of any read. Between 0 and 1, exclusive.
   * @default {undefined} off
   */
  readonly refreshAheadRatio?: number;
  /**
   * TTL jitter: each entry's TTL is shortened by a random fraction of up to this, so that
   * keys loaded together do not expire together. From 0 (included) to 1. @default {0}
   */
  readonly ttlJitterRatio?: number;
  /**
   * Sliding TTL: every hit extends the entry to `ttlMs` after the hit, never past
   * `maxAgeMs` after the read that produced it (a missed invalidation must not live
   * forever). Needs `maxAgeMs`. @default {false}
   */
  readonly sliding?: boolean;
  /** The hard maximum age of a sliding entry, at least `ttlMs`. @default {undefined} */
  readonly maxAgeMs?: number;
  /**
   * Access-frequency TTL (go-warp's rule), with `ttlMaxMs`: an entry hit again within
   * `hotHitGapMs` of its previous hit gets `ttlStepMs` more TTL, up to `ttlMaxMs`; one hit
   * after a longer gap gets `ttlStepMs` less, down to `ttlMinMs`. It starts at `ttlMs`
   * (clamped). @default {undefined} off
   */
  readonly ttlMinMs?: number;
  /** The longest access-frequency TTL; see `ttlMinMs`. @default {undefined} off */
  readonly ttlMaxMs?: number;
  /** A hit this soon after the previous one counts as hot (`ttlMinMs`). @default {1000} */
  readonly hotHitGapMs?: number;
  /** How much one hit moves the TTL (`ttlMinMs`). @default {(ttlMaxMs - ttlMinMs) / 10} */
  readonly ttlStepMs?: number;
}

/** The access-frequency TTL rule of a registration, resolved. */
export interface AccessTtl {
  /** The shortest TTL, ms (`ttlMinMs`). */
  readonly minMs: number;
  /** The longest TTL, ms (`ttlMaxMs`). */
  readonly maxMs: number;
  /** A hit this soon after the previous one counts as hot, ms (`hotHitGapMs`). */
  readonly hotHitGapMs: number;
  /** How much one hit moves the TTL, ms (`ttlStepMs`). */
  readonly stepMs: number;
}

/** A registration with every option resolved. */
export interface KeyPolicy extends ReadSettings {
  /** The registered key or pattern. */
  readonly pattern: string;
  /** The consistency mode. */
  readonly mode: ConsistencyMode;
  /** Where values come from: the store (`store`) or the application's loader (`loader`). */
  readonly origin: ValueOrigin;
  /** eventual-distributed: the most a read may lag a completed write, ms. */
  readonly maxStalenessMs: number;
  /** strong-distributed: how long a holder may serve without renewing, ms. */
  readonly leaseMs: number;
  /** How long a write may take before it fails with `TIMEOUT`, ms. */
  readonly writeTimeoutMs: number;
  /** How long a read may take before it fails with `TIMEOUT`, ms. */
  readonly readTimeoutMs: number;
  /** Fail-safe: how long a value served after a failure is served before the next retry, ms. */
  readonly failSafeThrottleMs: number;
  /** The refresh-ahead fraction, or 0: off. */
  readonly refreshAheadRatio: number;
  /** The fraction by which a TTL is randomly shortened, so entries filled together do not expire together. */
  readonly ttlJitterRatio: number;
  /** The hard maximum age of a sliding entry, or `undefined`: not sliding. */
  readonly slidingMaxAgeMs: number | undefined;
  /** The access-frequency TTL rule, or `undefined`: off. */
  readonly accessTtl: AccessTtl | undefined;
  /** Whether an entry needs per-entry tuning (refresh-ahead, sliding, access TTL). */
  readonly tuned: boolean;
}

interface PatternRule {
  readonly policy: KeyPolicy;
  /** The pattern split at its `*`s: literal runs, the first and last possibly empty. */
  readonly parts: readonly string[];
  readonly literalChars: number;
  readonly wildcards: number;
  readonly order: number;
}

const DURATION_MAX_MS = 365 * 24 * 3600 * 1000;

function checkDuration(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`Invalid ${name}, expected a number of milliseconds: ${describe(value)}`);
  }
  if (value <= 0 || value > DURATION_MAX_MS) {
    throw new RangeError(`${name} must be in (0, ${DURATION_MAX_MS}]: ${value}`);
  }
  return value;
}

/** A duration that may be `Infinity` (off). */
function checkTimeout(name: string, value: unknown, fallback: number): number {
  return value === Infinity ? Infinity : checkDuration(name, value, fallback);
}

/** A duration of at least 0 (0: off). */
function checkOffDuration(name: string, value: unknown, fallback: number): number {
  return value === 0 ? 0 : checkDuration(name, value, fallback);
}

function checkRatio(name: string, value: unknown, fallback: number, zeroAllowed: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value)) {
    throw new TypeError(`Invalid ${name}, expected a number: ${describe(value)}`);
  }
  if (value < 0 || value >= 1 || (value === 0 && !zeroAllowed)) {
    throw new RangeError(`${name} must be in ${zeroAllowed ? "[0" : "(0"}, 1): ${value}`);
  }
  return value;
}

function checkChoice<V extends string>(
  name: string,
  pattern: string,
  value: unknown,
  choices: readonly V[],
): V {
  if (!choices.includes(value as V)) {
    throw new TypeError(
      `Invalid ${name} for ${describe(pattern)}, expected one of ${choices.join(", ")}: ${
        describe(value)
      }`,
    );
  }
  return value as V;
}

/**
 * Resolves options into a policy, validating each one.
 *
 * @example
 * ```ts
 * import { resolvePolicy } from "./registry.ts";
 * const policy = resolvePolicy("user:*", { mode: "eventual-distributed", ttlMs: 30_000 });
 * console.log(policy.maxStalenessMs, policy.origin); // 1000 "store"
 * ```
 */
export function resolvePolicy(pattern: string, options: KeyOptions): KeyPolicy {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options for ${describe(pattern)}: ${describe(options)}`);
  }
  const mode = checkChoice("mode", pattern, options.mode, MODES);
  const origin = checkChoice("origin", pattern, options.origin ?? "store", ORIGINS);
  const ttlMs = checkDuration("ttlMs", options.ttlMs, 60_000);
  const readTimeoutMs = checkDuration("readTimeoutMs", options.readTimeoutMs, 5000);
  const refreshAheadRatio = checkRatio("refreshAheadRatio", options.refreshAheadRatio, 0, false);
  const slidingMaxAgeMs = resolveSliding(options, ttlMs);
  const accessTtl = resolveAccessTtl(options);
  return {
    pattern,
    mode,
    origin,
    ttlMs,
    maxStalenessMs: checkDuration("maxStalenessMs", options.maxStalenessMs, 1000),
    leaseMs: checkDuration("leaseMs", options.leaseMs, 2000),
    writeTimeoutMs: checkDuration("writeTimeoutMs", options.writeTimeoutMs, 5000),
    readTimeoutMs,
    softTimeoutMs: checkTimeout("softTimeoutMs", options.softTimeoutMs, Infinity),
    hardTimeoutMs: checkDuration("hardTimeoutMs", options.hardTimeoutMs, readTimeoutMs),
    failSafeMaxMs: checkOffDuration("failSafeMaxMs", options.failSafeMaxMs, 0),
    failSafeThrottleMs: checkDuration("failSafeThrottleMs", options.failSafeThrottleMs, 1000),
    refreshAheadRatio,
    ttlJitterRatio: checkRatio("ttlJitterRatio", options.ttlJitterRatio, 0, true),
    slidingMaxAgeMs,
    accessTtl,
    tuned: refreshAheadRatio > 0 || slidingMaxAgeMs !== undefined || accessTtl !== undefined,
  };
}

function resolveSliding(options: KeyOptions, ttlMs: number): number | undefined {
  if (options.sliding !== undefined && typeof options.sliding !== "boolean") {
    throw new TypeError(`Invalid sliding, expected a boolean: ${describe(options.sliding)}`);
  }
  const maxAgeMs = checkDuration("maxAgeMs", options.maxAgeMs, Infinity);
  if (options.sliding !== true) return undefined;
  if (maxAgeMs === Infinity) {
    throw new TypeError("A sliding TTL needs maxAgeMs, its hard maximum age: undefined");
  }
  if (maxAgeMs < ttlMs) {
    throw new RangeError(`maxAgeMs must be at least ttlMs (${ttlMs}): ${maxAgeMs}`);
  }
  return maxAgeMs;
}

function resolveAccessTtl(options: KeyOptions): AccessTtl | undefined {
  const minMs = checkDuration("ttlMinMs", options.ttlMinMs, NaN);
  const maxMs = checkDuration("ttlMaxMs", options.ttlMaxMs, NaN);
  if (Number.isNaN(minMs) !== Number.isNaN(maxMs)) {
    throw new TypeError(
      `The access-frequency TTL needs both ttlMinMs and ttlMaxMs: ${describe(options.ttlMinMs)}, ${
        describe(options.ttlMaxMs)
      }`,
    );
  }
  if (Number.isNaN(minMs)) return undefined;
  if (maxMs < minMs) {
    throw new RangeError(`ttlMaxMs must be at least ttlMinMs (${minMs}): ${maxMs}`);
  }
  return {
    minMs,
    maxMs,
    hotHitGapMs: checkDuration("hotHitGapMs", options.hotHitGapMs, 1000),
    stepMs: checkDuration("ttlStepMs", options.ttlStepMs, Math.max(1, (maxMs - minMs) / 10)),
  };
}

/**
 * The settings of one read: the registration's, with the caller's overrides validated
 * (`TypeError`/`RangeError` naming the value). Without overrides, the policy itself.
 *
 * @example
 * ```ts
 * import { readSettings, resolvePolicy } from "./registry.ts";
 * const policy = resolvePolicy("p:*", { mode: "strong-local", failSafeMaxMs: 60_000 });
 * console.log(readSettings(policy, { failSafeMaxMs: 0 }).failSafeMaxMs); // 0
 * console.log(readSettings(policy, undefined) === policy); // true
 * ```
 */
export function readSettings(policy: KeyPolicy, options: ReadOptions | undefined): ReadSettings {
  if (options === undefined) return policy;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid read options: ${describe(options)}`);
  }
  return {
    ttlMs: checkDuration("ttlMs", options.ttlMs, policy.ttlMs),
    softTimeoutMs: checkTimeout("softTimeoutMs", options.softTimeoutMs, policy.softTimeoutMs),
    hardTimeoutMs: checkDuration("hardTimeoutMs", options.hardTimeoutMs, policy.hardTimeoutMs),
    failSafeMaxMs: checkOffDuration("failSafeMaxMs", options.failSafeMaxMs, policy.failSafeMaxMs),
  };
}

/**
 * Whether `key` matches a glob pattern given as `parts`, the pattern split at its `*`s
 * (`"a*b*c"` is `["a", "b", "c"]`), where `*` matches any run of characters, none
 * included. No backtracking: the first part must start the key and the last must end it;
 * each part in between is taken at its leftmost occurrence after the previous one. That
 * greedy choice is safe because an earlier occurrence leaves at least as much key for the
 * parts after it, so if any placement matches, the leftmost does.
 *
 * Cost: every `indexOf` starts where the previous part ended, so the scans cover the key
 * once: linear in practice, O(key × longest part) at worst. A pattern compiled to a
 * regular expression (`[\s\S]*` per `*`) is the alternative rejected here: its
 * backtracking is exponential in the number of `*`s on keys that almost match (see
 * `bench/pattern_bench.ts`), and keys come from callers.
 *
 * @example
 * ```ts
 * import { globMatch } from "./registry.ts";
 * console.log(globMatch("tenant:*:user:*".split("*"), "tenant:7:user:42")); // true
 * console.log(globMatch("a*b".split("*"), "ab"), globMatch("a*b".split("*"), "ba")); // true false
 * ```
 */
export function globMatch(parts: readonly string[], key: string): boolean {
  const last = parts.length - 1;
  const first = parts[0]!;
  if (last === 0) return key === first;
  const end = parts[last]!;
  if (key.length < first.length + end.length) return false;
  if (!key.startsWith(first) || !key.endsWith(end)) return false;
  let at = first.length;
  const stop = key.length - end.length; // middle parts must fit before the last one
  for (let i = 1; i < last; i++) {
    const part = parts[i]!;
    if (part.length === 0) continue;
    const found = key.indexOf(part, at);
    if (found === -1 || found + part.length > stop) return false;
    at = found + part.length;
  }
  return true;
}

/**
 * The registered keys and patterns of a node.
 *
 * @example
 * ```ts
 * import { Registry } from "./registry.ts";
 * const registry = new Registry();
 * registry.register("session:*", { mode: "eventual-distributed" });
 * registry.register("session:admin:*", { mode: "strong-distributed" });
 * console.log(registry.resolve("session:admin:7").mode); // "strong-distributed"
 * console.log(registry.resolve("session:42").mode); // "eventual-distributed"
 * ```
 */
export class Registry {
  readonly #exact = new Map<string, KeyPolicy>();
  readonly #patterns: PatternRule[] = [];
  /** Most registrations accepted. */
  static readonly REGISTRATIONS_MAX = 10_000;

  /** Registers an exact key or a glob pattern. Throws if it is already registered. */
  register(pattern: string, options: KeyOptions): KeyPolicy {
    const problem = keyProblem(pattern);
    if (problem !== undefined) {
      throw new TypeError(`Invalid key or pattern, ${problem}: ${describe(pattern)}`);
    }
    if (this.#exact.size + this.#patterns.length >= Registry.REGISTRATIONS_MAX) {
      throw new RangeError(`Too many registrations, at most ${Registry.REGISTRATIONS_MAX}`);
    }
    if (this.#exact.has(pattern) || this.#patterns.some((r) => r.policy.pattern === pattern)) {
      throw new TypeError(`Key or pattern already registered: ${describe(pattern)}`);
    }
    const policy = resolvePolicy(pattern, options);
    if (!pattern.includes("*")) {
      this.#exact.set(pattern, policy);
      return policy;
    }
    const parts = pattern.split("*");
    this.#patterns.push({
      policy,
      parts,
      literalChars: pattern.length - (parts.length - 1),
      wildcards: parts.length - 1,
      order: this.#exact.size + this.#patterns.length,
    });
    this.#patterns.sort((a, b) =>
      b.literalChars - a.literalChars || a.wildcards - b.wildcards || a.order - b.order
    );
    return policy;
  }

  /** The policy of `key`, or `undefined` when nothing matches. */
  find(key: string): KeyPolicy | undefined {
    const exact = this.#exact.get(key);
    if (exact !== undefined) return exact;
    for (const rule of this.#patterns) {
      if (globMatch(rule.parts, key)) return rule.policy;
    }
    return undefined;
  }

  /** The policy of `key`; throws a `WarpError` `UNREGISTERED_KEY` when nothing matches. */
  resolve(key: string): KeyPolicy {
    const policy = this.find(key);
    if (policy === undefined) {
      throw new WarpError(
        "UNREGISTERED_KEY",
        `Key matches no registered key or pattern: ${describe(key)}`,
      );
    }
    return policy;
  }
}
