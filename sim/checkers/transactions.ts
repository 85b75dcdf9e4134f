/**
 * T1, first half: a transaction is all or nothing in the store, and nothing of a failed
 * one reaches any cache. Judged on the store's own log, whose entries name the
 * transaction that wrote them (`tx`):
 * - a transaction's writes are in the log all together — one entry per op, each with the
 *   op's key and value, all applied at one instant, each version above the key's previous
 *   one — or not at all;
 * - an `ok` transaction's writes are all there; a `fail` one's none (an `unknown` one may
 *   go either way, but whole);
 * - no ok read ever returned a (value, version) that only a transaction absent from the
 *   log would have written (values are unique per write).
 *
 * T1's second half (after an ok transaction, each key obeys its mode's guarantee for the
 * transaction's write) is judged by the mode checkers: each key's write is an ordinary
 * `write` op of the history.
 *
 * Design chosen: the log, not the final state — a half-applied transaction later
 * overwritten leaves no trace in the final values. Rejected: judging all-or-nothing by the
 * ops' outcomes alone (an unknown transaction's half would pass).
 *
 * @module
 */

import type { History, HistoryOp, StoreLogEntry } from "../history.ts";
import type { Report } from "./_version_checks.ts";

/**
 * Checks T1 (store atomicity) over `history.transactions` and the store log; returns how
 * many transactions it checked (0 without transactions or a store log).
 *
 * @example A transaction applied by half
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkTransactions } from "./transactions.ts";
 * const op = (id: number, key: string) => ({
 *   id, process: "n1", key, kind: "write" as const, value: `v${id}`, version: 1,
 *   invokeMs: 0, completeMs: 5, outcome: "ok" as const,
 * });
 * const violations: string[] = [];
 * checkTransactions({
 *   format: "warp-history/1", keys: {}, ops: [op(1, "a"), op(2, "b")],
 *   storeLog: [{ key: "a", version: 1, value: "v1", atMs: 2, tx: 7 }],
 *   transactions: [{ id: 7, ops: [1, 2], outcome: "ok" }],
 * }, (v) => violations.push(v.guarantee));
 * assert.deepEqual(violations, ["T1"]);
 * ```
 */
export function checkTransactions(history: History, report: Report): number {
  const transactions = history.transactions;
  const log = history.storeLog;
  if (transactions === undefined || log === undefined) return 0;
  const opsById = new Map<number, HistoryOp>();
  for (const op of history.ops) opsById.set(op.id, op);
  const entriesByTx = new Map<number, StoreLogEntry[]>();
  /** Per log entry, the version of its key's entry before it in the log. */
  const previousVersion = new Map<StoreLogEntry, number>();
  const lastVersion = new Map<string, number>();
  for (const entry of log) {
    previousVersion.set(entry, lastVersion.get(entry.key) ?? 0);
    lastVersion.set(entry.key, Math.max(lastVersion.get(entry.key) ?? 0, entry.version));
    if (entry.tx === undefined) continue;
    const list = entriesByTx.get(entry.tx);
    if (list === undefined) entriesByTx.set(entry.tx, [entry]);
    else list.push(entry);
  }
  const absentWrites: HistoryOp[] = [];
  const known = new Set<number>();
  for (const tx of transactions) {
    known.add(tx.id);
    const ops = tx.ops.map((id) => opsById.get(id)).filter((op) => op !== undefined);
    const entries = entriesByTx.get(tx.id) ?? [];
    const t1 = (message: string) =>
      report({ guarantee: "T1", key: ops[0]?.key ?? "", ops: [...tx.ops], message });
    if (ops.length !== tx.ops.length) t1(`Transaction ${tx.id} names ops the history lacks`);
    if (entries.length === 0) {
      if (tx.outcome === "ok") {
        t1(`Transaction ${tx.id} completed ok, none of its writes is stored`);
      }
      absentWrites.push(...ops);
      continue;
    }
    if (tx.outcome === "fail") {
      t1(`Transaction ${tx.id} failed, yet the store applied ${entries.length} of its writes`);
    }
    if (entries.length !== ops.length) {
      t1(`Transaction ${tx.id} is half-applied: ${entries.length} of ${ops.length} writes stored`);
    }
    for (const op of ops) {
      const entry = entries.find((e) => e.key === op.key);
      if (entry === undefined) continue; // counted above
      const value = op.kind === "delete" ? undefined : op.value;
      if (entry.value !== value || (entry.deleted ?? false) !== (op.kind === "delete")) {
        t1(
          `Transaction ${tx.id} stored ${String(entry.value)} for ${op.key}, not ${String(value)}`,
        );
      }
      if (entry.version <= previousVersion.get(entry)!) {
        t1(`Transaction ${tx.id} stored ${op.key} at version ${entry.version}, not above the last`);
      }
    }
    if (entries.some((e) => e.atMs !== entries[0]!.atMs)) {
      t1(`Transaction ${tx.id}'s writes were applied at different instants`);
    }
  }
  for (const tx of entriesByTx.keys()) {
    if (!known.has(tx)) {
      report({
        guarantee: "T1",
        key: entriesByTx.get(tx)![0]!.key,
        ops: [],
        message: `The store applied writes of transaction ${tx}, which the history lacks`,
      });
    }
  }
  checkNeverServed(history, absentWrites, report);
  return transactions.length;
}

/** No ok read returned a value only an unapplied transaction's write would have stored. */
function checkNeverServed(history: History, absent: readonly HistoryOp[], report: Report): void {
  if (absent.length === 0) return;
  const byValue = new Map<string, HistoryOp>();
  for (const op of absent) {
    if (op.kind === "write") byValue.set(`${op.key}\u0000${String(op.value)}`, op);
  }
  for (const op of history.ops) {
    if (op.kind !== "read" || op.outcome !== "ok" || op.found === false) continue;
    const write = byValue.get(`${op.key}\u0000${String(op.value)}`);
    if (write === undefined) continue;
    report({
      guarantee: "T1",
      key: op.key,
      ops: [op.id, write.id],
      message: `Read ${op.id} on ${op.process} served ${String(op.value)} (version ${
        op.version ?? "?"
      }), written only by a transaction the store never applied`,
    });
  }
}
