/**
 * The default codec: JSON text for values that are plain JSON, and a tagged form for values
 * that hold what a database row does besides (`Date`, `BigInt`, `Map`, `Set`, `undefined`,
 * `Uint8Array`, …).
 *
 * Design: a value is walked once. If it is plain JSON it is stored as JSON text, the very
 * bytes {@linkcode jsonCodec} writes, so existing stored values, SQL tools and other
 * readers keep working and the common case runs at `JSON.stringify` speed. Otherwise it is
 * stored as `~` followed by [devalue](https://github.com/sveltejs/devalue)'s text (the
 * serializer SvelteKit ships; no dependencies; its parser refuses malformed input rather
 * than building odd objects). `~` cannot start JSON text, so `decode` tells the two apart
 * from the first byte.
 *
 * Rejected, measured on one typical row (encode + decode, a `Date`, `BigInt`, `Set`, `Map`,
 * `undefined` and 32 bytes; medians of three rounds in one Deno run; JSON on the same row
 * converted by hand as the baseline, 9.1 µs and 424 bytes): `msgpackr` (16.6 µs, 286 bytes)
 * decodes a `Map` as a plain object unless a process-wide extension is installed; `cbor-x`
 * could not be installed by Deno at all (its optional `cbor-extract` 2.2.3 names platform
 * packages missing from the npm registry); `superjson` (60 µs, 619 bytes) is slower and
 * larger than devalue (42 µs, 546 bytes); an in-house tagged format would be more code to
 * harden than to borrow. devalue's cost is paid on writes and fills only: L1 holds decoded
 * values, so hits never decode. `bench/codec_bench.ts` measures the chosen codec beside JSON.
 *
 * @module
 */

import { parse, stringify } from "devalue";
import { describe } from "./_describe.ts";
import type { Codec } from "./codec.ts";
import { JSON_DEPTH_MAX } from "./codec.ts";
import { WarpError } from "./core/errors.ts";

/** The first byte of the tagged form: `~`, which no JSON text starts with. */
const TAGGED = 0x7e;
const TAGGED_PREFIX = "~";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * `Uint8Array`s are reduced to base64 of exactly their bytes: devalue's own encoding of a
 * typed array stores its whole underlying buffer, which for a slice of a pooled buffer is
 * unrelated bytes.
 */
const reducers = {
  U8: (value: unknown) => value instanceof Uint8Array && toBase64(value),
};
const revivers = {
  U8: (text: unknown) => {
    if (typeof text !== "string") throw new TypeError("Invalid Uint8Array payload");
    return fromBase64(text);
  },
};

const BASE64_CHUNK = 0x8000;

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += BASE64_CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + BASE64_CHUNK));
  }
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function isPlainObject(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** What the walk found: whether JSON text holds the value exactly. */
type Form = "json" | "tagged";

/**
 * Walks `root` once, with its own stack (no depth overflows the call stack), and says which
 * form stores it. Throws a `WarpError` `VALUE_TOO_LARGE` past {@linkcode JSON_DEPTH_MAX}
 * levels of arrays, objects, maps and sets. Leaves the other refusals (functions, class
 * instances, symbols) to devalue, which names the path.
 */
function formOf(root: unknown): Form {
  let form: Form = "json";
  const seen = new Set<object>();
  const stack: [value: unknown, depth: number][] = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    switch (typeof value) {
      case "string":
      case "boolean":
        continue;
      case "number":
        if (!Number.isFinite(value) || Object.is(value, -0)) form = "tagged";
        continue;
      case "object":
        break;
      default:
        // undefined and bigint are stored tagged; functions and symbols devalue refuses.
        form = "tagged";
        continue;
    }
    if (value === null) continue;
    // A shared or cyclic part: JSON would copy or refuse it, devalue keeps it.
    if (seen.has(value)) {
      form = "tagged";
      continue;
    }
    seen.add(value);
    const container = Array.isArray(value) || value instanceof Map || value instanceof Set ||
      isPlainObject(value);
    if (container && depth >= JSON_DEPTH_MAX) {
      throw new WarpError("VALUE_TOO_LARGE", `Cannot encode, nested deeper than ${JSON_DEPTH_MAX}`);
    }
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        if (!(i in value)) form = "tagged"; // a hole: JSON would write null
        stack.push([value[i], depth + 1]);
      }
      continue;
    }
    if (isPlainObject(value)) {
      if (Object.getOwnPropertySymbols(value).length > 0) {
        throw new TypeError("Cannot encode: an object has symbol keys");
      }
      if (Object.getPrototypeOf(value) === null) form = "tagged";
      for (const key of Object.keys(value)) {
        stack.push([(value as Record<string, unknown>)[key], depth + 1]);
      }
      continue;
    }
    form = "tagged";
    if (value instanceof Map) {
      for (const [k, v] of value) stack.push([k, depth + 1], [v, depth + 1]);
    } else if (value instanceof Set) {
      for (const item of value) stack.push([item, depth + 1]);
    }
  }
  return form;
}

