/**
 * Merge functions for the `merge` option of a registration: with one, `set(key, value)`
 * becomes an update whose reducer is `merge(current, value)`, where `current` is read
 * from the store (never L1) and the write is conditional on its version, so concurrent
 * merged writes from any nodes lose nothing. The order of writes is the store's version
 * order: no wall clock decides which write wins.
 *
 * @example A counter merged from several nodes
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryStore, merges, Warp } from "../mod.ts";
 * const warp = new Warp<number>({ store: new MemoryStore() });
 * warp.register("views:*", { mode: "eventual-distributed", merge: merges.add });
 * await Promise.all([warp.set("views:home", 1), warp.set("views:home", 2)]);
 * assert.equal(await warp.get("views:home"), 3);
 * await warp.close();
 * ```
 *
 * @module
 */

import type { Merge } from "./_update.ts";

function add(current: unknown, incoming: unknown): number {
  if (typeof incoming !== "number" || !Number.isFinite(incoming)) {
    throw new TypeError(`Invalid increment of merges.add: ${String(incoming)}`);
  }
  if (current !== undefined && (typeof current !== "number" || !Number.isFinite(current))) {
    throw new TypeError(`Invalid stored value for merges.add: ${String(current)}`);
  }
  return (current ?? 0) + incoming;
}

function max(current: unknown, incoming: unknown): number {
  if (typeof incoming !== "number" || Number.isNaN(incoming)) {
    throw new TypeError(`Invalid value of merges.max: ${String(incoming)}`);
  }
  if (current !== undefined && (typeof current !== "number" || Number.isNaN(current))) {
    throw new TypeError(`Invalid stored value for merges.max: ${String(current)}`);
  }
  return current === undefined ? incoming : Math.max(current, incoming);
}

function union(current: unknown, incoming: unknown): unknown[] {
  if (!Array.isArray(incoming)) {
    throw new TypeError(`Invalid value of merges.union, expected an array: ${String(incoming)}`);
  }
  if (current !== undefined && !Array.isArray(current)) {
    throw new TypeError(`Invalid stored value for merges.union: ${String(current)}`);
  }
  const seen = new Set((current ?? []).map((element) => JSON.stringify(element)));
  const merged = [...(current ?? [])];
  for (const element of incoming) {
    const id = JSON.stringify(element);
    if (seen.has(id)) continue;
    seen.add(id);
    merged.push(element);
  }
  return merged;
}

function lastWriterWins(_current: unknown, incoming: unknown): unknown {
  return incoming;
}

/**
 * The provided merges:
 * - `add`: a counter; the stored number plus the written one (absent counts as 0);
 * - `max`: the larger of the stored and the written number;
 * - `union`: a set kept as a JSON array; the stored elements, then the written ones not
 *   already in it (compared by their JSON text);
 * - `lastWriterWins`: the written value replaces the stored one, and "last" is the
 *   store's order (the later version), never a clock.
 *
 * Each throws a `TypeError` (and nothing is written) for a value of the wrong type.
 *
 * @example
 * ```ts
 * import { merges } from "./merges.ts";
 * console.log(merges.add(2, 3), merges.max(2, 3), merges.union(["a"], ["a", "b"])); // 5 3 ["a", "b"]
 * ```
 */
export const merges: {
  readonly add: Merge<number> & Merge<unknown>;
  readonly max: Merge<number> & Merge<unknown>;
  readonly union: Merge<unknown[]> & Merge<unknown>;
  readonly lastWriterWins: Merge<unknown>;
} = Object.freeze({
  add: add as Merge<number> & Merge<unknown>,
  max: max as Merge<number> & Merge<unknown>,
  union: union as Merge<unknown[]> & Merge<unknown>,
  lastWriterWins,
});
