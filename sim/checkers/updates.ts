/**
 * M1, updates lose nothing: for a key that only `update` writes, the store's log must be
 * a chain in which every write is the reducer applied to the write before it (a counter
 * one above it; a set with exactly one element more), each acknowledged update is a
 * write of its own, and every write no acknowledged update accounts for belongs to an
 * update whose outcome is unknown — at most once each.
 *
 * Design chosen: check the store's own log, in version order, rather than only the final
 * value. The final value alone would miss a lost update hidden by an unknown one (one
 * increment lost, one unknown applied), and a reducer fed a stale L1 value (go-warp's
 * merge) shows up at the very write where the chain breaks, with its version.
 *
 * M2, the order of writes is the store's version order, over the keys updated with
 * `merges.lastWriterWins` (`lww`): walking the key's log in version order, every write must
 * be exactly the value of the update that made it (an acknowledged update's at its own
 * version, an unknown one's at most once, a failed one's never), so each later write in
 * the store's order replaced the earlier one. A merge that lets a clock pick the winner
 * (go-warp's) keeps the stored value against a later write with an older stamp: the store
 * then holds a copy of the predecessor where the update's own value belongs, and M2
 * reports that version. The counters and sets say the same of their reducers (each write
 * judged against its predecessor in version order), under M1.
 *
 * Rejected for M2: comparing only the final value with the last acknowledged update's. An
 * unknown update landing last is legal and would have to be excused, and a lost write in
 * the middle of the log would not show at all.
 *
 * @module
 */

import type { History, StoreLogEntry, UpdateOp } from "../history.ts";
import type { Report } from "./_version_checks.ts";

/**
 * Checks M1 over `history.updates` and the store log; returns how many updates it
 * checked (0 without an update part or a store log).
 *
 * @example An increment lost: two acknowledged updates, one write
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkUpdates } from "./updates.ts";
 * const violations: string[] = [];
 * const op = (id: number) => ({
 *   id, process: `n${id}`, key: "c", kind: "add" as const, value: 1, version: 1,
 *   invokeMs: 0, completeMs: 5, outcome: "ok" as const,
 * });
 * checkUpdates({
 *   format: "warp-history/1", keys: {}, ops: [],
 *   storeLog: [{ key: "c", version: 1, value: 1, atMs: 2 }],
 *   updates: { ops: [op(1), op(2)] },
 * }, (v) => violations.push(v.guarantee));
 * assert.deepEqual(violations, ["M1"]);
 * ```
 */
export function checkUpdates(history: History, report: Report): number {
  let checked = 0;
  for (const [key, ops, log] of updatedKeys(history, (kind) => kind !== "lww")) {
    checked += ops.length;
    checkKey(key, ops, log, report);
  }
  return checked;
}

/**
 * Checks M2 over the last-writer-wins updates (`kind: "lww"`) of `history.updates` and
 * the store log; returns how many updates it checked (0 without any or a store log).
 *
 * @example A write that kept its predecessor where an acknowledged update's value belongs
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLastWriterWins } from "./updates.ts";
 * const violations: string[] = [];
 * const op = (id: number) => ({
 *   id, process: "n0", key: "w", kind: "lww" as const, element: `n0#${id}`, version: id,
 *   invokeMs: id, completeMs: id + 1, outcome: "ok" as const,
 * });
 * checkLastWriterWins({
 *   format: "warp-history/1", keys: {}, ops: [],
 *   storeLog: [
 *     { key: "w", version: 1, value: "n0#1", atMs: 1 },
 *     { key: "w", version: 2, value: "n0#1", atMs: 2 },
 *   ],
 *   updates: { ops: [op(1), op(2)] },
 * }, (v) => violations.push(v.guarantee));
 * assert.deepEqual(violations, ["M2"]);
 * ```
 */
export function checkLastWriterWins(history: History, report: Report): number {
  let checked = 0;
  for (const [key, ops, log] of updatedKeys(history, (kind) => kind === "lww")) {
    checked += ops.length;
    checkLwwKey(key, ops, log, report);
  }
  return checked;
}

