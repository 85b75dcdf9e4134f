import assert from "node:assert/strict";
import type { History, HistoryOp, KeyInfo, StoreLogEntry, Violation } from "../history.ts";
import { checkStoreLog } from "./store_log.ts";
import { checkHistory } from "./consistency.ts";
import { syntheticHistory } from "./_synthetic.ts";

const LOG: StoreLogEntry[] = [
  { key: "k", version: 1, value: "a", atMs: 1 },
  { key: "k", version: 2, deleted: true, atMs: 11 },
  { key: "k", version: 3, value: "c", atMs: 21 },
];

function check(
  ops: readonly Partial<HistoryOp>[],
  log: readonly StoreLogEntry[] = LOG,
  info: KeyInfo = { mode: "eventual-distributed", maxStalenessMs: 100 },
): { checked: number; violations: Violation[] } {
  const history: History = {
    format: "warp-history/1",
    keys: { k: info },
    ops: ops.map((op, i) =>
      ({ id: i + 1, process: "n1", key: "k", outcome: "ok", ...op }) as HistoryOp
    ),
    storeLog: log,
  };
  const violations: Violation[] = [];
  return { checked: checkStoreLog(history, (v) => violations.push(v)), violations };
}

const read = (value: unknown, version: number, completeMs = 30): Partial<HistoryOp> =>
  value === null
    ? { kind: "read", found: false, version, invokeMs: completeMs - 1, completeMs }
    : { kind: "read", found: true, value, version, invokeMs: completeMs - 1, completeMs };

Deno.test("checkStoreLog() passes reads and writes of the pairs the store held", () => {
  const { checked, violations } = check([
    { kind: "write", value: "a", version: 1, invokeMs: 0, completeMs: 2 },
    { kind: "delete", version: 2, invokeMs: 10, completeMs: 12 },
    read(null, 0, 0.5),
    read("a", 1, 5),
    { ...read(null, 2), source: "l1" },
    read("c", 3),
    { kind: "read", found: true, value: "c", invokeMs: 1, completeMs: 2 }, // no version: not checked
    { kind: "write", value: "x", invokeMs: 1, completeMs: null, outcome: "unknown" },
  ]);
  assert.deepEqual(violations, []);
  assert.equal(checked, 6);
});

Deno.test("checkStoreLog() fails a read of a value under another write's version", () => {
  const { violations } = check([read("a", 3), read(null, 3), read("c", 2), read("a", 0)]);
  assert.deepEqual(violations.map((v) => [v.guarantee, v.ops]), [
    ["E1s", [1]],
    ["E1s", [2]],
    ["E1s", [3]],
    ["E1s", [4]],
  ]);
  assert.equal(
    violations[0]!.message,
    'Read 1 on n1 (from ?) returned "a" of k at version 3, but the store holds "c" at that version',
  );
  assert.match(
    violations[1]!.message,
    /returned nothing of k at version 3, but the store holds "c"/,
  );
  assert.match(
    violations[2]!.message,
    /returned "c" of k at version 2, but the store holds a deletion/,
  );
  assert.match(violations[3]!.message, /version 0 means never written$/);
});

Deno.test("checkStoreLog() fails a read of a version not yet, or never, given", () => {
  const { violations } = check([read("c", 3, 20), read("d", 4)]);
  assert.deepEqual(violations.map((v) => v.message), [
    'Read 1 on n1 (from ?) returned "c" of k at version 3, but the store applied it only at 21 ms, after the read completed',
    'Read 2 on n1 (from ?) returned "d" of k at version 4, but the store never gave that version',
  ]);
});

Deno.test("checkStoreLog() lets a leased key's value read as absent at its version, only there", () => {
  const log: StoreLogEntry[] = [
    { key: "k", version: 1, value: "a", leases: ["l1"], atMs: 1 },
    { key: "k", version: 2, value: "b", atMs: 11 },
  ];
  const leased = { mode: "strong-distributed", leased: true } as const;
  assert.deepEqual(check([read(null, 1)], log, leased).violations, []);
  assert.equal(check([read(null, 2)], log, leased).violations.length, 1);
  // Not a leased key: absence at a value's version is a violation whatever the log says.
  assert.equal(check([read(null, 1)], log).violations.length, 1);
});

Deno.test("checkStoreLog() fails a write that completed with a version the store gave another", () => {
  const { violations } = check([
    { kind: "write", value: "a", version: 3, invokeMs: 20, completeMs: 22 },
    { kind: "delete", version: 1, invokeMs: 0, completeMs: 2 },
    { kind: "write", value: "a", version: 1, invokeMs: 2, completeMs: 3 },
    { kind: "write", value: "z", version: 9, invokeMs: 2, completeMs: 3 },
  ]);
  assert.deepEqual(violations.map((v) => v.message), [
    'Write 1 on n1 of k completed with version 3, but the store holds "c" at that version',
    'Delete 2 on n1 of k completed with version 1, but the store holds "a" at that version',
    "Write 3 on n1 of k completed with version 1, but the store applied it at 1 ms, outside the write's [2, 3] ms",
    "Write 4 on n1 of k completed with version 9, but the store never gave that version",
  ]);
});

Deno.test("checkStoreLog() fails a store log whose versions do not increase", () => {
  const { violations } = check([], [...LOG, { key: "k", version: 2, value: "again", atMs: 30 }]);
  assert.deepEqual(violations.map((v) => [v.guarantee, v.ops]), [["E1s", []]]);
  assert.match(
    violations[0]!.message,
    /^The store applied version 2 of k at 30 ms, after version 3/,
  );
});

Deno.test("checkHistory() E1s is skipped without a store log and passes a correct store's", () => {
  const h = syntheticHistory({ seed: 3, ops: 300 });
  assert.equal(checkHistory(h).results.E1s, "pass");
  assert.ok(checkHistory(h).stats.checked.E1s > 100);
  const { storeLog: _, ...without } = h;
  assert.equal(checkHistory(without).results.E1s, "skipped");
});

Deno.test("checkHistory() rejects a malformed store log with a TypeError", () => {
  const h = syntheticHistory({ seed: 3, ops: 10 });
  const cases: [unknown, RegExp][] = [
    [{}, /^Invalid history storeLog, expected an array: \{\}$/],
    [[{ key: "nope", version: 1, atMs: 0 }], /index 0, key is not described in keys: "nope"$/],
    [[{ key: "ed:0", version: 0, atMs: 0 }], /index 0, version must be an integer >= 1: 0$/],
    [[{ key: "ed:0", version: 1, atMs: "x" }], /atMs must be a finite number: "x"$/],
  ];
  for (const [storeLog, message] of cases) {
    assert.throws(() => checkHistory({ ...h, storeLog } as History), {
      name: "TypeError",
      message,
    });
  }
});
