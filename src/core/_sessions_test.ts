/**
 * Node sessions (`_sessions.ts`): joining and renewing by compare-and-set, notices, removal,
 * activation; and the validation of the sessions record. Nodes here use `sessionMs` 3000
 * with a drift of 1000 ppm: a renewal's belief lasts 2997 ms from its sending.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { none, only } from "../../test/_effects.ts";
import {
  contended,
  member,
  renewSession,
  serveSessions,
  SESSION_MS,
  sessionNode as node,
  sessionsRead,
  sessionsWrite,
  storeRead as read,
  strongFill,
  writeThrough as write,
} from "../../test/_node_core.ts";
import type { SessionsCell } from "../../test/_node_core.ts";
import {
  assertAcceptsExactly,
  assertNeverThrows,
  countTagged,
  invalid,
  nodeIdTagged,
  tagged,
  tagList,
  tagObject,
  VALID_WEIGHT,
} from "../../test/_tagged.ts";
import type { Tagged } from "../../test/_tagged.ts";
import type { Effect, HolderRecord } from "./effects.ts";
import { KEY_LENGTH_MAX } from "./messages.ts";
import type { NodeCore } from "./node.ts";
import { SESSION_MAX_MS, SESSION_NOTICES_MAX, validateSessionsRecord } from "./_sessions.ts";
import type { SessionMember, SessionsRecord } from "./_sessions.ts";

const DRIFT = 0.001;
/** How long a renewal's belief lasts, from its sending. */
const BELIEF_MS = SESSION_MS * (1 - DRIFT);

/** The member entries of a sessions record written by a compare-and-set. */
function membersOf(put: Extract<Effect, { type: "coord-put" }>): readonly SessionMember[] {
  return (put.record as SessionsRecord).members;
}

// ------------------------------------------------------------------ joining

Deno.test("NodeCore joins on its first tick and believes in its session from when the write was sent, not answered", () => {
  for (const fromAnswer of [false, true]) {
    const a = node("a", { canary: { sessionFromAnswer: fromAnswer } });
    const join = sessionsRead(a.takeEffects());
    assert.equal(join.kind, "sessions");
    a.onCoordRead(join.io, { ok: true, record: undefined, revision: 0 }, 10);
    const create = sessionsWrite(a.takeEffects());
    assert.equal(create.revision, undefined, "no record yet: the join creates it");
    assert.deepEqual(create.record, { members: [member("a")] });
    a.onCoordWrite(create.io, { ok: true, revision: 1 }, 500); // answered 490 ms late
    assert.equal(a.stats.sessionRenewals, 1);
    strongFill(a, 1, "st:k", undefined, 1, 600, "v", 1);
    // The next renewal goes out 80 to 100 % of a third of sessionMs after the join was sent
    // (jittered, so that nodes do not renew in step; the canary counts from the answer);
    // left unanswered.
    const fromMs = fromAnswer ? 500 : 10;
    a.tick(fromMs + 800 - 1);
    none(a.takeEffects(), "coord-get");
    a.tick(fromMs + 1000);
    sessionsRead(a.takeEffects());
    assert.equal(a.hit("st:k", 10 + BELIEF_MS - 1)?.value, "v");
    const late = a.hit("st:k", 10 + BELIEF_MS)?.value;
    if (fromAnswer) assert.equal(late, "v", "the canary believes from the answer: the check bites");
    else assert.equal(late, undefined, "the belief ends 2997 ms after the join was sent");
  }
});

// ------------------------------------------------------------------ renewing

Deno.test("NodeCore re-reads and retries a renewal whose compare-and-set another member won", () => {
  const a = node("a");
  a.onCoordRead(
    sessionsRead(a.takeEffects()).io,
    { ok: true, record: { members: [member("b", { after: 3 })] }, revision: 5 },
    0,
  );
  const lost = sessionsWrite(a.takeEffects());
  assert.equal(lost.revision, 5);
  a.onCoordWrite(lost.io, { ok: false, conflict: true, error: contended() }, 1);
  // b renewed meanwhile: a reads again at once and writes on what it read.
  const renewed = { members: [member("b", { after: 5 })] };
  const put = renewSession(a, renewed, 6, 2);
  assert.equal(put.revision, 6);
  const [mine, theirs] = membersOf(put);
  assert.ok(mine !== undefined && mine.session > 0);
  assert.deepEqual(mine, member("a", { after: 6, session: mine.session }));
  assert.deepEqual(theirs, member("b", { after: 5 }));
  assert.equal(a.stats.sessionRenewals, 1);
  assert.equal(a.stats.sessionsLost, 0);
});

