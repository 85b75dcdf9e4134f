/** The strong protocol (`_strong.ts`): holder registration, revocation, the write slot. */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import { storeRead as read, testNode as node, writeInput as value } from "../../test/_node_core.ts";
import { NodeCore } from "./node.ts";
import type { Effect, HolderRecord } from "./effects.ts";
import { WarpError } from "./errors.ts";

type EffectOf<K extends Effect["type"]> = Extract<Effect, { type: K }>;

/** Drives a strong miss on `n` through registration to a cached value. */
function strongFill(
  n: NodeCore,
  op: number,
  key: string,
  record: HolderRecord | undefined,
  revision: number,
  now: number,
  v: string,
  version: number,
): void {
  n.get(op, key, now);
  const get = only(n.takeEffects(), "coord-get");
  assert.equal(get.key, `strong/${key}`);
  n.onCoordRead(get.io, { ok: true, record, revision }, now);
  const put = only(n.takeEffects(), "coord-put");
  assert.ok((put.record as HolderRecord).holders.includes(n.nodeId));
  n.onCoordWrite(put.io, { ok: true, revision: revision + 1 }, now);
  const storeGet = only(n.takeEffects(), "store-get");
  n.onStoreRead(storeGet.io, read(v, version), now);
  assert.equal(only(n.takeEffects(), "resolve").result.value, v);
}

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
  a.onMessage({ t: "ack", from: "b", inc: 1, id: toB.message.id, key: "st:k" }, 1);
  a.tick(1200); // c never answers: its lease is waited out
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
