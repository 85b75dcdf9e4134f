import assert from "node:assert/strict";
import fc from "fast-check";
import { CANARIES, parsePath, runSeed, SimCluster } from "../sim/mod.ts";
import type { Fault, ScriptedOp, SeedOptions } from "../sim/mod.ts";
import { CALM } from "../sim/faults.ts";
import { checkHistory } from "../sim/checkers/consistency.ts";

const SHORT = { nodes: 4, safetyMs: 800, livenessMs: 400 } as const;

/**
 * What a run drew before the drift bound, mixed configurations and the swarm's extra
 * faults were drawn per seed: seeds pinned before then replay their schedule with it.
 */
const CLASSIC = { maxDriftPpm: 500, nodeConfigs: "default", classicSwarm: true } as const;

/** The guarantees each canary must break (one of them at least), where it matters which. */
const CANARY_GUARANTEES: Partial<Record<string, readonly string[]>> = {
  "revoke-without-wait": ["G1"],
  "reducer-reads-l1": ["M1"],
  // go-warp's wall-clock last-writer-wins: a node whose clock is ahead keeps its value.
  "wall-clock-lww": ["M2"],
  "failed-update-cached": ["E1s", "E1", "E2", "E3", "S1", "S2"],
  "transaction-without-invalidation": ["E3", "E4", "EP"],
  "half-applied-transaction": ["T1"],
  "strong-tx-without-claim": ["S1", "S2"],
  "lease-ttl-ignored": ["G2"],
  "attach-unchecked": ["G3"],
  // E3 on store-backed keys, or LB2, its form on loader-backed ones.
  "staleness-without-drift": ["E3", "LB2"],
  "lease-wait-without-drift": ["S1", "S2"],
  "trust-own-lease-check": ["G1"],
  "absent-version-skew": ["E1s"],
  "flush-rules-off": ["EP"],
  "trust-stale-registration": ["S1", "S2"],
  "session-from-answer": ["S1", "S2"],
  "session-wait-without-drift": ["S1", "S2"],
  "complete-without-session": ["E3"],
  "trust-heartbeat-arrival": ["E3"],
  "trust-absent-lease-read": ["GV"],
  "lease-staleness-ignored": ["G1", "G2", "GV"], // GV: an absent read taken for dead unproved
  "clear-ignored": ["CL"],
  "forger-has-secret": ["S1", "S2"],
  "unbound-acks": ["S1", "S2"],
  // BentoCache #71: an invalidated value served again as the fail-safe fallback.
  "fallback-serves-removed": ["F2"],
  // A load an invalidation overtook cached and served: LB1, E2's form for loader keys.
  "cache-overtaken-loads": ["LB1"],
  // go-warp's auto-heal: a value read earlier written over L1 unchecked, a newer one included.
  "unconditional-heal": ["V1"],
  // A difference counted before its bound: an invalidation on its way taken for a failure.
  "count-within-bound": ["V1"],
};

/**
 * How the canaries that drop a drift factor are run: on the keys of the mode they break,
 * with the drift bound drawn per seed (100 ppm to 10 %). Only a bound of a few percent
 * makes the missing factor worth milliseconds, so they need more seeds than the others.
 */
const STRONG_READS = {
  modes: ["strong-distributed"],
  leases: false,
  readShare: 0.95,
} as const satisfies Partial<SeedOptions>;
const EVENTUAL_READS = {
  modes: ["eventual-distributed"],
  leases: false,
  readShare: 0.95,
} as const satisfies Partial<SeedOptions>;

const CANARY_RUNS: Partial<
  Record<string, { options: Partial<SeedOptions>; seeds: number; firstSeed?: number }>
> = {
  "staleness-without-drift": {
    options: { modes: ["eventual-distributed"], leases: false, readShare: 0.9 },
    seeds: 60,
  },
  // The lease wait is the path of a holder without a session: sessions off, and the widest
  // drift bound, where the missing factor is worth 10 % of leaseMs. (Under sessions it was
  // caught at seed 16 only through a failed takeover freeing a stalled writer's slot, the
  // bug pinned as loader-era seed 2; fixed, it hid there.)
  "lease-wait-without-drift": {
    options: {
      modes: ["strong-distributed"],
      leases: false,
      loaders: false,
      readShare: 0.9,
      sessionMs: 0,
      maxDriftPpm: 100_000,
    },
    seeds: 20,
  },
  // Its heal bound grows with the slowest heartbeat and gap timers: the classic draws keep
  // them at the simulator's defaults.
  "flush-rules-off": { options: CLASSIC, seeds: 10 },
  // A mixed cluster's lease figures: caught within 60 fault-free, read-heavy seeds.
  "trust-own-lease-check": { options: { faults: "none", readShare: 0.9 }, seeds: 60 },
  // The session canaries, each on the keys of the mode it breaks, read-heavy, with the
  // faults that expose it (see the canary's faults in sim/cluster.ts).
  "trust-stale-registration": { options: { ...STRONG_READS, faults: "gray" }, seeds: 20 },
  "session-from-answer": { options: STRONG_READS, seeds: 40 },
  "session-wait-without-drift": {
    // Rare by nature: the writer's notice must land within sessionMs × drift of the silent
    // holder's last renewal. Its first catch (seed 137 of 90 % reads on three keys) went
    // through the failed-takeover bug (loader-era seed 2); fixed, that setup went 1500 seeds
    // uncaught. One hot key, 97 % reads at 400 ops/s/node catches it at seed 277 of a
    // search from 1 (the same seed without the canary passes): the run starts near it.
    options: {
      ...STRONG_READS,
      faults: "none",
      readShare: 0.97,
      opsPerSecondPerNode: 400,
      keysPerMode: 1,
      heartbeatIntervalMs: 20,
      loaders: false,
    },
    firstSeed: 270,
    seeds: 10,
  },
  "complete-without-session": { options: EVENTUAL_READS, seeds: 20 },
  "trust-heartbeat-arrival": { options: { ...EVENTUAL_READS, faults: "none" }, seeds: 40 },
  "trust-absent-lease-read": { options: { faults: "gray" }, seeds: 20 },
  "lease-staleness-ignored": { options: { readShare: 0.9 }, seeds: 120 },
  // The forger's acks land before the revoke they answer: strong keys, read-heavy.
  "forger-has-secret": { options: STRONG_READS, seeds: 5 },
  "unbound-acks": { options: STRONG_READS, seeds: 5 },
};

