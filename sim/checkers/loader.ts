/**
 * Checks the loader-backed part of a history ({@linkcode LoaderHistory}) against the rules
 * of CONSISTENCY.md's "Loader-backed keys" and "Stale answers" sections, stated over load
 * starts (the source is a linearizable register the application writes before it
 * invalidates, so a load's start fixes the newest value it can return):
 *
 * - **LB1** (E2's form): once a node has applied an invalidation of k, it never serves a
 *   value of k whose load started before that invalidation reached it — a fresh answer
 *   whose load started before a drop logged on its node, which came before the answer;
 * - **LB2** (E3's form, eventual-distributed): a fresh read that completes ok at t returns
 *   a value whose load started after the start of every `invalidate(k)` that completed ok
 *   before `t − maxStalenessMs`;
 * - **LB3** (S1's form, strong-distributed, and strong-local on its one node): a fresh read
 *   that starts after an `invalidate(k)` completed ok returns a value whose load started
 *   after that invalidation started;
 * - **F1**: an answer past its freshness says so — a `fallback` answer is flagged stale and
 *   only it is; an unflagged answer from L1 is no older than its entry's TTL (from its
 *   load's start, on a clock slow by the drift bound; an answer straight from its load is
 *   as fresh as any read-through, however slow); a stale one comes from a read that asked
 *   for fail-safe and is no older than TTL + its `failSafeMaxMs`;
 * - **F2**: a removed value is never served, stale or not — LB1 for stale answers;
 * - **F3**: a strong-distributed key answers stale only to a read that asked;
 * - **E1** (validity): every answer names a load its own node ran of that key, and returns
 *   what that load read from the source.
 *
 * Stale answers are exempt from LB2, LB3 and the TTL rule, and from nothing else (F1).
 *
 * Design: each rule is a pass over the ops with per-key indexes (drops by node, ok
 * invalidations by completion with a running maximum of their starts), so a run's
 * thousands of reads check in milliseconds. Rejected: folding the loader keys into the
 * store-backed checks with a version per load — their reads would then need a version
 * order between loads of different nodes, which loads do not have.
 *
 * @module
 */

import type { LoaderHistory, LoaderOp, LoadLogEntry, Violation } from "../history.ts";

/** The guarantees {@linkcode checkLoaders} checks. */
export const LOADER_GUARANTEES = ["E1", "LB1", "LB2", "LB3", "F1", "F2", "F3"] as const;

/** One of {@linkcode LOADER_GUARANTEES}. */
export type LoaderGuarantee = typeof LOADER_GUARANTEES[number];

/** What {@linkcode checkLoaders} found. */
export interface LoaderCheckResult {
  readonly violations: readonly Violation[];
  /** `pass`, `fail`, or `skipped` when no op was subject to the rule. */
  readonly results: Readonly<Record<LoaderGuarantee, "pass" | "fail" | "skipped">>;
  /** Ops each rule looked at. */
  readonly checked: Readonly<Record<LoaderGuarantee, number>>;
}

/** Slack for float rounding of true times, ms. */
const EPSILON_MS = 1e-6;

/**
 * Checks a loader-backed history; `maxDriftPpm` is the drift bound the nodes assumed.
 *
 * @example
 * ```ts
 * import { checkLoaders } from "./loader.ts";
 * const result = checkLoaders({
 *   keys: { "k": { mode: "eventual-distributed", ttlMs: 100, maxStalenessMs: 50, failSafeMaxMs: 0 } },
 *   loads: [{ id: 1, process: "n0", key: "k", startMs: 0, startSeq: 1, version: 0, value: null, ttlMs: 100 }],
 *   drops: [{ process: "n0", key: "k", atMs: 5, seq: 2 }],
 *   sourceLog: [],
 *   ops: [{ id: 7, process: "n0", key: "k", kind: "read", invokeMs: 6, completeMs: 6,
 *     outcome: "ok", found: false, value: null, load: 1, source: "l1", stale: false,
 *     failSafeMs: 0, answerSeq: 3 }],
 * }, 500);
 * console.log(result.violations.map((v) => v.guarantee)); // ["LB1"]
 * ```
 */
