/**
 * Private: a simulated run's timeline. It is the event queue over true time, plus the two
 * phases every scenario has: a safety phase under faults, then a fault-free liveness phase.
 * Every layer (processes, network, store, coordinator) reads here whether faults are on, and
 * schedules here when a fault ends.
 *
 * Design: the timeline *is* the event queue (a subclass), so the layers schedule on it with
 * no extra call per event. Rejected: a separate phase object passed beside the queue. Every
 * layer would then take two things where it needs one, and would still have to read the phase
 * through a second object on its hot paths (each message send asks whether faults are on).
 *
 * @module
 */

import { EventQueue } from "./_event_queue.ts";

/**
 * The event queue of a run and its safety and liveness phases.
 *
 * @example
 * ```ts
 * import { Timeline } from "./_timeline.ts";
 * const timeline = new Timeline(100);
 * let down = 1;
 * timeline.undoAfter(500, () => down--); // ends with the safety phase, at 100
 * timeline.at(100, () => timeline.endFaults()); // scheduled later: runs after the undo
 * timeline.runUntil(1000);
 * console.log(down, timeline.faultsOn); // 0 false
 * ```
 */
export class Timeline extends EventQueue {
  /** True time the safety phase ends, ms: no fault outlasts it. */
  readonly safetyMs: number;
  #faultsOn = true;

  /** A timeline whose safety phase ends at `safetyMs`. */
  constructor(safetyMs: number) {
    super();
    if (!(safetyMs >= 0)) throw new RangeError(`safetyMs must be at least 0: ${safetyMs}`);
    this.safetyMs = safetyMs;
  }

  /** Whether the safety phase still runs (faults on). */
  get faultsOn(): boolean {
    return this.#faultsOn;
  }

  /** Ends the safety phase: from now on, no fault starts and none is drawn. */
  endFaults(): void {
    this.#faultsOn = false;
  }

  /** When a fault starting now and lasting `durationMs` ends: never after the safety phase. */
  faultEndMs(durationMs: number): number {
    return Math.min(this.now + durationMs, this.safetyMs);
  }

  /**
   * Runs `undo` when a fault starting now and lasting `durationMs` ends, unless the safety
   * phase is over by then: the heal has already reset every fault, and undoing one again
   * would leave its counter below zero in the fault-free phase.
   */
  undoAfter(durationMs: number, undo: () => void): void {
    this.at(this.faultEndMs(durationMs), () => {
      if (this.#faultsOn) undo();
    });
  }
}
