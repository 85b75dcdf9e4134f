import assert from "node:assert/strict";
import { checkUpdates } from "./updates.ts";
import type { History, StoreLogEntry, UpdateOp } from "../history.ts";
import type { Violation } from "../history.ts";

function check(storeLog: StoreLogEntry[], ops: UpdateOp[]): Violation[] {
  const violations: Violation[] = [];
  const history: History = {
    format: "warp-history/1",
    keys: {},
    ops: [],
    storeLog,
    updates: { ops },
  };
  assert.equal(checkUpdates(history, (v) => violations.push(v)), ops.length);
  return violations;
}

const add = (id: number, outcome: UpdateOp["outcome"], version?: number): UpdateOp => ({
  id,
  process: "n0",
  key: "c",
  kind: "add",
  invokeMs: id,
  completeMs: outcome === "unknown" ? null : id + 1,
  outcome,
  ...(version !== undefined && { version, value: version }),
});
const union = (id: number, outcome: UpdateOp["outcome"], version?: number): UpdateOp => ({
  ...add(id, outcome, version),
  key: "s",
  kind: "union",
  element: `e${id}`,
});
const counterLog = (n: number): StoreLogEntry[] =>
  Array.from({ length: n }, (_, i) => ({ key: "c", version: i + 1, value: i + 1, atMs: i }));

Deno.test("checkUpdates() passes a counter whose every write is acknowledged or unknown", () => {
  assert.deepEqual(check(counterLog(3), [add(1, "ok", 1), add(2, "unknown"), add(3, "ok", 3)]), []);
  // An unknown update may also not have happened.
  assert.deepEqual(check(counterLog(2), [add(1, "ok", 1), add(2, "ok", 2), add(3, "unknown")]), []);
});

Deno.test("checkUpdates() reports a write that is not the reducer applied to its predecessor", () => {
  const log = counterLog(2);
  log.push({ key: "c", version: 3, value: 2, atMs: 5 }); // computed from a stale value
  const violations = check(log, [add(1, "ok", 1), add(2, "ok", 2), add(3, "ok", 3)]);
  assert.deepEqual(violations.map((v) => [v.guarantee, v.ops]), [["M1", [3]]]);
  assert.match(violations[0]!.message, /2 after 2, expected 3/);
});

Deno.test("checkUpdates() reports two acknowledged updates of one version, and unaccounted writes", () => {
  assert.deepEqual(
    check(counterLog(1), [add(1, "ok", 1), add(2, "ok", 1)]).map((v) => v.ops),
    [[2, 1]],
  );
  // Two writes, one acknowledged, no unknown update: one write came from nowhere (or twice).
  assert.equal(check(counterLog(2), [add(1, "ok", 1), add(2, "fail")]).length, 1);
  // Acknowledged at a version the store never applied (and the store's write is unaccounted).
  assert.match(check(counterLog(1), [add(1, "ok", 5)])[0]!.message, /never applied/);
});

Deno.test("checkUpdates() matches each set element with the update that added it", () => {
  const log: StoreLogEntry[] = [
    { key: "s", version: 1, value: ["e1"], atMs: 1 },
    { key: "s", version: 2, value: ["e1", "e2"], atMs: 2 },
  ];
  assert.deepEqual(check(log, [union(1, "ok", 1), union(2, "unknown")]), []);
  // A failed update's element in the store.
  const failed = check(log, [union(1, "ok", 1), union(2, "fail")]);
  assert.deepEqual(failed.map((v) => v.ops), [[2]]);
  // An element lost by a later write.
  const lost = check([...log, { key: "s", version: 3, value: ["e1", "e3"], atMs: 3 }], [
    union(1, "ok", 1),
    union(2, "ok", 2),
    union(3, "ok", 3),
  ]);
  assert.match(lost[0]!.message, /e2 lost/);
  // The acknowledged version added another element.
  assert.match(check(log, [union(1, "ok", 2), union(2, "unknown")])[0]!.message, /added e1/);
});
