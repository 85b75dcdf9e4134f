/**
 * Entry lifetimes beyond the modes' rules (`_tuning.ts`, used by `NodeCore.hit`):
 * refresh-ahead, TTL jitter, the sliding TTL and its hard maximum age, the
 * access-frequency TTL — and an entry without them keeping the fast path of before.
 */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import { loaded, oneKeyNode, readThrough, storeRead } from "../../test/_node_core.ts";
import { NodeCore } from "./node.ts";
import type { KeyOptions } from "./registry.ts";

/** A node with `k*` registered strong-local, store-backed, TTL 1000 ms, with `options`. */
function node(options: Partial<KeyOptions> = {}): NodeCore {
  return oneKeyNode("k*", { ttlMs: 1000, ...options });
}

Deno.test("NodeCore.hit() keeps the one-comparison fast path for an entry with no tuning", () => {
  const n = node();
  readThrough(n, 1, "k", "v", 1, 0);
  const entry = n.inspect("k")!;
  assert.equal(entry.tuning, undefined);
  assert.equal(entry.checkAtMs, entry.boundUntilMs);
});

Deno.test("NodeCore refreshes a hot entry once, in the background, at a jittered fraction of its TTL", () => {
  const n = node({ refreshAheadRatio: 0.5 });
  readThrough(n, 1, "k", "v1", 1, 0);
  const refreshAtMs = n.inspect("k")!.tuning!.refreshAtMs;
  assert.ok(refreshAtMs > 450 - 1e-9 && refreshAtMs <= 500, `refresh point ${refreshAtMs}`);
  assert.equal(n.hit("k", refreshAtMs - 0.1)?.value, "v1");
  assert.equal(n.effectsPending, false);
  assert.equal(n.hit("k", refreshAtMs)?.value, "v1", "the hit is served at once");
  assert.equal(n.effectsPending, true);
  const read = only(n.takeEffects(), "store-get");
  assert.equal(n.hit("k", refreshAtMs + 1)?.value, "v1");
  assert.equal(n.effectsPending, false, "one refresh per key at a time");
  n.get(2, "k", refreshAtMs + 2); // a miss on the key would join it, a hit does not wait
  assert.equal(only(n.takeEffects(), "resolve").result.source, "l1");
  n.onStoreRead(read.io, storeRead("v1", 1), 600); // unchanged: renewed from the refresh's ask
  assert.equal(n.inspect("k")!.freshUntilMs, refreshAtMs + 1000);
  assert.deepEqual([n.stats.refreshes, n.stats.misses], [1, 1], "only the first read missed");
});

Deno.test("NodeCore refreshes only entries that are hit: a cold entry simply expires", () => {
  const n = node({ refreshAheadRatio: 0.5 });
  readThrough(n, 1, "k", "v1", 1, 0);
  n.tick(999);
  none(n.takeEffects(), "store-get");
  assert.equal(n.hit("k", 1000), undefined);
  assert.equal(n.effectsPending, false);
});

Deno.test("NodeCore refreshes a loader-backed entry with a background load no caller waits on", () => {
  const n = new NodeCore({ nodeId: "a", incarnation: 1 });
  n.register("l:*", {
    mode: "strong-local",
    origin: "loader",
    ttlMs: 1000,
    refreshAheadRatio: 0.8,
  });
  n.get(1, "l:1", 0);
  n.onLoad(only(n.takeEffects(), "load").io, loaded("v1"), 0);
  n.takeEffects();
  n.hit("l:1", 800);
  const load = only(n.takeEffects(), "load");
  assert.deepEqual([load.op, load.stale], [undefined, { found: true, value: "v1" }]);
  n.onLoad(load.io, loaded("v2"), 810);
  assert.deepEqual(n.takeEffects(), []);
  assert.equal(n.hit("l:1", 1500)?.value, "v2");
});

Deno.test("NodeCore shortens each entry's TTL by a random fraction of at most ttlJitterRatio", () => {
  const n = node({ ttlJitterRatio: 0.2 });
  const lives: number[] = [];
  for (let i = 0; i < 50; i++) {
    readThrough(n, i + 1, `k${i}`, "v", 1, 0);
    lives.push(n.inspect(`k${i}`)!.freshUntilMs);
  }
  for (const life of lives) assert.ok(life > 800 && life <= 1000, `lifetime ${life}`);
  assert.ok(new Set(lives).size > 40, "the lifetimes differ");
  assert.equal(n.inspect("k0")!.tuning, undefined, "jitter alone needs no per-hit work");
});

