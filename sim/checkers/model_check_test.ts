import assert from "node:assert/strict";
import fc from "fast-check";
import type { History, HistoryOp } from "../history.ts";
import { checkModel, type ModelName } from "./model_check.ts";
import { syntheticAppendKvHistory } from "./_synthetic.ts";

type Draft = Omit<HistoryOp, "id" | "process" | "invokeMs" | "completeMs" | "outcome">;

/** A history of ops one after another, each in [10 i, 10 i + 1], all ok unless said. */
function sequential(...drafts: (Draft & { outcome?: HistoryOp["outcome"] })[]): History {
  const ops = drafts.map((draft, i): HistoryOp => ({
    id: i + 1,
    process: i % 3,
    invokeMs: 10 * i,
    completeMs: draft.outcome === "unknown" ? null : 10 * i + 1,
    outcome: "ok",
    ...draft,
  }));
  return { format: "warp-history/1", keys: {}, ops };
}

Deno.test("checkModel() checks a register: reads see the last write, a delete makes it absent", () => {
  const good = sequential(
    { key: "r", kind: "read" },
    { key: "r", kind: "write", value: { a: 1, b: 2 } },
    { key: "r", kind: "read", value: { b: 2, a: 1 } },
    { key: "r", kind: "delete" },
    { key: "r", kind: "read", found: false },
    { key: "r", kind: "invalidate" },
  );
  assert.equal(checkModel(good, "register").status, "pass");
  const bad = sequential(
    { key: "r", kind: "write", value: 1 },
    { key: "r", kind: "delete" },
    { key: "r", kind: "read", value: 1 },
  );
  const result = checkModel(bad, "register");
  assert.equal(result.status, "fail");
  assert.equal(
    result.keys[0]?.explanation,
    "Ops of r are not linearizable: read 3 on process 2 (returned 1) cannot take effect " +
      "after ops 1, 2, which leave the key absent",
  );
  assert.deepEqual(result.keys[0]?.involved, [3, 2, 1]);
});

Deno.test("checkModel() checks a cas register: swapped, not swapped, failed and unknown cas", () => {
  const good = sequential(
    { key: "r", kind: "cas", expected: null, value: 1 },
    { key: "r", kind: "cas", expected: 5, value: 6, swapped: false },
    { key: "r", kind: "cas", expected: 1, value: 2, outcome: "fail" },
    { key: "r", kind: "cas", expected: 1, value: 3, outcome: "unknown" },
    { key: "r", kind: "read", value: 3 },
  );
  assert.equal(checkModel(good, "cas-register").status, "pass");
  const swappedWrongly = sequential(
    { key: "r", kind: "write", value: 1 },
    { key: "r", kind: "cas", expected: 2, value: 3 },
  );
  const result = checkModel(swappedWrongly, "cas-register");
  assert.equal(result.status, "fail");
  assert.match(result.keys[0]!.explanation!, /cas 2 on process 1 \(2 to 3, swapped\) cannot/);
  const notSwappedWrongly = sequential(
    { key: "r", kind: "write", value: 1 },
    { key: "r", kind: "cas", expected: 1, value: 3, swapped: false },
  );
  assert.equal(checkModel(notSwappedWrongly, "cas-register").status, "fail");
});

Deno.test("checkModel() starts registers at initial when given", () => {
  const h = sequential({ key: "r", kind: "read", value: 0 }, {
    key: "r",
    kind: "cas",
    expected: 0,
    value: 1,
  });
  assert.equal(checkModel(h, "cas-register").status, "fail");
  assert.equal(checkModel(h, "cas-register", { initial: 0 }).status, "pass");
  const kv = sequential({ key: "a", kind: "read", value: 0 }, { key: "b", kind: "read", value: 0 });
  assert.equal(checkModel(kv, "kv", { initial: 0 }).status, "pass");
  const absent = sequential({ key: "r", kind: "read", found: false });
  const result = checkModel(absent, "register", { initial: 7 });
  assert.equal(result.status, "fail");
  assert.match(result.keys[0]!.explanation!, /at the start, when it holds 7$/);
});

