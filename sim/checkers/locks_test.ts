import assert from "node:assert/strict";
import { checkLockHistory, LOCK_HISTORY_FORMAT, lockL3BoundMs } from "./locks.ts";
import type {
  LockAcquireRecord,
  LockClaimRecord,
  LockGrantRecord,
  LockHistory,
  LockMisuseRecord,
  LockWriteRecord,
} from "./locks.ts";

const grant = (
  holder: string,
  token: number,
  from: number,
  to: number,
  extra: Partial<LockGrantRecord> = {},
): LockGrantRecord => ({
  lock: "L",
  node: holder.split("/")[0]!,
  holder,
  token,
  grantTrueMs: from,
  beliefEndTrueMs: to,
  renewals: 0,
  ...extra,
});

const claim = (
  holder: string,
  token: number,
  checkTrueMs: number,
  arrivalTrueMs: number,
  admitted: boolean,
): LockClaimRecord => ({
  lock: "L",
  node: holder.split("/")[0]!,
  holder,
  token,
  checkTrueMs,
  arrivalTrueMs,
  admitted,
});

const install = (holder: string, revision: number, trueMs: number, prev?: string) =>
  ({
    key: "lock/L",
    lock: "L",
    trueMs,
    kind: prev === undefined ? "create" : "update",
    revision,
    by: holder.split("/").slice(0, 2).join("/"),
    holder,
    ...(prev !== undefined && { prevHolder: prev }),
  }) as LockWriteRecord;

function history(parts: Partial<LockHistory>): LockHistory {
  return {
    format: LOCK_HISTORY_FORMAT,
    grants: [],
    claims: [],
    acquires: [],
    misuses: [],
    crashes: [],
    ...parts,
  };
}

const guarantees = (h: LockHistory) => checkLockHistory(h).violations.map((v) => v.guarantee);

// Two grants in sequence, each with a fenced op inside its belief.
const A = grant("a/1/1", 5, 0, 100, { releaseTrueMs: 60 });
const B = grant("b/1/1", 9, 70, 170);
const GOOD = history({
  grants: [A, B],
  claims: [claim("a/1/1", 5, 10, 11, true), claim("b/1/1", 9, 80, 81, true)],
  writes: [
    install("a/1/1", 5, 0),
    {
      key: "lock/L",
      lock: "L",
      trueMs: 61,
      kind: "delete",
      revision: 6,
      by: "a/1",
      prevHolder: "a/1/1",
    },
    install("b/1/1", 9, 69),
  ],
});

Deno.test("checkLockHistory() passes a history of disjoint beliefs and ordered fenced ops", () => {
  const { violations, results } = checkLockHistory(GOOD);
  assert.deepEqual(violations, []);
  assert.deepEqual(results, { L1: "pass", L2: "pass", L3: "skipped", L4: "pass" });
});

Deno.test("checkLockHistory() reports L1 when a grant starts inside another's belief", () => {
  const h = history({ grants: [grant("a/1/1", 5, 0, 100), grant("b/1/1", 9, 90, 200)] });
  assert.deepEqual(guarantees(h), ["L1"]);
  // The belief ends at release, crash or loss, whichever comes first.
  for (const end of [{ releaseTrueMs: 80 }, { crashTrueMs: 80 }, { lostTrueMs: 80 }]) {
    const ok = history({ grants: [grant("a/1/1", 5, 0, 100, end), grant("b/1/1", 9, 90, 200)] });
    assert.deepEqual(guarantees(ok), [], JSON.stringify(end));
  }
  // A grant answered after its belief ended is empty and overlaps nothing.
  const empty = history({ grants: [grant("a/1/1", 5, 150, 100), grant("b/1/1", 9, 90, 200)] });
  assert.deepEqual(guarantees(empty), []);
});

Deno.test("checkLockHistory() reports L1 for a fenced op that acts after a newer grant (stale holder)", () => {
  // Checked inside the belief, then a pause; it arrives after b was granted: L1, not L2.
  const h = history({
    grants: [grant("a/1/1", 5, 0, 100), grant("b/1/1", 9, 110, 200)],
    claims: [claim("b/1/1", 9, 120, 121, true), claim("a/1/1", 5, 50, 250, false)],
  });
  const { violations, results } = checkLockHistory(h);
  assert.deepEqual(violations.map((v) => v.guarantee), ["L1"]);
  assert.match(violations[0]!.message, /stale belief \(rejected by the fence\)/);
  assert.equal(results.L2, "pass");
  // Checking outside the belief is L1 too.
  const late = history({ grants: [A], claims: [claim("a/1/1", 5, 70, 71, true)] });
  assert.deepEqual(guarantees(late), ["L1"]);
  // And so is an op under no grant.
  const forged = history({ grants: [A], claims: [claim("a/1/1", 7, 10, 11, true)] });
  assert.deepEqual(guarantees(forged), ["L1"]);
});

Deno.test("checkLockHistory() reports L2 when the fence admits a lower token after a higher one", () => {
  const h = history({
    grants: [A, B],
    claims: [claim("b/1/1", 9, 80, 81, true), claim("a/1/1", 5, 10, 90, true)],
  });
  assert.ok(guarantees(h).includes("L2"));
  const rejected = history({
    grants: [A, B],
    claims: [claim("b/1/1", 9, 80, 81, true), claim("a/1/1", 5, 10, 90, false)],
  });
  assert.ok(!guarantees(rejected).includes("L2"));
});