/**
 * The default codec: what a database row holds, round-tripped. `decode(encode(value))`
 * deep-equals `value` for JSON values and, nested in any of them, `undefined`, `NaN`,
 * `±Infinity`, `-0`, `BigInt`, `Date` (invalid ones too), `Map`, `Set`, `Uint8Array` and
 * other typed arrays, `RegExp`, `URL`, boxed primitives, sparse arrays, objects without a
 * prototype, and shared or cyclic references (kept shared). Plain JSON values are stored as
 * the JSON text {@linkcode jsonCodec} writes, so `structuredCodec` reads what `jsonCodec`
 * stored; other values as `~` followed by devalue's text (see the module documentation).
 * The same value always encodes to the same bytes.
 *
 * `encode` throws a `TypeError` for functions, symbols, symbol keys, class instances
 * other than those above, and objects with an own `__proto__` key beside non-JSON parts;
 * and a `WarpError` of code `VALUE_TOO_LARGE` for a value nested deeper than
 * {@linkcode JSON_DEPTH_MAX}. `decode` throws a `TypeError` for any bytes it did not write.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { structuredCodec } from "./structured_codec.ts";
 *
 * const row = { id: 7n, at: new Date(0), tags: new Set(["a"]), note: undefined };
 * assert.deepEqual(structuredCodec.decode(structuredCodec.encode(row)), row);
 * // Plain JSON stays JSON text.
 * assert.equal(new TextDecoder().decode(structuredCodec.encode({ a: [1] })), '{"a":[1]}');
 * assert.throws(() => structuredCodec.decode(new Uint8Array([0x7e, 0x7b])), TypeError);
 * ```
 */
export const structuredCodec: Codec<unknown> = {
  encode(value: unknown): Uint8Array {
    const form = formOf(value);
    let text: string;
    try {
      text = form === "json" ? JSON.stringify(value) : TAGGED_PREFIX + stringify(value, reducers);
    } catch (error) {
      if (error instanceof RangeError) {
        // Past V8's longest string (about 2^29 characters): a limit, not a bug.
        throw new WarpError("VALUE_TOO_LARGE", `Value too large to encode: ${error.message}`, {
          cause: error,
        });
      }
      const path = (error as { path?: unknown }).path;
      const where = typeof path === "string" && path !== "" ? ` at value${path}` : "";
      throw new TypeError(
        `Cannot encode${where}: ${error instanceof Error ? error.message : describe(error)}`,
        { cause: error },
      );
    }
    return encoder.encode(text);
  },
  decode(bytes: Uint8Array): unknown {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(`Invalid bytes: expected a Uint8Array, got ${describe(bytes)}`);
    }
    try {
      const text = decoder.decode(bytes);
      return bytes[0] === TAGGED ? parse(text.slice(1), revivers) : JSON.parse(text);
    } catch (error) {
      const reason = error instanceof Error ? error.message : describe(error);
      throw new TypeError(`Cannot decode ${bytes.byteLength} bytes: ${reason}`, {
        cause: error,
      });
    }
  },
};
