/**
 * Checks a recorded history against a sequential model (`check-history --model NAME`):
 * is there an order of its operations, each taking effect at one instant between its
 * call and its return, that the model accepts? The models:
 *
 * - `register`: one register (every op on one key): read, write, delete;
 * - `cas-register`: the same with compare-and-set;
 * - `kv`: a compare-and-set register per key, each key checked on its own;
 * - `append-kv`: a list per key (reads return the whole list), appended to, replaced by a
 *   write or emptied by a delete, each key checked on its own;
 * - `multi-register`: registers read and written by transactions (`txn` ops) of several
 *   steps at one instant (Knossos's), keys checked apart unless a transaction connects
 *   them.
 *
 * `fail` ops are dropped (they certainly did not happen); `unknown` ops may take effect at
 * any point after their call, or never; reads whose outcome is not `ok` say nothing and
 * are dropped; invalidations are cache operations and are ignored. Keys are searched in
 * turns of doubling length, and the search stops at the first key that fails: the keys
 * without an answer then are `skipped`.
 *
 * @module
 */

import type { History, HistoryOp, TxnStep } from "../history.ts";
import {
  checkLinearizability,
  type Counterexample,
  type LinearizabilityResult,
  type Model,
  type Operation,
  type PartitionStatus,
  STEPS_MAX_DEFAULT,
} from "./linearizability.ts";
import { type KvInput, type MultiRegisterInput, multiRegisterModel } from "./models.ts";
import { showValue } from "./_value.ts";
import { readFound } from "./_version_checks.ts";
import { validateHistory } from "./validate_history.ts";
import { explainCounterexample, type ShowState } from "./_explain.ts";
import {
  type InternedAppendInput,
  internedAppendKvModel,
  internedKvModel,
  ListTrie,
  Tokens,
} from "./_interned_models.ts";

/**
 * The models {@linkcode checkModel} checks against.
 *
 * @example Validating a model name from a command line
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODEL_NAMES } from "./model_check.ts";
 *
 * assert.ok((MODEL_NAMES as readonly string[]).includes("cas-register"));
 * ```
 */
export const MODEL_NAMES = [
  "register",
  "cas-register",
  "kv",
  "append-kv",
  "multi-register",
] as const;

/** A model {@linkcode checkModel} checks against. */
export type ModelName = typeof MODEL_NAMES[number];

/** Options of {@linkcode checkModel}. */
export interface CheckModelOptions {
  /**
   * The most model steps the search may take on one key before that key is `unknown`.
   * @default {100000}
   */
  readonly stepsMax?: number;
  /**
   * The most model steps the search may take on all keys together; keys without an answer
   * when it runs out are `unknown`, and so is the result.
   * @default {Infinity}
   */
  readonly stepsTotalMax?: number;
  /**
   * The value of every register (every key, with `kv`) before any write. Not for
   * `append-kv`, whose lists start empty.
   * @default {null}
   */
  readonly initial?: unknown;
}

/**
 * The verdict: `pass` (linearizable), `fail` (not), `unknown` (the search ran out of
 * budget before an answer), or `empty` (no operation to check).
 */
export type ModelCheckStatus = "pass" | "fail" | "unknown" | "empty";

/** The result of one key. */
export interface KeyCheck {
  /** The key. */
  readonly key: string;
  /** `skipped`: its search was stopped before an answer because another key failed. */
  readonly status: PartitionStatus;
  /** Operations checked on this key (`fail` ones and reads that said nothing left out). */
  readonly ops: number;
  /** Model steps the search took. */
  readonly steps: number;
  /** For a failing key: why, in a sentence with the values. */
  readonly explanation?: string;
  /** For a failing key: the op that could not take effect, then the last ones linearized. */
  readonly involved?: readonly number[];
  /** For a failing key: a shortest history the model cannot explain. */
  readonly counterexample?: Counterexample;
}

