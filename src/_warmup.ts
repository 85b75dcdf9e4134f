/**
 * Private: `Warp.warmup`, loading keys into L1 ahead of use: a list of keys, or every key
 * of the store under a prefix, listed page by page (at most 1000 keys a page, `limit` in
 * all), then read through the node with at most 16 reads in flight.
 *
 * Design: warmup is ordinary reads, so every key is filled by the core's versioned fill
 * path as a caller's read would be, and a key that fails counts as failed without failing
 * the others. Rejected: writing L1 directly from the listed records, which would bypass
 * the fill's version and epoch checks.
 *
 * @module
 */

import type { Store } from "./store.ts";
import { checkKey } from "./_check.ts";
import { describe } from "./_describe.ts";
import { asWarpError, timeoutAfter, withTimeout } from "./_wake_timer.ts";

const WARMUP_CONCURRENCY = 16;
const WARMUP_LIMIT_MAX = 1_000_000;

/**
 * Reads `keys` (or every key under a prefix, listed from `store`) with `read`; resolves to
 * how many were loaded and how many failed. Bad arguments throw (TypeError/RangeError).
 */
export async function warmup(
  keys: readonly string[] | { readonly prefix: string; readonly limit?: number },
  store: Store,
  ioTimeoutMs: number,
  read: (key: string) => Promise<unknown>,
): Promise<{ loaded: number; failed: number }> {
  let list: string[];
  if (Array.isArray(keys)) {
    list = [...keys];
    for (const key of list) checkKey(key);
  } else {
    if (typeof keys !== "object" || keys === null) {
      throw new TypeError(
        `Invalid warmup argument, expected an array of keys or { prefix }: ${describe(keys)}`,
      );
    }
    const { prefix, limit = 10_000 } = keys as { prefix: unknown; limit?: unknown };
    // An empty prefix lists every key; otherwise it must be a storable key start.
    if (prefix !== "") checkKey(prefix, "warmup prefix");
    if (
      typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1 ||
      limit > WARMUP_LIMIT_MAX
    ) {
      throw new RangeError(
        `Invalid limit, expected 1 to ${WARMUP_LIMIT_MAX}: ${describe(limit)}`,
      );
    }
    list = [];
    let cursor: string | undefined;
    do {
      const listOptions = {
        prefix,
        limit: Math.min(1000, limit - list.length),
        ...(cursor !== undefined && { cursor }),
      };
      const page = await withTimeout(
        () => store.list(listOptions),
        ioTimeoutMs,
        timeoutAfter(ioTimeoutMs, `Store list of ${describe(prefix)}`),
      ).catch((error) => {
        throw asWarpError(error, "STORE_ERROR", `Store list of ${describe(prefix)} failed`);
      });
      list.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== undefined && list.length < limit);
  }
  let loaded = 0, failed = 0, next = 0;
  const worker = async () => {
    while (next < list.length) {
      const key = list[next++]!;
      try {
        await read(key);
        loaded++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(WARMUP_CONCURRENCY, list.length) }, worker));
  return { loaded, failed };
}
