/**
 * The default codec beside JSON on a typical database row, encode plus decode, in the same
 * run; each benchmark's name carries its encoded size in bytes.
 *
 * - "row": a user row with a `BigInt` id, `Date`s, a `Set`, a `Map`, `undefined` and a
 *   32-byte `Uint8Array`. The baseline is `jsonCodec` on the same row already converted by
 *   hand to JSON shapes (ISO strings, arrays, a number array): a lower bound for JSON, as it
 *   leaves out the conversion code a JSON user writes in both directions.
 * - "plain": a row with only JSON values, which `structuredCodec` stores as JSON text.
 *
 * Run: npx -y deno@2 task bench:table --filter codec (medians over runs, ratios to JSON)
 *
 * @module
 */

import { jsonCodec } from "../src/codec.ts";
import { structuredCodec } from "../src/structured_codec.ts";

const row = {
  id: 9_007_199_254_740_993n,
  email: "ada@example.com",
  name: "Ada Lovelace",
  createdAt: new Date(1_700_000_000_000),
  updatedAt: new Date(1_700_000_500_123),
  deletedAt: undefined,
  active: true,
  score: 42.5,
  loginCount: 17,
  roles: new Set(["admin", "editor"]),
  prefs: new Map([["theme", "dark"], ["lang", "en"]]),
  avatarHash: new Uint8Array(32).fill(7),
  address: { street: "1 Main St", city: "London", zip: "N1 9GU" },
  tags: ["a", "b", "c"],
};

/** The same row as a JSON user stores it. */
const rowAsJson = {
  ...row,
  id: row.id.toString(),
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
  deletedAt: null,
  roles: [...row.roles],
  prefs: Object.fromEntries(row.prefs),
  avatarHash: Array.from(row.avatarHash),
};

const plain = {
  id: 12345,
  email: "ada@example.com",
  name: "Ada Lovelace",
  createdAt: "2023-11-14T22:13:20.000Z",
  active: true,
  score: 42.5,
  address: { street: "1 Main St", city: "London", zip: "N1 9GU" },
  tags: ["a", "b", "c"],
};

let sink = 0;
const size = (bytes: Uint8Array) => `${bytes.byteLength} B`;

Deno.bench(`jsonCodec, row as JSON shapes (${size(jsonCodec.encode(rowAsJson))})`, {
  group: "codec: row",
  baseline: true,
}, () => {
  sink ^= (jsonCodec.decode(jsonCodec.encode(rowAsJson)) as { score: number }).score;
});

Deno.bench(`structuredCodec, row (${size(structuredCodec.encode(row))})`, {
  group: "codec: row",
}, () => {
  sink ^= (structuredCodec.decode(structuredCodec.encode(row)) as { score: number }).score;
});

Deno.bench(`jsonCodec, plain row (${size(jsonCodec.encode(plain))})`, {
  group: "codec: plain",
  baseline: true,
}, () => {
  sink ^= (jsonCodec.decode(jsonCodec.encode(plain)) as { score: number }).score;
});

Deno.bench(`structuredCodec, plain row (${size(structuredCodec.encode(plain))})`, {
  group: "codec: plain",
}, () => {
  sink ^= (structuredCodec.decode(structuredCodec.encode(plain)) as { score: number }).score;
});

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink);
});
