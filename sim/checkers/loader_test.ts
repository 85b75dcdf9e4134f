import assert from "node:assert/strict";
import { checkLoaders } from "./loader.ts";
import type { LoaderHistory, LoaderKeyInfo, LoaderOp, LoadLogEntry } from "../history.ts";

const EV: LoaderKeyInfo = {
  mode: "eventual-distributed",
  ttlMs: 1000,
  maxStalenessMs: 100,
  failSafeMaxMs: 500,
};
const ST: LoaderKeyInfo = { mode: "strong-distributed", ttlMs: 1000, failSafeMaxMs: 0 };

/** Load 1 of `k` on n0 at 10 ms read "a"; load 2 at 300 ms read "b". */
const LOADS: LoadLogEntry[] = [
  { id: 1, process: "n0", key: "k", startMs: 10, startSeq: 1, version: 1, value: "a", ttlMs: 1000 },
  {
    id: 2,
    process: "n0",
    key: "k",
    startMs: 300,
    startSeq: 5,
    version: 2,
    value: "b",
    ttlMs: 1000,
  },
];

function read(id: number, atMs: number, answerSeq: number, more: Partial<LoaderOp> = {}): LoaderOp {
  return {
    id,
    process: "n0",
    key: "k",
    kind: "read",
    invokeMs: atMs,
    completeMs: atMs,
    outcome: "ok",
    found: true,
    value: "a",
    load: 1,
    source: "l1",
    stale: false,
    failSafeMs: 0,
    answerSeq,
    ...more,
  };
}

function invalidate(id: number, invokeMs: number, completeMs: number): LoaderOp {
  return { id, process: "n1", key: "k", kind: "invalidate", invokeMs, completeMs, outcome: "ok" };
}

function history(
  info: LoaderKeyInfo,
  ops: LoaderOp[],
  drops: LoaderHistory["drops"] = [],
): LoaderHistory {
  return { keys: { k: info }, ops, loads: LOADS, drops, sourceLog: [] };
}

function caught(h: LoaderHistory): string[] {
  return checkLoaders(h, 0).violations.map((v) => v.guarantee);
}

Deno.test("checkLoaders() passes answers that respect every loader rule", () => {
  const h = history(EV, [
    read(10, 50, 2),
    invalidate(11, 200, 210),
    read(12, 305, 6, { value: "b", load: 2, source: "loader" }),
  ], [{ process: "n0", key: "k", atMs: 205, seq: 3 }]);
  const result = checkLoaders(h, 0);
  assert.deepEqual(result.violations, []);
  assert.equal(result.results.LB1, "pass");
  assert.equal(result.results.LB2, "pass");
  assert.equal(result.results.F2, "skipped");
});

Deno.test("checkLoaders() reports LB1 when a node serves a load a drop reached it after", () => {
  const drops = [{ process: "n0", key: "k", atMs: 20, seq: 2 }];
  assert.deepEqual(caught(history(EV, [read(10, 50, 3)], drops)), ["LB1"]);
  // A drop on another node, or after the answer, says nothing about this one.
  assert.deepEqual(caught(history(EV, [read(10, 50, 3)], [{ ...drops[0]!, process: "n1" }])), []);
  assert.deepEqual(caught(history(EV, [read(10, 15, 2)], [{ ...drops[0]!, seq: 3 }])), []);
});

Deno.test("checkLoaders() reports F2 when a stale answer serves a removed value", () => {
  const drops = [{ process: "n0", key: "k", atMs: 20, seq: 2 }];
  const stale = read(10, 50, 3, { source: "fallback", stale: true, failSafeMs: 500 });
  assert.deepEqual(caught(history(EV, [stale], drops)), ["F2"]);
});

Deno.test("checkLoaders() reports LB2 when an eventual read outlives a completed invalidation", () => {
  const h = history(EV, [invalidate(11, 100, 120), read(10, 221, 3)]);
  assert.deepEqual(caught(h), ["LB2"]);
  // Within maxStalenessMs of the invalidation's completion it may still serve the old load.
  assert.deepEqual(caught(history(EV, [invalidate(11, 100, 120), read(10, 219, 3)])), []);
});

Deno.test("checkLoaders() reports LB3 when a strong read starts after an invalidation completed", () => {
  assert.deepEqual(caught(history(ST, [invalidate(11, 100, 120), read(10, 121, 3)])), ["LB3"]);
  // A read that overlaps the invalidation may still answer the old load.
  assert.deepEqual(caught(history(ST, [invalidate(11, 100, 120), read(10, 119, 3)])), []);
});

Deno.test("checkLoaders() reports F1 for an unflagged stale answer or an L1 answer past its TTL", () => {
  assert.deepEqual(caught(history(EV, [read(10, 50, 3, { source: "fallback" })])), ["F1"]);
  assert.deepEqual(caught(history(EV, [read(10, 1011, 3)])), ["F1"]);
  // Straight from a slow load, an answer is as fresh as any read-through.
  assert.deepEqual(caught(history(EV, [read(10, 1011, 3, { source: "loader" })])), []);
  const stale = { source: "fallback", stale: true } as const;
  assert.deepEqual(caught(history(EV, [read(10, 1400, 3, { ...stale, failSafeMs: 500 })])), []);
  assert.deepEqual(caught(history(EV, [read(10, 1600, 3, { ...stale, failSafeMs: 500 })])), [
    "F1",
  ]);
  // Stale without asking: F1 for eventual keys, F3 for strong-distributed ones.
  assert.deepEqual(caught(history(EV, [read(10, 1400, 3, stale)])), ["F1"]);
  assert.deepEqual(caught(history(ST, [read(10, 1400, 3, stale)])), ["F3"]);
});

Deno.test("checkLoaders() reports E1 for an answer no load of its node returned", () => {
  assert.deepEqual(caught(history(EV, [read(10, 50, 3, { value: "z" })])), ["E1"]);
  assert.deepEqual(caught(history(EV, [read(10, 50, 3, { process: "n1" })])), ["E1"]);
  assert.deepEqual(caught(history(EV, [read(10, 50, 3, { load: 9 })])), ["E1"]);
});