/**
 * Every violation the simulator found in the core, pinned: seed, path and options replay
 * the schedule that broke it. Each must stay fixed.
 */
const REGRESSIONS = [
  {
    // A read that joined a strong fill in flight got a value read before a write that had
    // completed before the read began (S2).
    name: "strong read joining a stale fill",
    seed: 30,
    path: "f:3,4;r:clockOffsetMaxMs",
    options: {},
  },
  {
    // A strong write queued behind another on the same node timed out before its turn and
    // broke the write chain (an InvariantError).
    name: "queued strong write timing out",
    seed: 121,
    path: "",
    options: { nodes: 4, safetyMs: 800, livenessMs: 400 },
  },
  {
    // A writer's release landed, a newer writer revoked it before the release's answer came
    // back, and the late answer installed the superseded value for a whole lease (S2).
    name: "install after release racing a revoke",
    seed: 50005,
    path: "f:3,4,5,6,7,8,9,10",
    options: { faults: "partition" },
  },
  {
    // A fill answered v4 without caching it (a drop raced it); the node's own write of v3,
    // committed earlier but answered later, then installed v3: E2.
    name: "older write installing after an uncached newer answer",
    seed: 702025,
    path: "f:0,1,2,3,4,5,6,7,8,9,10,11",
    options: {},
  },
  {
    // A flush voided a fill in flight; the node's own write installed v19; the fill then
    // answered v20 uncached, and L1 kept serving v19: E2.
    name: "L1 entry older than an uncached answer",
    seed: 2015177,
    path: "f:4,5;r:clockOffsetMaxMs",
    options: {},
  },
  {
    // A strong fill superseded by a newer one did not get its version floor raised when
    // the node's own write committed v3 (attached to a lease revoked meanwhile); its
    // older answer then fell back on the newer L1 entry, served without a lease check: G1.
    name: "superseded fill answering with an unchecked leased entry",
    seed: 9800857,
    path: "f:2,3,4,5,6",
    options: { faults: "partition", leases: true },
  },
  {
    // A strong writer that did not know the version to write at (a new holder record) read
    // it from the store only after a long pause, when two writers had taken its slot over
    // and committed: it wrote at the then current version and landed after them (S1, S2).
    name: "stalled strong writer reading its version after a takeover",
    seed: 9905005,
    path: "f:1;r:clockOffsetMaxMs",
    options: { leases: true },
  },
] as const;

for (const r of REGRESSIONS) {
  Deno.test(`simulator regression seed ${r.seed} (${r.name}) stays fixed`, () => {
    const report = runSeed({ seed: r.seed, ...CLASSIC, ...r.options }, parsePath(r.path));
    assert.deepEqual(report.violations, []);
    assert.ok(report.run.history.ops.length > 500);
  });
}

/**
 * Violations found with the loader-backed workload on (the default since it was added), so
 * pinned without the classic draws.
 */
