import assert from "node:assert/strict";
import { only } from "../../test/_effects.ts";
import { Fence, LockCore } from "./lock.ts";
import { WarpError } from "./errors.ts";

/** Answers the optimistic create of a held lock with a conflict. */
function conflict(c: LockCore): void {
  const create = only(c.takeEffects(), "coord-put");
  assert.equal(create.revision, undefined, "the first attempt is a create");
  c.onWrite(create.io, { ok: false, conflict: true, error: new Error("exists") as never }, 0);
}

/** A node whose lock core has 1000 ppm of drift bound. */
const core = (id: string) => new LockCore({ nodeId: id, incarnation: 1, maxDriftPpm: 1000 });

Deno.test("LockCore grants a free lock with the create's revision as token, belief from send time", () => {
  const a = core("a");
  a.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 0 }, 101);
  const create = only(a.takeEffects(), "coord-put");
  assert.equal(create.revision, undefined);
  a.onWrite(create.io, { ok: true, revision: 42 }, 130);
  const grant = only(a.takeEffects(), "resolve").grant!;
  assert.equal(grant.token, 42);
  assert.equal(
    grant.heldUntilMs,
    101 + 1000 * (1 - 0.001),
    "measured from when the create was sent",
  );
  assert.ok(a.holds(grant.handle, 1099));
  assert.ok(!a.holds(grant.handle, 1100));
});

Deno.test("LockCore tryAcquire of a held lock rejects with CONTENDED", () => {
  const b = core("b");
  b.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 0 }, 0);
  conflict(b);
  b.onRead(only(b.takeEffects(), "coord-get").io, {
    ok: true,
    record: { holder: "a/1/1", ttlMs: 1000 },
    revision: 42,
  }, 1);
  assert.equal(only(b.takeEffects(), "reject").error.code, "CONTENDED");
});

Deno.test("LockCore waiter takes over only after the holder's belief is provably over", () => {
  const b = core("b");
  b.acquire(1, "jobs", { ttlMs: 500, timeoutMs: 10_000 }, 0);
  conflict(b);
  b.onRead(only(b.takeEffects(), "coord-get").io, {
    ok: true,
    record: { holder: "a/1/1", ttlMs: 1000 },
    revision: 42,
  }, 10);
  only(b.takeEffects(), "coord-watch");
  // The holder's ttl (1000), padded by drift and the margin, from when b first saw revision 42.
  b.tick(10 + 1000 * 1.001);
  assert.equal(b.takeEffects().length, 0);
  b.tick(10 + 1000 * 1.001 + 1);
  const takeover = only(b.takeEffects(), "coord-put");
  assert.equal(takeover.revision, 42);
  b.onWrite(takeover.io, { ok: true, revision: 57 }, 1013);
  const effects = b.takeEffects();
  assert.equal(only(effects, "resolve").grant!.token, 57);
  only(effects, "coord-unwatch");
});

Deno.test("LockCore waiter wakes on release through the watch, not by polling", () => {
  const b = core("b");
  b.acquire(1, "jobs", { ttlMs: 500, timeoutMs: 10_000 }, 0);
  conflict(b);
  b.onRead(only(b.takeEffects(), "coord-get").io, {
    ok: true,
    record: { holder: "a/1/1", ttlMs: 60_000 },
    revision: 42,
  }, 0);
  const watch = only(b.takeEffects(), "coord-watch");
  b.onWatch(watch.io, { ok: true, record: undefined, revision: 43 }, 20);
  b.onRead(only(b.takeEffects(), "coord-get").io, { ok: true, record: undefined, revision: 0 }, 21);
  b.onWrite(only(b.takeEffects(), "coord-put").io, { ok: true, revision: 44 }, 22);
  assert.equal(only(b.takeEffects(), "resolve").grant!.token, 44);
});

Deno.test("LockCore renewal restarts observers; a renewal that lost the race reports the lock lost", () => {
  const a = core("a");
  a.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 0 }, 0);
  a.onWrite(only(a.takeEffects(), "coord-put").io, { ok: true, revision: 10 }, 0);
  const grant = only(a.takeEffects(), "resolve").grant!;
  a.renew(2, grant.handle, 500);
  const renewal = only(a.takeEffects(), "coord-put");
  assert.equal(renewal.revision, 10);
  a.onWrite(renewal.io, { ok: true, revision: 11 }, 510);
  const renewed = only(a.takeEffects(), "resolve").grant!;
  assert.equal(renewed.token, 10, "the fencing token stays the grant's");
  assert.equal(renewed.heldUntilMs, 500 + 999);
  a.renew(3, grant.handle, 900);
  a.onWrite(only(a.takeEffects(), "coord-put").io, {
    ok: false,
    conflict: true,
    error: new Error("moved") as never,
  }, 905);
  const effects = a.takeEffects();
  assert.equal(only(effects, "reject").error.code, "LOCK_NOT_HELD");
  only(effects, "lost");
  assert.ok(!a.holds(grant.handle, 906));
});

