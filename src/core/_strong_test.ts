/**
 * The strong protocol (`_strong.ts`): holder registration, revocation, the write slot; under
 * sessions, holders serving while their session lives and writers posting notices.
 */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import {
  member,
  renewSession,
  serveSessions,
  SESSION_MS,
  sessionNode,
  sessionsRead,
  sessionsWrite,
  storeRead as read,
  strongFill,
  testNode as node,
  writeInput as value,
} from "../../test/_node_core.ts";
import type { SessionsCell } from "../../test/_node_core.ts";
import { NodeCore } from "./node.ts";
import type { Effect, HolderRecord } from "./effects.ts";
import { WarpError } from "./errors.ts";
import { SESSION_NOTICES_MAX } from "./_sessions.ts";
import type { SessionsRecord } from "./_sessions.ts";

type EffectOf<K extends Effect["type"]> = Extract<Effect, { type: K }>;

Deno.test("NodeCore strong read registers as holder, then serves from L1 within the lease", () => {
  const b = node("b");
  strongFill(b, 1, "st:k", undefined, 0, 0, "v1", 1);
  assert.equal(b.hit("st:k", 998)?.value, "v1"); // 1000 ms * (1 - 0.001) = 999
  assert.equal(b.hit("st:k", 999), undefined);
});

Deno.test("NodeCore strong write revokes holders, waits for acks, then writes the store conditionally", () => {
  const a = node("a");
  const b = node("b");
  strongFill(b, 1, "st:k", undefined, 0, 0, "v1", 1);
  a.set(10, "st:k", value("v2"), 100);
  const get = only(a.takeEffects(), "coord-get");
  a.onCoordRead(get.io, {
    ok: true,
    record: { holders: ["b"], pending: undefined, version: 1 },
    revision: 5,
  }, 101);
  const claim = only(a.takeEffects(), "coord-put");
  assert.equal(claim.revision, 5);
  assert.ok((claim.record as HolderRecord).pending?.startsWith("a/1/"));
  a.onCoordWrite(claim.io, { ok: true, revision: 6 }, 102);
  const revoke = only(a.takeEffects(), "send");
  assert.equal(revoke.to, "b");
  // b serves v1 until it gets the revoke, then acks and stops.
  assert.equal(b.hit("st:k", 103)?.value, "v1");
  b.onMessage(revoke.message, 103);
  const ack = only(b.takeEffects(), "send");
  assert.equal(b.hit("st:k", 104), undefined);
  a.onMessage(ack.message, 105);
  const storeWrite = only(a.takeEffects(), "store-write");
  assert.equal(storeWrite.expectedVersion, 1);
  a.onStoreWrite(storeWrite.io, { ok: true, version: 2 }, 106);
  const effects = a.takeEffects();
  assert.equal(only(effects, "resolve").result.version, 2);
  const release = only(effects, "coord-put");
  // b acknowledged: it stays registered, so it may cache again with one coordinator read.
  assert.deepEqual(release.record, { holders: ["a", "b"], pending: undefined, version: 2 });
  assert.equal(release.revision, 6);
  a.onCoordWrite(release.io, { ok: true, revision: 7 }, 107);
  assert.equal(a.hit("st:k", 108)?.value, "v2");
});

Deno.test("NodeCore strong write waits out a silent holder's lease, padded by drift", () => {
  const a = node("a");
  a.set(1, "st:k", value("v2"), 0);
  const get = only(a.takeEffects(), "coord-get");
  a.onCoordRead(get.io, {
    ok: true,
    record: { holders: ["b"], pending: undefined, version: 1 },
    revision: 5,
  }, 0);
  const claim = only(a.takeEffects(), "coord-put");
  a.onCoordWrite(claim.io, { ok: true, revision: 6 }, 10);
  only(a.takeEffects(), "send");
  // b stays silent for two heartbeat intervals: a looks for b's session, finds none.
  a.tick(510);
  noSession(a, 511);
  // Lease 1000 ms * (1 + 0.001) + 1 ms margin after the claim completed at 10.
  a.tick(1010);
  none(a.takeEffects(), "store-write");
  a.tick(1012);
  const effects = a.takeEffects();
  only(effects, "store-write");
  assert.equal(a.stats.leaseWaits, 1);
});

