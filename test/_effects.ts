/**
 * Helpers for the unit tests of the pure cores (`NodeCore`, `LockCore`): picking effects.
 *
 * @module
 */

import assert from "node:assert/strict";

/**
 * Returns the only effect of type `type` among `effects`, asserting there is exactly one.
 *
 * @example
 * ```ts
 * import { only } from "./_effects.ts";
 * const effects = [{ type: "a", n: 1 }, { type: "b" }] as const;
 * console.log(only(effects, "a").n); // 1
 * ```
 */
export function only<E extends { readonly type: string }, K extends E["type"]>(
  effects: readonly E[],
  type: K,
): Extract<E, { type: K }> {
  const found = effects.filter((e) => e.type === type) as Extract<E, { type: K }>[];
  assert.equal(
    found.length,
    1,
    `expected one ${type}, got ${JSON.stringify(effects.map((e) => e.type))}`,
  );
  return found[0]!;
}

/**
 * Asserts that `effects` hold no effect of type `type`.
 *
 * @example
 * ```ts
 * import { none } from "./_effects.ts";
 * none([{ type: "resolve" }], "broadcast");
 * ```
 */
export function none<E extends { readonly type: string }>(
  effects: readonly E[],
  type: E["type"],
): void {
  assert.equal(effects.filter((e) => e.type === type).length, 0, `unexpected ${type}`);
}
