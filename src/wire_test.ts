import assert from "node:assert/strict";
import fc from "fast-check";
import { isKey, KEY_LENGTH_MAX, type Message, validateMessage } from "./core/messages.ts";
import { NAMESPACE_LENGTH_MAX, namespaceProblem } from "./core/_namespaces.ts";
import { LEASE_TTL_MAX_MS, LEASE_TTL_MIN_MS, makeLeaseId } from "./core/leases.ts";
import {
  decodeMessage,
  encodeMessage,
  MESSAGE_BYTES_MAX,
  WIRE_MAGIC,
  WIRE_VERSION,
} from "./wire.ts";

const nodeId = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const count = fc.oneof(
  fc.nat({ max: 300 }),
  fc.maxSafeNat(),
  fc.constantFrom(0, 127, 128, 2 ** 31, 2 ** 32, 2 ** 49, Number.MAX_SAFE_INTEGER),
);
const positive = count.map((n) => Math.max(1, n));
const key = fc.oneof(
  fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }),
  // Any valid key (isKey: no lone surrogate, no NUL), astral characters included.
  fc.string({ minLength: 1, maxLength: KEY_LENGTH_MAX, unit: "binary" }).filter(isKey),
  fc.constantFrom("\ufeffbom", "€".repeat(KEY_LENGTH_MAX), "😀".repeat(KEY_LENGTH_MAX / 2)),
);
const header = { from: nodeId, inc: count };

const messageArbitraries: Record<Message["t"], fc.Arbitrary<Message>> = {
  inv: fc.record({ t: fc.constant("inv"), ...header, seq: positive, key, version: positive }),
  drop: fc.record({ t: fc.constant("drop"), ...header, seq: positive, key }),
  clr: fc.record({
    t: fc.constant("clr"),
    ...header,
    seq: positive,
    ns: fc.string({ minLength: 1, maxLength: NAMESPACE_LENGTH_MAX, unit: "grapheme" })
      .filter((ns) => namespaceProblem(ns) === undefined),
    epoch: positive,
  }),
  hb: fc.record({
    t: fc.constant("hb"),
    ...header,
    seq: count,
    round: count,
    echo: fc.array(fc.tuple(nodeId, count, count), { maxLength: 8 }),
  }),
  revoke: fc.record({
    t: fc.constant("revoke"),
    ...header,
    id: count,
    key,
    rev: count,
    nonce: count,
  }),
  ack: fc.record({ t: fc.constant("ack"), ...header, id: count, key, to: count, nonce: count }),
  lrev: fc.record({
    t: fc.constant("lrev"),
    ...header,
    lease: fc.tuple(
      fc.integer({ min: LEASE_TTL_MIN_MS, max: LEASE_TTL_MAX_MS }),
      fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
    ).map(([ttl, suffix]) => makeLeaseId(ttl, suffix)),
  }),
};
const message: fc.Arbitrary<Message> = fc.oneof(...Object.values(messageArbitraries));

for (const [type, arbitrary] of Object.entries(messageArbitraries)) {
  Deno.test(`decodeMessage() inverts encodeMessage() for every "${type}" message`, () => {
    fc.assert(fc.property(arbitrary, (m) => {
      assert.ok(validateMessage(m), "The arbitrary makes valid messages");
      const bytes = encodeMessage(m);
      assert.ok(bytes.length <= MESSAGE_BYTES_MAX);
      // fc.record() makes null-prototype objects; the decoder makes plain ones.
      assert.deepStrictEqual(decodeMessage(bytes), { ...m });
    }));
  });
}

Deno.test("encodeMessage() starts with the magic byte and wire version", () => {
  const bytes = encodeMessage({ t: "hb", from: "a", inc: 1, seq: 2, round: 3, echo: [] });
  assert.deepEqual([...bytes], [WIRE_MAGIC, WIRE_VERSION, 3, 1, 0x61, 1, 2, 3, 0]);
});

