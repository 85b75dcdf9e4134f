/**
 * Codecs turn values into the bytes the store keeps, and back.
 *
 * @module
 */

import { describe } from "./_describe.ts";
import { WarpError } from "./core/errors.ts";

/** Encodes values for the store and decodes them back. */
export interface Codec<T = unknown> {
  /**
   * Turns a value into bytes. Throws a `TypeError` for a value it cannot encode, and a
   * `WarpError` of code `VALUE_TOO_LARGE` for one over the codec's own limits.
   */
  encode(value: T): Uint8Array;
  /** Turns bytes back into a value. Throws for bytes it cannot decode. */
  decode(bytes: Uint8Array): T;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The deepest nesting of arrays and objects {@linkcode jsonCodec} encodes: a value nested
 * deeper is refused with a `WarpError` of code `VALUE_TOO_LARGE`.
 */
export const JSON_DEPTH_MAX = 1000;

/**
 * Encodes JSON values as UTF-8 JSON text, so that `decode(encode(value))` deep-equals
 * `value`: `null`, booleans, finite numbers, strings, arrays and plain objects, nested
 * up to {@linkcode JSON_DEPTH_MAX} deep (`-0` becomes `0`, as in JSON).
 *
 * `encode` throws a `TypeError` for anything JSON would change or lose instead of writing
 * it: `undefined` (also as an object property or array element), functions, symbols,
 * bigints, `NaN` and `±Infinity`, class instances such as `Date` or `Map`, symbol keys
 * and cycles; and a `WarpError` of code `VALUE_TOO_LARGE` for a value nested deeper than
 * {@linkcode JSON_DEPTH_MAX} or too large for a JavaScript string. The check walks the
 * value with its own stack, so no depth overflows the call stack. `decode` throws a
 * `TypeError` for invalid UTF-8 and a `SyntaxError` for invalid JSON.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { jsonCodec } from "./codec.ts";
 *
 * const bytes = jsonCodec.encode({ name: "Ada", tags: ["math"], born: 1815 });
 * assert.deepEqual(jsonCodec.decode(bytes), { name: "Ada", tags: ["math"], born: 1815 });
 * assert.throws(() => jsonCodec.encode({ at: new Date(0) }), TypeError);
 * ```
 */
export const jsonCodec: Codec<unknown> = {
  encode(value: unknown): Uint8Array {
    checkJson(value);
    let text: string;
    try {
      text = JSON.stringify(value);
    } catch (error) {
      // Past V8's longest string (about 2^29 characters): a limit, not a bug.
      if (!(error instanceof RangeError)) throw error;
      throw new WarpError(
        "VALUE_TOO_LARGE",
        `Value too large to encode as JSON: ${error.message}`,
        {
          cause: error,
        },
      );
    }
    return encoder.encode(text);
  },
  decode(bytes: Uint8Array): unknown {
    checkBytes(bytes);
    return JSON.parse(decoder.decode(bytes));
  },
};

/** An array or object being checked, with the way back to the root for error messages. */
interface Frame {
  readonly value: object;
  /** The property names of an object; `undefined` for an array. */
  readonly keys: readonly string[] | undefined;
  readonly length: number;
  next: number;
  readonly parent: Frame | undefined;
  /** Where `value` sits in its parent. */
  readonly at: string | number;
  readonly depth: number;
}

/**
 * Throws unless `value` survives a JSON round trip unchanged and is at most
 * {@linkcode JSON_DEPTH_MAX} deep. Depth-first with an explicit stack (a deep value must
 * not overflow the call stack); paths are built only for the error message.
 */
function checkJson(root: unknown): void {
  const stack: Frame[] = [];
  const ancestors = new Set<object>();
  const enter = (value: unknown, parent: Frame | undefined, at: string | number): void => {
    const where = () => pathOf(parent, at);
    switch (typeof value) {
      case "string":
      case "boolean":
        return;
      case "number":
        if (!Number.isFinite(value)) {
          throw new TypeError(`Cannot encode as JSON: ${where()} is ${value}`);
        }
        return;
      case "object":
        break;
      default:
        throw new TypeError(`Cannot encode as JSON: ${where()} is ${describe(value)}`);
    }
    if (value === null) return;
    if (ancestors.has(value)) throw new TypeError(`Cannot encode as JSON: ${where()} is a cycle`);
    const depth = (parent?.depth ?? 0) + 1;
    if (depth > JSON_DEPTH_MAX) {
      throw new WarpError(
        "VALUE_TOO_LARGE",
        `Cannot encode as JSON, nested deeper than ${JSON_DEPTH_MAX}: ${where()}`,
      );
    }
    let keys: string[] | undefined;
    if (!Array.isArray(value)) {
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) {
        throw new TypeError(`Cannot encode as JSON: ${where()} is ${describe(value)}`);
      }
      if (Object.getOwnPropertySymbols(value).length > 0) {
        throw new TypeError(`Cannot encode as JSON: ${where()} has symbol keys`);
      }
      keys = Object.keys(value);
    }
    const length = keys?.length ?? (value as unknown[]).length;
    ancestors.add(value);
    stack.push({ value, keys, length, next: 0, parent, at, depth });
  };
  enter(root, undefined, "value");
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if (frame.next === frame.length) {
      stack.pop();
      ancestors.delete(frame.value);
      continue;
    }
    const i = frame.next++;
    const at = frame.keys === undefined ? i : frame.keys[i]!;
    enter((frame.value as Record<string | number, unknown>)[at], frame, at);
  }
}

