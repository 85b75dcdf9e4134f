/** Namespace clears in the core (`_namespaces.ts`): removal, voided fills, echoes, sessions. */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import {
  member,
  serveSessions,
  sessionNode,
  storeRead,
  testNode,
  writeThrough as write,
} from "../../test/_node_core.ts";
import type { SessionsCell } from "../../test/_node_core.ts";
import type { Effect } from "./effects.ts";
import type { NodeCore } from "./node.ts";

function clr(from: string, seq: number, ns: string, epoch: number) {
  return { t: "clr", from, inc: 1, seq, ns, epoch } as const;
}

Deno.test("NodeCore.clear() removes the namespace's entries, nested ones included, and nothing else", () => {
  const n = testNode();
  n.register("evx:*", { mode: "eventual-distributed", maxStalenessMs: 500 });
  write(n, 1, "ev:a", "a", 1, 0);
  write(n, 2, "ev:sub:b", "b", 1, 0);
  write(n, 3, "evx:c", "c", 1, 0);
  write(n, 4, "local:d", "d", 1, 0);
  n.clear(5, "ev", 10);
  const effects = n.takeEffects();
  assert.equal(only(effects, "resolve").result.version, 1, "the namespace's epoch here");
  const sent = only(effects, "broadcast").message;
  assert.deepEqual({ ...sent, seq: 0 }, { ...clr("a", 0, "ev", 1) });
  assert.equal(n.hit("ev:a", 11), undefined);
  assert.equal(n.hit("ev:sub:b", 11), undefined);
  assert.equal(n.hit("evx:c", 11)?.value, "c", "ev is not a prefix of evx's keys");
  assert.equal(n.hit("local:d", 11)?.value, "d");
  // Its own echo is not applied again; a peer's clear is.
  n.onMessage(sent, 12);
  assert.equal(n.namespaceEpoch("ev"), 1);
  write(n, 6, "local:e", "e", 2, 13);
  n.onMessage(clr("b", 1, "local", 4), 14);
  assert.equal(n.namespaceEpoch("local"), 1, "the receiver counts its own epoch");
  assert.equal(n.hit("local:e", 15), undefined);
  assert.equal(n.stats.clears, 2);
});

Deno.test("NodeCore.clear() voids a store fill in flight: it answers its reader but caches nothing (E2)", () => {
  const n = testNode();
  n.get(1, "ev:k", 0);
  const get = only(n.takeEffects(), "store-get");
  n.onMessage(clr("b", 1, "ev", 1), 5);
  n.onStoreRead(get.io, storeRead("old", 1), 10);
  assert.equal(only(n.takeEffects(), "resolve").result.value, "old");
  assert.equal(n.hit("ev:k", 11), undefined, "read before the clear: not cached");
  assert.equal(n.stats.fillsNotCached, 1);
});

Deno.test("NodeCore.clear() refuses a namespace a strong-distributed key may live in, and a bad name", () => {
  const n = testNode();
  write(n, 1, "local:a", "a", 1, 0);
  n.clear(2, "st", 1);
  assert.equal(only(n.takeEffects(), "reject").error.code, "NOT_SUPPORTED");
  n.register("*", { mode: "strong-distributed" });
  n.clear(3, "local", 2);
  assert.equal(only(n.takeEffects(), "reject").error.code, "NOT_SUPPORTED", "* may reach it");
  assert.equal(n.hit("local:a", 3)?.value, "a", "nothing was cleared");
  for (const bad of ["", "a*", "a:", "a\u0000"]) assert.throws(() => n.clear(4, bad, 3), TypeError);
  assert.throws(() => n.clear(5, "local", 3, 0), RangeError);
});

/** Runs `a`'s timers at `nowMs`, serving its sessions effects from `cell`; returns the rest. */
function tickOn(a: NodeCore, cell: SessionsCell, nowMs: number): Effect[] {
  a.tick(nowMs);
  return serveSessions(a, cell, a.takeEffects(), nowMs);
}

Deno.test("NodeCore.clear() under sessions completes once the node is an active member, and broadcasts its clr again then", () => {
  const a = sessionNode("a");
  const cell = { record: { members: [member("b", { after: 3 })] }, revision: 5 };
  serveSessions(a, cell, a.takeEffects(), 0);
  const joinRevision = cell.revision;
  write(a, 1, "ev:k", "v", 1, 50);
  a.takeEffects();
  a.clear(2, "ev", 100);
  const first = a.takeEffects();
  none(first, "resolve");
  assert.equal(only(first, "broadcast").message.t, "clr");
  assert.equal(a.hit("ev:k", 101), undefined, "applied here at once");
  cell.record = { members: cell.record.members.map((m) => ({ ...m, after: joinRevision })) };
  cell.revision++;
  const answered = tickOn(a, cell, 500);
  const resolved = answered.flatMap((e) => e.type === "resolve" ? [e.op] : []);
  assert.deepEqual(resolved, [1, 2], "the held write, then the clear");
  const again = answered.filter((e) => e.type === "broadcast" && e.message.t === "clr");
  assert.equal(again.length, 1, "sent again as it completes");
});
