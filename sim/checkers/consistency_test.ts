import assert from "node:assert/strict";
import type { History, HistoryOp, KeyInfo } from "../history.ts";
import fc from "fast-check";
import { checkHistory, type Guarantee, GUARANTEES } from "./consistency.ts";
import { syntheticHistory } from "./_synthetic.ts";

type OpFields = Omit<HistoryOp, "id" | "process" | "key" | "outcome"> & {
  outcome?: HistoryOp["outcome"];
};

function history(
  keys: Record<string, KeyInfo>,
  ops: readonly (Partial<HistoryOp> & OpFields & { id: number })[],
  final?: History["final"],
): History {
  const key = Object.keys(keys)[0]!;
  return {
    format: "warp-history/1",
    keys,
    ops: ops.map((op) => ({ process: "n1", key, outcome: "ok", ...op }) as HistoryOp),
    ...(final === undefined ? {} : { final }),
  };
}

const eventual = { k: { mode: "eventual-distributed", maxStalenessMs: 100 } } as const;
const strong = { k: { mode: "strong-distributed" } } as const;
const local = { k: { mode: "strong-local", ttlMs: 1000 } } as const;

function w(id: number, value: string, version: number, invokeMs: number, completeMs: number) {
  return { id, kind: "write", value, version, invokeMs, completeMs } as const;
}

function r(
  id: number,
  value: string | null,
  version: number,
  invokeMs: number,
  completeMs: number,
) {
  return value === null
    ? { id, kind: "read", found: false, version, invokeMs, completeMs } as const
    : { id, kind: "read", value, found: true, version, invokeMs, completeMs } as const;
}

/** Asserts the only violations are of `guarantee` on key `k` with these op lists. */
function assertViolations(h: History, guarantee: Guarantee, ops: readonly number[][]): void {
  const result = checkHistory(h);
  assert.deepEqual(
    result.violations.map((v) => [v.guarantee, v.key, v.ops]),
    ops.map((o) => [guarantee, "k", o]),
    JSON.stringify(result.violations, null, 1),
  );
  assert.equal(result.results[guarantee], "fail");
  for (const g of GUARANTEES) if (g !== guarantee) assert.notEqual(result.results[g], "fail", g);
  for (const v of result.violations) assert.match(v.message, /^[A-Z].* k\b/);
}

function assertPasses(h: History, guarantee: Guarantee): void {
  const result = checkHistory(h);
  assert.deepEqual(result.violations, []);
  assert.equal(result.results[guarantee], "pass");
}

Deno.test("checkHistory() E1 passes reads of written or unknown-outcome values and absence", () => {
  assertPasses(
    history(eventual, [
      r(1, null, 0, 0, 1),
      w(2, "a", 1, 2, 3),
      { ...w(3, "b", 2, 4, 5), outcome: "unknown", completeMs: null, version: undefined },
      r(4, "a", 1, 6, 7),
      { ...r(5, "b", 2, 6, 7), version: undefined },
    ] as never),
    "E1",
  );
});

Deno.test("checkHistory() E1 fails reads of a value never written, of a failed write, at a wrong version", () => {
  assertViolations(
    history(eventual, [
      w(1, "a", 1, 0, 1),
      { id: 2, kind: "write", value: "b", invokeMs: 2, completeMs: 3, outcome: "fail" },
      r(3, "x", 1, 4, 5),
      r(4, "b", 1, 4, 5),
      r(5, "a", 7, 4, 5),
    ]),
    "E1",
    [[3], [4, 2], [5, 1]],
  );
});

Deno.test("checkHistory() E2 passes a node that reads newer versions, or older ones of concurrent ops", () => {
  assertPasses(
    history(eventual, [
      w(1, "a", 1, 0, 1),
      r(2, "a", 1, 2, 3),
      { ...w(3, "b", 2, 4, 10), process: "n2" },
      r(4, "b", 2, 11, 12),
      w(5, "c", 3, 20, 30),
      r(6, "b", 2, 25, 26), // concurrent with write 5 on the same node
    ]),
    "E2",
  );
});

Deno.test("checkHistory() E2 fails a node that serves an older version after a newer one", () => {
  const writes = [w(1, "a", 1, 0, 1), { ...w(2, "b", 2, 2, 3), process: "n2" }];
  // After its own read of version 2.
  assertViolations(
    history(eventual, [...writes, r(3, "b", 2, 4, 5), r(4, "a", 1, 6, 7)]),
    "E2",
    [[4, 3]],
  );
  // After its own write, even if the write went through a delete (tombstone version).
  assertViolations(
    history(eventual, [
      ...writes,
      { id: 3, kind: "delete", version: 3, invokeMs: 4, completeMs: 5 },
      r(4, "b", 2, 6, 7),
      { ...r(5, "a", 1, 6, 7), process: "n2" },
    ]),
    "E2",
    [[4, 3], [5, 2]],
  );
});