Deno.test("NodeCore strong write fails fast when the coordinator is unreachable", () => {
  const a = node("a");
  a.set(1, "st:k", value("v"), 0);
  const get = only(a.takeEffects(), "coord-get");
  a.onCoordRead(get.io, { ok: false, error: new WarpError("COORDINATOR_UNAVAILABLE", "down") }, 1);
  const effects = a.takeEffects();
  assert.equal(only(effects, "reject").error.code, "COORDINATOR_UNAVAILABLE");
  none(effects, "store-write");
});

Deno.test("NodeCore strong write times out before its store write and gives the slot back", () => {
  const a = new NodeCore({ nodeId: "a", incarnation: 1 });
  a.register("st", { mode: "strong-distributed", leaseMs: 5000, writeTimeoutMs: 1000 });
  a.set(1, "st", value("v"), 0);
  const get = only(a.takeEffects(), "coord-get");
  a.onCoordRead(get.io, {
    ok: true,
    record: { holders: ["b", "c"], pending: undefined, version: 1 },
    revision: 5,
  }, 0);
  a.onCoordWrite(only(a.takeEffects(), "coord-put").io, { ok: true, revision: 6 }, 0);
  a.takeEffects();
  a.tick(1000);
  const effects = a.takeEffects();
  assert.equal(only(effects, "reject").error.code, "TIMEOUT");
  none(effects, "store-write");
  const release = only(effects, "coord-put");
  assert.deepEqual(
    [...(release.record as HolderRecord).holders].sort(),
    ["b", "c"],
    "unrevoked holders stay registered",
  );
  assert.equal((release.record as HolderRecord).pending, undefined);
});

Deno.test("NodeCore strong read does not cache while a write holds the slot", () => {
  const b = node("b");
  b.get(1, "st:k", 0);
  const get = only(b.takeEffects(), "coord-get");
  b.onCoordRead(get.io, {
    ok: true,
    record: { holders: [], pending: "a/1/9", version: 1 },
    revision: 3,
  }, 0);
  const storeGet = only(b.takeEffects(), "store-get");
  b.onStoreRead(storeGet.io, read("v", 1), 1);
  assert.equal(only(b.takeEffects(), "resolve").result.value, "v");
  assert.equal(b.inspect("st:k"), undefined);
});

Deno.test("NodeCore frees a dead writer's slot: a later write takes it over", () => {
  const a = new NodeCore({ nodeId: "a", incarnation: 1 });
  a.register("st", { mode: "strong-distributed", leaseMs: 100, writeTimeoutMs: 1000 });
  const stuck: HolderRecord = { holders: [], pending: "dead/1/7", version: 3 };
  // First write: sees the dead writer's slot, backs off until its deadline.
  a.set(1, "st", value("v"), 0);
  let now = 0;
  let claimed: EffectOf<"coord-put"> | undefined;
  for (let op = 1; op <= 2 && claimed === undefined; op++) {
    if (op === 2) a.set(2, "st", value("v"), now);
    for (let i = 0; i < 200 && claimed === undefined; i++) {
      for (const e of a.takeEffects()) {
        if (e.type === "coord-get") {
          a.onCoordRead(e.io, { ok: true, record: stuck, revision: 9 }, now);
        }
        if (e.type === "coord-put") claimed = e;
      }
      now += 10;
      a.tick(now);
    }
  }
  assert.ok(claimed !== undefined, "no write ever took the slot over");
  assert.equal(claimed.revision, 9);
  // Half a write deadline (500 ms, padded) after the record was first seen unchanged.
  assert.ok(now >= 500 && now < 1100, `took over at ${now} ms`);
});

