/**
 * Private: a {@linkcode Warp} node's reads past the hit path: loader-backed reads (the
 * core loads on a miss with the call's or the registration's loader), `getOrSet` of a
 * store-backed key (read, load, then write conditionally on the version read), and batch
 * reads (`readMany`, `getMany`, `getOrSetMany`), whose misses' store reads go out together
 * in one driver step.
 *
 * Design: every read is a core operation started through the driver (`run`,
 * `startBatch`), so fills keep the core's version and epoch rules whatever the entry
 * point; this module only sequences them. Rejected: a store-backed `getOrSet` that writes
 * the loaded value unconditionally, which could overwrite a newer value another node wrote
 * between the read and the write (the conditional write makes the loser read the winner).
 *
 * @module
 */

import { WarpError } from "./core/errors.ts";
import type { Entry } from "./core/l1.ts";
import { entryAnswer } from "./core/l1.ts";
import type { NodeCore } from "./core/node.ts";
import { readSettings } from "./core/registry.ts";
import type { KeyPolicy, ReadOptions } from "./core/registry.ts";
import type { Store } from "./store.ts";
import { sealEnvelope } from "./_lease_envelope.ts";
import {
  BATCH_PARALLEL,
  batchLoader,
  inParallel,
  type LoadMany,
  type ManyResult,
  settleMany,
} from "./_batch.ts";
import { describe } from "./_describe.ts";
import type { Driver } from "./_driver.ts";
import {
  type BoundLoader,
  type LoadDecisions,
  type Loader,
  type ReadResult,
  readResult,
  splitReadOptions,
  type WarpReadOptions,
} from "./_warp_options.ts";

/** What {@linkcode Reads} reads through, all owned by the node. */
export interface ReadsOptions<T> {
  readonly core: NodeCore;
  readonly driver: Driver<T>;
  readonly store: Store;
  readonly clock: () => number;
  /** Registered loaders, by the pattern of their registration (the node fills it). */
  readonly loaders: ReadonlyMap<string, Loader<T>>;
  /** The L1 entry the core serves for a key now, its events handed on. */
  readonly hit: (key: string) => Entry | undefined;
}

/** The read paths of a node that may go past L1. */
export class Reads<T> {
  readonly #core: NodeCore;
  readonly #driver: Driver<T>;
  readonly #store: Store;
  readonly #clock: () => number;
  readonly #loaders: ReadonlyMap<string, Loader<T>>;
  readonly #hit: (key: string) => Entry | undefined;

  /** The read paths of `options.core`, driven by `options.driver`. */
  constructor(options: ReadsOptions<T>) {
    this.#core = options.core;
    this.#driver = options.driver;
    this.#store = options.store;
    this.#clock = options.clock;
    this.#loaders = options.loaders;
    this.#hit = options.hit;
  }

  /** A batch's read options, checked against every key's registration (misuse throws). */
  batchReadOptions(keys: readonly string[], options: unknown): ReadOptions | undefined {
    const { loader, core } = splitReadOptions(options as WarpReadOptions<T> | undefined);
    if (loader !== undefined) {
      throw new TypeError("Invalid option loader of a batch: getOrSetMany takes a loadMany");
    }
    if (core === undefined) return undefined;
    for (const key of keys) {
      const policy = this.#core.policyOf(key);
      if (policy !== undefined) readSettings(policy, core);
    }
    return core;
  }

  /**
   * Reads every key (see `startReads`): in one step when the store has `getMany`, else
   * at most {@linkcode BATCH_PARALLEL} store reads in flight.
   */
  async readAll(
    keys: readonly string[],
    core: ReadOptions | undefined,
    loaderOf: (policy: KeyPolicy) => Loader<T> | undefined,
  ): Promise<PromiseSettledResult<ReadResult<T>>[]> {
    if (this.#store.getMany !== undefined) {
      return await Promise.allSettled(this.startReads(keys, core, loaderOf));
    }
    const settled: PromiseSettledResult<ReadResult<T>>[] = new Array(keys.length);
    await inParallel(keys, BATCH_PARALLEL, async (key, i) => {
      const [reading] = this.startReads([key], core, loaderOf);
      settled[i] = (await Promise.allSettled([reading!]))[0]!;
    });
    return settled;
  }