/** The result of {@linkcode checkModel}. */
export interface CheckModelResult {
  /** The model checked against. */
  readonly model: ModelName;
  /** `fail` if a key fails, else `unknown` if one ran out of budget, else `pass` (`empty`: nothing to check). */
  readonly status: ModelCheckStatus;
  /** Per key, in the order of their first op. */
  readonly keys: readonly KeyCheck[];
  /** What the check counted. */
  readonly stats: {
    /** Ops in the history. */
    readonly ops: number;
    /** Ops given to the search. */
    readonly checked: number;
    /** `fail` ops, dropped. */
    readonly failed: number;
    /** Ops whose outcome is unknown, open to the end of the history. */
    readonly unknown: number;
    /** Model steps taken. */
    readonly steps: number;
  };
}

/**
 * Checks that a history is linearizable with respect to a model.
 *
 * @throws {TypeError} if the model name is unknown, the history is malformed
 * (`validateHistory`) or malformed for the model (an op kind the model does not have, a
 * read of a list that is not an array, several keys for a one-register model), naming the
 * op and the offending value.
 * @throws {RangeError} if a budget is out of range.
 *
 * @example A compare-and-set register with a timed-out write
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkModel } from "./model_check.ts";
 *
 * const op = { key: "r", process: 1, outcome: "ok" } as const;
 * const result = checkModel({
 *   format: "warp-history/1",
 *   keys: {},
 *   ops: [
 *     { ...op, id: 1, kind: "write", value: 1, invokeMs: 0, completeMs: 1 },
 *     { ...op, id: 2, kind: "write", value: 2, invokeMs: 2, completeMs: null, outcome: "unknown" },
 *     { ...op, id: 3, kind: "cas", expected: 2, value: 3, invokeMs: 5, completeMs: 6 },
 *     { ...op, id: 4, kind: "read", value: 3, invokeMs: 7, completeMs: 8 },
 *   ],
 * }, "cas-register");
 * assert.equal(result.status, "pass");
 * ```
 */
export function checkModel(
  history: History,
  model: ModelName,
  options: CheckModelOptions = {},
): CheckModelResult {
  if (!MODEL_NAMES.includes(model)) {
    throw new TypeError(`Unknown model, expected one of ${MODEL_NAMES.join(", ")}: ${model}`);
  }
  if (model === "append-kv" && options.initial !== undefined && options.initial !== null) {
    throw new TypeError(
      `Invalid initial for append-kv, its lists start empty: ${showValue(options.initial)}`,
    );
  }
  validateHistory(history, { against: "model" });
  const byId = new Map<number, HistoryOp>();
  for (const op of history.ops) {
    if (opTiming(op, model) !== undefined) byId.set(op.id, op);
  }
  if (model === "register" || model === "cas-register") oneKey(byId, model);
  const search = model === "append-kv"
    ? searchAppendKv([...byId.values()], options)
    : model === "multi-register"
    ? searchMultiRegister([...byId.values()], options)
    : searchRegisters([...byId.values()], model, options);
  const keys = search.result.partitions.map((partition): KeyCheck => {
    const key = partitionKey(partition.ops.map((id) => byId.get(id)!));
    const base = {
      key,
      status: partition.status,
      ops: partition.ops.length,
      steps: partition.steps,
    };
    if (partition.counterexample === undefined) return base;
    const { ops, message } = explainCounterexample(
      key,
      partition.counterexample,
      byId,
      search.showState,
    );
    return {
      ...base,
      explanation: message,
      involved: ops,
      counterexample: partition.counterexample,
    };
  });
  let failed = 0;
  let unknown = 0;
  for (const op of history.ops) {
    if (op.outcome === "fail") failed++;
    else if (op.outcome === "unknown") unknown++;
  }
  let checked = 0;
  for (const op of byId.values()) if (op.outcome !== "fail") checked++;
  return {
    model,
    status: checked === 0 ? "empty" : search.result.status,
    keys,
    stats: { ops: history.ops.length, checked, failed, unknown, steps: search.result.steps },
  };
}

