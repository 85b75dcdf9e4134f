/**
 * Sequential models for the linearizability checker (`checkLinearizability`): a register, a register with
 * compare-and-set, and a key-value store partitioned by key. Values compare as JSON-like
 * data (property order does not matter); `null` means absent.
 *
 * @module
 */

import type { Model, Operation } from "./linearizability.ts";
import { sameValue, valueKey } from "./_value.ts";

/** An operation on a register: read it, or write a value (`null` = delete). */
export type RegisterInput<V = unknown> =
  | { readonly kind: "read" }
  | { readonly kind: "write"; readonly value: V | null };

/**
 * A register holding one value, initially `null` (absent). A read answers the value it
 * read (`null` when absent); a write's output is ignored.
 *
 * @example A read that returns the value of a concurrent write is linearizable
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLinearizability } from "./linearizability.ts";
 * import { registerModel } from "./models.ts";
 *
 * const result = checkLinearizability(registerModel<string>(), [
 *   { id: 1, input: { kind: "write", value: "a" }, callMs: 0, returnMs: 10, outcome: "ok" },
 *   { id: 2, input: { kind: "read" }, output: "a", callMs: 5, returnMs: 6, outcome: "ok" },
 * ]);
 * assert.equal(result.status, "pass");
 * ```
 */
export function registerModel<V = unknown>(): Model<V | null, RegisterInput<V>, V | null> {
  return {
    init: () => null,
    step(state, input, output) {
      if (input.kind === "write") return input.value;
      return output === undefined || sameValue(output, state) ? state : undefined;
    },
    readOnly: (input) => input.kind === "read",
    key: valueKey,
  };
}

/** An operation on a compare-and-set register. */
export type CasRegisterInput<V = unknown> =
  | RegisterInput<V>
  | { readonly kind: "cas"; readonly expected: V | null; readonly value: V | null };

/**
 * A register with compare-and-set, initially `null`. A read answers the value; a cas
 * answers `true` when it found `expected` and stored `value`, `false` when it found
 * something else and changed nothing.
 *
 * @example A cas that succeeded on a value nobody could have seen is not linearizable
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLinearizability } from "./linearizability.ts";
 * import { casRegisterModel } from "./models.ts";
 *
 * const result = checkLinearizability(casRegisterModel<number>(), [
 *   { id: 1, input: { kind: "write", value: 1 }, callMs: 0, returnMs: 1, outcome: "ok" },
 *   { id: 2, input: { kind: "cas", expected: 2, value: 3 }, output: true, callMs: 2, returnMs: 3, outcome: "ok" },
 * ]);
 * assert.equal(result.status, "fail");
 * ```
 */
export function casRegisterModel<V = unknown>(): Model<
  V | null,
  CasRegisterInput<V>,
  V | null | boolean
> {
  return {
    init: () => null,
    step(state, input, output) {
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
    },
    readOnly: (input, output) =>
      input.kind === "read" || (input.kind === "cas" && output === false),
    key: valueKey,
  };
}

/** An operation on one key of a key-value store. */
export type KvInput<V = unknown> =
  | { readonly kind: "read"; readonly key: string }
  | { readonly kind: "write"; readonly key: string; readonly value: V | null };

/** The state of a key-value store: the present keys and their values. */
export type KvState<V = unknown> = ReadonlyMap<string, V>;

/**
 * A key-value store of registers, all initially absent (`null`), partitioned by key so
 * each key is searched on its own. A read answers the value (`null` when absent).
 *
 * @example Keys are checked separately
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLinearizability } from "./linearizability.ts";
 * import { kvModel } from "./models.ts";
 *
 * const result = checkLinearizability(kvModel(), [
 *   { id: 1, input: { kind: "write", key: "a", value: 1 }, callMs: 0, returnMs: 1, outcome: "ok" },
 *   { id: 2, input: { kind: "read", key: "b" }, output: null, callMs: 2, returnMs: 3, outcome: "ok" },
 *   { id: 3, input: { kind: "read", key: "a" }, output: 1, callMs: 2, returnMs: 3, outcome: "ok" },
 * ]);
 * assert.equal(result.status, "pass");
 * assert.equal(result.partitions.length, 2);
 * ```
 */
export function kvModel<V = unknown>(): Model<KvState<V>, KvInput<V>, V | null> {
  return {
    init: () => new Map(),
    step(state, input, output) {
      if (input.kind === "write") {
        const after = new Map(state);
        if (input.value === null) after.delete(input.key);
        else after.set(input.key, input.value);
        return after;
      }
      if (output === undefined) return state;
      return sameValue(output, state.get(input.key) ?? null) ? state : undefined;
    },
    readOnly: (input) => input.kind === "read",
    key(state) {
      const keys = [...state.keys()].sort();
      return JSON.stringify(keys.map((k) => [k, valueKey(state.get(k))]));
    },
    partition(ops: readonly Operation<KvInput<V>, V | null>[]) {
      const byKey = new Map<string, Operation<KvInput<V>, V | null>[]>();
      for (const op of ops) {
        const part = byKey.get(op.input.key);
        if (part === undefined) byKey.set(op.input.key, [op]);
        else part.push(op);
      }
      return [...byKey.values()];
    },
  };
}