Deno.test("checkHistory() E3 passes reads at most maxStalenessMs behind", () => {
  assertPasses(
    history(eventual, [
      w(1, "a", 1, 0, 10),
      w(2, "b", 2, 20, 30),
      { ...r(3, "a", 1, 120, 130), process: "n2" }, // write 2 completed 100 ms before: allowed
      { ...r(4, "b", 2, 500, 510), process: "n3" },
    ]),
    "E3",
  );
});

Deno.test("checkHistory() E3 fails a read more than maxStalenessMs behind a completed write", () => {
  assertViolations(
    history(eventual, [
      w(1, "a", 1, 0, 10),
      w(2, "b", 2, 20, 30),
      { ...r(3, "a", 1, 125, 131), process: "n2" },
      { ...r(4, null, 0, 200, 201), process: "n3" },
    ]),
    "E3",
    [[3, 2], [4, 2]],
  );
});

Deno.test("checkHistory() E4 passes probes that read the final version, skips without final", () => {
  const ops = [
    w(1, "a", 1, 0, 10),
    { ...r(2, "a", 1, 1000, 1001), probe: true },
    { ...r(3, "a", 1, 1000, 1001), probe: true, process: "n2" },
  ];
  assertPasses(history(eventual, ops, { k: { version: 1, value: "a" } }), "E4");
  assert.equal(checkHistory(history(eventual, ops)).results.E4, "skipped");
});

Deno.test("checkHistory() E4 fails a probe that read an older version than the final one", () => {
  assertViolations(
    history(eventual, [
      w(1, "a", 1, 0, 10),
      // A write whose answer was lost, but which reached the store.
      {
        id: 2,
        kind: "write",
        value: "b",
        invokeMs: 20,
        completeMs: null,
        outcome: "unknown",
        process: "n2",
      },
      { ...r(3, "a", 1, 1000, 1001), probe: true },
      { ...r(4, "b", 2, 1000, 1001), probe: true, process: "n2" },
    ], { k: { version: 2, value: "b" } }),
    "E4",
    [[3]],
  );
});

Deno.test("checkHistory() S1 and S2 pass a linearizable strong history", () => {
  const h = history(strong, [
    w(1, "a", 1, 0, 10),
    { ...r(2, null, 0, 5, 6), process: "n2" }, // concurrent with the write
    { ...r(3, "a", 1, 7, 8), process: "n3" },
    { ...r(4, "a", 1, 11, 12), process: "n2" },
    { id: 5, kind: "delete", version: 2, invokeMs: 20, completeMs: 30 },
    { ...r(6, null, 2, 31, 32), process: "n3" },
  ]);
  assertPasses(h, "S1");
  assertPasses(h, "S2");
});

Deno.test("checkHistory() S2 fails a read older than an acknowledged write or an earlier read", () => {
  const h = history(strong, [
    w(1, "a", 1, 0, 10),
    { ...w(2, "b", 2, 12, 40), process: "n2" },
    { ...r(3, "b", 2, 15, 20), process: "n3" }, // the new value, while the write runs
    { ...r(4, "a", 1, 21, 22), process: "n4" }, // then the old one: stale after read 3
    { ...r(5, "a", 1, 41, 42), process: "n4" }, // stale after write 2 completed
  ]);
  const result = checkHistory(h);
  assert.deepEqual(
    result.violations.filter((v) => v.guarantee === "S2").map((v) => v.ops),
    [[4, 3], [5, 3]],
  );
  assert.equal(result.results.S1, "fail");
});

Deno.test("checkHistory() S1 fails writes seen in different orders, which S2 cannot see", () => {
  // No version was recorded for the reads, as a system without versions would.
  const h = history(strong, [
    { id: 1, kind: "write", value: "a", invokeMs: 0, completeMs: 100 },
    { id: 2, kind: "write", value: "b", invokeMs: 0, completeMs: 100, process: "n2" },
    { id: 3, kind: "read", value: "a", found: true, invokeMs: 10, completeMs: 20, process: "n3" },
    { id: 4, kind: "read", value: "b", found: true, invokeMs: 30, completeMs: 40, process: "n3" },
    { id: 5, kind: "read", value: "b", found: true, invokeMs: 10, completeMs: 20, process: "n4" },
    { id: 6, kind: "read", value: "a", found: true, invokeMs: 30, completeMs: 40, process: "n4" },
  ]);
  const result = checkHistory(h);
  assert.equal(result.results.S1, "fail");
  assert.equal(result.results.S2, "skipped");
  assert.equal(result.violations.length, 1);
  assert.equal(result.violations[0]?.guarantee, "S1");
  assert.equal(result.violations[0]?.key, "k");
  assert.match(result.violations[0]!.message, /^Ops of k are not linearizable: read \d on n\d/);
});

