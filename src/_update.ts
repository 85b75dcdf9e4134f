/**
 * The runtime side of `update`, `compareAndSet` and merged `set`: drives the pure
 * {@linkcode UpdateRun} against the store through the node's own write path (so a
 * strong-distributed key's conditional write goes through the strong protocol, and a
 * write that fails leaves nothing in any L1), sleeps its backoffs, and honours the
 * caller's `AbortSignal`.
 *
 * @module
 */

import { WarpError } from "./core/errors.ts";
import { UPDATE_ABORT, UpdateRun } from "./core/update.ts";
import type { Reducer, UpdateLimits, UpdateResult, UpdateStep } from "./core/update.ts";
import { describe } from "./_describe.ts";
import { checkOptions } from "./_check.ts";

/** Options of {@linkcode Warp.update}: the retry limits and a signal. */
export interface UpdateOptions extends UpdateLimits {
  /**
   * Stops the update between steps: before a store read, before a write, during a backoff.
   * A write already sent is not taken back (its result is reported). @default {undefined}
   */
  readonly signal?: AbortSignal;
}

/** The result of {@linkcode Warp.compareAndSet}: a value, not an exception. */
export type CompareAndSetResult =
  | { readonly status: "ok"; readonly version: number }
  | { readonly status: "conflict" };

/**
 * A merge function: the value to store when `incoming` is written over `current` (the
 * store's, never L1's; `undefined`: the key has no value). Pure: it may run several times.
 */
export type Merge<T> = (current: T | undefined, incoming: T) => T;

/** What the stored key holds, as the update reads it. */
export interface StoredForUpdate<T> {
  readonly found: boolean;
  readonly value: T | undefined;
  readonly version: number;
  readonly leases: readonly string[];
}

/** The node's I/O an update uses: a store read, and a conditional write through the core. */
export interface UpdateIo<T> {
  /** Reads `key` from the store (never L1). Rejects with a `WarpError` on failure. */
  read(key: string): Promise<StoredForUpdate<T>>;
  /** Writes through the node's mode at `expectedVersion`; `STORE_CONFLICT` if it moved. */
  write(
    key: string,
    value: T,
    expectedVersion: number,
    leases: readonly string[],
  ): Promise<number>;
}

/**
 * Checks update options (`TypeError` / `RangeError` naming the problem).
 *
 * @example
 * ```ts
 * import { checkUpdateOptions } from "./_update.ts";
 * console.log(checkUpdateOptions({ attemptsMax: 3 })); // { attemptsMax: 3 }
 * ```
 */
export function checkUpdateOptions(options: unknown): UpdateOptions {
  checkOptions(options, "update options", true);
  const opts = (options ?? {}) as UpdateOptions;
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) {
    throw new TypeError(`Invalid signal, expected an AbortSignal: ${describe(opts.signal)}`);
  }
  return opts;
}

/**
 * Runs one update to its end. `leases` overrides the leases the written value carries
 * (default: the ones the stored value has). Store failures other than a conflict reject
 * (the write's outcome is then unknown: it is not retried).
 *
 * @example Against a store held in a variable
 * ```ts
 * import assert from "node:assert/strict";
 * import { WarpError } from "./core/errors.ts";
 * import { runUpdate } from "./_update.ts";
 * let cell = { value: 1, version: 3 };
 * const result = await runUpdate<number>({
 *   read: async () => ({ found: true, ...cell, leases: [] }),
 *   write: async (_key, value, expected) => {
 *     if (expected !== cell.version) throw new WarpError("STORE_CONFLICT", "moved");
 *     cell = { value, version: cell.version + 1 };
 *     return cell.version;
 *   },
 * }, "k", (n) => n! * 10);
 * assert.deepEqual(result, { status: "ok", value: 10, version: 4, attempts: 1 });
 * ```
 */
export async function runUpdate<T>(
  io: UpdateIo<T>,
  key: string,
  reducer: Reducer<T>,
  options: UpdateOptions = {},
  leases?: readonly string[],
): Promise<UpdateResult<T>> {
  const { signal, ...limits } = options;
  const run = new UpdateRun(reducer, limits);
  let step: UpdateStep<T> = run.start();
  let stored: StoredForUpdate<T> | undefined;
  for (;;) {
    if (step.type === "done") return step.result;
    if (signal?.aborted) return run.aborted("signal").result;
    switch (step.type) {
      case "read":
        stored = await io.read(key);
        step = run.onRead(stored);
        break;
      case "write":
        try {
          const version = await io.write(
            key,
            step.value,
            step.expectedVersion,
            leases ?? stored?.leases ?? [],
          );
          step = run.onWritten({ ok: true, version });
        } catch (error) {
          if (!(error instanceof WarpError) || error.code !== "STORE_CONFLICT") throw error;
          step = run.onWritten({ ok: false });
        }
        break;
      case "wait":
        await sleep(step.minMs + Math.random() * (step.maxMs - step.minMs), signal);
        step = run.onWaited();
        break;
    }
  }
}

/**
 * `merge(current, incoming)` as a reducer.
 *
 * @example
 * ```ts
 * import { mergeReducer } from "./_update.ts";
 * const reducer = mergeReducer<number>((a, b) => (a ?? 0) + b, 5);
 * console.log(reducer(1, { version: 1, found: true, attempt: 1, abort: () => Symbol() as never })); // 6
 * ```
 */
export function mergeReducer<T>(merge: Merge<T>, incoming: T): Reducer<T> {
  return (current) => merge(current, incoming);
}

/** Resolves after `ms`, or at once when `signal` fires. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

export { UPDATE_ABORT };
