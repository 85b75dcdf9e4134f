/**
 * Worker of `pattern_bench.ts`: times the regex matcher Registry used before `globMatch`,
 * in a worker so the benchmark can terminate a match that backtracks for minutes.
 *
 * Receives `{ pattern, key, rounds }`, answers `{ medianMs }` (per match).
 *
 * @module
 */

/// <reference lib="deno.worker" />

/** The matcher as it was: a pattern compiled to `^…$` with `[\s\S]*` per `*`. */
function compile(pattern: string): RegExp {
  const parts = pattern.split("*").map((text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join("[\\s\\S]*")}$`);
}

self.onmessage = (event: MessageEvent<{ pattern: string; key: string; rounds: number }>) => {
  const { pattern, key, rounds } = event.data;
  const regex = compile(pattern);
  const times: number[] = [];
  let matched = false;
  for (let i = 0; i < rounds; i++) {
    const start = performance.now();
    matched = regex.test(key);
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  self.postMessage({ medianMs: times[times.length >> 1]!, matched });
};
