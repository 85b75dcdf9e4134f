/** The read-modify-write state machine (`update.ts`), with fast-check over store answers. */

import assert from "node:assert/strict";
import fc from "fast-check";
import { UPDATE_ABORT, UpdateRun } from "./update.ts";
import type { UpdateStep } from "./update.ts";

Deno.test("UpdateRun ends within attemptsMax, backs off within its bounds, and writes what the reducer returned", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 50 }),
      fc.integer({ min: 0, max: 400 }),
      fc.array(fc.boolean(), { maxLength: 30 }), // each write: lands (true) or conflicts
      fc.integer({ min: 0, max: 1000 }),
      (attemptsMax, backoffMs, backoffMaxMs, lands, start) => {
        const run = new UpdateRun<number>((n) => (n ?? 0) + 1, {
          attemptsMax,
          backoffMs,
          backoffMaxMs,
        });
        let step: UpdateStep<number> = run.start();
        let version = start;
        let writes = 0;
        for (let i = 0; step.type !== "done"; i++) {
          assert.ok(i < 4 * attemptsMax + 4, "the run ends");
          if (step.type === "read") step = run.onRead({ found: true, value: version, version });
          else if (step.type === "write") {
            assert.equal(step.value, version + 1, "the reducer's value, on the version read");
            assert.equal(step.expectedVersion, version);
            writes++;
            const ok = lands[writes - 1] ?? true;
            version++; // either ours or a competitor's landed
            step = run.onWritten(ok ? { ok: true, version } : { ok: false });
          } else {
            assert.ok(step.minMs >= 0 && step.minMs <= step.maxMs);
            assert.ok(step.maxMs <= Math.max(backoffMaxMs, 0) && step.maxMs <= backoffMs * 2 ** 30);
            step = run.onWaited();
          }
        }
        assert.ok(writes <= attemptsMax);
        const result = step.result;
        assert.equal(result.attempts, writes);
        if (result.status === "ok") {
          assert.equal(result.value, version);
          assert.equal(result.version, version);
        } else {
          assert.equal(result.status, "conflict");
          assert.equal(writes, attemptsMax);
        }
      },
    ),
  );
});

Deno.test("UpdateRun refuses steps out of order and bad limits", () => {
  const run = new UpdateRun<number>((n) => n ?? 0);
  assert.throws(() => run.onRead({ found: false, value: undefined, version: 0 }), TypeError);
  run.start();
  assert.throws(() => run.start(), TypeError);
  assert.throws(() => run.onWritten({ ok: false }), TypeError);
  assert.throws(() => run.onRead({ found: false, value: undefined, version: -1 }), RangeError);
  assert.throws(() => new UpdateRun<number>((n) => n!, { attemptsMax: 101 }), RangeError);
  assert.throws(() => new UpdateRun<number>((n) => n!, { backoffMaxMs: Infinity }), RangeError);
  assert.throws(() => new UpdateRun<number>(null as never), TypeError);
});

Deno.test("UpdateRun: a reducer's abort ends the run without a write; a throw ends it too", () => {
  const aborting = new UpdateRun<number>((_, { abort }) => abort());
  aborting.start();
  const done = aborting.onRead({ found: true, value: 1, version: 4 });
  assert.deepEqual(done, {
    type: "done",
    result: { status: "aborted", by: "reducer", version: 4, attempts: 1 },
  });
  const throwing = new UpdateRun<number>(() => {
    throw new Error("Boom");
  });
  throwing.start();
  assert.throws(() => throwing.onRead({ found: false, value: undefined, version: 0 }), /Boom/);
  assert.throws(() => throwing.onWritten({ ok: true, version: 1 }), TypeError, "the run is over");
  assert.equal(typeof UPDATE_ABORT, "symbol");
});
