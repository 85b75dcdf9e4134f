/**
 * Fail-safe and soft timeouts (`_failsafe.ts`, their use in `_fills.ts`): stale answers
 * are flagged (F1), never of a removed value (F2), never by default (F3), throttled after
 * a failure; a load that outlives its soft timeout installs in the background.
 */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import {
  loaded,
  loaderNode,
  oneKeyNode,
  readThrough,
  storeRead,
  strongFill,
  testNode,
  writeThrough,
} from "../../test/_node_core.ts";
import type { Effect, OpResult } from "./effects.ts";
import { WarpError } from "./errors.ts";
import type { NodeCore } from "./node.ts";
import type { KeyOptions } from "./registry.ts";

const SAFE = { failSafeMaxMs: 10_000, failSafeThrottleMs: 200 } as const;

function storeDown() {
  return { ok: false as const, error: new WarpError("STORE_ERROR", "connection refused") };
}

function loaderDown() {
  return { ok: false as const, error: new WarpError("LOADER_ERROR", "source down") };
}

/** A node with `k` strong-local, TTL 100 ms, store-backed, with `options`. */
function storeNode(options: Partial<KeyOptions> = {}): NodeCore {
  return oneKeyNode("k", { ttlMs: 100, ...options });
}

/** The one answer among `effects`: a resolve's result, or a reject's error code. */
function answer(effects: readonly Effect[]): OpResult | string {
  const settled = effects.filter((e) => e.type === "resolve" || e.type === "reject");
  assert.equal(settled.length, 1, `expected one answer, got ${settled.length}`);
  const e = settled[0]!;
  return e.type === "resolve" ? e.result : e.type === "reject" ? e.error.code : "";
}

/** `n` misses `key` as op `op` at `nowMs` and its store read fails. */
function failingRead(n: NodeCore, op: number, key: string, nowMs: number): Effect[] {
  n.get(op, key, nowMs);
  n.onStoreRead(only(n.takeEffects(), "store-get").io, storeDown(), nowMs);
  return n.takeEffects();
}

Deno.test("NodeCore answers a failed store read with the expired value, flagged stale, when fail-safe is on (F1)", () => {
  const n = storeNode(SAFE);
  readThrough(n, 1, "k", "v1", 3, 0);
  const stale = answer(failingRead(n, 2, "k", 150)) as OpResult;
  assert.deepEqual(
    [stale.value, stale.version, stale.source, stale.stale, stale.freshForMs],
    ["v1", 3, "fallback", true, 0],
  );
  assert.equal(n.stats.staleAnswers, 1);
  assert.equal(n.hit("k", 151), undefined, "a stale answer does not make the entry fresh");
});

Deno.test("NodeCore never answers stale unless asked: fail-safe is off by default, in every mode (F3)", () => {
  const n = testNode();
  readThrough(n, 1, "local:k", "v", 1, 0);
  assert.equal(answer(failingRead(n, 2, "local:k", 2000)), "STORE_ERROR");
  // A strong-distributed key answers stale only when its caller (or registration) asks.
  const s = testNode("b");
  strongFill(s, 1, "st:k", undefined, 0, 0, "v", 1); // its lease ends at 999
  for (const [op, options] of [[2, undefined], [3, { failSafeMaxMs: 60_000 }]] as const) {
    s.get(op, "st:k", 1500 + op, options);
    const record = { holders: ["b"], pending: undefined, version: 1 };
    s.onCoordRead(only(s.takeEffects(), "coord-get").io, { ok: true, record, revision: 1 }, 1500);
    // Listed, and reads are current (no staleness bound): registered without a write.
    s.onStoreRead(only(s.takeEffects(), "store-get").io, storeDown(), 1500);
    const result = answer(s.takeEffects());
    if (options === undefined) assert.equal(result, "STORE_ERROR");
    else assert.deepEqual([(result as OpResult).value, (result as OpResult).stale], ["v", true]);
  }
});

