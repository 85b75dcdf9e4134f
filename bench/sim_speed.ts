/**
 * Simulator speed: a 5-node, 2-simulated-second swarm scenario, seeded, run back to back,
 * beside a baseline in the same run — a plain heap-ordered event loop (push/pop of
 * (time, seq) events with a closure each, nothing else), the floor any simulator pays.
 *
 * Run: npx -y deno@2 run --allow-read --allow-env bench/sim_speed.ts [seeds]
 *
 * @module
 */

import { runSeed } from "../sim/runner.ts";

function main(): void {
  const seeds = Number(Deno.args[0] ?? 200);

  function baselineLoop(events: number): number {
    const heap: { at: number; seq: number; run: () => void }[] = [];
    let seq = 0, now = 0, ran = 0;
    const push = (at: number, run: () => void) => {
      const e = { at, seq: seq++, run };
      let i = heap.length;
      heap.push(e);
      while (i > 0) {
        const p = (i - 1) >> 1;
        const pe = heap[p]!;
        if (pe.at < e.at || (pe.at === e.at && pe.seq < e.seq)) break;
        heap[i] = pe;
        i = p;
      }
      heap[i] = e;
    };
    const pop = () => {
      const top = heap[0]!, last = heap.pop()!;
      if (heap.length === 0) return top;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = last, mi = -1;
        const le = heap[l], re = heap[r];
        if (le && (le.at < m.at || (le.at === m.at && le.seq < m.seq))) (m = le), (mi = l);
        if (re && (re.at < m.at || (re.at === m.at && re.seq < m.seq))) (m = re), (mi = r);
        if (mi < 0) break;
        heap[i] = m;
        i = mi;
      }
      heap[i] = last;
      return top;
    };
    // Keep ~2000 events pending, like a busy cluster; each event schedules one more.
    let x = 12345;
    const step = () => {
      ran++;
      x = (x * 1103515245 + 12345) >>> 0;
      if (ran + heap.length < events) push(now + (x % 1000) / 100, step);
    };
    for (let i = 0; i < 2000; i++) push(i / 100, step);
    while (heap.length > 0) {
      const e = pop();
      now = e.at;
      e.run();
    }
    return ran;
  }

  function median(values: number[]): number {
    const s = [...values].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)]!;
  }

  const simEventsPerSec: number[] = [], simXReal: number[] = [], seedsPerSec: number[] = [];
  const baseEventsPerSec: number[] = [];
  const batch = 20;
  for (let b = 0; b < Math.ceil(seeds / batch); b++) {
    let events = 0, simMs = 0;
    const t0 = performance.now();
    for (let i = 0; i < batch; i++) {
      const r = runSeed({ seed: 1000 + b * batch + i, nodes: 5, safetyMs: 1500, livenessMs: 500 });
      if (r.violations.length > 0) {
        throw new Error(`seed ${r.run.seed} violates ${r.violations[0]!.guarantee}`);
      }
      events += r.run.stats.events;
      simMs += r.run.stats.simMs;
    }
    const wall = performance.now() - t0;
    simEventsPerSec.push(events / (wall / 1000));
    simXReal.push(simMs / wall);
    seedsPerSec.push(batch / (wall / 1000));
    const t1 = performance.now();
    const ran = baselineLoop(events / batch * 4);
    baseEventsPerSec.push(ran / ((performance.now() - t1) / 1000));
  }
  const row = (name: string, value: string, ratio: string) =>
    console.log(`| ${name.padEnd(44)} | ${value.padStart(14)} | ${ratio.padStart(9)} |`);
  console.log(
    `\n${seeds} seeds (5 nodes, swarm faults, 2 simulated s each; checkers included), medians of ${simEventsPerSec.length} batches\n`,
  );
  row("measure", "median", "vs base");
  row("-".repeat(44), "-".repeat(14), "-".repeat(9));
  row(
    "baseline: plain heap-ordered event loop",
    `${(median(baseEventsPerSec) / 1e6).toFixed(2)} M ev/s`,
    "1.00×",
  );
  row(
    "Warp simulator (run + check)",
    `${(median(simEventsPerSec) / 1e6).toFixed(2)} M ev/s`,
    `${(median(simEventsPerSec) / median(baseEventsPerSec)).toFixed(2)}×`,
  );
  row("simulated time per wall time", `${median(simXReal).toFixed(0)}×`, "");
  row("seeds per second", `${median(seedsPerSec).toFixed(0)}`, "");
}

// A script, not a Deno.bench file: `deno bench bench/` imports it and must not run it.
if (import.meta.main) main();
