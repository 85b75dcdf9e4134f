/**
 * A failed linearizability search, told as a sentence: which op could not take effect,
 * what it answered, and after which ops, leaving which state. Shared by the contract's
 * S1/SL1 checks and the model checks.
 *
 * @module
 */

import type { HistoryOp } from "../history.ts";
import type { Counterexample } from "./linearizability.ts";
import { showValue } from "./_value.ts";
import { describeOp, readFound } from "./_version_checks.ts";

/** How many of the last linearized ops a sentence names. */
const SHOWN_MAX = 5;

/**
 * The key's state after some ops, for the sentence: `undefined` when absent, else the
 * value as shown.
 */
export type ShowState = (linearized: readonly number[]) => string | undefined;

/**
 * The sentence, and the ops it involves: the blocked op first, then the last ops
 * linearized before it, newest first.
 */
export function explainCounterexample(
  key: string,
  counterexample: Counterexample,
  byId: ReadonlyMap<number, HistoryOp>,
  showState: ShowState,
): { readonly ops: readonly number[]; readonly message: string } {
  const blocked = byId.get(counterexample.blocked)!;
  const { linearized } = counterexample;
  const shown = linearized.slice(-SHOWN_MAX);
  const count = linearized.length;
  const state = showState(linearized);
  const prefix = count === 0
    ? `at the start, when ${state === undefined ? "the key is absent" : `it holds ${state}`}`
    : `after ${count === 1 ? "op" : "ops"} ${count > SHOWN_MAX ? "…, " : ""}${shown.join(", ")}, ` +
      `which ${count === 1 ? "leaves" : "leave"} ${state ?? "the key absent"}`;
  return {
    ops: [blocked.id, ...shown.toReversed()],
    message: `Ops of ${key} are not linearizable: ${describeOp(blocked)}${answered(blocked)} ` +
      `cannot take effect ${prefix}`,
  };
}

/** What the op asked or answered, in parentheses; nothing for a write or delete. */
function answered(op: HistoryOp): string {
  switch (op.kind) {
    case "read":
      return ` (returned ${readFound(op) ? showValue(op.value) : "nothing"})`;
    case "cas":
      return ` (${showValue(op.expected)} to ${showValue(op.value)}, ${
        op.outcome !== "ok" ? "outcome unknown" : op.swapped === false ? "not swapped" : "swapped"
      })`;
    case "append":
      return ` (of ${showValue(op.value)})`;
    case "txn": {
      const steps = op.txn!.map((step) =>
        step.kind === "read" && op.outcome !== "ok"
          ? `read ${step.key}`
          : `${step.kind} ${step.key} ${showValue(step.value)}`
      );
      return ` ([${steps.join(", ")}])`;
    }
    default:
      return "";
  }
}
