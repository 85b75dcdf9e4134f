/**
 * Checks a recorded {@linkcode History} against the guarantees of CONSISTENCY.md, each
 * key by the guarantees of its mode:
 *
 * - eventual-distributed: E1 validity, E2 no going back (per node), E3 bounded
 *   staleness, E4 convergence of the probe reads to the final version;
 * - strong-distributed: S1 linearizability (a search with a step budget per key and one
 *   for all keys), S2 no stale read after an acknowledged write or read;
 * - strong-local: SL1 linearizability of a key's ops on its only writer node, SL2 no L1
 *   entry served past its TTL;
 * - every mode, when the history has the store's log: E1s, every ok read and write
 *   against the (value, version) pairs the store really held (`store_log.ts`);
 * - every mode, when the history has clears: CL, a cleared entry is not served past the
 *   clear's bound (`clears.ts`);
 * - eventual-distributed, when the history has a fault-free phase: EP, invalidations reach
 *   every node within the phase's bounds (`propagation.ts`);
 * - keys only `update` writes, when the history has an update part: M1, and M2 over the
 *   last-writer-wins ones (`updates.ts`);
 * - transactions, when the history has them and the store's log: T1, all or nothing in
 *   the store, nothing of a failed one served (`transactions.ts`);
 * - the background validators, when the history has a validator part: V1 (`validator.ts`);
 * - leased keys, when the history has a lease part: G1–G3 and GV (`leases.ts`).
 *
 * Once one key's linearizability search (S1 or SL1) fails, the other keys' searches are
 * not run: their keys are listed in `stats.skippedKeys`, and S1 or SL1 is `unknown`
 * rather than `pass` if nothing else failed it.
 *
 * Version checks read the recorded `version` of ok ops; an op without one is not checked
 * by them (the count of checked ops per guarantee is in the stats, so a history that
 * records no versions shows up as checking nothing). Failed ops certainly did not
 * happen; unknown ones may have happened.
 *
 * @module
 */

import type { History, HistoryOp, KeyInfo, Violation } from "../history.ts";
import { STEPS_MAX_DEFAULT } from "./linearizability.ts";
import { checkKeyLinearizable } from "./_linearizable_key.ts";
import {
  checkBoundedStaleness,
  checkConvergence,
  checkNoGoingBack,
  checkNoStaleRead,
  checkTtl,
  checkValidity,
  type Report,
} from "./_version_checks.ts";
import { validateHistory } from "./validate_history.ts";
import { checkLeases, LEASE_GUARANTEES } from "./leases.ts";
import { checkStoreLog } from "./store_log.ts";
import { checkPropagation } from "./propagation.ts";
import { checkClears } from "./clears.ts";
import { checkLastWriterWins, checkUpdates } from "./updates.ts";
import { checkTransactions } from "./transactions.ts";
import { checkValidator } from "./validator.ts";

/** The guarantees {@linkcode checkHistory} checks, in the order it reports them. */
export const GUARANTEES = [
  "E1",
  "E1s",
  "E2",
  "E3",
  "E4",
  "EP",
  "S1",
  "S2",
  "SL1",
  "SL2",
  "M1",
  "M2",
  "T1",
  "V1",
  "G1",
  "G2",
  "G3",
  "GV",
  "CL",
] as const;

/** A guarantee of CONSISTENCY.md that {@linkcode checkHistory} checks. */
export type Guarantee = typeof GUARANTEES[number];

/**
 * What a check concluded: `skipped` when nothing in the history was subject to it (no key
 * of its mode, or no op it could check); `unknown` when a linearizability search ran out
 * of budget and nothing failed.
 */
export type GuaranteeStatus = "pass" | "fail" | "unknown" | "skipped";

