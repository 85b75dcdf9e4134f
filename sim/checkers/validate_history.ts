/**
 * Validation of a history read from anywhere (a file, another system's recorder) before
 * the checkers trust it.
 *
 * @module
 */

import { type History, HISTORY_FORMAT } from "../history.ts";
import { showValue } from "./_value.ts";

const MODES: ReadonlySet<unknown> = new Set([
  "strong-local",
  "eventual-distributed",
  "strong-distributed",
]);
const CONTRACT_KINDS: ReadonlySet<unknown> = new Set(["read", "write", "delete", "invalidate"]);
const MODEL_KINDS: ReadonlySet<unknown> = new Set([...CONTRACT_KINDS, "cas", "append", "txn"]);
const OUTCOMES: ReadonlySet<unknown> = new Set(["ok", "fail", "unknown"]);
const SOURCES: ReadonlySet<unknown> = new Set(["l1", "store"]);

/** Options of {@linkcode validateHistory}. */
export interface ValidateHistoryOptions {
  /**
   * What the history will be checked against: `contract` (Warp's guarantees: every op's
   * key must be described in `keys`, and `cas` and `append` ops are refused, since no
   * guarantee covers them) or `model` (a sequential model: `keys` may be absent, and
   * `cas` and `append` ops are allowed). With `model`, a history without `keys` comes
   * back with `keys: {}`.
   * @default {"contract"}
   */
  readonly against?: "contract" | "model";
}

/**
 * Checks that a value is a well-formed {@linkcode History} and returns it typed. Besides
 * the types it checks that op ids are unique, every op's key is described in `keys`
 * (against the contract), an op completes no earlier than it is invoked, an `ok` op has a
 * completion time, a write records its value, an `ok` read that found a value records it,
 * and a cas records `expected` and `value`.
 *
 * @throws {TypeError} naming the first problem found, where (the op's id or index), and
 * the offending value.
 *
 * @example Parsing a history file
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateHistory } from "./validate_history.ts";
 *
 * const history = validateHistory(JSON.parse(
 *   '{"format":"warp-history/1","keys":{"k":{"mode":"strong-distributed"}},"ops":[]}',
 * ));
 * assert.equal(history.ops.length, 0);
 * assert.throws(() => validateHistory({ format: "other" }), TypeError);
 * ```
 */
export function validateHistory(value: unknown, options: ValidateHistoryOptions = {}): History {
  const against = options.against ?? "contract";
  if (against !== "contract" && against !== "model") {
    throw new TypeError(`Invalid against, expected "contract" or "model": ${show(against)}`);
  }
  if (!isRecord(value)) throw new TypeError(`Invalid history, expected an object: ${show(value)}`);
  if (value.format !== HISTORY_FORMAT) {
    throw new TypeError(
      `Invalid history format, expected "${HISTORY_FORMAT}": ${show(value.format)}`,
    );
  }
  const keys = value.keys === undefined && against === "model" ? {} : value.keys;
  if (!isRecord(keys)) {
    const hint = keys === undefined
      ? " describing each key's mode (or check against a model: --model)"
      : "";
    throw new TypeError(`Invalid history keys, expected an object${hint}: ${show(keys)}`);
  }
  for (const [key, info] of Object.entries(keys)) validateKeyInfo(key, info);
  if (!Array.isArray(value.ops)) {
    throw new TypeError(`Invalid history ops, expected an array: ${show(value.ops)}`);
  }
  const ids = new Set<number>();
  value.ops.forEach((op: unknown, index: number) => {
    validateOp(op, index, against === "contract" ? keys : undefined);
    const id = (op as { id: number }).id;
    if (ids.has(id)) throw new TypeError(`Duplicate op id: ${id}`);
    ids.add(id);
  });
  if (value.final !== undefined) validateFinal(value.final);
  const updated = value.updates === undefined ? new Set<string>() : validateUpdates(value.updates);
  // Keys the validator part bounds (written behind Warp's back) may be in the store log too.
  const bounded = isRecord(value.validator) && isRecord(value.validator.keyBoundsMs)
    ? Object.keys(value.validator.keyBoundsMs)
    : [];
  if (value.storeLog !== undefined) {
    validateStoreLog(value.storeLog, keys, new Set([...updated, ...bounded]));
  }
  if (value.propagation !== undefined) validatePropagation(value.propagation, keys);
  if (value.clears !== undefined) validateClears(value.clears);
  if (value.transactions !== undefined) validateTransactions(value.transactions, ids);
  if (value.validator !== undefined) validateValidator(value.validator);
  return (keys === value.keys ? value : { ...value, keys }) as unknown as History;
}

