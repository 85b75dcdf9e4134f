import assert from "node:assert/strict";
import { SimCoordinator } from "../sim/_coordinator.ts";
import type { CoordinatorOptions } from "../sim/_coordinator.ts";
import { Timeline } from "../sim/_timeline.ts";
import { Prng } from "../sim/prng.ts";

function coordinator(
  timeline: Timeline,
  options: Partial<CoordinatorOptions> = {},
): SimCoordinator<string> {
  return new SimCoordinator<string>(timeline, {
    nodes: 2,
    prng: new Prng(7),
    latencyMeanMs: 0.5,
    latencyCapFactor: 5,
    timeoutMs: 50,
    timeout: "raced",
    hopDraws: "per-hop",
    ...options,
  });
}

Deno.test("SimCoordinator.get() answers a stale read with a state the key really had, deletes included", () => {
  const timeline = new Timeline(10_000);
  const coord = coordinator(timeline, { staleRate: 1, staleMaxMs: 100 });
  timeline.at(0, () => assert.ok(coord.put("k", "v1", undefined).ok)); // revision 1
  timeline.at(50, () => assert.ok(coord.remove("k", 1).ok)); // revision 2
  timeline.at(100, () => assert.ok(coord.put("k", "v2", undefined).ok)); // revision 3
  const seen = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    timeline.at(120, () => {
      const read = coord.get("k");
      const state = `${read.record ?? "absent"}@${read.revision}`;
      seen.set(state, (seen.get(state) ?? 0) + 1);
    });
  }
  timeline.runUntil(200);
  // Read at 120 from up to 100 ms before: v1 (20–50), absent after the delete (50–100), v2.
  assert.deepEqual([...seen.keys()].sort(), ["absent@0", "v1@1", "v2@3"]);
  assert.equal(coord.staleReads, 300);
  // Faults off: every read is current.
  timeline.endFaults();
  timeline.at(250, () => assert.deepEqual(coord.get("k"), { ok: true, record: "v2", revision: 3 }));
  timeline.runUntil(300);
});

Deno.test("SimCoordinator.put() compare-and-sets, and forgets a record past its TTL", () => {
  const timeline = new Timeline(10_000);
  const coord = coordinator(timeline);
  timeline.at(0, () => {
    assert.deepEqual(coord.put("k", "a", undefined, 100), { ok: true, revision: 1 });
    const conflict = coord.put("k", "b", undefined);
    assert.equal(conflict.ok, false);
    assert.equal(!conflict.ok && conflict.error.code, "CONTENDED");
    assert.equal(coord.put("k", "b", 7).ok, false);
  });
  timeline.at(99, () => assert.equal(coord.current("k")?.record, "a"));
  timeline.at(100, () => {
    assert.equal(coord.current("k"), undefined);
    assert.deepEqual(coord.put("k", "c", undefined), { ok: true, revision: 2 });
  });
  timeline.runUntil(200);
  const never = coordinator(new Timeline(10_000), { forgetsExpired: false });
  never.put("k", "a", undefined, 0);
  assert.equal(never.current("k")?.record, "a");
});

Deno.test("SimCoordinator.call() with a raced timeout fails a slow call that still took effect", () => {
  const timeline = new Timeline(10_000);
  const coord = coordinator(timeline, { spikeCapMs: 1000 });
  coord.spike(0, 500, 5000); // hops of about 500 ms, far past the 50 ms timeout
  const answers: string[] = [];
  timeline.at(0, () =>
    coord.call(0, () => coord.put("k", "a", undefined), (r) => {
      answers.push(r.ok ? "ok" : r.error.code);
    }));
  timeline.runUntil(5000);
  assert.deepEqual(answers, ["COORDINATOR_UNAVAILABLE"]); // once: the late reply is dropped
  assert.equal(coord.current("k")?.record, "a");
  assert.equal(coord.timeouts, 1);
});

Deno.test("SimCoordinator.call() answers a lost answer or an outage at the timeout, either way", () => {
  for (const timeout of ["raced", "when-lost"] as const) {
    const timeline = new Timeline(10_000);
    const coord = coordinator(timeline, {
      timeout,
      hopDraws: timeout === "raced" ? "per-hop" : "at-send",
      replyLossRate: 1,
    });
    const answers: [number, string][] = [];
    const record = (r: { ok: boolean }) => answers.push([timeline.now, r.ok ? "ok" : "failed"]);
    coord.outage(1, 1000);
    timeline.at(10, () => coord.call(0, () => coord.put("k", "a", undefined), record));
    timeline.at(20, () => coord.call(1, () => coord.put("j", "b", undefined), record));
    timeline.runUntil(5000);
    // Node 0's write landed but its answer was lost; node 1's never arrived.
    assert.deepEqual(answers, [[60, "failed"], [70, "failed"]], timeout);
    assert.equal(coord.current("k")?.record, "a");
    assert.equal(coord.current("j"), undefined);
    assert.equal(coord.lostAnswers, 1);
  }
});
