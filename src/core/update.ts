/**
 * The read-modify-write protocol behind `update`, merged writes and `compareAndSet`: read
 * the key's value and version **from the store**, apply a pure reducer, write
 * conditionally on that version, and on a conflict wait a jittered, growing delay and try
 * again, a bounded number of times. Every driver (the `Warp` runtime, the simulator) runs
 * this one state machine, so the simulator checks the retry rules production uses.
 *
 * Design chosen: optimistic concurrency on the store's own version (the store decides, in
 * one conditional statement, which of two racing writers lands), with the version as the
 * only clock, so no wall clock ever picks a winner (M2). A write whose outcome is unknown
 * (a timeout, a store error) ends the run instead of retrying: trying again could apply a
 * non-idempotent reducer twice, and M1 allows an unknown update to land at most once.
 *
 * Rejected: taking a lock around the read and the write (a lock holder that stalls past
 * its TTL writes over its successor, the fenced example's lost update, unless the store
 * checks a fence anyway, at which point the version check alone suffices), and reducing
 * against the L1 value (go-warp's merge: L1 may be stale, and a reducer that sees a stale
 * value loses every update it did not see).
 *
 * Pure like the rest of `src/core/`: no clock, no randomness (the driver draws the
 * backoff within the bounds a `wait` step gives), no I/O.
 *
 * @module
 */

/** Returned by a reducer to abandon the update: nothing is written. */
export const UPDATE_ABORT: unique symbol = Symbol("warp.update.abort");

/** What a reducer is told besides the current value. */
export interface UpdateContext {
  /** The store version the current value was read at (0: never written). */
  readonly version: number;
  /** Whether the store holds a value (false: never written, or deleted). */
  readonly found: boolean;
  /** Which attempt this is, from 1. A reducer may run several times: keep it pure. */
  readonly attempt: number;
  /** Return `abort()` to stop the update without writing; the result is `aborted`. */
  abort(): typeof UPDATE_ABORT;
}

/**
 * A pure function from the stored value to the value to write, or `abort()`. It may run
 * several times (once per attempt) and must not depend on anything but its arguments.
 */
export type Reducer<T> = (
  current: T | undefined,
  context: UpdateContext,
) => T | typeof UPDATE_ABORT;

/** The limits of one update. */
export interface UpdateLimits {
  /** Most attempts (store reads and conditional writes), 1 to 100. @default {8} */
  readonly attemptsMax?: number;
  /** The first backoff after a conflict, ms; it doubles per conflict. @default {2} */
  readonly backoffMs?: number;
  /** The longest backoff, ms. @default {100} */
  readonly backoffMaxMs?: number;
}

/** The result of an update: expected outcomes are values, not exceptions. */
export type UpdateResult<T> =
  | {
    /** The conditional write landed. */
    readonly status: "ok";
    /** The value written. */
    readonly value: T;
    /** Its store version. */
    readonly version: number;
    readonly attempts: number;
  }
  | {
    /** Every attempt found the version moved (`attemptsMax` reached): nothing was written. */
    readonly status: "conflict";
    /** The version the last attempt read. */
    readonly version: number;
    readonly attempts: number;
  }
  | {
    /** The reducer returned `abort()`, or the caller's signal fired: nothing was written. */
    readonly status: "aborted";
    /** Why: the reducer asked, or the signal fired. */
    readonly by: "reducer" | "signal";
    /** The version the last attempt read (0 if none did). */
    readonly version: number;
    readonly attempts: number;
  };

/** What the driver does next. */
export type UpdateStep<T> =
  /** Read the key from the store (never from L1), then call `onRead`. */
  | { readonly type: "read" }
  /** Write `value` on condition that the store is at `expectedVersion`, then `onWritten`. */
  | { readonly type: "write"; readonly value: T; readonly expectedVersion: number }
  /** Wait a delay drawn in [minMs, maxMs], then read again (`read`). */
  | { readonly type: "wait"; readonly minMs: number; readonly maxMs: number }
  /** The update is over. */
  | { readonly type: "done"; readonly result: UpdateResult<T> };

type Phase = "new" | "read" | "write" | "wait" | "done";

const ATTEMPTS_MAX_LIMIT = 100;
const BACKOFF_MAX_LIMIT_MS = 60_000;

/** Checks `limits`, throwing a `RangeError` naming a bad one. */
export function checkUpdateLimits(limits: UpdateLimits): Required<UpdateLimits> {
  const { attemptsMax = 8, backoffMs = 2, backoffMaxMs = 100 } = limits;
  if (!Number.isSafeInteger(attemptsMax) || attemptsMax < 1 || attemptsMax > ATTEMPTS_MAX_LIMIT) {
    throw new RangeError(
      `Invalid attemptsMax, expected 1 to ${ATTEMPTS_MAX_LIMIT}: ${attemptsMax}`,
    );
  }
  for (const [name, ms] of [["backoffMs", backoffMs], ["backoffMaxMs", backoffMaxMs]] as const) {
    if (typeof ms !== "number" || !(ms >= 0 && ms <= BACKOFF_MAX_LIMIT_MS)) {
      throw new RangeError(`Invalid ${name}, expected 0 to ${BACKOFF_MAX_LIMIT_MS}: ${ms}`);
    }
  }
  return { attemptsMax, backoffMs, backoffMaxMs };
}

