/**
 * Private: the simulated nodes' clocks. Node n reads `offset + (1 + drift) · T + steps` at
 * true time T: an offset (clocks need not agree), a drift within the run's bound (a clock
 * runs fast or slow), and forward steps (only the clock-step canary makes any: Warp measures
 * durations on a monotonic clock).
 *
 * Design: a clock is a value with the two conversions a driver needs — what the node reads
 * now, and the true time at which it will read a deadline (to wake its timer) — so the
 * formula lives in one place and both directions stay each other's inverse. Rejected: a
 * clock that reads the event queue itself. It would hide that the caller decides *when*, and
 * a node's clock would then depend on the loop it runs in.
 *
 * @module
 */

import type { Prng } from "./prng.ts";

/**
 * One node's clock.
 *
 * @example
 * ```ts
 * import { NodeClock } from "./_clocks.ts";
 * const clock = new NodeClock(1000, 0.01); // 1 s ahead, 1 % fast
 * console.log(clock.read(100)); // 1101
 * console.log(clock.trueTimeOf(1101)); // 100
 * ```
 */
export class NodeClock {
  /** How far forward the clock has jumped in all, ms (clock-step canary only). */
  stepMs = 0;

  /** A clock `offsetMs` ahead of true time, running at `1 + drift` its rate. */
  constructor(readonly offsetMs: number, readonly drift: number) {}

  /** What the clock reads at true time `trueMs`. */
  read(trueMs: number): number {
    return this.offsetMs + (1 + this.drift) * trueMs + this.stepMs;
  }

  /** The true time at which the clock reads `localMs` (unless it steps meanwhile). */
  trueTimeOf(localMs: number): number {
    return (localMs - this.offsetMs - this.stepMs) / (1 + this.drift);
  }

  /** Jumps the clock forward by `stepMs`: a monotonic clock never goes back. */
  step(stepMs: number): void {
    if (!(stepMs >= 0)) throw new RangeError(`A clock steps forward only: ${stepMs}`);
    this.stepMs += stepMs;
  }
}

/** What a run's clocks may do. */
export interface ClockFaults {
  /** Whether clocks drift at all (within the bound). */
  readonly drift: boolean;
  /** The drift bound every clock keeps, ppm. */
  readonly maxDriftPpm: number;
  /** Largest clock offset, ms. */
  readonly clockOffsetMaxMs: number;
}

/**
 * Draws a node's clock from its own stream: the drift (uniform within the bound, if clocks
 * drift), which `adjustDrift` may then move (to the bound, past it for a canary), then the
 * offset. Both are drawn whatever their range, so a node's stream is the same length for
 * every mix.
 *
 * @example
 * ```ts
 * import { drawNodeClock } from "./_clocks.ts";
 * import { Prng } from "./prng.ts";
 * const clock = drawNodeClock(new Prng(1), { drift: true, maxDriftPpm: 500, clockOffsetMaxMs: 0 });
 * console.log(Math.abs(clock.drift) <= 500e-6, clock.offsetMs); // true 0
 * ```
 */
export function drawNodeClock(
  prng: Prng,
  faults: ClockFaults,
  adjustDrift: (drift: number) => number = (drift) => drift,
): NodeClock {
  const maxDrift = faults.maxDriftPpm / 1e6;
  const drift = adjustDrift(faults.drift ? prng.range(-maxDrift, maxDrift) : 0);
  return new NodeClock(prng.range(0, faults.clockOffsetMaxMs), drift);
}