const LOADER_ERA_REGRESSIONS = [
  {
    // A strong writer took over a stalled writer's slot, timed out revoking, and gave the
    // slot back free; a reader registered and cached v3, and the stalled writer's store
    // write (conditional on v3) then landed v4 without revoking it (S1, S2).
    name: "failed takeover freeing a stalled writer's slot",
    seed: 2,
    path: "f:6,7,8,9,10,11,12;r:clockOffsetMaxMs",
    options: {},
  },
  {
    // The same bug without loader keys: `deno task sim --seed 1` on main stopped at it.
    name: "failed takeover freeing a stalled writer's slot, store-backed keys only",
    seed: 63,
    path: "f:2,3,6,7,8,9,10",
    options: { leases: true, loaders: false },
  },
  {
    // The same bug found by the blind forger (no forged message was accepted in it): n0 took
    // n1's slot over, gave its write up without writing the store and released; n4 cached
    // v6 under that release, and n1's write conditional on v6 then landed v7 (S1, S2).
    name: "failed takeover freeing a stalled writer's slot, found with a blind forger",
    seed: 2,
    path: "",
    options: { modes: ["strong-distributed"], readShare: 0.95, leases: false, forger: "blind" },
  },
  {
    // The same bug on strong keys alone, read-heavy, with no forger: the first of 5 seeds in
    // 1-600 of these options that broke S1/S2 before the fix (186, 242, 456, 512, 586).
    name: "failed takeover freeing a stalled writer's slot, strong keys only, no forger",
    seed: 186,
    path: "",
    options: { modes: ["strong-distributed"], readShare: 0.95, leases: false },
  },
  {
    // n1's session join was lost, so it wrote st:1 (v2) and cached its own value with no
    // session; cut off from the coordinator, it was absent from the sessions record, and a
    // writer waited its lease out and committed v3..v6. n1 then joined, and its session let
    // the old entry outlive its lease: v2 served at 2045 ms (S1, S2; found by the default
    // 60 s run). Joining now drops the strong entries cached without a session.
    name: "an entry cached before the session join served under it",
    seed: 3464616705,
    path: "f:3,4,5,6,7,8,9,10,11",
    options: { leases: true, updates: true, transactions: true },
  },
] as const;

for (const r of LOADER_ERA_REGRESSIONS) {
  Deno.test(`simulator regression seed ${r.seed} (${r.name}) stays fixed`, () => {
    const path = r.path === "" ? undefined : parsePath(r.path);
    const report = runSeed({ seed: r.seed, ...r.options }, path);
    assert.deepEqual(report.violations, []);
    assert.ok(report.run.history.ops.length > 500);
  });
}

Deno.test("simulator with loader-backed keys: swarm and gray seeds keep LB1-LB3 and F1-F3", () => {
  const checked: Record<string, number> = {};
  for (const faults of ["swarm", "gray"] as const) {
    for (let seed = 1; seed <= 15; seed++) {
      const report = runSeed({ seed, ...SHORT, faults });
      assert.deepEqual(report.violations, [], `${faults} seed ${seed}`);
      for (const g of ["LB1", "LB2", "LB3", "F1", "F2", "F3"]) {
        if (report.results[g] === "pass") checked[g] = (checked[g] ?? 0) + 1;
      }
      assert.ok(report.run.history.loaders!.loads.length > 0);
    }
  }
  // Stale answers happen: F2 (and F3, on strong keys that asked) judged something.
  for (const g of ["LB1", "LB2", "LB3", "F1", "F2", "F3"]) {
    assert.ok((checked[g] ?? 0) > 0, `${g} never judged: ${JSON.stringify(checked)}`);
  }
});

Deno.test("simulator finds no violation in a sweep of swarm seeds", () => {
  for (let seed = 100; seed < 130; seed++) {
    const report = runSeed({ seed, ...SHORT });
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    assert.equal(report.results.S1 === "fail", false);
    // The store log and the fault-free phase are always recorded, so these always judge.
    assert.equal(report.results.E1s, "pass", `seed ${seed}`);
    assert.equal(report.results.EP, "pass", `seed ${seed}`);
  }
});

Deno.test("simulator replays a seed bit for bit (same trace hash and history)", () => {
  for (const seed of [5, 77, 4242]) {
    const a = new SimCluster({ seed, ...SHORT }).run();
    const b = new SimCluster({ seed, ...SHORT }).run();
    assert.equal(a.traceHash, b.traceHash);
    assert.deepEqual(a.history, b.history);
    const other = new SimCluster({ seed: seed + 1, ...SHORT }).run();
    assert.notEqual(a.traceHash, other.traceHash);
  }
});

Deno.test("simulator keeps the workload when the faults change (independent streams)", () => {
  const calm = new SimCluster({ seed: 9, ...SHORT, faults: "none" }).run();
  const hostile = new SimCluster({ seed: 9, ...SHORT, faults: "partition" }).run();
  const invocations = (run: typeof calm) =>
    run.history.ops.filter((o) => !o.probe).slice(0, 50).map((o) =>
      `${o.invokeMs}:${o.process}:${o.key}`
    );
  // The first operations are drawn identically; faults only change what happens to them.
  assert.deepEqual(invocations(calm).slice(0, 10), invocations(hostile).slice(0, 10));
});

for (const canary of CANARIES) {
  Deno.test(`simulator canary ${canary} is reported as a violation`, () => {
    const { options = {}, seeds = 10, firstSeed = 1 } = CANARY_RUNS[canary] ?? {};
    const expected = CANARY_GUARANTEES[canary];
    // Runs seeds until one reports the guarantee the canary breaks (any, if none is named):
    // a seed whose only violations are other guarantees' does not count as caught.
    const found = (caught: readonly string[]) =>
      expected === undefined ? caught.length > 0 : expected.some((g) => caught.includes(g));
    const seen: string[] = [];
    let caught: string[] = [];
    for (let seed = firstSeed; seed < firstSeed + seeds && !found(caught); seed++) {
      caught = runSeed({ seed, canary, ...options }).violations.map((v) => v.guarantee);
      seen.push(...caught);
    }
    assert.ok(
      found(caught),
      `canary ${canary} not caught as ${expected} in ${seeds} seeds: ${seen}`,
    );
  });
}