export function checkLoaders(history: LoaderHistory, maxDriftPpm: number): LoaderCheckResult {
  const slow = 1 - maxDriftPpm / 1e6;
  const violations: Violation[] = [];
  const checked = Object.fromEntries(LOADER_GUARANTEES.map((g) => [g, 0])) as Record<
    LoaderGuarantee,
    number
  >;
  const failed = new Set<LoaderGuarantee>();
  const report = (
    guarantee: LoaderGuarantee,
    op: LoaderOp,
    message: string,
    others: readonly number[] = [],
  ) => {
    failed.add(guarantee);
    violations.push({ guarantee, key: op.key, ops: [op.id, ...others], message });
  };
  const loads = new Map(history.loads.map((l) => [l.id, l]));
  const drops = dropIndex(history);
  const invalidations = invalidationIndex(history.ops);
  for (const op of history.ops) {
    if (op.kind !== "read" || op.outcome !== "ok" || op.completeMs === null) continue;
    const info = history.keys[op.key];
    if (info === undefined) continue;
    const load = op.load === undefined ? undefined : loads.get(op.load);
    checked.E1++;
    if (!validAnswer(op, load)) {
      report(
        "E1",
        op,
        `read ${op.id} on ${op.process} answered ${JSON.stringify(op.value)} as load ` +
          `${op.load} of ${op.key}, which its node did not load (load: ${JSON.stringify(load)})`,
      );
      continue;
    }
    const stale = op.stale === true;
    const age = op.completeMs - load!.startMs;
    // F1: the flag tells a stale answer from a fresh one, and each keeps to its window.
    checked.F1++;
    if ((op.source === "fallback") !== stale) {
      report("F1", op, `read ${op.id} answered from ${op.source} with stale ${stale}`);
    } else if (op.source === "l1" && age > load!.ttlMs / slow + EPSILON_MS) {
      report(
        "F1",
        op,
        `read ${op.id} on ${op.process} answered load ${load!.id} of ${op.key} unflagged ` +
          `${age.toFixed(3)} ms after the load started, past its TTL ${load!.ttlMs} ms`,
      );
    }
    if (stale) {
      const asked = op.failSafeMs ?? 0;
      const strong = info.mode === "strong-distributed";
      if (strong) checked.F3++;
      if (asked <= 0) {
        report(
          strong ? "F3" : "F1",
          op,
          `read ${op.id} on ${op.process} of ${info.mode} ${op.key} answered stale without ` +
            `asking for fail-safe`,
        );
      } else if (age > (load!.ttlMs + asked) / slow + EPSILON_MS) {
        report(
          "F1",
          op,
          `read ${op.id} on ${op.process} answered load ${load!.id} of ${op.key} stale ` +
            `${age.toFixed(3)} ms after the load started, past TTL ${load!.ttlMs} ms + ` +
            `failSafeMaxMs ${asked} ms`,
        );
      }
    }
    // LB1, and F2 for stale answers: no drop between the load's start and the answer.
    const rule = stale ? "F2" : "LB1";
    checked[rule]++;
    const drop = drops.firstAfter(op.process, op.key, load!.startSeq);
    if (drop !== undefined && drop.seq < op.answerSeq!) {
      report(
        rule,
        op,
        `read ${op.id} on ${op.process} answered ${stale ? "stale " : ""}load ${load!.id} of ` +
          `${op.key} (started at ${load!.startMs.toFixed(3)} ms) after a drop of the key ` +
          `reached the node at ${drop.atMs.toFixed(3)} ms`,
      );
    }
    if (stale) continue;
    // LB2 and LB3: the load started after every invalidation the read must see.
    const index = invalidations.get(op.key);
    if (index === undefined) continue;
    if (info.mode === "eventual-distributed") {
      checked.LB2++;
      const bound = info.maxStalenessMs ?? 0;
      const newest = index.startedBefore(op.completeMs - bound);
      if (newest !== undefined && load!.startMs < newest.invokeMs) {
        report(
          "LB2",
          op,
          `read ${op.id} on ${op.process} completed at ${op.completeMs.toFixed(3)} ms with ` +
            `load ${load!.id} of ${op.key} started at ${load!.startMs.toFixed(3)} ms, but ` +
            `invalidate ${newest.id} (started ${newest.invokeMs.toFixed(3)} ms) had ` +
            `completed at ${newest.completeMs!.toFixed(3)} ms, more than maxStalenessMs ` +
            `${bound} earlier`,
          [newest.id],
        );
      }
    } else {
      checked.LB3++;
      const newest = index.startedBefore(op.invokeMs);
      if (newest !== undefined && load!.startMs < newest.invokeMs) {
        report(
          "LB3",
          op,
          `read ${op.id} on ${op.process} started at ${op.invokeMs.toFixed(3)} ms after ` +
            `invalidate ${newest.id} of ${op.key} completed (${
              newest.completeMs!.toFixed(3)
            } ms), but answered load ${load!.id}, started at ${
              load!.startMs.toFixed(3)
            } ms, before that invalidation started (${newest.invokeMs.toFixed(3)} ms)`,
          [newest.id],
        );
      }
    }
  }
  const results = Object.fromEntries(
    LOADER_GUARANTEES.map((g) => [g, failed.has(g) ? "fail" : checked[g] > 0 ? "pass" : "skipped"]),
  ) as Record<LoaderGuarantee, "pass" | "fail" | "skipped">;
  return { violations, results, checked };
}