/** Options of {@linkcode checkHistory}. */
export interface CheckHistoryOptions {
  /** The step budget of the linearizability search of each key (S1, SL1). @default {100000} */
  readonly stepsMax?: number;
  /**
   * The step budget of the linearizability searches of all keys together; keys left when
   * it runs out are `unknown`, not searched.
   * @default {Infinity}
   */
  readonly stepsTotalMax?: number;
  /** The most violations kept per guarantee; the stats count them all. @default {100} */
  readonly violationsMax?: number;
  /** The guarantees to check; the others are `skipped`. @default {GUARANTEES} */
  readonly guarantees?: readonly Guarantee[];
}

/** Counts that say how much a check really looked at. */
export interface CheckHistoryStats {
  /** Ops in the history. */
  readonly ops: number;
  /** Keys described by the history. */
  readonly keys: number;
  /** Per guarantee: ops checked (S1, SL1: keys checked). */
  readonly checked: Readonly<Record<Guarantee, number>>;
  /** Per guarantee: violations found, including those beyond `violationsMax`. */
  readonly violations: Readonly<Record<Guarantee, number>>;
  /** Model steps taken by the linearizability searches. */
  readonly linearizabilitySteps: number;
  /** Keys whose linearizability search ran out of budget (per key or total). */
  readonly unknownKeys: readonly { readonly guarantee: "S1" | "SL1"; readonly key: string }[];
  /**
   * Keys whose linearizability search was not run because another key's had already
   * failed: the history is not linearizable whatever they hold.
   */
  readonly skippedKeys: readonly { readonly guarantee: "S1" | "SL1"; readonly key: string }[];
  /** strong-local keys not checked by SL1 because they had no single writer node. */
  readonly sl1SkippedKeys: number;
}

/** The result of {@linkcode checkHistory}. */
export interface CheckHistoryResult {
  /** Violations, by guarantee (in {@linkcode GUARANTEES} order), then key, then op. */
  readonly violations: readonly Violation[];
  /** Each guarantee's status. */
  readonly results: Readonly<Record<Guarantee, GuaranteeStatus>>;
  /** What the check counted. */
  readonly stats: CheckHistoryStats;
}

const VIOLATIONS_MAX_DEFAULT = 100;

const MODE_OF: Readonly<Partial<Record<Guarantee, KeyInfo["mode"]>>> = {
  E1: "eventual-distributed",
  E2: "eventual-distributed",
  E3: "eventual-distributed",
  E4: "eventual-distributed",
  S1: "strong-distributed",
  S2: "strong-distributed",
  SL1: "strong-local",
  SL2: "strong-local",
};

/**
 * Checks a history against every guarantee that applies to its keys.
 *
 * @throws {TypeError} if the history is malformed (see `validateHistory`) or an option
 * names an unknown guarantee.
 * @throws {RangeError} if `stepsMax` or `violationsMax` is out of range.
 *
 * @example A read that goes back to an older version on the same node breaks E2
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkHistory } from "./consistency.ts";
 *
 * const { violations, results } = checkHistory({
 *   format: "warp-history/1",
 *   keys: { k: { mode: "eventual-distributed", maxStalenessMs: 1000 } },
 *   ops: [
 *     { id: 1, process: "n1", key: "k", kind: "write", value: "a", version: 1, invokeMs: 0, completeMs: 1, outcome: "ok" },
 *     { id: 2, process: "n1", key: "k", kind: "write", value: "b", version: 2, invokeMs: 2, completeMs: 3, outcome: "ok" },
 *     { id: 3, process: "n1", key: "k", kind: "read", value: "a", found: true, version: 1, invokeMs: 4, completeMs: 5, outcome: "ok" },
 *   ],
 * });
 * assert.equal(results.E2, "fail");
 * assert.deepEqual(violations.map((v) => [v.guarantee, v.key, v.ops]), [["E2", "k", [3, 2]]]);
 * ```
 */
