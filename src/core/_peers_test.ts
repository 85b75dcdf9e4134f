/** Peer tracking (`_peers.ts`): sequence gaps, heartbeats, restarted and new peers. */

import assert from "node:assert/strict";
import { testNode as node, writeThrough as write } from "../../test/_node_core.ts";

Deno.test("NodeCore flushes eventual entries when a sequence gap stays open past the timeout", () => {
  const n = node("a", { gapTimeoutMs: 100 });
  write(n, 1, "ev:k", "v", 1, 0);
  write(n, 2, "local:k", "l", 1, 0);
  n.onMessage({ t: "hb", from: "b", inc: 7, seq: 0 }, 10); // first word: nothing missed
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
  n.onMessage({ t: "hb", from: "b", inc: 7, seq: 0 }, 0);
  n.onMessage({ t: "inv", from: "b", inc: 7, seq: 2, key: "x", version: 1 }, 10);
  n.onMessage({ t: "inv", from: "b", inc: 7, seq: 1, key: "y", version: 1 }, 20);
  n.onMessage({ t: "hb", from: "b", inc: 7, seq: 2 }, 30);
  n.tick(500);
  assert.equal(n.stats.gapsDetected, 1);
  assert.equal(n.stats.flushes, 0);
});

Deno.test("NodeCore detects messages lost before a heartbeat", () => {
  const n = node("a", { gapTimeoutMs: 50 });
  write(n, 1, "ev:k", "v", 1, 0);
  n.onMessage({ t: "hb", from: "b", inc: 7, seq: 0 }, 0);
  n.onMessage({ t: "hb", from: "b", inc: 7, seq: 1 }, 10); // seq 1 never arrived
  n.tick(60);
  assert.equal(n.stats.flushes, 1);
  assert.equal(n.hit("ev:k", 61), undefined);
});

Deno.test("NodeCore tracks a restarted peer even when its incarnation is lower", () => {
  const n = node("a", { gapTimeoutMs: 50 });
  write(n, 1, "ev:k", "v", 1, 0);
  n.onMessage({ t: "hb", from: "b", inc: 9, seq: 0 }, 0);
  n.onMessage({ t: "hb", from: "b", inc: 3, seq: 0 }, 1); // b restarted, clock went back
  n.onMessage({ t: "hb", from: "b", inc: 3, seq: 2 }, 2); // its seq 1 and 2 were lost
  n.tick(60);
  assert.equal(n.stats.flushes, 1);
});

Deno.test("NodeCore flushes once when it first hears a peer that has broadcast before", () => {
  const n = node();
  write(n, 1, "ev:k", "v", 1, 0);
  n.onMessage({ t: "hb", from: "fresh", inc: 5, seq: 0 }, 1); // nothing missed
  assert.equal(n.hit("ev:k", 2)?.value, "v");
  n.onMessage({ t: "inv", from: "late", inc: 5, seq: 1, key: "other", version: 1 }, 3); // its first
  assert.equal(n.hit("ev:k", 4)?.value, "v");
  n.onMessage({ t: "hb", from: "old", inc: 9, seq: 7 }, 5); // seven broadcasts we never saw
  assert.equal(n.hit("ev:k", 6), undefined);
  assert.equal(n.stats.flushes, 1);
});
