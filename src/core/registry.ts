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

/** Options of a registration. */
export interface KeyOptions {
  /** The consistency mode of the keys. */
  readonly mode: ConsistencyMode;
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
  /** Deadline of a write (set, delete) of these keys. @default {5000} */
  readonly writeTimeoutMs?: number;
  /** Deadline of a read that misses L1. @default {5000} */
  readonly readTimeoutMs?: number;
}

/** A registration with every option resolved. */
export interface KeyPolicy {
  /** The registered key or pattern. */
  readonly pattern: string;
  readonly mode: ConsistencyMode;
  readonly ttlMs: number;
  readonly maxStalenessMs: number;
  readonly leaseMs: number;
  readonly writeTimeoutMs: number;
  readonly readTimeoutMs: number;
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

/**
 * Resolves options into a policy, validating each one.
 *
 * @example
 * ```ts
 * import { resolvePolicy } from "./registry.ts";
 * const policy = resolvePolicy("user:*", { mode: "eventual-distributed", ttlMs: 30_000 });
 * console.log(policy.maxStalenessMs); // 1000
 * ```
 */
export function resolvePolicy(pattern: string, options: KeyOptions): KeyPolicy {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid options for ${describe(pattern)}: ${describe(options)}`);
  }
  if (!MODES.includes(options.mode)) {
    throw new TypeError(
      `Invalid mode for ${describe(pattern)}, expected one of ${MODES.join(", ")}: ${
        describe(options.mode)
      }`,
    );
  }
  return {
    pattern,
    mode: options.mode,
    ttlMs: checkDuration("ttlMs", options.ttlMs, 60_000),
    maxStalenessMs: checkDuration("maxStalenessMs", options.maxStalenessMs, 1000),
    leaseMs: checkDuration("leaseMs", options.leaseMs, 2000),
    writeTimeoutMs: checkDuration("writeTimeoutMs", options.writeTimeoutMs, 5000),
    readTimeoutMs: checkDuration("readTimeoutMs", options.readTimeoutMs, 5000),
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
