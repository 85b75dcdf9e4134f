/**
 * An in-memory {@linkcode Coordinator} for one process and for tests.
 *
 * @module
 */

import { describe } from "../_describe.ts";
import { WarpError } from "../core/errors.ts";
import { coordinatorKeyProblem } from "../coordinator.ts";
import type { Coordinator, CoordinatorCallOptions, CoordinatorEntry } from "../coordinator.ts";

/** Options of {@linkcode MemoryCoordinator}. */
export interface MemoryCoordinatorOptions {
  /**
   * How long every call takes, in milliseconds. With 0 a call still completes
   * asynchronously, on a microtask. A write takes effect when the delay has passed.
   * @default {0}
   */
  readonly latencyMs?: number;
  /**
   * The most keys held at once. Creating a key beyond it rejects with a `WarpError` of
   * code `LIMIT_EXCEEDED`.
   * @default {100000}
   */
  readonly keysMax?: number;
  /**
   * The most watch listeners registered at once, over all keys.
   * @default {10000}
   */
  readonly watchersMax?: number;
  /**
   * The coordinator's clock in milliseconds, which times out records written with a TTL.
   * @default {performance.now}
   */
  readonly clock?: () => number;
}

/** Called with a key's new entry after each write of it, or `undefined` when it is deleted. */
export type CoordinatorWatchListener = (entry: CoordinatorEntry | undefined) => void;

/**
 * A {@linkcode Coordinator} holding linearizable compare-and-set registers in a `Map`.
 *
 * Like a NATS KV bucket, it numbers every write (create, update, delete) from one global
 * counter, so revisions strictly increase across all keys. Bytes are copied in and out.
 * Set {@linkcode MemoryCoordinator.unavailable} to make every call reject with
 * `COORDINATOR_UNAVAILABLE`, as when the service cannot be reached.
 *
 * @example Compare-and-set
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryCoordinator } from "./memory.ts";
 *
 * const coordinator = new MemoryCoordinator();
 * const revision = await coordinator.create("lock.a", new Uint8Array([1]));
 * await assert.rejects(coordinator.create("lock.a", new Uint8Array([2])), { code: "CONTENDED" });
 * const next = await coordinator.update("lock.a", new Uint8Array([3]), revision);
 * await assert.rejects(coordinator.update("lock.a", new Uint8Array([4]), revision), {
 *   code: "CONTENDED",
 * });
 * await coordinator.delete("lock.a", next);
 * assert.equal(await coordinator.get("lock.a"), undefined);
 * ```
 */
export class MemoryCoordinator implements Coordinator {
  /**
   * When true, every call rejects with a `WarpError` of code `COORDINATOR_UNAVAILABLE`
   * (checked when the call takes effect, after the latency).
   * @default {false}
   */
  unavailable = false;

  readonly #entries = new Map<string, CoordinatorEntry>();
  /** When records written with a TTL are forgotten, by their internal key. */
  readonly #expiries = new Map<string, number>();
  readonly #clock: () => number;
  readonly #watchers = new Map<string, Set<CoordinatorWatchListener>>();
  readonly #latencyMs: number;
  readonly #keysMax: number;
  readonly #watchersMax: number;
  #watcherCount = 0;
  #revision = 0;

