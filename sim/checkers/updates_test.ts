import assert from "node:assert/strict";
import { checkLastWriterWins, checkUpdates } from "./updates.ts";
import { checkHistory } from "./consistency.ts";
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

const lww = (id: number, outcome: UpdateOp["outcome"], version?: number): UpdateOp => ({
  id,
  process: "n0",
  key: "w",
  kind: "lww",
  element: `n0#${id}`,
  invokeMs: id,
  completeMs: outcome === "unknown" ? null : id + 1,
  outcome,
  ...(version !== undefined && { version, value: `n0#${id}` }),
});
const lwwLog = (...values: string[]): StoreLogEntry[] =>
  values.map((value, i) => ({ key: "w", version: i + 1, value, atMs: i }));

Deno.test("checkLastWriterWins() passes a log where each write is its own update's value", () => {
  // An unknown update may land (once) or not; the counters' M1 check ignores these keys.
  const ops = [lww(1, "ok", 1), lww(2, "unknown"), lww(3, "ok", 3), lww(4, "unknown")];
  const log = lwwLog("n0#1", "n0#2", "n0#3");
  assert.deepEqual(checkLwwOnly(log, ops), []);
  const history: History = {
    format: "warp-history/1",
    keys: {},
    ops: [],
    storeLog: log,
    updates: { ops },
  };
  assert.equal(checkUpdates(history, () => assert.fail("M1 judged an lww key")), 0);
});

Deno.test("checkLastWriterWins() reports an acknowledged value missing where it was acknowledged (M2)", () => {
  // Update 2 was acknowledged at version 2, which holds update 3's value: 2's write is lost.
  const violations = checkLwwOnly(lwwLog("n0#1", "n0#3"), [
    lww(1, "ok", 1),
    lww(2, "ok", 2),
    lww(3, "unknown"),
  ]);
  assert.deepEqual(violations.map((v) => [v.guarantee, v.ops]), [["M2", [2]]]);
  assert.match(violations[0]!.message, /holds "n0#3", not its value "n0#2"/);
});

Deno.test("checkLastWriterWins() reports a write equal to its predecessor that an update claims (M2)", () => {
  // go-warp's merge: the stored value's stamp was newer, so update 2 wrote it back.
  const violations = checkLwwOnly(lwwLog("n0#1", "n0#1"), [lww(1, "ok", 1), lww(2, "ok", 2)]);
  assert.deepEqual(violations.map((v) => [v.guarantee, v.ops]), [["M2", [1, 2]]]);
  assert.match(violations[0]!.message, /kept its predecessor instead of replacing it/);
});

Deno.test("checkLastWriterWins() reports a failed update's value, a stranger's and a deletion", () => {
  const failed = checkLwwOnly(lwwLog("n0#1", "n0#2"), [lww(1, "ok", 1), lww(2, "fail")]);
  assert.deepEqual(failed.map((v) => v.ops), [[2]]);
  assert.match(checkLwwOnly(lwwLog("x"), [lww(1, "unknown")])[0]!.message, /no update writes/);
  const deleted = checkLwwOnly(
    [{ key: "w", version: 1, value: null, atMs: 0, deleted: true }],
    [lww(1, "unknown")],
  );
  assert.match(deleted[0]!.message, /deletion/);
  // Acknowledged at a version the store never applied, its value at another version.
  const elsewhere = checkLwwOnly(lwwLog("n0#1"), [lww(1, "ok", 4)]).map((v) => v.message);
  assert.deepEqual(elsewhere.length, 2);
  assert.match(elsewhere[0]!, /holds the value of update 1, acknowledged at 4/);
  assert.match(elsewhere[1]!, /never applied/);
});

function checkLwwOnly(storeLog: StoreLogEntry[], ops: UpdateOp[]): Violation[] {
  const violations: Violation[] = [];
  const history: History = {
    format: "warp-history/1",
    keys: {},
    ops: [],
    storeLog,
    updates: { ops },
  };
  assert.equal(checkLastWriterWins(history, (v) => violations.push(v)), ops.length);
  return violations;
}

Deno.test("checkHistory() reports M2 as its own row, and refuses a malformed lww update", () => {
  const history = (log: StoreLogEntry[], ops: unknown[]) =>
    ({
      format: "warp-history/1",
      keys: {},
      ops: [],
      storeLog: log,
      updates: { ops },
    }) as unknown as History;
  const ok = checkHistory(history(lwwLog("n0#1", "n0#2"), [lww(1, "ok", 1), lww(2, "ok", 2)]));
  assert.equal(ok.results.M2, "pass");
  assert.equal(ok.results.M1, "skipped"); // no counter or set: M1 has nothing to check
  assert.equal(ok.stats.checked.M2, 2);
  const kept = checkHistory(history(lwwLog("n0#1", "n0#1"), [lww(1, "ok", 1), lww(2, "ok", 2)]));
  assert.equal(kept.results.M2, "fail");
  assert.deepEqual(kept.violations.map((v) => v.guarantee), ["M2"]);
  const { element: _, ...bare } = lww(1, "unknown");
  assert.throws(() => checkHistory(history([], [bare])), {
    name: "TypeError",
    message: /a lww update needs its element/,
  });
  assert.throws(() => checkHistory(history([], [{ ...bare, kind: "max" }])), {
    name: "TypeError",
    message: /kind must be "add", "union" or "lww"/,
  });
});