Deno.test("simulator forger that lacks the cluster secret breaks nothing: every forgery is refused", () => {
  for (let seed = 1; seed <= 6; seed++) {
    const options = seed <= 3 ? STRONG_READS : {};
    const report = runSeed({ seed, forger: "snooping", ...options });
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    const forger = report.run.stats.forger!;
    assert.ok(forger.acks > 0, "it acked revokes it read, nonces included");
    assert.equal(forger.refused, forger.sent);
    assert.equal(report.run.stats.node.absurdMessages, 0, "refused before the core saw them");
  }
});

Deno.test("simulator blind forger on a cluster without a secret: acks without the nonce count for nothing, lies are counted", () => {
  // Seeds 100-123 pass. Seed 2 of these options shows an S1/S2 violation of the strong
  // protocol itself, not of a forgery (a taken-over writer completes when its taker gave up
  // without writing the store; see docs/simulator.md): open, so not pinned here.
  for (let seed = 100; seed <= 103; seed++) {
    const report = runSeed({ seed, forger: "blind", ...STRONG_READS });
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    const { forger, node } = report.run.stats;
    assert.ok(forger!.acks > 0 && forger!.refused === 0);
    assert.ok(node.acksRejected! >= forger!.acks * 0.5, `${node.acksRejected} of ${forger!.acks}`);
    assert.ok(node.absurdMessages! > 0);
    assert.ok(node.nonMemberHeartbeats! > 0);
    assert.ok(node.flushesCoalesced! > 0);
  }
});

Deno.test("simulator canary absent-version-skew passes every check but E1s on eventual keys", () => {
  // Absence labelled with the next version is the class E1s was built for: E1 ignores
  // absent reads and the other checks compare versions only.
  let onlyE1s = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const report = runSeed({
      seed,
      canary: "absent-version-skew",
      modes: ["eventual-distributed"],
    });
    const caught = new Set(report.violations.map((v) => v.guarantee));
    assert.ok(caught.has("E1s"), `seed ${seed}: ${[...caught]}`);
    if (caught.size === 1) onlyE1s++;
  }
  assert.ok(onlyE1s >= 3, `only ${onlyE1s} of 10 seeds were caught by E1s alone`);
});

Deno.test("simulator canary flush-rules-off is caught by EP (and E3 under sessions), and the same run with the rules is not", () => {
  let caught = 0, flushed = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const canary = runSeed({ seed, canary: "flush-rules-off", ...CLASSIC });
    const guarantees = new Set(canary.violations.map((v) => v.guarantee));
    // Under sessions a gap healed without a flush also makes the freshness proof lie (an
    // echo counts invalidations that never arrived), so E3 may break too; nothing else.
    assert.ok([...guarantees].every((g) => g === "EP" || g === "E3"), [...guarantees].join());
    if (guarantees.size > 0) caught++;
    // The canary's own faults and staleness bound, with the flush rules on.
    const control = new SimCluster({
      seed,
      ...CLASSIC,
      policy: { maxStalenessMs: 1000 },
      faults: { mix: canary.run.mix, schedule: canary.run.schedule },
    }).run();
    assert.deepEqual(checkHistory(control.history).violations, [], `control seed ${seed}`);
    // Entries older than a write of the faulty phase were left, and the flush removed them.
    if (control.stats.propagation.healLatencyMs !== null) flushed++;
  }
  assert.ok(caught >= 5, `caught in ${caught} of 10 seeds`);
  assert.ok(flushed >= 5, `stale entries left by the faults in only ${flushed} of 10 seeds`);
});

Deno.test("simulator leaves every link up once a fault lasting past the safety phase is healed", () => {
  // A fault whose end the safety phase cut short used to be undone again after the heal,
  // leaving n0 cut off in the fault-free phase (found by EP).
  const links: [number, number][] = [1, 2, 3].flatMap((i) =>
    [[0, i], [i, 0]] as [number, number][]
  );
  const run = new SimCluster({
    seed: 3,
    nodes: 4,
    faults: {
      mix: CALM,
      schedule: [
        { kind: "partition", atMs: 500, durationMs: 5000, links, label: "isolate n0" },
        { kind: "bus-outage", atMs: 600, node: 1, durationMs: 5000 },
      ],
    },
  }).run();
  const result = checkHistory(run.history);
  assert.deepEqual(result.violations, []);
  assert.equal(result.results.EP, "pass");
});

