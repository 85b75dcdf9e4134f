/**
 * The coordinator: a linearizable compare-and-set register service. Strong-distributed
 * keys, locks and leases are built on it. Implementations: `MemoryCoordinator` (one
 * process), the simulator's, NATS JetStream KV and PostgreSQL; the last three pass one
 * test suite, `test/_coordinator_suite.ts`.
 *
 * Keys are strings of 1 to {@linkcode COORDINATOR_KEY_LENGTH_MAX} UTF-16 code units,
 * well-formed Unicode, without NUL ({@linkcode coordinatorKeyProblem}): every
 * implementation accepts all of them (escaping them as its backend needs) and refuses
 * others with a `TypeError` before any I/O. Values are opaque bytes; every write gets a
 * revision, strictly increasing.
 *
 * @module
 */

/**
 * The longest coordinator key: room for a cluster prefix (at most 128 characters) and a
 * record name (`lock/` and a key of at most 1024).
 */
export const COORDINATOR_KEY_LENGTH_MAX = 4096;

/**
 * Why `key` is not a valid coordinator key, in a few words; `undefined` when it is one.
 *
 * @example
 * ```ts
 * import { coordinatorKeyProblem } from "./coordinator.ts";
 * console.log(coordinatorKeyProblem("warp/lock/a"), coordinatorKeyProblem("")); // undefined it is empty
 * ```
 */
export function coordinatorKeyProblem(key: unknown): string | undefined {
  if (typeof key !== "string") return "expected a string";
  if (key.length === 0) return "it is empty";
  if (key.length > COORDINATOR_KEY_LENGTH_MAX) {
    return `it is longer than ${COORDINATOR_KEY_LENGTH_MAX} characters`;
  }
  if (!key.isWellFormed()) return "it has a lone surrogate";
  if (key.includes("\u0000")) return "it has a NUL character";
  return undefined;
}

/** A stored register. */
export interface CoordinatorEntry {
  /** The stored bytes. */
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
  /**
   * Deletes a key, if given only at `revision`. A conditional delete of a key that is
   * already absent may succeed or fail (NATS KV matches the revision of its delete
   * marker); the key is absent afterwards either way. Likewise an `update` at the revision
   * of a key's deletion may succeed on NATS KV: Warp only updates at revisions it read.
   */
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
