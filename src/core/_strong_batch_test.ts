/**
 * The strong side of a transaction (`_strong_batch.ts`): slots claimed in key order,
 * holders revoked and versions pinned before the driver commits; released at the new
 * versions after it, without one on a failure, left claimed on an unknown outcome.
 */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import { strongFill, testNode as node } from "../../test/_node_core.ts";
import type { NodeCore } from "./node.ts";
import type { HolderRecord } from "./effects.ts";

/** Answers `a`'s coordinator read of `key` with `record` at `revision`, then its claim. */
function claim(
  a: NodeCore,
  key: string,
  record: HolderRecord | undefined,
  revision: number,
  now: number,
): HolderRecord {
  const get = only(a.takeEffects(), "coord-get");
  assert.equal(get.key, `strong/${key}`);
  a.onCoordRead(get.io, { ok: true, record, revision }, now);
  const put = only(a.takeEffects(), "coord-put");
  assert.equal(put.key, `strong/${key}`);
  assert.equal(put.revision, record === undefined ? undefined : revision);
  a.onCoordWrite(put.io, { ok: true, revision: revision + 1 }, now);
  return put.record as HolderRecord;
}

Deno.test("NodeCore.prepareTransaction() claims in key order, revokes holders, pins versions; finishTransaction() releases at the committed versions and caches nothing", () => {
  const a = node("a");
  const b = node("b");
  strongFill(b, 1, "st:x", undefined, 0, 0, "x1", 4);
  a.prepareTransaction(7, [{ key: "st:y" }, { key: "st:x" }], 10);
  // st:x first (key order), whatever the caller's order; st:y only once st:x is claimed.
  const claimedX = claim(a, "st:x", { holders: ["b"], pending: undefined, version: 4 }, 20, 11);
  assert.ok(claimedX.pending?.startsWith("a/1/"));
  const effects = a.takeEffects();
  const revoke = only(effects.filter((e) => e.type === "send"), "send");
  assert.equal(revoke.to, "b");
  const getY = only(effects.filter((e) => e.type === "coord-get"), "coord-get");
  assert.equal(getY.key, "strong/st:y");
  a.onCoordRead(getY.io, { ok: true, record: undefined, revision: 0 }, 12);
  const putY = only(a.takeEffects(), "coord-put");
  a.onCoordWrite(putY.io, { ok: true, revision: 1 }, 13);
  // st:y has no record: its version is learnt from the store and pinned in the record.
  const readY = only(a.takeEffects(), "store-get");
  a.onStoreRead(
    readY.io,
    { ok: true, found: false, value: undefined, version: 0, sizeBytes: 0 },
    14,
  );
  const pinY = only(a.takeEffects(), "coord-put");
  assert.equal((pinY.record as HolderRecord).version, 0);
  a.onCoordWrite(pinY.io, { ok: true, revision: 2 }, 15);
  none(a.takeEffects(), "resolve"); // st:x still waits for b
  assert.equal(b.hit("st:x", 16)?.value, "x1");
  b.onMessage(revoke.message, 16);
  assert.equal(b.hit("st:x", 17), undefined);
  a.onMessage(only(b.takeEffects(), "send").message, 17);
  const prepared = only(a.takeEffects(), "resolve");
  assert.equal(prepared.op, 7);
  assert.deepEqual(prepared.result.value, [0, 4]); // caller's order: st:y, st:x
  // The driver commits; the slots are released at the new versions, nothing installed.
  a.finishTransaction(7, { kind: "committed", versions: [1, 5] }, 20);
  const releases = a.takeEffects().filter((e) => e.type === "coord-put");
  assert.deepEqual(
    releases.map((e) => [e.key, e.record]),
    [
      ["strong/st:y", { holders: [], pending: undefined, version: 1 }],
      ["strong/st:x", { holders: ["b"], pending: undefined, version: 5 }],
    ],
  );
  for (const [i, e] of releases.entries()) {
    if (e.type === "coord-put") a.onCoordWrite(e.io, { ok: true, revision: 30 + i }, 21);
  }
  assert.equal(a.inspect("st:x"), undefined);
  assert.equal(a.inspect("st:y"), undefined);
  assert.throws(() => a.finishTransaction(7, { kind: "failed" }, 22), TypeError);
});

Deno.test("NodeCore.prepareTransaction() with an expectedVersion other than the record's rejects STORE_CONFLICT and gives the slot back, revoking no one", () => {
  const a = node("a");
  a.prepareTransaction(1, [{ key: "st:x", expectedVersion: 3 }], 0);
  claim(a, "st:x", { holders: ["b", "a"], pending: undefined, version: 4 }, 8, 1);
  const effects = a.takeEffects();
  assert.equal(only(effects, "reject").error.code, "STORE_CONFLICT");
  none(effects, "send");
  const back = only(effects, "coord-put");
  assert.deepEqual(back.record, { holders: ["b", "a"], pending: undefined, version: undefined });
  assert.equal(back.revision, 9);
});