Deno.test("simulator regression (EP): a writer that crashes right after a lost invalidation makes its peers flush", () => {
  // n1 caches ev:0; n0's write of it reaches n2 but not n1 (a one-way cut), then n0 crashes
  // and restarts. Its new incarnation starts at sequence 0, so n1 sees no gap; it flushes
  // because a known peer came back as a new incarnation (EP found the gap before that rule).
  const run = (crash: boolean) =>
    new SimCluster({
      seed: 1,
      ...CLASSIC,
      sessionMs: 0, // the peer rule alone (under sessions the restart also replaces a member)
      nodes: 3,
      safetyMs: 1000,
      livenessMs: 500,
      opsPerSecondPerNode: 0,
      policy: { maxStalenessMs: 1000 },
      clientOps: [
        { atMs: 850, node: 1, key: "ev:0", kind: "read" },
        { atMs: 870, node: 0, key: "ev:0", kind: "write" },
      ],
      faults: {
        mix: CALM,
        schedule: [
          { kind: "partition", atMs: 860, durationMs: 139, links: [[0, 1]], label: "n0 → n1" },
          ...(crash ? [{ kind: "crash" as const, atMs: 900, node: 0, downMs: 50 }] : []),
        ],
      },
    }).run();
  assert.deepEqual(checkHistory(run(true).history).violations, []);
  // Without the crash, n0's next heartbeat shows n1 the gap and n1 flushes in time.
  const alive = run(false);
  assert.deepEqual(checkHistory(alive.history).violations, []);
  assert.equal(alive.stats.propagation.healLatencyMs, 100);
});

Deno.test("simulator serves most reads from L1 in every mode when healthy and read-heavy", () => {
  // Fault-free, 98% reads, leases and staleness bound of 1 s on a 3 s run: a node refills a
  // hot key at most once per bound, so anything below 80% means the protocol stopped caching.
  const report = runSeed({
    seed: 11,
    nodes: 5,
    faults: "none",
    readShare: 0.98,
    opsPerSecondPerNode: 400,
    safetyMs: 1500,
    livenessMs: 1500,
    policy: { maxStalenessMs: 1000, leaseMs: 1000 },
  });
  assert.deepEqual(report.violations, []);
  for (const mode of ["strong-local", "eventual-distributed", "strong-distributed"]) {
    for (const phase of ["safety", "liveness"]) {
      const h = report.run.stats.hits[`${mode}/${phase}`]!;
      const ratio = h.l1 / (h.l1 + h.store);
      assert.ok(ratio >= 0.8, `${mode}/${phase}: ${(ratio * 100).toFixed(1)}% from L1`);
    }
  }
});

Deno.test("simulator reports every node consistent within maxStaleness of a write", () => {
  const report = runSeed({ seed: 12, ...SHORT, nodeConfigs: "default" });
  const { offsetsMs, consistent, writes } = report.run.stats.polaris;
  assert.ok(writes > 0);
  const at500 = consistent[offsetsMs.indexOf(500)]!;
  assert.equal(at500, writes, "the 300 ms staleness bound caps propagation");
});

// ------------------------------------------------------------------ fast-check exploration

const KEYS = ["ev:0", "ev:1", "st:0", "st:1", "lc:n0:0"];
const NODES = 3;

type Step = { op: ScriptedOp } | { fault: Fault };

const step = (at: fc.Arbitrary<number>, keys: readonly string[] = KEYS): fc.Arbitrary<Step> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        atMs: at,
        node: fc.nat(NODES - 1),
        key: fc.constantFrom(...keys),
        kind: fc.constantFrom("read", "read", "write", "delete", "invalidate" as const),
      }).map((op) => ({ op: op as ScriptedOp })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        atMs: at,
        node: fc.nat(NODES - 1),
        durationMs: fc.integer({ min: 1, max: 400 }),
      }).map(({ atMs, node, durationMs }) => ({
        fault: {
          kind: "partition",
          atMs,
          durationMs,
          links: Array.from({ length: NODES }, (_, i) => i).filter((i) => i !== node).flatMap((i) =>
            [[node, i], [i, node]] as [number, number][]
          ),
          label: `isolate n${node}`,
        } as Fault,
      })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        atMs: at,
        node: fc.nat(NODES - 1),
        downMs: fc.integer({ min: 1, max: 300 }),
      }).map((f) => ({ fault: { kind: "crash", ...f } as Fault })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        atMs: at,
        node: fc.nat(NODES - 1),
        durationMs: fc.integer({ min: 1, max: 600 }),
      }).map((f) => ({ fault: { kind: "pause", ...f } as Fault })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        atMs: at,
        node: fc.nat(NODES - 1),
        durationMs: fc.integer({ min: 1, max: 400 }),
      }).map((f) => ({ fault: { kind: "bus-outage", ...f } as Fault })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        atMs: at,
        node: fc.nat(NODES - 1),
        durationMs: fc.integer({ min: 1, max: 400 }),
      }).map((f) => ({ fault: { kind: "coord-outage", ...f } as Fault })),
    },
  );

