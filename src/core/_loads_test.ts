/**
 * Loader-backed keys and loads (`_loads.ts`, the loader half of `_fills.ts`): loads as
 * effects, not-found as a value, loader errors, hard timeouts that free the key, `close()`,
 * the invalidation epoch (LB1), the loader's TTL and `cache: false`, and getOrSet's loader
 * for store-backed keys. Explicit times throughout; the strong and session parts (LB2,
 * LB3) are at the end.
 */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import {
  loaded,
  loaderNode as node,
  member,
  registerLoaderKeys,
  serveSessions,
  sessionNode,
  storeRead,
  testNode,
} from "../../test/_node_core.ts";
import type { SessionsCell } from "../../test/_node_core.ts";
import type { Effect } from "./effects.ts";
import { WarpError } from "./errors.ts";
import type { NodeCore } from "./node.ts";

type EffectOf<K extends Effect["type"]> = Extract<Effect, { type: K }>;

/** `effects` without heartbeats. */
function quiet(effects: readonly Effect[]): Effect[] {
  return effects.filter((e) => e.type !== "broadcast" || e.message.t !== "hb");
}

/** `n` reads `key` as op `op` at `nowMs`, missing L1: returns the load effect it asks for. */
function loadOf(n: NodeCore, op: number, key: string, nowMs: number): EffectOf<"load"> {
  n.get(op, key, nowMs);
  const effects = n.takeEffects();
  none(effects, "store-get");
  return only(effects, "load");
}

function failed(message = "source down") {
  return { ok: false as const, error: new WarpError("LOADER_ERROR", message) };
}

Deno.test("NodeCore loads a loader-backed key through a load effect, caches it in L1 only, and loads again at its TTL", () => {
  const n = node();
  const load = loadOf(n, 1, "lloc:k", 0);
  assert.deepEqual([load.key, load.op, load.stale], ["lloc:k", 1, undefined]);
  n.onLoad(load.io, loaded("v1"), 10);
  const answer = only(n.takeEffects(), "resolve").result;
  assert.deepEqual(
    [answer.value, answer.source, answer.version, answer.stale, answer.freshForMs],
    ["v1", "loader", 0, false, 990],
  );
  assert.equal(n.stats.storeReads + n.stats.storeWrites, 0, "never Warp's store");
  assert.equal(n.hit("lloc:k", 999)?.value, "v1", "the TTL runs from the load's start");
  assert.equal(n.hit("lloc:k", 1000), undefined);
  const again = loadOf(n, 2, "lloc:k", 1000);
  assert.deepEqual(again.stale, { found: true, value: "v1" }, "the loader sees the stale value");
  n.onLoad(again.io, loaded("v2"), 1001);
  assert.equal(only(n.takeEffects(), "resolve").result.value, "v2");
});

Deno.test("NodeCore caches a loader's not-found as a value, served from L1 like any other", () => {
  const n = node();
  n.onLoad(loadOf(n, 1, "lloc:k", 0).io, loaded(undefined), 1);
  const answer = only(n.takeEffects(), "resolve").result;
  assert.deepEqual([answer.found, answer.value, answer.source], [false, undefined, "loader"]);
  const hit = n.hit("lloc:k", 500);
  assert.deepEqual([hit?.found, hit?.value], [false, undefined]);
  n.get(2, "lloc:k", 600);
  assert.equal(only(n.takeEffects(), "resolve").result.source, "l1");
});

Deno.test("NodeCore rejects every reader of a load that threw with LOADER_ERROR, caches nothing, and loads again for the next reader", () => {
  const n = node();
  const load = loadOf(n, 1, "lloc:k", 0);
  n.get(2, "lloc:k", 1); // joins the load in flight
  none(n.takeEffects(), "load");
  n.onLoad(load.io, failed(), 5);
  const rejects = n.takeEffects().filter((e) => e.type === "reject");
  assert.deepEqual(
    rejects.map((e) => e.type === "reject" && [e.op, e.error.code]),
    [[1, "LOADER_ERROR"], [2, "LOADER_ERROR"]],
  );
  assert.equal(n.inspect("lloc:k"), undefined);
  loadOf(n, 3, "lloc:k", 6);
});