Deno.test("NodeCore writer counts only an ack that echoes its revoke's nonce and incarnation", () => {
  const draws = [41, 42];
  const a = node("a", { incarnation: 3, heartbeatIntervalMs: 50, nonce: () => draws.shift() ?? 0 });
  a.set(10, "st:k", value("v2"), 100);
  a.onCoordRead(only(a.takeEffects(), "coord-get").io, {
    ok: true,
    record: { holders: ["b"], pending: undefined, version: 1 },
    revision: 5,
  }, 101);
  a.onCoordWrite(only(a.takeEffects(), "coord-put").io, { ok: true, revision: 6 }, 102);
  const revoke = only(a.takeEffects(), "send").message;
  if (revoke.t !== "revoke") throw new Error("expected a revoke");
  assert.equal(revoke.nonce, 41, "the nonce comes from the driver's source");
  const ack = {
    t: "ack",
    from: "b",
    inc: 7,
    id: revoke.id,
    key: "st:k",
    to: 3,
    nonce: 41,
  } as const;
  // A forger that guessed everything but the nonce, or answered another incarnation, or
  // named another key: none counts.
  for (const forged of [{ nonce: 0 }, { to: 2 }, { key: "st:other" }, { from: "c" }]) {
    a.onMessage({ ...ack, ...forged }, 103);
    none(a.takeEffects(), "store-write");
  }
  assert.equal(a.stats.acksRejected, 4);
  a.tick(102 + 50); // the retransmit carries the same nonce
  const again = only(a.takeEffects(), "send").message;
  assert.equal(again.t === "revoke" && again.nonce, 41);
  a.onMessage(ack, 160);
  only(a.takeEffects(), "store-write");
  assert.equal(a.stats.acksReceived, 1);
  a.onMessage(ack, 161); // a duplicate changes nothing
  assert.equal(a.stats.acksRejected, 5);
});

Deno.test("NodeCore rejects a nonce source that is not a function, or that draws a bad nonce", () => {
  assert.throws(
    () => new NodeCore({ nodeId: "a", incarnation: 1, nonce: 7 as unknown as () => number }),
    TypeError,
  );
  const a = node("a", { nonce: () => -1 });
  a.set(1, "st:k", value("v"), 0);
  a.onCoordRead(only(a.takeEffects(), "coord-get").io, {
    ok: true,
    record: { holders: ["b"], pending: undefined, version: 1 },
    revision: 5,
  }, 1);
  const claim = only(a.takeEffects(), "coord-put");
  assert.throws(() => a.onCoordWrite(claim.io, { ok: true, revision: 6 }, 2), TypeError);
});

Deno.test("NodeCore strong write that took a slot over and fails gives it back to the writer it took it from (simulator seed 2)", () => {
  const a = new NodeCore({ nodeId: "a", incarnation: 1 });
  a.register("st", { mode: "strong-distributed", leaseMs: 5000, writeTimeoutMs: 1000 });
  // A stalled writer holds the slot; its conditional store write may still land.
  const stuck: HolderRecord = { holders: ["b"], pending: "stalled/1/7", version: 3 };
  let now = 0;
  let claimed: EffectOf<"coord-put"> | undefined;
  for (let op = 1; op <= 2 && claimed === undefined; op++) {
    a.set(op, "st", value("v"), now);
    for (let i = 0; i < 200 && claimed === undefined; i++) {
      for (const e of a.takeEffects()) {
        if (e.type === "coord-get") {
          a.onCoordRead(e.io, { ok: true, record: stuck, revision: 9 }, now);
        }
        if (e.type === "coord-put") claimed = e;
      }
      if (claimed === undefined) a.tick(now += 10);
    }
  }
  assert.ok(claimed !== undefined, "no write took the slot over");
  a.onCoordWrite(claimed.io, { ok: true, revision: 10 }, now);
  assert.equal(only(a.takeEffects(), "send").to, "b"); // b stays silent past the deadline
  let release: EffectOf<"coord-put"> | undefined;
  for (let i = 0; i < 200 && release === undefined; i++) {
    a.tick(now += 10);
    release = a.takeEffects().find((e): e is EffectOf<"coord-put"> => e.type === "coord-put");
  }
  assert.ok(release !== undefined, "the failed write gave nothing back");
  assert.equal(release.revision, 10);
  // Not free: were it, b could register and read v3, and the stalled writer land v4.
  assert.equal((release.record as HolderRecord).pending, "stalled/1/7");
  // It was seen orphaned for half a deadline already: the next write here takes it at once,
  // with its whole deadline to wait out b (else a slow holder would fail every retry).
  a.onCoordWrite(release.io, { ok: true, revision: 11 }, now);
  a.takeEffects();
  a.set(3, "st", value("w"), now);
  const get = only(a.takeEffects(), "coord-get");
  a.onCoordRead(get.io, { ok: true, record: release.record, revision: 11 }, now);
  const retake = only(a.takeEffects(), "coord-put");
  assert.equal(retake.revision, 11);
  assert.ok((retake.record as HolderRecord).pending?.startsWith("a/1/"));
});