/** Runs a schedule of client and fault operations; returns the guarantees it violated. */
function explore(
  steps: readonly Step[],
  lossRate: number,
  canary?: "ignore-invalidations",
): string[] {
  const run = new SimCluster({
    seed: 1,
    nodes: NODES,
    safetyMs: 1000,
    livenessMs: 200,
    // fast-check explores schedules; the configuration stays today's default.
    maxDriftPpm: 500,
    nodeConfigs: "default",
    opsPerSecondPerNode: 0,
    clientOps: steps.flatMap((s) => ("op" in s ? [s.op] : [])),
    faults: {
      mix: { ...CALM, lossRate },
      schedule: steps.flatMap((s) => ("fault" in s ? [s.fault] : [])),
    },
    ...(canary !== undefined && { canary }),
  }).run();
  return checkHistory(run.history).violations.map((v) => `${v.guarantee} ${v.key}: ${v.message}`);
}

/** A fast-check command: adds one client or fault operation to the schedule being built. */
class AddStep implements fc.Command<object, Step[]> {
  constructor(readonly step: Step) {}
  check(): boolean {
    return true;
  }
  run(_model: object, schedule: Step[]): void {
    schedule.push(this.step);
  }
  toString(): string {
    return JSON.stringify(this.step);
  }
}

/** Client and fault operations as fc.commands, so a failing schedule shrinks. */
const schedules = (keys: readonly string[] = KEYS, maxCommands = 60) =>
  fc.commands([step(fc.integer({ min: 0, max: 990 }), keys).map((s) => new AddStep(s))], {
    maxCommands,
  });

function build(commands: Iterable<fc.Command<object, Step[]>>): Step[] {
  const schedule: Step[] = [];
  fc.modelRun(() => ({ model: {}, real: schedule }), commands);
  return schedule;
}

Deno.test("fast-check: no schedule of client operations and faults violates the contract", () => {
  fc.assert(
    fc.property(schedules(), fc.constantFrom(0, 0.1, 0.3), (commands, loss) => {
      assert.deepEqual(explore(build(commands), loss), []);
    }),
    { numRuns: 60 },
  );
});

Deno.test("fast-check: shrinks a canary's violation to a small schedule", () => {
  // A node that acknowledges revocations without applying them must be caught, and
  // fast-check must shrink the schedule that shows it to a handful of operations.
  const result = fc.check(
    fc.property(schedules(["st:0"], 80), (commands) => {
      assert.deepEqual(explore(build(commands), 0, "ignore-invalidations"), []);
    }),
    { numRuns: 200, seed: 4 },
  );
  assert.ok(result.failed, "the canary was not caught");
  const shrunk = build(result.counterexample![0]);
  assert.ok(shrunk.length <= 10, `shrunk to ${shrunk.length} steps`);
});

Deno.test("sim/ imports the core and no network client", async () => {
  for await (const entry of Deno.readDir(new URL("../sim/", import.meta.url))) {
    if (!entry.isFile || !entry.name.endsWith(".ts")) continue;
    const text = await Deno.readTextFile(new URL(`../sim/${entry.name}`, import.meta.url));
    for (const [, spec] of text.matchAll(/^(?:import|export|\})[^\n]*from "([^"]+)"/gm)) {
      const ok = spec!.startsWith(".") && !/src\/(nats|store\/postgres|transport)/.test(spec!) ||
        ["fast-check", "node:util", "node:fs", "node:path", "node:url", "node:process"].includes(
          spec!,
        );
      assert.ok(ok, `sim/${entry.name} imports ${spec}`);
    }
  }
});

Deno.test("simulator with leases: 30 swarm seeds keep G1-G3 and every other guarantee", () => {
  const checked = { G1: 0, G2: 0, G3: 0 };
  let leaseOps = 0, deadReads = 0;
  for (let seed = 1; seed <= 30; seed++) {
    const report = runSeed({ seed, leases: true });
    assert.deepEqual(
      report.violations,
      [],
      `seed ${seed}: ${JSON.stringify(report.violations[0])}`,
    );
    for (const g of ["G1", "G2", "G3"] as const) if (report.results[g] === "pass") checked[g]++;
    leaseOps += report.run.history.leases?.ops.filter((o) => o.outcome === "ok").length ?? 0;
    deadReads += report.run.stats.node.leaseDeadValues ?? 0;
  }
  // The checkers looked at something: leased values were served, leases died and were
  // noticed, keep-alives and attaching writes were judged.
  assert.ok(checked.G1 >= 25 && checked.G2 >= 25 && checked.G3 >= 25, JSON.stringify(checked));
  assert.ok(leaseOps > 1000, `only ${leaseOps} lease operations succeeded`);
  assert.ok(deadReads > 0, "no read ever met a dead lease");
});

Deno.test("simulator with namespace clears: CL judges many reads and finds no violation across seeds", () => {
  let judged = 0;
  let clears = 0;
  for (let seed = 1; seed <= 12; seed++) {
    const report = runSeed({ seed, clears: true, ...SHORT });
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    assert.equal(report.results.CL, "pass", `seed ${seed}`);
    judged += checkHistory(report.run.history).stats.checked.CL;
    clears += report.run.history.clears?.filter((c) => c.outcome === "ok").length ?? 0;
  }
  assert.ok(clears >= 12, `clears completed: ${clears}`);
  assert.ok(judged >= 100, `(clear, read) pairs judged: ${judged}`);
});

