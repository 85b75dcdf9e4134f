/**
 * Private: the argument check both stores run on {@linkcode Store.transact}'s steps, before
 * any I/O, so a bad transaction is refused whole with a `TypeError` or `RangeError`.
 *
 * @module
 */

import { describe } from "../_describe.ts";
import { keyProblem } from "../core/messages.ts";
import type { StoreTransactionStep } from "../store.ts";

/** The most steps one transaction may have. */
export const TRANSACTION_STEPS_MAX = 100;

/**
 * Throws unless `steps` is a non-empty array of at most {@linkcode TRANSACTION_STEPS_MAX}
 * well-formed steps over distinct keys.
 *
 * @example
 * ```ts
 * import { checkTransactionSteps } from "./_transaction.ts";
 * checkTransactionSteps([{ kind: "check", key: "a", expectedVersion: 0 }]);
 * ```
 */
export function checkTransactionSteps(steps: readonly StoreTransactionStep[]): void {
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > TRANSACTION_STEPS_MAX) {
    throw new RangeError(
      `Invalid transaction, expected 1 to ${TRANSACTION_STEPS_MAX} steps: ${describe(steps)}`,
    );
  }
  const keys = new Set<string>();
  for (const step of steps) {
    if (typeof step !== "object" || step === null) {
      throw new TypeError(`Invalid transaction step: ${describe(step)}`);
    }
    const problem = keyProblem(step.key);
    if (problem !== undefined) {
      throw new TypeError(`Invalid key of a transaction step, ${problem}: ${describe(step.key)}`);
    }
    if (keys.has(step.key)) {
      throw new TypeError(`A key may appear in one transaction step only: ${describe(step.key)}`);
    }
    keys.add(step.key);
    const version = step.expectedVersion;
    if (
      version !== undefined &&
      (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0)
    ) {
      throw new RangeError(
        `Invalid expectedVersion of ${describe(step.key)}: ${describe(version)}`,
      );
    }
    if (step.kind === "check") {
      if (version === undefined) {
        throw new TypeError(`A check needs its expectedVersion: ${describe(step.key)}`);
      }
    } else if (step.kind === "write") {
      if (step.value !== undefined && !(step.value instanceof Uint8Array)) {
        throw new TypeError(
          `Invalid value of ${describe(step.key)}: expected a Uint8Array, got ${
            describe(step.value)
          }`,
        );
      }
    } else {
      throw new TypeError(`Invalid kind of a transaction step: ${describe(step.kind)}`);
    }
  }
}
