import assert from "node:assert/strict";
import { checkLeases, leaseExpiryMs } from "./leases.ts";
import { checkHistory } from "./consistency.ts";
import type { History, HistoryOp, LeaseOp } from "../history.ts";

const L = "rs.s0000001";

function history(
  ops: HistoryOp[],
  leaseOps: LeaseOp[],
  activeWritesMs = [0],
  revokedAtMs: number | null = null,
): History {
  return {
    format: "warp-history/1",
    keys: { "lst:0": { mode: "strong-distributed", leased: true } },
    ops,
    leases: {
      leaseCheckMs: 100,
      maxDriftPpm: 0,
      ops: leaseOps,
      records: { [L]: { ttlMs: 1000, activeWritesMs, revokedAtMs } },
    },
  };
}

const write: HistoryOp = {
  id: 1,
  process: "n0",
  key: "lst:0",
  kind: "write",
  value: "x",
  leases: [L],
  invokeMs: 1,
  completeMs: 2,
  outcome: "ok",
  version: 1,
};
const readAt = (id: number, ms: number, found = true): HistoryOp => ({
  id,
  process: "n1",
  key: "lst:0",
  kind: "read",
  ...(found ? { value: "x" } : {}),
  found,
  invokeMs: ms,
  completeMs: ms,
  outcome: "ok",
  version: 1,
});
const revoke = (invokeMs: number, completeMs: number): LeaseOp => ({
  id: 90,
  process: "n2",
  kind: "revoke",
  lease: L,
  invokeMs,
  completeMs,
  outcome: "ok",
});

Deno.test("G1: a read after the revocation completed may not serve the attached value", () => {
  const bad = checkLeases(history([write, readAt(2, 300)], [revoke(100, 250)], [0], 150));
  assert.deepEqual(bad.violations.map((v) => v.guarantee), ["G1"]);
  // Before completion (concurrent with the revocation), or absent after it: fine.
  assert.equal(
    checkLeases(
      history([write, readAt(2, 240), readAt(3, 300, false)], [revoke(100, 250)], [0], 150),
    ).violations.length,
    0,
  );
});

Deno.test("G2: a lease not kept alive may not serve past expiry plus the check window", () => {
  // Expires at 1000 (TTL after the grant); the bound is 1000 + 100 + 1.
  assert.equal(
    leaseExpiryMs({ ttlMs: 1000, activeWritesMs: [0, 600, 2000], revokedAtMs: null }),
    1600,
  );
  assert.equal(checkLeases(history([write, readAt(2, 1100)], [])).violations.length, 0);
  const bad = checkLeases(history([write, readAt(2, 1102)], []));
  assert.deepEqual(bad.violations.map((v) => v.guarantee), ["G2"]);
  // Kept alive at 600: alive until 1600.
  assert.equal(checkLeases(history([write, readAt(2, 1500)], [], [0, 600])).violations.length, 0);
});

Deno.test("G3: no keep-alive after death succeeds; attaching writes get the check window", () => {
  const keepalive: LeaseOp = {
    id: 91,
    process: "n1",
    kind: "keepalive",
    lease: L,
    invokeMs: 1200,
    completeMs: 1201,
    outcome: "ok",
  };
  assert.deepEqual(checkLeases(history([write], [keepalive])).violations.map((v) => v.guarantee), [
    "G3",
  ]);
  const late = { ...write, id: 5, value: "y", invokeMs: 1102, completeMs: 1103 };
  assert.deepEqual(checkLeases(history([late], [])).violations.map((v) => v.guarantee), ["G3"]);
  const inWindow = { ...write, id: 5, value: "y", invokeMs: 1050, completeMs: 1051 };
  assert.equal(checkLeases(history([inWindow], [])).violations.length, 0);
});

Deno.test("checkHistory reports G1-G3 and GV, and reads a dead value as its version", () => {
  const result = checkHistory(
    history([write, readAt(2, 300, false)], [revoke(100, 250)], [0], 150),
  );
  assert.equal(result.results.G1, "skipped"); // no read served an attached value
  assert.equal(result.results.G3, "pass");
  assert.equal(result.results.GV, "pass"); // absent at 300: the lease died at 150
  // The dead read counts as a read of version 1 for the value guarantees.
  assert.equal(result.results.S1, "pass");
  assert.equal(result.results.S2, "pass");
  const bad = checkHistory(history([write, readAt(2, 300)], [revoke(100, 250)], [0], 150));
  assert.equal(bad.results.G1, "fail");
  // Absent while the lease was alive: a live value lost.
  const lost = checkHistory(history([write, readAt(2, 120, false)], [revoke(100, 250)], [0], 150));
  assert.equal(lost.results.GV, "fail");
});
