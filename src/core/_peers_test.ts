/**
 * Peer tracking (`_peers.ts`): sequence gaps, heartbeats, restarted and new peers; under
 * sessions, the freshness proof from echoed heartbeat rounds.
 */

import assert from "node:assert/strict";
import { only } from "../../test/_effects.ts";
import {
  heartbeat as hb,
  member,
  readThrough,
  renewSession,
  sessionNode,
  testNode as node,
  writeThrough as write,
} from "../../test/_node_core.ts";
import type { NodeCore } from "./node.ts";

Deno.test("NodeCore flushes eventual entries when a sequence gap stays open past the timeout", () => {
  const n = node("a", { gapTimeoutMs: 100 });
  write(n, 1, "ev:k", "v", 1, 0);
  write(n, 2, "local:k", "l", 1, 0);
  n.onMessage(hb("b", 7, 0), 10); // first word: nothing missed
  n.onMessage({ t: "inv", from: "b", inc: 7, seq: 2, key: "other", version: 1 }, 20); // 1 missing
  n.tick(119);
  assert.equal(n.stats.flushes, 0);
  assert.equal(n.hit("ev:k", 119)?.value, "v");
  n.tick(120);
  assert.equal(n.stats.flushes, 1);
  assert.equal(n.hit("ev:k", 121), undefined);
  assert.equal(n.hit("local:k", 121)?.value, "l", "strong-local entries are not flushed");
});

Deno.test("NodeCore does not flush when a reordered message fills the gap in time", () => {
  const n = node("a", { gapTimeoutMs: 100 });
  n.onMessage(hb("b", 7, 0), 0);
  n.onMessage({ t: "inv", from: "b", inc: 7, seq: 2, key: "x", version: 1 }, 10);
  n.onMessage({ t: "inv", from: "b", inc: 7, seq: 1, key: "y", version: 1 }, 20);
  n.onMessage(hb("b", 7, 2), 30);
  n.tick(500);
  assert.equal(n.stats.gapsDetected, 1);
  assert.equal(n.stats.flushes, 0);
});

Deno.test("NodeCore detects messages lost before a heartbeat", () => {
  const n = node("a", { gapTimeoutMs: 50 });
  write(n, 1, "ev:k", "v", 1, 0);
  n.onMessage(hb("b", 7, 0), 0);
  n.onMessage(hb("b", 7, 1), 10); // seq 1 never arrived
  n.tick(60);
  assert.equal(n.stats.flushes, 1);
  assert.equal(n.hit("ev:k", 61), undefined);
});

Deno.test("NodeCore tracks a restarted peer even when its incarnation is lower", () => {
  const n = node("a", { gapTimeoutMs: 50 });
  write(n, 1, "ev:k", "v", 1, 0);
  n.onMessage(hb("b", 9, 0), 0);
  n.onMessage(hb("b", 3, 0), 1); // b restarted, clock went back: what it sent last may be lost
  assert.equal(n.stats.flushes, 1);
  n.onMessage(hb("b", 3, 2), 2); // its seq 1 and 2 were lost
  n.tick(60);
  assert.equal(n.stats.flushes, 2);
});

Deno.test("NodeCore flushes once when it first hears a peer that has broadcast before", () => {
  const n = node();
  write(n, 1, "ev:k", "v", 1, 0);
  n.onMessage(hb("fresh", 5, 0), 1); // nothing missed
  assert.equal(n.hit("ev:k", 2)?.value, "v");
  n.onMessage({ t: "inv", from: "late", inc: 5, seq: 1, key: "other", version: 1 }, 3); // its first
  assert.equal(n.hit("ev:k", 4)?.value, "v");
  n.onMessage(hb("old", 9, 7), 5); // seven broadcasts we never saw
  assert.equal(n.hit("ev:k", 6), undefined);
  assert.equal(n.stats.flushes, 1);
});

// ------------------------------------------------------------------ freshness proofs (sessions)