  /**
   * Starts a read of every key in one driver step, each as `get` starts it (a hit answers
   * at once), so the store reads they need go out together. A loader-backed key loads with
   * `loaderOf` its registration; without one, only L1 can answer it (a TypeError).
   */
  startReads(
    keys: readonly string[],
    core: ReadOptions | undefined,
    loaderOf: (policy: KeyPolicy) => Loader<T> | undefined,
  ): Promise<ReadResult<T>>[] {
    return this.#driver.startBatch(keys, (op, key, now) => {
      const policy = this.#core.policyOf(key);
      if (policy?.origin === "loader") {
        const loader = loaderOf(policy);
        if (loader === undefined && this.#core.hit(key, now) === undefined) {
          throw new TypeError(
            `Key is loader-backed and its registration has no loader, pass one (getOrSetMany): ${
              describe(key)
            }`,
          );
        }
        if (loader !== undefined) {
          this.#driver.bindLoader(op, { loader, decisions: { ttlMs: undefined, cache: true } });
        }
      }
      this.#core.get(op, key, now, core);
    });
  }

  /**
   * Reads a loader-backed key: the core loads it on a miss with `loader`, or the key's
   * registered one. Without either, only L1 can answer (a TypeError otherwise).
   */
  async readLoaded(
    key: string,
    policy: KeyPolicy,
    loader: Loader<T> | undefined,
    core: ReadOptions | undefined,
  ): Promise<ReadResult<T>> {
    const chosen = loader ?? this.#loaders.get(policy.pattern);
    if (chosen === undefined) {
      const entry = this.#hit(key);
      if (entry !== undefined) return readResult(entryAnswer(entry, this.#clock(), "l1"));
      throw new TypeError(
        `Key is loader-backed and its registration has no loader, pass one (getOrSet): ${
          describe(key)
        }`,
      );
    }
    const bound = { loader: chosen, decisions: { ttlMs: undefined, cache: true } };
    // A hit in this step may start a refresh-ahead: it loads with the chosen loader.
    const reading = this.#driver.withLoaderInScope(chosen, () =>
      this.#driver.run((op, now) => {
        this.#driver.bindLoader(op, bound);
        this.#core.get(op, key, now, core);
      }, "read"));
    return readResult(await reading);
  }

  /**
   * getOrSet of a store-backed key: read it; if the store has no value, run `loader` (in
   * the core, under its hard timeout) and write what it returns, conditionally on the
   * version the read found — a node that lost that race answers the winner's value. A
   * not-found, or `skipCache()`, writes nothing.
   */
  async readOrLoad(
    key: string,
    loader: Loader<T>,
    core: ReadOptions | undefined,
  ): Promise<ReadResult<T>> {
    const read = readResult<T>(
      await this.#driver.run((op, now) => this.#core.get(op, key, now, core), "read"),
    );
    if (read.found || read.source === "fallback") return read;
    const bound = { loader, decisions: { ttlMs: undefined, cache: true } };
    const load = readResult<T>(
      await this.#driver.run((op, now) => {
        this.#driver.bindLoader(op, bound);
        this.#core.load(op, key, now, core);
      }, "load"),
    );
    return await this.#storeLoaded(key, read, load, bound.decisions, core);
  }

  /**
   * getOrSet's write of a loaded value of a store-backed key: conditionally on the version
   * `read` found, unless it is not-found or `skipCache()`. A node that lost the race reads
   * the winner's value.
   */
  async #storeLoaded(
    key: string,
    read: ReadResult<T>,
    load: ReadResult<T>,
    decisions: LoadDecisions,
    core: ReadOptions | undefined,
  ): Promise<ReadResult<T>> {
    const { ttlMs, cache } = decisions;
    if (!load.found || !cache) return { ...load, version: read.version };
    const encoded = this.#driver.encode(key, load.value as T);
    const input = {
      value: load.value,
      payload: sealEnvelope(encoded, []),
      sizeBytes: encoded.byteLength,
      expectedVersion: read.version,
      ...(ttlMs !== undefined ? { ttlMs } : core?.ttlMs !== undefined && { ttlMs: core.ttlMs }),
    };
    try {
      const written = await this.#driver.run(
        (op, now) => this.#core.set(op, key, input, now),
        "write",
      );
      const entry = this.#core.inspect(key);
      const fresh = entry?.version === written.version ? entry.freshUntilMs - this.#clock() : 0;
      return { ...load, version: written.version, freshForMs: Math.max(0, fresh) };
    } catch (error) {
      if (!(error instanceof WarpError) || error.code !== "STORE_CONFLICT") throw error;
      return readResult(
        await this.#driver.run((op, now) => this.#core.get(op, key, now, core), "read"),
      );
    }
  }

  /** `getOrSetMany` past its argument checks (`core`: its read options, checked). */
  async getOrSetMany(
    keys: readonly string[],
    loadMany: LoadMany<T>,
    core: ReadOptions | undefined,
  ): Promise<ManyResult<T>[]> {
    const settled: PromiseSettledResult<ReadResult<T>>[] = new Array(keys.length);
    // 1. Store-backed keys are read (together); loader-backed ones answer from L1 if they can.
    const stored: number[] = [];
    const toLoad: { index: number; stored: ReadResult<T> | undefined }[] = [];
    keys.forEach((key, index) => {
      if (this.#core.policyOf(key)?.origin !== "loader") stored.push(index);
      else toLoad.push({ index, stored: undefined });
    });
    const reads = await this.readAll(stored.map((i) => keys[i]!), core, () => undefined);
    reads.forEach((read, j) => {
      const index = stored[j]!;
      if (read.status === "fulfilled" && !read.value.found && read.value.source !== "fallback") {
        toLoad.push({ index, stored: read.value });
      } else settled[index] = read;
    });
    // 2. Every miss loads in one step: one loadMany call.
    const loader = batchLoader(loadMany);
    const bounds = new Map<number, BoundLoader<T>>();
    const loads = this.#driver.startBatch(
      toLoad.map(({ index }) => keys[index]!),
      (op, key, now, i) => {
        const bound = { loader, decisions: { ttlMs: undefined, cache: true } };
        bounds.set(i, bound);
        this.#driver.bindLoader(op, bound);
        if (toLoad[i]!.stored === undefined) this.#core.get(op, key, now, core);
        else this.#core.load(op, key, now, core);
      },
      loader,
    );
    // 3. Store-backed values loaded are written, each conditionally on the version read.
    await inParallel(toLoad, BATCH_PARALLEL, async ({ index, stored: read }, i) => {
      try {
        const load = await loads[i]!;
        settled[index] = {
          status: "fulfilled",
          value: read === undefined
            ? load
            : await this.#storeLoaded(keys[index]!, read, load, bounds.get(i)!.decisions, core),
        };
      } catch (reason) {
        settled[index] = { status: "rejected", reason };
      }
    });
    return settleMany(keys, settled);
  }
}