Deno.test("checkHistory() S1 lets an unknown write take effect late and reports unknown on budget", () => {
  const h = history(strong, [
    w(1, "a", 1, 0, 10),
    { id: 2, kind: "write", value: "b", invokeMs: 20, completeMs: null, outcome: "unknown" },
    { ...r(3, "a", 1, 30, 31), process: "n2" },
    { ...r(4, "b", 2, 40, 41), process: "n2" },
  ]);
  assertPasses(h, "S1");
  const ops: HistoryOp[] = [];
  for (let i = 0; i < 6; i++) {
    ops.push({
      id: i,
      process: `n${i}`,
      key: "k",
      kind: "write",
      value: `v${i}`,
      invokeMs: 0,
      completeMs: 100,
      outcome: "ok",
    });
    ops.push({
      id: 10 + i,
      process: `n${i}`,
      key: "k",
      kind: "read",
      value: `v${(i * 5) % 6}`,
      found: true,
      invokeMs: 0,
      completeMs: 100,
      outcome: "ok",
    });
  }
  ops.push({
    id: 99,
    process: "n0",
    key: "k",
    kind: "read",
    found: false,
    invokeMs: 0,
    completeMs: 100,
    outcome: "ok",
  });
  const result = checkHistory({ format: "warp-history/1", keys: strong, ops }, { stepsMax: 10 });
  assert.equal(result.results.S1, "unknown");
  assert.deepEqual(result.violations, []);
  assert.deepEqual(result.stats.unknownKeys, [{ guarantee: "S1", key: "k" }]);
});

Deno.test("checkHistory() stops the linearizability searches once one key fails", () => {
  const keys = {
    a: { mode: "strong-distributed" },
    b: { mode: "strong-distributed" },
    c: { mode: "strong-local" },
  } as const;
  // Without versions, only S1 and SL1 (the searches) look at these ops.
  const stale = (key: string, first: number): HistoryOp[] => [
    {
      id: first,
      process: "n1",
      key,
      kind: "write",
      value: "x",
      invokeMs: 0,
      completeMs: 1,
      outcome: "ok",
    },
    {
      id: first + 1,
      process: "n1",
      key,
      kind: "read",
      found: false,
      invokeMs: 2,
      completeMs: 3,
      outcome: "ok",
    },
  ];
  const h: History = {
    format: "warp-history/1",
    keys,
    ops: [...stale("a", 1), ...stale("b", 3), ...stale("c", 5)],
  };
  const result = checkHistory(h);
  assert.deepEqual(result.violations.map((v) => [v.guarantee, v.key]), [["S1", "a"]]);
  assert.deepEqual(result.stats.skippedKeys, [
    { guarantee: "S1", key: "b" },
    { guarantee: "SL1", key: "c" },
  ]);
  assert.equal(result.results.S1, "fail");
  assert.equal(result.results.SL1, "unknown");
  // With a total budget of one step, key a runs out and the others are not searched.
  const budget = checkHistory(h, { stepsTotalMax: 1 });
  assert.deepEqual(budget.violations, []);
  assert.deepEqual(budget.stats.unknownKeys.map((u) => u.key), ["a", "b", "c"]);
  assert.equal(budget.results.S1, "unknown");
  assert.throws(() => checkHistory(h, { stepsTotalMax: 0 }), RangeError);
});

Deno.test("checkHistory() SL1 checks a single-writer key on its writer node only", () => {
  const ops = [
    w(1, "a", 1, 0, 10),
    r(2, "a", 1, 11, 12),
    { ...r(3, null, 0, 11, 12), process: "n2" }, // another node: SL1 promises nothing there
  ];
  assertPasses(history(local, ops), "SL1");
  assertViolations(history(local, [...ops, r(4, null, 0, 13, 14)]), "SL1", [[4, 2, 1]]);
  const twoWriters = checkHistory(
    history(local, [...ops, { ...w(5, "b", 2, 20, 21), process: "n2" }, r(4, null, 0, 30, 31)]),
  );
  assert.equal(twoWriters.results.SL1, "skipped");
  assert.equal(twoWriters.stats.sl1SkippedKeys, 1);
});

Deno.test("checkHistory() SL2 fails an L1 read served at or past the TTL", () => {
  const ops = [w(1, "a", 1, 0, 10), { ...r(2, "a", 1, 11, 12), source: "l1", ageMs: 999 }];
  assertPasses(history(local, ops as never), "SL2");
  assertViolations(
    history(local, [...ops, { ...r(3, "a", 1, 1011, 1012), source: "l1", ageMs: 1000 }] as never),
    "SL2",
    [[3]],
  );
});

