import assert from "node:assert/strict";
import { only } from "../../test/_effects.ts";
import fc from "fast-check";
import { NodeCore } from "./node.ts";
import type { Effect } from "./effects.ts";
import {
  isLeaseId,
  LEASE_TTL_MAX_MS,
  LEASE_TTL_MIN_MS,
  leaseListProblem,
  leaseTtlMs,
  makeLeaseId,
  validateLeaseRecord,
} from "./leases.ts";
import { validateMessage } from "./messages.ts";

const LEASE = makeLeaseId(60_000, "abcdefgh");
const CHECK_MS = 100;
const DRIFT = 0.001;

function node(coordinatorStalenessMs = 0): NodeCore {
  const n = new NodeCore({
    nodeId: "a",
    incarnation: 1,
    maxDriftPpm: 1000,
    leaseCheckMs: CHECK_MS,
    coordinatorStalenessMs,
  });
  n.register("ev:*", { mode: "eventual-distributed", ttlMs: 60_000, maxStalenessMs: 10_000 });
  n.tick(0);
  n.takeEffects();
  return n;
}

/** Answers the one lease check among `effects` with `record` (undefined: absent). */
function answerCheck(
  n: NodeCore,
  effects: Effect[],
  state: "active" | "revoked" | undefined,
  now: number,
) {
  const get = only(effects, "coord-get");
  assert.equal(get.key, `lease/${LEASE}`);
  assert.equal(get.kind, "lease");
  assert.equal(get.ttlMs, 60_000);
  n.onCoordRead(get.io, {
    ok: true,
    record: state === undefined ? undefined : { lease: state },
    revision: 3,
  }, now);
  return n.takeEffects();
}

/** A leased write of ev:1 at `now`, the lease check answered active, the store write ok. */
function leasedWrite(n: NodeCore, op: number, now: number): void {
  n.set(op, "ev:1", { value: "v", payload: "v", sizeBytes: 1, leases: [LEASE] }, now);
  let effects = n.takeEffects();
  if (effects.some((e) => e.type === "coord-get")) effects = answerCheck(n, effects, "active", now);
  const write = only(effects, "store-write");
  n.onStoreWrite(write.io, { ok: true, version: 1 }, now);
  assert.equal(only(n.takeEffects(), "resolve").op, op);
}

Deno.test("lease ids carry their TTL and are validated", () => {
  assert.equal(leaseTtlMs(makeLeaseId(60_000, "abcdefgh")), 60_000);
  assert.equal(isLeaseId("lease-1"), false);
  assert.equal(isLeaseId(`${(LEASE_TTL_MIN_MS - 1).toString(36)}.abcdefgh`), false);
  assert.equal(isLeaseId(`${(LEASE_TTL_MAX_MS + 1).toString(36)}.abcdefgh`), false);
  assert.throws(() => makeLeaseId(999, "abcdefgh"), RangeError);
  assert.throws(() => makeLeaseId(1000, "short"), RangeError);
  assert.throws(() => makeLeaseId(1000, "has.dot.x"), RangeError);
  assert.equal(validateLeaseRecord({ lease: "dead" }), undefined);
  assert.equal(leaseListProblem([LEASE, LEASE]), "the same lease is attached twice");
  assert.match(leaseListProblem("x") ?? "", /array/);
  fc.assert(fc.property(
    fc.integer({ min: LEASE_TTL_MIN_MS, max: LEASE_TTL_MAX_MS }),
    fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/),
    (ttl, suffix) => leaseTtlMs(makeLeaseId(ttl, suffix)) === ttl,
  ));
});

Deno.test("an lrev message is validated like every bus message", () => {
  assert.ok(validateMessage({ t: "lrev", from: "a", inc: 1, lease: LEASE }));
  assert.equal(validateMessage({ t: "lrev", from: "a", inc: 1, lease: "nope" }), undefined);
  assert.equal(validateMessage({ t: "lrev", from: "a", inc: 1 }), undefined);
});

