/**
 * Key pattern matching: `globMatch` (the registry's matcher, no backtracking) side by side
 * with the regex matcher it replaced, in the same run, on the adversarial keys that made
 * the regex backtrack, near misses that make `globMatch` scan the whole key, its own worst
 * case, and two ordinary lookups for scale. Each regex case runs in a
 * worker that is terminated after a cut-off; those rows show `> cut-off`.
 *
 * Run: npx -y deno@2 run --allow-read bench/pattern_bench.ts [--cutoff-ms 5000]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { globMatch } from "../src/core/registry.ts";

interface Case {
  readonly pattern: string;
  readonly key: string;
}

const CASES: readonly Case[] = [
  { pattern: "session:*", key: "session:4f6c2a9e" },
  { pattern: "tenant:*:user:*", key: "tenant:acme:user:42" },
  { pattern: "cart:*:*:*:items", key: `cart${":".repeat(1001)}` },
  { pattern: "*a*a*a*a*b", key: "a".repeat(1024) },
  { pattern: "a:*:*:*:*:z", key: `a${":".repeat(1004)}` },
  // Near misses that pass the first and last parts, so globMatch scans the key.
  { pattern: "a:*:*:*:*:z", key: `a:${"x".repeat(1000)}:z` },
  { pattern: "*a*a*a*a*b", key: `${"a".repeat(1023)}b` },
  // globMatch's own worst case: a middle part that almost matches at every position.
  { pattern: `*b${"a".repeat(100)}*`, key: "a".repeat(1024) },
];

/** Median time of one `globMatch` call, in ms, over batches long enough to time. */
function timeGlob({ pattern, key }: Case): { medianMs: number; matched: boolean } {
  const parts = pattern.split("*");
  let matched = false;
  let batch = 1;
  for (;;) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) matched = globMatch(parts, key);
    if (performance.now() - start >= 5 || batch >= 1 << 24) break;
    batch *= 4;
  }
  const times: number[] = [];
  for (let round = 0; round < 15; round++) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) matched = globMatch(parts, key);
    times.push((performance.now() - start) / batch);
  }
  times.sort((a, b) => a - b);
  return { medianMs: times[times.length >> 1]!, matched };
}

/** Median time of one regex match in a worker, or `undefined` past the cut-off. */
async function timeRegex(
  { pattern, key }: Case,
  cutoffMs: number,
): Promise<{ medianMs: number; matched: boolean } | undefined> {
  const worker = new Worker(new URL("./_regex_matcher_worker.ts", import.meta.url).href, {
    type: "module",
  });
  try {
    const answer = new Promise<{ medianMs: number; matched: boolean }>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(event.message));
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cutoff = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), cutoffMs);
    });
    // Short keys get many rounds; the slow ones get 3 (all must fit in the cut-off).
    worker.postMessage({ pattern, key, rounds: key.length > 100 ? 3 : 20_001 });
    const result = await Promise.race([answer, cutoff]);
    clearTimeout(timer);
    return result;
  } finally {
    worker.terminate();
  }
}

function formatMs(ms: number): string {
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  if (ms >= 0.001) return `${(ms * 1000).toFixed(2)} µs`;
  return `${(ms * 1e6).toFixed(0)} ns`;
}

function formatRatio(ratio: number): string {
  return ratio >= 1000 ? Math.round(ratio).toLocaleString("en") : ratio.toFixed(1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { "cutoff-ms": { type: "string", default: "5000" } },
  });
  const cutoffMs = Number(values["cutoff-ms"]);
  if (!(cutoffMs > 0)) throw new RangeError(`Invalid --cutoff-ms: ${values["cutoff-ms"]}`);
  console.log(`\nMedian time of one match; regex cut off after ${cutoffMs} ms.\n`);
  console.log(
    "| pattern            | key length | globMatch | regex (before) | regex / globMatch |",
  );
  console.log(
    "| ------------------ | ---------: | --------: | -------------: | ----------------: |",
  );
  for (const c of CASES) {
    const glob = timeGlob(c);
    const regex = await timeRegex(c, cutoffMs);
    if (regex !== undefined && regex.matched !== glob.matched) {
      throw new Error(`The matchers disagree on ${c.pattern}`);
    }
    const regexText = regex === undefined ? `> ${cutoffMs} ms` : formatMs(regex.medianMs);
    const ratio = regex === undefined
      ? `> ${formatRatio(cutoffMs / glob.medianMs)}×`
      : `${formatRatio(regex.medianMs / glob.medianMs)}×`;
    console.log(
      `| ${(c.pattern.length > 18 ? `${c.pattern.slice(0, 15)}…` : c.pattern).padEnd(18)} | ${
        String(c.key.length).padStart(10)
      } | ${formatMs(glob.medianMs).padStart(9)} | ${regexText.padStart(14)} | ${
        ratio.padStart(17)
      } |`,
    );
  }
}

if (import.meta.main) await main();
