import assert from "node:assert/strict";
import fc from "fast-check";
import { checkLinearizability, type Operation } from "./linearizability.ts";
import type { KvInput } from "./models.ts";
import {
  appendKvModel,
  type CasRegisterInput,
  casRegisterModel,
  kvModel,
  type RegisterInput,
  registerModel,
} from "./models.ts";

type RegisterOp = Operation<RegisterInput<string>, string | null>;

function write(
  id: number,
  value: string | null,
  callMs: number,
  returnMs: number | null,
  outcome: "ok" | "fail" | "unknown" = "ok",
): RegisterOp {
  return { id, input: { kind: "write", value }, callMs, returnMs, outcome };
}

function read(id: number, output: string | null, callMs: number, returnMs: number): RegisterOp {
  return { id, input: { kind: "read" }, output, callMs, returnMs, outcome: "ok" };
}

const register = registerModel<string>();

Deno.test("checkLinearizability() passes an empty history and a sequential one", () => {
  assert.equal(checkLinearizability(register, []).status, "pass");
  const result = checkLinearizability(register, [
    read(1, null, 0, 1),
    write(2, "a", 2, 3),
    read(3, "a", 4, 5),
    write(4, null, 6, 7),
    read(5, null, 8, 9),
  ]);
  assert.equal(result.status, "pass");
  assert.deepEqual(result.partitions[0]?.ops, [1, 2, 3, 4, 5]);
});

Deno.test("checkLinearizability() fails a stale read after a write completed", () => {
  const result = checkLinearizability(register, [
    write(1, "a", 0, 10),
    write(2, "b", 20, 30),
    read(3, "a", 40, 50),
  ]);
  assert.equal(result.status, "fail");
  assert.deepEqual(result.partitions[0]?.counterexample, { linearized: [1, 2], blocked: 3 });
});

Deno.test("checkLinearizability() passes a read concurrent with a write, old or new", () => {
  for (const seen of ["a", "b"]) {
    const result = checkLinearizability(register, [
      write(1, "a", 0, 10),
      write(2, "b", 20, 40),
      read(3, seen, 25, 30),
    ]);
    assert.equal(result.status, "pass", `read of ${seen}`);
  }
});

Deno.test("checkLinearizability() fails concurrent writes seen in different orders by two readers", () => {
  const result = checkLinearizability(register, [
    write(1, "a", 0, 100),
    write(2, "b", 0, 100),
    read(3, "a", 10, 20),
    read(4, "b", 30, 40),
    read(5, "b", 10, 20),
    read(6, "a", 30, 40),
  ]);
  assert.equal(result.status, "fail");
  // The same reads in one order are fine.
  const ordered = checkLinearizability(register, [
    write(1, "a", 0, 100),
    write(2, "b", 0, 100),
    read(3, "a", 10, 20),
    read(4, "b", 30, 40),
    read(5, "a", 10, 20),
    read(6, "b", 30, 40),
  ]);
  assert.equal(ordered.status, "pass");
});

Deno.test("checkLinearizability() lets an unknown write take effect late, or never", () => {
  const late = checkLinearizability(register, [
    write(1, "a", 0, 1),
    write(2, "b", 5, null, "unknown"),
    read(3, "a", 10, 11),
    read(4, "b", 1000, 1001),
  ]);
  assert.equal(late.status, "pass");
  const never = checkLinearizability(register, [
    write(1, "a", 0, 1),
    write(2, "b", 5, 6, "unknown"),
    read(3, "a", 1000, 1001),
  ]);
  assert.equal(never.status, "pass");
});

Deno.test("checkLinearizability() fails an unknown write seen before its call or undone", () => {
  const early = checkLinearizability(register, [
    read(1, "b", 0, 1),
    write(2, "b", 5, null, "unknown"),
  ]);
  assert.equal(early.status, "fail");
  const undone = checkLinearizability(register, [
    write(1, "a", 0, 1),
    write(2, "b", 5, null, "unknown"),
    read(3, "b", 10, 11),
    read(4, "a", 20, 21),
  ]);
  assert.equal(undone.status, "fail");
  assert.deepEqual(undone.partitions[0]?.counterexample, { linearized: [1, 2, 3], blocked: 4 });
});

