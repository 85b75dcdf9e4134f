import assert from "node:assert/strict";
import fc from "fast-check";
import { JSON_DEPTH_MAX, jsonCodec } from "./codec.ts";
import { WarpError } from "./core/errors.ts";
import { structuredCodec } from "./structured_codec.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function hasNegativeZero(value: unknown): boolean {
  if (Object.is(value, -0)) return true;
  if (typeof value !== "object" || value === null) return false;
  return Object.values(value).some(hasNegativeZero);
}

/** Whether an object in `value` has an own `__proto__` key: refused beside non-JSON parts. */
function hasProtoKey(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (Object.hasOwn(value, "__proto__")) return true;
  if (value instanceof Map) return [...value].some(([k, v]) => hasProtoKey(k) || hasProtoKey(v));
  if (value instanceof Set) return [...value].some(hasProtoKey);
  return Object.values(value).some(hasProtoKey);
}

/**
 * Values a database row holds, nested in anything fast-check builds (but an own `__proto__`
 * key, which `encode` refuses beside non-JSON parts: tested on its own below).
 */
const rowLike = fc.anything({
  withBigInt: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withTypedArray: true,
  withNullPrototype: true,
  withSparseArray: true,
  withBoxedValues: true,
  maxDepth: 4,
}).filter((value) => !hasProtoKey(value));