Deno.test("simulator canary clear-ignored is caught by CL on eventual keys, on the clearing node and on the others past the bound", () => {
  const own: string[] = [];
  const remote: string[] = [];
  for (let seed = 1; seed <= 10 && (own.length === 0 || remote.length === 0); seed++) {
    const report = runSeed({
      seed,
      canary: "clear-ignored",
      modes: ["eventual-distributed"],
      leases: false,
      // Few writes over many keys: a cleared entry outlives the bound unless it is cleared.
      readShare: 0.95,
      keysPerMode: 8,
      ...SHORT,
    });
    const ops = new Map(report.run.history.ops.map((o) => [o.id, o]));
    const clears = new Map((report.run.history.clears ?? []).map((c) => [c.id, c]));
    for (const v of report.violations.filter((v) => v.guarantee === "CL")) {
      const read = ops.get(v.ops[0]!);
      const clear = clears.get(v.ops[1]!);
      assert.ok(read !== undefined && clear !== undefined && read.key.startsWith("ev:"));
      (read.process === clear.process ? own : remote).push(v.message);
    }
  }
  assert.ok(own.length > 0, "a node that ignores its own clear serves what it cleared");
  assert.ok(remote.length > 0, "a node that ignores a peer's clear serves past the bound");
});

Deno.test("simulator canary reducer-reads-l1 is caught by M1 alone, and the same runs without it pass", () => {
  let caught = 0;
  for (let seed = 1; seed <= 5; seed++) {
    const options = { seed, ...SHORT, leases: false, loaders: false } as const;
    const canary = runSeed({ ...options, canary: "reducer-reads-l1" });
    const guarantees = new Set(canary.violations.map((v) => v.guarantee));
    assert.ok([...guarantees].every((g) => g === "M1"), `seed ${seed}: ${[...guarantees]}`);
    if (guarantees.has("M1")) caught++;
    const control = runSeed({ ...options, updates: true });
    assert.deepEqual(control.violations, [], `control seed ${seed}`);
    const outcomes = control.run.history.updates!.ops.map((op) => op.outcome);
    assert.ok(outcomes.filter((o) => o === "ok").length > 20, `seed ${seed}: ${outcomes.length}`);
    assert.equal(control.results.M1, "pass");
  }
  assert.ok(caught >= 4, `caught in ${caught} of 5 seeds`);
});

Deno.test("simulator canary wall-clock-lww is caught by M2 alone, and the same runs without it pass", () => {
  let caught = 0;
  for (let seed = 1; seed <= 5; seed++) {
    const options = { seed, ...SHORT, leases: false, loaders: false } as const;
    const canary = runSeed({ ...options, canary: "wall-clock-lww" });
    const guarantees = new Set(canary.violations.map((v) => v.guarantee));
    assert.ok([...guarantees].every((g) => g === "M2"), `seed ${seed}: ${[...guarantees]}`);
    if (guarantees.has("M2")) caught++;
    const control = runSeed({ ...options, updates: true, lastWriterWins: true });
    assert.deepEqual(control.violations, [], `control seed ${seed}`);
    const lww = control.run.history.updates!.ops.filter((op) => op.kind === "lww");
    const ok = lww.filter((op) => op.outcome === "ok").length;
    assert.ok(ok > 10, `seed ${seed}: ${ok} of ${lww.length} last-writer-wins updates ok`);
    assert.equal(control.results.M2, "pass");
    assert.equal(control.results.M1, "pass");
    // Each lww key is also read and written through the main history, judged by its mode.
    assert.ok(control.run.history.ops.some((op) => op.key.endsWith(":lww") && op.kind === "read"));
  }
  assert.ok(caught >= 4, `caught in ${caught} of 5 seeds`);
});

Deno.test("simulator last-writer-wins keys leave the update workload's draws alone when off", () => {
  const off = new SimCluster({ seed: 3, ...SHORT, updates: true }).run();
  const explicit = new SimCluster({ seed: 3, ...SHORT, updates: true, lastWriterWins: false })
    .run();
  assert.equal(off.traceHash, explicit.traceHash);
  assert.ok(off.history.updates!.ops.every((op) => op.kind !== "lww"));
});

Deno.test("simulator validator runs on every node, checks by version and keeps V1; off, it changes no draw", () => {
  for (let seed = 1; seed <= 4; seed++) {
    const report = runSeed({ seed, ...SHORT, validator: true });
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    assert.equal(report.results.V1, "pass");
    const totals = report.run.stats.validator!;
    assert.ok(totals.checked! > 50, `seed ${seed}: ${JSON.stringify(totals)}`);
    assert.equal(totals.newerThanStore, 0);
    // Every read it makes is within its budget: 40 a second per node, one second's burst.
    const nodeSeconds = SHORT.nodes * report.run.stats.simMs / 1000;
    assert.ok(
      totals.storeReads! <= 40 * nodeSeconds + SHORT.nodes * 40,
      `seed ${seed}: ${totals.storeReads}`,
    );
  }
  const off = new SimCluster({ seed: 3, ...SHORT }).run();
  const explicit = new SimCluster({ seed: 3, ...SHORT, validator: false }).run();
  assert.equal(off.traceHash, explicit.traceHash);
  assert.equal(off.history.validator, undefined);
});

