import assert from "node:assert/strict";
import fc from "fast-check";
import { openEnvelope, sealEnvelope } from "./_lease_envelope.ts";
import { LEASE_TTL_MAX_MS, LEASE_TTL_MIN_MS, makeLeaseId } from "./core/leases.ts";

const MARKER = [0x00, 0x57, 0x61, 0x72, 0x70, 0x4c, 0x73, 0x31];
const leaseId = fc.tuple(
  fc.integer({ min: LEASE_TTL_MIN_MS, max: LEASE_TTL_MAX_MS }),
  fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
).map(([ttl, suffix]) => makeLeaseId(ttl, suffix));
const value = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  // Raw values that start with the marker must survive too.
  fc.uint8Array({ maxLength: 16 }).map((tail) => new Uint8Array([...MARKER, ...tail])),
);

Deno.test("lease envelope: every value and lease list reads back as written", () => {
  fc.assert(fc.property(value, fc.uniqueArray(leaseId, { maxLength: 16 }), (bytes, leases) => {
    const opened = openEnvelope(sealEnvelope(bytes, leases));
    assert.ok(opened);
    assert.deepEqual([...opened.value], [...bytes]);
    assert.deepEqual(opened.leases, leases);
  }));
});

Deno.test("lease envelope: a value without leases is stored as is unless it looks like one", () => {
  const plain = new Uint8Array([1, 2, 3]);
  assert.equal(sealEnvelope(plain, []), plain);
  const tricky = new Uint8Array([...MARKER, 9]);
  assert.notEqual(sealEnvelope(tricky, []).length, tricky.length);
});

Deno.test("lease envelope: corrupt envelopes are refused, never thrown", () => {
  assert.equal(openEnvelope(new Uint8Array([...MARKER])), undefined); // no count
  assert.equal(openEnvelope(new Uint8Array([...MARKER, 17])), undefined); // too many
  assert.equal(openEnvelope(new Uint8Array([...MARKER, 1, 40, 65])), undefined); // truncated
  assert.equal(openEnvelope(new Uint8Array([...MARKER, 1, 3, 65, 66, 67])), undefined); // not an id
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (tail) => {
    openEnvelope(new Uint8Array([...MARKER, ...tail])); // must not throw
  }));
});