export function checkHistory(
  history: History,
  options: CheckHistoryOptions = {},
): CheckHistoryResult {
  validateHistory(history);
  const stepsMax = options.stepsMax ?? STEPS_MAX_DEFAULT;
  if (!Number.isSafeInteger(stepsMax) || stepsMax < 1) {
    throw new RangeError(`Invalid stepsMax, expected a positive integer: ${stepsMax}`);
  }
  const stepsTotalMax = options.stepsTotalMax ?? Infinity;
  if (!(Number.isSafeInteger(stepsTotalMax) || stepsTotalMax === Infinity) || stepsTotalMax < 1) {
    throw new RangeError(
      `Invalid stepsTotalMax, expected a positive integer or Infinity: ${stepsTotalMax}`,
    );
  }
  const violationsMax = options.violationsMax ?? VIOLATIONS_MAX_DEFAULT;
  if (!Number.isSafeInteger(violationsMax) || violationsMax < 0) {
    throw new RangeError(`Invalid violationsMax, expected an integer >= 0: ${violationsMax}`);
  }
  const selected = new Set<Guarantee>(options.guarantees ?? GUARANTEES);
  for (const guarantee of selected) {
    if (!GUARANTEES.includes(guarantee)) {
      throw new TypeError(`Unknown guarantee: ${String(guarantee)}`);
    }
  }

  const opsByKey = groupByKey(history);
  const keys = Object.keys(history.keys).sort();
  const violations: Violation[] = [];
  const checked = perGuarantee(0);
  const found = perGuarantee(0);
  const unknownKeys: { guarantee: "S1" | "SL1"; key: string }[] = [];
  const skippedKeys: { guarantee: "S1" | "SL1"; key: string }[] = [];
  let linearizabilityFailed = false;
  let linearizabilitySteps = 0;
  let sl1SkippedKeys = 0;

  for (const guarantee of GUARANTEES) {
    if (!selected.has(guarantee)) continue;
    const report: Report = (violation) => {
      found[guarantee]++;
      if (found[guarantee] <= violationsMax) violations.push(violation);
    };
    if (guarantee === "E1s") checked.E1s = checkStoreLog(history, report);
    if (guarantee === "EP") checked.EP = checkPropagation(history, report);
    if (guarantee === "CL") checked.CL = checkClears(history, report);
    if (guarantee === "M1") checked.M1 = checkUpdates(history, report);
    if (guarantee === "M2") checked.M2 = checkLastWriterWins(history, report);
    if (guarantee === "T1") checked.T1 = checkTransactions(history, report);
    if (guarantee === "V1") checked.V1 = checkValidator(history, report);
    if (MODE_OF[guarantee] === undefined) continue; // whole-history checks, G1–G3 below
    for (const key of keys) {
      const info = history.keys[key]!;
      if (info.mode !== MODE_OF[guarantee]) continue;
      const ops = opsByKey.get(key) ?? [];
      switch (guarantee) {
        case "E1":
          checked.E1 += checkValidity(key, ops, report);
          break;
        case "E2":
          checked.E2 += checkNoGoingBack(key, ops, report);
          break;
        case "E3":
          checked.E3 += checkBoundedStaleness(key, info, ops, report);
          break;
        case "E4":
          checked.E4 += checkConvergence(key, history.final?.[key], ops, report);
          break;
        case "S2":
          checked.S2 += checkNoStaleRead(key, ops, report);
          break;
        case "SL2":
          checked.SL2 += checkTtl(key, info, ops, report);
          break;
        case "S1":
        case "SL1": {
          const subject = guarantee === "S1" ? ops : singleWriterOps(ops);
          if (subject === undefined) {
            if (ops.length > 0) sl1SkippedKeys++;
            continue;
          }
          if (subject.length === 0) continue;
          const budget = Math.min(stepsMax, stepsTotalMax - linearizabilitySteps);
          if (linearizabilityFailed) {
            skippedKeys.push({ guarantee, key });
            continue;
          }
          checked[guarantee]++;
          if (budget <= 0) {
            unknownKeys.push({ guarantee, key });
            continue;
          }
          const result = checkKeyLinearizable(guarantee, key, subject, budget, report);
          linearizabilitySteps += result.steps;
          if (result.status === "unknown") unknownKeys.push({ guarantee, key });
          if (result.status === "fail") linearizabilityFailed = true;
        }
      }
    }
  }

  if (LEASE_GUARANTEES.some((g) => selected.has(g))) {
    const leaseResult = checkLeases(history);
    for (const guarantee of LEASE_GUARANTEES) {
      if (!selected.has(guarantee)) continue;
      checked[guarantee] = leaseResult.checked[guarantee];
      for (const violation of leaseResult.violations) {
        if (violation.guarantee !== guarantee) continue;
        found[guarantee]++;
        if (found[guarantee] <= violationsMax) violations.push(violation);
      }
    }
  }

  const results = perGuarantee<GuaranteeStatus>("skipped");
  const left = [...unknownKeys, ...skippedKeys];
  for (const guarantee of GUARANTEES) {
    const open = left.some((u) => u.guarantee === guarantee);
    if (!selected.has(guarantee) || (checked[guarantee] === 0 && !open)) continue;
    results[guarantee] = found[guarantee] > 0 ? "fail" : open ? "unknown" : "pass";
  }
  return {
    violations,
    results,
    stats: {
      ops: history.ops.length,
      keys: keys.length,
      checked,
      violations: found,
      linearizabilitySteps,
      unknownKeys,
      skippedKeys,
      sl1SkippedKeys,
    },
  };
}

