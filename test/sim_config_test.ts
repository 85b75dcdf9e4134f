import assert from "node:assert/strict";
import { config as example } from "../docs/examples/sim_config.ts";
import { runSeed, SimCluster } from "../sim/mod.ts";
import { configProblems, userShape } from "../sim/config.ts";
import { drawFaults } from "../sim/faults.ts";
import { checkHistory } from "../sim/checkers/consistency.ts";
import type { History, HistoryOp } from "../sim/history.ts";
import type { WarpConfig } from "../src/config.ts";

const ROOT = new URL("../", import.meta.url);

/** Runs `deno task sim` with `args`; returns its exit code and output. */
async function sim(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "sim/main.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: output.code,
    stdout: text.decode(output.stdout),
    stderr: text.decode(output.stderr),
  };
}

Deno.test("deno task sim --config runs the example configuration with no violation", async () => {
  const { code, stdout } = await sim([
    "--config",
    "docs/examples/sim_config.ts",
    "--seeds",
    "2",
    "--seed",
    "1",
    "--nodes",
    "3",
  ]);
  assert.equal(code, 0, stdout);
  assert.match(stdout, /configuration docs\/examples\/sim_config\.ts/);
  assert.match(stdout, /drift bound 1000 ppm/);
  assert.match(stdout, /violations {8}0/);
});

