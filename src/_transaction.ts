/**
 * The runtime side of `Warp.transaction`: several keys written all or nothing through the
 * store's optional `transact`, with checks on store versions. Invalidations go out only
 * after the commit, and nothing is installed in any L1 (the next read of each key goes
 * to the store): a failed transaction leaves no trace in a cache, and a committed one
 * never races an older value into L1.
 *
 * Design chosen: strong-distributed keys first go through the core's
 * `prepareTransaction` (`core/_strong_batch.ts`: write slots claimed in key order,
 * holders revoked, each key's store version pinned); the commit is then conditional on
 * those pinned versions, and `finishTransaction` releases the slots (at the new versions,
 * without one after a conflict, or not at all when the outcome is unknown, so a later
 * writer's takeover stays fenced by the pinned versions). After the commit, each other
 * written key is handed to the core as a write already committed at its version
 * (`WriteInput.committedVersion`), which runs its mode's invalidation (eventual-
 * distributed: the sequenced invalidation every node must hear within its staleness
 * bound) without a store write. Rejected: committing strong keys as committed writes
 * after the fact (a holder would serve the old value after the commit), and installing
 * any value on commit.
 *
 * @module
 */

import { WarpError } from "./core/errors.ts";
import type { KeyPolicy } from "./core/registry.ts";
import type { TransactionOutcome } from "./core/node.ts";
import type { StoreTransactionStep } from "./store.ts";
import { describe, describeError } from "./_describe.ts";
import { checkTransactionSteps } from "./store/_transaction.ts";
import { checkKey } from "./_check.ts";

/** One step of {@linkcode Warp.transaction}. */
export type TransactionStep<T> =
  /** Write `value` (conditionally, with `expectedVersion`; 0: only if never written). */
  | {
    readonly kind: "set";
    readonly key: string;
    readonly value: T;
    readonly expectedVersion?: number;
  }
  /** Delete the key (conditionally, with `expectedVersion`). */
  | { readonly kind: "delete"; readonly key: string; readonly expectedVersion?: number }
  /** Require the key to be at `expectedVersion`; writes nothing. */
  | { readonly kind: "check"; readonly key: string; readonly expectedVersion: number };

/** The result of {@linkcode Warp.transaction}: a value, not an exception. */
export type TransactionResult =
  /** Committed: each step's version (a write's new one, a check's current one). */
  | { readonly status: "ok"; readonly versions: readonly number[] }
  /** A check or conditional write found another version: nothing was written anywhere. */
  | { readonly status: "conflict" };

/** What a transaction needs from its node. */
export interface TransactionIo<T> {
  policyOf(key: string): KeyPolicy | undefined;
  /** Whether the key's registration has a merge (then it cannot be written here). */
  merges(key: string): boolean;
  /** The codec's bytes of `value`, within `valueBytesMax`. */
  encode(key: string, value: T): Uint8Array;
  /** The store's transact, within the node's I/O deadline; absent if the store has none. */
  transact: ((steps: readonly StoreTransactionStep[]) => Promise<number[]>) | undefined;
  /** Runs the committed write of `key` at `version` through the node's core. */
  committed(key: string, version: number): Promise<unknown>;
  /**
   * Claims the strong-distributed keys (revoking their holders) and pins their versions
   * (`NodeCore.prepareTransaction`); `handle` names the transaction to `finish`.
   */
  prepareStrong(
    keys: readonly { key: string; expectedVersion?: number }[],
  ): Promise<{ handle: number; versions: readonly number[] }>;
  /** Ends a prepared transaction with its commit's outcome (`NodeCore.finishTransaction`). */
  finishStrong(handle: number, outcome: TransactionOutcome): void;
}

/**
 * Runs one transaction: checks every step (a `TypeError` or `RangeError` before any I/O),
 * commits, then invalidates each written key through its mode. A store failure rejects
 * (`STORE_ERROR` or `TIMEOUT`: the commit's outcome is unknown); so does a failure of the
 * invalidations after a commit (the transaction did commit).
 *
 * @example Against a MemoryStore, with invalidations only counted
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStore } from "./store/memory.ts";
 * import { runTransaction } from "./_transaction.ts";
 * const store = new MemoryStore();
 * const invalidated: string[] = [];
 * const result = await runTransaction<string>({
 *   policyOf: () => ({ mode: "eventual-distributed", origin: "store" }) as never,
 *   merges: () => false,
 *   encode: (_key, value) => new TextEncoder().encode(value),
 *   transact: (steps) => store.transact(steps),
 *   committed: async (key) => invalidated.push(key),
 *   prepareStrong: () => Promise.reject(new Error("no strong keys here")),
 *   finishStrong: () => {},
 * }, [{ kind: "set", key: "a", value: "x" }, { kind: "check", key: "b", expectedVersion: 0 }]);
 * assert.deepEqual(result, { status: "ok", versions: [1, 0] });
 * assert.deepEqual(invalidated, ["a"]);
 * ```
 */