function perGuarantee<T>(initial: T): Record<Guarantee, T> {
  return Object.fromEntries(GUARANTEES.map((g) => [g, initial])) as Record<Guarantee, T>;
}

/**
 * The value-carrying ops of each key (invalidations only drop caches), in history order.
 * On a leased key, a read that found the value of version v dead (its lease revoked or
 * expired: absent, at version v) is checked as a read of version v — whether the lease
 * really was dead is G1–G3's and GV's business (`leases.ts`). A dead read of a version no
 * ok write recorded (the write's outcome was unknown) is left out.
 */
function groupByKey(history: History): Map<string, HistoryOp[]> {
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of history.ops) {
    if (op.kind === "invalidate") continue;
    const ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, [op]);
    else ops.push(op);
  }
  for (const [key, ops] of byKey) {
    if (history.keys[key]?.leased) byKey.set(key, asVersionReads(ops));
  }
  return byKey;
}

function asVersionReads(ops: readonly HistoryOp[]): HistoryOp[] {
  const written = new Map<number, HistoryOp>();
  let unknownWrites = false;
  for (const op of ops) {
    if (op.kind !== "write") continue;
    if (op.outcome === "ok" && op.version !== undefined) written.set(op.version, op);
    else if (op.outcome === "unknown") unknownWrites = true;
  }
  const out: HistoryOp[] = [];
  for (const op of ops) {
    if (op.kind !== "read" || op.outcome !== "ok" || op.found !== false || !op.version) {
      out.push(op);
      continue;
    }
    const write = written.get(op.version);
    if (write !== undefined) out.push({ ...op, found: true, value: write.value });
    else if (!unknownWrites) out.push(op); // a delete's version, or a bug to report
  }
  return out;
}

/**
 * SL1 covers a key written by exactly one node: that node's ops on it. `undefined` when
 * the key has several writer nodes, or none (nothing to check).
 */
function singleWriterOps(ops: readonly HistoryOp[]): readonly HistoryOp[] | undefined {
  const writers = new Set<string | number>();
  for (const op of ops) {
    if ((op.kind === "write" || op.kind === "delete") && op.outcome !== "fail") {
      writers.add(op.process);
    }
  }
  if (writers.size !== 1) return undefined;
  const [writer] = writers;
  return ops.filter((op) => op.process === writer);
}