/** A node whose session lists b (not yet heard), with `ev:k` read at 10: its bound ends at 509.5. */
function memberOfTwo(): NodeCore {
  const a = sessionNode("a");
  renewSession(a, { members: [member("b", { after: 3 })] }, 5, 0); // believes until 2997
  readThrough(a, 1, "ev:k", "v", 1, 10);
  return a;
}

/** Runs `n`'s timers at `nowMs`; returns the round of the heartbeat it broadcast. */
function ownRound(n: NodeCore, nowMs: number): number {
  n.tick(nowMs);
  const message = only(n.takeEffects(), "broadcast").message;
  assert.equal(message.t, "hb");
  return message.t === "hb" ? message.round : 0;
}

Deno.test("NodeCore serves an eventual entry past its bound while every member echoes a recent round, and only while its session lives", () => {
  const a = memberOfTwo();
  assert.equal(ownRound(a, 250), 1);
  assert.equal(a.hit("ev:k", 509)?.value, "v", "within its bound: no proof needed");
  assert.equal(a.hit("ev:k", 510), undefined, "b has echoed nothing yet");
  // b echoes round 1, sent at 250: a has every invalidation b sent before then.
  a.onMessage(hb("b", 1, 0, 1, [["a", 1, 1]]), 300);
  assert.equal(a.hit("ev:k", 749)?.value, "v");
  assert.equal(a.stats.provenHits, 1);
  assert.equal(a.hit("ev:k", 749.5), undefined, "250 + 500 × (1 − drift)");
  for (let t = 500; t <= 2750; t += 250) {
    const round = ownRound(a, t);
    a.onMessage(hb("b", 1, 0, round, [["a", 1, round]]), t + 10);
  }
  assert.equal(a.hit("ev:k", 2996)?.value, "v");
  assert.equal(a.hit("ev:k", 2997), undefined, "the session lapsed: its renewal went unanswered");
});

Deno.test("NodeCore uses an echo heard ahead of a gap in its sender's sequence once the gap closes", () => {
  const a = memberOfTwo();
  ownRound(a, 250);
  a.onMessage(hb("b", 1, 0, 1, [["a", 1, 1]]), 260); // fresh as of 250, until 749.5
  ownRound(a, 500);
  // b echoes round 2 (sent at 500) in a heartbeat that says b broadcast seq 1: not received.
  a.onMessage(hb("b", 1, 1, 2, [["a", 1, 2]]), 510);
  assert.equal(a.hit("ev:k", 749.5), undefined, "the echo of round 2 waits for seq 1");
  a.onMessage({ t: "inv", from: "b", inc: 1, seq: 1, key: "ev:other", version: 1 }, 760);
  assert.equal(a.hit("ev:k", 770)?.value, "v", "fresh as of round 2, sent at 500");
  assert.equal(a.hit("ev:k", 999.5), undefined);
  assert.equal(a.stats.flushes, 0);
});

Deno.test("NodeCore ignores an echo of a round it never sent, or of another incarnation", () => {
  const a = memberOfTwo();
  ownRound(a, 250);
  a.onMessage(hb("b", 1, 0, 1, [["a", 1, 9]]), 260); // round 9 was never sent
  a.onMessage(hb("b", 1, 0, 2, [["a", 2, 1]]), 270); // a's incarnation is 1
  assert.equal(a.hit("ev:k", 510), undefined);
  a.onMessage(hb("b", 1, 0, 3, [["a", 1, 1]]), 280);
  assert.equal(a.hit("ev:k", 600)?.value, "v", "the lie did not shadow the true echo");
});

Deno.test("NodeCore with no other member proves freshness by its live session alone", () => {
  const a = sessionNode("a");
  renewSession(a, undefined, 0, 0); // alone, believes until 2997
  readThrough(a, 1, "ev:k", "v", 1, 10);
  assert.equal(a.hit("ev:k", 2000)?.value, "v");
  assert.equal(a.hit("ev:k", 2997), undefined);
  const without = node("a");
  readThrough(without, 1, "ev:k", "v", 1, 10);
  assert.equal(without.hit("ev:k", 510), undefined, "without sessions: its bound only");
});

