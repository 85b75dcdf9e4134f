/**
 * Errors raised by Warp.
 *
 * Misuse of an API (a bad argument) throws a `TypeError` or `RangeError` whose message
 * names the problem and the value. Expected outcomes that the caller must handle (a store
 * failure, a timeout, a contended key) reject with a {@linkcode WarpError} carrying a
 * {@linkcode WarpErrorCode}. A broken internal invariant throws {@linkcode InvariantError}.
 *
 * @module
 */

/** The kinds of {@linkcode WarpError}, one per outcome a caller may want to handle. */
export type WarpErrorCode =
  /** The key matches no registered key or pattern. */
  | "UNREGISTERED_KEY"
  /** The store rejected or failed the operation; `cause` holds its error. */
  | "STORE_ERROR"
  /** A conditional store write found another version than expected. */
  | "STORE_CONFLICT"
  /** The operation did not complete before its deadline. */
  | "TIMEOUT"
  /** The application's loader threw or rejected; `cause` holds its error. */
  | "LOADER_ERROR"
  /** The coordinator could not be reached or failed. */
  | "COORDINATOR_UNAVAILABLE"
  /** A strong write could not be made safe (contention on the key, or a pending write). */
  | "CONTENDED"
  /** A read kept finding values older than ones this node already served. */
  | "STALE_READ"
  /** A limit (waiters, in-flight operations) was reached. */
  | "LIMIT_EXCEEDED"
  /** The node is closed or has failed. */
  | "CLOSED"
  /** The outcome of a write is unknown: it may or may not have taken effect. */
  | "OUTCOME_UNKNOWN"
  /** A lock operation by a caller that does not (or no longer) hold the lock. */
  | "LOCK_NOT_HELD"
  /** The lease was revoked: it can no longer be attached to or kept alive (G3). */
  | "LEASE_REVOKED"
  /** The lease expired (not kept alive within its TTL) or was never granted (G3). */
  | "LEASE_EXPIRED"
  /** The key has no value (`attachKey`). */
  | "NOT_FOUND"
  /**
   * A value over a size limit: its encoded bytes over `valueBytesMax` or what the store
   * can hold, or nested deeper than `JSON_DEPTH_MAX`. Nothing was written.
   */
  | "VALUE_TOO_LARGE";

/**
 * The error for every expected failure of a Warp operation.
 *
 * @example Handling a timeout
 * ```ts
 * import { WarpError } from "./errors.ts";
 * const error = new WarpError("TIMEOUT", "Write did not complete within 500 ms: user:1");
 * if (error instanceof WarpError && error.code === "TIMEOUT") {
 *   console.log(error.message);
 * }
 * ```
 */
export class WarpError extends Error {
  /** What kind of failure this is. */
  readonly code: WarpErrorCode;

  /** Creates an error with a code, a message naming the value, and an optional cause. */
  constructor(code: WarpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WarpError";
    this.code = code;
  }
}

/**
 * Thrown when an internal invariant is broken: a bug in Warp, never an expected outcome.
 * A runtime that sees it marks the node failed instead of serving possibly wrong data.
 *
 * @example
 * ```ts
 * import { InvariantError } from "./errors.ts";
 * const error = new InvariantError("L1 byte count went negative: -3");
 * console.log(error.name); // "InvariantError"
 * ```
 */
export class InvariantError extends Error {
  /** Creates the error with the broken invariant's description. */
  constructor(message: string) {
    super(message);
    this.name = "InvariantError";
  }
}

/**
 * Always-on assertion: throws {@linkcode InvariantError} when `condition` is false.
 *
 * @example
 * ```ts
 * import { assert } from "./errors.ts";
 * assert(1 + 1 === 2, "Arithmetic is broken");
 * ```
 */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
