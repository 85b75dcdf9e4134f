/**
 * Private: the pieces of `Warp.getMany` and `Warp.getOrSetMany` that need none of the
 * node's state — the per-key result, the argument checks, and the loader that turns the
 * application's one `loadMany` call into the per-key loads the core asks for.
 *
 * Design: a batch is N ordinary reads started in one driver step, so every key goes
 * through the core's fill path with its own version or epoch rules (E2, S1, LB1 per key)
 * and the core never learns it was a batch; the driver only gathers the store reads that
 * step produced into one `Store.getMany` call, and the loads into one `loadMany` call
 * (`batchLoader`). Rejected: a batch path of its own that reads the store and installs the
 * answers into L1 — it would bypass the fill guards (a stale fill racing an invalidation)
 * that every single read keeps.
 *
 * @module
 */

import type { Loader, LoaderContext, ReadResult } from "./warp.ts";
import { describe } from "./_describe.ts";
import { checkKey } from "./_check.ts";

/** The most keys one `getMany` or `getOrSetMany` call takes. */
export const BATCH_KEYS_MAX = 10_000;

/** Store reads in flight at once for a batch when the store has no `getMany`. */
export const BATCH_PARALLEL = 16;

/**
 * One key's outcome in a batch: `ok` with the value and the full {@linkcode ReadResult},
 * or not `ok` with the error that key alone met (its `value` is then `undefined`).
 */
export type ManyResult<T> =
  | {
    /** The key, as passed. */
    readonly key: string;
    /** The key was read. */
    readonly ok: true;
    /** Its value, `undefined` when it has none. */
    readonly value: T | undefined;
    /** The read's full answer: found, version, source, stale… */
    readonly result: ReadResult<T>;
  }
  | {
    /** The key, as passed. */
    readonly key: string;
    /** The key's read failed. */
    readonly ok: false;
    /** No value. */
    readonly value: undefined;
    /** Why: a `WarpError` (`STORE_ERROR`, `LOADER_ERROR`, `UNREGISTERED_KEY`, …) or a `TypeError`. */
    readonly error: Error;
  };

/**
 * The application's loader of several keys: called with the keys that missed, it answers
 * a `Map` (or a plain object) from key to value; a key it leaves out, or maps to
 * `undefined`, is "not found". Rejecting fails every key of the call with `LOADER_ERROR`.
 */
export type LoadMany<T> = (
  keys: string[],
  context: LoadManyContext,
) =>
  | ReadonlyMap<string, T | undefined>
  | Readonly<Record<string, T | undefined>>
  | Promise<ReadonlyMap<string, T | undefined> | Readonly<Record<string, T | undefined>>>;

/** What a {@linkcode LoadMany} is called with. */
export interface LoadManyContext {
  /** Aborted once Warp abandons the load of every key of the call (hard timeouts, close). */
  readonly signal: AbortSignal;
}

/** Checks a batch's keys (a `TypeError` or `RangeError` naming the first bad one). */
export function checkBatchKeys(keys: unknown): asserts keys is readonly string[] {
  if (!Array.isArray(keys)) {
    throw new TypeError(`Invalid keys, expected an array of keys: ${describe(keys)}`);
  }
  if (keys.length > BATCH_KEYS_MAX) {
    throw new RangeError(
      `Too many keys for one batch, expected at most ${BATCH_KEYS_MAX}, got ${keys.length}`,
    );
  }
  for (const key of keys) checkKey(key);
}

/** The per-key results of settled reads, in order. */
export function settleMany<T>(
  keys: readonly string[],
  settled: readonly PromiseSettledResult<ReadResult<T>>[],
): ManyResult<T>[] {
  return keys.map((key, i) => {
    const outcome = settled[i]!;
    if (outcome.status === "fulfilled") {
      return { key, ok: true, value: outcome.value.value, result: outcome.value };
    }
    const error = outcome.reason instanceof Error
      ? outcome.reason
      : new Error(`Read failed: ${describe(outcome.reason)}`);
    return { key, ok: false, value: undefined, error };
  });
}

/**
 * Runs `work` on every item with at most `limit` in flight; resolves when all settled.
 */
export async function inParallel<I>(
  items: readonly I[],
  limit: number,
  work: (item: I, index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index).catch(() => {});
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * A per-key {@linkcode Loader} over `loadMany`: the loads the core starts in one driver
 * step (their loader calls run in the microtasks right after it) are answered by one
 * `loadMany` call with their keys; a later load (one that an invalidation overtook and the
 * core starts again) makes a call of its own.
 */
export function batchLoader<T>(loadMany: LoadMany<T>): Loader<T> {
  let pending: { context: LoaderContext<T>; settle: Settle<T> }[] | undefined;
  const flush = (batch: { context: LoaderContext<T>; settle: Settle<T> }[]) => {
    const controller = new AbortController();
    let live = batch.length;
    for (const { context } of batch) {
      const onAbort = () => {
        if (--live === 0) controller.abort();
      };
      if (context.signal.aborted) onAbort();
      else context.signal.addEventListener("abort", onAbort, { once: true });
    }
    const keys = [...new Set(batch.map(({ context }) => context.key))];
    Promise.resolve()
      .then(() => loadMany(keys, { signal: controller.signal }))
      .then((answer) => {
        const lookup = lookupOf<T>(answer);
        for (const { context, settle } of batch) settle.resolve(lookup(context.key));
      })
      .catch((error) => {
        for (const { settle } of batch) settle.reject(error);
      });
  };
  return (context) =>
    new Promise<T | undefined>((resolve, reject) => {
      if (pending === undefined) {
        const batch: { context: LoaderContext<T>; settle: Settle<T> }[] = [];
        pending = batch;
        queueMicrotask(() => {
          pending = undefined;
          flush(batch);
        });
      }
      pending.push({ context, settle: { resolve, reject } });
    });
}

interface Settle<T> {
  resolve(value: T | undefined): void;
  reject(error: unknown): void;
}

function lookupOf<T>(answer: unknown): (key: string) => T | undefined {
  if (answer instanceof Map) return (key) => answer.get(key) as T | undefined;
  if (typeof answer === "object" && answer !== null && !Array.isArray(answer)) {
    const record = answer as Record<string, T | undefined>;
    return (key) => Object.hasOwn(record, key) ? record[key] : undefined;
  }
  throw new TypeError(
    `Invalid answer of loadMany, expected a Map or an object of values by key: ${describe(answer)}`,
  );
}
