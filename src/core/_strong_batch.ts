/**
 * The strong-distributed side of a multi-key transaction: the strong write protocol of
 * `_strong.ts` run around a commit the driver performs (`Store.transact`). `prepare`
 * claims each strong key's write slot **in the order of its holder record's key** — one
 * global order, so two transactions never wait on each other in a cycle — and, for each,
 * revokes every holder (acknowledgements, notices, session and lease waits: unchanged)
 * and pins the store version in the record. Once every key is ready, the op resolves
 * with the pinned versions; the driver commits with each strong key conditional on its
 * pinned version, then calls `finish`: committed keys are released at their new version
 * (nothing is installed in any L1: the next read fills), a conflict or failure releases
 * every slot without one, and an unknown outcome leaves the slots claimed.
 *
 * Design chosen: reuse the single-key protocol's fence. A writer that stalls between its
 * claim and its store write may be taken over; the taker writes at the version pinned in
 * the record, so at most one of the two writes lands. Here the transaction's commit is
 * conditional on those same pinned versions: if a taker landed on any key, the whole
 * commit conflicts and nothing of it lands; if the commit landed first, the taker's write
 * conflicts, and it learns and pins the new version (a CAS on the record, which proves
 * the slot is still its) before it writes. An unknown commit is left exactly like a
 * stalled writer (slot claimed, version pinned), so the same takeover rules hold.
 *
 * Rejected: a coordinator lock over the key set (one more round trip and a second
 * mechanism beside the holder records, which already serialise writers); claiming all
 * keys at once in parallel (two transactions over overlapping keys in opposite order
 * would each hold one and wait out the other's takeover delay); and installing the new
 * values on commit (the driver's commit may be reported late; a fill is always safe).
 *
 * @module
 */

import { assert, WarpError } from "./errors.ts";
import type { KeyPolicy } from "./registry.ts";
import type { NodeKernel } from "./_kernel.ts";
import { holderRecordKey } from "./_holders.ts";
import type { StrongWrites } from "./_strong.ts";

/**
 * What a write whose store phase is performed outside (a transaction's commit) tells its
 * owner, `_strong_batch.ts`. Its caller op is the owner's: the write answers none.
 */
export interface ExternalHooks {
  /** The version the owner expects, if any: a record at another one fails the write early. */
  readonly expectedVersion?: number;
  /** The write slot is claimed: the owner may claim the next key's. */
  claimed(): void;
  /**
   * Every holder is revoked or waited out, and `version` is pinned in the record: the
   * commit may go, conditional on `version` (the fence a stalled writer's taker relies on).
   */
  ready(version: number): void;
  /** The write failed before it was ready; its slot is given back. */
  failed(error: WarpError): void;
}

/** A strong write whose store phase is performed outside; opaque to its owner. */
export interface ExternalWrite {
  readonly key: string;
}

/** How an external write's commit ended (see {@linkcode StrongWrites.completeExternal}). */
export type ExternalOutcome =
  /** Committed at `version`: release the slot at it, caching nothing here. */
  | { readonly kind: "committed"; readonly version: number }
  /** Certainly not written, or written and settled (a failure after applying): release. */
  | { readonly kind: "failed"; readonly error: WarpError }
  /** The commit may still land: keep the slot claimed, as a stalled writer's. */
  | { readonly kind: "unknown" };

/** Most transactions prepared and not yet finished on one node. */
const BATCHES_MAX = 10_000;

/** One strong key of a transaction to prepare. */
export interface StrongTxKey {
  readonly key: string;
  readonly policy: KeyPolicy;
  /** The caller's condition: the commit is a conflict unless the store is at it. */
  readonly expectedVersion?: number;
}

/** How the driver's commit of a prepared transaction ended. */
export type TransactionOutcome =
  /** Committed: each key's new version, in the order the keys were prepared in. */
  | { readonly kind: "committed"; readonly versions: readonly number[] }
  /** Certainly nothing was written (a conflict), or the store failed and settled. */
  | { readonly kind: "failed" }
  /** The commit may still land (a timeout, a lost connection). */
  | { readonly kind: "unknown" };

interface Batch {
  readonly op: number;
  /** The keys in the caller's order. */
  readonly keys: readonly StrongTxKey[];
  /** Indexes into `keys`, in claim order. */
  readonly order: readonly number[];
  /** Each key's write, once started (caller's order). */
  readonly writes: (ExternalWrite | undefined)[];
  /** Each key's pinned version once ready (caller's order). */
  readonly pinned: (number | undefined)[];
  started: number;
  ready: number;
  state: "preparing" | "prepared" | "failed";
}

/** Most strong keys one transaction prepares (the stores' step limit). */
const TX_KEYS_MAX = 100;

/**
 * The strong keys of a transaction as `prepare` takes them, checked: 1 to 100 distinct
 * keys, each registered strong-distributed and store-backed (TypeError), each
 * `expectedVersion` a version (RangeError).
 */
export function strongTxKeys(
  keys: readonly { readonly key: string; readonly expectedVersion?: number }[],
  find: (key: string) => KeyPolicy | undefined,
): StrongTxKey[] {
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > TX_KEYS_MAX) {
    throw new RangeError(`Invalid transaction keys, expected 1 to ${TX_KEYS_MAX}: ${keys}`);
  }
  const seen = new Set<string>();
  return keys.map(({ key, expectedVersion }) => {
    const policy = find(key);
    if (policy?.mode !== "strong-distributed" || policy.origin === "loader") {
      throw new TypeError(`Not a store-backed strong-distributed key: ${key}`);
    }
    if (seen.has(key)) throw new TypeError(`A key may appear in a transaction once: ${key}`);
    seen.add(key);
    if (
      expectedVersion !== undefined &&
      (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0)
    ) {
      throw new RangeError(`Invalid expectedVersion of ${key}: ${expectedVersion}`);
    }
    return expectedVersion === undefined ? { key, policy } : { key, policy, expectedVersion };
  });
}