  /** Creates a coordinator with no keys. */
  constructor(options: MemoryCoordinatorOptions = {}) {
    const { latencyMs = 0, keysMax = 100_000, watchersMax = 10_000 } = options;
    if (!Number.isFinite(latencyMs) || latencyMs < 0) {
      throw new RangeError(`Invalid latencyMs: ${describe(latencyMs)}`);
    }
    if (!Number.isSafeInteger(keysMax) || keysMax < 1) {
      throw new RangeError(`Invalid keysMax: ${describe(keysMax)}`);
    }
    if (!Number.isSafeInteger(watchersMax) || watchersMax < 1) {
      throw new RangeError(`Invalid watchersMax: ${describe(watchersMax)}`);
    }
    this.#latencyMs = latencyMs;
    this.#keysMax = keysMax;
    this.#watchersMax = watchersMax;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /**
   * Reads a key: a copy of its value and its revision, or `undefined` if absent.
   *
   * @example
   * ```ts
   * import { MemoryCoordinator } from "./memory.ts";
   * const coordinator = new MemoryCoordinator();
   * await coordinator.create("k", new Uint8Array([7]));
   * console.log(await coordinator.get("k")); // { value: Uint8Array(1) [ 7 ], revision: 1 }
   * ```
   */
  async get(
    key: string,
    options?: CoordinatorCallOptions,
  ): Promise<CoordinatorEntry | undefined> {
    validateKey(key);
    key = this.#space(key, options);
    await this.#begin();
    const entry = this.#live(key);
    return entry === undefined
      ? undefined
      : { value: entry.value.slice(), revision: entry.revision };
  }

  /**
   * Creates a key that must not exist and returns its revision; rejects with a
   * `WarpError` of code `CONTENDED` if it exists.
   *
   * @example
   * ```ts
   * import { MemoryCoordinator } from "./memory.ts";
   * const coordinator = new MemoryCoordinator();
   * console.log(await coordinator.create("a", new Uint8Array())); // 1
   * console.log(await coordinator.create("b", new Uint8Array())); // 2
   * ```
   */
  async create(key: string, value: Uint8Array, options?: CoordinatorCallOptions): Promise<number> {
    validateKey(key);
    validateValue(value);
    const ttlMs = options?.ttlMs;
    key = this.#space(key, options);
    const copy = value.slice();
    await this.#begin();
    if (this.#live(key) !== undefined) {
      throw new WarpError("CONTENDED", `Key already exists: ${describe(key)}`);
    }
    if (this.#entries.size >= this.#keysMax) {
      throw new WarpError("LIMIT_EXCEEDED", `Coordinator is full: ${this.#keysMax} keys`);
    }
    return this.#put(key, copy, ttlMs);
  }

  /**
   * Replaces a key whose revision is `revision` and returns the new revision; rejects
   * with a `WarpError` of code `CONTENDED` if the key is absent or its revision moved.
   *
   * @example
   * ```ts
   * import { MemoryCoordinator } from "./memory.ts";
   * const coordinator = new MemoryCoordinator();
   * const revision = await coordinator.create("k", new Uint8Array([1]));
   * console.log(await coordinator.update("k", new Uint8Array([2]), revision)); // 2
   * ```
   */
  async update(
    key: string,
    value: Uint8Array,
    revision: number,
    options?: CoordinatorCallOptions,
  ): Promise<number> {
    validateKey(key);
    validateValue(value);
    validateRevision(revision);
    const ttlMs = options?.ttlMs;
    key = this.#space(key, options);
    const copy = value.slice();
    await this.#begin();
    this.#checkRevision(key, revision);
    return this.#put(key, copy, ttlMs);
  }

  /**
   * Deletes a key. Without `revision` it always succeeds (also for an absent key); with
   * one, it rejects with `CONTENDED` if the key is absent or its revision moved.
   *
   * @example
   * ```ts
   * import { MemoryCoordinator } from "./memory.ts";
   * const coordinator = new MemoryCoordinator();
   * const revision = await coordinator.create("k", new Uint8Array());
   * await coordinator.delete("k", revision);
   * console.log(await coordinator.get("k")); // undefined
   * ```
   */
  async delete(key: string, revision?: number): Promise<void> {
    validateKey(key);
    if (revision !== undefined) validateRevision(revision);
    await this.#begin();
    if (revision !== undefined) this.#checkRevision(key, revision);
    // A delete is a write: like a NATS KV delete marker, it takes a revision.
    this.#revision++;
    if (this.#entries.delete(key)) this.#notify(key, undefined);
  }

  /**
   * Calls `listener` after every later write of `key`: with the new entry (a copy), or
   * `undefined` when the key is deleted. It is not called with the current entry. Calls
   * come on a microtask, in write order, never inside the writing call. A listener that
   * throws is not stopped. Returns a function that stops the calls.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryCoordinator } from "./memory.ts";
   * const coordinator = new MemoryCoordinator();
   * const seen: (number | undefined)[] = [];
   * const stop = coordinator.watch("k", (entry) => seen.push(entry?.revision));
   * const revision = await coordinator.create("k", new Uint8Array());
   * await coordinator.delete("k", revision);
   * await Promise.resolve();
   * stop();
   * assert.deepEqual(seen, [1, undefined]);
   * ```
   */
  watch(key: string, listener: CoordinatorWatchListener): () => void {
    validateKey(key);
    if (typeof listener !== "function") {
      throw new TypeError(`Invalid listener: ${describe(listener)}`);
    }
    if (this.#watcherCount >= this.#watchersMax) {
      throw new RangeError(`Too many watchers: ${this.#watchersMax}`);
    }
    // Wrapped so the same function can watch twice and each stop removes only its own.
    const registered: CoordinatorWatchListener = (entry) => listener(entry);
    let listeners = this.#watchers.get(key);
    if (listeners === undefined) this.#watchers.set(key, listeners = new Set());
    listeners.add(registered);
    this.#watcherCount++;
    return () => {
      const current = this.#watchers.get(key);
      if (current === undefined || !current.delete(registered)) return;
      this.#watcherCount--;
      if (current.size === 0) this.#watchers.delete(key);
    };
  }

  /**
   * The revision of the last write, 0 before the first.
   *
   * @example
   * ```ts
   * import { MemoryCoordinator } from "./memory.ts";
   * const coordinator = new MemoryCoordinator();
   * await coordinator.create("k", new Uint8Array());
   * await coordinator.delete("k");
   * console.log(coordinator.revision); // 2
   * ```
   */
  get revision(): number {
    return this.#revision;
  }

  async #begin(): Promise<void> {
    if (this.#latencyMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.#latencyMs));
    } else {
      await Promise.resolve();
    }
    if (this.unavailable) {
      throw new WarpError("COORDINATOR_UNAVAILABLE", "Coordinator is unavailable: memory");
    }
  }

  /** The internal key: records of each TTL live in their own key space. */
  #space(key: string, options: CoordinatorCallOptions | undefined): string {
    const ttlMs = options?.ttlMs;
    if (ttlMs === undefined) return key;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new RangeError(`Invalid ttlMs: ${describe(ttlMs)}`);
    }
    return `\u0000ttl:${ttlMs}\u0000${key}`;
  }

  /** The entry of an internal key, forgetting it first if its TTL ran out. */
  #live(key: string): CoordinatorEntry | undefined {
    const expiresAt = this.#expiries.get(key);
    if (expiresAt !== undefined && this.#clock() >= expiresAt) {
      this.#expiries.delete(key);
      this.#entries.delete(key); // like a KV max-age expiry: no watch event
    }
    return this.#entries.get(key);
  }

  #checkRevision(key: string, revision: number): void {
    const actual = this.#live(key)?.revision;
    if (actual !== revision) {
      throw new WarpError(
        "CONTENDED",
        `Revision moved on key ${describe(key)}: expected ${revision}, actual ${
          actual ?? "absent"
        }`,
      );
    }
  }

  #put(key: string, value: Uint8Array, ttlMs?: number): number {
    const entry = { value, revision: ++this.#revision };
    this.#entries.set(key, entry);
    if (ttlMs !== undefined) this.#expiries.set(key, this.#clock() + ttlMs);
    this.#notify(key, entry);
    return entry.revision;
  }

  #notify(key: string, entry: CoordinatorEntry | undefined): void {
    const listeners = this.#watchers.get(key);
    if (listeners === undefined) return;
    for (const listener of listeners) {
      queueMicrotask(() => {
        // Re-checked: a listener stopped before its turn gets nothing more.
        if (!this.#watchers.get(key)?.has(listener)) return;
        try {
          listener(entry === undefined ? undefined : { ...entry, value: entry.value.slice() });
        } catch {
          // A listener's bug must not end the watch, nor escape into the writer's microtask.
        }
      });
    }
  }
}

/** Refuses what the contract refuses; NUL also keeps `\0ttl:` keys out of reach of users. */
function validateKey(key: unknown): asserts key is string {
  const problem = coordinatorKeyProblem(key);
  if (problem !== undefined) throw new TypeError(`Invalid key, ${problem}: ${describe(key)}`);
}

function validateValue(value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`Invalid value: expected a Uint8Array, got ${describe(value)}`);
  }
}

function validateRevision(revision: unknown): asserts revision is number {
  if (typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 1) {
    throw new RangeError(`Invalid revision: ${describe(revision)}`);
  }
}