Deno.test("NodeCore aborts a load that never settles at its hard timeout, rejects its readers with TIMEOUT and frees the key at once", () => {
  const n = node("a", { hardTimeoutMs: 300, readTimeoutMs: 10_000 });
  const stuck = loadOf(n, 1, "lloc:k", 0);
  n.get(2, "lloc:k", 100);
  none(n.takeEffects(), "load");
  n.tick(299.9);
  assert.deepEqual(quiet(n.takeEffects()), []);
  n.tick(300);
  const effects = quiet(n.takeEffects());
  assert.equal(only(effects, "load-abort").io, stuck.io);
  const codes = effects.flatMap((e) => e.type === "reject" ? [[e.op, e.error.code]] : []);
  assert.deepEqual(codes, [[1, "TIMEOUT"], [2, "TIMEOUT"]]);
  assert.equal(n.stats.loadTimeouts, 1);
  // The next reader starts a new load at once; the hung loader's late report is ignored.
  const next = loadOf(n, 3, "lloc:k", 301);
  n.onLoad(stuck.io, loaded("late"), 302);
  assert.deepEqual(n.takeEffects(), []);
  assert.equal(n.inspect("lloc:k"), undefined);
  n.onLoad(next.io, loaded("fresh"), 303);
  assert.equal(only(n.takeEffects(), "resolve").result.value, "fresh");
});

Deno.test("NodeCore.close() settles a reader waiting on a load that never settles with CLOSED and aborts the load", () => {
  const n = node();
  const load = loadOf(n, 1, "lev:k", 0);
  n.close(50);
  const effects = n.takeEffects();
  const reject = only(effects, "reject");
  assert.deepEqual([reject.op, reject.error.code], [1, "CLOSED"]);
  assert.equal(only(effects, "load-abort").io, load.io);
  assert.equal(n.opsInFlight, 0);
  assert.equal(n.nextDeadlineMs(), Infinity, "no hard-timeout timer left behind");
  n.onLoad(load.io, loaded("late"), 60);
  assert.deepEqual(n.takeEffects(), []);
});

Deno.test("NodeCore never caches nor answers a load that an invalidation overtook: it loads again (LB1)", () => {
  for (const how of ["peer drop", "local invalidate"]) {
    const n = node();
    n.onMessage({ t: "hb", from: "b", inc: 1, seq: 0, round: 1, echo: [] }, 0); // b is known
    const first = loadOf(n, 1, "lev:k", 0);
    const epoch = first.io; // any number: the answer's epoch must be the second load's
    if (how === "peer drop") {
      n.onMessage({ t: "drop", from: "b", inc: 1, seq: 1, key: "lev:k" }, 5);
    } else {
      n.invalidate(2, "lev:k", 5);
      only(n.takeEffects(), "broadcast");
    }
    n.onLoad(first.io, loaded("old"), 10);
    const retry = only(n.takeEffects(), "load");
    assert.equal(retry.op, 1, how);
    assert.equal(n.stats.loadsOvertaken, 1, how);
    assert.equal(n.inspect("lev:k"), undefined, `${how}: the old value must not be cached`);
    n.onLoad(retry.io, loaded("new"), 12);
    const answer = only(n.takeEffects(), "resolve").result;
    assert.equal(answer.value, "new", how);
    assert.ok(answer.epoch !== undefined && answer.epoch > 0 && answer.epoch !== epoch, how);
    assert.equal(n.hit("lev:k", 13)?.value, "new", how);
  }
});

Deno.test("NodeCore with the cacheOvertakenLoads canary caches and answers the overtaken load (what LB1 forbids)", () => {
  const n = node("a", {}, { canary: { cacheOvertakenLoads: true } });
  const first = loadOf(n, 1, "lev:k", 0);
  n.onMessage({ t: "drop", from: "b", inc: 1, seq: 1, key: "lev:k" }, 5);
  n.onLoad(first.io, loaded("old"), 10);
  assert.equal(only(n.takeEffects(), "resolve").result.value, "old");
});

Deno.test("NodeCore gives up on a load overtaken four times in a row with STALE_READ", () => {
  const n = node();
  let load = loadOf(n, 1, "lev:k", 0);
  for (let i = 1; i <= 4; i++) {
    n.onMessage({ t: "drop", from: "b", inc: 1, seq: i, key: "lev:k" }, i);
    n.onLoad(load.io, loaded(`v${i}`), i + 0.5);
    const effects = n.takeEffects();
    if (i < 4) load = only(effects, "load");
    else assert.equal(only(effects, "reject").error.code, "STALE_READ");
  }
});

Deno.test("NodeCore loads again a load slower than the staleness bound of an eventual key (LB2 by age)", () => {
  const n = node();
  const slow = loadOf(n, 1, "lev:k", 0);
  n.onLoad(slow.io, loaded("v"), 500); // 500 ms × (1 − 0.001) = 499.5: too old to serve
  const retry = only(n.takeEffects(), "load");
  n.onLoad(retry.io, loaded("v"), 510);
  assert.equal(only(n.takeEffects(), "resolve").result.value, "v");
  assert.equal(n.hit("lev:k", 500 + 499.4)?.value, "v", "served by age from the second load");
  assert.equal(n.hit("lev:k", 500 + 499.5), undefined);
});