Deno.test("checkLockHistory() reports L2 for tokens that do not grow with the grants", () => {
  // Without the coordinator's log: by answer time.
  const reversed = history({ grants: [grant("a/1/1", 9, 0, 50), grant("b/1/1", 5, 60, 100)] });
  assert.deepEqual(guarantees(reversed), ["L2"]);
  const twins = history({ grants: [grant("a/1/1", 5, 0, 50), grant("b/1/1", 5, 60, 100)] });
  assert.ok(guarantees(twins).includes("L2"));
  // With it: the token must be the revision of the write that installed the grant's record,
  // and a renewal's revision is not a token.
  const renewalToken = history({
    grants: [grant("a/1/1", 6, 0, 50)],
    writes: [install("a/1/1", 5, 0), install("a/1/1", 6, 1, "a/1/1")],
  });
  assert.deepEqual(guarantees(renewalToken), ["L2"]);
  const early = history({ grants: [grant("a/1/1", 5, 0, 50)], writes: [install("a/1/1", 5, 3)] });
  assert.deepEqual(guarantees(early), ["L2"]);
  // A grant answered late (after a newer one) is fine: the coordinator's order counts.
  const late = history({
    grants: [grant("a/1/1", 5, 150, 100), grant("b/1/1", 9, 110, 200)],
    writes: [install("a/1/1", 5, 0), install("b/1/1", 9, 105, "a/1/1")],
  });
  assert.deepEqual(guarantees(late), []);
});

Deno.test("checkLockHistory() reports L3 when a waiter waits beyond the bound", () => {
  const bound = lockL3BoundMs(100, 500, 1, 10);
  const l3 = { fromMs: 0, untilMs: 10_000, boundMs: bound };
  const waiter = (startTrueMs: number, endTrueMs: number, outcome: string): LockAcquireRecord => ({
    lock: "L",
    node: "b",
    op: 1,
    startTrueMs,
    endTrueMs,
    timeoutMs: 1000,
    outcome,
  });
  // The holder crashed at 40; b waited since 10 and got it at 40 + 100 (within the bound).
  const crashed = grant("a/1/1", 5, 0, 100, { crashTrueMs: 40 });
  const ok = history({
    grants: [crashed, grant("b/1/2", 9, 140, 240)],
    acquires: [waiter(10, 140, "granted")],
    l3,
  });
  const checked = checkLockHistory(ok);
  assert.deepEqual(checked.violations, []);
  assert.equal(checked.results.L3, "pass");
  assert.equal(checked.l3.judged, 1);
  assert.equal(checked.l3.worstDelayMs, 100);
  // Two TTLs later is too late.
  const slow = history({
    grants: [crashed, grant("b/1/2", 9, 240, 340)],
    acquires: [waiter(10, 240, "granted")],
    l3,
  });
  assert.deepEqual(guarantees(slow), ["L3"]);
  // Never granted, the waiter still waiting: too late as well.
  const never = history({ grants: [crashed], acquires: [waiter(10, 5000, "TIMEOUT")], l3 });
  assert.deepEqual(guarantees(never), ["L3"]);
  // No waiter (it gave up before the bound): nothing to judge.
  const gaveUp = history({ grants: [crashed], acquires: [waiter(10, 50, "TIMEOUT")], l3 });
  assert.equal(checkLockHistory(gaveUp).results.L3, "skipped");
  // A record installed for a holder that never heard of it starts the stretch again.
  const ghost = history({
    grants: [crashed, grant("b/1/2", 9, 240, 340)],
    acquires: [waiter(10, 240, "granted")],
    writes: [install("a/1/1", 5, 0), install("c/1/1", 7, 135, "a/1/1"), install("b/1/2", 9, 239)],
    l3,
  });
  assert.deepEqual(guarantees(ghost), []);
});

Deno.test("checkLockHistory() reports L4 for a renew or release of a lost grant that succeeds or writes", () => {
  const misuse = (outcome: string, op = 7): LockMisuseRecord => ({
    lock: "L",
    node: "a",
    op,
    kind: "release",
    handle: 1,
    trueMs: 200,
    outcome,
  });
  assert.deepEqual(guarantees(history({ misuses: [misuse("LOCK_NOT_HELD")] })), []);
  assert.deepEqual(guarantees(history({ misuses: [misuse("ok")] })), ["L4"]);
  const wrote = history({
    misuses: [misuse("LOCK_NOT_HELD")],
    writes: [{
      key: "lock/L",
      lock: "L",
      trueMs: 201,
      kind: "delete",
      revision: 12,
      by: "a/1",
      op: 7,
      prevHolder: "a/1/1",
    }],
  });
  assert.deepEqual(guarantees(wrote), ["L4"]);
  // In the coordinator's log: a renewal or delete by another than the record's holder.
  const foreign = history({
    writes: [
      install("a/1/1", 5, 0),
      { ...install("a/1/1", 6, 10, "a/1/1"), by: "b/1" },
      {
        key: "lock/L",
        lock: "L",
        trueMs: 20,
        kind: "delete",
        revision: 7,
        by: "a/2",
        prevHolder: "a/1/1",
      },
    ],
  });
  assert.deepEqual(guarantees(foreign), ["L4", "L4"]);
});

Deno.test("checkLockHistory() rejects an unknown format", () => {
  assert.throws(
    () => checkLockHistory({ ...GOOD, format: "nope" } as unknown as LockHistory),
    TypeError,
  );
});
