/**
 * Imports a Jepsen or Knossos history file (EDN) as a {@linkcode History}, to check it
 * with `checkModel` or `check-history FILE.edn`.
 *
 * What it reads: a sequence of op maps (in a vector, a list, or one per line, as Jepsen's
 * `history.edn` writes them) with `:process`, `:type` (`:invoke`, `:ok`, `:fail`,
 * `:info`), `:f` (`:read`, `:write`, `:cas`) and `:value`:
 *
 * - a register: `:value` is a number, string, keyword or `nil`, or `[expected new]` for a
 *   cas (`{:process 3, :type :invoke, :f :cas, :value [1 2]}`);
 * - independent registers (`jepsen.independent`, Jepsen's multi-register tests): every
 *   `:value` is a `[key value]` tuple (`[7 [1 2]]` for a cas on key 7);
 * - Knossos multi-register transactions (`:f :txn`, `:value [[:read :x nil] [:write :y 2]]`):
 *   one of a single micro-op is imported as that op on its key; one of several as a `txn`
 *   op, to check with `multi-register` (a read's `nil` there is the register absent).
 *
 * Each invocation pairs with the next completion of the same process. `:ok` ops happened;
 * `:fail` ops did not (dropped; a failed cas did nothing); `:info` ops and invocations never
 * completed may have happened at any time after their call (unknown). Ops of a process
 * that is not an integer (`:nemesis`) are left out. Time is the position in the file (the
 * order Jepsen recorded): an op's times are the indices of its events, `:time` is not
 * used. An op's id is the line of its invocation (or its rank, if two invocations share a
 * line), so a report's op ids point into the file. As in
 * Knossos, an `:ok` read of `nil` says nothing of the value (it is imported as a read of
 * unknown outcome) unless `nilRead` is `"absent"`.
 *
 * Refused with the line and the reason: other `:f`s and micro-ops, a completion with no
 * invocation pending, a transaction completed with other steps, an invocation while one is pending, values of
 * the wrong shape.
 *
 * @module
 */

import { type History, HISTORY_FORMAT, type HistoryOp, type TxnStep } from "../history.ts";
import { EdnSet, EdnSymbol, type EdnValue, Keyword, readEdn, Tagged } from "./_edn.ts";

/** Options of {@linkcode importJepsenHistory}. */
export interface JepsenImportOptions {
  /**
   * What an `:ok` read of `nil` means: `unknown` (Knossos's reading: the value was not
   * recorded) or `absent` (the register held nothing).
   * @default {"unknown"}
   */
  readonly nilRead?: "unknown" | "absent";
}

/** The result of {@linkcode importJepsenHistory}. */
export interface JepsenImport {
  /** The history in Warp's format. */
  readonly history: History;
  /** Whether the values were `[key value]` tuples: check with `kv` rather than `cas-register`. */
  readonly keyed: boolean;
  /** Whether there are transactions of several micro-ops: check with `multi-register`. */
  readonly transactions: boolean;
  /** Ops of non-client processes (`:nemesis`) left out. */
  readonly ignored: number;
}

/**
 * The key of a single-register history's ops.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { importJepsenHistory, REGISTER_KEY } from "./jepsen.ts";
 *
 * const { history } = importJepsenHistory("{:process 0, :type :invoke, :f :read, :value nil}");
 * assert.equal(history.ops[0]?.key, REGISTER_KEY);
 * ```
 */
export const REGISTER_KEY = "register";

interface Event {
  readonly line: number;
  readonly process: number | string;
  readonly type: "invoke" | "ok" | "fail" | "info";
  readonly f: string;
  readonly value: EdnValue;
}

/**
 * Reads a Jepsen/Knossos EDN history.
 *
 * @throws {SyntaxError} for text that is not EDN, naming the line and column.
 * @throws {TypeError} for an op this importer does not support or a malformed history,
 * naming the line, the problem and the offending value.
 *
 * @example A cas register with a timed-out write
 * ```ts
 * import assert from "node:assert/strict";
 * import { importJepsenHistory } from "./jepsen.ts";
 * import { checkModel } from "./model_check.ts";
 *
 * const { history, keyed } = importJepsenHistory(`
 *   {:process 0, :type :invoke, :f :write, :value 1}
 *   {:process 0, :type :ok, :f :write, :value 1}
 *   {:process 1, :type :invoke, :f :write, :value 2}
 *   {:process 1, :type :info, :f :write, :value 2}
 *   {:process 2, :type :invoke, :f :cas, :value [2 3]}
 *   {:process 2, :type :ok, :f :cas, :value [2 3]}
 *   {:process 0, :type :invoke, :f :read, :value nil}
 *   {:process 0, :type :ok, :f :read, :value 3}
 * `);
 * assert.equal(keyed, false);
 * assert.equal(history.ops.length, 4);
 * assert.equal(checkModel(history, "cas-register").status, "pass");
 * ```
 */
