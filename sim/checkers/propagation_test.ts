import assert from "node:assert/strict";
import type { History, HistoryOp, L1Sample, Violation } from "../history.ts";
import { checkPropagation } from "./propagation.ts";
import { checkHistory } from "./consistency.ts";
import { syntheticHistory } from "./_synthetic.ts";

/** Faults stop at 1000 ms; bounds 40 ms after a write, 200 ms after the heal. */
function check(
  ops: readonly Partial<HistoryOp>[],
  samples: readonly L1Sample[] = [],
): { checked: number; violations: Violation[] } {
  const history: History = {
    format: "warp-history/1",
    keys: {
      k: { mode: "eventual-distributed", maxStalenessMs: 300 },
      s: { mode: "strong-distributed" },
    },
    ops: ops.map((op, i) =>
      ({ id: i + 1, process: "n1", key: "k", outcome: "ok", ...op }) as HistoryOp
    ),
    propagation: { fromMs: 1000, boundMs: 40, healBoundMs: 200, samples },
  };
  const violations: Violation[] = [];
  return { checked: checkPropagation(history, (v) => violations.push(v)), violations };
}

const write = (version: number, completeMs: number): Partial<HistoryOp> => ({
  kind: "write",
  value: `v${version}`,
  version,
  invokeMs: completeMs - 1,
  completeMs,
});
const l1Read = (version: number, atMs: number, process = "n2"): Partial<HistoryOp> => ({
  kind: "read",
  value: `v${version}`,
  found: true,
  version,
  source: "l1",
  process,
  invokeMs: atMs,
  completeMs: atMs,
});

Deno.test("checkPropagation() passes older L1 versions until the bound, and store reads always", () => {
  const { checked, violations } = check([
    write(1, 900), // before the faults stopped: bound at 1200
    write(2, 1170), // in the fault-free phase: bound at 1210
    l1Read(0, 1199), // older than v1, but before 1200
    l1Read(1, 1209), // older than v2, but before 1210
    l1Read(2, 1210),
    { ...l1Read(0, 1300), source: "store" }, // not L1: EP says nothing of store reads
    l1Read(0, 999), // before the fault-free phase: not checked
  ], [{ atMs: 1209.5, process: "n3", key: "k", version: 1 }]);
  assert.deepEqual(violations, []);
  assert.equal(checked, 4);
});

Deno.test("checkPropagation() fails an L1 read or a sample older than a write past its bound", () => {
  const { violations } = check([
    write(1, 900),
    write(2, 1170),
    l1Read(0, 1200), // v1 is due at 1200: at the bound is too late
    l1Read(1, 1210.5, "n3"),
    l1Read(1, 1250, "n3"), // the same node and write again: reported once
  ], [{ atMs: 1300, process: "n4", key: "k", version: 0 }]);
  assert.deepEqual(violations.map((v) => [v.guarantee, v.key, v.ops]), [
    ["EP", "k", [3, 1]],
    ["EP", "k", [4, 2]],
    ["EP", "k", [2]],
  ]);
  assert.equal(
    violations[0]!.message,
    "At 1200 ms read 3 on n2 served version 0 of k from L1, older than version 1 of write 1 " +
      "(completed at 900 ms), whose invalidation had to reach every node by 1200 ms " +
      "(healBoundMs 200 after the faults stopped at 1000 ms)",
  );
  assert.match(violations[2]!.message, /^At 1300 ms n4 held ready to serve version 0 of k/);
  assert.match(violations[1]!.message, /by 1210 ms \(boundMs 40 after it\)$/);
});

Deno.test("checkPropagation() checks eventual keys only", () => {
  const { checked, violations } = check([
    { ...write(1, 1100), key: "s" },
    { ...l1Read(0, 1500), key: "s" },
  ], [{ atMs: 1500, process: "n2", key: "s", version: 0 }]);
  assert.deepEqual([checked, violations], [0, []]);
});

Deno.test("checkHistory() EP is skipped without a propagation phase and passes a correct store's", () => {
  const h = syntheticHistory({ seed: 5, ops: 300 });
  const result = checkHistory(h);
  assert.equal(result.results.EP, "pass");
  assert.ok(result.stats.checked.EP > 20, String(result.stats.checked.EP));
  const { propagation: _, ...without } = h;
  assert.equal(checkHistory(without).results.EP, "skipped");
});

Deno.test("checkHistory() rejects a malformed propagation phase with a TypeError", () => {
  const h = syntheticHistory({ seed: 3, ops: 10 });
  const phase = h.propagation!;
  const cases: [unknown, RegExp][] = [
    [[], /^Invalid history propagation, expected an object: \[\]$/],
    [{ ...phase, boundMs: -1 }, /^Invalid propagation boundMs, expected a number >= 0: -1$/],
    [{ ...phase, samples: null }, /^Invalid propagation samples, expected an array: null$/],
    [
      { ...phase, samples: [{ atMs: 1, process: "n1", key: "nope", version: 1 }] },
      /^Invalid propagation sample at index 0, .*"nope"/,
    ],
  ];
  for (const [propagation, message] of cases) {
    assert.throws(() => checkHistory({ ...h, propagation } as History), {
      name: "TypeError",
      message,
    });
  }
});
