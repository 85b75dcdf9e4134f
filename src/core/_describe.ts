/**
 * Private: how Warp names a bad argument or value in an error message, everywhere (the
 * core, the runtimes and the adapters), so that no message copies a huge argument whole.
 *
 * Lives in the core so the pure modules can use it too; `src/_describe.ts` re-exports it.
 *
 * @module
 */

/** The most UTF-16 code units of a string shown before it is cut. */
export const STRING_SHOWN_MAX = 64;

/**
 * A short, printable description of `value` for an error message: strings quoted as JSON
 * (cut after {@linkcode STRING_SHOWN_MAX} code units, with their length; lone surrogates
 * and control characters escaped), numbers and other primitives as they print, functions
 * by name, objects by their tag. Never throws, and never longer than about 100 characters.
 *
 * @example
 * ```ts
 * import { describe } from "./_describe.ts";
 * console.log(`Invalid key: ${describe("")}`); // Invalid key: ""
 * console.log(describe(new Map())); // [object Map]
 * console.log(describe("x".repeat(100)).length < 100); // true
 * ```
 */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    if (value.length <= STRING_SHOWN_MAX) return JSON.stringify(value);
    return `${JSON.stringify(value.slice(0, STRING_SHOWN_MAX))}… (${value.length} characters)`;
  }
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "symbol") return shorten(String(value));
  if (typeof value === "function") return `function ${shorten(value.name || "(anonymous)")}`;
  if (value === null || typeof value !== "object") return String(value);
  try {
    if (Array.isArray(value)) return `an array of ${value.length}`;
    return Object.prototype.toString.call(value);
  } catch {
    return "[object]"; // a revoked Proxy
  }
}

/**
 * {@linkcode describe} with the value's type in front, for "expected X, got Y" messages:
 * `the string "1000"`, `the number NaN`, `the boolean true`, `undefined`, `null`, `an
 * array of 2`, `a function f`, `an object [object Map]`.
 *
 * @example
 * ```ts
 * import { describeValue } from "./_describe.ts";
 * console.log(`ttlMs must be a number, got ${describeValue("1000")}`); // ttlMs must be a number, got the string "1000"
 * ```
 */
export function describeValue(value: unknown): string {
  if (value === undefined || value === null) return String(value);
  if (Array.isArray(value)) return describe(value);
  switch (typeof value) {
    case "function":
      return `a ${describe(value)}`;
    case "object":
      return `an object ${describe(value)}`;
    default:
      return `the ${typeof value} ${describe(value)}`;
  }
}

function shorten(text: string): string {
  return text.length <= STRING_SHOWN_MAX ? text : `${text.slice(0, STRING_SHOWN_MAX)}…`;
}

/** The most characters of an underlying error's message repeated in a `WarpError`. */
const ERROR_SHOWN_MAX = 200;

/**
 * The message of an underlying error (a store's, a coordinator's) for the message of the
 * `WarpError` that wraps it, cut after 200 characters; a thrown non-error is described.
 *
 * @example
 * ```ts
 * import { describeError } from "./_describe.ts";
 * console.log(describeError(new Error("connection refused"))); // connection refused
 * console.log(describeError("x".repeat(300)).length < 120); // true
 * ```
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return describe(error);
  const message = String(error.message);
  return message.length <= ERROR_SHOWN_MAX ? message : `${message.slice(0, ERROR_SHOWN_MAX)}…`;
}
