/**
 * How long an entry lives, beyond its mode's rules: TTL jitter, refresh-ahead, the sliding
 * TTL with its hard maximum age, and the access-frequency TTL (go-warp's rule). The
 * kernel asks {@linkcode entryLifetime} at every install; `NodeCore.hit` calls
 * {@linkcode tuneHit} only for entries whose `checkAtMs` has passed.
 *
 * Every rule here moves an entry's TTL only: the staleness bound, the cache lease and the
 * session, which make the consistency guarantees, are caps no rule lifts (`capUntilMs`).
 * So a sliding TTL cannot make a missed invalidation permanent (go-warp's sliding TTL
 * does): the bound still ends the entry, and `maxAgeMs` ends it on a node whose bound is
 * its TTL (strong-local, or a session's proof).
 *
 * Design: features that are off cost nothing on the hot path (lru-cache installs no-op
 * methods for the same reason). An entry without them carries no tuning, and its
 * `checkAtMs` is its `boundUntilMs`: `hit` makes the one comparison it made before these
 * features existed. An entry with refresh-ahead leaves the fast path once, at its refresh
 * point; a sliding or access-frequency entry leaves it at every hit (`checkAtMs` is
 * `-Infinity`), since every hit moves its TTL.
 *
 * Rejected: a refresh timer per entry — it would refresh cold keys too, so nothing would
 * ever expire; and counting hits on every entry — a write on every hit of every key to
 * serve an option few keys use.
 *
 * @module
 */

import type { Entry, EntryTuning } from "./l1.ts";
import type { KeyPolicy } from "./registry.ts";

/** Refresh-ahead points are lowered by up to this fraction of themselves, per entry. */
const REFRESH_JITTER = 0.1;

/** An entry's TTL and tuning, as {@linkcode entryLifetime} computes them. */
export interface Lifetime {
  readonly freshUntilMs: number;
  readonly tuning: EntryTuning | undefined;
}

/**
 * The lifetime of an entry of `policy` read at `askMs` with TTL `ttlMs`, under the cap
 * `capUntilMs` (its mode's bound, or `Infinity`); `random` draws the jitter.
 *
 * @example
 * ```ts
 * import { entryLifetime } from "./_tuning.ts";
 * import { resolvePolicy } from "./registry.ts";
 * const policy = resolvePolicy("p", { mode: "strong-local", refreshAheadRatio: 0.5 });
 * const life = entryLifetime(policy, 0, 1000, Infinity, () => 0);
 * console.log(life.freshUntilMs, life.tuning?.refreshAtMs); // 1000 500
 * ```
 */
export function entryLifetime(
  policy: KeyPolicy,
  askMs: number,
  ttlMs: number,
  capUntilMs: number,
  random: () => number,
): Lifetime {
  let ttl = ttlMs;
  if (policy.ttlJitterRatio > 0) ttl *= 1 - policy.ttlJitterRatio * random();
  const access = policy.accessTtl;
  if (access !== undefined) ttl = Math.min(access.maxMs, Math.max(access.minMs, ttl));
  const freshUntilMs = Math.min(askMs + ttl, capUntilMs);
  if (!policy.tuned) return { freshUntilMs, tuning: undefined };
  const refreshAtMs = policy.refreshAheadRatio > 0
    ? askMs + (freshUntilMs - askMs) * policy.refreshAheadRatio * (1 - REFRESH_JITTER * random())
    : Infinity;
  const everyHit = policy.slidingMaxAgeMs !== undefined || access !== undefined;
  return {
    freshUntilMs,
    tuning: {
      askMs,
      ttlMs: ttl,
      capUntilMs,
      lastHitMs: askMs,
      refreshAtMs,
      checkAtMs: everyHit ? -Infinity : refreshAtMs,
    },
  };
}

/**
 * A hit on `entry` at `nowMs`, past its `checkAtMs`: moves its TTL (access frequency,
 * sliding) and says whether a background refresh is due (at most once per entry).
 *
 * @example
 * ```ts
 * import { entryLifetime, tuneHit } from "./_tuning.ts";
 * import { L1Cache } from "./l1.ts";
 * import { resolvePolicy } from "./registry.ts";
 * const policy = resolvePolicy("p", {
 *   mode: "strong-local",
 *   ttlMs: 1000,
 *   sliding: true,
 *   maxAgeMs: 3000,
 * });
 * const life = entryLifetime(policy, 0, 1000, Infinity, () => 0);
 * const l1 = new L1Cache({ entriesMax: 1, bytesMax: 1000 });
 * const data = { value: 1, found: true, version: 1, sizeBytes: 1 };
 * const entry = l1.install("p", data, life.freshUntilMs, policy, Infinity, life.tuning)!;
 * tuneHit(entry, 900);
 * console.log(entry.freshUntilMs); // 1900
 * ```
 */
export function tuneHit(entry: Entry, nowMs: number): boolean {
  const tuning = entry.tuning;
  if (tuning === undefined) return false;
  const policy = entry.policy;
  const access = policy.accessTtl;
  if (access !== undefined) {
    const hot = nowMs - tuning.lastHitMs <= access.hotHitGapMs;
    const moved = tuning.ttlMs + (hot ? access.stepMs : -access.stepMs);
    tuning.ttlMs = Math.min(access.maxMs, Math.max(access.minMs, moved));
    entry.freshUntilMs = Math.min(tuning.askMs + tuning.ttlMs, tuning.capUntilMs);
  }
  if (policy.slidingMaxAgeMs !== undefined) {
    entry.freshUntilMs = Math.min(
      nowMs + tuning.ttlMs,
      tuning.askMs + policy.slidingMaxAgeMs,
      tuning.capUntilMs,
    );
  }
  tuning.lastHitMs = nowMs;
  if (nowMs < tuning.refreshAtMs) return false;
  tuning.refreshAtMs = Infinity; // one refresh per entry: the refreshed entry brings its own
  if (tuning.checkAtMs !== -Infinity) {
    tuning.checkAtMs = Infinity;
    entry.checkAtMs = entry.boundUntilMs;
  }
  return true;
}
