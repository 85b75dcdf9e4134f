/**
 * Private: the simulated processes. A process is a node running one production core (a
 * `NodeCore`, a `LockCore`) with its own clock and random stream; it may be paused (a GC
 * pause, SIGSTOP: its clock runs on, its inputs wait), crashed (no core) and restarted (a new
 * core, a new incarnation). The {@linkcode ProcessHost} is the driver contract both cores
 * state, done once: deliver an input unless the process is paused, perform the effects it
 * returns, and wake the core at its next deadline, read on its own clock, up to the timer
 * jitter late.
 *
 * Design: the host is generic over the core and takes the scenario's `perform` (what each
 * effect does) as a function, so a scenario keeps its effects and the host keeps the
 * stepping. The process record is plain data that a scenario extends with its own fields
 * (a workload's ops in flight, a lock holding). Rejected: a base class each cluster
 * subclasses. The stepping would then be reached through `this` and open to overriding piece
 * by piece, and a scenario class would mix its workload with the driver contract again.
 *
 * @module
 */

import type { NodeClock } from "./_clocks.ts";
import type { Prng } from "./prng.ts";
import type { Timeline } from "./_timeline.ts";

/** What a core offers its driver: its effects, its next deadline, and a timer tick. */
export interface Steppable<E> {
  takeEffects(): readonly E[];
  nextDeadlineMs(): number;
  tick(nowMs: number): void;
}

/** The effects a core returns. */
export type EffectOf<C> = C extends Steppable<infer E> ? E : never;

/** The calls an armed pause may wait for: any coordinator call, a coordinator write, a store call. */
export type PauseTrigger = "coord-call" | "coord-write" | "store-call";

/** One simulated node and the core it runs. */
export interface SimProcess<C> {
  readonly index: number;
  /** `n<index>`. */
  readonly id: string;
  /** The node's own stream: its clock, then its timers' jitter. */
  readonly prng: Prng;
  readonly clock: NodeClock;
  /** The running core; `undefined` while crashed. */
  core: C | undefined;
  /** Starts of the node so far; a restarted node is a new incarnation. */
  incarnation: number;
  /** True time the current pause ends (inputs wait until then). */
  pausedUntil: number;
  /** A pause that starts at the node's next call of a kind. */
  pauseArmed: { readonly on: PauseTrigger; readonly durationMs: number } | undefined;
  /** True time of the core's armed timer; `Infinity` if none. */
  tickAt: number;
}

/**
 * The fields every process starts with, for a scenario's process record.
 *
 * @example
 * ```ts
 * import { processFields } from "./_processes.ts";
 * import { NodeClock } from "./_clocks.ts";
 * import { Prng } from "./prng.ts";
 * const node = { ...processFields<string>(2, new Prng(1), new NodeClock(0, 0)), inflight: 0 };
 * console.log(node.id, node.core, node.tickAt); // "n2" undefined Infinity
 * ```
 */
export function processFields<C>(index: number, prng: Prng, clock: NodeClock): SimProcess<C> {
  return {
    index,
    id: `n${index}`,
    prng,
    clock,
    core: undefined,
    incarnation: 0,
    pausedUntil: 0,
    pauseArmed: undefined,
    tickAt: Infinity,
  };
}

/** Performs one effect a core returned; `op` is the client operation the input belonged to. */
export type Perform<C, P> = (
  process: P,
  core: C,
  effect: EffectOf<C>,
  op: number | undefined,
) => void;

/** Options of a {@linkcode ProcessHost}. */
export interface ProcessHostOptions<C, P> {
  /** Timers fire up to this late (uniform), ms. */
  readonly timerJitterMs: number;
  /** What each effect does in the scenario. */
  readonly perform: Perform<C, P>;
  /** Notes a fault for a trace (an armed pause starting). @default {none} */
  readonly traceFault?: (text: string) => void;
  /** Runs after every step, once its effects are performed (to drain a core's events). @default {none} */
  readonly afterStep?: (process: P, core: C) => void;
}

/**
 * Drives the cores of a scenario's processes: delivers inputs unless paused, performs the
 * effects, arms the timers. Also starts, crashes, pauses and resumes processes.
 *
 * @example
 * ```ts
 * import { ProcessHost, processFields } from "./_processes.ts";
 * import { NodeClock } from "./_clocks.ts";
 * import { Timeline } from "./_timeline.ts";
 * import { Prng } from "./prng.ts";
 * class Echo { #out: string[] = []; say(s: string) { this.#out.push(s); }
 *   takeEffects() { return this.#out.splice(0); } nextDeadlineMs() { return Infinity; } tick() {} }
 * const timeline = new Timeline(1000);
 * const heard: string[] = [];
 * const host = new ProcessHost<Echo, ReturnType<typeof processFields<Echo>>>(timeline, {
 *   timerJitterMs: 0,
 *   perform: (_p, _core, effect) => heard.push(effect),
 * });
 * const node = processFields<Echo>(0, new Prng(1), new NodeClock(0, 0));
 * const core = host.start(node, () => new Echo());
 * host.pause(node, 50);
 * host.deliver(node, core, (c) => c.say("hi")); // waits for the pause to end
 * timeline.runUntil(100);
 * console.log(heard); // ["hi"]
 * ```
 */