export function importJepsenHistory(text: string, options: JepsenImportOptions = {}): JepsenImport {
  const nilRead = options.nilRead ?? "unknown";
  if (nilRead !== "unknown" && nilRead !== "absent") {
    throw new TypeError(`Invalid nilRead, expected "unknown" or "absent": ${nilRead}`);
  }
  const { events, ignored } = readEvents(text);
  const keyed = isKeyed(events);
  const invokeLines = events.filter((e) => e.type === "invoke").map((e) => e.line);
  const byLine = new Set(invokeLines).size === invokeLines.length;
  const ops: HistoryOp[] = [];
  const index = new Map<number, number>();
  const pending = new Map<number | string, { op: HistoryOp; event: Event }>();
  events.forEach((event, at) => {
    const open = pending.get(event.process);
    if (event.type === "invoke") {
      if (open !== undefined) {
        fail(
          event,
          `process ${event.process} invokes while its op of line ${open.event.line} is pending`,
          event.process,
        );
      }
      const op = invocation(event, byLine ? event.line : ops.length + 1, at, keyed);
      index.set(op.id, ops.length);
      ops.push(op);
      pending.set(event.process, { op, event });
      return;
    }
    if (open === undefined) {
      fail(event, `:${event.type} of process ${event.process} with no invocation pending`, event.f);
    }
    if (open!.event.f !== event.f) {
      fail(event, `completes an invocation of :${open!.event.f} with :f`, `:${event.f}`);
    }
    pending.delete(event.process);
    ops[index.get(open!.op.id)!] = completion(open!.op, event, at, keyed, nilRead);
  });
  const transactions = ops.some((op) => op.kind === "txn");
  return { history: { format: HISTORY_FORMAT, keys: {}, ops }, keyed, transactions, ignored };
}

function readEvents(text: string): { events: Event[]; ignored: number } {
  const read = readEdn(text);
  let forms = read.forms;
  // A file holding one vector or list of ops, rather than one op per line.
  if (forms.length === 1 && Array.isArray(forms[0]!.value)) {
    const line = forms[0]!.line;
    forms = (forms[0]!.value as EdnValue[]).map((value) => ({
      value,
      line: value instanceof Map ? read.mapLines.get(value) ?? line : line,
    }));
  }
  const events: Event[] = [];
  let ignored = 0;
  for (const { value, line } of forms) {
    if (!(value instanceof Map)) {
      throw new TypeError(`Invalid op at line ${line}, expected a map: ${show(value)}`);
    }
    const at = { line };
    const process = value.get(":process");
    const type = keywordName(value.get(":type"));
    const f = keywordName(value.get(":f"));
    if (typeof process !== "number") {
      if (process instanceof Keyword) {
        ignored++;
        continue;
      }
      fail(at, ":process must be an integer, or a keyword such as :nemesis", process);
    }
    if (!Number.isInteger(process)) fail(at, ":process must be an integer", process);
    if (type !== "invoke" && type !== "ok" && type !== "fail" && type !== "info") {
      fail(at, ":type must be :invoke, :ok, :fail or :info", value.get(":type"));
    }
    if (f === undefined) fail(at, ":f must be a keyword", value.get(":f"));
    events.push({
      line,
      process: process as number,
      type: type!,
      f: f!,
      value: value.get(":value") ?? null,
    });
  }
  return { events, ignored };
}

/** The op an invocation starts (its outcome unknown until its completion). */
function invocation(event: Event, id: number, index: number, keyed: boolean): HistoryOp {
  if (isMultiStep(event)) {
    const txn = txnSteps(event);
    return {
      id,
      process: event.process,
      key: txn[0]!.key,
      kind: "txn",
      txn,
      invokeMs: index,
      completeMs: null,
      outcome: "unknown",
    };
  }
  const { key, kind, value } = unpack(event, keyed);
  const base = {
    id,
    process: event.process,
    key,
    invokeMs: index,
    completeMs: null,
    outcome: "unknown",
  } as const;
  switch (kind) {
    case "read":
      return { ...base, kind };
    case "write":
      return { ...base, kind, value: toJson(value, event) };
    case "cas": {
      if (!Array.isArray(value) || value.length !== 2) {
        fail(event, "a cas :value must be [expected new]", value);
      }
      const [expected, next] = value as EdnValue[];
      return { ...base, kind, expected: toJson(expected!, event), value: toJson(next!, event) };
    }
  }
}

function completion(
  op: HistoryOp,
  event: Event,
  index: number,
  keyed: boolean,
  nilRead: "unknown" | "absent",
): HistoryOp {
  if (event.type === "info") return op;
  if (event.type === "fail") return { ...op, completeMs: index, outcome: "fail" };
  const done = { ...op, completeMs: index, outcome: "ok" } as const;
  if (op.kind === "txn") {
    const steps = isMultiStep(event) ? txnSteps(event) : [];
    const same = steps.length === op.txn!.length &&
      steps.every((step, i) => step.kind === op.txn![i]!.kind && step.key === op.txn![i]!.key);
    if (!same) fail(event, "completes a transaction with other steps", event.value);
    return { ...done, txn: steps };
  }
  if (op.kind !== "read") return done;
  const { key, value } = unpack(event, keyed);
  if (key !== op.key) fail(event, `completes a read of key ${op.key} with key`, key);
  if (value === null) {
    return nilRead === "absent" ? { ...done, found: false } : { ...done, outcome: "unknown" };
  }
  return { ...done, value: toJson(value, event), found: true };
}

