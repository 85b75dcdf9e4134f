import assert from "node:assert/strict";
import fc from "fast-check";
import { bytesCodec, JSON_DEPTH_MAX, jsonCodec, textCodec } from "./codec.ts";
import { WarpError } from "./core/errors.ts";

/** JSON has no -0: it comes back as 0. */
function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(withoutNegativeZero);
  if (typeof value === "object" && value !== null) {
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      Object.defineProperty(copy, key, {
        value: withoutNegativeZero(item),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return copy;
  }
  return value;
}

Deno.test("jsonCodec.decode() inverts encode() for every JSON value", () => {
  for (const stringUnit of ["grapheme", "binary"] as const) {
    fc.assert(
      fc.property(fc.jsonValue({ stringUnit }), (value) => {
        assert.deepStrictEqual(
          jsonCodec.decode(jsonCodec.encode(value)),
          withoutNegativeZero(value),
        );
      }),
    );
  }
});

Deno.test("jsonCodec.decode() inverts encode() for strings with lone surrogates", () => {
  const value = { text: "a\ud800b", ["\udfff"]: ["\ud83d"] };
  assert.deepStrictEqual(jsonCodec.decode(jsonCodec.encode(value)), value);
});

Deno.test("jsonCodec.encode() writes compact UTF-8 JSON", () => {
  assert.equal(
    new TextDecoder().decode(jsonCodec.encode({ a: [1, "é", null, true] })),
    '{"a":[1,"é",null,true]}',
  );
  assert.deepEqual(jsonCodec.encode(-0), new TextEncoder().encode("0"));
});

Deno.test("jsonCodec.encode() throws a TypeError for values JSON cannot represent", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const cases: [unknown, string][] = [
    [undefined, "Cannot encode as JSON: value is undefined"],
    [() => 1, "Cannot encode as JSON: value is function (anonymous)"],
    [Symbol("s"), "Cannot encode as JSON: value is Symbol(s)"],
    [1n, "Cannot encode as JSON: value is 1n"],
    [NaN, "Cannot encode as JSON: value is NaN"],
    [-Infinity, "Cannot encode as JSON: value is -Infinity"],
    [{ a: undefined }, 'Cannot encode as JSON: value["a"] is undefined'],
    [{ a: [1, Infinity] }, 'Cannot encode as JSON: value["a"][1] is Infinity'],
    // deno-lint-ignore no-sparse-arrays
    [[1, , 3], "Cannot encode as JSON: value[1] is undefined"],
    [{ at: new Date(0) }, 'Cannot encode as JSON: value["at"] is [object Date]'],
    [new Map(), "Cannot encode as JSON: value is [object Map]"],
    [{ [Symbol("k")]: 1 }, "Cannot encode as JSON: value has symbol keys"],
    [{ toJSON: () => 1 }, 'Cannot encode as JSON: value["toJSON"] is function toJSON'],
    [cyclic, 'Cannot encode as JSON: value["self"] is a cycle'],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => jsonCodec.encode(value), { name: "TypeError", message });
  }
});

Deno.test("jsonCodec.encode() accepts shared, non-cyclic references and null prototypes", () => {
  const shared = { n: 1 };
  const bare = Object.assign(Object.create(null), { x: 1 });
  assert.deepEqual(jsonCodec.decode(jsonCodec.encode([shared, shared, bare])), [
    { n: 1 },
    { n: 1 },
    { x: 1 },
  ]);
});

Deno.test("jsonCodec.decode() throws for invalid UTF-8 and invalid JSON", () => {
  assert.throws(() => jsonCodec.decode(new Uint8Array([0xff])), TypeError);
  assert.throws(() => jsonCodec.decode(new TextEncoder().encode("{")), SyntaxError);
  assert.throws(() => jsonCodec.decode(new Uint8Array()), SyntaxError);
  assert.throws(() => jsonCodec.decode("[]" as unknown as Uint8Array), {
    name: "TypeError",
    message: 'Invalid bytes: expected a Uint8Array, got "[]"',
  });
});

Deno.test("bytesCodec copies in both directions", () => {
  fc.assert(fc.property(fc.uint8Array(), (value) => {
    const encoded = bytesCodec.encode(value);
    assert.notEqual(encoded, value);
    assert.deepEqual(encoded, value);
    const decoded = bytesCodec.decode(encoded);
    assert.notEqual(decoded, encoded);
    assert.deepEqual(decoded, value);
  }));
  assert.throws(() => bytesCodec.encode([1] as unknown as Uint8Array), TypeError);
});

Deno.test("textCodec.decode() inverts encode() for every well-formed string", () => {
  fc.assert(fc.property(fc.string({ unit: "binary" }), (value) => {
    assert.equal(textCodec.decode(textCodec.encode(value)), value);
  }));
  assert.equal(textCodec.decode(textCodec.encode("\ufeffbom")), "\ufeffbom");
});

Deno.test("textCodec throws a TypeError for non-strings, lone surrogates and invalid UTF-8", () => {
  assert.throws(() => textCodec.encode(1 as unknown as string), {
    name: "TypeError",
    message: "Invalid text: expected a string, got 1",
  });
  assert.throws(() => textCodec.encode("a\ud800"), TypeError);
  assert.throws(() => textCodec.decode(new Uint8Array([0xc3])), TypeError);
});

function nested(depth: number): unknown {
  let value: unknown = 0;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { d: value };
  return value;
}

Deno.test("jsonCodec.encode() takes JSON_DEPTH_MAX levels and refuses one more with VALUE_TOO_LARGE", () => {
  assert.deepEqual(
    jsonCodec.decode(jsonCodec.encode(nested(JSON_DEPTH_MAX))),
    nested(JSON_DEPTH_MAX),
  );
  for (const depth of [JSON_DEPTH_MAX + 1, 200_000]) {
    assert.throws(
      () => jsonCodec.encode(nested(depth)),
      (e) =>
        e instanceof WarpError && e.code === "VALUE_TOO_LARGE" &&
        e.message.includes(`deeper than ${JSON_DEPTH_MAX}`) && e.message.length < 300,
    );
  }
});

Deno.test("jsonCodec.encode() names a bad part deep inside a value with a cut path", () => {
  let deep: unknown = { d: undefined };
  for (let i = 0; i < 900; i++) deep = [deep];
  assert.throws(
    () => jsonCodec.encode(deep),
    (e) =>
      e instanceof TypeError && e.message.startsWith("Cannot encode as JSON: value[0][0]") &&
      e.message.endsWith('[0]["d"] is undefined') && e.message.length < 200,
  );
  const long = "k".repeat(1000);
  const cycle: Record<string, Record<string, unknown>> = { [long]: {} };
  cycle[long]!.back = cycle;
  assert.throws(
    () => jsonCodec.encode(cycle),
    (e) => e instanceof TypeError && e.message.endsWith("is a cycle") && e.message.length < 250,
  );
});