Deno.test("NodeCore slides an entry's TTL with each hit, never past maxAgeMs from its read", () => {
  const n = node({ ttlMs: 100, sliding: true, maxAgeMs: 250 });
  readThrough(n, 1, "k", "v", 1, 0);
  assert.equal(n.hit("k", 90)?.value, "v");
  assert.equal(n.hit("k", 180)?.value, "v", "slid to 190 by the hit at 90");
  assert.equal(n.hit("k", 249)?.value, "v");
  assert.equal(n.hit("k", 250), undefined, "the hard maximum age");
  readThrough(n, 2, "k", "v", 1, 300);
  assert.equal(n.hit("k", 399)?.value, "v"); // slid to 499
  assert.equal(n.hit("k", 500), undefined, "no hit for longer than its TTL: expired");
});

Deno.test("NodeCore moves an entry's TTL with its hits between ttlMinMs and ttlMaxMs (access frequency)", () => {
  const n = node({ ttlMs: 300, ttlMinMs: 200, ttlMaxMs: 500, hotHitGapMs: 50, ttlStepMs: 100 });
  readThrough(n, 1, "k", "v", 1, 0);
  const entry = n.inspect("k")!;
  assert.equal(entry.freshUntilMs, 300);
  n.hit("k", 40); // hot: 400
  n.hit("k", 80); // hot: 500
  n.hit("k", 120); // hot: at most 500
  assert.equal(entry.freshUntilMs, 500);
  assert.equal(n.hit("k", 350)?.value, "v"); // cold: 400
  assert.equal(entry.freshUntilMs, 400);
  assert.equal(n.hit("k", 380)?.value, "v"); // hot again: 500
  assert.equal(entry.freshUntilMs, 500);
  assert.equal(n.hit("k", 499), undefined, "a cold hit shortens the TTL before it is served");
  assert.equal(entry.freshUntilMs, 400);
});

Deno.test("NodeCore's TTL rules never lift a mode's bound: a sliding eventual entry still ends at maxStalenessMs", () => {
  const n = new NodeCore({ nodeId: "a", incarnation: 1, maxDriftPpm: 0 });
  n.register("e:*", {
    mode: "eventual-distributed",
    maxStalenessMs: 200,
    ttlMs: 1000,
    sliding: true,
    maxAgeMs: 5000,
  });
  readThrough(n, 1, "e:1", "v", 1, 0);
  assert.equal(n.hit("e:1", 150)?.value, "v");
  assert.equal(n.hit("e:1", 199)?.value, "v");
  assert.equal(n.hit("e:1", 200), undefined, "without a session, the age bound ends it");
});

Deno.test("resolvePolicy() refuses tuning options out of range, naming the value", () => {
  const n = node();
  const bad: [Partial<KeyOptions>, ErrorConstructor][] = [
    [{ refreshAheadRatio: 1 }, RangeError],
    [{ refreshAheadRatio: 0 }, RangeError],
    [{ ttlJitterRatio: -0.1 }, RangeError],
    [{ sliding: true }, TypeError],
    [{ sliding: true, maxAgeMs: 10 }, RangeError],
    [{ ttlMinMs: 100 }, TypeError],
    [{ ttlMinMs: 500, ttlMaxMs: 100 }, RangeError],
    [{ failSafeMaxMs: -1 }, RangeError],
    [{ softTimeoutMs: 0 }, RangeError],
    [{ hardTimeoutMs: Number.NaN }, TypeError],
    [{ origin: "db" as "loader" }, TypeError],
  ];
  for (const [i, [options, type]] of bad.entries()) {
    assert.throws(
      () => n.register(`bad${i}`, { mode: "strong-local", ...options }),
      (e: unknown) => e instanceof type && /-?[\d.]+|NaN|undefined|"db"|true/.test(e.message),
      JSON.stringify(options),
    );
  }
  assert.equal(
    n.register("ok", { mode: "strong-local", softTimeoutMs: Infinity }).softTimeoutMs,
    Infinity,
  );
});