Deno.test("NodeCore caches a loaded entry for the TTL its loader set, and not at all when it said cache: false", () => {
  const n = node();
  n.onLoad(loadOf(n, 1, "lloc:k", 0).io, loaded("short", { ttlMs: 100 }), 0);
  assert.equal(only(n.takeEffects(), "resolve").result.freshForMs, 100);
  assert.equal(n.hit("lloc:k", 99)?.value, "short");
  assert.equal(n.hit("lloc:k", 100), undefined);
  n.onLoad(loadOf(n, 2, "lloc:j", 0).io, loaded("once", { cache: false }), 0);
  const answer = only(n.takeEffects(), "resolve").result;
  assert.deepEqual([answer.value, answer.freshForMs], ["once", 0]);
  assert.equal(n.inspect("lloc:j"), undefined);
  assert.equal(n.stats.fillsNotCached, 1);
});

Deno.test("NodeCore honours a read's own TTL and hard timeout over its registration's", () => {
  const n = node();
  n.get(1, "lloc:k", 0, { ttlMs: 50, hardTimeoutMs: 20 });
  const load = only(n.takeEffects(), "load");
  n.tick(20);
  assert.equal(only(n.takeEffects(), "load-abort").io, load.io);
  n.get(2, "lloc:k", 30, { ttlMs: 50 });
  n.onLoad(only(n.takeEffects(), "load").io, loaded("v"), 31);
  n.takeEffects();
  assert.equal(n.hit("lloc:k", 79)?.value, "v");
  assert.equal(n.hit("lloc:k", 80), undefined);
  assert.throws(() => n.get(3, "lloc:k", 90, { ttlMs: -1 }), RangeError);
  assert.throws(
    () => n.get(3, "lloc:k", 90, { failSafeMaxMs: "1" as unknown as number }),
    TypeError,
  );
});

Deno.test("NodeCore refuses to write a loader-backed key, and to load one through load()", () => {
  const n = node();
  assert.throws(
    () => n.set(1, "lev:k", { value: 1, payload: 1, sizeBytes: 1 }, 0),
    (e: unknown) => e instanceof TypeError && e.message.includes("lev:k"),
  );
  assert.throws(() => n.delete(1, "lloc:k", 0), TypeError);
  assert.throws(() => n.load(1, "lst:k", 0), TypeError);
  assert.throws(
    () => n.onLoad(1, { ok: true, found: true, value: 1, sizeBytes: -1 }, 0),
    TypeError,
  );
  assert.equal(n.opsInFlight, 0);
});

Deno.test("NodeCore.load() runs getOrSet's loader for a store-backed key under its hard timeout, installing nothing", () => {
  const n = testNode();
  n.load(1, "ev:k", 0);
  const load = only(n.takeEffects(), "load");
  assert.equal(load.op, 1);
  n.onLoad(load.io, loaded("computed"), 5);
  const answer = only(n.takeEffects(), "resolve").result;
  assert.deepEqual([answer.value, answer.source], ["computed", "loader"]);
  assert.equal(n.inspect("ev:k"), undefined, "the runtime's set installs it, under a version");
  n.load(2, "ev:k", 10, { hardTimeoutMs: 100 });
  const stuck = only(n.takeEffects(), "load");
  n.tick(110);
  const effects = n.takeEffects();
  assert.equal(only(effects, "load-abort").io, stuck.io);
  assert.equal(only(effects, "reject").error.code, "TIMEOUT");
});

// ------------------------------------------------------------------ strong (LB3) and sessions (LB2)

/** A node with a session of 3000 ms joined alone at 0, with the loader-backed keys. */
function joinedAlone(id: string, cell: SessionsCell): NodeCore {
  const n = sessionNode(id);
  registerLoaderKeys(n);
  serveSessions(n, cell, n.takeEffects(), 0);
  return n;
}

Deno.test("NodeCore strong invalidate of a loader-backed key revokes its holders, writes no store, and completes once they acknowledged", () => {
  const w = node("w");
  w.invalidate(1, "lst:k", 0);
  w.onCoordRead(only(w.takeEffects(), "coord-get").io, {
    ok: true,
    record: { holders: ["b"], pending: undefined, version: undefined },
    revision: 4,
  }, 1);
  const claim = only(w.takeEffects(), "coord-put");
  assert.equal(claim.revision, 4);
  w.onCoordWrite(claim.io, { ok: true, revision: 5 }, 2);
  const revoke = only(w.takeEffects(), "send");
  if (revoke.message.t !== "revoke") throw new Error("expected a revoke");
  assert.equal(revoke.to, "b");
  none(w.takeEffects(), "resolve");
  const { id, inc: to, nonce } = revoke.message;
  w.onMessage({ t: "ack", from: "b", inc: 1, id, key: "lst:k", to, nonce }, 10);
  const effects = w.takeEffects();
  assert.equal(only(effects, "resolve").op, 1);
  none(effects, "store-write");
  none(effects, "store-get");
  const release = only(effects, "coord-put");
  assert.deepEqual(release.record, { holders: ["b"], pending: undefined, version: undefined });
});

