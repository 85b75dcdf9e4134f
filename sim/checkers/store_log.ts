/**
 * E1s, validity against the store's log (E1 made exact, on keys of every mode): every ok
 * read returns a (value, version) pair the store really held — the value the store gave
 * that version, applied before the read completed; `found: false` only at version 0 (never
 * written), at a deletion, or, on a leased key, at a value attached to leases (a dead lease
 * makes it read as absent; GV in `leases.ts` checks that one really was dead) — and every
 * ok write or delete completed with the version the store gave it, applied between its
 * invocation and its completion.
 *
 * E1 alone accepts any value written by an operation that did not certainly fail, and the
 * other version checks compare versions only: a value served under a version the store
 * gave to another value passes them all. The store log closes that gap.
 *
 * @module
 */

import type { History, HistoryOp, StoreLogEntry } from "../history.ts";
import { describeOp, readFound, type Report, type Versioned } from "./_version_checks.ts";
import { sameValue, showValue } from "./_value.ts";

/**
 * Checks E1s on a history with a store log; returns how many ops it checked (0 without a
 * log). `report` receives every violation.
 *
 * @example A read that labels a value with the version of another write
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkStoreLog } from "./store_log.ts";
 * import type { Violation } from "../history.ts";
 *
 * const violations: Violation[] = [];
 * const checked = checkStoreLog({
 *   format: "warp-history/1",
 *   keys: { k: { mode: "eventual-distributed", maxStalenessMs: 100 } },
 *   ops: [
 *     { id: 1, process: "n1", key: "k", kind: "read", value: "a", found: true, version: 2,
 *       invokeMs: 5, completeMs: 6, outcome: "ok" },
 *   ],
 *   storeLog: [
 *     { key: "k", version: 1, value: "a", atMs: 1 },
 *     { key: "k", version: 2, value: "b", atMs: 2 },
 *   ],
 * }, (v) => violations.push(v));
 * assert.equal(checked, 1);
 * assert.deepEqual(violations.map((v) => [v.guarantee, v.ops]), [["E1s", [1]]]);
 * ```
 */
export function checkStoreLog(history: History, report: Report): number {
  const log = history.storeLog;
  if (log === undefined) return 0;
  const versions = indexLog(log, report);
  let checked = 0;
  for (const op of history.ops) {
    if (!isVersioned(op)) continue;
    if (op.kind === "read") {
      checked++;
      checkRead(history, op, versions.get(op.key)?.get(op.version), report);
    } else if (op.kind === "write" || op.kind === "delete") {
      checked++;
      checkWrite(op, versions.get(op.key)?.get(op.version), report);
    }
  }
  return checked;
}

/** Key → version → entry; a version given twice, or out of order, is itself a violation. */
function indexLog(
  log: readonly StoreLogEntry[],
  report: Report,
): Map<string, Map<number, StoreLogEntry>> {
  const versions = new Map<string, Map<number, StoreLogEntry>>();
  const newest = new Map<string, number>();
  for (const entry of log) {
    let ofKey = versions.get(entry.key);
    if (ofKey === undefined) versions.set(entry.key, ofKey = new Map());
    const before = newest.get(entry.key) ?? 0;
    if (entry.version <= before) {
      report({
        guarantee: "E1s",
        key: entry.key,
        ops: [],
        message: `The store applied version ${entry.version} of ${entry.key} at ` +
          `${entry.atMs} ms, after version ${before}: versions must strictly increase`,
      });
    }
    newest.set(entry.key, Math.max(before, entry.version));
    if (!ofKey.has(entry.version)) ofKey.set(entry.version, entry);
  }
  return versions;
}

function isVersioned(op: HistoryOp): op is Versioned {
  return op.outcome === "ok" && op.version !== undefined && op.completeMs !== null;
}

function held(entry: StoreLogEntry): string {
  return entry.deleted ? "a deletion" : showValue(entry.value);
}

function checkRead(
  history: History,
  read: Versioned,
  entry: StoreLogEntry | undefined,
  report: Report,
): void {
  const found = readFound(read);
  const what = found ? showValue(read.value) : "nothing";
  const fail = (why: string) =>
    report({
      guarantee: "E1s",
      key: read.key,
      ops: [read.id],
      message: `${describeOp(read, true)} (from ${read.source ?? "?"}) returned ${what} of ` +
        `${read.key} at version ${read.version}, but ${why}`,
    });
  if (read.version === 0) {
    if (found) fail("version 0 means never written");
    return;
  }
  if (entry === undefined) {
    fail("the store never gave that version");
    return;
  }
  if (entry.atMs > read.completeMs) {
    fail(`the store applied it only at ${entry.atMs} ms, after the read completed`);
    return;
  }
  if (found) {
    if (entry.deleted || !sameValue(entry.value, read.value)) {
      fail(`the store holds ${held(entry)} at that version`);
    }
    return;
  }
  const deadLease = history.keys[read.key]?.leased === true && (entry.leases?.length ?? 0) > 0;
  if (!entry.deleted && !deadLease) fail(`the store holds ${held(entry)} at that version`);
}

function checkWrite(
  write: Versioned,
  entry: StoreLogEntry | undefined,
  report: Report,
): void {
  const fail = (why: string) =>
    report({
      guarantee: "E1s",
      key: write.key,
      ops: [write.id],
      message:
        `${describeOp(write, true)} of ${write.key} completed with version ${write.version}, ` +
        `but ${why}`,
    });
  if (entry === undefined) {
    fail("the store never gave that version");
    return;
  }
  if (entry.atMs < write.invokeMs || entry.atMs > write.completeMs) {
    fail(
      `the store applied it at ${entry.atMs} ms, outside the write's ` +
        `[${write.invokeMs}, ${write.completeMs}] ms`,
    );
    return;
  }
  const deleting = write.kind === "delete";
  if (deleting ? !entry.deleted : entry.deleted || !sameValue(entry.value, write.value)) {
    fail(`the store holds ${held(entry)} at that version`);
  }
}
