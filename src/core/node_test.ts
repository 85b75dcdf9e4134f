import assert from "node:assert/strict";
import { only } from "../../test/_effects.ts";
import fc from "fast-check";
import { NodeCore } from "./node.ts";
import type { Effect, HolderRecord } from "./effects.ts";
import { WarpError } from "./errors.ts";

type EffectOf<K extends Effect["type"]> = Extract<Effect, { type: K }>;

function none(effects: Effect[], type: Effect["type"]): void {
  assert.equal(effects.filter((e) => e.type === type).length, 0, `unexpected ${type}`);
}

function node(
  id = "a",
  options: Partial<ConstructorParameters<typeof NodeCore>[0]> = {},
): NodeCore {
  const n = new NodeCore({ nodeId: id, incarnation: 1, maxDriftPpm: 1000, ...options });
  n.register("local:*", { mode: "strong-local", ttlMs: 1000 });
  n.register("ev:*", { mode: "eventual-distributed", ttlMs: 60_000, maxStalenessMs: 500 });
  n.register("st:*", {
    mode: "strong-distributed",
    ttlMs: 60_000,
    leaseMs: 1000,
    writeTimeoutMs: 3000,
  });
  n.tick(0);
  n.takeEffects();
  return n;
}

const value = (v: string) => ({ value: v, payload: v, sizeBytes: v.length });
const read = (v: string, version: number) => ({
  ok: true as const,
  found: true,
  value: v,
  version,
  sizeBytes: v.length,
});

/** Writes through a local or eventual key, answering the store write with `version`. */
function write(
  n: NodeCore,
  op: number,
  key: string,
  v: string,
  version: number,
  now: number,
): Effect[] {
  n.set(op, key, value(v), now);
  const w = only(n.takeEffects(), "store-write");
  n.onStoreWrite(w.io, { ok: true, version }, now);
  return n.takeEffects();
}

Deno.test("NodeCore.hit() serves a strong-local value until its TTL, then misses", () => {
  const n = node();
  const effects = write(n, 1, "local:1", "x", 1, 100);
  assert.equal(only(effects, "resolve").result.version, 1);
  none(effects, "broadcast");
  assert.equal(n.hit("local:1", 1099)?.value, "x");
  assert.equal(n.hit("local:1", 1100), undefined);
});

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

Deno.test("NodeCore rereads a fill slower than maxStaleness instead of serving it", () => {
  const n = node();
  n.get(1, "ev:k", 0);
  const io = only(n.takeEffects(), "store-get").io;
  n.onStoreRead(io, read("v", 1), 600);
  only(n.takeEffects(), "store-get");
});

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

Deno.test("NodeCore rejects an unregistered key with UNREGISTERED_KEY naming it", () => {
  const n = node();
  n.get(1, "nope:1", 0);
  const reject = only(n.takeEffects(), "reject");
  assert.equal(reject.error.code, "UNREGISTERED_KEY");
  assert.match(reject.error.message, /nope:1/);
});

Deno.test("NodeCore drops and counts malformed bus messages", () => {
  const n = node();
  for (
    const bad of [null, 42, {}, { t: "inv", from: "b", inc: 1, seq: 0, key: "k", version: 1 }, {
      t: "zz",
      from: "b",
      inc: 1,
    }]
  ) {
    n.onMessage(bad, 0);
  }
  assert.equal(n.stats.messagesDropped, 5);
  assert.equal(n.stats.messagesReceived, 0);
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

// ------------------------------------------------------------------ strong-distributed

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

Deno.test("NodeCore L1 respects entry and byte bounds under any sequence of writes", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 400 })), {
        maxLength: 200,
      }),
      (writes) => {
        const n = new NodeCore({ nodeId: "a", incarnation: 1, entriesMax: 8, bytesMax: 2000 });
        n.register("*", { mode: "strong-local" });
        let version = 0;
        for (const [k, size] of writes) {
          n.set(++version, `k${k}`, { value: k, payload: k, sizeBytes: size }, version);
          const w = n.takeEffects().find((e) => e.type === "store-write");
          if (w?.type !== "store-write") throw new Error("no store write");
          n.onStoreWrite(w.io, { ok: true, version }, version);
          n.takeEffects();
          assert.ok(n.l1Size <= 8);
          assert.ok(n.l1Bytes <= 2000);
        }
      },
    ),
  );
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

Deno.test("NodeCore tracks a restarted peer even when its incarnation is lower", () => {
  const n = node("a", { gapTimeoutMs: 50 });
  write(n, 1, "ev:k", "v", 1, 0);
  n.onMessage({ t: "hb", from: "b", inc: 9, seq: 0 }, 0);
  n.onMessage({ t: "hb", from: "b", inc: 3, seq: 0 }, 1); // b restarted, clock went back
  n.onMessage({ t: "hb", from: "b", inc: 3, seq: 2 }, 2); // its seq 1 and 2 were lost
  n.tick(60);
  assert.equal(n.stats.flushes, 1);
});

Deno.test("holderRecordKey() keeps coordinator keys short for long keys", async () => {
  const { holderRecordKey } = await import("./node.ts");
  const long = "k".repeat(1024);
  assert.ok(holderRecordKey(long).length < 40);
  assert.notEqual(holderRecordKey(long), holderRecordKey("k".repeat(1023) + "j"));
  assert.equal(holderRecordKey("user:1"), "strong/user:1");
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
