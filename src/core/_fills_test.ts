/** The read path (`_fills.ts`): single flight, the stale-fill guard, read deadlines. */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import {
  storeRead as read,
  testNode as node,
  writeThrough as write,
} from "../../test/_node_core.ts";
import { NodeCore } from "./node.ts";
import { WarpError } from "./errors.ts";

Deno.test("NodeCore discards a fill that raced an invalidation, then rereads (the stale fill)", () => {
  const n = node();
  n.get(1, "ev:k", 0);
  const first = only(n.takeEffects(), "store-get");
  // Another node writes version 2 and its invalidation arrives before our read returns.
  n.onMessage({ t: "inv", from: "b", inc: 1, seq: 1, key: "ev:k", version: 2 }, 5);
  n.onStoreRead(first.io, read("old", 1), 10);
  const retry = only(n.takeEffects(), "store-get");
  assert.equal(n.stats.staleFillsDiscarded, 1);
  assert.equal(n.inspect("ev:k"), undefined, "the old value must not be cached");
  n.onStoreRead(retry.io, read("new", 2), 12);
  const answer = only(n.takeEffects(), "resolve");
  assert.deepEqual([answer.op, answer.result.value, answer.result.version], [1, "new", 2]);
  assert.equal(n.hit("ev:k", 13)?.value, "new");
});

Deno.test("NodeCore does not cache a fill that raced a drop, but answers it", () => {
  const n = node();
  n.get(1, "ev:k", 0);
  const io = only(n.takeEffects(), "store-get").io;
  n.onMessage({ t: "drop", from: "b", inc: 1, seq: 1, key: "ev:k" }, 1);
  n.onStoreRead(io, read("v", 1), 2);
  assert.equal(only(n.takeEffects(), "resolve").result.value, "v");
  assert.equal(n.inspect("ev:k"), undefined);
});

Deno.test("NodeCore never lets a fill older than a local write replace it", () => {
  const n = node();
  n.get(1, "ev:k", 0);
  const fillIo = only(n.takeEffects(), "store-get").io;
  write(n, 2, "ev:k", "mine", 5, 1);
  n.onStoreRead(fillIo, read("older", 4), 2);
  only(n.takeEffects(), "store-get"); // discarded and reread
  assert.equal(n.hit("ev:k", 3)?.value, "mine");
});

Deno.test("NodeCore rereads a fill slower than maxStaleness instead of serving it", () => {
  const n = node();
  n.get(1, "ev:k", 0);
  const io = only(n.takeEffects(), "store-get").io;
  n.onStoreRead(io, read("v", 1), 600);
  only(n.takeEffects(), "store-get");
});

Deno.test("NodeCore makes one store read for concurrent misses and gives an error to every waiter", () => {
  const n = node("a", { waitersMax: 2 });
  n.get(1, "ev:k", 0);
  n.get(2, "ev:k", 0);
  n.get(3, "ev:k", 0);
  const effects = n.takeEffects();
  const io = only(effects, "store-get").io;
  assert.equal(only(effects, "reject").error.code, "LIMIT_EXCEEDED");
  n.onStoreRead(io, { ok: false, error: new WarpError("STORE_ERROR", "down") }, 1);
  const rejects = n.takeEffects().filter((e) => e.type === "reject");
  assert.deepEqual(rejects.map((e) => e.type === "reject" && e.op).sort(), [1, 2]);
});

Deno.test("NodeCore times a read out and ignores the late store answer", () => {
  const n = new NodeCore({ nodeId: "a", incarnation: 1 });
  n.register("k", { mode: "strong-local", readTimeoutMs: 100 });
  n.get(1, "k", 0);
  const io = only(n.takeEffects(), "store-get").io;
  n.tick(100);
  assert.equal(only(n.takeEffects(), "reject").error.code, "TIMEOUT");
  n.onStoreRead(io, read("v", 1), 150);
  none(n.takeEffects(), "resolve");
  assert.equal(n.hit("k", 151)?.value, "v", "the late value is still a valid fill");
});