Deno.test("LockCore reports a lock lost when its belief runs out without renewal", () => {
  const a = core("a");
  a.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 0 }, 0);
  a.onWrite(only(a.takeEffects(), "coord-put").io, { ok: true, revision: 10 }, 0);
  a.takeEffects();
  a.tick(a.nextDeadlineMs());
  assert.equal(only(a.takeEffects(), "lost").name, "jobs");
});

Deno.test("LockCore release is a delete at the holder's revision and ends the belief at once", () => {
  const a = core("a");
  a.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 0 }, 0);
  a.onWrite(only(a.takeEffects(), "coord-put").io, { ok: true, revision: 10 }, 0);
  const grant = only(a.takeEffects(), "resolve").grant!;
  a.release(2, grant.handle, 5);
  const del = only(a.takeEffects(), "coord-delete");
  assert.equal(del.revision, 10);
  assert.ok(!a.holds(grant.handle, 5));
  a.onWrite(del.io, { ok: true, revision: 11 }, 6);
  only(a.takeEffects(), "resolve");
  a.release(3, grant.handle, 7);
  assert.equal(only(a.takeEffects(), "reject").error.code, "LOCK_NOT_HELD");
});

Deno.test("LockCore finds its own create that landed when the answer was lost, believing from its send", () => {
  const a = core("a");
  a.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 5000 }, 0);
  const create = only(a.takeEffects(), "coord-put");
  a.onWrite(create.io, { ok: false, conflict: false, error: new Error("timeout") as never }, 300);
  a.tick(400);
  a.onRead(
    only(a.takeEffects(), "coord-get").io,
    { ok: true, record: create.record, revision: 9 },
    410,
  );
  const grant = only(a.takeEffects(), "resolve").grant!;
  assert.equal(grant.token, 9);
  assert.equal(grant.heldUntilMs, 0 + 999);
});

Deno.test("Fence admits tokens in order and refuses a stale holder's", () => {
  const fence = new Fence();
  assert.ok(fence.admit(3));
  assert.ok(fence.admit(3));
  assert.ok(fence.admit(8));
  assert.ok(!fence.admit(5));
  assert.equal(fence.highest, 8);
});

Deno.test("LockCore grant found by a read believes from the claim that may have landed, not a later one", () => {
  // Node a (clock = true time). Its create A, sent at 0, times out but lands later (rev 9,
  // at 102); the retry read was applied before A landed and answers late, so a sends a
  // second create B at 110, which conflicts; the next read finds a's own record.
  const a = new LockCore({ nodeId: "a", incarnation: 1, maxDriftPpm: 1000 });
  a.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 5000 }, 0);
  const createA = only(a.takeEffects(), "coord-put");
  const unavailable = new WarpError("COORDINATOR_UNAVAILABLE", "timeout");
  const moved = new WarpError("CONTENDED", "moved");
  a.onWrite(createA.io, { ok: false, conflict: false, error: unavailable }, 50);
  a.tick(a.nextDeadlineMs());
  a.onRead(
    only(a.takeEffects(), "coord-get").io,
    { ok: true, record: undefined, revision: 0 },
    110,
  );
  const createB = only(a.takeEffects(), "coord-put");
  a.onWrite(createB.io, { ok: false, conflict: true, error: moved }, 111);
  a.onRead(
    only(a.takeEffects(), "coord-get").io,
    { ok: true, record: createA.record, revision: 9 },
    112,
  );
  const grant = only(a.takeEffects(), "resolve").grant!;
  // Node b (clock = true time) reads revision 9 at 103, right after A landed, and takes
  // over as soon as the protocol allows.
  const b = new LockCore({ nodeId: "b", incarnation: 1, maxDriftPpm: 1000 });
  b.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 5000 }, 102);
  b.onWrite(
    only(b.takeEffects(), "coord-put").io,
    { ok: false, conflict: true, error: moved },
    102,
  );
  b.onRead(
    only(b.takeEffects(), "coord-get").io,
    { ok: true, record: createA.record, revision: 9 },
    103,
  );
  b.takeEffects();
  const takeoverAt = b.nextDeadlineMs();
  b.tick(takeoverAt);
  b.onWrite(only(b.takeEffects(), "coord-put").io, { ok: true, revision: 10 }, takeoverAt + 1);
  assert.ok(only(b.takeEffects(), "resolve").grant !== undefined);
  assert.ok(
    !a.holds(grant.handle, takeoverAt + 1),
    `a believes until ${grant.heldUntilMs} while b was granted at ${takeoverAt + 1}`,
  );
  assert.ok(grant.heldUntilMs <= 0 + 1000 * (1 - 0.001), "belief from create A's send (0)");
});