Deno.test("NodeCore strong write drops a silent holder from the record at release", () => {
  const a = node("a");
  a.set(1, "st:k", value("v2"), 0);
  const get = only(a.takeEffects(), "coord-get");
  a.onCoordRead(get.io, {
    ok: true,
    record: { holders: ["b", "c"], pending: undefined, version: 1 },
    revision: 5,
  }, 0);
  a.onCoordWrite(only(a.takeEffects(), "coord-put").io, { ok: true, revision: 6 }, 0);
  const revokes = a.takeEffects().filter((e) => e.type === "send");
  const toB = revokes.find((e) => e.type === "send" && e.to === "b")!;
  if (toB.type !== "send" || toB.message.t !== "revoke") throw new Error("no revoke to b");
  const { id, inc: to, nonce } = toB.message;
  a.onMessage({ t: "ack", from: "b", inc: 1, id, key: "st:k", to, nonce }, 1);
  a.tick(500); // c never answers and holds no session: its lease is waited out
  noSession(a, 501);
  a.tick(1200);
  const write = only(a.takeEffects(), "store-write");
  a.onStoreWrite(write.io, { ok: true, version: 2 }, 1201);
  const release = only(a.takeEffects(), "coord-put");
  assert.deepEqual((release.record as HolderRecord).holders, ["a", "b"]);
});

Deno.test("NodeCore strong write claims at the record it last saw, reading only on conflict", () => {
  const a = node("a");
  strongFill(a, 1, "st:k", undefined, 0, 0, "v1", 1);
  a.set(2, "st:k", value("v2"), 10);
  const claim = only(a.takeEffects(), "coord-put");
  assert.equal(claim.revision, 1, "no read: the claim uses the registration's revision");
  a.onCoordWrite(claim.io, {
    ok: false,
    conflict: true,
    error: new WarpError("CONTENDED", "moved"),
  }, 11);
  only(a.takeEffects(), "coord-get");
});

Deno.test("holderRecordKey() keeps coordinator keys short for long keys", async () => {
  const { holderRecordKey } = await import("./node.ts");
  const long = "k".repeat(1024);
  assert.ok(holderRecordKey(long).length < 40);
  assert.notEqual(holderRecordKey(long), holderRecordKey("k".repeat(1023) + "j"));
  assert.equal(holderRecordKey("user:1"), "strong/user:1");
});

/**
 * Answers the sessions-record read a writer makes for its silent holders, and the
 * compare-and-set that proves them absent: no sessions.
 */
function noSession(n: NodeCore, nowMs: number): void {
  const effects = n.takeEffects();
  sessionsRead(effects);
  none(serveSessions(n, { record: undefined, revision: 0 }, effects, nowMs), "coord-get");
}

// ------------------------------------------------------------------ holders under sessions