Deno.test("NodeCore serves fail-safe values only within failSafeMaxMs past their freshness", () => {
  const n = storeNode({ failSafeMaxMs: 500 });
  readThrough(n, 1, "k", "v1", 1, 0); // fresh until 100
  assert.equal((answer(failingRead(n, 2, "k", 599)) as OpResult).value, "v1");
  assert.equal(answer(failingRead(n, 3, "k", 600)), "STORE_ERROR");
});

Deno.test("NodeCore never serves a removed value as fail-safe fallback, in any way it was removed (F2)", () => {
  const removals: [string, (n: NodeCore) => void][] = [
    ["invalidate", (n) => n.invalidate(90, "ev:k", 50)],
    ["peer drop", (n) => n.onMessage({ t: "drop", from: "b", inc: 1, seq: 1, key: "ev:k" }, 50)],
    [
      "newer version seen",
      (n) => n.onMessage({ t: "inv", from: "b", inc: 1, seq: 1, key: "ev:k", version: 2 }, 50),
    ],
    ["sequence gap flush", (n) => {
      n.onMessage({ t: "hb", from: "b", inc: 1, seq: 0, round: 1, echo: [] }, 40);
      n.onMessage({ t: "hb", from: "b", inc: 1, seq: 2, round: 2, echo: [] }, 50);
      n.tick(50 + 500); // the gap timeout: flush
    }],
  ];
  for (const [how, remove] of removals) {
    const n = testNode("a");
    n.register("safe:*", { mode: "eventual-distributed", maxStalenessMs: 500, ...SAFE });
    readThrough(n, 1, "ev:k", "v1", 1, 0);
    remove(n);
    n.takeEffects();
    n.get(2, "ev:k", 600, { failSafeMaxMs: 60_000 });
    n.onStoreRead(only(n.takeEffects(), "store-get").io, storeDown(), 601);
    assert.equal(answer(n.takeEffects()), "STORE_ERROR", how);
  }
});

Deno.test("NodeCore never falls back on a value a local write replaced or deleted (F2, E2)", () => {
  const n = testNode("a");
  readThrough(n, 1, "ev:k", "v1", 1, 0);
  writeThrough(n, 2, "ev:k", "v2", 2, 10);
  n.delete(3, "ev:k", 20);
  n.onStoreWrite(only(n.takeEffects(), "store-write").io, { ok: true, version: 3 }, 21);
  n.takeEffects();
  const stale = answer(failingRead(n, 4, "ev:k", 2000)) as string | OpResult;
  // fail-safe is off on ev:*: STORE_ERROR; with it on, the newest state is the deletion
  assert.equal(stale, "STORE_ERROR");
  n.get(5, "ev:k", 2001, { failSafeMaxMs: 60_000 });
  n.onStoreRead(only(n.takeEffects(), "store-get").io, storeDown(), 2002);
  const result = answer(n.takeEffects()) as OpResult;
  assert.deepEqual([result.found, result.version, result.stale], [false, 3, true]);
});

Deno.test("NodeCore with the fallbackServesRemoved canary serves an invalidated value as fallback (BentoCache #71, what F2 forbids)", () => {
  const n = testNode("a", { canary: { fallbackServesRemoved: true } });
  readThrough(n, 1, "ev:k", "v1", 1, 0);
  n.invalidate(2, "ev:k", 10);
  n.takeEffects();
  assert.equal(n.hit("ev:k", 11), undefined, "not served as fresh");
  n.get(3, "ev:k", 12, { failSafeMaxMs: 60_000 });
  n.onStoreRead(only(n.takeEffects(), "store-get").io, storeDown(), 13);
  assert.equal((answer(n.takeEffects()) as OpResult).value, "v1");
});

Deno.test("NodeCore throttles retries after a failure fail-safe answered, then tries the store again", () => {
  const n = storeNode(SAFE); // throttle 200 ms
  readThrough(n, 1, "k", "v1", 1, 0);
  failingRead(n, 2, "k", 150);
  n.get(3, "k", 349);
  const throttled = n.takeEffects();
  none(throttled, "store-get");
  assert.equal((answer(throttled) as OpResult).source, "fallback");
  n.get(4, "k", 350);
  n.onStoreRead(only(n.takeEffects(), "store-get").io, storeRead("v2", 2), 351);
  assert.equal((answer(n.takeEffects()) as OpResult).value, "v2");
});