Deno.test("NodeCore holder of a loader-backed strong key drops it on a revoke, and a load in flight loads again (LB1, LB3)", () => {
  const b = node("b");
  b.get(1, "lst:k", 0);
  b.onCoordRead(
    only(b.takeEffects(), "coord-get").io,
    { ok: true, record: undefined, revision: 0 },
    0,
  );
  b.onCoordWrite(only(b.takeEffects(), "coord-put").io, { ok: true, revision: 1 }, 0);
  const first = only(b.takeEffects(), "load");
  b.onMessage({ t: "revoke", from: "w", inc: 1, id: 7, key: "lst:k", rev: 2, nonce: 9 }, 5);
  only(b.takeEffects(), "send"); // the ack
  b.onLoad(first.io, loaded("before"), 6);
  const retry = only(b.takeEffects(), "load");
  b.onLoad(retry.io, loaded("after"), 7);
  assert.equal(only(b.takeEffects(), "resolve").result.value, "after");
  assert.equal(b.inspect("lst:k"), undefined, "revoked: its registration is void, nothing cached");
});

Deno.test("NodeCore strong invalidate waits out a silent holder's session before it completes (LB3)", () => {
  const w = node("w");
  w.invalidate(1, "lst:k", 0);
  w.onCoordRead(only(w.takeEffects(), "coord-get").io, {
    ok: true,
    record: { holders: ["b"], pending: undefined, version: undefined },
    revision: 10,
  }, 0);
  w.onCoordWrite(only(w.takeEffects(), "coord-put").io, { ok: true, revision: 11 }, 10);
  only(w.takeEffects(), "send");
  w.tick(510); // two heartbeat intervals of silence: post a notice
  const post = only(w.takeEffects(), "coord-get");
  const holderB = member("b", { sessionMs: 1200, after: 9 });
  w.onCoordRead(post.io, { ok: true, record: { members: [holderB] }, revision: 12 }, 510);
  const put = only(w.takeEffects(), "coord-put");
  assert.deepEqual(put.record, {
    members: [{ ...holderB, notices: [{ key: "lst:k", rev: 11 }] }],
  });
  w.onCoordWrite(put.io, { ok: true, revision: 13 }, 520);
  const untilMs = 520 + 1200 * 1.001 + 1;
  for (let t = 770; t < untilMs; t += 250) {
    w.tick(t);
    for (const e of w.takeEffects()) {
      if (e.type === "coord-get") {
        const unchanged = { members: [{ ...holderB, notices: [{ key: "lst:k", rev: 11 }] }] };
        w.onCoordRead(e.io, { ok: true, record: unchanged, revision: 13 }, t);
      }
    }
    none(w.takeEffects(), "resolve");
  }
  w.tick(untilMs - 0.1);
  none(w.takeEffects(), "resolve");
  w.tick(untilMs);
  const effects = w.takeEffects();
  assert.equal(only(effects, "resolve").op, 1);
  none(effects, "store-write");
  assert.equal(w.stats.leaseWaits, 1);
});

Deno.test("NodeCore holds an eventual loader-backed invalidate until the node is an active member, then sends its drop again (LB2)", () => {
  const cell: SessionsCell = { record: { members: [member("b", { after: 3 })] }, revision: 5 };
  const a = sessionNode("a");
  registerLoaderKeys(a);
  serveSessions(a, cell, a.takeEffects(), 0);
  a.invalidate(1, "lev:k", 100);
  const first = a.takeEffects();
  assert.equal(only(first, "broadcast").message.t, "drop");
  none(first, "resolve");
  // b renews on a record that lists a: a is active at its next read.
  const members = cell.record!.members.map((m) => ({ ...m, after: cell.revision }));
  cell.record = { members };
  cell.revision++;
  a.tick(250);
  const answered = quiet(serveSessions(a, cell, a.takeEffects(), 250));
  assert.equal(only(answered, "resolve").op, 1);
  assert.equal(only(answered, "broadcast").message.t, "drop");
});

Deno.test("NodeCore completes a store-backed invalidate at once, session or not", () => {
  const cell: SessionsCell = { record: { members: [member("b", { after: 3 })] }, revision: 5 };
  const a = joinedAlone("a", cell);
  a.invalidate(1, "ev:k", 100);
  assert.equal(only(a.takeEffects(), "resolve").op, 1);
  // and the store-backed read path is untouched by the loader machinery
  a.get(2, "ev:k", 101);
  a.onStoreRead(only(a.takeEffects(), "store-get").io, storeRead("v", 1), 102);
  assert.equal(only(a.takeEffects(), "resolve").result.source, "store");
});
