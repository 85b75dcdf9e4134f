import assert from "node:assert/strict";
import { checkTransactions } from "./transactions.ts";
import { checkHistory } from "./consistency.ts";
import { syntheticHistory } from "./_synthetic.ts";
import type { History, HistoryOp, StoreLogEntry, TransactionRecord } from "../history.ts";
import type { Violation } from "../history.ts";

function check(
  ops: HistoryOp[],
  storeLog: StoreLogEntry[],
  transactions: TransactionRecord[],
): Violation[] {
  const violations: Violation[] = [];
  const history: History = { format: "warp-history/1", keys: {}, ops, storeLog, transactions };
  assert.equal(checkTransactions(history, (v) => violations.push(v)), transactions.length);
  return violations;
}

const write = (id: number, key: string, outcome: HistoryOp["outcome"] = "ok"): HistoryOp => ({
  id,
  process: "n1",
  key,
  kind: "write",
  value: `w${id}`,
  invokeMs: 0,
  completeMs: outcome === "unknown" ? null : 9,
  outcome,
});
const read = (id: number, key: string, value: string, version: number): HistoryOp => ({
  id,
  process: "n2",
  key,
  kind: "read",
  value,
  found: true,
  version,
  invokeMs: 10,
  completeMs: 11,
  outcome: "ok",
});
const entry = (key: string, version: number, id: number, atMs: number, tx?: number) => ({
  key,
  version,
  value: `w${id}`,
  atMs,
  ...(tx !== undefined && { tx }),
});

Deno.test("checkTransactions() passes whole transactions: ok ones stored, failed ones absent, unknown either way", () => {
  const ops = [write(1, "a"), write(2, "b"), write(3, "a", "fail"), write(4, "b", "fail")];
  ops.push(write(5, "a", "unknown"), write(6, "b", "unknown"), write(7, "a", "unknown"));
  ops.push(write(8, "c", "unknown"));
  const log = [
    entry("a", 1, 1, 5, 1),
    entry("b", 1, 2, 5, 1),
    entry("a", 2, 5, 8, 3),
    entry("b", 2, 6, 8, 3),
  ];
  const txs: TransactionRecord[] = [
    { id: 1, ops: [1, 2], outcome: "ok" },
    { id: 2, ops: [3, 4], outcome: "fail" },
    { id: 3, ops: [5, 6], outcome: "unknown" },
    { id: 4, ops: [7, 8], outcome: "unknown" },
  ];
  assert.deepEqual(check([...ops, read(20, "a", "w5", 2)], log, txs), []);
});

Deno.test("checkTransactions() reports a half-applied transaction, even one later overwritten", () => {
  const ops = [write(1, "a"), write(2, "b"), write(3, "a")];
  const log = [entry("a", 1, 1, 5, 1), entry("a", 2, 3, 6)];
  const violations = check(ops, log, [{ id: 1, ops: [1, 2], outcome: "ok" }]);
  assert.deepEqual(violations.map((v) => v.guarantee), ["T1"]);
  assert.match(violations[0]!.message, /half-applied: 1 of 2/);
});

Deno.test("checkTransactions() reports an ok transaction with nothing stored, and a failed one stored", () => {
  const ops = [write(1, "a"), write(2, "b"), write(3, "a", "fail"), write(4, "b", "fail")];
  const log = [entry("a", 1, 3, 5, 2), entry("b", 1, 4, 5, 2)];
  const violations = check(ops, log, [
    { id: 1, ops: [1, 2], outcome: "ok" },
    { id: 2, ops: [3, 4], outcome: "fail" },
  ]);
  assert.equal(violations.length, 2);
  assert.match(violations[0]!.message, /none of its writes/);
  assert.match(violations[1]!.message, /failed, yet the store applied 2/);
});

Deno.test("checkTransactions() reports writes applied at different instants or below the key's last version", () => {
  const ops = [write(1, "a"), write(2, "b")];
  const log = [entry("b", 3, 9, 1), entry("a", 1, 1, 5, 1), entry("b", 2, 2, 6, 1)];
  const messages = check(ops, log, [{ id: 1, ops: [1, 2], outcome: "ok" }]).map((v) => v.message);
  assert.equal(messages.length, 2);
  assert.match(messages[0]!, /version 2, not above the last/);
  assert.match(messages[1]!, /different instants/);
});

Deno.test("checkTransactions() reports a read of a value only an unapplied transaction wrote", () => {
  const ops = [write(1, "a", "fail"), write(2, "b", "fail"), read(3, "a", "w1", 1)];
  const violations = check(ops, [], [{ id: 1, ops: [1, 2], outcome: "fail" }]);
  assert.deepEqual(violations.map((v) => [v.guarantee, v.ops]), [["T1", [3, 1]]]);
});

Deno.test("checkTransactions() skips a history without transactions or a store log", () => {
  const history: History = { format: "warp-history/1", keys: {}, ops: [] };
  assert.equal(checkTransactions(history, () => assert.fail("no report")), 0);
});

Deno.test("checkHistory() rejects malformed transactions and store-log transaction ids with a TypeError", () => {
  const h = syntheticHistory({ seed: 3, ops: 10 });
  const id = h.ops[0]!.id;
  const cases: [Partial<History>, RegExp][] = [
    [{ transactions: {} as never }, /^Invalid history transactions, expected an array/],
    [{ transactions: [{ id: 1, ops: [-5], outcome: "ok" }] }, /^Invalid transaction at index 0/],
    [
      { transactions: [{ id: 1, ops: [id], outcome: "ok" }, { id: 1, ops: [id], outcome: "ok" }] },
      /^Invalid transaction at index 1/,
    ],
    [{ transactions: [{ id: 1, ops: [id], outcome: "maybe" as never }] }, /index 0/],
    [{ storeLog: [{ key: h.ops[0]!.key, version: 1, atMs: 0, tx: 1.5 }] }, /tx must be an integer/],
  ];
  for (const [part, message] of cases) {
    assert.throws(() => checkHistory({ ...h, ...part } as History), { name: "TypeError", message });
  }
  const ok = checkHistory({
    ...h,
    storeLog: [],
    transactions: [{ id: 1, ops: [id], outcome: "fail" }],
  });
  assert.notEqual(ok.results.T1, "skipped");
});