Deno.test("deno task sim --config reports a configuration it cannot run and exits 2", async () => {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      file,
      `export default {
        maxDriftPpm: 200000,
        keys: { "cart:*": { mode: "strong-distributed", leaseMs: 2000, writeTimeoutMs: 1500 } },
      };`,
    );
    const { code, stdout, stderr } = await sim(["--config", file, "--seeds", "1"]);
    assert.equal(code, 2);
    assert.match(stderr, /maxDriftPpm must be at most 100000: 200000/);
    assert.match(stderr, /Registration "cart:\*": writeTimeoutMs must be above .*: 1500/);
    assert.doesNotMatch(stdout, /seeds run/);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("configProblems() names each unsafe or invalid option with its value", () => {
  assert.deepEqual(configProblems(example), []);
  const problems = configProblems({
    leaseCheckMs: -5,
    maxStalenesMs: 100,
    keys: {
      "a:*": { mode: "eventual-distributed", ttlMs: 1000, maxStalenessMs: 5000 },
      "b:*": { mode: "strong-local", leaseMs: 300 },
      "c:*": { mode: "strong-distributed", leaseMs: 2000, writeTimeoutMs: 2000 },
      "d:*": { mode: "weak" },
      "e:*": { mode: "strong-local", ttlMs: 0 },
    },
  });
  const expected = [
    /^Unknown option, expected one of .*: maxStalenesMs$/,
    /^Option leaseCheckMs must be a number of at least 1, got the number -5$/,
    /^Registration "a:\*": maxStalenessMs above ttlMs 1000 bounds nothing .*: 5000$/,
    /^Registration "b:\*": leaseMs applies to strong-distributed keys only, not strong-local: 300$/,
    /^Registration "c:\*": writeTimeoutMs must be above 2 heartbeats \+ sessionMs × \(1 \+ drift\) \+ 1 ms = 2502\.0 ms, .*: 2000$/,
    /^Registration "d:\*": Invalid mode for "d:\*", expected one of .*: "weak"$/,
    /^Registration "e:\*": ttlMs must be a number in \(0, \d+\] ms, got the number 0$/,
  ];
  assert.equal(problems.length, expected.length, problems.join("\n"));
  expected.forEach((pattern, i) => assert.match(problems[i]!, pattern));
  // Without sessions a silent holder is waited out by its cache lease instead.
  assert.deepEqual(
    configProblems({
      sessionMs: 0,
      keys: { "c:*": { mode: "strong-distributed", leaseMs: 2000, writeTimeoutMs: 2000 } },
    }).map((p) => p.replace(/ ms, .*: /, " ms: ")),
    [
      'Registration "c:*": writeTimeoutMs must be above leaseMs × (1 + drift) + 1 ms = 2002.0 ms: 2000',
    ],
  );
  assert.deepEqual(configProblems({ leaseCheckMs: 100 }), [
    "Option keys registers no key, so the simulator has nothing to run: {}",
  ]);
  assert.deepEqual(configProblems("nope"), [
    "Invalid configuration, expected an object of Warp options: nope",
  ]);
  // The command line's drift bound is checked in the configuration's place.
  assert.match(configProblems(example, 100_001)[0]!, /maxDriftPpm must be at most 100000/);
});

Deno.test("simulator on a user's configuration runs keys of each pattern with their registered timings", () => {
  const shape = userShape(example, { nodes: 3, leasing: true });
  const keys = shape.keys.map((k) => k.key);
  assert.deepEqual(keys, [
    "session:w0",
    "session:w1",
    "session:w2",
    "user-sessions:w0",
    "user-sessions:w1",
    "user-sessions:w2",
    "cart:wn0s0",
    "cart:wn1s0",
    "cart:wn2s0",
    "cart:wn0s1",
    "cart:wn1s1",
    "cart:wn2s1",
    "config:site",
  ]);
  const report = runSeed({ seed: 3, nodes: 3, config: example, leases: true, safetyMs: 1500 });
  assert.deepEqual(report.violations, []);
  const history = report.run.history;
  assert.equal(history.maxDriftPpm, 1000);
  assert.deepEqual(history.keys["session:w0"], {
    mode: "eventual-distributed",
    ttlMs: 60_000,
    maxStalenessMs: 500,
  });
  assert.equal(history.keys["session:w2"]?.leased, true);
  assert.deepEqual(history.keys["cart:wn1s0"], { mode: "strong-local", ttlMs: 2000 });
  assert.equal(history.leases?.leaseCheckMs, 300);
  // Every generated key was used, and each strong-local key only by its own node.
  for (const key of keys) assert.ok(history.ops.some((op) => op.key === key), key);
  for (const op of history.ops.filter((o) => o.key.startsWith("cart:"))) {
    assert.ok(op.key.includes(`w${op.process}s`), `${op.key} used on ${op.process}`);
  }
});

Deno.test("simulator runs a configuration's own validator settings, and names a bad one", () => {
  const validator = {
    mode: "count",
    storeReadsPerS: 40,
    samplePerS: 20,
    afterInvalidationShare: 0.5,
    checkDelayMs: 50,
  } as const;
  const run = (config: WarpConfig) =>
    runSeed({ seed: 3, nodes: 3, config, validator: true, backdoor: true, safetyMs: 1500 });
  // Keys written behind Warp's back: the configuration's `count` validator counts them and
  // heals none; the simulator's own (`heal`) heals what it counts.
  const own = run({ ...example, validator });
  assert.deepEqual(own.violations, []);
  const counted = own.run.stats.validator!;
  assert.ok(counted.inconsistent! > 0, JSON.stringify(counted));
  assert.equal(counted.healed, 0);
  const builtIn = run(example).run.stats.validator!;
  assert.ok(
    builtIn.healed! > 0 && builtIn.healed === builtIn.inconsistent,
    JSON.stringify(builtIn),
  );
  assert.deepEqual(configProblems({ ...example, validator: { mode: "count", storeReadPerS: 2 } }), [
    "Option Unknown validator option: storeReadPerS",
  ]);
});

Deno.test("userShape() generates keys a more specific registration does not take", () => {
  const shape = userShape({
    keys: {
      "user:*": { mode: "eventual-distributed" },
      "user:w*": { mode: "strong-distributed" },
    },
  }, { nodes: 1, leasing: false });
  assert.deepEqual(shape.keys.map((k) => k.key), ["user:q70", "user:q71", "user:ww0", "user:ww1"]);
});

Deno.test("simulator draws the drift bound per seed, records it, and --max-drift-ppm fixes it", () => {
  const bounds: number[] = [];
  for (let seed = 1; seed <= 30; seed++) {
    const run = new SimCluster({ seed, nodes: 3, safetyMs: 200, livenessMs: 100 }).run();
    assert.equal(run.history.maxDriftPpm, run.shape.maxDriftPpm);
    bounds.push(run.shape.maxDriftPpm);
  }
  assert.ok(bounds.every((b) => b >= 100 && b <= 100_000), String(bounds));
  assert.ok(bounds.some((b) => b < 1000) && bounds.some((b) => b > 10_000), String(bounds));
  const fixed = new SimCluster({ seed: 1, maxDriftPpm: 2500, safetyMs: 200, livenessMs: 100 });
  assert.equal(fixed.run().history.maxDriftPpm, 2500);
});

Deno.test("simulator runs mixed clusters: per-node figures in the history, every guarantee kept", () => {
  let judged = 0;
  for (let seed = 1; seed <= 6; seed++) {
    const report = runSeed({ seed, nodeConfigs: "mixed", leases: true });
    assert.deepEqual(report.violations, [], `seed ${seed}`);
    const { shape, history } = report.run;
    assert.equal(shape.mixed, true);
    const checks = new Set(shape.nodes.map((n) => n.leaseCheckMs));
    assert.ok(checks.size > 1, "nodes differ in leaseCheckMs");
    assert.equal(
      history.leases?.leaseCheckMs,
      Math.max(...shape.nodes.map((n) => n.leaseCheckMs!)),
    );
    const ev = history.keys["ev:0"]!;
    assert.ok(ev.byProcess !== undefined, "eventual bounds differ per node");
    for (const [process, bounds] of Object.entries(ev.byProcess)) {
      const node = shape.nodes[Number(process.slice(1))]!;
      assert.equal(bounds.maxStalenessMs, node.keys!["ev:*"]!.maxStalenessMs);
    }
    if (report.results.E3 === "pass") judged++;
  }
  assert.ok(judged >= 5);
});

Deno.test("checkHistory() judges E3 and SL2 by the bound of the read's own node", () => {
  const op = (id: number, process: string, extra: Partial<HistoryOp>): HistoryOp => ({
    id,
    process,
    key: "k",
    kind: "read",
    invokeMs: 0,
    completeMs: 0,
    outcome: "ok",
    ...extra,
  });
  const history: History = {
    format: "warp-history/1",
    keys: {
      k: {
        mode: "eventual-distributed",
        maxStalenessMs: 500,
        byProcess: { n0: { maxStalenessMs: 100 }, n1: { maxStalenessMs: 500 } },
      },
    },
    ops: [
      op(1, "n2", { kind: "write", value: "a", version: 1, invokeMs: 0, completeMs: 1 }),
      op(2, "n2", { kind: "write", value: "b", version: 2, invokeMs: 10, completeMs: 11 }),
      // 300 ms after version 2: within n1's bound, beyond n0's.
      op(3, "n1", { value: "a", found: true, version: 1, invokeMs: 300, completeMs: 311 }),
      op(4, "n0", { value: "a", found: true, version: 1, invokeMs: 300, completeMs: 311 }),
    ],
  };
  const e3 = checkHistory(history).violations.filter((v) => v.guarantee === "E3");
  assert.deepEqual(e3.map((v) => v.ops[0]), [4]);
  const local: History = {
    format: "warp-history/1",
    keys: { l: { mode: "strong-local", ttlMs: 1000, byProcess: { n0: { ttlMs: 50 } } } },
    ops: [
      op(1, "n0", { key: "l", kind: "write", value: "a", version: 1, completeMs: 1 }),
      op(2, "n0", {
        key: "l",
        value: "a",
        found: true,
        version: 1,
        source: "l1",
        ageMs: 80,
        invokeMs: 81,
        completeMs: 81,
      }),
    ],
  };
  assert.deepEqual(checkHistory(local).violations.map((v) => v.guarantee), ["SL2"]);
});

Deno.test("gray seeds combine loss, pauses at a call in flight, coordinator outages and store spikes", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { mix, schedule } = drawFaults(seed, "gray", 5, 2000);
    assert.ok(mix.lossRate > 0, `seed ${seed}: no loss`);
    assert.ok(schedule.some((f) => f.kind === "pause"), `seed ${seed}: no pause`);
    assert.ok(schedule.some((f) => f.kind === "coord-outage"), `seed ${seed}: no outage`);
    assert.ok(schedule.some((f) => f.kind === "store-spike"), `seed ${seed}: no spike`);
  }
  // In the swarm, loss and pauses meet in most seeds (once in a fifth of them at most before).
  let both = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const { mix, schedule } = drawFaults(seed, "swarm", 5, 2000);
    if (mix.lossRate > 0 && schedule.some((f) => f.kind === "pause")) both++;
  }
  assert.ok(both >= 90, `loss with pauses in ${both} of 200 swarm seeds`);
  // A triggered pause starts at the node's call, which then answers a node that was away.
  const run = new SimCluster({ seed: 4, faults: "gray", trace: true, leases: true }).run();
  assert.ok(
    run.trace!.some((e) => e.type === "fault" && /\(at its (coord|store)-call\)/.test(e.text)),
  );
  assert.deepEqual(checkHistory(run.history).violations, []);
});

Deno.test("deno task sim --max-drift-ppm fixes the drift bound of every seed, locks included", async () => {
  const cache = await sim([
    "--seeds",
    "2",
    "--seed",
    "5",
    "--nodes",
    "3",
    "--max-drift-ppm",
    "2000",
  ]);
  assert.equal(cache.code, 0, cache.stdout);
  assert.match(cache.stdout, /drift bound 2000 ppm/);
  const locks = await sim([
    "--scenario",
    "locks",
    "--seeds",
    "2",
    "--max-drift-ppm",
    "2000",
    "--verbose",
  ]);
  assert.equal(locks.code, 0, locks.stdout);
  assert.equal(locks.stdout.match(/seed \d+: drift bound 2000 ppm/g)?.length, 2, locks.stdout);
  const wrong = await sim(["--seeds", "1", "--max-drift-ppm", "200000"]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /--max-drift-ppm must be 0 to 100000: 200000/);
});