/**
 * One update's state machine. Call `start()`, perform the step it returns, report with
 * `onRead` / `onWritten` / `onWaited`, and repeat until a `done` step. A write that fails
 * other than by a version conflict is not reported: the driver ends the update with that
 * failure (its outcome is unknown, and it is not retried).
 *
 * @example A conflict, then success
 * ```ts
 * import assert from "node:assert/strict";
 * import { UpdateRun } from "./update.ts";
 * const run = new UpdateRun<number>((n) => (n ?? 0) + 1, { backoffMs: 1 });
 * assert.deepEqual(run.start(), { type: "read" });
 * assert.deepEqual(run.onRead({ found: true, value: 4, version: 7 }), {
 *   type: "write", value: 5, expectedVersion: 7,
 * });
 * assert.equal(run.onWritten({ ok: false }).type, "wait");
 * assert.deepEqual(run.onWaited(), { type: "read" });
 * run.onRead({ found: true, value: 5, version: 8 });
 * const done = run.onWritten({ ok: true, version: 9 });
 * assert.deepEqual(done, {
 *   type: "done", result: { status: "ok", value: 6, version: 9, attempts: 2 },
 * });
 * ```
 */
export class UpdateRun<T> {
  readonly #reducer: Reducer<T>;
  readonly #limits: Required<UpdateLimits>;
  #attempts = 0;
  #version = 0;
  #value: T | undefined;
  #phase: Phase = "new";

  /** Prepares an update with `reducer` (pure) within `limits`. */
  constructor(reducer: Reducer<T>, limits: UpdateLimits = {}) {
    if (typeof reducer !== "function") {
      throw new TypeError(`Invalid reducer, expected a function: ${String(reducer)}`);
    }
    this.#reducer = reducer;
    this.#limits = checkUpdateLimits(limits);
  }

  /** The attempts made so far. */
  get attempts(): number {
    return this.#attempts;
  }

  /** The first step: a store read. */
  start(): UpdateStep<T> {
    this.#expect("new");
    this.#phase = "read";
    this.#attempts = 1;
    return { type: "read" };
  }

  /**
   * The store's answer: runs the reducer on it. The reducer's exceptions propagate (the
   * update is over; nothing was written).
   */
  onRead(
    read: { readonly found: boolean; readonly value: T | undefined; readonly version: number },
  ): UpdateStep<T> {
    this.#expect("read");
    if (!Number.isSafeInteger(read.version) || read.version < 0) {
      throw new RangeError(`Invalid store version: ${read.version}`);
    }
    this.#version = read.version;
    this.#phase = "done"; // a throwing reducer leaves the run over
    const next = this.#reducer(read.found ? read.value : undefined, {
      version: read.version,
      found: read.found,
      attempt: this.#attempts,
      abort: () => UPDATE_ABORT,
    });
    if (next === UPDATE_ABORT) return this.aborted("reducer");
    this.#value = next;
    this.#phase = "write";
    return { type: "write", value: next, expectedVersion: read.version };
  }

  /** The conditional write's answer: landed at `version`, or found the version moved. */
  onWritten(
    result: { readonly ok: true; readonly version: number } | { readonly ok: false },
  ): UpdateStep<T> {
    this.#expect("write");
    if (result.ok) {
      if (!(result.version > this.#version)) {
        throw new RangeError(`Store version ${result.version} not above ${this.#version}`);
      }
      this.#phase = "done";
      const value = this.#value as T;
      return {
        type: "done",
        result: { status: "ok", value, version: result.version, attempts: this.#attempts },
      };
    }
    if (this.#attempts >= this.#limits.attemptsMax) {
      this.#phase = "done";
      return {
        type: "done",
        result: { status: "conflict", version: this.#version, attempts: this.#attempts },
      };
    }
    this.#phase = "wait";
    const { backoffMs, backoffMaxMs } = this.#limits;
    const maxMs = Math.min(backoffMaxMs, backoffMs * 2 ** (this.#attempts - 1));
    return { type: "wait", minMs: maxMs / 2, maxMs };
  }

  /** The backoff is over: read again. */
  onWaited(): UpdateStep<T> {
    this.#expect("wait");
    this.#phase = "read";
    this.#attempts++;
    return { type: "read" };
  }

  /** Ends the run as aborted (the reducer asked, or the caller's signal fired). */
  aborted(by: "reducer" | "signal"): UpdateStep<T> & { type: "done" } {
    this.#phase = "done";
    return {
      type: "done",
      result: { status: "aborted", by, version: this.#version, attempts: this.#attempts },
    };
  }

  #expect(phase: Phase): void {
    if (this.#phase !== phase) {
      throw new TypeError(`Update step out of order: expected ${phase}, in ${this.#phase}`);
    }
  }
}