Deno.test("NodeCore strong read without a live session reads through uncached, registering nowhere", () => {
  const a = sessionNode("a");
  const join = sessionsRead(a.takeEffects()); // not answered yet: no session
  const uncached = (op: number, key: string, now: number) => {
    a.get(op, key, now);
    const effects = a.takeEffects();
    none(effects, "coord-get");
    none(effects, "coord-put");
    a.onStoreRead(only(effects, "store-get").io, read("v", 1), now);
    assert.equal(only(a.takeEffects(), "resolve").result.value, "v");
    assert.equal(a.inspect(key), undefined, key);
  };
  uncached(1, "st:k", 10);
  a.onCoordRead(join.io, { ok: true, record: undefined, revision: 0 }, 20);
  a.onCoordWrite(sessionsWrite(a.takeEffects()).io, { ok: true, revision: 1 }, 20);
  a.tick(1020);
  sessionsRead(a.takeEffects()); // the renewal goes unanswered: the session lapses at 2017
  uncached(2, "st:j", 20 + SESSION_MS * (1 - 0.001));
});

Deno.test("NodeCore serves a strong entry past its lease while its session lives, not once it lapses, and again after a renewal with no notice", () => {
  const a = sessionNode("a");
  renewSession(a, undefined, 0, 0); // believes until 2997
  strongFill(a, 1, "st:k", undefined, 1, 100, "v", 1);
  a.tick(1000);
  const renewal = sessionsRead(a.takeEffects());
  strongFill(a, 2, "st:j", undefined, 2, 2500, "j", 1);
  assert.equal(a.hit("st:k", 2000)?.value, "v", "its lease of 1000 ms is long past");
  assert.equal(a.hit("st:k", 2996)?.value, "v");
  assert.equal(a.hit("st:k", 2997), undefined);
  assert.equal(a.hit("st:j", 2997), undefined, "no lease of its own: only the session");
  a.onCoordRead(renewal.io, { ok: true, record: { members: [member("a")] }, revision: 2 }, 3000);
  a.onCoordWrite(sessionsWrite(a.takeEffects()).io, { ok: true, revision: 3 }, 3000);
  assert.equal(a.hit("st:k", 3001)?.value, "v");
});

// ------------------------------------------------------------------ notices (the writer)

const DRIFT = 0.001;
/** The silent holder's entry: its own sessionMs is 1200. */
const holderB = member("b", { sessionMs: 1200, after: 9 });

/**
 * `w` writes `st:k` at `nowMs` and claims it from a holder record listing `b` read at
 * `revision` (the claim is answered at `answerMs` with `revision + 1`); returns the revoke
 * it sends to b.
 */
function claimFromB(
  w: NodeCore,
  nowMs: number,
  revision: number,
  answerMs = nowMs,
): EffectOf<"send"> {
  w.set(1, "st:k", value("v2"), nowMs);
  w.onCoordRead(only(w.takeEffects(), "coord-get").io, {
    ok: true,
    record: { holders: ["b"], pending: undefined, version: 1 },
    revision,
  }, nowMs);
  w.onCoordWrite(
    only(w.takeEffects(), "coord-put").io,
    { ok: true, revision: revision + 1 },
    answerMs,
  );
  return only(w.takeEffects(), "send");
}

/**
 * `w` (without a session: the writer's side does not depend on its own) claims `st:k` from
 * a record listing `b` at revision 10, answered at 10 (the claim's revision is 11); b stays
 * silent. Returns the revoke sent to b and the sessions read w makes two heartbeat
 * intervals later to post its notice.
 */
function silentHolder(w: NodeCore): { revoke: EffectOf<"send">; post: EffectOf<"coord-get"> } {
  const revoke = claimFromB(w, 0, 10, 10);
  w.tick(509); // revokes sent again, no ack
  none(w.takeEffects(), "coord-get");
  w.tick(510);
  return { revoke, post: sessionsRead(w.takeEffects()) };
}

/** Posts w's notice for b on a record of b alone at revision 12, answered at 520 (revision 13). */
function postForB(
  w: NodeCore,
  post: EffectOf<"coord-get">,
  entry = holderB,
): EffectOf<"coord-put"> {
  w.onCoordRead(post.io, { ok: true, record: { members: [entry] }, revision: 12 }, 510);
  const put = sessionsWrite(w.takeEffects());
  w.onCoordWrite(put.io, { ok: true, revision: 13 }, 520);
  return put;
}

