/**
 * Sequential models for the linearizability checker (`checkLinearizability`): a register,
 * a register with compare-and-set, a key-value store of such registers, and a key-value
 * store of append-only lists, the two stores partitioned by key. Values compare as
 * JSON-like data (property order does not matter); `null` means absent.
 *
 * @module
 */

import type { Model } from "./linearizability.ts";
import { sameValue, valueKey } from "./_value.ts";
import { byKey, isReadOnly, registerStep } from "./_model_parts.ts";

/** An operation on a register: read it, or write a value (`null` = delete). */
export type RegisterInput<V = unknown> =
  | { readonly kind: "read" }
  | { readonly kind: "write"; readonly value: V | null };

/** Options of the register models. */
export interface RegisterOptions<V> {
  /** The value before any write (for a key-value store: of every key). @default {null} */
  readonly initial?: V | null;
}

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
export function registerModel<V = unknown>(
  options: RegisterOptions<V> = {},
): Model<V | null, RegisterInput<V>, V | null> {
  const initial = options.initial ?? null;
  return {
    init: () => initial,
    step: (state, input, output) => registerStep(state, input, output),
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
export function casRegisterModel<V = unknown>(
  options: RegisterOptions<V> = {},
): Model<V | null, CasRegisterInput<V>, V | null | boolean> {
  const initial = options.initial ?? null;
  return {
    init: () => initial,
    step: registerStep,
    readOnly: isReadOnly,
    key: valueKey,
  };
}

/** An operation on one key of a key-value store: a {@linkcode CasRegisterInput} with a key. */
export type KvInput<V = unknown> = CasRegisterInput<V> & { readonly key: string };

/** The state of a key-value store: the keys written so far and their values. */
export type KvState<V = unknown> = ReadonlyMap<string, V | null>;

/**
 * A key-value store of compare-and-set registers, each initially `initial` (default
 * `null`, absent), partitioned by key so each key is searched on its own. A read answers
 * the value (`null` when absent); a cas answers whether it swapped.
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
 *   { id: 3, input: { kind: "cas", key: "a", expected: 1, value: 2 }, output: true, callMs: 2, returnMs: 3, outcome: "ok" },
 * ]);
 * assert.equal(result.status, "pass");
 * assert.equal(result.partitions.length, 2);
 * ```
 */
export function kvModel<V = unknown>(
  options: RegisterOptions<V> = {},
): Model<KvState<V>, KvInput<V>, V | null | boolean> {
  const initial = options.initial ?? null;
  return {
    init: () => new Map(),
    step(state, input, output) {
      const before = state.has(input.key) ? state.get(input.key)! : initial;
      const after = registerStep(before, input, output);
      if (after === undefined) return undefined;
      if (after === before) return state;
      return new Map(state).set(input.key, after);
    },
    readOnly: isReadOnly,
    key: mapKey,
    partition: byKey,
  };
}

/** A transaction over registers: its steps, applied in order at one instant. */
export interface MultiRegisterInput<V = unknown> {
  /** The reads and writes, in order. */
  readonly steps: readonly (
    | { readonly kind: "read"; readonly key: string }
    | { readonly kind: "write"; readonly key: string; readonly value: V | null }
  )[];
}

/**
 * Knossos's multi-register: registers, each initially `initial` (default `null`), read
 * and written by transactions of several steps at once. A transaction answers the values
 * its reads returned, in order. Partitioned by the keys transactions connect (keys never
 * touched by one transaction are checked apart).
 *
 * @example Two reads in one transaction see one state
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLinearizability } from "./linearizability.ts";
 * import { multiRegisterModel } from "./models.ts";
 *
 * const ok = { outcome: "ok" } as const;
 * const write = { steps: [{ kind: "write", key: "x", value: 1 }, { kind: "write", key: "y", value: 1 }] } as const;
 * const read = { steps: [{ kind: "read", key: "x" }, { kind: "read", key: "y" }] } as const;
 * const torn = checkLinearizability(multiRegisterModel<number>({ initial: 0 }), [
 *   { id: 1, input: write, callMs: 0, returnMs: 10, ...ok },
 *   { id: 2, input: read, output: [1, 0], callMs: 2, returnMs: 3, ...ok },
 * ]);
 * assert.equal(torn.status, "fail");
 * ```
 */
export function multiRegisterModel<V = unknown>(
  options: RegisterOptions<V> = {},
): Model<KvState<V>, MultiRegisterInput<V>, readonly (V | null)[]> {
  const initial = options.initial ?? null;
  return {
    init: () => new Map(),
    step(state, input, output) {
      let after: Map<string, V | null> | undefined;
      let read = 0;
      for (const step of input.steps) {
        const current = after ?? state;
        if (step.kind === "write") {
          after = new Map(current).set(step.key, step.value);
          continue;
        }
        const value = current.has(step.key) ? current.get(step.key)! : initial;
        if (output !== undefined && !sameValue(output[read], value)) return undefined;
        read++;
      }
      return after ?? state;
    },
    readOnly: (input) => input.steps.every((step) => step.kind === "read"),
    key: mapKey,
    partition: byConnectedKeys,
  };
}

/** Splits transactions into groups that share no key (union-find over their keys). */
function byConnectedKeys<T extends { readonly input: MultiRegisterInput<unknown> }>(
  ops: readonly T[],
): T[][] {
  const parent = new Map<string, string>();
  const find = (key: string): string => {
    let root = key;
    while (parent.get(root) !== root) root = parent.get(root) ?? root;
    return root;
  };
  for (const op of ops) {
    for (const step of op.input.steps) if (!parent.has(step.key)) parent.set(step.key, step.key);
    const [first, ...rest] = op.input.steps.map((step) => find(step.key));
    for (const root of rest) parent.set(root, first!);
  }
  const parts = new Map<string, T[]>();
  for (const op of ops) {
    const root = find(op.input.steps[0]!.key);
    const part = parts.get(root);
    if (part === undefined) parts.set(root, [op]);
    else part.push(op);
  }
  return [...parts.values()];
}

/** An operation on one key of a store of lists: read the list, append to it, or replace it. */
export type AppendKvInput<V = unknown> =
  | { readonly kind: "read"; readonly key: string }
  | { readonly kind: "append"; readonly key: string; readonly value: V }
  | { readonly kind: "write"; readonly key: string; readonly value: readonly V[] };

/** The state of a store of lists: the keys written so far and their lists. */
export type AppendKvState<V = unknown> = ReadonlyMap<string, readonly V[]>;

/**
 * A key-value store of lists, each initially empty, partitioned by key: `append` adds a
 * value to the end of the key's list, `write` replaces the list (`[]` empties it), and a
 * read answers the whole list. This is the shape of porcupine's key-value model (there,
 * strings concatenated) and of Jepsen's list-append workloads, one key per operation.
 *
 * @example A read that misses an append which completed before it is not linearizable
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLinearizability } from "./linearizability.ts";
 * import { appendKvModel } from "./models.ts";
 *
 * const ok = { outcome: "ok" } as const;
 * const result = checkLinearizability(appendKvModel<number>(), [
 *   { id: 1, input: { kind: "append", key: "k", value: 1 }, callMs: 0, returnMs: 1, ...ok },
 *   { id: 2, input: { kind: "append", key: "k", value: 2 }, callMs: 2, returnMs: 3, ...ok },
 *   { id: 3, input: { kind: "read", key: "k" }, output: [2], callMs: 4, returnMs: 5, ...ok },
 * ]);
 * assert.equal(result.status, "fail");
 * ```
 */
export function appendKvModel<V = unknown>(): Model<
  AppendKvState<V>,
  AppendKvInput<V>,
  readonly V[]
> {
  const empty: readonly V[] = [];
  return {
    init: () => new Map(),
    step(state, input, output) {
      const before = state.get(input.key) ?? empty;
      switch (input.kind) {
        case "read":
          return output === undefined || sameValue(output, before) ? state : undefined;
        case "append":
          return new Map(state).set(input.key, [...before, input.value]);
        case "write":
          return new Map(state).set(input.key, input.value);
      }
    },
    readOnly: (input) => input.kind === "read",
    key: mapKey,
    partition: byKey,
  };
}

function mapKey(state: ReadonlyMap<string, unknown>): string {
  const keys = [...state.keys()].sort();
  return JSON.stringify(keys.map((k) => [k, valueKey(state.get(k))]));
}
