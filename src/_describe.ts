/**
 * Private: how Warp's adapters name a bad argument in a `TypeError`/`RangeError` message.
 *
 * @module
 */

const STRING_SHOWN_MAX = 64;

/**
 * A short, printable description of `value` for the message of a misuse error:
 * strings quoted (and cut after 64 characters), objects by their tag.
 *
 * @example
 * ```ts
 * import { describe } from "./_describe.ts";
 * console.log(`Invalid key: ${describe("")}`); // Invalid key: ""
 * console.log(describe(new Map())); // [object Map]
 * ```
 */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(
      value.length > STRING_SHOWN_MAX ? `${value.slice(0, STRING_SHOWN_MAX)}…` : value,
    );
  }
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol") return String(value);
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  if (value === null || typeof value !== "object") return String(value);
  return Object.prototype.toString.call(value);
}