Deno.test("checkModel() checks append-kv: reads return the whole list in append order", () => {
  const good = sequential(
    { key: "l", kind: "read", value: [] },
    { key: "l", kind: "append", value: "x" },
    { key: "l", kind: "append", value: { n: 1 } },
    { key: "l", kind: "read", value: ["x", { n: 1 }] },
    { key: "l", kind: "write", value: ["y"] },
    { key: "l", kind: "read", value: ["y"] },
    { key: "l", kind: "delete" },
    { key: "l", kind: "read", found: false },
    { key: "m", kind: "read", value: null },
  );
  assert.equal(checkModel(good, "append-kv").status, "pass");
  const reordered = sequential(
    { key: "l", kind: "append", value: 1 },
    { key: "l", kind: "append", value: 2 },
    { key: "l", kind: "read", value: [2, 1] },
  );
  const result = checkModel(reordered, "append-kv");
  assert.equal(result.status, "fail");
  assert.equal(
    result.keys[0]?.explanation,
    "Ops of l are not linearizable: read 3 on process 2 (returned [2,1]) cannot take effect " +
      "after ops 1, 2, which leave [1,2]",
  );
});

Deno.test("checkModel() lets concurrent appends take either order, but one order for all readers", () => {
  const op = (id: number, kind: string, value: unknown, invokeMs: number, completeMs: number) =>
    ({ id, process: id, key: "l", kind, value, invokeMs, completeMs, outcome: "ok" }) as HistoryOp;
  const history = (first: unknown[], second: unknown[]): History => ({
    format: "warp-history/1",
    keys: {},
    ops: [
      op(1, "append", "a", 0, 10),
      op(2, "append", "b", 0, 10),
      op(3, "read", first, 11, 12),
      op(4, "read", second, 11, 12),
    ],
  });
  assert.equal(checkModel(history(["b", "a"], ["b", "a"]), "append-kv").status, "pass");
  assert.equal(checkModel(history(["a", "b"], ["b", "a"]), "append-kv").status, "fail");
});

Deno.test("checkModel() checks multi-register transactions, keys apart unless connected", () => {
  const txn = (...steps: [string, string, unknown][]) => ({
    key: steps[0]![1],
    kind: "txn" as const,
    txn: steps.map(([kind, key, value]) => ({ kind: kind as "read" | "write", key, value })),
  });
  const good = sequential(
    txn(["write", "x", 1], ["write", "y", 2]),
    txn(["read", "x", 1], ["read", "y", 2]),
    { key: "x", kind: "write", value: 3 },
    txn(["read", "x", 3], ["write", "y", 4]),
    { key: "y", kind: "read", value: 4 },
    { key: "z", kind: "read", found: false },
  );
  const result = checkModel(good, "multi-register");
  assert.equal(result.status, "pass");
  assert.deepEqual(result.keys.map((k) => k.key), ["x,y", "z"]);
  const torn = sequential(
    txn(["write", "x", 1], ["write", "y", 1]),
    txn(["read", "x", 1], ["read", "y", null]),
  );
  assert.equal(checkModel(torn, "multi-register").status, "fail");
  assert.throws(
    () => checkModel(torn, "kv"),
    /kind is not an op of model kv \(use multi-register\)/,
  );
  const noSteps = sequential({ key: "x", kind: "txn", txn: [] });
  assert.throws(() => checkModel(noSteps, "multi-register"), /a txn must list its steps in txn/);
});

