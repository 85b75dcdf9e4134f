/**
 * The O(n log n) checks of CONSISTENCY.md, which compare recorded versions: E1 validity,
 * E2 no going back, E3 bounded staleness, E4 convergence, S2 no stale read after an
 * acknowledged operation, SL2 no entry served past its TTL. Each one reads the ops of one
 * key and reports violations through a callback; each returns how many ops it checked.
 *
 * "A completed before B was invoked" is strict: operations that touch at an instant are
 * concurrent, so no violation depends on how a tie is broken.
 *
 * @module
 */

import type { HistoryOp, KeyInfo, Violation } from "../history.ts";
import { showValue, valueKey } from "./_value.ts";

/** Reports one violation. */
export type Report = (violation: Violation) => void;

/** Whether an ok read found a value: `found`, or when absent, whether it recorded one. */
export function readFound(op: HistoryOp): boolean {
  return op.found ?? (op.value !== undefined && op.value !== null);
}

/** `read 7 on n2`, or `Read 7 on n2` to start a sentence. */
export function describeOp(op: HistoryOp, capitalised = false): string {
  const kind = capitalised ? op.kind[0]!.toUpperCase() + op.kind.slice(1) : op.kind;
  return `${kind} ${op.id} on ${op.process}`;
}

function versionOf(op: HistoryOp): string {
  return op.version === undefined ? "no recorded version" : `version ${op.version}`;
}

/** An ok op with a recorded version (an ok op always has a completion time). */
export type Versioned = HistoryOp & { readonly version: number; readonly completeMs: number };

function isOkRead(op: HistoryOp): op is Versioned {
  return op.kind === "read" && op.outcome === "ok" && op.version !== undefined;
}

/** An ok write or delete with a recorded version. */
export function isOkWrite(op: HistoryOp): op is Versioned {
  return (op.kind === "write" || op.kind === "delete") && op.outcome === "ok" &&
    op.version !== undefined;
}

function isOkReadOrWrite(op: HistoryOp): op is Versioned {
  return isOkRead(op) || isOkWrite(op);
}

/**
 * The op with the highest version among ops whose time (their completion, unless
 * `timeOf` says otherwise) is before a given time: sorted by that time, with a running
 * maximum, answered by binary search.
 */
export class NewestBefore {
  readonly #timesMs: number[];
  readonly #newest: Versioned[];

  constructor(
    ops: readonly Versioned[],
    timeOf: (op: Versioned) => number = (op) => op.completeMs,
  ) {
    const timed = ops.map((op) => ({ op, timeMs: timeOf(op) }));
    timed.sort((a, b) => a.timeMs - b.timeMs || a.op.id - b.op.id);
    this.#timesMs = timed.map((t) => t.timeMs);
    this.#newest = [];
    let newest: Versioned | undefined;
    for (const { op } of timed) {
      if (newest === undefined || op.version > newest.version) newest = op;
      this.#newest.push(newest);
    }
  }

  /** The newest op whose time is before `timeMs` (or at it, if `inclusive`), if any. */
  before(timeMs: number, inclusive = false): Versioned | undefined {
    let low = 0;
    let high = this.#timesMs.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const t = this.#timesMs[mid]!;
      if (t < timeMs || (inclusive && t === timeMs)) low = mid + 1;
      else high = mid;
    }
    return low === 0 ? undefined : this.#newest[low - 1];
  }
}

/** E1: every value read was written by a write of the key that did not certainly fail. */
export function checkValidity(key: string, ops: readonly HistoryOp[], report: Report): number {
  const writes = new Map<string, HistoryOp[]>();
  for (const op of ops) {
    if (op.kind !== "write") continue;
    const value = valueKey(op.value);
    const same = writes.get(value);
    if (same === undefined) writes.set(value, [op]);
    else same.push(op);
  }
  let checked = 0;
  for (const read of ops) {
    if (read.kind !== "read" || read.outcome !== "ok" || !readFound(read)) continue;
    checked++;
    const candidates = writes.get(valueKey(read.value)) ?? [];
    const happened = candidates.filter((write) => write.outcome !== "fail");
    const value = showValue(read.value);
    if (happened.length === 0) {
      const failed = candidates.map((write) => write.id);
      report({
        guarantee: "E1",
        key,
        ops: [read.id, ...failed],
        message: failed.length === 0
          ? `${describeOp(read, true)} returned ${value}, which no write of ${key} wrote`
          : `${describeOp(read, true)} returned ${value}, written only by failed write ${
            failed.join(", ")
          } of ${key}`,
      });
    } else if (
      read.version !== undefined &&
      !happened.some((write) => write.version === undefined || write.version === read.version)
    ) {
      report({
        guarantee: "E1",
        key,
        ops: [read.id, ...happened.map((write) => write.id)],
        message:
          `${describeOp(read, true)} returned ${value} of ${key} at version ${read.version}, ` +
          `but write ${happened[0]!.id} wrote it at ${versionOf(happened[0]!)}`,
      });
    }
  }
  return checked;
}

