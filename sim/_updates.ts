/**
 * The update workload of the cache scenario (M1, M2): counters incremented and sets grown
 * by `update`, and, with `lastWriterWins`, a key each update overwrites with a value of its
 * own (`merges.lastWriterWins`), on keys nothing else writes. Each update runs the
 * production read-modify-write state machine (`src/core/update.ts`): a store read, the
 * reducer, a conditional write through the node's `NodeCore` (so strong keys go through the
 * strong protocol), and on a conflict a backoff drawn from the run's seed.
 *
 * The canary `reducer-reads-l1` feeds the reducer the node's L1 value when it holds one
 * (go-warp's merge, H7), keeping the store's version for the condition: the write then
 * lands on top of a value the reducer never saw, and M1 must catch the lost update.
 *
 * The canary `wall-clock-lww` is go-warp's last-writer-wins: each value carries the node's
 * clock reading at the update's start, and the reducer keeps the stored value when its
 * stamp is not older than the incoming one (ties keep the old value). With clocks offset
 * and drifting, a node whose clock runs ahead wins over later writes, which the store then
 * records as a copy of their predecessor: M2 must catch the write that replaced nothing.
 * Even clocks that agree do not give the store's order (an update stamped first may land
 * last), so fault-free runs catch it too, less often.
 * Rejected: applying the canary in the core's merges (`src/merges.ts`), which would put a
 * clock in production code for a test's sake; the reducer is the workload's to give.
 *
 * Two records: each update is an op of the history's update part (M1 and M2 judge the
 * store's log against them), and each of its conditional writes is a plain `write` op of
 * the main history (ok, failed on a conflict, or unknown), as are the reads of the update
 * keys, so the mode's checkers (S1/S2, E1–E4) also judge what every node serves. Rejected: one
 * `write` op per update, invoked at the update's call: its value is decided later, and an
 * attempt that crashed mid-write would be missing from the history.
 *
 * @module
 */

import type { NodeCore } from "../src/core/node.ts";
import type { OpResult } from "../src/core/effects.ts";
import type { WarpError } from "../src/core/errors.ts";
import { UpdateRun } from "../src/core/update.ts";
import { merges } from "../src/merges.ts";
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

/**
 * The last-writer-wins key per distributed mode (M2), written only by updates; a separate
 * list so that runs without it draw the workload seeds pinned before it replay.
 */
export const LWW_KEYS = {
  "eventual-distributed": ["ev:lww"],
  "strong-distributed": ["st:lww"],
} as const;

/** The reducer an update of `key` runs: by the key's suffix. */
export function updateKind(key: string): UpdateOp["kind"] {
  return key.endsWith(":ctr") ? "add" : key.endsWith(":lww") ? "lww" : "union";
}

/** What the update workload needs from the cluster that runs it. */
export interface UpdateHost<N> {
  /** True time now. */
  now(): number;
  /** What `node`'s clock reads now (only the `wall-clock-lww` canary looks). */
  local(node: N): number;
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
  readonly #wallClock: boolean;
  readonly #ops: UpdateDraft[] = [];

  /**
   * `prng` draws the backoffs; `canary` names the one on, if any (`reducer-reads-l1`,
   * `wall-clock-lww`).
   */
  constructor(host: UpdateHost<N>, prng: Prng, canary?: string) {
    this.#host = host;
    this.#prng = prng;
    this.#readsL1 = canary === "reducer-reads-l1";
    this.#wallClock = canary === "wall-clock-lww";
  }

  /** The history part: every update started, with its outcome so far. */
  get ops(): UpdateOp[] {
    return this.#ops.map((d) => ({ ...d }));
  }

  /** Starts update `id` of `key` on `node` (which is running). */
  start(node: N, key: string, id: number): void {
    const host = this.#host;
    const core = node.core!;
    const kind = updateKind(key);
    // A set's element, or the value a last-writer-wins update writes: unique to the op
    // (under the canary, with the node's clock reading at the start, go-warp's stamp).
    const element = kind === "union"
      ? `${node.id}-${id}`
      : this.#wallClock
      ? `${node.id}#${id}@${host.local(node)}`
      : `${node.id}#${id}`;
    const draft: UpdateDraft = {
      id,
      process: node.id,
      key,
      kind,
      ...(kind !== "add" && { element }),
      invokeMs: host.now(),
      completeMs: null,
      outcome: "unknown",
    };
    this.#ops.push(draft);
    const reducer: Reducer<unknown> = kind === "add"
      ? (n) => ((n as number | undefined) ?? 0) + 1
      : kind === "lww"
      ? (this.#wallClock
        ? (current) => wallClockWins(current, element)
        : (current) => merges.lastWriterWins(current, element))
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

/** The clock stamp a canary value carries (`n1#7@1234.5`), or -Infinity for none. */
function stampOf(value: unknown): number {
  const at = typeof value === "string" ? value.lastIndexOf("@") : -1;
  return at < 0 ? -Infinity : Number((value as string).slice(at + 1));
}

/**
 * The canary's reducer, go-warp's wall-clock last-writer-wins: the stored value stays when
 * its stamp is not older than the incoming one's.
 */
function wallClockWins(current: unknown, incoming: string): unknown {
  return current !== undefined && stampOf(current) >= stampOf(incoming) ? current : incoming;
}
