/**
 * The namespace-clear check (CL): a clear behaves as an invalidation of every key of its
 * namespace. After `clear(ns)` completes ok at true time `c`, a read of a key of `ns` that
 * L1 answers must not serve an entry read from the store before the clear began — on the
 * clearing node from `c` on; on another node, for an eventual-distributed key, from
 * `c + maxStalenessMs` on (the bound of E3). Strong-local keys are their node's own, so
 * only the clearing node's reads of them count; strong-distributed keys are never
 * cleared (`NOT_SUPPORTED`).
 *
 * Each L1 read carries `fetchedByMs`, a true time by which its entry had been read (the
 * node's latest store call of the key before the read, recorded by the driver): an entry
 * whose `fetchedByMs` is before the clear's start was certainly read before it. A read
 * that served the value of a write or delete that had not completed ok before the clear
 * began is left out: that value is as new as the clear, not cleared by it.
 *
 * Design: a pass per clear over the L1 reads of its namespace, sorted by time — clears
 * are few. Rejected: checking clears through the value checkers (E2, E3) — a clear
 * changes no store version, so those checkers cannot see a cleared value served again.
 *
 * @module
 */

import type { ClearOp, History, HistoryOp } from "../history.ts";
import type { Report } from "./_version_checks.ts";

/**
 * Checks every ok clear of `history.clears` against the L1 reads of `history.ops`;
 * reports each violation; returns how many (clear, read) pairs it judged.
 *
 * @example
 * ```ts
 * import { checkClears } from "./clears.ts";
 * const found: string[] = [];
 * checkClears({
 *   format: "warp-history/1",
 *   keys: { "ev:1": { mode: "eventual-distributed", maxStalenessMs: 100 } },
 *   ops: [
 *     { id: 1, process: "n1", key: "ev:1", kind: "write", value: "a", version: 1, invokeMs: 0, completeMs: 1, outcome: "ok" },
 *     { id: 3, process: "n1", key: "ev:1", kind: "read", value: "a", found: true, version: 1, source: "l1", fetchedByMs: 1, invokeMs: 20, completeMs: 20, outcome: "ok" },
 *   ],
 *   clears: [{ id: 2, process: "n1", ns: "ev", invokeMs: 10, completeMs: 11, outcome: "ok" }],
 * }, (v) => found.push(v.message));
 * console.log(found.length); // 1
 * ```
 */
export function checkClears(history: History, report: Report): number {
  const clears = (history.clears ?? []).filter((c) => c.outcome === "ok" && c.completeMs !== null);
  if (clears.length === 0) return 0;
  const l1Reads = history.ops.filter((op) =>
    op.kind === "read" && op.outcome === "ok" && op.source === "l1" &&
    op.fetchedByMs !== undefined && op.completeMs !== null
  );
  const producers = producersByVersion(history.ops);
  let judged = 0;
  for (const clear of clears) {
    const prefix = `${clear.ns}:`;
    for (const read of l1Reads) {
      if (!read.key.startsWith(prefix)) continue;
      const bound = boundOf(history, read, clear);
      if (bound === undefined) continue;
      judged++;
      if (read.completeMs! < clear.completeMs! + bound) continue;
      if (read.fetchedByMs! >= clear.invokeMs) continue;
      if (!doneBefore(producers, read, clear.invokeMs)) continue;
      report({
        guarantee: "CL",
        key: read.key,
        ops: [read.id, clear.id],
        message: `${read.process} served ${read.key} v${
          read.version ?? 0
        } from L1 at ${read.completeMs} ms, read from the store by ${read.fetchedByMs} ms, before the clear of ${clear.ns} by ${clear.process} (${clear.invokeMs}–${clear.completeMs} ms)${
          bound > 0 ? `, past its ${bound} ms bound` : ""
        }`,
      });
    }
  }
  return judged;
}

/** How long after the clear `read` may still serve what was cleared; `undefined`: not judged. */
function boundOf(history: History, read: HistoryOp, clear: ClearOp): number | undefined {
  if (read.process === clear.process) return 0;
  const info = history.keys[read.key];
  if (info?.mode !== "eventual-distributed") return undefined;
  return info.byProcess?.[String(read.process)]?.maxStalenessMs ?? info.maxStalenessMs;
}

/** The completion times of the ok writes and deletes of each (key, version). */
function producersByVersion(ops: readonly HistoryOp[]): Map<string, number> {
  const done = new Map<string, number>();
  for (const op of ops) {
    if ((op.kind !== "write" && op.kind !== "delete") || op.outcome !== "ok") continue;
    if (op.version === undefined || op.completeMs === null) continue;
    done.set(`${op.version}\u0000${op.key}`, op.completeMs);
  }
  return done;
}

/** Whether the value `read` served was written (or is the initial absence) before `atMs`. */
function doneBefore(producers: Map<string, number>, read: HistoryOp, atMs: number): boolean {
  const version = read.version ?? 0;
  if (version === 0) return true;
  const completeMs = producers.get(`${version}\u0000${read.key}`);
  return completeMs !== undefined && completeMs < atMs;
}