Deno.test("structuredCodec.decode() inverts encode() for rows of Date, BigInt, Map, Set, undefined and typed arrays", () => {
  fc.assert(
    fc.property(rowLike, (value) => {
      assert.deepStrictEqual(structuredCodec.decode(structuredCodec.encode(value)), value);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("structuredCodec.decode() inverts encode() for strings with lone surrogates, keys included", () => {
  fc.assert(
    fc.property(
      fc.anything({ withDate: true, withMap: true, stringUnit: "binary" }).filter((value) =>
        !hasProtoKey(value)
      ),
      (value) => {
        assert.deepStrictEqual(structuredCodec.decode(structuredCodec.encode(value)), value);
      },
    ),
    { numRuns: 1000 },
  );
  const value = { at: new Date(0), text: "a\ud800b", ["\udfff"]: new Set(["\ud83d"]) };
  assert.deepStrictEqual(structuredCodec.decode(structuredCodec.encode(value)), value);
});

Deno.test("structuredCodec.encode() is deterministic: equal values, equal bytes", () => {
  fc.assert(
    fc.property(rowLike, (value) => {
      const once = structuredCodec.encode(value);
      const copy = structuredCodec.decode(once);
      assert.deepEqual(structuredCodec.encode(value), once);
      assert.deepEqual(structuredCodec.encode(copy), once);
    }),
    { numRuns: 500 },
  );
});

Deno.test("structuredCodec.encode() writes plain JSON values as jsonCodec does, and reads jsonCodec's bytes", () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      fc.pre(!hasNegativeZero(value)); // JSON has no -0: such values are stored tagged
      const bytes = jsonCodec.encode(value);
      assert.deepEqual(structuredCodec.encode(value), bytes);
      assert.deepStrictEqual(structuredCodec.decode(bytes), value);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("structuredCodec round-trips a typical row with exactly its bytes", () => {
  const pooled = new Uint8Array(64).fill(9);
  const row = {
    id: 2n ** 70n,
    createdAt: new Date(1_700_000_000_123),
    deletedAt: undefined,
    roles: new Set(["admin"]),
    prefs: new Map<unknown, unknown>([["theme", "dark"], [1, { nested: [new Date(0)] }]]),
    avatar: pooled.subarray(10, 13),
    shared: undefined as unknown,
  };
  const part = { a: 1 };
  row.shared = [part, part];
  const bytes = structuredCodec.encode(row);
  assert.equal(text(bytes)[0], "~");
  // A slice stores its own three bytes, not the 64 of the buffer under it.
  assert.ok(!text(bytes).includes("CQkJCQkJ"), text(bytes));
  const back = structuredCodec.decode(bytes) as typeof row;
  assert.deepStrictEqual(back, { ...row, avatar: new Uint8Array([9, 9, 9]) });
  const [first, second] = back.shared as unknown[];
  assert.equal(first, second);
});

Deno.test("structuredCodec.encode() keeps cycles", () => {
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = cyclic;
  const back = structuredCodec.decode(structuredCodec.encode(cyclic)) as typeof cyclic;
  assert.equal(back.self, back);
});

Deno.test("structuredCodec.encode() throws a TypeError naming the path for what it cannot store", () => {
  class Point {
    x = 1;
  }
  const cases: [unknown, RegExp][] = [
    [{ at: new Point() }, /^Cannot encode at value\.at: .*non-POJO/],
    [{ f: () => 1 }, /^Cannot encode at value\.f: .*function/],
    [Symbol("s"), /^Cannot encode: .*Symbol/],
    [{ [Symbol("k")]: 1 }, /^Cannot encode: an object has symbol keys$/],
    [{ a: [{ [Symbol("k")]: 1 }] }, /^Cannot encode: an object has symbol keys$/],
    [JSON.parse('{"__proto__": 1, "at": 1}'), /^$/], // plain JSON: stored as JSON, see below
  ];
  for (const [value, message] of cases.slice(0, -1)) {
    assert.throws(() => structuredCodec.encode(value), (e) => {
      assert.ok(e instanceof TypeError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
  const proto = JSON.parse('{"__proto__": 1}');
  assert.deepStrictEqual(structuredCodec.decode(structuredCodec.encode(proto)), proto);
  assert.throws(
    () => structuredCodec.encode({ ...proto, at: new Date(0) }),
    /^TypeError: Cannot encode: .*__proto__/,
  );
});

Deno.test("structuredCodec.encode() refuses a value nested deeper than JSON_DEPTH_MAX with VALUE_TOO_LARGE", () => {
  for (const wrap of [(v: unknown) => [v], (v: unknown) => new Set([v]), (v: unknown) => ({ v })]) {
    let ok: unknown = new Date(0);
    for (let i = 0; i < JSON_DEPTH_MAX; i++) ok = wrap(ok);
    // deepStrictEqual itself recurses too deep here: compare the bytes of a second encoding.
    const bytes = structuredCodec.encode(ok);
    assert.deepEqual(structuredCodec.encode(structuredCodec.decode(bytes)), bytes);
    let deep: unknown = null;
    for (let i = 0; i < 200_000; i++) deep = wrap(deep);
    assert.throws(
      () => structuredCodec.encode(deep),
      (e) => e instanceof WarpError && e.code === "VALUE_TOO_LARGE",
    );
  }
});

Deno.test("structuredCodec.decode() throws a TypeError, and only that, for any bytes it did not write", () => {
  const junk = fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.string().map((s) => new TextEncoder().encode("~" + s)),
    fc.json().map((s) => new TextEncoder().encode("~" + s)),
    // Mutations of real encodings: one byte changed or the tail cut.
    fc.tuple(rowLike, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([value, at, byte]) => {
      const bytes = structuredCodec.encode(value).slice();
      if (bytes.length > 0) bytes[at % bytes.length] = byte;
      return at % 2 === 0 ? bytes : bytes.subarray(0, at % (bytes.length + 1));
    }),
  );
  let refused = 0;
  fc.assert(
    fc.property(junk, (bytes) => {
      try {
        structuredCodec.decode(bytes);
      } catch (error) {
        assert.ok(error instanceof TypeError, `${error} for ${text(bytes)}`);
        assert.match(error.message, /^Cannot decode \d+ bytes: /);
        refused++;
      }
    }),
    { numRuns: 5000 },
  );
  assert.ok(refused > 1000, `only ${refused} of 5000 junk inputs refused`);
  assert.throws(() => structuredCodec.decode("~[1]" as never), /^TypeError: Invalid bytes/);
});

Deno.test("structuredCodec.decode() builds no prototype from hostile input", () => {
  for (const hostile of ['~[{"__proto__":1},{"polluted":2}]', '~[["null","__proto__",1],2]']) {
    assert.throws(() => structuredCodec.decode(new TextEncoder().encode(hostile)), TypeError);
  }
  const parsed = structuredCodec.decode(new TextEncoder().encode('{"__proto__":{"polluted":1}}'));
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
});
