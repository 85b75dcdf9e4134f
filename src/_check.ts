/**
 * Private: the checks of public arguments that the runtimes (`Warp`, `Locks`) share, so
 * that each argument is refused the same way everywhere, before anything happens, with a
 * `TypeError`/`RangeError` whose message names the value cut short (`describe`).
 *
 * @module
 */

import { describe, describeValue } from "./_describe.ts";
import { isNodeId, keyProblem } from "./core/messages.ts";

/** The longest cluster prefix, so every subject and coordinator key built on it fits. */
export const PREFIX_LENGTH_MAX = 128;

const PREFIX_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/**
 * Throws a `TypeError` unless `key` is a valid key ({@linkcode keyProblem}); `what` names
 * it in the message.
 *
 * @example
 * ```ts
 * import { checkKey } from "./_check.ts";
 * checkKey("user:1");
 * try {
 *   checkKey("user:\u0000");
 * } catch (error) {
 *   console.log((error as Error).message); // Invalid key, it has a NUL character: "user:\u0000"
 * }
 * ```
 */
export function checkKey(key: unknown, what = "key"): asserts key is string {
  const problem = keyProblem(key);
  if (problem !== undefined) throw new TypeError(`Invalid ${what}, ${problem}: ${describe(key)}`);
}

/**
 * Throws a `TypeError` unless `prefix` is a cluster prefix: dot-separated tokens of
 * `[A-Za-z0-9_-]`, at most {@linkcode PREFIX_LENGTH_MAX} characters in all.
 *
 * @example
 * ```ts
 * import { checkPrefix } from "./_check.ts";
 * checkPrefix("orders.eu");
 * ```
 */
export function checkPrefix(prefix: unknown): asserts prefix is string {
  if (
    typeof prefix !== "string" || prefix.length > PREFIX_LENGTH_MAX || !PREFIX_PATTERN.test(prefix)
  ) {
    throw new TypeError(
      `Invalid prefix, expected at most ${PREFIX_LENGTH_MAX} characters of dot-separated [A-Za-z0-9_-] tokens: ${
        describe(prefix)
      }`,
    );
  }
}

/**
 * Throws a `TypeError` unless `nodeId` is 1 to 64 of `[A-Za-z0-9_-]` and not one of
 * `reserved`.
 *
 * @example
 * ```ts
 * import { checkNodeId } from "./_check.ts";
 * checkNodeId("node-1", ["all"]);
 * ```
 */
export function checkNodeId(
  nodeId: unknown,
  reserved: readonly string[] = [],
): asserts nodeId is string {
  if (!isNodeId(nodeId)) {
    throw new TypeError(`Invalid nodeId, expected 1 to 64 of [A-Za-z0-9_-]: ${describe(nodeId)}`);
  }
  if (reserved.includes(nodeId)) {
    throw new TypeError(`Invalid nodeId, it is reserved: ${describe(nodeId)}`);
  }
}

/**
 * Throws a `TypeError` unless `options` is an object, or `undefined` when `optional`.
 *
 * @example
 * ```ts
 * import { checkOptions } from "./_check.ts";
 * checkOptions({}, "set options", true);
 * ```
 */
export function checkOptions(
  options: unknown,
  what: string,
  optional: boolean,
): asserts options is Record<string, unknown> | undefined {
  if (options === undefined && optional) return;
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid ${what}, expected an object: ${describe(options)}`);
  }
}

/**
 * Throws a `TypeError` unless `value` has a method called each of `methods` (a store, a
 * transport, a coordinator, a codec): checked once, at construction, not at first use.
 *
 * @example
 * ```ts
 * import { checkMethods } from "./_check.ts";
 * checkMethods({ encode() {}, decode() {} }, "codec", ["encode", "decode"]);
 * ```
 */
export function checkMethods(value: unknown, what: string, methods: readonly string[]): void {
  const object = value as Record<string, unknown> | null | undefined;
  const missing = methods.find((name) => typeof object?.[name] !== "function");
  if (typeof value !== "object" || value === null || missing !== undefined) {
    throw new TypeError(
      `Invalid ${what}, expected an object with ${methods.join(", ")}: ${describe(value)}`,
    );
  }
}

/**
 * Throws a `TypeError` unless every option named in `names` is `undefined` or a number
 * (the range is the receiver's to check), so no message ever prints a huge non-number.
 *
 * @example
 * ```ts
 * import { checkNumbers } from "./_check.ts";
 * checkNumbers({ ttlMs: 5 }, ["ttlMs", "timeoutMs"]);
 * ```
 */
export function checkNumbers(options: Record<string, unknown>, names: readonly string[]): void {
  for (const name of names) {
    const value = options[name];
    if (value !== undefined && typeof value !== "number") {
      throw new TypeError(`${name} must be a number, got ${describeValue(value)}`);
    }
  }
}