function validateKeyInfo(key: string, info: unknown): void {
  if (!isRecord(info)) {
    throw new TypeError(`Invalid info of key ${key}, expected an object: ${show(info)}`);
  }
  if (!MODES.has(info.mode)) throw new TypeError(`Invalid mode of key ${key}: ${show(info.mode)}`);
  validateBounds(`key ${key}`, info);
  if (info.byProcess === undefined) return;
  if (!isRecord(info.byProcess)) {
    throw new TypeError(
      `Invalid byProcess of key ${key}, expected an object: ${show(info.byProcess)}`,
    );
  }
  for (const [process, bounds] of Object.entries(info.byProcess)) {
    if (!isRecord(bounds)) {
      throw new TypeError(
        `Invalid bounds of key ${key} on ${process}, expected an object: ${show(bounds)}`,
      );
    }
    validateBounds(`key ${key} on ${process}`, bounds);
  }
}

function validateBounds(what: string, bounds: Record<string, unknown>): void {
  for (const name of ["maxStalenessMs", "ttlMs"] as const) {
    const bound = bounds[name];
    if (
      bound !== undefined && !(typeof bound === "number" && Number.isFinite(bound) && bound >= 0)
    ) {
      throw new TypeError(`Invalid ${name} of ${what}, expected a number >= 0: ${show(bound)}`);
    }
  }
}

/** `keys` is undefined when the history is checked against a model. */
function validateOp(op: unknown, index: number, keys: Record<string, unknown> | undefined): void {
  if (!isRecord(op)) {
    throw new TypeError(`Invalid op at index ${index}, expected an object: ${show(op)}`);
  }
  if (!isFiniteNumber(op.id)) {
    throw new TypeError(`Invalid id of op at index ${index}: ${show(op.id)}`);
  }
  const fail = (problem: string, got: unknown): never => {
    throw new TypeError(`Invalid op ${op.id}, ${problem}: ${show(got)}`);
  };
  if (typeof op.process !== "string" && !isFiniteNumber(op.process)) {
    fail("process must be a string or a number", op.process);
  }
  if (typeof op.key !== "string") fail("key must be a string", op.key);
  if (keys !== undefined && !Object.hasOwn(keys, op.key as string)) {
    fail("key is not described in keys", op.key);
  }
  if (keys !== undefined && MODEL_KINDS.has(op.kind) && !CONTRACT_KINDS.has(op.kind)) {
    fail("kind is checked only against a model (--model), not Warp's contract", op.kind);
  }
  if (!MODEL_KINDS.has(op.kind)) fail("unknown kind", op.kind);
  if (!OUTCOMES.has(op.outcome)) fail("unknown outcome", op.outcome);
  if (!isFiniteNumber(op.invokeMs)) fail("invokeMs must be a finite number", op.invokeMs);
  if (op.completeMs !== null) {
    if (!isFiniteNumber(op.completeMs)) {
      fail("completeMs must be a finite number or null", op.completeMs);
    }
    if ((op.completeMs as number) < (op.invokeMs as number)) {
      fail("completes before it is invoked", op.completeMs);
    }
  } else if (op.outcome !== "unknown") {
    fail(`outcome ${op.outcome} needs a completeMs`, op.completeMs);
  }
  if (op.version !== undefined && !isFiniteNumber(op.version)) {
    fail("version must be a number", op.version);
  }
  if (op.found !== undefined && typeof op.found !== "boolean") {
    fail("found must be a boolean", op.found);
  }
  if (op.source !== undefined && !SOURCES.has(op.source)) fail("unknown source", op.source);
  if (op.ageMs !== undefined && !isFiniteNumber(op.ageMs)) {
    fail("ageMs must be a finite number", op.ageMs);
  }
  if (op.fetchedByMs !== undefined && !isFiniteNumber(op.fetchedByMs)) {
    fail("fetchedByMs must be a finite number", op.fetchedByMs);
  }
  if (op.probe !== undefined && typeof op.probe !== "boolean") {
    fail("probe must be a boolean", op.probe);
  }
  if ((op.kind === "write" || op.kind === "append") && op.value === undefined) {
    fail(`a ${op.kind} must record its value`, op.value);
  }
  if (op.kind === "cas") {
    if (op.expected === undefined) fail("a cas must record expected (null: absent)", op.expected);
    if (op.value === undefined) fail("a cas must record its value (null: absent)", op.value);
  }
  if (op.kind === "txn") validateTxn(op.txn, fail);
  else if (op.txn !== undefined) fail("txn steps are for a txn op", op.kind);
  if (op.swapped !== undefined && (op.kind !== "cas" || typeof op.swapped !== "boolean")) {
    fail("swapped must be a boolean, on a cas", op.swapped);
  }
  if (op.outcome === "ok" && op.kind === "read" && op.found === true && op.value === undefined) {
    fail("a read that found a value must record it", op.value);
  }
}