/** The transactions of one node whose strong keys are being prepared or wait to finish. */
export class StrongBatches {
  readonly #k: NodeKernel;
  readonly #strong: StrongWrites;
  readonly #batches = new Map<number, Batch>();

  /** Prepares transactions through `strong`, the node's strong protocol. */
  constructor(kernel: NodeKernel, strong: StrongWrites) {
    this.#k = kernel;
    this.#strong = strong;
  }

  /**
   * Prepares the strong keys `keys` of a transaction as caller op `op` (admitted): resolves
   * with `value` the pinned versions (caller's order) once every key is claimed and its
   * holders revoked, or rejects (`STORE_CONFLICT` when a caller's `expectedVersion` is not
   * the pinned one; `CONTENDED`, `TIMEOUT`, `COORDINATOR_UNAVAILABLE`, `STORE_ERROR`), every
   * slot then given back. The deadline is the smallest `writeTimeoutMs` of the keys.
   */
  prepare(op: number, keys: readonly StrongTxKey[]): void {
    const k = this.#k;
    assert(keys.length > 0, "A transaction prepares at least one strong key");
    if (this.#batches.size >= BATCHES_MAX) {
      k.reject(op, new WarpError("LIMIT_EXCEEDED", `Too many transactions: ${BATCHES_MAX}`));
      return;
    }
    const timeoutMs = Math.min(...keys.map((key) => key.policy.writeTimeoutMs));
    const order = keys.map((_, i) => i).sort((a, b) => {
      const x = holderRecordKey(keys[a]!.key), y = holderRecordKey(keys[b]!.key);
      return x < y ? -1 : x > y ? 1 : 0;
    });
    const batch: Batch = {
      op,
      keys,
      order,
      writes: keys.map(() => undefined),
      pinned: keys.map(() => undefined),
      started: 0,
      ready: 0,
      state: "preparing",
    };
    const timer = k.arm(k.now + timeoutMs, () => {
      if (batch.state !== "preparing") return;
      this.#fail(
        batch,
        new WarpError("TIMEOUT", `Strong transaction could not prepare in time: ${op}`),
      );
    });
    k.ops.set(op, { kind: "write", key: keys[0]!.key, timer, answered: false });
    this.#batches.set(op, batch);
    this.#startNext(batch);
  }

  /** Claims the next key in order, once the previous one's slot is held. */
  #startNext(batch: Batch): void {
    if (batch.state !== "preparing" || batch.started >= batch.order.length) return;
    const index = batch.order[batch.started++]!;
    const { key, policy, expectedVersion } = batch.keys[index]!;
    batch.writes[index] = this.#strong.writeExternal(key, policy, {
      ...(expectedVersion !== undefined && { expectedVersion }),
      claimed: () => this.#startNext(batch),
      ready: (version) => this.#ready(batch, index, version),
      failed: (error) => this.#fail(batch, error),
    });
  }

  #ready(batch: Batch, index: number, version: number): void {
    if (batch.state !== "preparing") return;
    const expected = batch.keys[index]!.expectedVersion;
    if (expected !== undefined && expected !== version) {
      this.#fail(
        batch,
        new WarpError("STORE_CONFLICT", `Version moved: ${batch.keys[index]!.key}`),
      );
      return;
    }
    batch.pinned[index] = version;
    if (++batch.ready < batch.keys.length) return;
    batch.state = "prepared";
    this.#k.resolve(batch.op, {
      found: false,
      value: batch.pinned.slice() as number[],
      version: 0,
      source: "none",
    });
  }

  /** A key failed before the commit: give every slot back, answer the op with `error`. */
  #fail(batch: Batch, error: WarpError): void {
    if (batch.state !== "preparing") return;
    batch.state = "failed";
    this.#batches.delete(batch.op);
    for (const write of batch.writes) {
      if (write !== undefined) this.#strong.completeExternal(write, { kind: "failed", error });
    }
    this.#k.answerWrite(batch.op, error);
  }

  /**
   * Ends prepared transaction `op` with the driver's commit `outcome` (see
   * {@linkcode TransactionOutcome}). A transaction not prepared here is a TypeError.
   */
  finish(op: number, outcome: TransactionOutcome): void {
    const batch = this.#batches.get(op);
    if (batch === undefined || batch.state !== "prepared") {
      throw new TypeError(`No prepared transaction: ${op}`);
    }
    if (outcome.kind === "committed" && outcome.versions.length !== batch.keys.length) {
      throw new TypeError(
        `Expected ${batch.keys.length} committed versions: ${outcome.versions.length}`,
      );
    }
    this.#batches.delete(op);
    const error = new WarpError("STORE_CONFLICT", `Transaction not committed: ${op}`);
    batch.writes.forEach((write, i) => {
      assert(write !== undefined, `Prepared transaction ${op} lacks a write`);
      this.#strong.completeExternal(
        write,
        outcome.kind === "committed"
          ? { kind: "committed", version: outcome.versions[i]! }
          : outcome.kind === "failed"
          ? { kind: "failed", error }
          : { kind: "unknown" },
      );
    });
  }
}