Deno.test("encodeMessage() writes numbers as shortest varints", () => {
  const bytes = encodeMessage({
    t: "hb",
    from: "a",
    inc: 300,
    seq: Number.MAX_SAFE_INTEGER,
    round: 0,
    echo: [],
  });
  assert.deepEqual([...bytes.subarray(5, 7)], [0xac, 0x02]);
  assert.equal(bytes.length, 7 + 8 + 2);
});

Deno.test("encodeMessage() throws a TypeError for an invalid message", () => {
  const invalid = [
    { t: "hb", from: "a b", inc: 1, seq: 0 },
    { t: "inv", from: "a", inc: 1, seq: 0, key: "k", version: 1 },
    { t: "ack", from: "a", inc: -1, id: 0, key: "k", to: 1, nonce: 1 },
    { t: "ack", from: "a", inc: 1, id: 0, key: "k" }, // no binding to a revoke
    { t: "revoke", from: "a", inc: 1, id: 0, key: "k", rev: 1 }, // no nonce
    { t: "nope", from: "a", inc: 1 },
    { t: "drop", from: "a", inc: 1, seq: 1, key: "lone \ud800" },
    { t: "drop", from: "a", inc: 1, seq: 1, key: "nul \u0000" },
  ];
  for (const m of invalid) {
    assert.throws(() => encodeMessage(m as Message), TypeError, JSON.stringify(m));
  }
  assert.throws(() => encodeMessage({ t: "hb", from: "", inc: 1, seq: 0, round: 0, echo: [] }), {
    message: 'Invalid message: {"t":"hb","from":"","inc":1,"seq":0,"round":0,"echo":[]}',
  });
});

Deno.test("decodeMessage() gives undefined for every truncation of a valid message", () => {
  fc.assert(fc.property(message, (m) => {
    const bytes = encodeMessage(m);
    for (let length = 0; length < bytes.length; length++) {
      assert.equal(decodeMessage(bytes.subarray(0, length)), undefined, `length ${length}`);
    }
  }));
});

Deno.test("decodeMessage() gives undefined for trailing bytes, other versions and foreign data", () => {
  const bytes = encodeMessage({ t: "ack", from: "n1", inc: 5, id: 9, key: "k", to: 4, nonce: 3 });
  assert.equal(decodeMessage(new Uint8Array([...bytes, 0])), undefined);
  for (const version of [1, 2]) {
    // Versions 1 and 2 lack the heartbeat's echoes or the ack's binding to its revoke.
    const otherVersion = bytes.slice();
    otherVersion[1] = version;
    assert.equal(decodeMessage(otherVersion), undefined);
  }
  const otherType = bytes.slice();
  otherType[2] = 6;
  assert.equal(decodeMessage(otherType), undefined);
  const foreign = new TextEncoder().encode(JSON.stringify({ t: "ack", from: "n1", inc: 5 }));
  assert.equal(decodeMessage(foreign), undefined);
  assert.equal(decodeMessage(new Uint8Array(MESSAGE_BYTES_MAX + 1).fill(WIRE_MAGIC)), undefined);
  assert.equal(decodeMessage("W" as unknown as Uint8Array), undefined);
});

Deno.test("decodeMessage() gives undefined for an oversized message", () => {
  const key = "k".repeat(MESSAGE_BYTES_MAX);
  const head = [WIRE_MAGIC, WIRE_VERSION, 2, 1, 0x61, 1, 1];
  const length = [0x80 | (key.length & 0x7f), key.length >> 7];
  const bytes = new Uint8Array([...head, ...length, ...new TextEncoder().encode(key)]);
  assert.equal(decodeMessage(bytes), undefined);
});

