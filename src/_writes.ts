/**
 * Private: a {@linkcode Warp} node's conditional writes: the store read and conditional
 * write that `update`, `compareAndSet` and merged `set`s run on (`_update.ts` drives the
 * retries), the registration and lookup of a key's merge, and what `transaction`
 * (`_transaction.ts`) needs of the node.
 *
 * Design: every conditional write goes through the core as a write with an expected
 * version (`writeAt`), so a strong key's goes through the strong protocol and an eventual
 * key's invalidates as any write does. Rejected: writing the store directly with
 * `expectedVersion` and invalidating afterwards, which would skip the strong protocol's
 * write slot and let a node serve the old value after the write resolved.
 *
 * @module
 */

import type { Codec } from "./codec.ts";
import { WarpError } from "./core/errors.ts";
import type { NodeCore } from "./core/node.ts";
import type { KeyPolicy } from "./core/registry.ts";
import type { Store } from "./store.ts";
import { sealEnvelope } from "./_lease_envelope.ts";
import { describe } from "./_describe.ts";
import type { Driver } from "./_driver.ts";
import { mergeReducer, runUpdate } from "./_update.ts";
import type { Merge, StoredForUpdate, UpdateIo } from "./_update.ts";
import type { TransactionIo } from "./_transaction.ts";
import { timeoutAfter, withTimeout } from "./_wake_timer.ts";
import type { WarpKeyOptions } from "./_warp_options.ts";

/** What {@linkcode Writes} writes through, all owned by the node. */
export interface WritesOptions<T> {
  readonly core: NodeCore;
  readonly driver: Driver<T>;
  readonly store: Store;
  readonly codec: Codec<T>;
  readonly clock: () => number;
  readonly ioTimeoutMs: number;
}

/** The conditional writes of a node, and its merges. */
export class Writes<T> {
  readonly #core: NodeCore;
  readonly #driver: Driver<T>;
  readonly #store: Store;
  readonly #codec: Codec<T>;
  readonly #clock: () => number;
  readonly #ioTimeoutMs: number;
  /** Registered merges, by the pattern of their registration. */
  readonly #merges = new Map<string, Merge<T>>();

  /** The writes of `options.core`, driven by `options.driver`. */
  constructor(options: WritesOptions<T>) {
    this.#core = options.core;
    this.#driver = options.driver;
    this.#store = options.store;
    this.#codec = options.codec;
    this.#clock = options.clock;
    this.#ioTimeoutMs = options.ioTimeoutMs;
  }

  /** The store read and conditional write that `update` and merged writes run on. */
  readonly updateIo: UpdateIo<T> = {
    read: (key) =>
      this.#driver.readStored(key).then((stored): StoredForUpdate<T> => ({
        found: stored.bytes !== undefined,
        value: stored.value as T | undefined,
        version: stored.version,
        leases: stored.leases,
      })),
    write: (key, value, expectedVersion, leases) =>
      this.writeAt(key, value, expectedVersion, leases),
  };

  transactionIo(): TransactionIo<T> {
    const store = this.#store;
    return {
      policyOf: (key) => this.#core.policyOf(key),
      merges: (key) => this.mergeOf(key) !== undefined,
      encode: (key, value) => sealEnvelope(this.#driver.encode(key, value), []),
      transact: store.transact === undefined ? undefined : (steps) =>
        withTimeout(
          () => store.transact!(steps),
          this.#ioTimeoutMs,
          timeoutAfter(this.#ioTimeoutMs, `Store transaction of ${steps.length} keys`),
        ),
      committed: (key, version) => {
        const input = {
          value: undefined,
          payload: undefined,
          sizeBytes: 0,
          committedVersion: version,
        };
        return this.#driver.run((op, now) => this.#core.set(op, key, input, now));
      },
      prepareStrong: async (keys) => {
        let handle = 0;
        const result = await this.#driver.run((op, now) => {
          handle = op;
          this.#core.prepareTransaction(op, keys, now);
        }, "write");
        return { handle, versions: result.value as number[] };
      },
      finishStrong: (handle, outcome) =>
        this.#driver.step(() => this.#core.finishTransaction(handle, outcome, this.#clock())),
    };
  }

  /** A conditional write through the core (every mode's protocol, strong included). */
  async writeAt(
    key: string,
    value: T,
    expectedVersion: number,
    leases: readonly string[],
  ): Promise<number> {
    const encoded = this.#driver.encode(key, value);
    const input = {
      value: this.#codec.decode(encoded),
      payload: sealEnvelope(encoded, leases),
      sizeBytes: encoded.byteLength,
      ...(leases.length > 0 && { leases }),
      expectedVersion,
    };
    const result = await this.#driver.run((op, now) => this.#core.set(op, key, input, now));
    return result.version;
  }

  registerMerge(pattern: string, options: WarpKeyOptions<T>): KeyPolicy {
    const { merge, ...rest } = options;
    if (typeof merge !== "function") {
      throw new TypeError(`Invalid merge of ${describe(pattern)}: ${describe(merge)}`);
    }
    if (rest.origin === "loader") {
      throw new TypeError(
        `A loader-backed key is never written to the store, so it cannot merge: ${
          describe(pattern)
        }`,
      );
    }
    const policy = this.#core.register(pattern, rest);
    this.#merges.set(pattern, merge);
    return policy;
  }

  mergeOf(key: string): Merge<T> | undefined {
    if (this.#merges.size === 0) return undefined;
    const policy = this.#core.policyOf(key);
    return policy === undefined ? undefined : this.#merges.get(policy.pattern);
  }

  /** A `set` of a key with a merge: an update whose reducer is `merge(current, value)`. */
  async setMerged(
    key: string,
    merge: Merge<T>,
    value: T,
    leases: readonly string[],
  ): Promise<number> {
    const result = await runUpdate(
      this.updateIo,
      key,
      mergeReducer(merge, value),
      {},
      leases.length > 0 ? leases : undefined,
    );
    if (result.status === "ok") return result.version;
    throw new WarpError(
      "STORE_CONFLICT",
      `Merged write of ${describe(key)} lost the race ${result.attempts} times`,
    );
  }
}
