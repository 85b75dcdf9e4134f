/**
 * The transaction workload of the cache scenario (T1): a node writes two or three keys,
 * eventual- and strong-distributed mixed, in one store transaction, as `Warp.transaction`
 * does. Its strong keys are prepared first (`NodeCore.prepareTransaction`: slots claimed
 * in key order, holders revoked, versions pinned), the commit is conditional on the
 * pinned versions, then the core hears the outcome (`finishTransaction`); each eventual
 * key is handed to its core as a write committed at its version
 * (`WriteInput.committedVersion`). Each key's write is recorded as an ordinary `write` op
 * of the history, from the transaction's call to its answer, so S1/S2 judge the strong
 * keys and E1–E4, E1s and EP the eventual ones exactly as a plain write; the transaction
 * itself is recorded (`History.transactions`) and the store logs its writes with its id,
 * so T1 judges all-or-nothing and that nothing of a failed one is ever served.
 *
 * @module
 */

import type { NodeCore, TransactionOutcome } from "../src/core/node.ts";
import type { OpResult } from "../src/core/effects.ts";
import type { WarpError } from "../src/core/errors.ts";
import type { TransactionRecord } from "./history.ts";
import type { WriteDraft } from "./_updates.ts";

/** One write of a transaction's commit: conditional on `expectedVersion` if given. */
export interface TransactionWrite {
  readonly key: string;
  readonly payload: unknown;
  readonly expectedVersion?: number;
}

/** What the transaction workload needs from the cluster that runs it. */
export interface TransactionHost<N> {
  now(): number;
  /** A fresh op id. */
  nextOp(): number;
  /** Records `draft` in the history. */
  record(draft: WriteDraft): void;
  /** Records the transaction in the history (its outcome is updated in place). */
  recordTransaction(tx: { -readonly [K in keyof TransactionRecord]: TransactionRecord[K] }): void;
  /** Whether `key` is strong-distributed. */
  isStrong(key: string): boolean;
  /** Whether the strong keys are committed without preparing them (a canary). */
  readonly skipPrepare: boolean;
  /** Runs `prepareTransaction` as op `id` on the node's core; `done` gets its answer. */
  prepare(
    node: N,
    core: NodeCore,
    id: number,
    keys: readonly string[],
    done: (result: OpResult | WarpError) => void,
  ): void;
  /** Runs `finishTransaction` of op `id` on the node's core. */
  finish(node: N, core: NodeCore, id: number, outcome: TransactionOutcome): void;
  /**
   * Commits the writes in the simulated store (one call) as transaction `tx`: the new
   * versions, `"conflict"` (nothing written), or `undefined` if the call failed.
   */
  commit(
    node: N,
    core: NodeCore,
    tx: number,
    writes: readonly TransactionWrite[],
    answer: (versions: number[] | "conflict" | undefined) => void,
  ): void;
  /** Runs op `id` on the node's core; `done` gets the core's answer. */
  committed(
    node: N,
    core: NodeCore,
    id: number,
    key: string,
    version: number,
    done: (result: OpResult | WarpError) => void,
  ): void;
  /** The transaction ended (the node's in-flight count). */
  ended(node: N): void;
}

/**
 * Starts a transaction writing `keys` on `node` (running); its history ops are recorded
 * at once, unknown until answered. A `SimCluster` with `transactions: true` calls it.
 *
 * @example
 * ```ts
 * import { SimCluster } from "./cluster.ts";
 * const run = new SimCluster({ seed: 1, nodes: 3, safetyMs: 300, livenessMs: 200, transactions: true }).run();
 * console.log((run.history.transactions?.length ?? 0) > 0); // true
 * ```
 */
export function startTransaction<N extends { readonly id: string; core: NodeCore | undefined }>(
  host: TransactionHost<N>,
  node: N,
  keys: readonly string[],
): void {
  const core = node.core!;
  const drafts: WriteDraft[] = keys.map((key) => {
    const id = host.nextOp();
    const draft: WriteDraft = {
      id,
      process: node.id,
      key,
      kind: "write",
      value: `${node.id}-${id}`,
      invokeMs: host.now(),
      completeMs: null,
      outcome: "unknown",
    };
    host.record(draft);
    return draft;
  });
  const tx: { -readonly [K in keyof TransactionRecord]: TransactionRecord[K] } = {
    id: drafts[0]!.id,
    ops: drafts.map((d) => d.id),
    outcome: "unknown",
  };
  host.recordTransaction(tx);
  const strong = host.skipPrepare ? [] : drafts.filter((d) => host.isStrong(d.key));
  const fail = () => {
    tx.outcome = "fail";
    for (const draft of drafts) {
      draft.outcome = "fail";
      draft.completeMs = host.now();
    }
    host.ended(node);
  };
  if (strong.length === 0) {
    commit(host, node, core, tx, drafts, undefined, fail);
    return;
  }
  const prepareOp = host.nextOp();
  host.prepare(node, core, prepareOp, strong.map((d) => d.key), (result) => {
    if (node.core !== core) return; // crashed: unknown
    if ("code" in result) {
      fail(); // nothing was claimed, nothing written
      return;
    }
    const pinned = result.value as number[];
    const expected = new Map(strong.map((d, i) => [d.key, pinned[i]!]));
    commit(host, node, core, tx, drafts, { op: prepareOp, expected }, fail);
  });
}

function commit<N extends { readonly id: string; core: NodeCore | undefined }>(
  host: TransactionHost<N>,
  node: N,
  core: NodeCore,
  tx: { outcome: TransactionRecord["outcome"] },
  drafts: readonly WriteDraft[],
  prepared: { op: number; expected: ReadonlyMap<string, number> } | undefined,
  fail: () => void,
): void {
  const writes = drafts.map((d): TransactionWrite => {
    const expectedVersion = prepared?.expected.get(d.key);
    return expectedVersion === undefined
      ? { key: d.key, payload: d.value }
      : { key: d.key, payload: d.value, expectedVersion };
  });
  host.commit(node, core, (tx as TransactionRecord).id, writes, (versions) => {
    if (node.core !== core) return; // crashed: unknown (its claimed slots are taken over)
    const finish = (outcome: TransactionOutcome) => {
      if (prepared !== undefined) host.finish(node, core, prepared.op, outcome);
    };
    if (versions === undefined) {
      // The store call failed, before or after applying: the outcome is unknown, and the
      // core hears it as `Warp.transaction` tells it (slots left claimed for a takeover),
      // though the simulated store has settled by then.
      finish({ kind: "unknown" });
      host.ended(node);
      return;
    }
    if (versions === "conflict") {
      finish({ kind: "failed" });
      fail();
      return;
    }
    tx.outcome = "ok";
    if (prepared !== undefined) {
      const strongVersions = drafts.flatMap((d, i) =>
        prepared.expected.has(d.key) ? [versions[i]!] : []
      );
      finish({ kind: "committed", versions: strongVersions });
    }
    let open = 0;
    drafts.forEach((draft, i) => {
      if (host.isStrong(draft.key)) {
        // Revoked before the commit, released after it: done once committed (under the
        // canary, answered just as soon, with no holder revoked).
        draft.outcome = "ok";
        draft.completeMs = host.now();
        draft.version = versions[i]!;
        return;
      }
      open++;
      host.committed(node, core, draft.id, draft.key, versions[i]!, (result) => {
        if (!("code" in result)) {
          draft.outcome = "ok";
          draft.completeMs = host.now();
          draft.version = result.version;
        } // else committed, its invalidation not confirmed: unknown stays
        if (--open === 0) host.ended(node);
      });
    });
    if (open === 0) host.ended(node);
  });
}