Deno.test("checkHistory() skips guarantees of modes with no ops and honours options", () => {
  const h = history(eventual, [w(1, "a", 1, 0, 1), r(2, "x", 1, 2, 3), r(3, "y", 1, 2, 3)]);
  const result = checkHistory(h, { violationsMax: 1, guarantees: ["E1", "E2"] });
  assert.deepEqual(result.results, {
    E1: "fail",
    E1s: "skipped",
    E2: "pass",
    E3: "skipped",
    E4: "skipped",
    EP: "skipped",
    S1: "skipped",
    S2: "skipped",
    SL1: "skipped",
    SL2: "skipped",
    T1: "skipped",
    M1: "skipped",
    M2: "skipped",
    V1: "skipped",
    G1: "skipped",
    G2: "skipped",
    G3: "skipped",
    GV: "skipped",
    CL: "skipped",
  });
  assert.equal(result.violations.length, 1);
  assert.equal(result.stats.violations.E1, 2);
  assert.throws(() => checkHistory(h, { stepsMax: 0 }), RangeError);
  assert.throws(() => checkHistory(h, { guarantees: ["X1" as Guarantee] }), {
    name: "TypeError",
    message: "Unknown guarantee: X1",
  });
});

Deno.test("checkHistory() rejects malformed histories with a TypeError naming the problem", () => {
  const good = history(eventual, [w(1, "a", 1, 0, 1)]);
  const cases: [unknown, RegExp][] = [
    [null, /^Invalid history, expected an object: null$/],
    [{ ...good, format: "warp-history/2" }, /^Invalid history format.*"warp-history\/2"$/],
    [{ ...good, keys: { k: { mode: "fast" } } }, /^Invalid mode of key k: "fast"$/],
    [
      { ...good, ops: [{ ...good.ops[0], key: "other" }] },
      /key is not described in keys: "other"$/,
    ],
    [{ ...good, ops: [good.ops[0], good.ops[0]] }, /^Duplicate op id: 1$/],
    [
      { ...good, ops: [{ ...good.ops[0], completeMs: -1 }] },
      /^Invalid op 1, completes before it is invoked: -1$/,
    ],
    [
      { ...good, ops: [{ ...good.ops[0], completeMs: null }] },
      /outcome ok needs a completeMs: null$/,
    ],
    [{ ...good, ops: [{ ...good.ops[0], kind: "rename" }] }, /unknown kind: "rename"$/],
    [
      { ...good, ops: [{ ...good.ops[0], kind: "append" }] },
      /^Invalid op 1, kind is checked only against a model \(--model\), not Warp's contract: "append"$/,
    ],
    [
      { ...good, ops: [{ ...good.ops[0], process: true }] },
      /^Invalid op 1, process must be a string or a number: true$/,
    ],
    [{ ...good, final: { k: { value: 1 } } }, /^Invalid final entry of key k/],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => checkHistory(input as History), { name: "TypeError", message });
  }
});

Deno.test("checkHistory() finds nothing in histories of a correct store", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const h = syntheticHistory({ seed, ops: 400 });
    const result = checkHistory(h);
    assert.deepEqual(result.violations, [], `seed ${seed}`);
    for (const g of GUARANTEES) {
      // No leases, clears, updates, transactions or validator in these histories: G1-G3, GV,
      // CL, M1, M2, T1 and V1 have nothing to check.
      const expected = g.startsWith("G") || g === "CL" || g.startsWith("M") || g === "T1" ||
          g === "V1"
        ? "skipped"
        : "pass";
      assert.equal(result.results[g], expected, `seed ${seed} ${g}`);
    }
  }
});

Deno.test("checkHistory() finds a read made stale or invalid in a correct store's history", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1000 }), fc.nat(), (seed, pick) => {
      const h = syntheticHistory({ seed, ops: 200 });
      const reads = h.ops.filter((op) =>
        op.kind === "read" && op.found === true && op.version! > 0 && !op.probe &&
        // strong-local promises nothing about the reads of other nodes than the writer.
        (h.keys[op.key]!.mode !== "strong-local" || op.process === "n0")
      );
      fc.pre(reads.length > 0);
      const victim = reads[pick % reads.length]!;
      const broken = h.ops.map((op) =>
        op === victim ? { ...op, value: "never written", version: op.version! + 1000 } : op
      );
      const result = checkHistory({ ...h, ops: broken });
      assert.ok(
        result.violations.some((v) => v.ops[0] === victim.id && v.key === victim.key),
        JSON.stringify(victim),
      );
    }),
    { numRuns: 100 },
  );
});
