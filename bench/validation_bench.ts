/**
 * What the up-front checks cost on the paths they sit on, each beside the code it
 * replaced, in the same run:
 *
 * - the key check of every decoded bus message: `isKey`, which now also refuses lone
 *   surrogates and NUL, beside the length-only check it had before, and the whole
 *   `decodeMessage` of an invalidation for scale;
 * - `jsonCodec.encode` of a typical object (every `set`), whose JSON check now walks the
 *   value with its own stack and a depth limit, beside the recursive check it replaced.
 *
 * Run: npx -y deno@2 task bench:table --filter validation (or `deno bench bench/validation_bench.ts`)
 *
 * @module
 */

import { describe } from "../src/_describe.ts";
import { jsonCodec } from "../src/codec.ts";
import { isKey, KEY_LENGTH_MAX } from "../src/core/messages.ts";
import { decodeMessage, encodeMessage } from "../src/wire.ts";

const DECODE_GROUP = "validation: decode an invalidation";
const ENCODE_GROUP = "validation: jsonCodec.encode";

let sink = 0;

const shortMessage = encodeMessage({
  t: "inv",
  from: "node-1",
  inc: 7,
  seq: 42,
  key: "user:1234",
  version: 3,
});
const longMessage = encodeMessage({
  t: "inv",
  from: "node-1",
  inc: 7,
  seq: 42,
  key: `user:${"é".repeat(KEY_LENGTH_MAX - 5)}`,
  version: 3,
});

/** The key check before: a length test only. */
function isKeyBefore(value: unknown): boolean {
  return typeof value === "string" && value.length > 0 && value.length <= KEY_LENGTH_MAX;
}

for (const [name, bytes] of [["short key", shortMessage], ["1024-character key", longMessage]]) {
  const message = decodeMessage(bytes as Uint8Array) as { key: string };
  const group = `${DECODE_GROUP}, ${name}`;
  Deno.bench({
    name: `length-only key check (before), ${name}`,
    group,
    baseline: true,
    fn() {
      if (isKeyBefore(message.key)) sink++;
    },
  });
  Deno.bench({
    name: `isKey: length, well-formed, no NUL (now), ${name}`,
    group,
    fn() {
      if (isKey(message.key)) sink++;
    },
  });
  Deno.bench({
    name: `the whole decodeMessage, isKey included, for scale, ${name}`,
    group,
    fn() {
      if (decodeMessage(bytes as Uint8Array) !== undefined) sink++;
    },
  });
}

/** The JSON check before: recursive, with each element's path built as it went. */
function checkJsonBefore(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`Cannot encode as JSON: ${path}`);
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
    for (let i = 0; i < value.length; i++) checkJsonBefore(value[i], `${path}[${i}]`, ancestors);
  } else {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      throw new TypeError(`Cannot encode as JSON: ${path}`);
    }
    if (Object.getOwnPropertySymbols(value).length > 0) {
      throw new TypeError(`Cannot encode as JSON: ${path} has symbol keys`);
    }
    for (const [key, item] of Object.entries(value)) {
      checkJsonBefore(item, `${path}[${JSON.stringify(key)}]`, ancestors);
    }
  }
  ancestors.delete(value);
}

const encoder = new TextEncoder();
const session = {
  user: { id: 1234, name: "Ada Lovelace", roles: ["admin", "editor"] },
  cart: Array.from({ length: 10 }, (_, i) => ({ sku: `sku-${i}`, qty: i + 1, price: 9.99 })),
  flags: { beta: true, theme: "dark" },
};

Deno.bench({
  name: "recursive check + stringify (before)",
  group: ENCODE_GROUP,
  baseline: true,
  fn() {
    checkJsonBefore(session, "value", new Set());
    sink += encoder.encode(JSON.stringify(session)).length;
  },
});

Deno.bench({
  name: "jsonCodec.encode: explicit stack + depth limit (now)",
  group: ENCODE_GROUP,
  fn() {
    sink += jsonCodec.encode(session).length;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === 0) console.log("unreachable");
});