// ------------------------------------------------------------------ forged bookkeeping

Deno.test("NodeCore under sessions ignores heartbeats from non-members, and from members at another incarnation", () => {
  const a = memberOfTwo(); // b is a member at incarnation 1
  for (let i = 0; i < 1000; i++) a.onMessage(hb(`forged${i}`, 1, 7), 20);
  a.onMessage(hb("b", 2, 7), 21); // b's id, an incarnation the membership does not list
  assert.equal(a.stats.nonMemberHeartbeats, 1001);
  assert.equal(a.stats.flushes, 0);
  assert.equal(a.hit("ev:k", 22)?.value, "v");
  a.onMessage(hb("b", 1, 7), 23); // the member itself, having broadcast before: a first word
  assert.equal(a.stats.flushes, 1);
  assert.equal(a.hit("ev:k", 24), undefined);
});

Deno.test("NodeCore flushes on first words at most once per heartbeat interval, coalescing the rest", () => {
  const n = node("a", { heartbeatIntervalMs: 100 });
  write(n, 1, "ev:k", "v", 1, 0);
  n.onMessage(hb("p0", 1, 3), 10);
  assert.equal(n.stats.flushes, 1);
  write(n, 2, "ev:k", "w", 2, 11);
  for (let i = 1; i <= 1000; i++) n.onMessage(hb(`p${i}`, 1, 3), 12);
  assert.equal(n.stats.flushes, 1, "the others wait for the interval to end");
  assert.equal(n.stats.flushesCoalesced, 1000);
  n.tick(109);
  assert.equal(n.stats.flushes, 1);
  n.tick(110);
  assert.equal(n.stats.flushes, 2, "one flush for the thousand");
  assert.equal(n.hit("ev:k", 111), undefined);
});

Deno.test("NodeCore proves no freshness while a coalesced flush is pending", () => {
  const a = sessionNode("a", { heartbeatIntervalMs: 1000 });
  renewSession(a, { members: [member("b", { after: 3 })] }, 5, 0);
  a.onMessage({ t: "inv", from: "x", inc: 1, seq: 5, key: "ev:o", version: 1 }, 5); // flushes
  readThrough(a, 1, "ev:k", "v", 1, 10); // its bound ends at 509.5
  assert.equal(ownRound(a, 1000), 1);
  a.onMessage(hb("b", 1, 0, 1, [["a", 1, 1]]), 1001);
  assert.equal(a.hit("ev:k", 1002)?.value, "v", "proved fresh as of 1000");
  a.onMessage({ t: "inv", from: "y", inc: 1, seq: 5, key: "ev:o", version: 1 }, 1003);
  assert.equal(a.stats.flushesCoalesced, 1);
  assert.equal(a.hit("ev:k", 1004), undefined, "no proof while the flush waits");
});

Deno.test("NodeCore with an echo budget echoes at most echoesMax peers per heartbeat, every one in turn", () => {
  const a = sessionNode("a", { echoesMax: 2 });
  const peers = ["b", "c", "d", "e", "f"];
  // Members, or their heartbeats would be ignored (forged bookkeeping).
  renewSession(a, { members: peers.map((id) => member(id)) }, 0, 0);
  a.takeEffects();
  for (const [i, id] of peers.entries()) a.onMessage(hb(id, 1, 0, 1), 10 + i);
  const echoed = new Set<string>();
  for (let t = 250; t <= 750; t += 250) {
    a.tick(t);
    const message = only(a.takeEffects(), "broadcast").message;
    assert.ok(message.t === "hb" && message.echo.length === 2, JSON.stringify(message));
    for (const [id] of message.echo) echoed.add(id);
  }
  assert.deepEqual([...echoed].sort(), peers, "⌈5 / 2⌉ = 3 heartbeats echo every peer");
  assert.throws(() => sessionNode("a", { echoesMax: 257 }), RangeError);
  assert.throws(() => sessionNode("a", { echoesMax: 1.5 }), RangeError);
});