/** Runs w's timers at `nowMs`, answering a poll of the sessions record with `record` at `revision`. */
function poll(w: NodeCore, nowMs: number, record: SessionsRecord, revision: number): Effect[] {
  w.tick(nowMs);
  w.onCoordRead(sessionsRead(w.takeEffects()).io, { ok: true, record, revision }, nowMs);
  return w.takeEffects();
}

Deno.test("NodeCore writer posts a notice for a holder silent for two heartbeat intervals, adding {key, rev} to its entry by one compare-and-set", () => {
  const w = node("w");
  const { post } = silentHolder(w);
  const c = member("c", { after: 9, notices: [{ key: "st:x", rev: 4 }] });
  w.onCoordRead(post.io, { ok: true, record: { members: [holderB, c] }, revision: 12 }, 510);
  const put = sessionsWrite(w.takeEffects());
  assert.equal(put.revision, 12);
  assert.deepEqual(put.record, {
    members: [{ ...holderB, notices: [{ key: "st:k", rev: 11 }] }, c],
  });
  w.onCoordWrite(put.io, { ok: true, revision: 13 }, 520);
  assert.equal(w.stats.noticesPosted, 1);
  none(w.takeEffects(), "store-write");
});

Deno.test("NodeCore writer completes on a silent holder's late acknowledgement after posting", () => {
  const w = node("w");
  const { revoke, post } = silentHolder(w);
  postForB(w, post);
  if (revoke.message.t !== "revoke") throw new Error("expected a revoke");
  const { id, inc: to, nonce } = revoke.message;
  w.onMessage({ t: "ack", from: "b", inc: 1, id, key: "st:k", to, nonce }, 600);
  only(w.takeEffects(), "store-write");
});

Deno.test("NodeCore writer completes once a poll read shows the holder renewed on a record at or after the post", () => {
  const w = node("w");
  const { post } = silentHolder(w);
  postForB(w, post); // at revision 13
  w.tick(769);
  none(w.takeEffects(), "coord-get");
  // A state older than the post, where b is absent, says nothing.
  none(poll(w, 770, { members: [] }, 9), "store-write");
  none(poll(w, 1020, { members: [{ ...holderB, after: 12 }] }, 14), "store-write");
  only(poll(w, 1270, { members: [{ ...holderB, after: 13 }] }, 15), "store-write");
  assert.equal(w.stats.leaseWaits, 0);
});

Deno.test("NodeCore writer completes once a poll read shows the holder removed or in another session", () => {
  const records: Record<string, SessionsRecord> = {
    removed: { members: [member("c")] },
    rejoined: { members: [{ ...holderB, session: 2, after: 14 }] },
    restarted: { members: [{ ...holderB, inc: 2, after: 14 }] },
  };
  for (const [name, record] of Object.entries(records)) {
    const w = node("w");
    const { post } = silentHolder(w);
    postForB(w, post);
    assert.equal(only(poll(w, 770, record, 15), "store-write").key, "st:k", name);
  }
});

Deno.test("NodeCore writer waits out a silent holder's session: its sessionMs × (1 + drift) + 1 after the post's answer", () => {
  const w = node("w");
  const { post } = silentHolder(w);
  postForB(w, post); // answered at 520
  const untilMs = 520 + 1200 * (1 + DRIFT) + 1;
  const unchanged = { members: [{ ...holderB, notices: [{ key: "st:k", rev: 11 }] }] };
  for (const t of [770, 1020, 1270, 1520]) none(poll(w, t, unchanged, 13), "store-write");
  w.tick(untilMs - 0.1);
  none(w.takeEffects(), "store-write");
  w.tick(untilMs);
  only(w.takeEffects(), "store-write");
  assert.equal(w.stats.leaseWaits, 1);
});