Deno.test("a leased value is served from L1 only while its lease check is fresh", () => {
  const n = node();
  leasedWrite(n, 1, 0);
  // The check asked at 0 is trusted until 0 + CHECK_MS * (1 - drift).
  assert.equal(n.hit("ev:1", CHECK_MS * (1 - DRIFT) - 0.01)?.value, "v");
  assert.equal(n.hit("ev:1", CHECK_MS * (1 - DRIFT)), undefined);
  // A read past it checks the lease once, then serves from L1 again.
  n.get(2, "ev:1", 150);
  const effects = answerCheck(n, n.takeEffects(), "active", 151);
  const answer = only(effects, "resolve");
  assert.equal(answer.result.source, "l1");
  assert.equal(answer.result.value, "v");
  assert.equal(n.hit("ev:1", 160)?.value, "v");
});

Deno.test("a value attached to a revoked lease reads as absent, from L1 or the store", () => {
  const n = node();
  leasedWrite(n, 1, 0);
  n.get(2, "ev:1", 150);
  let effects = answerCheck(n, n.takeEffects(), "revoked", 151);
  // The L1 entry is dead: the store decides, and its record names the dead lease too.
  const get = only(effects, "store-get");
  n.onStoreRead(get.io, {
    ok: true,
    found: true,
    value: "v",
    version: 1,
    sizeBytes: 1,
    leases: [LEASE],
  }, 152);
  effects = n.takeEffects();
  const answer = only(effects, "resolve");
  assert.equal(answer.result.found, false);
  assert.equal(answer.result.version, 1);
  assert.equal(n.stats.leaseDeadValues, 1);
  // A write attaching the dead lease fails without touching the store (G3).
  n.set(3, "ev:2", { value: "w", payload: "w", sizeBytes: 1, leases: [LEASE] }, 160);
  const rejected = only(n.takeEffects(), "reject");
  assert.equal(rejected.error.code, "LEASE_REVOKED");
});

Deno.test("a late 'active' answer never revives a revoked lease", () => {
  const n = node();
  n.get(1, "ev:1", 0);
  const read = only(n.takeEffects(), "store-get");
  n.onStoreRead(read.io, {
    ok: true,
    found: true,
    value: "v",
    version: 1,
    sizeBytes: 1,
    leases: [LEASE],
  }, 1);
  const check = only(n.takeEffects(), "coord-get");
  // The revocation's broadcast overtakes the check's answer.
  n.onMessage({ t: "lrev", from: "b", inc: 1, lease: LEASE }, 2);
  n.onCoordRead(check.io, { ok: true, record: { lease: "active" }, revision: 2 }, 3);
  const answer = only(n.takeEffects(), "resolve");
  assert.equal(answer.result.found, false);
  assert.equal(n.leaseState(LEASE, 3), "revoked");
});

Deno.test("revokeLease completes only leaseCheckMs*(1+drift) after its coordinator write", () => {
  const n = node();
  n.revokeLease(1, LEASE, 0);
  const get = only(n.takeEffects(), "coord-get");
  n.onCoordRead(get.io, { ok: true, record: { lease: "active" }, revision: 5 }, 1);
  const put = only(n.takeEffects(), "coord-put");
  assert.deepEqual(put.record, { lease: "revoked" });
  assert.equal(put.revision, 5);
  assert.equal(put.ttlMs, 60_000);
  n.onCoordWrite(put.io, { ok: true, revision: 6 }, 2);
  const effects = n.takeEffects();
  assert.equal(only(effects, "broadcast").message.t, "lrev");
  assert.equal(effects.filter((e) => e.type === "resolve").length, 0);
  const due = 2 + CHECK_MS * (1 + DRIFT) + 1;
  n.tick(due - 0.01);
  assert.equal(n.takeEffects().filter((e) => e.type === "resolve").length, 0);
  n.tick(due);
  assert.equal(only(n.takeEffects(), "resolve").op, 1);
});

Deno.test("keepAliveLease rewrites the record at its revision and fails on a dead lease", () => {
  const n = node();
  n.keepAliveLease(1, LEASE, 0);
  const get = only(n.takeEffects(), "coord-get");
  n.onCoordRead(get.io, { ok: true, record: { lease: "active" }, revision: 7 }, 1);
  const put = only(n.takeEffects(), "coord-put");
  assert.equal(put.revision, 7);
  // Someone else kept it alive meanwhile: read again and retry.
  n.onCoordWrite(put.io, { ok: false, conflict: true, error: new Error("moved") as never }, 2);
  const again = only(n.takeEffects(), "coord-get");
  n.onCoordRead(again.io, { ok: true, record: undefined, revision: 0 }, 3);
  const rejected = only(n.takeEffects(), "reject");
  assert.equal(rejected.error.code, "LEASE_EXPIRED");
  assert.equal(n.leaseState(LEASE, 3), "expired");
  assert.throws(() => n.keepAliveLease(2, "not-a-lease", 4), TypeError);
});