const PATH_SHOWN_MAX = 120;

/** `value["a"][0]`: where a bad part sits, cut in the middle if long. */
function pathOf(parent: Frame | undefined, at: string | number): string {
  const steps: (string | number)[] = [at];
  for (let frame = parent; frame !== undefined; frame = frame.parent) steps.push(frame.at);
  steps.reverse();
  let path = String(steps[0]);
  for (const step of steps.slice(1)) {
    path += typeof step === "number" ? `[${step}]` : `[${describe(step)}]`;
  }
  if (path.length <= PATH_SHOWN_MAX) return path;
  return `${path.slice(0, PATH_SHOWN_MAX / 2)}…${path.slice(-PATH_SHOWN_MAX / 2)}`;
}

function checkBytes(bytes: unknown): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`Invalid bytes: expected a Uint8Array, got ${describe(bytes)}`);
  }
}

/**
 * Stores bytes as they are. Both directions copy, so neither side can change the other's
 * bytes. `encode` throws a `TypeError` for anything but a `Uint8Array`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesCodec } from "./codec.ts";
 *
 * const original = new Uint8Array([1, 2, 3]);
 * const encoded = bytesCodec.encode(original);
 * assert.deepEqual(bytesCodec.decode(encoded), original);
 * assert.notEqual(encoded, original);
 * ```
 */
export const bytesCodec: Codec<Uint8Array> = {
  encode(value: Uint8Array): Uint8Array {
    checkBytes(value);
    return value.slice();
  },
  decode(bytes: Uint8Array): Uint8Array {
    checkBytes(bytes);
    return bytes.slice();
  },
};

/**
 * Stores strings as UTF-8. `encode` throws a `TypeError` for a non-string and for a
 * string with a lone surrogate (UTF-8 cannot hold it); `decode` throws a `TypeError` for
 * invalid UTF-8.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { textCodec } from "./codec.ts";
 *
 * assert.deepEqual(textCodec.encode("é"), new Uint8Array([0xc3, 0xa9]));
 * assert.equal(textCodec.decode(textCodec.encode("héllo")), "héllo");
 * ```
 */
export const textCodec: Codec<string> = {
  encode(value: string): Uint8Array {
    if (typeof value !== "string") {
      throw new TypeError(`Invalid text: expected a string, got ${describe(value)}`);
    }
    if (!value.isWellFormed()) {
      throw new TypeError("Invalid text: contains a lone surrogate");
    }
    return encoder.encode(value);
  },
  decode(bytes: Uint8Array): string {
    checkBytes(bytes);
    return decoder.decode(bytes);
  },
};