Deno.test("NodeCore answers a read past its deadline with the fail-safe value instead of TIMEOUT", () => {
  const n = storeNode({ ...SAFE, readTimeoutMs: 300, ttlMs: 1000 });
  readThrough(n, 1, "k", "v1", 1, 0);
  n.get(2, "k", 1200);
  const read = only(n.takeEffects(), "store-get");
  n.tick(1499);
  none(n.takeEffects(), "resolve");
  n.tick(1500);
  assert.equal((answer(n.takeEffects()) as OpResult).value, "v1");
  n.onStoreRead(read.io, storeRead("v2", 2), 1600);
  assert.equal(n.hit("k", 1601)?.value, "v2", "the late read still fills");
});

Deno.test("NodeCore answers a load past its soft timeout with the stale value, then installs the load in the background", () => {
  const n = loaderNode("a", { ...SAFE, softTimeoutMs: 50 });
  n.get(1, "lloc:k", 0);
  n.onLoad(only(n.takeEffects(), "load").io, loaded("v1"), 0);
  n.takeEffects();
  n.get(2, "lloc:k", 1500);
  const load = only(n.takeEffects(), "load");
  assert.deepEqual(load.stale, { found: true, value: "v1" });
  n.tick(1549);
  none(n.takeEffects(), "resolve");
  n.tick(1550);
  const early = answer(n.takeEffects()) as OpResult;
  assert.deepEqual([early.value, early.stale, early.source], ["v1", true, "fallback"]);
  n.onLoad(load.io, loaded("v2"), 1700);
  none(n.takeEffects(), "resolve"); // nobody waits any more
  assert.equal(n.hit("lloc:k", 1701)?.value, "v2", "the background load installed");
  assert.equal(n.hit("lloc:k", 2499)?.value, "v2", "its TTL runs from its start, 1500");
  assert.equal(n.hit("lloc:k", 2500), undefined);
});

Deno.test("NodeCore keeps a reader with nothing to fall back on waiting past its soft timeout", () => {
  const n = loaderNode("a", { ...SAFE, softTimeoutMs: 50 });
  n.get(1, "lloc:k", 0);
  const load = only(n.takeEffects(), "load");
  n.tick(100);
  none(n.takeEffects(), "resolve");
  n.onLoad(load.io, loaded("v"), 120);
  assert.deepEqual((answer(n.takeEffects()) as OpResult).stale, false);
});

Deno.test("NodeCore answers a loader failure or hard timeout with the fail-safe value", () => {
  const n = loaderNode("a", { ...SAFE, hardTimeoutMs: 400 });
  n.get(1, "lloc:k", 0);
  n.onLoad(only(n.takeEffects(), "load").io, loaded("v1"), 0);
  n.takeEffects();
  n.get(2, "lloc:k", 2000);
  n.onLoad(only(n.takeEffects(), "load").io, loaderDown(), 2001);
  assert.equal((answer(n.takeEffects()) as OpResult).value, "v1");
  n.get(3, "lloc:k", 2300); // past the throttle
  only(n.takeEffects(), "load");
  n.tick(2700);
  const effects = n.takeEffects();
  only(effects, "load-abort");
  assert.equal((answer(effects) as OpResult).stale, true);
});

Deno.test("NodeCore never falls back on a loader-backed value its invalidation removed (F2)", () => {
  const n = loaderNode("a", SAFE);
  n.get(1, "lev:k", 0);
  n.onLoad(only(n.takeEffects(), "load").io, loaded("v1"), 0);
  n.invalidate(2, "lev:k", 10);
  n.takeEffects();
  n.get(3, "lev:k", 20);
  const load = only(n.takeEffects(), "load");
  assert.equal(load.stale, undefined, "the loader is not even shown the removed value");
  n.onLoad(load.io, loaderDown(), 30);
  assert.equal(answer(n.takeEffects()), "LOADER_ERROR");
});