Deno.test("checkLinearizability() fails a read of a failed write's value", () => {
  const result = checkLinearizability(register, [
    write(1, "a", 0, 10, "fail"),
    read(2, "a", 5, 20),
  ]);
  assert.equal(result.status, "fail");
  assert.deepEqual(result.partitions[0]?.ops, [2]);
});

Deno.test("checkLinearizability() does not take a write that changes nothing now as read-only", () => {
  // Deleting an absent key changes nothing at the start, but here it must follow the write.
  const result = checkLinearizability(register, [
    write(1, null, 0, 10),
    write(2, "a", 0, 10),
    read(3, null, 20, 21),
  ]);
  assert.equal(result.status, "pass");
});

Deno.test("checkLinearizability() counts ops touching at an instant as concurrent", () => {
  const result = checkLinearizability(register, [write(1, "a", 0, 10), read(2, null, 10, 20)]);
  assert.equal(result.status, "pass");
});

Deno.test("checkLinearizability() answers unknown, never pass, when the budget runs out", () => {
  const ops: RegisterOp[] = [];
  for (let i = 0; i < 5; i++) ops.push(write(i, `v${i}`, 0, 100));
  for (let i = 0; i < 5; i++) ops.push(read(100 + i, `v${(i * 3) % 5}`, 0, 100));
  ops.push(read(200, "never written", 0, 100));
  const result = checkLinearizability(register, ops, { stepsMax: 50 });
  assert.equal(result.status, "unknown");
  assert.equal(result.steps, 50);
  assert.equal(result.partitions[0]?.counterexample, undefined);
  assert.equal(checkLinearizability(register, ops).status, "fail");
});

Deno.test("checkLinearizability() rejects malformed operations", () => {
  assert.throws(
    () => checkLinearizability(register, [read(1, null, 0, 1), read(1, null, 2, 3)]),
    { name: "TypeError", message: "Duplicate operation id: 1" },
  );
  assert.throws(() => checkLinearizability(register, [read(1, null, 5, 1)]), RangeError);
  assert.throws(() => checkLinearizability(register, [read(1, null, NaN, 1)]), TypeError);
  assert.throws(() => checkLinearizability(register, [], { stepsMax: 0 }), RangeError);
});

Deno.test("casRegisterModel() accepts successful and failed cas only where they fit", () => {
  const model = casRegisterModel<number>();
  type CasOp = Operation<CasRegisterInput<number>, number | boolean | null>;
  const op = (
    id: number,
    input: CasRegisterInput<number>,
    output: number | boolean | null | undefined,
    callMs: number,
  ): CasOp => ({
    id,
    input,
    ...(output === undefined ? {} : { output }),
    callMs,
    returnMs: callMs + 1,
    outcome: "ok",
  });
  const good = checkLinearizability(model, [
    op(1, { kind: "cas", expected: null, value: 1 }, true, 0),
    op(2, { kind: "cas", expected: null, value: 2 }, false, 2),
    op(3, { kind: "cas", expected: 1, value: 3 }, true, 4),
    op(4, { kind: "read" }, 3, 6),
  ]);
  assert.equal(good.status, "pass");
  const bad = checkLinearizability(model, [
    op(1, { kind: "write", value: 1 }, undefined, 0),
    op(2, { kind: "cas", expected: 1, value: 2 }, false, 2),
  ]);
  assert.equal(bad.status, "fail");
  const unknownCas = checkLinearizability(model, [
    op(1, { kind: "write", value: 1 }, undefined, 0),
    {
      id: 2,
      input: { kind: "cas", expected: 1, value: 2 },
      callMs: 2,
      returnMs: null,
      outcome: "unknown",
    },
    op(3, { kind: "read" }, 2, 10),
  ]);
  assert.equal(unknownCas.status, "pass");
});