function validateTxn(txn: unknown, fail: (problem: string, got: unknown) => never): void {
  if (!Array.isArray(txn) || txn.length === 0) fail("a txn must list its steps in txn", txn);
  (txn as unknown[]).forEach((step, i) => {
    if (!isRecord(step) || (step.kind !== "read" && step.kind !== "write")) {
      fail(`txn step ${i} must be a read or a write`, step);
    }
    const { key, value } = step as Record<string, unknown>;
    if (typeof key !== "string") fail(`txn step ${i} needs a string key`, key);
    if (value === undefined) fail(`txn step ${i} must record its value (null: absent)`, step);
  });
}

function validateFinal(final: unknown): void {
  if (!isRecord(final)) {
    throw new TypeError(`Invalid history final, expected an object: ${show(final)}`);
  }
  for (const [key, entry] of Object.entries(final)) {
    if (!isRecord(entry) || !isFiniteNumber(entry.version)) {
      throw new TypeError(
        `Invalid final entry of key ${key}, expected { version, value }: ${show(entry)}`,
      );
    }
  }
}

/** Checks the validator part (V1): its verdicts and installs, each field of the right type. */
function validateValidator(validator: unknown): void {
  if (
    !isRecord(validator) || !Array.isArray(validator.verdicts) ||
    !Array.isArray(validator.installs) ||
    !(validator.checks === undefined || Number.isSafeInteger(validator.checks))
  ) {
    throw new TypeError(
      `Invalid history validator, expected { verdicts: [...], installs: [...] }: ${
        show(validator)
      }`,
    );
  }
  const bounds = validator.keyBoundsMs;
  if (
    bounds !== undefined &&
    (!isRecord(bounds) || !Object.values(bounds).every((b) => typeof b === "number" && b >= 0))
  ) {
    throw new TypeError(`Invalid history validator keyBoundsMs: ${show(bounds)}`);
  }
  const version = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const held = (v: unknown) => v === null || version(v);
  validator.verdicts.forEach((entry: unknown, index: number) => {
    if (
      !isRecord(entry) || typeof entry.process !== "string" || typeof entry.key !== "string" ||
      !VERDICTS.has(entry.verdict) || !version(entry.cachedVersion) ||
      !version(entry.storeVersion) || !(typeof entry.boundMs === "number") ||
      !Number.isFinite(entry.atMs) || !held(entry.heldVersion)
    ) throw new TypeError(`Invalid validator verdict ${index}: ${show(entry)}`);
  });
  validator.installs.forEach((entry: unknown, index: number) => {
    if (
      !isRecord(entry) || typeof entry.process !== "string" || typeof entry.key !== "string" ||
      !version(entry.version) || !held(entry.heldBefore) || !Number.isFinite(entry.atMs)
    ) throw new TypeError(`Invalid validator install ${index}: ${show(entry)}`);
  });
}

const VERDICTS = new Set<unknown>(["inconsistent", "deleted-in-store", "newer-than-store"]);

/** Checks the update part (M1, M2); returns the keys it updates (the store log may name them). */
function validateUpdates(updates: unknown): Set<string> {
  if (!isRecord(updates) || !Array.isArray(updates.ops)) {
    throw new TypeError(`Invalid history updates, expected { ops: [...] }: ${show(updates)}`);
  }
  const keys = new Set<string>();
  updates.ops.forEach((op: unknown, index: number) => {
    const o = (isRecord(op) ? op : {}) as Record<string, unknown>;
    const problem = !isRecord(op)
      ? "expected an object"
      : typeof o.key !== "string"
      ? "key must be a string"
      : o.kind !== "add" && o.kind !== "union" && o.kind !== "lww"
      ? `kind must be "add", "union" or "lww"`
      : o.outcome !== "ok" && o.outcome !== "fail" && o.outcome !== "unknown"
      ? "outcome must be ok, fail or unknown"
      : o.outcome === "ok" && !Number.isSafeInteger(o.version)
      ? "an ok update needs its version"
      : o.kind !== "add" && typeof o.element !== "string"
      ? `a ${o.kind} update needs its element`
      : undefined;
    if (problem !== undefined) {
      throw new TypeError(`Invalid update at index ${index}, ${problem}: ${show(op)}`);
    }
    keys.add(o.key as string);
  });
  return keys;
}