/** Whether `op` answers what `load`, run by its node for its key, read from the source. */
function validAnswer(op: LoaderOp, load: LoadLogEntry | undefined): boolean {
  if (load === undefined || load.process !== op.process || load.key !== op.key) return false;
  if (load.startSeq >= op.answerSeq!) return false;
  if (load.version === undefined) return false; // its source read never took effect
  return op.found === (load.value !== null) && (op.found ? op.value === load.value : true);
}

/** The drops of each node and key, in order. */
function dropIndex(history: LoaderHistory) {
  const byNodeKey = new Map<string, { seq: number; atMs: number }[]>();
  for (const d of history.drops) {
    const id = `${d.process}\u0000${d.key}`;
    let list = byNodeKey.get(id);
    if (list === undefined) byNodeKey.set(id, list = []);
    list.push({ seq: d.seq, atMs: d.atMs });
  }
  return {
    /** The first drop of `key` on `process` after order position `seq`. */
    firstAfter(process: string, key: string, seq: number) {
      const list = byNodeKey.get(`${process}\u0000${key}`);
      if (list === undefined) return undefined;
      let lo = 0, hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid]!.seq <= seq) lo = mid + 1;
        else hi = mid;
      }
      return list[lo];
    },
  };
}

/** Per key, the ok invalidations by completion, each with the latest-starting one so far. */
function invalidationIndex(ops: readonly LoaderOp[]) {
  const byKey = new Map<string, LoaderOp[]>();
  for (const op of ops) {
    if (op.kind !== "invalidate" || op.outcome !== "ok" || op.completeMs === null) continue;
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, list = []);
    list.push(op);
  }
  const index = new Map<string, { startedBefore(t: number): LoaderOp | undefined }>();
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.completeMs! - b.completeMs!);
    const latest: LoaderOp[] = [];
    for (const op of list) {
      const prev = latest[latest.length - 1];
      latest.push(prev !== undefined && prev.invokeMs > op.invokeMs ? prev : op);
    }
    index.set(key, {
      /** Of the invalidations completed before `t`, the one that started latest. */
      startedBefore(t: number) {
        let lo = 0, hi = list.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (list[mid]!.completeMs! < t) lo = mid + 1;
          else hi = mid;
        }
        return lo === 0 ? undefined : latest[lo - 1];
      },
    });
  }
  return index;
}