Deno.test("kvModel() checks each key on its own and reports the failing one", () => {
  const result = checkLinearizability(kvModel<number>(), [
    { id: 1, input: { kind: "write", key: "x", value: 1 }, callMs: 0, returnMs: 1, outcome: "ok" },
    { id: 2, input: { kind: "write", key: "y", value: 2 }, callMs: 0, returnMs: 1, outcome: "ok" },
    { id: 3, input: { kind: "read", key: "x" }, output: 1, callMs: 2, returnMs: 3, outcome: "ok" },
    {
      id: 4,
      input: { kind: "read", key: "y" },
      output: null,
      callMs: 2,
      returnMs: 3,
      outcome: "ok",
    },
  ]);
  assert.equal(result.status, "fail");
  assert.deepEqual(result.partitions.map((p) => p.status), ["pass", "fail"]);
  assert.deepEqual(result.partitions[1]?.counterexample, { linearized: [2], blocked: 4 });
});

Deno.test("checkLinearizability() skips the partitions after a failing one", () => {
  const op = (id: number, key: string, kind: "read" | "write", value: number | null) => ({
    id,
    input: kind === "read" ? { kind, key } as const : { kind, key, value } as const,
    ...(kind === "read" ? { output: value } : {}),
    callMs: id,
    returnMs: id + 0.5,
    outcome: "ok",
  } as const);
  const result = checkLinearizability(kvModel<number>(), [
    op(1, "x", "read", 7),
    op(2, "y", "write", 1),
    op(3, "z", "read", null),
  ]);
  assert.equal(result.status, "fail");
  assert.deepEqual(result.partitions.map((p) => [p.status, p.ops, p.steps]), [
    ["fail", [1], 1],
    ["skipped", [2], 0],
    ["skipped", [3], 0],
  ]);
});

Deno.test("checkLinearizability() shares stepsTotalMax among partitions; those left are unknown", () => {
  const op = (id: number, key: string) => ({
    id,
    input: { kind: "write", key, value: id } as const,
    callMs: id,
    returnMs: id + 0.5,
    outcome: "ok",
  } as const);
  const ops = [op(1, "x"), op(2, "x"), op(3, "y"), op(4, "z")];
  const result = checkLinearizability(kvModel<number>(), ops, { stepsTotalMax: 3 });
  assert.equal(result.status, "unknown");
  assert.deepEqual(result.partitions.map((p) => [p.status, p.steps]), [
    ["pass", 2],
    ["pass", 1],
    ["unknown", 0],
  ]);
  assert.equal(checkLinearizability(kvModel<number>(), ops, { stepsTotalMax: 4 }).status, "pass");
  assert.throws(() => checkLinearizability(register, [], { stepsTotalMax: 0 }), RangeError);
  assert.equal(checkLinearizability(register, [], { stepsTotalMax: Infinity }).status, "pass");
});

Deno.test("checkLinearizability() finds a failing partition behind a hard one, in turns", () => {
  // Partition x: many concurrent writes and reads whose search takes long; partition y:
  // a read of a value never written, after it.
  const ops: Operation<KvInput<number>, number | null | boolean>[] = [];
  for (let i = 0; i < 8; i++) {
    ops.push({
      id: i,
      input: { kind: "write", key: "x", value: i },
      callMs: 0,
      returnMs: 100,
      outcome: "ok",
    });
    ops.push({
      id: 100 + i,
      input: { kind: "read", key: "x" },
      output: (i * 3) % 8,
      callMs: 0,
      returnMs: 100,
      outcome: "ok",
    });
  }
  ops.push({
    id: 200,
    input: { kind: "read", key: "x" },
    output: 99,
    callMs: 0,
    returnMs: 100,
    outcome: "ok",
  });
  ops.push({
    id: 300,
    input: { kind: "read", key: "y" },
    output: 7,
    callMs: 0,
    returnMs: 1,
    outcome: "ok",
  });
  const result = checkLinearizability(kvModel<number>(), ops, { stepsMax: 1_000_000 });
  assert.equal(result.status, "fail");
  assert.deepEqual(result.partitions.map((p) => p.status), ["skipped", "fail"]);
  assert.equal(result.partitions[0]!.steps, 1024, "x had one turn before y failed");
});