Deno.test("NodeCore waits a poll interval after four renewals in a row lost to conflicts", () => {
  const a = node("a");
  for (let attempt = 1; attempt <= 4; attempt++) {
    a.onCoordRead(
      sessionsRead(a.takeEffects()).io,
      { ok: true, record: { members: [member("b")] }, revision: attempt },
      0,
    );
    a.onCoordWrite(
      sessionsWrite(a.takeEffects()).io,
      { ok: false, conflict: true, error: contended() },
      0,
    );
  }
  none(a.takeEffects(), "coord-get");
  a.tick(249);
  none(a.takeEffects(), "coord-get");
  a.tick(250); // the heartbeat interval
  sessionsRead(a.takeEffects());
});

Deno.test("NodeCore does not act on a sessions read older than its last write (a lagging replica)", () => {
  const a = node("a");
  renewSession(a, undefined, 0, 0); // joined at revision 1
  a.tick(1000);
  renewSession(a, { members: [member("a", { after: 0 })] }, 3, 1000); // renewed at revision 4
  strongFill(a, 1, "st:k", undefined, 4, 1100, "v", 1);
  a.tick(2000);
  // A replica behind a's last write answers with the record from before a joined.
  const stale = sessionsRead(a.takeEffects());
  a.onCoordRead(stale.io, { ok: true, record: { members: [member("b")] }, revision: 2 }, 2000);
  const effects = a.takeEffects();
  none(effects, "coord-put");
  assert.equal(a.stats.sessionsLost, 0, "an old state does not say a was removed");
  assert.equal(a.hit("st:k", 2001)?.value, "v");
  // a asks again at once, and renews on the current record.
  a.onCoordRead(
    sessionsRead(effects).io,
    { ok: true, record: { members: [member("a", { after: 3 })] }, revision: 5 },
    2001,
  );
  assert.equal(sessionsWrite(a.takeEffects()).revision, 5);
});

// ------------------------------------------------------------------ notices (the holder)

Deno.test("NodeCore drops a key noticed in its own entry before renewing, and the renewal clears the notices", () => {
  const a = node("a");
  renewSession(a, undefined, 0, 0); // joined at revision 1
  strongFill(a, 1, "st:k", undefined, 1, 100, "k1", 1);
  // A fill of st:j registered as holder, its store read in flight.
  a.get(2, "st:j", 200);
  const holderRead = only(a.takeEffects(), "coord-get");
  a.onCoordRead(holderRead.io, { ok: true, record: undefined, revision: 2 }, 200);
  a.onCoordWrite(only(a.takeEffects(), "coord-put").io, { ok: true, revision: 3 }, 200);
  const fillRead = only(a.takeEffects(), "store-get");
  a.tick(1000);
  const notices = [{ key: "st:k", rev: 4 }, { key: "st:j", rev: 5 }];
  a.onCoordRead(
    sessionsRead(a.takeEffects()).io,
    { ok: true, record: { members: [member("a", { after: 1, notices })] }, revision: 6 },
    1000,
  );
  // Dropped on reading, before the renewal is even written.
  assert.equal(a.inspect("st:k"), undefined);
  const put = sessionsWrite(a.takeEffects());
  assert.deepEqual(membersOf(put), [member("a", { after: 6 })], "the renewal clears the notices");
  a.onStoreRead(fillRead.io, read("j1", 1), 1001);
  assert.equal(only(a.takeEffects(), "resolve").result.value, "j1");
  assert.equal(a.inspect("st:j"), undefined, "the fill in flight answers but does not cache");
  a.onCoordWrite(put.io, { ok: true, revision: 7 }, 1001);
  // A holder record listing a, read at a revision before the notice's claim: not trusted.
  a.get(3, "st:k", 1100);
  const older = only(a.takeEffects(), "coord-get");
  const listed: HolderRecord = { holders: ["a"], pending: undefined, version: 1 };
  a.onCoordRead(older.io, { ok: true, record: listed, revision: 3 }, 1100);
  const register = only(a.takeEffects(), "coord-put");
  assert.equal(register.revision, 3, "the registration proves the record by compare-and-set");
  // One read at the notice's revision or later is trusted: no compare-and-set.
  a.get(4, "st:j", 1200);
  const newer = only(a.takeEffects(), "coord-get");
  a.onCoordRead(newer.io, { ok: true, record: listed, revision: 5 }, 1200);
  const effects = a.takeEffects();
  none(effects, "coord-put");
  only(effects, "store-get");
});

