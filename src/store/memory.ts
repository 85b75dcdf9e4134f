/**
 * An in-memory {@linkcode Store} for one process, tests and the simulator's reference.
 *
 * @module
 */

import { describe } from "../_describe.ts";
import { WarpError } from "../core/errors.ts";
import { keyProblem } from "../core/messages.ts";
import type {
  Store,
  StoreKeyPage,
  StoreListOptions,
  StoreRecord,
  StoreTransactionStep,
  StoreWriteOptions,
} from "../store.ts";
import { checkTransactionSteps } from "./_transaction.ts";

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * How long every operation takes, in milliseconds. With 0 an operation still completes
   * asynchronously, on a microtask. The write takes effect when the delay has passed.
   * @default {0}
   */
  readonly latencyMs?: number;
  /**
   * The most keys the store holds, tombstones included (a deleted key keeps its version).
   * A write of a new key beyond it rejects with a `WarpError` of code `LIMIT_EXCEEDED`.
   * @default {1000000}
   */
  readonly keysMax?: number;
}

/** How many operations a {@linkcode MemoryStore} has been asked to do, failed ones included. */
export interface MemoryStoreCounts {
  /** Calls of `get`. */
  readonly get: number;
  /** Calls of `getMany` (each one, whatever its number of keys). */
  readonly getMany: number;
  /** Calls of `set`. */
  readonly set: number;
  /** Calls of `delete`. */
  readonly delete: number;
  /** Calls of `list`. */
  readonly list: number;
  /** Calls of `transact`. */
  readonly transact: number;
}

const LIST_LIMIT_DEFAULT = 1000;
const LIST_LIMIT_MAX = 10_000;
const FAILURES_QUEUED_MAX = 1000;

interface Slot {
  value: Uint8Array | undefined;
  version: number;
}

/**
 * A {@linkcode Store} that keeps every key in a `Map`.
 *
 * Versions count per key from 1 and keep counting across deletes: a delete leaves a
 * tombstone with its version, and `get` of a deleted key returns `{ value: undefined,
 * version }`. Bytes are copied on the way in and out, so a caller cannot change what is
 * stored. For fault tests, {@linkcode MemoryStore.failNext} makes the next operations
 * reject without taking effect.
 *
 * @example A conditional write
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStore } from "./memory.ts";
 *
 * const store = new MemoryStore();
 * const version = await store.set("user:1", new TextEncoder().encode("Ada"));
 * await store.set("user:1", new TextEncoder().encode("Grace"), { expectedVersion: version });
 * await assert.rejects(
 *   store.set("user:1", new Uint8Array(), { expectedVersion: version }),
 *   { name: "WarpError", code: "STORE_CONFLICT" },
 * );
 * ```
 */
export class MemoryStore implements Store {
  readonly #slots = new Map<string, Slot>();
  /** Every key held, tombstones included, in ascending order. */
  readonly #sortedKeys: string[] = [];
  readonly #failures: unknown[] = [];
  readonly #latencyMs: number;
  readonly #keysMax: number;
  #counts = { get: 0, getMany: 0, set: 0, delete: 0, list: 0, transact: 0 };

  /** Creates an empty store. */
  constructor(options: MemoryStoreOptions = {}) {
    const { latencyMs = 0, keysMax = 1_000_000 } = options;
    if (!Number.isFinite(latencyMs) || latencyMs < 0) {
      throw new RangeError(`Invalid latencyMs: ${describe(latencyMs)}`);
    }
    if (!Number.isSafeInteger(keysMax) || keysMax < 1) {
      throw new RangeError(`Invalid keysMax: ${describe(keysMax)}`);
    }
    this.#latencyMs = latencyMs;
    this.#keysMax = keysMax;
  }

  /**
   * Reads a key: its value (a copy) and version; `{ value: undefined, version: 0 }` if it
   * was never written.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * console.log(await store.get("missing")); // { value: undefined, version: 0 }
   * ```
   */
  async get(key: string): Promise<StoreRecord> {
    validateKey(key);
    this.#counts.get++;
    await this.#begin();
    const slot = this.#slots.get(key);
    if (slot === undefined) return { value: undefined, version: 0 };
    return { value: slot.value?.slice(), version: slot.version };
  }