function validateStoreLog(
  log: unknown,
  keys: Record<string, unknown>,
  updated: ReadonlySet<string>,
): void {
  if (!Array.isArray(log)) {
    throw new TypeError(`Invalid history storeLog, expected an array: ${show(log)}`);
  }
  log.forEach((entry: unknown, index: number) => {
    const fail = (problem: string, got: unknown): never => {
      throw new TypeError(`Invalid storeLog entry at index ${index}, ${problem}: ${show(got)}`);
    };
    if (!isRecord(entry)) fail("expected an object", entry);
    const e = entry as Record<string, unknown>;
    if (typeof e.key !== "string" || !(Object.hasOwn(keys, e.key) || updated.has(e.key))) {
      fail("key is not described in keys", e.key);
    }
    if (!Number.isSafeInteger(e.version) || (e.version as number) < 1) {
      fail("version must be an integer >= 1", e.version);
    }
    if (!isFiniteNumber(e.atMs)) fail("atMs must be a finite number", e.atMs);
    if (e.deleted !== undefined && typeof e.deleted !== "boolean") {
      fail("deleted must be a boolean", e.deleted);
    }
    if (
      e.leases !== undefined &&
      !(Array.isArray(e.leases) && e.leases.every((l) => typeof l === "string"))
    ) {
      fail("leases must be an array of strings", e.leases);
    }
    if (e.tx !== undefined && !Number.isSafeInteger(e.tx)) fail("tx must be an integer", e.tx);
  });
}

/** Checks the transactions (T1): unique ids, each naming ops of the history. */
function validateTransactions(transactions: unknown, opIds: ReadonlySet<number>): void {
  if (!Array.isArray(transactions)) {
    throw new TypeError(`Invalid history transactions, expected an array: ${show(transactions)}`);
  }
  const ids = new Set<number>();
  transactions.forEach((tx: unknown, index: number) => {
    const t = isRecord(tx) ? tx : {};
    if (
      !Number.isSafeInteger(t.id) || ids.has(t.id as number) || !Array.isArray(t.ops) ||
      t.ops.length === 0 || !t.ops.every((id) => opIds.has(id)) ||
      !["ok", "fail", "unknown"].includes(t.outcome as string)
    ) {
      throw new TypeError(
        `Invalid transaction at index ${index}, expected { id (unique), ops (ids of ops), outcome }: ${
          show(tx)
        }`,
      );
    }
    ids.add(t.id as number);
  });
}

function validateClears(clears: unknown): void {
  if (!Array.isArray(clears)) {
    throw new TypeError(`Invalid history clears, expected an array: ${show(clears)}`);
  }
  clears.forEach((clear: unknown, index: number) => {
    const c = isRecord(clear) ? clear : {};
    const complete = c.completeMs === null ||
      (isFiniteNumber(c.completeMs) && isFiniteNumber(c.invokeMs) && c.completeMs >= c.invokeMs);
    if (
      !isFiniteNumber(c.id) || (typeof c.process !== "string" && !isFiniteNumber(c.process)) ||
      typeof c.ns !== "string" || c.ns === "" || !isFiniteNumber(c.invokeMs) || !complete ||
      !["ok", "fail", "unknown"].includes(c.outcome as string) ||
      (c.outcome !== "unknown" && c.completeMs === null)
    ) {
      throw new TypeError(
        `Invalid clear at index ${index}, expected { id, process, ns, invokeMs, completeMs, outcome }: ${
          show(clear)
        }`,
      );
    }
  });
}

function validatePropagation(phase: unknown, keys: Record<string, unknown>): void {
  if (!isRecord(phase)) {
    throw new TypeError(`Invalid history propagation, expected an object: ${show(phase)}`);
  }
  for (const name of ["fromMs", "boundMs", "healBoundMs"] as const) {
    const bound = phase[name];
    if (!(isFiniteNumber(bound) && bound >= 0)) {
      throw new TypeError(`Invalid propagation ${name}, expected a number >= 0: ${show(bound)}`);
    }
  }
  if (!Array.isArray(phase.samples)) {
    throw new TypeError(`Invalid propagation samples, expected an array: ${show(phase.samples)}`);
  }
  phase.samples.forEach((sample: unknown, index: number) => {
    const s = isRecord(sample) ? sample : {};
    if (
      !isFiniteNumber(s.atMs) || typeof s.process !== "string" || typeof s.key !== "string" ||
      !Object.hasOwn(keys, s.key) || !isFiniteNumber(s.version)
    ) {
      throw new TypeError(
        `Invalid propagation sample at index ${index}, expected { atMs, process, key, version } ` +
          `of a described key: ${show(sample)}`,
      );
    }
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

function show(value: unknown): string {
  return showValue(value);
}
