/**
 * Codecs turn values into the bytes the store keeps, and back.
 *
 * @module
 */

import { describe } from "./_describe.ts";

/** Encodes values for the store and decodes them back. */
export interface Codec<T = unknown> {
  /** Turns a value into bytes. Throws a `TypeError` for a value it cannot encode. */
  encode(value: T): Uint8Array;
  /** Turns bytes back into a value. Throws for bytes it cannot decode. */
  decode(bytes: Uint8Array): T;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes JSON values as UTF-8 JSON text, so that `decode(encode(value))` deep-equals
 * `value`: `null`, booleans, finite numbers, strings, arrays and plain objects, nested
 * any way (`-0` becomes `0`, as in JSON).
 *
 * `encode` throws a `TypeError` for anything JSON would change or lose instead of writing
 * it: `undefined` (also as an object property or array element), functions, symbols,
 * bigints, `NaN` and `±Infinity`, class instances such as `Date` or `Map`, symbol keys
 * and cycles. `decode` throws a `TypeError` for invalid UTF-8 and a `SyntaxError` for
 * invalid JSON.
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
    checkJson(value, "value", new Set());
    return encoder.encode(JSON.stringify(value));
  },
  decode(bytes: Uint8Array): unknown {
    checkBytes(bytes);
    return JSON.parse(decoder.decode(bytes));
  },
};

/** Throws unless `value` survives a JSON round trip unchanged. `path` names it in the error. */
function checkJson(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new TypeError(`Cannot encode as JSON: ${path} is ${value}`);
      }
      return;
    case "object":
      break;
    default:
      throw new TypeError(`Cannot encode as JSON: ${path} is ${describe(value)}`);
  }
  if (value === null) return;
  if (ancestors.has(value)) throw new TypeError(`Cannot encode as JSON: ${path} is a cycle`);
  ancestors.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) checkJson(value[i], `${path}[${i}]`, ancestors);
  } else {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      throw new TypeError(
        `Cannot encode as JSON: ${path} is ${Object.prototype.toString.call(value)}`,
      );
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new TypeError(`Cannot encode as JSON: ${path} has symbol keys`);
    }
    for (const [key, item] of Object.entries(value)) {
      checkJson(item, `${path}[${JSON.stringify(key)}]`, ancestors);
    }
  }
  ancestors.delete(value);
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
