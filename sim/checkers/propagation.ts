/**
 * EP, propagation in a fault-free phase — a reported and checked figure, not a promise under
 * faults (E3 and E4 are the promises). Once faults stop, the invalidation of every ok write
 * or delete of an eventual-distributed key reaches every node within a bound: from then on
 * no node serves from L1, or holds ready to serve, a version older than the write's.
 *
 * - A write that completed ok in the fault-free phase must have reached every node
 *   `boundMs` after it completed.
 * - A write that completed ok before it (its invalidation may have been lost, leaving a
 *   gap the node must notice and flush) must have reached every node `healBoundMs` after
 *   the phase began.
 *
 * The evidence is every L1 read of the history (at its completion) and the history's
 * samples of what nodes held ready to serve (`PropagationPhase.samples`), which catch a
 * stale entry on a node that nobody happened to read.
 *
 * @module
 */

import type { History, HistoryOp, Violation } from "../history.ts";
import { isOkWrite, NewestBefore, type Report, type Versioned } from "./_version_checks.ts";

/** One observation of what a node could serve from L1: a sample, or an L1 read. */
interface Served {
  readonly atMs: number;
  readonly process: string;
  readonly version: number;
  /** The read, if it was one. */
  readonly read?: HistoryOp;
}

/**
 * Checks EP on a history with a propagation phase; returns how many observations in the
 * phase it checked (0 without one). `report` receives the first violation per node and
 * write.
 *
 * @example A node still holds version 1 long after version 2's write completed
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPropagation } from "./propagation.ts";
 * import type { Violation } from "../history.ts";
 *
 * const violations: Violation[] = [];
 * checkPropagation({
 *   format: "warp-history/1",
 *   keys: { k: { mode: "eventual-distributed", maxStalenessMs: 300 } },
 *   ops: [
 *     { id: 1, process: "n1", key: "k", kind: "write", value: "b", version: 2,
 *       invokeMs: 100, completeMs: 101, outcome: "ok" },
 *   ],
 *   propagation: {
 *     fromMs: 0,
 *     boundMs: 40,
 *     healBoundMs: 200,
 *     samples: [{ atMs: 150, process: "n2", key: "k", version: 1 }],
 *   },
 * }, (v) => violations.push(v));
 * assert.deepEqual(violations.map((v) => [v.guarantee, v.ops]), [["EP", [1]]]);
 * ```
 */
export function checkPropagation(history: History, report: Report): number {
  const phase = history.propagation;
  if (phase === undefined) return 0;
  const byKey = new Map<string, { writes: Versioned[]; served: Served[] }>();
  const of = (key: string) => {
    let entry = byKey.get(key);
    if (entry === undefined) byKey.set(key, entry = { writes: [], served: [] });
    return entry;
  };
  for (const op of history.ops) {
    if (history.keys[op.key]?.mode !== "eventual-distributed") continue;
    if (isOkWrite(op)) of(op.key).writes.push(op);
    else if (op.kind === "read" && op.outcome === "ok" && op.source === "l1") {
      if (op.version === undefined || op.completeMs === null) continue;
      of(op.key).served.push({
        atMs: op.completeMs,
        process: op.process,
        version: op.version,
        read: op,
      });
    }
  }
  for (const sample of phase.samples) {
    if (history.keys[sample.key]?.mode === "eventual-distributed") {
      of(sample.key).served.push(sample);
    }
  }
  /** When a write's invalidation must have reached every node. */
  const deadlineOf = (write: Versioned) =>
    write.completeMs >= phase.fromMs
      ? write.completeMs + phase.boundMs
      : phase.fromMs + phase.healBoundMs;

  let checked = 0;
  for (const [key, { writes, served }] of byKey) {
    const due = new NewestBefore(writes, deadlineOf);
    const reported = new Set<string>();
    for (const seen of served) {
      if (seen.atMs < phase.fromMs) continue;
      checked++;
      const write = due.before(seen.atMs, true);
      if (write === undefined || seen.version >= write.version) continue;
      const once = `${seen.process}\u0000${write.id}`;
      if (reported.has(once)) continue;
      reported.add(once);
      report(violation(key, seen, write, deadlineOf(write), phase));
    }
  }
  return checked;
}

function violation(
  key: string,
  seen: Served,
  write: Versioned,
  deadlineMs: number,
  phase: { readonly fromMs: number; readonly boundMs: number; readonly healBoundMs: number },
): Violation {
  const what = seen.read !== undefined
    ? `read ${seen.read.id} on ${seen.process} served`
    : `${seen.process} held ready to serve`;
  const why = write.completeMs >= phase.fromMs
    ? `boundMs ${phase.boundMs} after it`
    : `healBoundMs ${phase.healBoundMs} after the faults stopped at ${phase.fromMs} ms`;
  return {
    guarantee: "EP",
    key,
    ops: seen.read !== undefined ? [seen.read.id, write.id] : [write.id],
    message: `At ${seen.atMs} ms ${what} version ${seen.version} of ${key} from L1, older ` +
      `than version ${write.version} of ${write.kind} ${write.id} (completed at ` +
      `${write.completeMs} ms), whose invalidation had to reach every node by ${deadlineMs} ms ` +
      `(${why})`,
  };
}