Deno.test("registerModel() and kvModel() start from initial", () => {
  const readZero = { id: 1, input: { kind: "read" } as const, output: 0, callMs: 0, returnMs: 1 };
  const ok = { outcome: "ok" } as const;
  assert.equal(
    checkLinearizability(registerModel<number>(), [{ ...readZero, ...ok }]).status,
    "fail",
  );
  assert.equal(
    checkLinearizability(registerModel<number>({ initial: 0 }), [{ ...readZero, ...ok }]).status,
    "pass",
  );
  const kv = kvModel<number>({ initial: 0 });
  const cas = {
    id: 1,
    input: { kind: "cas", key: "k", expected: 0, value: 1 } as const,
    output: true,
    callMs: 0,
    returnMs: 1,
    ...ok,
  };
  const read = {
    id: 2,
    input: { kind: "read", key: "k" } as const,
    output: 1,
    callMs: 2,
    returnMs: 3,
    ...ok,
  };
  assert.equal(checkLinearizability(kv, [cas, read]).status, "pass");
});

Deno.test("appendKvModel() keeps each key's appends in order; a write replaces the list", () => {
  const model = appendKvModel<string>();
  const ok = { outcome: "ok" } as const;
  const result = checkLinearizability(model, [
    { id: 1, input: { kind: "append", key: "k", value: "a" }, callMs: 0, returnMs: 1, ...ok },
    { id: 2, input: { kind: "append", key: "j", value: "b" }, callMs: 0, returnMs: 1, ...ok },
    { id: 3, input: { kind: "read", key: "k" }, output: ["a"], callMs: 2, returnMs: 3, ...ok },
    { id: 4, input: { kind: "write", key: "k", value: ["z"] }, callMs: 4, returnMs: 5, ...ok },
    { id: 5, input: { kind: "append", key: "k", value: "c" }, callMs: 6, returnMs: 7, ...ok },
    { id: 6, input: { kind: "read", key: "k" }, output: ["z", "c"], callMs: 8, returnMs: 9, ...ok },
    { id: 7, input: { kind: "read", key: "j" }, output: [], callMs: 8, returnMs: 9, ...ok },
  ]);
  assert.equal(result.status, "fail");
  assert.deepEqual(result.partitions.map((p) => p.status), ["pass", "fail"]);
});

/** A register really executed one operation at a time, then given wider intervals. */
const executedHistory = fc.array(
  fc.record({
    isWrite: fc.boolean(),
    isDelete: fc.boolean(),
    before: fc.integer({ min: 0, max: 60 }),
    after: fc.integer({ min: 0, max: 60 }),
    outcome: fc.constantFrom("ok", "ok", "ok", "unknown-applied", "unknown-lost", "fail"),
  }),
  { maxLength: 60 },
).map((steps) => {
  let value: string | null = null;
  const ops: RegisterOp[] = [];
  steps.forEach((step, i) => {
    const atMs = i * 10;
    const callMs = atMs - step.before;
    const returnMs = atMs + step.after;
    if (step.isWrite) {
      const written = step.isDelete ? null : `w${i}`;
      if (step.outcome === "ok" || step.outcome === "unknown-applied") value = written;
      const outcome = step.outcome === "ok" ? "ok" : step.outcome === "fail" ? "fail" : "unknown";
      ops.push(write(i, written, callMs, outcome === "ok" ? returnMs : null, outcome));
    } else {
      ops.push(read(i, value, callMs, returnMs));
    }
  });
  return ops;
});

Deno.test("checkLinearizability() passes every history of a really sequential register", () => {
  fc.assert(
    fc.property(executedHistory, (ops) => {
      const result = checkLinearizability(register, ops);
      assert.equal(result.status, "pass", JSON.stringify(result.partitions[0]?.counterexample));
    }),
    { numRuns: 300 },
  );
});

Deno.test("checkLinearizability() fails such a history once a read returns a value never written", () => {
  fc.assert(
    fc.property(executedHistory, fc.nat(), (ops, pick) => {
      const reads = ops.filter((op) => op.input.kind === "read");
      fc.pre(reads.length > 0);
      const victim = reads[pick % reads.length]!;
      const broken = ops.map((op) => op === victim ? { ...op, output: "never written" } : op);
      assert.equal(checkLinearizability(register, broken).status, "fail");
    }),
    { numRuns: 200 },
  );
});