// ------------------------------------------------------------------ removal

Deno.test("NodeCore drops every distributed entry and rejoins as a new session when its entry is gone at a renewal", () => {
  const variants: Record<string, SessionsRecord> = {
    missing: { members: [member("b", { after: 3 })] },
    replaced: { members: [member("a", { session: 7, after: 2 }), member("b", { after: 3 })] },
  };
  for (const [name, record] of Object.entries(variants)) {
    const a = node("a");
    renewSession(a, undefined, 0, 0); // joined at revision 1, alone
    strongFill(a, 1, "st:k", undefined, 1, 10, "s", 1);
    write(a, 2, "ev:k", "e", 1, 20);
    write(a, 3, "local:k", "l", 1, 30);
    a.tick(1000);
    a.onCoordRead(sessionsRead(a.takeEffects()).io, { ok: true, record, revision: 5 }, 1000);
    assert.equal(a.stats.sessionsLost, 1, name);
    assert.equal(a.inspect("st:k"), undefined, name);
    assert.equal(a.inspect("ev:k"), undefined, name);
    assert.equal(a.hit("local:k", 1001)?.value, "l", `${name}: strong-local entries stay`);
    const rejoin = sessionsWrite(a.takeEffects());
    const mine = membersOf(rejoin).find((m) => m.id === "a");
    assert.deepEqual(mine, member("a", { session: 2, after: 5 }), name);
    a.onCoordWrite(rejoin.io, { ok: true, revision: 6 }, 1001);
    assert.equal(a.stats.sessionRenewals, 2, name);
  }
});

Deno.test("NodeCore removes a member whose entry stayed unchanged for its own sessionMs × (1 + drift) + 1, never earlier", () => {
  const a = node("a");
  renewSession(a, undefined, 0, 0); // joined at revision 1, alone
  // b (sessionMs 1200) is first seen at 1000, and never renews again.
  const b = member("b", { sessionMs: 1200, after: 2 });
  a.tick(1000);
  renewSession(a, { members: [member("a"), b] }, 3, 1000);
  write(a, 1, "ev:k", "e", 1, 1100);
  const flushes = a.stats.flushes;
  const expiredMs = 1000 + 1200 * (1 + DRIFT) + 1; // 2202.2
  a.tick(2000);
  const record = { members: [member("a", { after: 3 }), b] };
  a.onCoordRead(
    sessionsRead(a.takeEffects()).io,
    { ok: true, record, revision: 4 },
    expiredMs - 0.1,
  );
  const kept = sessionsWrite(a.takeEffects());
  assert.deepEqual(membersOf(kept).map((m) => m.id), ["a", "b"], "b may still believe");
  // Lost to another writer: a reads again, a moment later.
  a.onCoordWrite(kept.io, { ok: false, conflict: true, error: contended() }, expiredMs - 0.1);
  a.onCoordRead(sessionsRead(a.takeEffects()).io, { ok: true, record, revision: 4 }, expiredMs);
  const removed = sessionsWrite(a.takeEffects());
  assert.deepEqual(membersOf(removed).map((m) => m.id), ["a"], "b's belief has ended");
  assert.equal(a.inspect("ev:k")?.value, "e");
  a.onCoordWrite(removed.io, { ok: true, revision: 5 }, expiredMs);
  // b's last invalidations may be lost with it: a flushes its eventual entries.
  assert.equal(a.stats.flushes, flushes + 1);
  assert.equal(a.inspect("ev:k"), undefined);
});

// ------------------------------------------------------------------ activation

/** Joins `a` at 0 on `cell`; returns the cell's revision of the join. */
function joinOn(a: NodeCore, cell: SessionsCell): number {
  serveSessions(a, cell, a.takeEffects(), 0);
  assert.equal(a.stats.sessionRenewals, 1);
  return cell.revision;
}

/** Runs `a`'s timers at `nowMs`, serving its sessions effects from `cell`; returns the rest. */
function tickOn(a: NodeCore, cell: SessionsCell, nowMs: number): Effect[] {
  a.tick(nowMs);
  return serveSessions(a, cell, a.takeEffects(), nowMs);
}