Deno.test("decodeMessage() rejects non-shortest and over-53-bit varints", () => {
  // hb from "a", inc 1, seq 0 written as [0x80, 0x00]: a long form of 0.
  assert.equal(
    decodeMessage(new Uint8Array([WIRE_MAGIC, WIRE_VERSION, 3, 1, 0x61, 1, 0x80, 0x00])),
    undefined,
  );
  // seq 2^53, one above Number.MAX_SAFE_INTEGER.
  const tooBig = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
  assert.equal(
    decodeMessage(new Uint8Array([WIRE_MAGIC, WIRE_VERSION, 3, 1, 0x61, 1, ...tooBig])),
    undefined,
  );
  const nineBytes = [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
  assert.equal(
    decodeMessage(new Uint8Array([WIRE_MAGIC, WIRE_VERSION, 3, 1, 0x61, 1, ...nineBytes])),
    undefined,
  );
});

Deno.test("decodeMessage() gives undefined for a key of invalid UTF-8", () => {
  const bytes = [WIRE_MAGIC, WIRE_VERSION, 2, 1, 0x61, 1, 1];
  for (const key of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
    assert.equal(decodeMessage(new Uint8Array([...bytes, key.length, ...key])), undefined);
  }
  assert.deepEqual(decodeMessage(new Uint8Array([...bytes, 2, 0xc3, 0xa9])), {
    t: "drop",
    from: "a",
    inc: 1,
    seq: 1,
    key: "é",
  });
});

/** The fuzz invariant: no throw, and anything decoded is valid and canonical. */
function assertSafeDecode(bytes: Uint8Array): boolean {
  const decoded = decodeMessage(bytes);
  if (decoded === undefined) return false;
  assert.ok(validateMessage(decoded));
  assert.deepEqual(encodeMessage(decoded), bytes);
  return true;
}

Deno.test("decodeMessage() never throws for arbitrary bytes", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 32 }).map((b) =>
          new Uint8Array([WIRE_MAGIC, WIRE_VERSION, ...b])
        ),
      ),
      (bytes) => {
        assertSafeDecode(bytes);
      },
    ),
    { numRuns: 20_000 },
  );
});

Deno.test("decodeMessage() never throws for mutated valid messages", () => {
  const mutation = fc.record({
    index: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
    kind: fc.constantFrom("replace", "insert", "delete"),
  });
  let decoded = 0;
  fc.assert(
    fc.property(message, fc.array(mutation, { minLength: 1, maxLength: 4 }), (m, mutations) => {
      const bytes = [...encodeMessage(m)];
      for (const { index, byte, kind } of mutations) {
        const at = index % (bytes.length + 1);
        if (kind === "replace") bytes[Math.min(at, bytes.length - 1)] = byte;
        else if (kind === "insert") bytes.splice(at, 0, byte);
        else bytes.splice(at, 1);
      }
      if (assertSafeDecode(new Uint8Array(bytes))) decoded++;
    }),
    { numRuns: 5_000 },
  );
  // Some mutations (a changed key byte, a changed number) still make valid messages.
  assert.ok(decoded > 0, "The fuzzer reached the decoder's success path");
});

Deno.test("decodeMessage() inverts encodeMessage() at every key length boundary", () => {
  for (const length of [1, 63, 64, 65, 127, 128, 129, 1023, 1024]) {
    for (const unit of ["k", "é", "€"]) {
      const m: Message = { t: "drop", from: "a", inc: 1, seq: 1, key: unit.repeat(length) };
      assert.deepStrictEqual(decodeMessage(encodeMessage(m)), m, `${length} × ${unit}`);
    }
  }
});

Deno.test("decodeMessage() refuses a clr whose namespace is no namespace, or whose epoch or seq is 0", () => {
  const good = { t: "clr", from: "a", inc: 1, seq: 3, ns: "users", epoch: 2 } as const;
  assert.deepEqual(decodeMessage(encodeMessage(good)), good);
  for (const bad of [{ ns: "us*" }, { ns: "users:" }, { ns: "" }, { epoch: 0 }, { seq: 0 }]) {
    const m = { ...good, ...bad };
    assert.equal(validateMessage(m), undefined, JSON.stringify(bad));
    assert.throws(() => encodeMessage(m as Message), TypeError);
  }
  // Forged bytes with a namespace ending in ":" decode to nothing.
  const bytes = encodeMessage({ ...good, ns: "users!" });
  bytes[bytes.length - 1] = 0x3a; // "!" -> ":"
  assert.equal(decodeMessage(bytes), undefined);
});
