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

/**
 * A linearizable compare-and-set register service.
 *
 * `create` rejects with a `WarpError` of code `CONTENDED` if the key exists; `update`
 * and `delete` with a revision reject the same way if the key's revision moved. Any
 * failure to reach the service rejects with code `COORDINATOR_UNAVAILABLE`.
 */
export interface Coordinator {
  /** Reads a key; `undefined` if absent. */
  get(key: string): Promise<CoordinatorEntry | undefined>;
  /** Creates a key that must not exist; returns its revision. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Replaces a key whose revision is `revision`; returns the new revision. */
  update(key: string, value: Uint8Array, revision: number): Promise<number>;
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
