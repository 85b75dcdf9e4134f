/**
 * S1 and SL1: the operations of one key, as a register over values (a delete writes
 * absence), checked with the linearizability search.
 *
 * @module
 */

import type { HistoryOp, Violation } from "../history.ts";
import {
  checkLinearizability,
  type Counterexample,
  type LinearizabilityStatus,
  type Operation,
} from "./linearizability.ts";
import { type RegisterInput, registerModel } from "./models.ts";
import { showValue, valueKey } from "./_value.ts";
import { readFound, type Report } from "./_version_checks.ts";
import { explainCounterexample } from "./_explain.ts";

/** Values are interned to small integers so the search compares and hashes them cheaply. */
type Token = number | null;

const model = registerModel<number>();

/** The outcome of checking one key. */
export interface KeyLinearizability {
  readonly status: LinearizabilityStatus;
  readonly steps: number;
}

/**
 * Checks that `ops` (all of one key) are linearizable. Reads whose outcome is not ok say
 * nothing and are left out. An unknown write whose value no read returned is left out
 * too: a write nobody saw can always be taken as never having happened. An unknown write
 * whose value was read, and that is the only write of that value, certainly happened
 * before the first such read completed: it is checked as an ok op that returned then.
 * Both keep the search from carrying open ops to the end of the history.
 */
export function checkKeyLinearizable(
  guarantee: "S1" | "SL1",
  key: string,
  ops: readonly HistoryOp[],
  stepsMax: number,
  report: Report,
): KeyLinearizability {
  const tokens = new Map<string, number>();
  const tokenOf = (value: unknown): number => {
    const k = valueKey(value);
    let token = tokens.get(k);
    if (token === undefined) {
      token = tokens.size;
      tokens.set(k, token);
    }
    return token;
  };
  /** Per value read: the earliest completion of a read of it. */
  const firstReadMs = new Map<Token, number>();
  /** Per value: how many writes (not certainly failed) wrote it. */
  const writers = new Map<number, number>();
  for (const op of ops) {
    if (op.kind === "read" && op.outcome === "ok") {
      const token = readFound(op) ? tokenOf(op.value) : null;
      firstReadMs.set(token, Math.min(firstReadMs.get(token) ?? Infinity, op.completeMs!));
    } else if (op.kind === "write" && op.outcome !== "fail") {
      const token = tokenOf(op.value);
      writers.set(token, (writers.get(token) ?? 0) + 1);
    }
  }
  const byId = new Map<number, HistoryOp>();
  const operations: Operation<RegisterInput<number>, Token>[] = [];
  for (const op of ops) {
    if (op.outcome === "fail" || op.kind === "invalidate") continue;
    if (op.kind === "read") {
      if (op.outcome !== "ok") continue;
      const output = readFound(op) ? tokenOf(op.value) : null;
      const { id, invokeMs: callMs, completeMs: returnMs } = op;
      operations.push({ id, input: { kind: "read" }, output, callMs, returnMs, outcome: "ok" });
    } else {
      const value = op.kind === "write" ? tokenOf(op.value) : null;
      const input = { kind: "write", value } as const;
      let returnMs = op.outcome === "ok" ? op.completeMs : null;
      if (op.outcome === "unknown") {
        const seenMs = firstReadMs.get(value);
        if (seenMs === undefined) continue;
        if (value !== null && writers.get(value) === 1 && seenMs >= op.invokeMs) {
          returnMs = seenMs;
        }
      }
      const outcome = returnMs === null ? "unknown" : "ok";
      operations.push({ id: op.id, input, callMs: op.invokeMs, returnMs, outcome });
    }
    byId.set(op.id, op);
  }
  const result = checkLinearizability(model, operations, { stepsMax });
  const partition = result.partitions[0];
  if (result.status === "fail" && partition?.counterexample !== undefined) {
    report(counterexampleViolation(guarantee, key, partition.counterexample, byId));
  }
  return { status: result.status, steps: result.steps };
}

function counterexampleViolation(
  guarantee: "S1" | "SL1",
  key: string,
  counterexample: Counterexample,
  byId: ReadonlyMap<number, HistoryOp>,
): Violation {
  const { ops, message } = explainCounterexample(key, counterexample, byId, (linearized) => {
    let state: unknown = null;
    for (const id of linearized) {
      const op = byId.get(id)!;
      if (op.kind === "write") state = op.value;
      else if (op.kind === "delete") state = null;
    }
    return state === null ? undefined : showValue(state);
  });
  return { guarantee, key, ops, message };
}