Deno.test("NodeCore writer waits out a holder absent from the sessions record by the cache-lease rule from its claim", () => {
  const w = node("w");
  const { post } = silentHolder(w); // claim answered at 10
  const cell = { record: { members: [member("c", { after: 9 })] }, revision: 12 };
  none(serveSessions(w, cell, [post], 510), "store-write");
  assert.equal(w.stats.noticesPosted, 0);
  const untilMs = 10 + (1000 * (1 + DRIFT) + 1);
  w.tick(untilMs - 0.1);
  none(w.takeEffects(), "store-write");
  w.tick(untilMs);
  only(w.takeEffects(), "store-write");
});

Deno.test("NodeCore writer leaves a holder whose notice list is full alone and posts again later", () => {
  const w = node("w");
  const { post } = silentHolder(w);
  const full = Array.from({ length: SESSION_NOTICES_MAX }, (_, i) => ({ key: `st:${i}`, rev: i }));
  const c = member("c", { after: 9 });
  const members = [{ ...holderB, notices: full }, c];
  w.onCoordRead(post.io, { ok: true, record: { members }, revision: 12 }, 510);
  const put = sessionsWrite(w.takeEffects());
  assert.deepEqual(put.record, { members }, "b is neither removed nor given a notice");
  w.onCoordWrite(put.io, { ok: true, revision: 13 }, 520);
  assert.equal(w.stats.noticesPosted, 0);
  w.tick(1019); // two heartbeats after the answer: post again
  none(w.takeEffects(), "coord-get");
  w.tick(1020);
  assert.equal(sessionsRead(w.takeEffects()).key, "sessions");
});

Deno.test("NodeCore holder takes a posted notice in at its next renewal, and the writer's poll sees it", () => {
  const cell: SessionsCell = { record: undefined, revision: 0 };
  const b = sessionNode("b");
  serveSessions(b, cell, b.takeEffects(), 0); // b joins at revision 1
  strongFill(b, 1, "st:k", undefined, 1, 100, "v1", 1);
  const w = node("w");
  claimFromB(w, 200, 2); // claimed at revision 3; the revoke is lost
  w.tick(700);
  serveSessions(w, cell, w.takeEffects(), 700);
  assert.deepEqual(cell.record?.members[0]?.notices, [{ key: "st:k", rev: 3 }]);
  w.tick(950);
  none(serveSessions(w, cell, w.takeEffects(), 950), "store-write"); // b has not renewed yet
  assert.equal(b.hit("st:k", 999)?.value, "v1");
  b.tick(1000);
  serveSessions(b, cell, b.takeEffects(), 1000);
  assert.equal(b.hit("st:k", 1000), undefined, "b dropped the key");
  assert.deepEqual(cell.record?.members[0]?.notices, [], "b's renewal cleared its notices");
  w.tick(1200);
  only(serveSessions(w, cell, w.takeEffects(), 1200), "store-write");
  assert.equal(w.stats.leaseWaits, 0);
});

Deno.test("NodeCore writer does not take a holder's absence from a sessions read older than its claim (a lagging replica)", () => {
  const stale: Record<string, { record: SessionsRecord | undefined; revision: number }> = {
    "before b joined": { record: { members: [member("c")] }, revision: 3 },
    "before the record existed": { record: undefined, revision: 0 },
  };
  for (const [name, read] of Object.entries(stale)) {
    const w = node("w");
    const { post } = silentHolder(w); // claimed at revision 11, answered at 10
    w.onCoordRead(post.io, { ok: true, ...read }, 510);
    // The current record lists b: the writer must find it and post its notice.
    const cell = { record: { members: [holderB, member("c", { after: 9 })] }, revision: 12 };
    none(serveSessions(w, cell, w.takeEffects(), 510), "store-write");
    for (const t of [770, 1012, 1500]) {
      w.tick(t);
      none(serveSessions(w, cell, w.takeEffects(), t), "store-write");
    }
    assert.deepEqual(cell.record.members[0]?.notices, [{ key: "st:k", rev: 11 }], name);
  }
});