Deno.test("simulator validator counts and heals writes made behind Warp's back, each count real (V1)", () => {
  let counted = 0, healed = 0;
  for (let seed = 1; seed <= 4; seed++) {
    const report = runSeed({ seed, backdoor: true });
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    assert.equal(report.results.V1, "pass");
    const { verdicts, installs } = report.run.history.validator!;
    counted += verdicts.length;
    assert.ok(verdicts.every((v) => v.key.startsWith("bd:") && v.verdict === "inconsistent"));
    assert.ok(installs.every((i) => i.heldBefore === null || i.version >= i.heldBefore));
    healed += report.run.stats.validator!.healed!;
  }
  assert.ok(counted >= 4, `${counted} inconsistencies counted in 4 seeds`);
  assert.ok(healed >= 4, `${healed} heals in 4 seeds`);
});

Deno.test("simulator canary unconditional-heal is caught by V1 through the installs the driver saw", () => {
  const report = runSeed({ seed: 1, ...SHORT, canary: "unconditional-heal" });
  const v1 = report.violations.filter((v) => v.guarantee === "V1");
  assert.ok(v1.length > 0, JSON.stringify(report.results));
  assert.match(v1[0]!.message, /installed version \d+ over version \d+/);
});

Deno.test("simulator update workload leaves the other operations' draws alone when off", () => {
  const off = new SimCluster({ seed: 3, ...SHORT }).run();
  const explicit = new SimCluster({ seed: 3, ...SHORT, updates: false }).run();
  assert.equal(off.traceHash, explicit.traceHash);
  assert.equal(off.history.updates, undefined);
});

Deno.test("simulator transactions: mixed strong and eventual commits keep T1, S1/S2, E1-E4 and EP on every node", () => {
  for (let seed = 1; seed <= 4; seed++) {
    const report = runSeed({
      seed,
      ...SHORT,
      transactions: true,
      strongTransactions: true,
      leases: false,
    });
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    // Commits that wrote two or three keys at one instant, each checked as a write.
    const atMs = new Map<number, Set<string>>();
    for (const e of report.run.history.storeLog ?? []) {
      if (e.tx !== undefined) atMs.set(e.atMs, (atMs.get(e.atMs) ?? new Set()).add(e.key));
    }
    const commits = [...atMs.values()].filter((keys) => keys.size >= 2).length;
    assert.ok(commits >= 10, `seed ${seed}: ${commits} multi-key commits`);
    const history = report.run.history;
    const modeOf = new Map(history.ops.map((op) => [op.id, history.keys[op.key]?.mode]));
    const strongOk = (history.transactions ?? []).filter((tx) =>
      tx.outcome === "ok" && tx.ops.some((id) =>
        modeOf.get(id) === "strong-distributed"
      )
    ).length;
    assert.ok(strongOk >= 10, `seed ${seed}: ${strongOk} committed with strong keys`);
    assert.equal(report.results.T1, "pass");
    assert.equal(report.results.E3, "pass");
    assert.equal(report.results.S2, "pass");
    // A transaction's writes stay open through its revocations: the search may need more
    // than the default budget (seed 2: 830 k steps), and runSeed then searches again with
    // ten times it, which must end in a pass.
    assert.equal(report.results.S1, "pass", `seed ${seed}`);
    if (seed === 2) assert.equal(checkHistory(history).results.S1, "unknown");
  }
});

// ------------------------------------------------------------------ echo budget

Deno.test("simulator with an echo budget of 1 (heartbeats echo their peers in turn) keeps every guarantee on swarm, gray and partition seeds", () => {
  for (const faults of ["swarm", "gray", "partition"] as const) {
    for (let seed = 200; seed < 208; seed++) {
      const report = runSeed({ seed, faults, echoesMax: 1, ...SHORT });
      assert.deepEqual(report.violations, [], `${faults} seed ${seed}`);
      assert.equal(report.results.S1 === "fail", false);
    }
  }
});

// The canaries that break the freshness proof or what it rests on, run with heartbeats
// that echo one peer each: the budget must not hide them.
for (
  const canary of [
    "trust-heartbeat-arrival",
    "complete-without-session",
    "staleness-without-drift",
  ] as const
) {
  Deno.test(`simulator canary ${canary} is still caught with an echo budget of 1`, () => {
    const { options = {}, seeds = 10 } = CANARY_RUNS[canary] ?? {};
    let caught: string[] = [];
    for (let seed = 1; seed <= seeds && caught.length === 0; seed++) {
      caught = runSeed({ seed, canary, ...options, echoesMax: 1 }).violations.map((v) =>
        v.guarantee
      );
    }
    assert.ok(caught.length > 0, `canary ${canary} went unnoticed in ${seeds} seeds`);
  });
}
