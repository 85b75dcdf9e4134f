/**
 * Speed of the linearizability search on histories of the shape of porcupine's `c50-ok`
 * (porcupine checks that file in about 116 ms): 1,700 ops of 50 clients on 10 keys of the
 * `append-kv` model, half reads, heavy-tailed durations, linearizable by construction
 * (`syntheticAppendKvHistory`, one history per seed). Beside it, in the same run, a
 * baseline: parsing and validating the same history from its JSON text, the floor any
 * checker pays. Prints, per history, the medians (wall clock and CPU) and their ratio.
 *
 * Run: npx -y deno@2 task bench:history [runs] [seeds]
 *
 * @module
 */

import process from "node:process";
import { checkModel } from "../sim/checkers/model_check.ts";
import { validateHistory } from "../sim/checkers/validate_history.ts";
import { syntheticAppendKvHistory } from "../sim/checkers/_synthetic.ts";

interface Timing {
  readonly wallMs: number;
  readonly cpuMs: number;
}

function time(run: () => void): Timing {
  const cpu = process.cpuUsage();
  const start = performance.now();
  run();
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

function main(): void {
  const runs = Number(Deno.args[0] ?? 7);
  const seeds = Number(Deno.args[1] ?? 3);
  console.log(`${runs} runs per history, medians; CPU time is user + system of this process`);
  console.log(
    "seed   ops  keys  steps     search wall  search CPU  baseline wall  ratio (wall)  ratio (CPU)",
  );
  for (let seed = 1; seed <= seeds; seed++) {
    const history = syntheticAppendKvHistory({ seed, ops: 1700, clients: 50, keys: 10 });
    const text = JSON.stringify(history);
    let steps = 0;
    const search: Timing[] = [];
    const baseline: Timing[] = [];
    for (let run = 0; run < runs; run++) {
      baseline.push(time(() => validateHistory(JSON.parse(text), { against: "model" })));
      search.push(time(() => {
        const result = checkModel(history, "append-kv", { stepsMax: 10_000_000 });
        if (result.status !== "pass") throw new Error(`Seed ${seed}: ${result.status}`);
        steps = result.stats.steps;
      }));
    }
    const searchWall = median(search.map((t) => t.wallMs));
    const searchCpu = median(search.map((t) => t.cpuMs));
    const baseWall = median(baseline.map((t) => t.wallMs));
    const baseCpu = median(baseline.map((t) => t.cpuMs));
    console.log(
      `${String(seed).padStart(4)}  ${history.ops.length}  ${"10".padStart(4)}  ` +
        `${String(steps).padStart(7)}  ${searchWall.toFixed(1).padStart(9)} ms  ` +
        `${searchCpu.toFixed(1).padStart(7)} ms  ${baseWall.toFixed(2).padStart(10)} ms  ` +
        `${(searchWall / baseWall).toFixed(0).padStart(10)}×  ` +
        `${(searchCpu / Math.max(baseCpu, 0.001)).toFixed(0).padStart(10)}×`,
    );
  }
}

main();
