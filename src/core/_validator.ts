/**
 * The background validator of one node (V1): it compares L1 entries with the store **by
 * version** and counts the differences that outlast their key's bound, Polaris-style
 * (Meta, "Cache made consistent", 2022): a sample of the keys this node has just applied
 * an invalidation of is checked a short delay later (`afterInvalidationShare`,
 * `checkDelayMs`), plus a low-rate random sample of L1 (`samplePerS`); every store read
 * it makes goes through one token bucket (`storeReadsPerS`). It never scans L1 and never
 * touches the read path: `NodeCore.hit` does not know it exists.
 *
 * A check snapshots the version of the entry L1 would serve (`servable`: the hit rule,
 * not mere presence), reads the store, and classifies on the answer:
 * - equal versions (or both absent): consistent;
 * - the entry newer than the store: a bug, reported loudly. The snapshot is taken before
 *   the read is sent, the store is the only source of versions and they only grow, so an
 *   L1 version above a store answer read after it has no innocent explanation;
 * - the entry older than the store (or holding a value the store deleted): a difference,
 *   not yet an inconsistency — an invalidation may be on its way. It is checked again
 *   `bound × (1 + drift) + margin` after the store's answer arrived, on this node's clock:
 *   at least `bound` of true time after the store held the newer version. If L1 would then
 *   still serve a version older than that answer, the difference is counted as a real
 *   **inconsistency** (or **deleted in store**). Follow-ups at 1 s, 10 s and 60 s after the
 *   first answer give the share of checked keys consistent within each; they read L1 only
 *   (the store's version can only have grown).
 *
 * The bound is the key's mode's: eventual, `maxStalenessMs` (E3); strong-local, its TTL
 * (other nodes' writes never reach it); strong-distributed, `leaseMs` (a writer revokes
 * every holder or waits its cache lease out before it writes the store, so any difference
 * that outlives a lease is beyond what the protocol allows).
 *
 * Modes: `count` keeps the figures; `alert` also records a `validator` event for each
 * inconsistency, deletion and newer-than-store; `heal` also repairs an inconsistency with
 * a **versioned fill** (`Fills.heal`): a refresh that may return nothing older than the
 * version the store answered, under every rule of a fill, so an invalidation racing it
 * wins and nothing older replaces anything newer. The stale entry is not evicted at the
 * count: it is replaced (or dropped) when the heal's store answer arrives.
 *
 * Rejected: a periodic full scan of L1 (go-warp's validator) — its store load grows with
 * L1 and arrives in bursts, and Polaris shows that checking right after invalidations
 * finds the races that matter; comparing value digests without versions (go-warp) — it
 * cannot tell an old value from a newer one, so its auto-heal may write the old one over
 * the new.
 *
 * @module
 */

import { assert } from "./errors.ts";
import type { StoreReadResult } from "./effects.ts";
import type { Entry } from "./l1.ts";
import type { KeyPolicy } from "./registry.ts";
import { MARGIN_MS } from "./_kernel.ts";
import type { NodeKernel } from "./_kernel.ts";
import type { ValidatorEvent } from "./events.ts";
import { nodeSeed, Xorshift32 } from "./_random.ts";

/** What the validator does with what it finds. */
export type ValidatorMode = "off" | "count" | "alert" | "heal";

/** The validator's settings (`NodeConfig.validator`, `WarpOptions.validator`). */
export interface ValidatorOptions {
  /**
   * `off`: no validator; `count`: figures only (`validatorReport`); `alert`: figures and a
   * `validator` event per difference that outlasted its bound and per newer-than-store;
   * `heal`: as `alert`, and each inconsistency is repaired by a versioned fill.
   * @default {"off"}
   */
  readonly mode?: ValidatorMode;
  /**
   * The most store reads per second the validator makes on this node (a token bucket
   * holding one second's worth). A check that finds no token is skipped and counted.
   * @default {5}
   */
  readonly storeReadsPerS?: number;
  /** The share of invalidations from peers after which the key is checked, 0 to 1. @default {0.1} */
  readonly afterInvalidationShare?: number;
  /** Random L1 entries checked per second (0: none). @default {1} */
  readonly samplePerS?: number;
  /** How long after an invalidation its key is checked, ms. @default {1000} */
  readonly checkDelayMs?: number;
  /** Most checks scheduled or followed at once on this node. @default {1000} */
  readonly checksMax?: number;
}

