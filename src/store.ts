/**
 * The primary storage Warp sits in front of: the source of truth for values.
 *
 * Every successful write of a key (a set or a delete) gets a **version**, strictly
 * increasing per key and never reused, also across deletes (a delete leaves a tombstone
 * with its version). Version 0 means "never written". A store must be linearizable per
 * key: once a write has returned, every later `get` sees it or something newer.
 *
 * @module
 */

/** The most keys Warp passes to one {@linkcode Store.getMany} call. */
export const STORE_GET_MANY_MAX = 1000;

/** What the store holds for a key: the encoded value (absent if deleted or never written). */
export interface StoreRecord {
  /** The encoded value, or `undefined` if the key is deleted or was never written. */
  readonly value: Uint8Array | undefined;
  /** The version of the last write of the key; 0 if it was never written. */
  readonly version: number;
}

/** Options of a conditional write. */
export interface StoreWriteOptions {
  /**
   * Write only if the key's current version is this one (0: only if never written; a
   * deleted key is at its tombstone's version); otherwise reject with a `WarpError` of
   * code `STORE_CONFLICT`.
   * @default {undefined} unconditional
   */
  readonly expectedVersion?: number;
}

/** One page of keys from {@linkcode Store.list}. */
export interface StoreKeyPage {
  /** Keys with a value (not deleted), in ascending order. */
  readonly keys: string[];
  /** Pass to the next `list` call for the next page; absent on the last page. */
  readonly cursor?: string;
}

/** Options of {@linkcode Store.list}. */
export interface StoreListOptions {
  /** Only keys starting with this. @default {""} */
  readonly prefix?: string;
  /** The cursor of the previous page. @default {undefined} the first page */
  readonly cursor?: string;
  /** The page size, 1 to 10 000. @default {1000} */
  readonly limit?: number;
}

/**
 * One step of {@linkcode Store.transact}: a write (`value` undefined: a delete) or a check
 * that the key is at `expectedVersion`; a write with `expectedVersion` is conditional.
 */
export interface StoreTransactionStep {
  /** A write (or delete) of the key, or a check of its version. */
  readonly kind: "write" | "check";
  /** The key written or checked. */
  readonly key: string;
  /** For a write: the bytes, or `undefined` to delete (a tombstone). */
  readonly value?: Uint8Array;
  /** Required for a check; for a write, makes it conditional. @default {undefined} */
  readonly expectedVersion?: number;
}

/**
 * A versioned key-value store. Implementations: `MemoryStore`, `PostgresStore`.
 *
 * Errors: a conditional write that finds another version rejects with a `WarpError`
 * of code `STORE_CONFLICT`; any other failure rejects with whatever the backend threw
 * (Warp wraps it as `STORE_ERROR`).
 */
export interface Store {
  /** Reads a key. */
  get(key: string): Promise<StoreRecord>;
  /**
   * Reads several keys in one round trip, optional: the records in the order of `keys`,
   * each as `get` would return it (linearizable per key). Without it, `Warp.getMany` and
   * `getOrSetMany` make bounded parallel `get` calls. At most
   * {@linkcode STORE_GET_MANY_MAX} keys per call.
   */
  getMany?(keys: readonly string[]): Promise<StoreRecord[]>;
  /** Writes a key and returns its new version. */
  set(key: string, value: Uint8Array, options?: StoreWriteOptions): Promise<number>;
  /** Deletes a key (leaving a tombstone) and returns the tombstone's version. */
  delete(key: string, options?: StoreWriteOptions): Promise<number>;
  /** Lists keys with a value, a page at a time. */
  list(options?: StoreListOptions): Promise<StoreKeyPage>;
  /**
   * Optional: applies every step or none (all-or-nothing, isolated from other writes), and
   * resolves to each step's version (a write's new one, a check's current one). A key may
   * appear in one step only. A check or conditional write that finds another version
   * rejects with `STORE_CONFLICT` and nothing is written.
   */
  transact?(steps: readonly StoreTransactionStep[]): Promise<number[]>;
}
