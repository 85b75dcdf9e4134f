/**
 * The update workload of the cache scenario (M1): counters incremented and sets grown by
 * `update`, on keys nothing else writes. Each update runs the production read-modify-write
 * state machine (`src/core/update.ts`): a store read, the reducer, a conditional write
 * through the node's `NodeCore` (so strong keys go through the strong protocol), and on a
 * conflict a backoff drawn from the run's seed.
 *
 * The canary `reducer-reads-l1` feeds the reducer the node's L1 value when it holds one
 * (go-warp's merge, H7), keeping the store's version for the condition: the write then
 * lands on top of a value the reducer never saw, and M1 must catch the lost update.
 *
 * Two records: each update is an op of the history's update part (M1 judges the store's
 * log against them), and each of its conditional writes is a plain `write` op of the main
 * history (ok, failed on a conflict, or unknown), as are the reads of the update keys, so
 * the mode's checkers (S1/S2, E1–E4) also judge what every node serves. Rejected: one
 * `write` op per update, invoked at the update's call: its value is decided later, and an
 * attempt that crashed mid-write would be missing from the history.
 *
 * @module
 */

import type { NodeCore } from "../src/core/node.ts";
import type { OpResult } from "../src/core/effects.ts";
import type { WarpError } from "../src/core/errors.ts";
import { UpdateRun } from "../src/core/update.ts";
import type { Reducer, UpdateResult, UpdateStep } from "../src/core/update.ts";
import type { HistoryOp, Outcome, UpdateOp } from "./history.ts";

/** A history op while it is recorded. */
export type WriteDraft = { -readonly [K in keyof HistoryOp]: HistoryOp[K] };
import type { Prng } from "./prng.ts";

/** The keys only updates write: a counter and a set per distributed mode. */
export const UPDATE_KEYS = {
  "eventual-distributed": ["ev:ctr", "ev:set"],
  "strong-distributed": ["st:ctr", "st:set"],
} as const;

/** What the update workload needs from the cluster that runs it. */
export interface UpdateHost<N> {
  /** True time now. */
  now(): number;
  /** Reads `key` from the simulated store on behalf of `node`; answers into its core. */
  readStore(
    node: N,
    core: NodeCore,
    key: string,
    answer: (read: { found: boolean; value: unknown; version: number } | undefined) => void,
  ): void;
  /** A conditional write through the node's core; `done` gets the core's answer. */
  write(
    node: N,
    core: NodeCore,
    key: string,
    value: unknown,
    expectedVersion: number,
    done: (result: OpResult | WarpError) => void,
  ): void;
  /** Runs `run` `ms` from now on the node (dropped if it crashed meanwhile). */
  after(node: N, ms: number, run: () => void): void;
  /** Whether a failed write's error code means it certainly did not happen. */
  definite(code: string): boolean;
  /**
   * Records one conditional write of an update as a `write` op of the main history (given
   * a fresh id), unknown until its answer; returns the op to complete.
   */
  recordWrite(draft: Omit<HistoryOp, "id">): WriteDraft;
  /** The update ended (the node's in-flight count). */
  ended(node: N): void;
}

type UpdateDraft = { -readonly [K in keyof UpdateOp]: UpdateOp[K] };

const LIMITS = { attemptsMax: 6, backoffMs: 2, backoffMaxMs: 40 } as const;

/**
 * The updates of one run, and their history. A `SimCluster` with `updates: true` makes one.
 *
 * @example
 * ```ts
 * import { SimCluster } from "./cluster.ts";
 * const run = new SimCluster({ seed: 1, nodes: 3, safetyMs: 300, livenessMs: 200, updates: true }).run();
 * console.log(run.history.updates!.ops.length > 0); // true
 * ```
 */
export class SimUpdates<N extends { readonly id: string; core: NodeCore | undefined }> {
  readonly #host: UpdateHost<N>;
  readonly #prng: Prng;
  readonly #readsL1: boolean;
  readonly #ops: UpdateDraft[] = [];

  /** `prng` draws the backoffs; `readsL1` is the canary. */
  constructor(host: UpdateHost<N>, prng: Prng, readsL1: boolean) {
    this.#host = host;
    this.#prng = prng;
    this.#readsL1 = readsL1;
  }

  /** The history part: every update started, with its outcome so far. */
  get ops(): UpdateOp[] {
    return this.#ops.map((d) => ({ ...d }));
  }

  /** Starts update `id` of `key` on `node` (which is running). */
  start(node: N, key: string, id: number): void {
    const host = this.#host;
    const core = node.core!;
    const kind = key.endsWith(":ctr") ? "add" : "union";
    const element = `${node.id}-${id}`;
    const draft: UpdateDraft = {
      id,
      process: node.id,
      key,
      kind,
      ...(kind === "union" && { element }),
      invokeMs: host.now(),
      completeMs: null,
      outcome: "unknown",
    };
    this.#ops.push(draft);
    const reducer: Reducer<unknown> = kind === "add"
      ? (n) => ((n as number | undefined) ?? 0) + 1
      : (set) => [...((set as string[] | undefined) ?? []), element];
    const run = new UpdateRun(reducer, LIMITS);
    const end = (outcome: Outcome, result?: UpdateResult<unknown>) => {
      draft.outcome = outcome;
      if (outcome !== "unknown") draft.completeMs = host.now();
      if (result?.status === "ok") {
        draft.value = result.value;
        draft.version = result.version;
      }
      host.ended(node);
    };
    const next = (step: UpdateStep<unknown>): void => {
      if (node.core !== core) return; // crashed: the outcome stays unknown
      switch (step.type) {
        case "done":
          end(step.result.status === "ok" ? "ok" : "fail", step.result);
          return;
        case "read":
          host.readStore(node, core, key, (read) => {
            if (node.core !== core) return;
            if (read === undefined) return end("fail"); // the read failed: nothing written
            next(run.onRead(this.#readsL1 ? this.#fromL1(core, key, read) : read));
          });
          return;
        case "write": {
          // Each attempt is a write op of the history (a crash leaves it unknown).
          const op = host.recordWrite({
            process: node.id,
            key,
            kind: "write",
            value: step.value,
            invokeMs: host.now(),
            completeMs: null,
            outcome: "unknown",
          });
          host.write(node, core, key, step.value, step.expectedVersion, (result) => {
            if (!("code" in result)) {
              Object.assign(op, { outcome: "ok", completeMs: host.now(), version: result.version });
              next(run.onWritten({ ok: true, version: result.version }));
              return;
            }
            const definite = result.code === "STORE_CONFLICT" || host.definite(result.code);
            if (definite) Object.assign(op, { outcome: "fail", completeMs: host.now() });
            if (result.code === "STORE_CONFLICT") next(run.onWritten({ ok: false }));
            else end(definite ? "fail" : "unknown");
          });
          return;
        }
        case "wait":
          host.after(node, this.#prng.range(step.minMs, step.maxMs), () => next(run.onWaited()));
          return;
      }
    };
    next(run.start());
  }

  /** The canary: the value L1 holds, if any, with the store's version. */
  #fromL1(
    core: NodeCore,
    key: string,
    read: { found: boolean; value: unknown; version: number },
  ): { found: boolean; value: unknown; version: number } {
    const entry = core.inspect(key);
    return entry === undefined
      ? read
      : { found: entry.found, value: entry.value, version: read.version };
  }
}
