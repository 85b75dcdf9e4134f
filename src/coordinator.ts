/**
 * The coordinator: a linearizable compare-and-set register service. Strong-distributed
 * keys, locks and leases are built on it. Implementations: `MemoryCoordinator` (one
 * process), the simulator's, and NATS JetStream KV.
 *
 * Keys are arbitrary strings (an implementation escapes them as its backend needs);
 * values are opaque bytes; every write gets a revision, strictly increasing.
 *
 * @module
 */

/** A stored register. */
export interface CoordinatorEntry {
  readonly value: Uint8Array;
  /** The revision of the last write of this key. */
  readonly revision: number;
}

/** Options of a coordinator read or write. */
export interface CoordinatorCallOptions {
  /**
   * The key lives among the records the coordinator forgets `ttlMs` after their last
   * write, measured on the coordinator's own clock (lease records). Records of each TTL,
   * and those without one, are separate key spaces. An implementation that cannot expire
   * records must reject such a call rather than ignore the TTL.
   * @default {undefined} never expires
   */
  readonly ttlMs?: number;
}

/**
 * A linearizable compare-and-set register service.
 *
 * `create` rejects with a `WarpError` of code `CONTENDED` if the key exists; `update`
 * and `delete` with a revision reject the same way if the key's revision moved. Any
 * failure to reach the service rejects with code `COORDINATOR_UNAVAILABLE`.
 */
export interface Coordinator {
  /** Reads a key; `undefined` if absent (or expired). */
  get(key: string, options?: CoordinatorCallOptions): Promise<CoordinatorEntry | undefined>;
  /** Creates a key that must not exist; returns its revision. */
  create(key: string, value: Uint8Array, options?: CoordinatorCallOptions): Promise<number>;
  /** Replaces a key whose revision is `revision`; returns the new revision. */
  update(
    key: string,
    value: Uint8Array,
    revision: number,
    options?: CoordinatorCallOptions,
  ): Promise<number>;
  /** Deletes a key, if given only at `revision`. */
  delete(key: string, revision?: number): Promise<void>;
  /**
   * Calls `listener` on every later change of `key` (`undefined`: deleted) until the
   * returned function is called. Optional: without it, lock waiters poll.
   */
  watch?(
    key: string,
    listener: (entry: CoordinatorEntry | undefined) => void,
  ): (() => void) | Promise<() => void>;
}