interface Search {
  readonly result: LinearizabilityResult;
  readonly showState: ShowState;
}

const KINDS_OF: Readonly<Record<ModelName, ReadonlySet<string>>> = {
  "register": new Set(["read", "write", "delete"]),
  "cas-register": new Set(["read", "write", "delete", "cas"]),
  "kv": new Set(["read", "write", "delete", "cas"]),
  "append-kv": new Set(["read", "write", "delete", "append"]),
  "multi-register": new Set(["read", "write", "delete", "txn"]),
};

/** The op's call, return and outcome for the search; `undefined` if it says nothing. */
function opTiming(op: HistoryOp, model: ModelName) {
  if (op.kind === "invalidate") return undefined;
  if (!KINDS_OF[model].has(op.kind)) {
    const hint = op.kind === "cas"
      ? " (use cas-register or kv)"
      : op.kind === "append"
      ? " (use append-kv)"
      : op.kind === "txn"
      ? " (use multi-register)"
      : "";
    throw new TypeError(
      `Invalid op ${op.id}, kind is not an op of model ${model}${hint}: ${op.kind}`,
    );
  }
  if (op.kind === "read" && op.outcome !== "ok") return undefined;
  return { id: op.id, callMs: op.invokeMs, returnMs: op.completeMs, outcome: op.outcome };
}

function searchRegisters(
  ops: readonly HistoryOp[],
  model: ModelName,
  options: CheckModelOptions,
): Search {
  const tokens = new Tokens();
  const operations: Operation<KvInput<number>, number | null | boolean>[] = ops.map((op) => {
    const base = opTiming(op, model)!;
    const key = op.key;
    switch (op.kind) {
      case "read":
        return { ...base, input: { kind: "read", key }, output: readTokens(op, tokens) };
      case "cas": {
        const expected = tokens.of(op.expected);
        const input = { kind: "cas", key, expected, value: tokens.of(op.value) } as const;
        return { ...base, input, output: op.swapped ?? true };
      }
      default: {
        const value = op.kind === "write" ? tokens.of(op.value) : null;
        return { ...base, input: { kind: "write", key, value } };
      }
    }
  });
  const initial = tokens.of(options.initial);
  const interned = internedKvModel(initial);
  const result = checkLinearizability(interned, operations, budgets(options));
  const showState: ShowState = (linearized) => {
    const value = tokens.valueOf(replay(interned, operations, linearized));
    return value === null ? undefined : showValue(value);
  };
  return { result, showState };
}

function readTokens(op: HistoryOp, tokens: Tokens): number | null {
  return readFound(op) ? tokens.of(op.value) : null;
}

function searchAppendKv(ops: readonly HistoryOp[], options: CheckModelOptions): Search {
  const tokens = new Tokens();
  const listOf = (op: HistoryOp, value: unknown, what: string): number[] => {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) {
      throw new TypeError(
        `Invalid op ${op.id}, ${what} of an append-kv key must be an array: ${showValue(value)}`,
      );
    }
    return value.map((element) => tokens.of(element) ?? tokens.of([null])!);
  };
  const lists = ops.map((op) =>
    op.kind === "read"
      ? (readFound(op) ? listOf(op, op.value, "the value read") : [])
      : op.kind === "write"
      ? listOf(op, op.value, "the value written")
      : op.kind === "append"
      ? [tokens.of(op.value) ?? tokens.of([null])!]
      : []
  );
  const trie = new ListTrie();
  const operations: Operation<InternedAppendInput, number>[] = ops.map((op, i) => {
    const base = opTiming(op, "append-kv")!;
    const key = op.key;
    const list = lists[i]!;
    switch (op.kind) {
      case "read":
        return { ...base, input: { kind: "read", key }, output: trie.of(list) };
      case "append":
        return { ...base, input: { kind: "append", key, value: list[0]! } };
      default:
        return { ...base, input: { kind: "write", key, list: trie.of(list) } };
    }
  });
  const writes = new Map<string, { id: number; list: number }[]>();
  for (const op of operations) {
    if (op.input.kind !== "write" || op.outcome === "fail") continue;
    const write = { id: op.id, list: op.input.list };
    const lists = writes.get(op.input.key);
    if (lists === undefined) writes.set(op.input.key, [write]);
    else lists.push(write);
  }
  const interned = internedAppendKvModel(trie, writes);
  const result = checkLinearizability(interned, operations, budgets(options));
  const showState: ShowState = (linearized) => {
    const node = replay(interned, operations, linearized);
    return showValue(trie.tokens(node).map((token) => tokens.valueOf(token)));
  };
  return { result, showState };
}