Deno.test("where reads may be old, an absent lease is proved absent by creating a tombstone", () => {
  const n = node(10);
  n.keepAliveLease(1, LEASE, 0);
  n.onCoordRead(
    only(n.takeEffects(), "coord-get").io,
    { ok: true, record: undefined, revision: 0 },
    1,
  );
  const tombstone = only(n.takeEffects(), "coord-put");
  assert.deepEqual(tombstone.record, { lease: "expired" });
  assert.equal(tombstone.revision, undefined, "a create: it succeeds only if absent now");
  n.onCoordWrite(tombstone.io, { ok: true, revision: 9 }, 2);
  assert.equal(only(n.takeEffects(), "reject").error.code, "LEASE_EXPIRED");
  assert.equal(n.leaseState(LEASE, 2), "expired");
});

Deno.test("a lease read as absent from an older state is not taken for dead: the tombstone's create fails", () => {
  const n = node(10);
  n.keepAliveLease(1, LEASE, 0);
  n.onCoordRead(
    only(n.takeEffects(), "coord-get").io,
    { ok: true, record: undefined, revision: 0 },
    1,
  );
  const tombstone = only(n.takeEffects(), "coord-put");
  n.onCoordWrite(
    tombstone.io,
    { ok: false, conflict: true, error: new Error("exists") as never },
    2,
  );
  // The record exists after all (the read was older than the grant): read it again.
  const again = only(n.takeEffects(), "coord-get");
  n.onCoordRead(again.io, { ok: true, record: { lease: "active" }, revision: 7 }, 3);
  assert.equal(only(n.takeEffects(), "coord-put").revision, 7, "kept alive at its revision");
  assert.notEqual(n.leaseState(LEASE, 3), "expired");
});

Deno.test("grantLease creates the record with the TTL of the id", () => {
  const n = node();
  n.grantLease(1, LEASE, 0);
  const put = only(n.takeEffects(), "coord-put");
  assert.equal(put.revision, undefined);
  assert.equal(put.ttlMs, 60_000);
  n.onCoordWrite(put.io, { ok: true, revision: 1 }, 1);
  const answer = only(n.takeEffects(), "resolve");
  assert.equal(answer.result.value, LEASE);
  assert.equal(n.leaseState(LEASE, 1), "active");
  assert.equal(n.leaseState(LEASE, CHECK_MS), "unknown");
});

Deno.test("nodes with different leaseCheckMs agree through the record's checkMs", () => {
  // A check of a record granted with checkMs 50 is trusted 50 ms here, not 100.
  const n = node();
  leasedWrite(n, 1, 0);
  n.get(2, "ev:1", 150);
  const get = only(n.takeEffects(), "coord-get");
  n.onCoordRead(get.io, { ok: true, record: { lease: "active", checkMs: 50 }, revision: 3 }, 150);
  assert.equal(only(n.takeEffects(), "resolve").result.source, "l1");
  assert.equal(n.hit("ev:1", 150 + 50 * (1 - DRIFT) - 0.01)?.value, "v");
  assert.equal(n.hit("ev:1", 150 + 50 * (1 - DRIFT)), undefined);
  // Revoking a lease granted with checkMs 300 waits 300 ms, not this node's 100.
  n.revokeLease(3, LEASE, 200);
  const read = only(n.takeEffects(), "coord-get");
  n.onCoordRead(read.io, { ok: true, record: { lease: "active", checkMs: 300 }, revision: 4 }, 200);
  const put = only(n.takeEffects(), "coord-put");
  assert.deepEqual(put.record, { lease: "revoked", checkMs: 300 });
  n.onCoordWrite(put.io, { ok: true, revision: 5 }, 201);
  n.takeEffects();
  n.tick(201 + 300 * (1 + DRIFT));
  assert.equal(n.takeEffects().filter((e) => e.type === "resolve").length, 0);
  n.tick(201 + 300 * (1 + DRIFT) + 1);
  assert.equal(only(n.takeEffects(), "resolve").op, 3);
  assert.equal(validateLeaseRecord({ lease: "active", checkMs: -1 }), undefined);
});