/** Each updated key whose updates' kind `wanted` selects: its updates and its log by version. */
function updatedKeys(
  history: History,
  wanted: (kind: UpdateOp["kind"]) => boolean,
): [string, UpdateOp[], StoreLogEntry[]][] {
  const updates = history.updates;
  if (updates === undefined || history.storeLog === undefined) return [];
  const byKey = new Map<string, UpdateOp[]>();
  for (const op of updates.ops) {
    if (!wanted(op.kind)) continue;
    const ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, [op]);
    else ops.push(op);
  }
  const logs = new Map<string, StoreLogEntry[]>();
  for (const entry of history.storeLog) {
    if (!byKey.has(entry.key)) continue;
    const log = logs.get(entry.key);
    if (log === undefined) logs.set(entry.key, [entry]);
    else log.push(entry);
  }
  return [...byKey].map(([key, ops]) => [
    key,
    ops,
    [...(logs.get(key) ?? [])].sort((a, b) => a.version - b.version),
  ]);
}

function checkLwwKey(
  key: string,
  ops: readonly UpdateOp[],
  log: readonly StoreLogEntry[],
  report: Report,
): void {
  const reported = new Set<number>(); // versions already reported: one violation each
  const m2 = (opIds: number[], message: string, version?: number) => {
    if (version !== undefined) reported.add(version);
    report({ guarantee: "M2", key, ops: opIds, message });
  };
  const byValue = new Map<unknown, UpdateOp>();
  for (const op of ops) byValue.set(op.element, op);
  const versionOf = new Map<unknown, number>(); // each op's value: the version it is at
  const at = new Map<number, StoreLogEntry>();
  let previous: StoreLogEntry | undefined;
  for (const entry of log) {
    at.set(entry.version, entry);
    const op = byValue.get(entry.value);
    const where = `Version ${entry.version} of ${key} (at ${entry.atMs} ms)`;
    if (entry.deleted) {
      m2([], `${where} is a deletion; only updates write it`, entry.version);
    } else if (op === undefined) {
      m2(
        [],
        `${where} holds ${JSON.stringify(entry.value)}, which no update writes`,
        entry.version,
      );
    } else if (versionOf.has(entry.value)) {
      const same = previous?.value === entry.value;
      m2(
        [op.id, ...ops.filter((o) => o.version === entry.version).map((o) => o.id)],
        `${where} holds ${JSON.stringify(entry.value)} again (update ${op.id}'s value, ` +
          `first at version ${versionOf.get(entry.value)})` +
          (same ? ": the write kept its predecessor instead of replacing it" : ""),
        entry.version,
      );
    } else if (op.outcome === "fail") {
      m2([op.id], `${where} holds the value of update ${op.id}, which failed`, entry.version);
    } else if (op.outcome === "ok" && op.version !== entry.version) {
      m2(
        [op.id],
        `${where} holds the value of update ${op.id}, acknowledged at ${op.version}`,
        entry.version,
      );
    }
    if (!versionOf.has(entry.value)) versionOf.set(entry.value, entry.version);
    previous = entry;
  }
  for (const op of ops) {
    if (op.outcome !== "ok") continue;
    const entry = op.version === undefined ? undefined : at.get(op.version);
    if (entry === undefined) {
      m2(
        [op.id],
        `Acknowledged update ${op.id} of ${key} wrote version ${op.version}, which the store never applied`,
      );
    } else if (entry.value !== op.element && !reported.has(entry.version)) {
      m2(
        [op.id],
        `Update ${op.id} of ${key} was acknowledged with version ${op.version}, which holds ` +
          `${JSON.stringify(entry.value)}, not its value ${JSON.stringify(op.element)}`,
      );
    }
  }
}