function searchMultiRegister(ops: readonly HistoryOp[], options: CheckModelOptions): Search {
  const operations = ops.map((op): Operation<MultiRegisterInput, readonly unknown[]> => {
    const base = opTiming(op, "multi-register")!;
    const steps: readonly TxnStep[] = op.kind === "txn"
      ? op.txn!
      : [{ kind: op.kind === "read" ? "read" : "write", key: op.key, value: op.value ?? null }];
    const input = {
      steps: steps.map((step) =>
        step.kind === "read" ? { kind: "read", key: step.key } as const : {
          kind: "write",
          key: step.key,
          value: op.kind === "delete" ? null : step.value,
        } as const
      ),
    };
    if (op.outcome !== "ok") return { ...base, input };
    const output = op.kind === "read"
      ? [readFound(op) ? op.value : null]
      : steps.filter((step) => step.kind === "read").map((step) => step.value ?? null);
    return { ...base, input, output };
  });
  const model = multiRegisterModel({ initial: options.initial ?? null });
  const result = checkLinearizability(model, operations, budgets(options));
  const showState: ShowState = (linearized) => {
    const state = replay(model, operations, linearized);
    const keys = new Set(linearized.flatMap((id) => {
      const op = operations.find((o) => o.id === id)!;
      return op.input.steps.map((step) => step.key);
    }));
    const shown = [...keys].sort().map((key) =>
      `${key} = ${showValue(state.has(key) ? state.get(key) : options.initial ?? null)}`
    );
    return shown.length === 0 ? undefined : shown.join(", ");
  };
  return { result, showState };
}

/** A partition's name: its key, or its keys joined by commas (transactions connect keys). */
function partitionKey(ops: readonly HistoryOp[]): string {
  const keys = new Set<string>();
  for (const op of ops) {
    if (op.kind === "txn") { for (const step of op.txn!) keys.add(step.key); }
    else keys.add(op.key);
  }
  return [...keys].sort().join(",");
}

function budgets(options: CheckModelOptions) {
  return {
    stepsMax: options.stepsMax ?? STEPS_MAX_DEFAULT,
    ...(options.stepsTotalMax === undefined ? {} : { stepsTotalMax: options.stepsTotalMax }),
  };
}

/** The state after the ops linearized (all of one key), replayed through the model. */
function replay<S, I, O>(
  model: Model<S, I, O>,
  operations: readonly Operation<I, O>[],
  linearized: readonly number[],
): S {
  const byId = new Map(operations.map((op) => [op.id, op]));
  let state = model.init();
  for (const id of linearized) {
    const op = byId.get(id)!;
    const after = model.step(state, op.input, op.outcome === "ok" ? op.output : undefined);
    if (after !== undefined) state = after; // null is a state: the key absent
  }
  return state;
}

function oneKey(byId: ReadonlyMap<number, HistoryOp>, model: ModelName): void {
  const keys = new Set<string>();
  for (const op of byId.values()) keys.add(op.key);
  if (keys.size <= 1) return;
  const shown = [...keys].slice(0, 5).map(showValue).join(", ");
  throw new TypeError(
    `Model ${model} checks one register, use kv for several keys; the ops name ${keys.size} ` +
      `keys: ${shown}${keys.size > 5 ? ", ..." : ""}`,
  );
}