  /**
   * Reads several keys at once (one call, one latency): a copy of each record, in the
   * order of `keys`.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * await store.set("a", new Uint8Array([1]));
   * const [a, b] = await store.getMany(["a", "b"]);
   * console.log(a?.version, b?.version); // 1 0
   * ```
   */
  async getMany(keys: readonly string[]): Promise<StoreRecord[]> {
    if (!Array.isArray(keys)) {
      throw new TypeError(`Invalid keys, expected an array: ${describe(keys)}`);
    }
    for (const key of keys) validateKey(key);
    this.#counts.getMany++;
    await this.#begin();
    return keys.map((key) => {
      const slot = this.#slots.get(key);
      return slot === undefined
        ? { value: undefined, version: 0 }
        : { value: slot.value?.slice(), version: slot.version };
    });
  }

  /**
   * Writes a copy of `value` and returns the key's new version. With `expectedVersion`,
   * rejects with a `WarpError` of code `STORE_CONFLICT` unless the key is at that version.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * console.log(await store.set("k", new Uint8Array([1]))); // 1
   * console.log(await store.set("k", new Uint8Array([2]))); // 2
   * ```
   */
  async set(key: string, value: Uint8Array, options: StoreWriteOptions = {}): Promise<number> {
    validateKey(key);
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`Invalid value: expected a Uint8Array, got ${describe(value)}`);
    }
    validateExpectedVersion(options.expectedVersion);
    const copy = value.slice();
    this.#counts.set++;
    await this.#begin();
    return this.#write(key, copy, options.expectedVersion);
  }

  /**
   * Deletes a key, leaving a tombstone, and returns the tombstone's version. With
   * `expectedVersion`, rejects with `STORE_CONFLICT` unless the key is at that version.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * await store.set("k", new Uint8Array([1]));
   * console.log(await store.delete("k")); // 2
   * console.log(await store.get("k")); // { value: undefined, version: 2 }
   * ```
   */
  async delete(key: string, options: StoreWriteOptions = {}): Promise<number> {
    validateKey(key);
    validateExpectedVersion(options.expectedVersion);
    this.#counts.delete++;
    await this.#begin();
    return this.#write(key, undefined, options.expectedVersion);
  }

  /**
   * Lists keys with a value (tombstones excluded), in ascending order, a page at a time.
   *
   * @example Reading every page
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * for (const key of ["a:1", "a:2", "a:3", "b:1"]) await store.set(key, new Uint8Array());
   * const first = await store.list({ prefix: "a:", limit: 2 });
   * assert.deepEqual(first, { keys: ["a:1", "a:2"], cursor: "a:2" });
   * const second = await store.list({ prefix: "a:", limit: 2, cursor: first.cursor! });
   * assert.deepEqual(second, { keys: ["a:3"] });
   * ```
   */
  async list(options: StoreListOptions = {}): Promise<StoreKeyPage> {
    const { prefix = "", cursor, limit = LIST_LIMIT_DEFAULT } = options;
    if (typeof prefix !== "string") throw new TypeError(`Invalid prefix: ${describe(prefix)}`);
    if (cursor !== undefined && typeof cursor !== "string") {
      throw new TypeError(`Invalid cursor: ${describe(cursor)}`);
    }
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) {
      throw new RangeError(`Invalid limit: ${describe(limit)}`);
    }
    this.#counts.list++;
    await this.#begin();
    const keys: string[] = [];
    const start = cursor !== undefined && cursor >= prefix
      ? upperBound(this.#sortedKeys, cursor)
      : lowerBound(this.#sortedKeys, prefix);
    for (let i = start; i < this.#sortedKeys.length; i++) {
      const key = this.#sortedKeys[i]!;
      if (!key.startsWith(prefix)) break;
      if (this.#slots.get(key)?.value === undefined) continue;
      if (keys.length === limit) return { keys, cursor: keys[keys.length - 1]! };
      keys.push(key);
    }
    return { keys };
  }

  /**
   * Applies every step or none, at one instant: checks every `expectedVersion` first, then
   * writes. Resolves to each step's version (a write's new one, a check's current one); a
   * version that moved rejects with `STORE_CONFLICT` and nothing is written.
   *
   * @example Move one unit from one key to another, or nothing
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * const a = await store.set("a", new Uint8Array([5]));
   * const versions = await store.transact([
   *   { kind: "write", key: "a", value: new Uint8Array([4]), expectedVersion: a },
   *   { kind: "write", key: "b", value: new Uint8Array([1]), expectedVersion: 0 },
   * ]);
   * assert.deepEqual(versions, [2, 1]);
   * await assert.rejects(
   *   store.transact([
   *     { kind: "check", key: "a", expectedVersion: a },
   *     { kind: "write", key: "b", value: new Uint8Array([2]) },
   *   ]),
   *   { code: "STORE_CONFLICT" },
   * );
   * assert.equal((await store.get("b")).version, 1);
   * ```
   */
  async transact(steps: readonly StoreTransactionStep[]): Promise<number[]> {
    checkTransactionSteps(steps);
    const copies = steps.map((step) => ({ ...step, value: step.value?.slice() }));
    this.#counts.transact++;
    await this.#begin();
    let fresh = 0;
    for (const step of copies) {
      const actual = this.#slots.get(step.key)?.version ?? 0;
      if (step.expectedVersion !== undefined && step.expectedVersion !== actual) {
        throw new WarpError(
          "STORE_CONFLICT",
          `Version conflict on key ${
            JSON.stringify(step.key)
          }: expected ${step.expectedVersion}, actual ${actual}`,
        );
      }
      if (step.kind === "write" && !this.#slots.has(step.key)) fresh++;
    }
    if (this.#slots.size + fresh > this.#keysMax) {
      throw new WarpError("LIMIT_EXCEEDED", `Store is full: ${this.#keysMax} keys`);
    }
    return copies.map((step) =>
      step.kind === "check"
        ? this.#slots.get(step.key)?.version ?? 0
        : this.#write(step.key, step.value, undefined)
    );
  }

  /**
   * Makes the next operation reject with `error` and have no effect. Each call queues one
   * failure; queued failures are used in call order by the next operations of any kind.
   *
   * @example A failed write changes nothing
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * store.failNext(new Error("Disk full"));
   * await assert.rejects(store.set("k", new Uint8Array([1])), /Disk full/);
   * assert.deepEqual(await store.get("k"), { value: undefined, version: 0 });
   * ```
   */
  failNext(error: unknown): void {
    if (this.#failures.length >= FAILURES_QUEUED_MAX) {
      throw new RangeError(`Too many queued failures: ${FAILURES_QUEUED_MAX}`);
    }
    this.#failures.push(error);
  }

  /**
   * How many operations of each kind were called (validated ones, failed included).
   *
   * @example
   * ```ts
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * await store.get("k");
   * console.log(store.counts.get); // 1
   * ```
   */
  get counts(): MemoryStoreCounts {
    return { ...this.#counts };
  }

  /**
   * How many keys the store holds, tombstones included.
   *
   * @example
   * ```ts
   * import { MemoryStore } from "./memory.ts";
   * const store = new MemoryStore();
   * await store.set("k", new Uint8Array());
   * await store.delete("k");
   * console.log(store.size); // 1
   * ```
   */
  get size(): number {
    return this.#slots.size;
  }

  /** Waits for the configured latency, then throws a queued failure if there is one. */
  async #begin(): Promise<void> {
    if (this.#latencyMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.#latencyMs));
    } else {
      await Promise.resolve();
    }
    if (this.#failures.length > 0) throw this.#failures.shift();
  }

  #write(key: string, value: Uint8Array | undefined, expectedVersion?: number): number {
    const slot = this.#slots.get(key);
    const actual = slot?.version ?? 0;
    if (expectedVersion !== undefined && expectedVersion !== actual) {
      throw new WarpError(
        "STORE_CONFLICT",
        `Version conflict on key ${
          JSON.stringify(key)
        }: expected ${expectedVersion}, actual ${actual}`,
      );
    }
    if (slot === undefined) {
      if (this.#slots.size >= this.#keysMax) {
        throw new WarpError("LIMIT_EXCEEDED", `Store is full: ${this.#keysMax} keys`);
      }
      this.#slots.set(key, { value, version: 1 });
      this.#sortedKeys.splice(lowerBound(this.#sortedKeys, key), 0, key);
      return 1;
    }
    slot.value = value;
    slot.version = actual + 1;
    return slot.version;
  }
}

/** The keys Warp accepts (`isKey`), no more: what passes here passes a `PostgresStore`. */
function validateKey(key: unknown): asserts key is string {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new TypeError(`Invalid key, ${problem}: ${describe(key)}`);
}

function validateExpectedVersion(version: unknown): void {
  if (version === undefined) return;
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw new RangeError(`Invalid expectedVersion: ${describe(version)}`);
  }
}

/** The index of the first element not below `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! < key) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The index of the first element above `key`. */
function upperBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (sorted[middle]! <= key) low = middle + 1;
    else high = middle;
  }
  return low;
}
