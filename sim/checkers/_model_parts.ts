/**
 * Pieces shared by the public models (`models.ts`) and the interned ones `checkModel`
 * searches with (`_interned_models.ts`): the sequential specification of a
 * compare-and-set register, and the split of a store's operations by key.
 *
 * @module
 */

import type { CasRegisterInput } from "./models.ts";
import { sameValue } from "./_value.ts";

/**
 * The register after `input`, or `undefined` if it cannot answer `output` (`undefined`
 * output: unknown, anything goes).
 */
export function registerStep<V>(
  state: V | null,
  input: CasRegisterInput<V>,
  output: V | null | boolean | undefined,
): V | null | undefined {
  switch (input.kind) {
    case "write":
      return input.value;
    case "read":
      return output === undefined || sameValue(output, state) ? state : undefined;
    case "cas": {
      const found = sameValue(state, input.expected);
      if (output === undefined) return found ? input.value : state;
      if (output === true) return found ? input.value : undefined;
      if (output === false) return found ? undefined : state;
      return undefined;
    }
  }
}

/** Whether an op never changes a register: a read, or a cas that answered "not swapped". */
export function isReadOnly(input: { readonly kind: string }, output: unknown): boolean {
  return input.kind === "read" || (input.kind === "cas" && output === false);
}

/** Splits operations by key, in the order of each key's first operation. */
export function byKey<T extends { readonly input: { readonly key: string } }>(
  ops: readonly T[],
): T[][] {
  const parts = new Map<string, T[]>();
  for (const op of ops) {
    const part = parts.get(op.input.key);
    if (part === undefined) parts.set(op.input.key, [op]);
    else part.push(op);
  }
  return [...parts.values()];
}
