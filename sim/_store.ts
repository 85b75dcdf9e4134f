/**
 * Private: the simulated store (the source of truth the cache scenario's nodes fill from
 * and write to). It is linearizable: each key holds one value at a version that every write
 * raises by one, and a write may be conditional on the version it expects. A call takes
 * effect one request latency after it is made and answers one reply latency later; it may
 * fail before taking effect or after (the caller cannot tell which), and a latency spike on
 * a node slows its calls.
 *
 * Design: the store applies at one instant (the request's arrival), so the order of
 * applied writes *is* the store's history, and the scenario logs it as it applies. The call
 * draws all its randomness when it is made, on the store's own stream. Rejected: a store
 * with its own queue of pending requests. It adds nothing a linearizable store shows its
 * callers, and would order writes by something other than their arrival.
 *
 * @module
 */

import { WarpError } from "../src/core/errors.ts";
import type { Prng } from "./prng.ts";
import type { FaultMix } from "./faults.ts";
import type { Timeline } from "./_timeline.ts";

/** What the store holds for a key. */
export interface StoreCell {
  readonly value: unknown;
  readonly found: boolean;
  readonly version: number;
}

/** A call that failed (`STORE_ERROR`, or `STORE_CONFLICT` for a version that moved). */
export interface StoreFailure {
  readonly ok: false;
  readonly error: WarpError;
}

/** The store's rates, from a run's fault mix. */
export type StoreMix = Pick<FaultMix, "storeLatencyMeanMs" | "storeErrorRate">;

/**
 * The store of a simulated run.
 *
 * @example
 * ```ts
 * import { SimStore } from "./_store.ts";
 * import { Timeline } from "./_timeline.ts";
 * import { Prng } from "./prng.ts";
 * const timeline = new Timeline(1000);
 * const store = new SimStore(timeline, 1, new Prng(1), { storeLatencyMeanMs: 1, storeErrorRate: 0 });
 * store.call(0, () => store.write("k", "v", undefined), (r) => console.log(r)); // { ok: true, version: 1 }
 * timeline.runUntil(1000);
 * console.log(store.cell("k")?.value); // "v"
 * ```
 */
export class SimStore {
  readonly #timeline: Timeline;
  readonly #prng: Prng;
  readonly #mix: StoreMix;
  readonly #cells = new Map<string, StoreCell>();
  /** Extra mean latency of each node's calls while a spike lasts, ms. */
  readonly #spikeMs: Float64Array;

  /** A store for `nodes` nodes, drawing on `prng`, scheduling on `timeline`. */
  constructor(timeline: Timeline, nodes: number, prng: Prng, mix: StoreMix) {
    this.#timeline = timeline;
    this.#prng = prng;
    this.#mix = mix;
    this.#spikeMs = new Float64Array(nodes);
  }

  /** What the store holds for `key` now. */
  cell(key: string): StoreCell | undefined {
    return this.#cells.get(key);
  }

  /**
   * Writes `payload` (`undefined`: deletes) as the next version of `key`, if the version is
   * `expectedVersion` (when given); returns the new version or a conflict.
   */
  write(
    key: string,
    payload: unknown,
    expectedVersion: number | undefined,
  ): { ok: true; version: number } | StoreFailure {
    const current = this.#cells.get(key)?.version ?? 0;
    if (expectedVersion !== undefined && expectedVersion !== current) {
      return { ok: false, error: new WarpError("STORE_CONFLICT", `Version moved: ${key}`) };
    }
    const version = current + 1;
    this.#cells.set(key, { value: payload, found: payload !== undefined, version });
    return { ok: true, version };
  }

  /**
   * Writes each `{ key, payload }` as its key's next version, all at one instant, if every
   * key with an `expectedVersion` is at it (else a conflict, nothing written). `applied`
   * below the number of writes is a canary's store, which applies only the first ones
   * and answers as if it applied all.
   */
  transact(
    writes: readonly { key: string; payload: unknown; expectedVersion?: number }[],
    applied = writes.length,
  ): { ok: true; versions: number[]; applied: number } | StoreFailure {
    for (const { key, expectedVersion } of writes) {
      if (
        expectedVersion !== undefined && expectedVersion !== (this.#cells.get(key)?.version ?? 0)
      ) {
        return { ok: false, error: new WarpError("STORE_CONFLICT", `Version moved: ${key}`) };
      }
    }
    const versions = writes.map(({ key, payload }, i) => {
      const version = (this.#cells.get(key)?.version ?? 0) + 1;
      if (i < applied) {
        this.#cells.set(key, { value: payload, found: payload !== undefined, version });
      }
      return version;
    });
    return { ok: true, versions, applied: Math.min(applied, writes.length) };
  }

  /**
   * A call from `node`: `apply` runs one request latency from now (unless the call fails
   * first), `answer` gets its result one reply latency later (unless it fails after).
   */
  call<R>(node: number, apply: () => R, answer: (result: R | StoreFailure) => void): void {
    const timeline = this.#timeline;
    const prng = this.#prng;
    const mean = this.#mix.storeLatencyMeanMs;
    const failBefore = timeline.faultsOn && prng.chance(this.#mix.storeErrorRate / 2);
    const failAfter = timeline.faultsOn && prng.chance(this.#mix.storeErrorRate / 2);
    const spikeMs = this.#spikeMs[node]!;
    const there = prng.exp(mean) + (spikeMs > 0 ? prng.exp(spikeMs) : 0);
    const back = prng.exp(mean);
    timeline.at(timeline.now + there, () => {
      const result = failBefore ? storeError() : apply();
      timeline.at(timeline.now + back, () => answer(failAfter ? storeError() : result));
    });
  }

  /** Slows `node`'s calls by an extra exponential latency of mean `extraMeanMs` for `durationMs`. */
  spike(node: number, extraMeanMs: number, durationMs: number): void {
    this.#spikeMs[node]! += extraMeanMs;
    this.#timeline.undoAfter(durationMs, () => this.#spikeMs[node]! -= extraMeanMs);
  }

  /** The safety phase is over: no call is slowed any more. */
  heal(): void {
    this.#spikeMs.fill(0);
  }
}

function storeError(): StoreFailure {
  return { ok: false, error: new WarpError("STORE_ERROR", "Simulated store failure") };
}