/** A Knossos transaction of several micro-ops, `:f :txn, :value [[:read :x nil] ...]`. */
function isMultiStep(event: Event): boolean {
  return event.f === "txn" && Array.isArray(event.value) && event.value.length > 1;
}

/** A transaction's steps; a read's value is `null` until its completion says (nil: absent). */
function txnSteps(event: Event): TxnStep[] {
  return (event.value as EdnValue[]).map((micro) => {
    if (!Array.isArray(micro) || micro.length !== 3) {
      fail(event, "a transaction's micro-ops must be [f key value]", micro);
    }
    const [f, key, value] = micro as EdnValue[];
    const name = keywordName(f!);
    const kind = name === "read" || name === "r"
      ? "read"
      : name === "write" || name === "w"
      ? "write"
      : undefined;
    if (kind === undefined) fail(event, "unsupported micro-op (supported: :read, :write)", f);
    return { kind: kind!, key: keyOf(key!, event), value: toJson(value!, event) };
  });
}

/** The key, the kind and the value of an event, from its `:f` and `:value`. */
function unpack(event: Event, keyed: boolean) {
  let f = event.f;
  let value = event.value;
  let key = REGISTER_KEY;
  if (f === "txn") {
    if (
      !Array.isArray(value) || value.length !== 1 || !Array.isArray(value[0]) ||
      value[0].length !== 3
    ) {
      fail(event, "a transaction's :value must be a vector of micro-ops [f key value]", value);
    }
    const [microF, microKey, microValue] = (value as EdnValue[][])[0]!;
    f = keywordName(microF) ?? "";
    key = keyOf(microKey!, event);
    value = microValue!;
  } else if (keyed) {
    const tuple = value as EdnValue[];
    key = keyOf(tuple[0]!, event);
    value = tuple[1]!;
  }
  const kind = f === "read" || f === "r" ? "read" : f === "write" || f === "w" ? "write" : f;
  if (kind !== "read" && kind !== "write" && kind !== "cas") {
    fail(
      event,
      "unsupported :f (supported: :read, :write, :cas, :txn)",
      `:${f}`,
    );
  }
  return { key, kind: kind as "read" | "write" | "cas", value };
}

/**
 * Whether values are `[key value]` tuples (`jepsen.independent`): every read's and
 * write's value is a pair, and every cas's is a pair whose second element is a pair. A
 * history with a single-register read of `nil` or write of a non-pair is not.
 */
function isKeyed(events: readonly Event[]): boolean {
  const invokes = events.filter((e) => e.type === "invoke" && e.f !== "txn");
  if (invokes.length === 0) return false;
  return invokes.every((e) =>
    isPair(e.value) && (e.f !== "cas" || isPair((e.value as EdnValue[])[1]!))
  );
}

function isPair(value: EdnValue): boolean {
  return Array.isArray(value) && value.length === 2;
}

function keyOf(value: EdnValue, at: { line: number }): string {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  if (value instanceof Keyword) return value.name;
  return fail(at, "a key must be a number, a string or a keyword", value);
}

/** An EDN value as JSON data: keywords become ":name" strings, vectors arrays, maps objects. */
function toJson(value: EdnValue, at: { line: number }): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Keyword) return `:${value.name}`;
  if (Array.isArray(value)) return value.map((v) => toJson(v, at));
  if (value instanceof Map) {
    return Object.fromEntries([...value].map(([k, v]) => [k, toJson(v, at)]));
  }
  return fail(at, "unsupported value (sets, symbols and tagged values are not)", value);
}

function keywordName(value: EdnValue | undefined): string | undefined {
  return value instanceof Keyword ? value.name : undefined;
}

function fail(at: { readonly line: number }, problem: string, got: unknown): never {
  throw new TypeError(`Invalid op at line ${at.line}, ${problem}: ${show(got)}`);
}

function show(value: unknown): string {
  if (value === null) return "nil";
  if (value === undefined) return "nothing";
  if (value instanceof Keyword || value instanceof EdnSymbol) return value.toString();
  if (value instanceof Tagged) return `#${value.tag} ...`;
  if (value instanceof EdnSet) return "#{...}";
  if (Array.isArray(value)) return `[${value.map(show).join(" ")}]`;
  if (value instanceof Map) {
    const text = `{${[...value].map(([k, v]) => `${k} ${show(v)}`).join(", ")}}`;
    return text.length > 80 ? text.slice(0, 77) + "..." : text;
  }
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}