/** What one check concluded. */
export type ValidatorVerdict =
  /** L1 and the store hold the same version (or both nothing). */
  | "consistent"
  /** L1 is older than the store, within the key's bound so far (an invalidation may be on its way). */
  | "older"
  /** L1 still served a version older than the store's a bound after the store held it. */
  | "inconsistent"
  /** L1 still served a value the store deleted a bound after the deletion was seen. */
  | "deleted-in-store"
  /** L1 held a version the store had not reached: a bug. */
  | "newer-than-store";

/** The validator's figures on one node ({@linkcode NodeCore.validatorReport}). */
export interface ValidatorReport {
  /** The mode it runs in. */
  readonly mode: ValidatorMode;
  /** Checks that got an answer from the store. */
  readonly checked: number;
  /** Of those, the ones that found L1 and the store equal. */
  readonly consistent: number;
  /** Of those, the ones that found L1 older than the store (or the value deleted), then followed. */
  readonly olderWithinBound: number;
  /** Differences that outlasted their key's bound with the store holding a value. */
  readonly inconsistent: number;
  /** Differences that outlasted their key's bound with the store holding no value. */
  readonly deletedInStore: number;
  /** Checks that found L1 newer than the store (a bug). */
  readonly newerThanStore: number;
  /** Versioned fills started to repair an inconsistency (`heal`). */
  readonly healed: number;
  /** Checks skipped because the store-read budget was spent, or too many were in flight. */
  readonly skippedByRateLimit: number;
  /** Checks that found nothing L1 would serve (no store read made). */
  readonly notCached: number;
  /** Store reads that failed (no verdict). */
  readonly storeErrors: number;
  /** Store reads the validator made (checks and heals). */
  readonly storeReads: number;
  /**
   * Differences still followed (found, not yet gone, the 60 s mark not reached): not yet
   * counted in `consistentWithin`, which they may still join.
   */
  readonly following: number;
  /**
   * Of the checked keys, how many L1 served consistently (or no longer served) within
   * 1 s, 10 s and 60 s of the check's store answer (follow-ups at those marks).
   */
  readonly consistentWithin: {
    readonly "1s": number;
    readonly "10s": number;
    readonly "60s": number;
  };
}

/** The defaults of {@linkcode ValidatorOptions}. */
export const VALIDATOR_DEFAULTS = {
  mode: "off",
  storeReadsPerS: 5,
  afterInvalidationShare: 0.1,
  samplePerS: 1,
  checkDelayMs: 1000,
  checksMax: 1000,
} as const satisfies Required<ValidatorOptions>;

const OPTION_NAMES: ReadonlySet<string> = new Set(Object.keys(VALIDATOR_DEFAULTS));
const MODES: ReadonlySet<string> = new Set(["off", "count", "alert", "heal"]);
/** Entries a sample walks past at most: bounded work, biased to recently used entries. */
const SAMPLE_WALK_MAX = 64;
/** The follow-up marks after a difference is found, ms after the store's answer. */
const MARKS_MS = [1000, 10_000, 60_000] as const;

/**
 * The validator's settings with their defaults, or a TypeError/RangeError naming the bad
 * one (an unknown name included).
 *
 * @example
 * ```ts
 * import { validatorSettings } from "./_validator.ts";
 * console.log(validatorSettings({ mode: "count" }).storeReadsPerS); // 5
 * ```
 */