export class ProcessHost<C extends Steppable<unknown>, P extends SimProcess<C>> {
  readonly #timeline: Timeline;
  readonly #jitterMs: number;
  readonly #perform: Perform<C, P>;
  readonly #traceFault: ((text: string) => void) | undefined;
  readonly #afterStep: ((process: P, core: C) => void) | undefined;

  /** A host scheduling on `timeline`. */
  constructor(timeline: Timeline, options: ProcessHostOptions<C, P>) {
    if (!(options.timerJitterMs >= 0)) {
      throw new RangeError(`timerJitterMs must be at least 0: ${options.timerJitterMs}`);
    }
    this.#timeline = timeline;
    this.#jitterMs = options.timerJitterMs;
    this.#perform = options.perform;
    this.#traceFault = options.traceFault;
    this.#afterStep = options.afterStep;
  }

  /** What the process's clock reads now. */
  local(process: P): number {
    return process.clock.read(this.#timeline.now);
  }

  /** Starts (or restarts) the process with a new core made for its next incarnation. */
  start(process: P, create: (incarnation: number) => C): C {
    process.incarnation++;
    const core = create(process.incarnation);
    process.core = core;
    process.tickAt = Infinity;
    return core;
  }

  /** Crashes the process: its core, and every input still on its way to it, are gone. */
  crash(process: P): void {
    process.core = undefined;
    process.tickAt = Infinity;
  }

  /**
   * Runs `act` now, or when the process's pause ends, if `core` still runs then (a crash
   * drops it). For what the node itself does; an input to the core is {@linkcode deliver}.
   */
  whenRunning(process: P, core: C | undefined, act: () => void): void {
    if (core === undefined || process.core !== core) return;
    if (process.pausedUntil > this.#timeline.now) {
      this.#timeline.at(process.pausedUntil, () => this.whenRunning(process, core, act));
      return;
    }
    act();
  }

  /** Delivers `input` to `core` now, or when the pause ends, as one {@linkcode step}. */
  deliver(process: P, core: C | undefined, input: (core: C) => void): void {
    this.whenRunning(process, core, () => this.step(process, core!, input));
  }

  /**
   * Calls `core` with `input` now (the caller knows the process runs), performs the effects
   * it returns, and arms its next timer unless an earlier one is armed: it fires at the true
   * time the process's clock reads the deadline (a hair later, for rounding), plus jitter.
   */
  step(process: P, core: C, input: (core: C) => void, op?: number): void {
    input(core);
    const effects = core.takeEffects() as readonly EffectOf<C>[];
    for (const effect of effects) this.#perform(process, core, effect, op);
    this.#afterStep?.(process, core);
    const deadline = core.nextDeadlineMs();
    if (deadline === Infinity || process.core !== core) return;
    const jitter = this.#jitterMs > 0 ? process.prng.range(0, this.#jitterMs) : 0;
    const timeline = this.#timeline;
    const at = Math.max(timeline.now, process.clock.trueTimeOf(deadline) + 1e-6 + jitter);
    if (at >= process.tickAt) return;
    process.tickAt = at;
    timeline.at(at, () => {
      if (process.core !== core || process.tickAt !== at) return; // a spurious wake-up
      process.tickAt = Infinity;
      this.deliver(process, core, (c) => c.tick(this.local(process)));
    });
  }

  /** Pauses the process for `durationMs` (never past the safety phase), or longer if it already is. */
  pause(process: P, durationMs: number): void {
    process.pausedUntil = Math.max(process.pausedUntil, this.#timeline.faultEndMs(durationMs));
  }

  /** Arms a pause of `durationMs` that starts at the process's next call of kind `on`. */
  armPause(process: P, on: PauseTrigger, durationMs: number): void {
    process.pauseArmed = { on, durationMs };
  }

  /**
   * The process is making a call of kind `call`: a pause armed for it starts now, so the
   * call's answer comes back to a node that has been away (a coordinator write counts as a
   * coordinator call).
   */
  calling(process: P, call: PauseTrigger): void {
    const armed = process.pauseArmed;
    if (armed === undefined || !this.#timeline.faultsOn) return;
    if (armed.on !== call && !(armed.on === "coord-call" && call === "coord-write")) return;
    process.pauseArmed = undefined;
    this.#traceFault?.(
      `pause ${process.id} for ${armed.durationMs.toFixed(0)} ms (at its ${call})`,
    );
    this.pause(process, armed.durationMs);
  }

  /** The safety phase is over: the process runs again now, and no pause stays armed. */
  resume(process: P): void {
    process.pausedUntil = Math.min(process.pausedUntil, this.#timeline.now);
    process.pauseArmed = undefined;
  }
}