// Regression (found by these tests): a writer that found a holder's notices full removed the
// member, which did not end the belief its last renewal gave it; a later writer found it
// absent, took it for a node without a session and waited only its cache lease (S1). Now a
// full list is left alone and the writer posts again until the member renews (emptying it)
// or is removed once its session provably ended.
Deno.test("NodeCore writer does not complete while a holder whose notices are full may still serve (S1)", () => {
  const cell: SessionsCell = { record: undefined, revision: 0 };
  const b = sessionNode("b"); // sessionMs 3000
  serveSessions(b, cell, b.takeEffects(), 0); // b believes until 2997
  strongFill(b, 1, "st:k", undefined, 1, 100, "v1", 1);
  // b is cut off from bus and coordinator from here on; writers of other keys filled its
  // notice list meanwhile.
  const full = Array.from({ length: SESSION_NOTICES_MAX }, (_, i) => ({ key: `st:o${i}`, rev: i }));
  const entry = cell.record!.members.find((m) => m.id === "b")!;
  cell.record = { members: [{ ...entry, notices: full }] };
  cell.revision = 20;
  const w = node("w");
  claimFromB(w, 200, 21); // claimed at revision 22; the revoke is lost
  let committedMs = Infinity;
  for (let t = 250; t < 3200 && committedMs === Infinity; t += 50) {
    w.tick(t);
    for (const e of serveSessions(w, cell, w.takeEffects(), t)) {
      if (e.type !== "store-write") continue;
      w.onStoreWrite(e.io, { ok: true, version: 2 }, t);
      committedMs = t;
    }
  }
  assert.ok(cell.record.members.some((m) => m.id === "b"), "b was not removed");
  assert.ok(w.stats.noticesPosted === 0, "nothing could be posted for b");
  if (committedMs !== Infinity) {
    assert.equal(b.hit("st:k", committedMs), undefined, `b still serves v1 at ${committedMs} ms`);
  }
});

// Regression (simulator seed 2083, stale coordinator reads): a writer whose store write failed
// after taking effect gave its slot back with no holder listed, itself included; a later read
// of the record from a lagging replica, older than that release, still listed it, and it
// cached without registering — the next writer then did not revoke it (S1). Every revision a
// node sees of a record, its own writes too, now raises its floor.
Deno.test("NodeCore does not trust a holder-record read older than its own failed release", () => {
  const cell: SessionsCell = { record: undefined, revision: 0 };
  const a = sessionNode("a");
  serveSessions(a, cell, a.takeEffects(), 0); // a's session lives
  const listed = { holders: ["a"], pending: undefined, version: 1 };
  strongFill(a, 1, "st:k", { holders: [], pending: undefined, version: 1 }, 5, 10, "v1", 1);
  // a writes: claims at 6 (optimistically, from the record it registered), stores, and the
  // store answers an error although the write took effect: a gives the slot back, no holder.
  a.set(2, "st:k", value("v2"), 20);
  const claim = only(a.takeEffects(), "coord-put");
  assert.equal(claim.revision, 6);
  a.onCoordWrite(claim.io, { ok: true, revision: 7 }, 20);
  const store = only(a.takeEffects(), "store-write");
  a.onStoreWrite(store.io, { ok: false, error: new WarpError("STORE_ERROR", "lost answer") }, 21);
  const effects = a.takeEffects();
  assert.equal(only(effects, "reject").error.code, "STORE_ERROR");
  const release = only(effects, "coord-put");
  assert.deepEqual((release.record as HolderRecord).holders, []);
  a.onCoordWrite(release.io, { ok: true, revision: 8 }, 22);
  // A read of st:k answered from before the release (revision 6) lists a: not trusted.
  a.get(3, "st:k", 30);
  a.onCoordRead(
    only(a.takeEffects(), "coord-get").io,
    { ok: true, record: listed, revision: 6 },
    30,
  );
  const register = only(a.takeEffects(), "coord-put");
  assert.equal(register.revision, 6, "a compare-and-set at the revision read, which fails if old");
});