export async function runTransaction<T>(
  io: TransactionIo<T>,
  steps: readonly TransactionStep<T>[],
): Promise<TransactionResult> {
  const storeSteps = prepare(io, steps);
  checkTransactionSteps(storeSteps); // distinct keys, at most 100 steps: before any I/O
  if (io.transact === undefined) {
    throw new TypeError(
      "The store has no transact: transactions need one (MemoryStore, PostgresStore)",
    );
  }
  const strong = storeSteps.flatMap((step, i) =>
    step.kind === "write" && io.policyOf(step.key)?.mode === "strong-distributed" ? [i] : []
  );
  let handle: number | undefined;
  if (strong.length > 0) {
    try {
      const prepared = await io.prepareStrong(strong.map((i) => {
        const { key, expectedVersion } = storeSteps[i]!;
        return expectedVersion === undefined ? { key } : { key, expectedVersion };
      }));
      handle = prepared.handle;
      // The commit is conditional on the pinned versions: the fence against a taker.
      strong.forEach((i, j) => {
        storeSteps[i] = { ...storeSteps[i]!, expectedVersion: prepared.versions[j]! };
      });
    } catch (error) {
      if (error instanceof WarpError && error.code === "STORE_CONFLICT") {
        return { status: "conflict" };
      }
      throw error;
    }
  }
  let versions: number[];
  try {
    versions = await io.transact(storeSteps);
  } catch (error) {
    const conflict = error instanceof WarpError && error.code === "STORE_CONFLICT";
    // Anything but a conflict may have committed: the slots stay claimed (fenced).
    if (handle !== undefined) io.finishStrong(handle, { kind: conflict ? "failed" : "unknown" });
    if (conflict) return { status: "conflict" };
    if (error instanceof WarpError || error instanceof TypeError || error instanceof RangeError) {
      throw error;
    }
    throw new WarpError("STORE_ERROR", `Transaction failed: ${describeError(error)}`, {
      cause: error,
    });
  }
  if (handle !== undefined) {
    io.finishStrong(handle, { kind: "committed", versions: strong.map((i) => versions[i]!) });
  }
  await Promise.all(
    steps.map((step, i) =>
      step.kind === "check" || strong.includes(i) ? undefined : io.committed(step.key, versions[i]!)
    ),
  );
  return { status: "ok", versions };
}

function prepare<T>(
  io: TransactionIo<T>,
  steps: readonly TransactionStep<T>[],
): StoreTransactionStep[] {
  if (!Array.isArray(steps) || steps.length === 0) {
    throw new RangeError(
      `Invalid transaction, expected a non-empty array of steps: ${describe(steps)}`,
    );
  }
  return steps.map((step) => {
    if (typeof step !== "object" || step === null) {
      throw new TypeError(`Invalid transaction step: ${describe(step)}`);
    }
    checkKey(step.key);
    const policy = io.policyOf(step.key);
    if (policy === undefined) {
      throw new WarpError("UNREGISTERED_KEY", `Key matches no registration: ${describe(step.key)}`);
    }
    if (policy.origin === "loader") {
      throw new TypeError(
        `A loader-backed key is never written to the store: ${describe(step.key)}`,
      );
    }
    const expected = step.expectedVersion === undefined
      ? {}
      : { expectedVersion: step.expectedVersion };
    switch (step.kind) {
      case "check":
        return { kind: "check", key: step.key, ...expected };
      case "delete":
        return { kind: "write", key: step.key, ...expected };
      case "set":
        if (io.merges(step.key)) {
          throw new TypeError(
            `A key with a merge cannot be set in a transaction: ${describe(step.key)}`,
          );
        }
        return {
          kind: "write",
          key: step.key,
          value: io.encode(step.key, step.value),
          ...expected,
        };
      default:
        throw new TypeError(
          `Invalid kind of a transaction step: ${describe((step as { kind: unknown }).kind)}`,
        );
    }
  });
}