Deno.test("NodeCore holds eventual writes after joining until every member's entry shows it renewed after the join", () => {
  const a = node("a");
  const cell = { record: { members: [member("b", { after: 3 })] }, revision: 5 };
  const joinRevision = joinOn(a, cell);
  const effects = write(a, 1, "ev:k", "v", 1, 100);
  only(effects, "broadcast");
  none(effects, "resolve");
  assert.equal(a.stats.writesHeld, 1);
  none(tickOn(a, cell, 250), "resolve"); // b's entry still predates a's join
  const members = cell.record.members.map((m) => m.id === "b" ? { ...m, after: joinRevision } : m);
  cell.record = { members };
  cell.revision++;
  const answered = tickOn(a, cell, 500);
  assert.equal(only(answered, "resolve").op, 1);
});

Deno.test("NodeCore answers held eventual writes once the longest member's sessionMs × (1 + drift) has passed", () => {
  const a = node("a");
  const cell = {
    record: {
      members: [
        member("b", { sessionMs: 1200, after: 3 }),
        member("c", { sessionMs: 2000, after: 3 }),
      ],
    },
    revision: 5,
  };
  joinOn(a, cell);
  none(write(a, 1, "ev:k", "v", 1, 100), "resolve");
  const activeMs = 2000 * (1 + DRIFT) + 1; // from the join's answer at 0
  for (let t = 250; t < activeMs; t += 250) none(tickOn(a, cell, t), "resolve");
  none(tickOn(a, cell, activeMs - 0.1), "resolve");
  assert.equal(only(tickOn(a, cell, activeMs), "resolve").op, 1);
});

Deno.test("NodeCore answers OUTCOME_UNKNOWN to an eventual write held past its deadline", () => {
  const a = node("a");
  a.register("evq:*", { mode: "eventual-distributed", maxStalenessMs: 500, writeTimeoutMs: 300 });
  const cell = { record: { members: [member("b", { after: 3 })] }, revision: 5 };
  joinOn(a, cell);
  none(write(a, 1, "evq:k", "v", 1, 100), "resolve");
  none(tickOn(a, cell, 399), "reject");
  const rejected = only(tickOn(a, cell, 400), "reject");
  assert.equal(rejected.error.code, "OUTCOME_UNKNOWN");
  // Activation later answers nothing more.
  const members = cell.record.members.map((m) => ({ ...m, after: cell.revision }));
  cell.record = { members };
  cell.revision++;
  const later = tickOn(a, cell, 500);
  none(later, "resolve");
  none(later, "reject");
});

Deno.test("NodeCore does not count a sessions read older than its join toward its activation (a lagging replica)", () => {
  const a = node("a");
  renewSession(a, undefined, 0, 0); // session 1, joined at revision 1, alone
  a.tick(1000);
  // Removed meanwhile; b joined. a rejoins as session 2 at revision 5.
  const current = { members: [member("b", { after: 3 })] };
  a.onCoordRead(sessionsRead(a.takeEffects()).io, { ok: true, record: current, revision: 4 }, 1000);
  a.onCoordWrite(sessionsWrite(a.takeEffects()).io, { ok: true, revision: 5 }, 1000);
  none(write(a, 1, "ev:k", "v", 1, 1100), "resolve");
  a.tick(1250);
  // A replica still at revision 1 shows a (its old session) alone: it says nothing of b.
  const old = { members: [member("a")] };
  a.onCoordRead(sessionsRead(a.takeEffects()).io, { ok: true, record: old, revision: 1 }, 1250);
  none(a.takeEffects(), "resolve");
  a.tick(1500);
  const renewed = { members: [member("a", { session: 2, after: 4 }), member("b", { after: 5 })] };
  a.onCoordRead(sessionsRead(a.takeEffects()).io, { ok: true, record: renewed, revision: 6 }, 1500);
  assert.equal(only(a.takeEffects(), "resolve").op, 1);
});

Deno.test("NodeCore holds eventual writes while its session has lapsed, and answers them on renewal", () => {
  const a = node("a");
  renewSession(a, undefined, 0, 0); // alone: active at once
  assert.equal(only(write(a, 1, "ev:k", "v1", 1, 10), "resolve").op, 1);
  a.tick(1000); // the renewal read is answered only after the belief ran out
  const renewal = sessionsRead(a.takeEffects());
  none(write(a, 2, "ev:k", "v2", 2, BELIEF_MS), "resolve");
  a.onCoordRead(
    renewal.io,
    { ok: true, record: { members: [member("a")] }, revision: 1 },
    3100,
  );
  const put = sessionsWrite(a.takeEffects());
  a.onCoordWrite(put.io, { ok: true, revision: 2 }, 3100);
  const answered = a.takeEffects();
  assert.equal(only(answered, "resolve").op, 2);
  assert.equal(a.stats.writesHeld, 1);
  // Regression (simulator seed 2040, gray): the write's first invalidation went out while
  // the session had lapsed, where nobody counted on this node; it goes out again as the
  // write completes, so that a write completed in a fault-free phase is known everywhere.
  const resent = only(answered, "broadcast").message;
  assert.deepEqual([resent.t, "key" in resent && resent.key], ["inv", "ev:k"]);
});