Deno.test("checkModel() stops at the first failing key, and reports budgets as unknown", () => {
  const h = sequential(
    { key: "a", kind: "write", value: 1 },
    { key: "b", kind: "write", value: 1 },
    { key: "b", kind: "read", value: 2 },
    { key: "c", kind: "read", value: 9 },
  );
  const result = checkModel(h, "kv");
  assert.equal(result.status, "fail");
  assert.deepEqual(result.keys.map((k) => [k.key, k.status]), [
    ["a", "pass"],
    ["b", "fail"],
    ["c", "skipped"],
  ]);
  const ok = sequential(
    { key: "a", kind: "write", value: 1 },
    { key: "b", kind: "write", value: 1 },
    { key: "c", kind: "write", value: 1 },
  );
  const total = checkModel(ok, "kv", { stepsTotalMax: 2 });
  assert.equal(total.status, "unknown");
  assert.deepEqual(total.keys.map((k) => k.status), ["pass", "pass", "unknown"]);
  assert.equal(total.stats.steps, 2);
  assert.equal(checkModel(ok, "kv", { stepsMax: 1, stepsTotalMax: 100 }).status, "pass");
});

Deno.test("checkModel() answers empty when no op says anything", () => {
  const h = sequential(
    { key: "r", kind: "write", value: 1, outcome: "fail" },
    { key: "r", kind: "read", outcome: "unknown" },
    { key: "r", kind: "invalidate" },
  );
  const result = checkModel(h, "register");
  assert.equal(result.status, "empty");
  assert.deepEqual(result.stats, { ops: 3, checked: 0, failed: 1, unknown: 1, steps: 0 });
});

Deno.test("checkModel() rejects ops its model does not have, and misuse", () => {
  const cas = sequential({ key: "r", kind: "cas", expected: 1, value: 2 });
  assert.throws(() => checkModel(cas, "register"), {
    name: "TypeError",
    message: "Invalid op 1, kind is not an op of model register (use cas-register or kv): cas",
  });
  const append = sequential({ key: "r", kind: "append", value: 1 });
  assert.throws(() => checkModel(append, "kv"), /kind is not an op of model kv \(use append-kv\)/);
  const twoKeys = sequential({ key: "a", kind: "read" }, { key: "b", kind: "read" });
  assert.throws(() => checkModel(twoKeys, "cas-register"), {
    name: "TypeError",
    message:
      'Model cas-register checks one register, use kv for several keys; the ops name 2 keys: "a", "b"',
  });
  const notList = sequential({ key: "l", kind: "read", value: "ab" });
  assert.throws(
    () => checkModel(notList, "append-kv"),
    /^TypeError: Invalid op 1, the value read of an append-kv key must be an array: "ab"$/,
  );
  assert.throws(() => checkModel(cas, "queue" as ModelName), /^TypeError: Unknown model/);
  assert.throws(() => checkModel(append, "append-kv", { initial: [1] }), TypeError);
  assert.throws(() => checkModel(cas, "kv", { stepsMax: 0 }), RangeError);
  assert.throws(() => checkModel(cas, "kv", { stepsTotalMax: 1.5 }), RangeError);
});

Deno.test("checkModel() passes the porcupine-shaped synthetic history", () => {
  const history = syntheticAppendKvHistory({ seed: 3, ops: 400, clients: 20, keys: 4 });
  const result = checkModel(history, "append-kv", { stepsMax: 1_000_000 });
  assert.equal(
    result.status,
    "pass",
    JSON.stringify(result.keys.filter((k) => k.status !== "pass")),
  );
  assert.equal(result.keys.length, 4);
});

// --- Properties: sequential executions of each model, with real-time overlaps drawn around them.

interface Step {
  readonly kind: number;
  readonly key: number;
  readonly value: number;
  readonly before: number;
  readonly after: number;
  readonly fate: "ok" | "ok" | "unknown-applied" | "unknown-lost" | "fail";
}

const stepArb = fc.record<Step>({
  kind: fc.nat(99),
  key: fc.nat(2),
  value: fc.nat(4),
  before: fc.integer({ min: 0, max: 40 }),
  after: fc.integer({ min: 0, max: 40 }),
  fate: fc.constantFrom("ok", "ok", "ok", "unknown-applied", "unknown-lost", "fail"),
});

const KEYS = ["a", "b", "c"];

