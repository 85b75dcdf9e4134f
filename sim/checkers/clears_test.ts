import assert from "node:assert/strict";
import type { ClearOp, History, HistoryOp } from "../history.ts";
import { checkClears } from "./clears.ts";
import { checkHistory } from "./consistency.ts";

const keys = {
  "ev:1": { mode: "eventual-distributed", maxStalenessMs: 100 },
  "lc:1": { mode: "strong-local" },
} as const;

function write(id: number, key: string, version: number, at: number, done: number): HistoryOp {
  return {
    id,
    process: "n1",
    key,
    kind: "write",
    value: `v${version}`,
    version,
    invokeMs: at,
    completeMs: done,
    outcome: "ok",
  };
}

function l1Read(
  id: number,
  process: string,
  key: string,
  version: number,
  at: number,
  fetchedByMs: number,
): HistoryOp {
  return {
    id,
    process,
    key,
    kind: "read",
    value: `v${version}`,
    found: true,
    version,
    source: "l1",
    fetchedByMs,
    invokeMs: at,
    completeMs: at,
    outcome: "ok",
  };
}

function clear(id: number, process: string, ns: string, at: number, done: number): ClearOp {
  return { id, process, ns, invokeMs: at, completeMs: done, outcome: "ok" };
}

function found(ops: HistoryOp[], clears: ClearOp[]): string[] {
  const messages: string[] = [];
  const history: History = { format: "warp-history/1", keys, ops, clears };
  checkClears(history, (v) => messages.push(`${v.ops.join(",")}`));
  return messages;
}

Deno.test("checkClears() flags an entry read before a clear and served after it: at once on the clearing node, past the bound elsewhere", () => {
  const w = write(1, "ev:1", 1, 0, 2);
  const c = clear(2, "n1", "ev", 10, 12);
  // On the clearing node, any L1 read after the clear completed.
  assert.deepEqual(found([w, l1Read(3, "n1", "ev:1", 1, 13, 1)], [c]), ["3,2"]);
  // On another node, only past maxStalenessMs after the clear completed.
  assert.deepEqual(found([w, l1Read(4, "n2", "ev:1", 1, 100, 1)], [c]), []);
  assert.deepEqual(found([w, l1Read(5, "n2", "ev:1", 1, 112, 1)], [c]), ["5,2"]);
});

Deno.test("checkClears() leaves out entries read after the clear began, concurrent writes, other namespaces and other nodes' strong-local keys", () => {
  const w = write(1, "ev:1", 1, 0, 2);
  const c = clear(2, "n1", "ev", 10, 12);
  assert.deepEqual(found([w, l1Read(3, "n1", "ev:1", 1, 20, 10)], [c]), [], "read at the clear");
  const late = write(4, "ev:1", 2, 5, 11); // completed after the clear began
  assert.deepEqual(found([w, late, l1Read(5, "n1", "ev:1", 2, 20, 5)], [c]), []);
  assert.deepEqual(
    found([w, l1Read(6, "n1", "ev:1", 1, 20, 1)], [clear(7, "n1", "e", 10, 12)]),
    [],
  );
  const local = write(8, "lc:1", 1, 0, 2);
  assert.deepEqual(
    found([local, l1Read(9, "n2", "lc:1", 1, 200, 1)], [clear(10, "n1", "lc", 10, 12)]),
    [],
  );
  assert.deepEqual(
    found([local, l1Read(11, "n1", "lc:1", 1, 20, 1)], [clear(12, "n1", "lc", 10, 12)]),
    [
      "11,12",
    ],
  );
  // A clear that did not complete ok promises nothing.
  const open = { ...c, completeMs: null, outcome: "unknown" } as const;
  assert.deepEqual(found([w, l1Read(13, "n1", "ev:1", 1, 20, 1)], [open]), []);
});

Deno.test("checkHistory() reports CL, and refuses a malformed clears part", () => {
  const history: History = {
    format: "warp-history/1",
    keys,
    ops: [write(1, "ev:1", 1, 0, 2), l1Read(3, "n1", "ev:1", 1, 13, 1)],
    clears: [clear(2, "n1", "ev", 10, 12)],
  };
  const result = checkHistory(history);
  assert.equal(result.results.CL, "fail");
  assert.deepEqual(result.violations.map((v) => v.guarantee), ["CL"]);
  assert.throws(
    () => checkHistory({ ...history, clears: [{ ...history.clears![0]!, ns: "" }] }),
    /Invalid clear at index 0/,
  );
  assert.throws(
    () => checkHistory({ ...history, ops: [{ ...history.ops[0]!, fetchedByMs: NaN }] }),
    /fetchedByMs must be a finite number/,
  );
});