// ------------------------------------------------------------------ validation (fuzzing)

const sessionMsTagged = tagged(
  fc.oneof(fc.integer({ min: 1, max: SESSION_MAX_MS }), fc.constantFrom(1, SESSION_MAX_MS)),
  fc.constantFrom(0, -1, SESSION_MAX_MS + 1, 1.5, NaN, "1000", null, undefined),
);
const keyTagged = tagged(
  fc.oneof(
    fc.string({ minLength: 1, maxLength: 30 }),
    fc.constantFrom("k".repeat(KEY_LENGTH_MAX), "😀".repeat(KEY_LENGTH_MAX / 2)),
  ),
  fc.constantFrom("", "k".repeat(KEY_LENGTH_MAX + 1), 3, null, undefined),
);
const noticeTagged: fc.Arbitrary<Tagged> = fc.oneof(
  {
    arbitrary: fc.tuple(keyTagged, countTagged).map(([key, rev]) => tagObject({ key, rev })),
    weight: VALID_WEIGHT,
  },
  invalid(null, 3, "n", [], {}),
);
const noticesTagged: fc.Arbitrary<Tagged> = fc.oneof(
  { arbitrary: fc.array(noticeTagged, { maxLength: 3 }).map(tagList), weight: VALID_WEIGHT },
  fc.constant<Tagged>([Array(SESSION_NOTICES_MAX).fill({ key: "k", rev: 1 }), true]),
  invalid(Array(SESSION_NOTICES_MAX + 1).fill({ key: "k", rev: 1 }), null, {}, "x", undefined),
);
const memberTagged: fc.Arbitrary<Tagged> = fc.oneof(
  {
    arbitrary: fc.record({
      id: nodeIdTagged,
      inc: countTagged,
      session: countTagged,
      sessionMs: sessionMsTagged,
      after: countTagged,
      notices: noticesTagged,
    }).map(tagObject),
    weight: VALID_WEIGHT,
  },
  invalid(null, 1, "m", undefined, []),
);
/** What makes members distinct: their ids (a duplicate is put in on purpose, below). */
function idOf([member]: Tagged): unknown {
  return typeof member === "object" && member !== null ? (member as { id?: unknown }).id : member;
}
/** A sessions record, or something near one, with whether it is well formed. */
const recordTagged: fc.Arbitrary<Tagged> = fc.oneof(
  {
    arbitrary: fc.tuple(
      fc.uniqueArray(memberTagged, { maxLength: 5, selector: idOf }),
      fc.boolean(),
    ).map(
      ([entries, duplicate]): Tagged => {
        const [members, valid] = tagList(entries) as [Record<string, unknown>[], boolean];
        const first = members[0];
        if (duplicate && members.length >= 2 && typeof first === "object" && first !== null) {
          members[1] = { ...members[1], id: first.id }; // duplicate ids are refused
          return [{ members }, false];
        }
        return [{ members }, valid];
      },
    ),
    weight: VALID_WEIGHT,
  },
  invalid(null, undefined, 1, "r", [], {}, { members: "x" }, { members: null }),
);

Deno.test("validateSessionsRecord() accepts exactly the well-formed records, returning them as they are", () => {
  assertAcceptsExactly(recordTagged, (value) => validateSessionsRecord(value));
});

Deno.test("validateSessionsRecord() refuses a record with more members than membersMax", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), { minLength: 1, maxLength: 8 }),
      (ids) => {
        const record = { members: ids.map((id) => member(id)) };
        assert.equal(validateSessionsRecord(record, ids.length), record);
        assert.equal(validateSessionsRecord(record, ids.length - 1), undefined);
      },
    ),
  );
});

Deno.test("validateSessionsRecord() never throws, whatever it is given", () => {
  const near = fc.record({
    members: fc.oneof(
      fc.anything(),
      fc.array(fc.record({
        id: fc.anything(),
        inc: fc.anything(),
        session: fc.anything(),
        sessionMs: fc.anything(),
        after: fc.anything(),
        notices: fc.oneof(fc.anything(), fc.array(fc.anything())),
      })),
    ),
  });
  assertNeverThrows(fc.oneof(fc.anything(), near), (value) => validateSessionsRecord(value));
});