/**
 * Runs the steps one at a time on a plain sequential store (step i at 10 i ms) and
 * records each as an op whose interval is drawn around that instant. `overlap: false`
 * gives one client's history: ops one after the other, all ok.
 */
function execute(model: ModelName, steps: readonly Step[], overlap: boolean): History {
  const store = new Map<string, unknown>();
  const oneKey = model === "register" || model === "cas-register";
  const ops: HistoryOp[] = steps.map((step, i) => {
    const key = oneKey ? "r" : KEYS[step.key]!;
    const current = store.get(key) ?? (model === "append-kv" ? [] : null);
    const atMs = 10 * i;
    const fate = overlap ? step.fate : "ok";
    const applies = fate === "ok" || fate === "unknown-applied";
    const outcome = fate === "fail" ? "fail" : fate === "ok" ? "ok" : "unknown";
    const base = {
      id: i + 1,
      process: overlap ? i : 0,
      key,
      invokeMs: atMs - (overlap ? step.before : 0),
      completeMs: outcome === "unknown" && step.after % 2 === 0
        ? null
        : atMs + (overlap ? step.after : 1),
      outcome,
    } as const;
    const kinds = model === "append-kv"
      ? ["read", "read", "append", "append", "write", "delete"]
      : model === "register"
      ? ["read", "read", "write", "write", "delete"]
      : ["read", "read", "write", "cas", "cas", "delete"];
    const kind = kinds[step.kind % kinds.length]!;
    const value = `v${step.value}`;
    switch (kind) {
      case "read":
        // A read's fate is its own: it does not apply anything.
        return current === null
          ? { ...base, kind, found: false }
          : { ...base, kind, value: current };
      case "write": {
        const written = model === "append-kv" ? [value] : value;
        if (applies) store.set(key, written);
        return { ...base, kind, value: written };
      }
      case "delete":
        if (applies) store.delete(key);
        return { ...base, kind };
      case "append":
        if (applies) store.set(key, [...(current as unknown[]), value]);
        return { ...base, kind, value };
      default: {
        // cas: expect the current value half the time.
        const expected = step.value % 2 === 0 ? current : `v${step.value + 1}`;
        const swapped = expected === current;
        if (swapped && applies) store.set(key, value);
        // A cas that found something else: Jepsen's :fail, or an ok "not swapped".
        if (!swapped && outcome === "ok") {
          return { ...base, kind: "cas", expected, value, swapped: false };
        }
        if (swapped) return { ...base, kind: "cas", expected, value };
        return { ...base, kind: "cas", expected, value, outcome: "fail", completeMs: atMs + 1 };
      }
    }
  });
  return { format: "warp-history/1", keys: {}, ops };
}

for (const model of ["register", "cas-register", "kv", "append-kv"] as const) {
  Deno.test(`checkModel() finds every overlapping execution of ${model} linearizable`, () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), (steps) => {
        const result = checkModel(execute(model, steps, true), model, { stepsMax: 1_000_000 });
        assert.notEqual(result.status, "fail", JSON.stringify(result.keys));
        assert.notEqual(result.status, "unknown");
      }),
      { numRuns: 150 },
    );
  });

  Deno.test(`checkModel() finds a single client's ${model} history with one corrupted read not linearizable`, () => {
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 40 }), fc.nat(), (steps, pick) => {
        const history = execute(model, steps, false);
        const reads = history.ops.filter((op) => op.kind === "read");
        fc.pre(reads.length > 0);
        const victim = reads[pick % reads.length]!;
        const corrupted = model === "append-kv"
          ? [...(victim.found === false ? [] : victim.value as unknown[]), "never written"]
          : "never written";
        const ops = history.ops.map((op) =>
          op === victim ? { ...op, value: corrupted, found: true } : op
        );
        const result = checkModel({ ...history, ops }, model);
        assert.equal(result.status, "fail");
        assert.equal(result.keys.find((k) => k.status === "fail")?.key, victim.key);
      }),
      { numRuns: 150 },
    );
  });
}
