/** The eventual protocol (`_eventual.ts`): invalidations, the staleness bound, failed writes. */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import {
  testNode as node,
  writeInput as value,
  writeThrough as write,
} from "../../test/_node_core.ts";
import { WarpError } from "./errors.ts";

Deno.test("NodeCore ignores its own invalidation echo and duplicates", () => {
  const n = node();
  const effects = write(n, 1, "ev:k", "v", 3, 0);
  const inv = only(effects, "broadcast").message;
  n.onMessage(inv, 1);
  n.onMessage({ t: "inv", from: "b", inc: 1, seq: 1, key: "ev:k", version: 3 }, 1);
  n.onMessage({ t: "inv", from: "b", inc: 1, seq: 1, key: "ev:k", version: 3 }, 1);
  assert.equal(n.hit("ev:k", 2)?.value, "v");
  n.onMessage({ t: "inv", from: "b", inc: 1, seq: 2, key: "ev:k", version: 4 }, 3);
  assert.equal(n.hit("ev:k", 4), undefined);
});

Deno.test("NodeCore serves an eventual entry no longer than maxStaleness shortened by drift", () => {
  const n = node();
  write(n, 1, "ev:k", "v", 1, 1000);
  // 500 ms * (1 - 0.001) = 499.5 ms after the write was asked.
  assert.equal(n.hit("ev:k", 1499)?.value, "v");
  assert.equal(n.hit("ev:k", 1499.5), undefined);
});

Deno.test("NodeCore leaves L1 untouched and reports the error when a store write fails", () => {
  const n = node();
  write(n, 1, "ev:k", "old", 1, 0);
  n.set(2, "ev:k", value("new"), 1);
  const w = only(n.takeEffects(), "store-write");
  n.onStoreWrite(w.io, { ok: false, error: new WarpError("STORE_ERROR", "disk full") }, 2);
  const effects = n.takeEffects();
  assert.equal(only(effects, "reject").error.code, "STORE_ERROR");
  none(effects, "broadcast");
  assert.equal(n.hit("ev:k", 3)?.value, "old");
});

Deno.test("NodeCore takes a committed write without a store write: it invalidates and installs nothing", () => {
  const n = node();
  write(n, 1, "ev:k", "old", 1, 0);
  n.set(2, "ev:k", { value: undefined, payload: undefined, sizeBytes: 0, committedVersion: 5 }, 1);
  const effects = n.takeEffects();
  none(effects, "store-write");
  assert.equal(only(effects, "broadcast").message.t, "inv");
  assert.equal(only(effects, "resolve").result.version, 5);
  assert.equal(n.hit("ev:k", 2), undefined, "the old entry is gone and nothing new is cached");
  assert.throws(
    () => n.set(3, "st:k", { value: 1, payload: 1, sizeBytes: 1, committedVersion: 2 }, 2),
    TypeError,
  );
  assert.throws(
    () => n.set(4, "ev:k", { value: 1, payload: 1, sizeBytes: 1, committedVersion: 0 }, 2),
    TypeError,
  );
});