export function validatorSettings(
  options: ValidatorOptions | undefined,
): Required<ValidatorOptions> {
  if (options === undefined) return VALIDATOR_DEFAULTS;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid validator options, expected an object: ${String(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw new TypeError(`Unknown validator option: ${name}`);
  }
  const mode = options.mode ?? VALIDATOR_DEFAULTS.mode;
  if (!MODES.has(mode)) {
    throw new TypeError(
      `Invalid validator mode, expected off, count, alert or heal: ${String(mode)}`,
    );
  }
  const number = (name: keyof ValidatorOptions, min: number, max: number): number => {
    const value = options[name] ?? VALIDATOR_DEFAULTS[name];
    if (typeof value !== "number" || !(value >= min && value <= max)) {
      throw new RangeError(
        `Invalid validator ${name}, expected ${min} to ${max}: ${String(value)}`,
      );
    }
    return value;
  };
  const checksMax = number("checksMax", 1, 1_000_000);
  if (!Number.isInteger(checksMax)) {
    throw new RangeError(`Invalid validator checksMax, expected an integer: ${checksMax}`);
  }
  return {
    mode,
    storeReadsPerS: number("storeReadsPerS", 0.001, 1_000_000),
    afterInvalidationShare: number("afterInvalidationShare", 0, 1),
    samplePerS: number("samplePerS", 0, 1000),
    checkDelayMs: number("checkDelayMs", 0, 3_600_000),
    checksMax,
  };
}

/** What the validator needs of the node: the hit rule, policies, and the versioned fill. */
export interface ValidatorParts {
  /** The entry L1 would serve for `key` now (`NodeCore.servable`), or `undefined`. */
  servable(key: string): Entry | undefined;
  /** The policy of `key`, or `undefined` if unregistered. */
  policyOf(key: string): KeyPolicy | undefined;
  /**
   * Starts a fill of `key` that returns nothing older than `minVersion` (or raises the
   * floor of the one in flight); returns whether it started a store read.
   */
  heal(key: string, policy: KeyPolicy, minVersion: number): boolean;
}

/** A difference being followed: what L1 held and what the store answered. */
interface Difference {
  readonly cachedVersion: number;
  readonly storeVersion: number;
  readonly storeFound: boolean;
  /** Local time the store's answer arrived. */
  readonly answeredMs: number;
  readonly boundMs: number;
  /** Whether it outlasted its bound and was counted. */
  counted: boolean;
  /** The follow-up marks not yet passed. */
  marks: number[];
  /** Whether it is no longer followed (gone, or past the last mark). */
  done: boolean;
}

/** The validator of one node. */
export class Validator {
  readonly #k: NodeKernel;
  readonly #parts: ValidatorParts;
  readonly #settings: Required<ValidatorOptions>;
  readonly #random: Xorshift32;
  /** Keys with a check scheduled, a store read in flight or a difference followed. */
  readonly #busy = new Set<string>();
  #tokens = 1;
  #tokensAtMs = -Infinity;
  #started = false;
  readonly #report = {
    checked: 0,
    consistent: 0,
    olderWithinBound: 0,
    inconsistent: 0,
    deletedInStore: 0,
    newerThanStore: 0,
    healed: 0,
    skippedByRateLimit: 0,
    notCached: 0,
    storeErrors: 0,
    storeReads: 0,
    within1s: 0,
    within10s: 0,
    within60s: 0,
    following: 0,
  };

  /** The validator of the node whose kernel is `kernel`, with validated `settings`. */
  constructor(kernel: NodeKernel, parts: ValidatorParts, settings: Required<ValidatorOptions>) {
    this.#k = kernel;
    this.#parts = parts;
    this.#settings = settings;
    this.#random = new Xorshift32(nodeSeed(kernel.nodeId, kernel.incarnation, 0x7a11d));
  }

  /** Starts the sampling timer (once; called on every tick). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    if (this.#settings.samplePerS > 0) this.#armSample();
  }

  /** The figures so far. */
  report(): ValidatorReport {
    const r = this.#report;
    return {
      mode: this.#settings.mode,
      checked: r.checked,
      consistent: r.consistent,
      olderWithinBound: r.olderWithinBound,
      inconsistent: r.inconsistent,
      deletedInStore: r.deletedInStore,
      newerThanStore: r.newerThanStore,
      healed: r.healed,
      skippedByRateLimit: r.skippedByRateLimit,
      notCached: r.notCached,
      storeErrors: r.storeErrors,
      storeReads: r.storeReads,
      following: r.following,
      consistentWithin: { "1s": r.within1s, "10s": r.within10s, "60s": r.within60s },
    };
  }

  /**
   * This node applied an invalidation of `key` from a peer (an eventual invalidation, or a
   * strong revocation by message or notice): a share of them are checked later.
   */
  invalidated(key: string): void {
    const share = this.#settings.afterInvalidationShare;
    if (share === 0 || this.#random.next() >= share) return;
    if (this.#parts.policyOf(key)?.origin !== "store") return; // a loader's key has no version
    if (!this.#admit(key)) return;
    this.#k.arm(this.#k.now + this.#settings.checkDelayMs, () => {
      this.#busy.delete(key);
      this.#check(key);
    });
  }

  /** Whether a new check of `key` may be scheduled (not already followed, under the limit). */
  #admit(key: string): boolean {
    if (this.#busy.has(key)) return false;
    if (this.#busy.size >= this.#settings.checksMax) {
      this.#report.skippedByRateLimit++;
      return false;
    }
    this.#busy.add(key);
    return true;
  }

  #armSample(): void {
    const k = this.#k;
    k.arm(k.now + 1000 / this.#settings.samplePerS, () => {
      this.#sample();
      this.#armSample();
    });
  }

  /** Checks one L1 entry picked at random among the most recently used. */
  #sample(): void {
    const l1 = this.#k.l1;
    if (l1.size === 0) return;
    const span = Math.min(l1.size, SAMPLE_WALK_MAX);
    let skip = Math.floor(this.#random.next() * span);
    let walked = 0;
    // From the drawn entry on, the first one not already followed (within the walk's bound).
    for (const entry of l1.entries()) {
      if (++walked > SAMPLE_WALK_MAX * 2) return;
      if (skip-- > 0 || this.#busy.has(entry.key)) continue;
      this.#check(entry.key);
      return;
    }
  }

  /** Takes a store-read token, if the bucket has one. */
  #takeToken(): boolean {
    const now = this.#k.now;
    const rate = this.#settings.storeReadsPerS;
    if (now > this.#tokensAtMs) {
      const refill = this.#tokensAtMs === -Infinity ? 0 : (now - this.#tokensAtMs) * rate / 1000;
      this.#tokens = Math.min(Math.max(1, rate), this.#tokens + refill);
      this.#tokensAtMs = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens--;
    this.#report.storeReads++;
    return true;
  }

  /** Reads the store for `key`, if L1 would serve it and the budget allows. */
  #check(key: string): void {
    const k = this.#k;
    const policy = this.#parts.policyOf(key);
    const entry = this.#parts.servable(key);
    if (entry === undefined || policy === undefined || policy.origin === "loader") {
      this.#report.notCached++;
      return;
    }
    if (this.#busy.size >= this.#settings.checksMax || !this.#takeToken()) {
      this.#report.skippedByRateLimit++;
      return;
    }
    this.#busy.add(key);
    const cachedVersion = entry.version;
    const cachedFound = entry.found;
    k.storeGet(
      key,
      (result) => this.#verdict(key, policy, cachedVersion, cachedFound, result),
      "validator",
    );
  }

  #verdict(
    key: string,
    policy: KeyPolicy,
    cachedVersion: number,
    cachedFound: boolean,
    result: StoreReadResult,
  ): void {
    const k = this.#k;
    const r = this.#report;
    assert(this.#busy.has(key), `Validator got an answer for a key it was not checking: ${key}`);
    if (!result.ok) {
      r.storeErrors++;
      this.#busy.delete(key);
      return;
    }
    r.checked++;
    if (
      result.version === cachedVersion && result.found === cachedFound ||
      !result.found && !cachedFound
    ) {
      r.consistent++;
      this.#consistentWithin(0);
      this.#busy.delete(key);
      return;
    }
    if (cachedVersion > result.version && result.found) {
      r.newerThanStore++;
      this.#busy.delete(key);
      this.#alert("newer-than-store", key, cachedVersion, result.version, 0, false);
      if (k.canary.unconditionalHeal) this.#installUnchecked(key, policy, result);
      return;
    }
    // Older, or deleted in the store (a store that forgets deletions may answer version 0).
    r.olderWithinBound++;
    if (k.canary.unconditionalHeal) this.#installUnchecked(key, policy, result);
    const boundMs = boundOf(policy);
    if (k.canary.unconditionalHeal) {
      // go-warp's auto-heal: a bound later, a heal read whose answer is ignored, and the
      // value read now written over L1, unchecked.
      k.arm(k.now + boundMs, () => {
        k.storeGet(key, () => this.#installUnchecked(key, policy, result), "validator");
      });
    }
    const difference: Difference = {
      cachedVersion,
      storeVersion: result.version,
      storeFound: result.found,
      answeredMs: k.now,
      boundMs,
      counted: false,
      marks: [...MARKS_MS],
      done: false,
    };
    r.following++;
    if (k.canary.countWithinBound) {
      difference.counted = true;
      if (result.found) r.inconsistent++;
      else r.deletedInStore++;
      const verdict = result.found ? "inconsistent" : "deleted-in-store";
      this.#alert(verdict, key, cachedVersion, result.version, boundMs, false);
    }
    const dueMs = k.now + boundMs * (1 + k.drift) + MARGIN_MS;
    k.arm(dueMs, () => this.#followUp(key, policy, difference, true));
    for (const mark of MARKS_MS) {
      k.arm(k.now + mark, () => this.#followUp(key, policy, difference, false));
    }
  }

  /** Whether L1 still serves what the store had outdated when `difference` was found. */
  #stillDifferent(key: string, difference: Difference): Entry | undefined {
    const entry = this.#parts.servable(key);
    if (entry === undefined) return undefined;
    if (entry.version < difference.storeVersion) return entry;
    // A store that forgot a deletion (version 0): the same value still served.
    if (!difference.storeFound && entry.found && entry.version === difference.cachedVersion) {
      return entry;
    }
    return undefined;
  }

  /**
   * A follow-up of a difference: at its bound (`atBound`), count it if L1 still serves it
   * (and heal it); at each mark, record whether it is gone; past the bound, heal again.
   */
  #followUp(key: string, policy: KeyPolicy, difference: Difference, atBound: boolean): void {
    if (difference.done) return;
    const k = this.#k;
    const entry = this.#stillDifferent(key, difference);
    const marks = difference.marks;
    // Marks passed before now (a late timer, a paused node): not known consistent by then.
    const elapsed = k.now - difference.answeredMs;
    while (marks.length > 0 && marks[0]! < elapsed - MARGIN_MS) marks.shift();
    if (entry === undefined) {
      // Gone by now: consistent within every mark not yet passed.
      if (marks.length > 0) this.#consistentWithin(MARKS_MS.length - marks.length);
      this.#finish(key, difference);
      return;
    }
    while (marks.length > 0 && marks[0]! <= elapsed + MARGIN_MS) marks.shift();
    if (atBound) this.#count(key, policy, entry, difference);
    else if (difference.counted && this.#settings.mode === "heal") {
      this.#heal(key, policy, difference);
    }
    if (marks.length === 0) this.#finish(key, difference);
  }

  #finish(key: string, difference: Difference): void {
    assert(!difference.done, `Validator finished a difference twice: ${key}`);
    this.#report.following--;
    assert(this.#report.following >= 0, `Validator followed a negative number of keys`);
    difference.done = true;
    difference.marks.length = 0;
    this.#busy.delete(key);
  }

  /** Counts a difference that outlasted its bound (once), alerts, heals. */
  #count(key: string, policy: KeyPolicy, entry: Entry, difference: Difference): void {
    if (!difference.counted) {
      difference.counted = true;
      if (difference.storeFound) this.#report.inconsistent++;
      else this.#report.deletedInStore++;
    }
    const healing = this.#settings.mode === "heal" && this.#heal(key, policy, difference);
    this.#alert(
      difference.storeFound ? "inconsistent" : "deleted-in-store",
      key,
      entry.version,
      difference.storeVersion,
      difference.boundMs,
      healing,
    );
  }

  /** Starts a versioned fill of at least the store's version, within the budget. */
  #heal(key: string, policy: KeyPolicy, difference: Difference): boolean {
    if (!this.#takeToken()) return false;
    // A store that forgot a deletion answers version 0: the fill must outdate the entry.
    const floor = Math.max(difference.storeVersion, difference.cachedVersion + 1);
    if (!this.#parts.heal(key, policy, floor)) {
      // A fill in flight had its floor raised instead: no store read of the validator's.
      this.#tokens++;
      this.#report.storeReads--;
    }
    this.#report.healed++;
    return true;
  }

  /** Records `verdict` for the driver in `alert` and `heal` modes, while observed. */
  #alert(
    verdict: ValidatorEvent["verdict"],
    key: string,
    cachedVersion: number,
    storeVersion: number,
    boundMs: number,
    healing: boolean,
  ): void {
    const k = this.#k;
    if (this.#settings.mode === "count" || k.events === undefined) return;
    k.note({ type: "validator", verdict, key, cachedVersion, storeVersion, boundMs, healing });
  }

  /** Counts a checked key consistent within the marks from index `from` on (1 s, 10 s, 60 s). */
  #consistentWithin(from: number): void {
    const r = this.#report;
    if (from <= 0) r.within1s++;
    if (from <= 1) r.within10s++;
    r.within60s++;
  }

  /** The canary `unconditional-heal`: go-warp's auto-heal, the store's answer written over L1. */
  #installUnchecked(key: string, policy: KeyPolicy, result: StoreReadResult & { ok: true }): void {
    const k = this.#k;
    const current = k.l1.get(key);
    if (current === undefined || current.version === result.version) return;
    k.l1.install(key, result, k.now + policy.ttlMs, policy, k.boundUntil(policy, k.now));
  }
}

/** The bound within which a difference of a key's mode is not (yet) an inconsistency, ms. */
function boundOf(policy: KeyPolicy): number {
  switch (policy.mode) {
    case "eventual-distributed":
      return Math.min(policy.maxStalenessMs, policy.ttlMs);
    case "strong-local":
      return policy.ttlMs;
    case "strong-distributed":
      return policy.leaseMs;
  }
}
