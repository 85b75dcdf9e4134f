/**
 * The transaction workload of the cache scenario (T1, its second half): a node writes two
 * eventual-distributed keys in one store transaction, then hands each key to its core as
 * a write committed at its version (`WriteInput.committedVersion`, what
 * `Warp.transaction` does). Each key's write is recorded as an ordinary `write` op of the
 * history, from the transaction's call to its answer, so E1–E4, E1s and EP judge what
 * every node serves after it exactly as they judge a plain write.
 *
 * Not checked here: the first half of T1 (no transaction half-applied in the store) holds
 * by construction of the simulated store, which applies a transaction at one instant;
 * the real stores are tested for it (`test/store_transact_test.ts`).
 *
 * @module
 */

import type { NodeCore } from "../src/core/node.ts";
import type { OpResult } from "../src/core/effects.ts";
import type { WarpError } from "../src/core/errors.ts";
import type { WriteDraft } from "./_updates.ts";

/** What the transaction workload needs from the cluster that runs it. */
export interface TransactionHost<N> {
  now(): number;
  /** A fresh op id. */
  nextOp(): number;
  /** Records `draft` in the history. */
  record(draft: WriteDraft): void;
  /** Commits the writes in the simulated store (one call); `undefined` if the call failed. */
  commit(
    node: N,
    core: NodeCore,
    writes: readonly { key: string; payload: unknown }[],
    answer: (versions: number[] | undefined) => void,
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
 * console.log(run.history.ops.some((op) => op.kind === "write")); // true
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
  const writes = drafts.map((d) => ({ key: d.key, payload: d.value }));
  host.commit(node, core, writes, (versions) => {
    if (node.core !== core) return; // crashed: unknown
    if (versions === undefined) {
      // The store call failed, before or after applying: the outcome is unknown.
      host.ended(node);
      return;
    }
    let open = drafts.length;
    drafts.forEach((draft, i) => {
      host.committed(node, core, draft.id, draft.key, versions[i]!, (result) => {
        if (!("code" in result)) {
          draft.outcome = "ok";
          draft.completeMs = host.now();
          draft.version = result.version;
        } // else committed, its invalidation not confirmed: unknown stays
        if (--open === 0) host.ended(node);
      });
    });
  });
}