Deno.test("NodeCore.prepareTransaction() whose pinned version differs from the expected one (learnt from the store) rejects STORE_CONFLICT", () => {
  const a = node("a");
  a.prepareTransaction(1, [{ key: "st:x", expectedVersion: 3 }], 0);
  claim(a, "st:x", undefined, 0, 1);
  const read = only(a.takeEffects(), "store-get");
  a.onStoreRead(read.io, { ok: true, found: true, value: "v", version: 5, sizeBytes: 1 }, 2);
  const pin = only(a.takeEffects(), "coord-put");
  a.onCoordWrite(pin.io, { ok: true, revision: 2 }, 3);
  const effects = a.takeEffects();
  assert.equal(only(effects, "reject").error.code, "STORE_CONFLICT");
  assert.deepEqual(only(effects, "coord-put").record, {
    holders: [],
    pending: undefined,
    version: undefined,
  });
});

Deno.test("NodeCore.finishTransaction() after a failed commit releases without a version; after an unknown one leaves the slot claimed for a takeover", () => {
  const a = node("a");
  a.prepareTransaction(1, [{ key: "st:x" }], 0);
  claim(a, "st:x", { holders: [], pending: undefined, version: 4 }, 8, 1);
  assert.deepEqual(only(a.takeEffects(), "resolve").result.value, [4]);
  a.finishTransaction(1, { kind: "failed" }, 2);
  const back = only(a.takeEffects(), "coord-put");
  assert.deepEqual(back.record, { holders: [], pending: undefined, version: undefined });
  a.onCoordWrite(back.io, { ok: true, revision: 10 }, 3);

  a.prepareTransaction(2, [{ key: "st:x" }], 4);
  const claimed = claim(a, "st:x", { holders: [], pending: undefined, version: 4 }, 10, 5);
  assert.deepEqual(only(a.takeEffects(), "resolve").result.value, [4]);
  a.finishTransaction(2, { kind: "unknown" }, 6);
  none(a.takeEffects(), "coord-put");
  // The next write of the key finds the slot still claimed: it waits, then takes over,
  // writing at the pinned version 4, which fences the transaction's commit.
  a.set(3, "st:x", { value: "v", payload: "v", sizeBytes: 1 }, 7);
  let now = 7;
  let takeover: HolderRecord | undefined;
  for (let i = 0; i < 400 && takeover === undefined; i++) {
    for (const e of a.takeEffects()) {
      if (e.type === "coord-get") {
        a.onCoordRead(e.io, { ok: true, record: claimed, revision: 11 }, now);
      }
      if (e.type === "coord-put") takeover = e.record as HolderRecord;
    }
    now += 10;
    a.tick(now);
  }
  assert.ok(takeover !== undefined && now >= 1500, `took over at ${now} ms`);
  assert.equal(takeover.version, 4);
});

Deno.test("NodeCore.prepareTransaction() refuses keys that are not strong-distributed, repeated keys and a bad expectedVersion", () => {
  const a = node("a");
  assert.throws(() => a.prepareTransaction(1, [{ key: "ev:1" }], 0), TypeError);
  assert.throws(() => a.prepareTransaction(1, [{ key: "st:1" }, { key: "st:1" }], 0), TypeError);
  assert.throws(
    () => a.prepareTransaction(1, [{ key: "st:1", expectedVersion: -1 }], 0),
    RangeError,
  );
  assert.throws(() => a.prepareTransaction(1, [], 0), RangeError);
  assert.throws(() => a.finishTransaction(9, { kind: "unknown" }, 0), TypeError);
  assert.equal(a.opsInFlight, 0);
});

Deno.test("NodeCore.prepareTransaction() that cannot claim in time rejects TIMEOUT and gives back what it claimed", () => {
  const a = node("a");
  a.prepareTransaction(1, [{ key: "st:a" }, { key: "st:b" }], 0);
  claim(a, "st:a", { holders: [], pending: undefined, version: 1 }, 3, 1);
  const getB = only(a.takeEffects().filter((e) => e.type === "coord-get"), "coord-get");
  assert.equal(getB.key, "strong/st:b");
  // st:b's record stays held by another writer: its claim backs off until the deadline.
  const held = { holders: [], pending: "z/1/1", version: 1 };
  let now = 1;
  let rejected;
  a.onCoordRead(getB.io, { ok: true, record: held, revision: 5 }, now);
  const puts: HolderRecord[] = [];
  for (let i = 0; i < 400 && rejected === undefined; i++) {
    now += 10;
    a.tick(now);
    for (const e of a.takeEffects()) {
      if (e.type === "coord-get") {
        a.onCoordRead(e.io, { ok: true, record: held, revision: 5 + i }, now);
      }
      if (e.type === "coord-put") puts.push(e.record as HolderRecord);
      if (e.type === "reject") rejected = e.error;
    }
  }
  assert.ok(rejected !== undefined && now <= 3100, `rejected at ${now} ms`);
  assert.match(rejected.code, /^(TIMEOUT|CONTENDED)$/);
  assert.deepEqual(puts, [{ holders: [], pending: undefined, version: undefined }]);
});