/** E2: on one node, a read returns a version no older than any op that completed before it. */
export function checkNoGoingBack(key: string, ops: readonly HistoryOp[], report: Report): number {
  const byProcess = new Map<string, HistoryOp[]>();
  for (const op of ops) {
    if (op.outcome !== "ok" || op.version === undefined) continue;
    const mine = byProcess.get(op.process);
    if (mine === undefined) byProcess.set(op.process, [op]);
    else mine.push(op);
  }
  let checked = 0;
  for (const mine of byProcess.values()) {
    const done = new NewestBefore(mine.filter(isOkReadOrWrite));
    for (const read of mine) {
      if (!isOkRead(read)) continue;
      checked++;
      const newest = done.before(read.invokeMs);
      if (newest === undefined || read.version >= newest.version) continue;
      report({
        guarantee: "E2",
        key,
        ops: [read.id, newest.id],
        message:
          `${describeOp(read, true)} returned version ${read.version} of ${key}, older than ` +
          `version ${newest.version} of ${newest.kind} ${newest.id} that completed on the same ` +
          `node at ${newest.completeMs} ms, before the read was invoked at ${read.invokeMs} ms`,
      });
    }
  }
  return checked;
}

/**
 * E3: a read completing at t is no older than every write completed before t − maxStaleness,
 * the bound of the read's node.
 */
export function checkBoundedStaleness(
  key: string,
  info: KeyInfo,
  ops: readonly HistoryOp[],
  report: Report,
): number {
  if (info.maxStalenessMs === undefined) return 0;
  const writes = new NewestBefore(ops.filter(isOkWrite));
  let checked = 0;
  for (const read of ops) {
    if (!isOkRead(read)) continue;
    checked++;
    const maxStalenessMs = info.byProcess?.[read.process]?.maxStalenessMs ?? info.maxStalenessMs;
    const newest = writes.before(read.completeMs - maxStalenessMs);
    if (newest === undefined || read.version >= newest.version) continue;
    report({
      guarantee: "E3",
      key,
      ops: [read.id, newest.id],
      message: `${describeOp(read, true)} completed at ${read.completeMs} ms with version ` +
        `${read.version} of ${key}, but ${newest.kind} ${newest.id} had completed with version ` +
        `${newest.version} at ${newest.completeMs} ms, more than maxStalenessMs ` +
        `${maxStalenessMs} earlier`,
    });
  }
  return checked;
}

/** E4: every probe read returns the final version of the key. */
export function checkConvergence(
  key: string,
  final: { readonly version: number } | undefined,
  ops: readonly HistoryOp[],
  report: Report,
): number {
  if (final === undefined) return 0;
  let checked = 0;
  for (const read of ops) {
    if (!isOkRead(read) || read.probe !== true) continue;
    checked++;
    if (read.version === final.version) continue;
    report({
      guarantee: "E4",
      key,
      ops: [read.id],
      message: `Probe ${describeOp(read)} returned version ${read.version} of ${key}, ` +
        `but the final version is ${final.version}`,
    });
  }
  return checked;
}

/**
 * S2: a read invoked after an ok write, delete or read of the key completed returns a
 * version no older than that op's.
 */
export function checkNoStaleRead(key: string, ops: readonly HistoryOp[], report: Report): number {
  const done = new NewestBefore(ops.filter(isOkReadOrWrite));
  let checked = 0;
  for (const read of ops) {
    if (!isOkRead(read)) continue;
    checked++;
    const newest = done.before(read.invokeMs);
    if (newest === undefined || read.version >= newest.version) continue;
    report({
      guarantee: "S2",
      key,
      ops: [read.id, newest.id],
      message: `${describeOp(read, true)} invoked at ${read.invokeMs} ms returned version ` +
        `${read.version} of ${key}, but ${describeOp(newest)} had completed with version ` +
        `${newest.version} at ${newest.completeMs} ms`,
    });
  }
  return checked;
}

/** SL2: a read served from L1 is younger than the key's TTL on the read's node. */
export function checkTtl(
  key: string,
  info: KeyInfo,
  ops: readonly HistoryOp[],
  report: Report,
): number {
  if (info.ttlMs === undefined) return 0;
  let checked = 0;
  for (const read of ops) {
    if (read.kind !== "read" || read.outcome !== "ok" || read.source !== "l1") continue;
    if (read.ageMs === undefined) continue;
    checked++;
    const ttlMs = info.byProcess?.[read.process]?.ttlMs ?? info.ttlMs;
    if (read.ageMs < ttlMs) continue;
    report({
      guarantee: "SL2",
      key,
      ops: [read.id],
      message: `${describeOp(read, true)} served an L1 entry of ${key} aged ${read.ageMs} ms, ` +
        `not under its ttlMs ${ttlMs}`,
    });
  }
  return checked;
}