function checkKey(
  key: string,
  ops: readonly UpdateOp[],
  log: readonly StoreLogEntry[],
  report: Report,
): void {
  const m1 = (opIds: number[], message: string) =>
    report({ guarantee: "M1", key, ops: opIds, message });
  const kind = ops[0]!.kind;
  // Which element each write added (union), to match writes with the updates that made them.
  const addedBy = new Map<number, string>();
  let previous: unknown = undefined;
  for (const entry of log) {
    if (entry.deleted) {
      m1([], `Version ${entry.version} of ${key} is a deletion; only updates write it`);
      return;
    }
    const problem = kind === "add"
      ? counterStep(previous, entry.value)
      : unionStep(previous, entry.value, (element) => addedBy.set(entry.version, element));
    if (problem !== undefined) {
      m1(
        ops.filter((op) => op.version === entry.version).map((op) => op.id),
        `Version ${entry.version} of ${key} (at ${entry.atMs} ms) is not the reducer applied ` +
          `to the version before it: ${problem}`,
      );
      return; // one broken link makes every later comparison noise
    }
    previous = entry.value;
  }
  const versions = new Map(log.map((e) => [e.version, e]));
  const acknowledged = new Map<number, UpdateOp>();
  for (const op of ops) {
    if (op.outcome !== "ok") continue;
    if (op.version === undefined || !versions.has(op.version)) {
      m1(
        [op.id],
        `Acknowledged update ${op.id} of ${key} wrote version ${op.version}, which the store never applied`,
      );
      continue;
    }
    const twin = acknowledged.get(op.version);
    if (twin !== undefined) {
      m1(
        [op.id, twin.id],
        `Updates ${twin.id} and ${op.id} of ${key} were both acknowledged with version ${op.version}: one was lost`,
      );
      continue;
    }
    acknowledged.set(op.version, op);
    if (kind === "union" && addedBy.get(op.version) !== op.element) {
      m1(
        [op.id],
        `Update ${op.id} of ${key} added ${op.element}, but version ${op.version} added ${
          addedBy.get(op.version)
        }`,
      );
    }
  }
  const unknown = ops.filter((op) => op.outcome === "unknown");
  const unaccounted = log.filter((e) => !acknowledged.has(e.version));
  if (kind === "add" && unaccounted.length > unknown.length) {
    m1(
      [],
      `${key} holds ${unaccounted.length} writes no acknowledged update made, but only ${unknown.length} updates have an unknown outcome`,
    );
  }
  if (kind === "union") {
    const open = new Set(unknown.map((op) => op.element));
    for (const entry of unaccounted) {
      const element = addedBy.get(entry.version);
      const failed = ops.find((op) => op.element === element && op.outcome !== "unknown");
      if (!open.has(element)) {
        m1(
          failed === undefined ? [] : [failed.id],
          `Version ${entry.version} of ${key} added ${element}, which no update with an unknown outcome adds` +
            (failed === undefined ? "" : ` (update ${failed.id} is ${failed.outcome})`),
        );
      }
    }
  }
}

/** Why `next` is not `previous + 1` (absent counts as 0), or `undefined` if it is. */
function counterStep(previous: unknown, next: unknown): string | undefined {
  const expected = ((previous as number | undefined) ?? 0) + 1;
  return next === expected
    ? undefined
    : `${String(next)} after ${String(previous)}, expected ${expected}`;
}

/** Why `next` is not `previous` plus one new element, or `undefined` (then `added` was told). */
function unionStep(
  previous: unknown,
  next: unknown,
  added: (element: string) => void,
): string | undefined {
  const before = (previous as string[] | undefined) ?? [];
  if (!Array.isArray(next)) return `not a set: ${JSON.stringify(next)}`;
  const after = new Set(next as string[]);
  const missing = before.filter((e) => !after.has(e));
  if (missing.length > 0) return `${missing.join(", ")} lost`;
  const fresh = [...after].filter((e) => !before.includes(e));
  if (fresh.length !== 1 || after.size !== next.length) {
    return `${fresh.length} elements added (${fresh.join(", ")}), expected exactly one`;
  }
  added(fresh[0]!);
  return undefined;
}
