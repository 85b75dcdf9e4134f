/**
 * Private: the simulated coordinator, a compare-and-set register service like a NATS KV
 * bucket or etcd. Each key holds a record at a revision drawn from one counter for the whole
 * service (a delete takes a revision too); a create succeeds only on an absent key, an
 * update or delete only at the key's current revision. A record written with a TTL is
 * forgotten that long after its last write. Watches tell each change of a key to its
 * watchers. Faults: a node may be unable to reach the service (an outage), its calls may be
 * slowed (a latency spike), a read may be answered from an older state (a deposed leader, a
 * lagging replica: NATS ADR-8, ADR-53), and an answer may be lost after the call took effect.
 * A call without an answer fails after the timeout with `COORDINATOR_UNAVAILABLE`; it may
 * still have taken effect.
 *
 * Design: the service state (registers, revisions, TTLs, the recent past a stale read may
 * return, watches) and the way calls reach it (hops, outages, timeouts, lost answers) are one
 * class, because the faults cut across both — a stale read is a property of the service, a
 * lost answer of the path back — and each scenario calls it the same way: `call(node,
 * apply, answer)` with `apply` one of `get`, `put`, `remove`. Rejected: a pure register
 * store with each scenario's own call plumbing around it, which is how the cache and lock
 * scenarios came to keep two copies of the calls, and how only one of them learned stale
 * reads and lost answers.
 *
 * Two options only keep each scenario's stream of random draws as it was, so that seeds
 * pinned before this module existed replay: `hopDraws` (both hops drawn when the call is
 * made, or each as it starts) and `timeout` (a timer raced against every call, or a failure
 * reported at the timeout only for a call a fault lost). A raced timeout is the one real
 * coordinators have; it matters where a hop can outlast the timeout (the lock scenario's
 * latency spikes). Where hops stay far below it (the cache scenario's), the two answer alike.
 *
 * @module
 */

import { WarpError } from "../src/core/errors.ts";
import type { Prng } from "./prng.ts";
import type { Timeline } from "./_timeline.ts";

/** A record the coordinator holds. */
export interface CoordCell<R> {
  readonly record: R;
  readonly revision: number;
  /** True time the coordinator forgets the record (written with a TTL), else `Infinity`. */
  readonly expiresAt: number;
}

/** A failed call: the revision moved (`conflict`), or no answer came (`COORDINATOR_UNAVAILABLE`). */
export interface CoordFailure {
  readonly ok: false;
  readonly conflict: boolean;
  readonly error: WarpError;
}

/** Options of a {@linkcode SimCoordinator}. */
export interface CoordinatorOptions {
  /** Number of nodes (0 … nodes − 1) that call it. */
  readonly nodes: number;
  /** The stream every hop, stale read and lost answer draws from. */
  readonly prng: Prng;
  /** Mean one-way latency of a hop, ms (exponential). */
  readonly latencyMeanMs: number;
  /** A hop is cut at this many times its mean. @default {Infinity} */
  readonly latencyCapFactor?: number;
  /** A latency spike adds at most this much to a hop, ms. @default {Infinity} */
  readonly spikeCapMs?: number;
  /** A call without an answer fails after this long, ms. */
  readonly timeoutMs: number;
  /**
   * `raced`: the timeout runs from the call, and an answer after it is dropped. `when-lost`:
   * only a call a fault lost (an outage, a lost answer) fails at the timeout; hops must stay
   * far below it.
   */
  readonly timeout: "raced" | "when-lost";
  /** `at-send`: both hops are drawn when the call is made. `per-hop`: each as it starts. */
  readonly hopDraws: "at-send" | "per-hop";
  /** Probability that a read (faults on) is answered from an older state. @default {0} */
  readonly staleRate?: number;
  /** How old that state may be, ms. @default {0} */
  readonly staleMaxMs?: number;
  /** Probability that a call's answer (faults on) is lost after the call took effect. @default {0} */
  readonly replyLossRate?: number;
  /** Whether records written with a TTL are forgotten (false: a broken coordinator, a canary). @default {true} */
  readonly forgetsExpired?: boolean;
}

interface Watch<R> {
  readonly node: number;
  readonly key: string;
  registered: boolean;
  readonly tell: (record: R | undefined, revision: number) => void;
}

/**
 * The coordinator of a simulated run, holding records of type `R`.
 *
 * @example
 * ```ts
 * import { SimCoordinator } from "./_coordinator.ts";
 * import { Timeline } from "./_timeline.ts";
 * import { Prng } from "./prng.ts";
 * const timeline = new Timeline(1000);
 * const coord = new SimCoordinator<string>(timeline, {
 *   nodes: 2, prng: new Prng(1), latencyMeanMs: 0.5, timeoutMs: 50,
 *   timeout: "raced", hopDraws: "per-hop",
 * });
 * coord.call(0, () => coord.put("k", "a", undefined), (r) => console.log(r.ok)); // true
 * coord.outage(1, 100);
 * coord.call(1, () => coord.put("k", "b", undefined), (r) => console.log(r.ok)); // false
 * timeline.runUntil(1000);
 * console.log(coord.current("k")?.record); // "a"
 * ```
 */
export class SimCoordinator<R> {
  readonly #timeline: Timeline;
  readonly #prng: Prng;
  readonly #meanMs: number;
  readonly #capMs: number;
  readonly #spikeCapMs: number;
  readonly #timeoutMs: number;
  readonly #raced: boolean;
  readonly #hopsAtSend: boolean;
  readonly #staleRate: number;
  readonly #staleMaxMs: number;
  readonly #replyLossRate: number;
  readonly #forgetsExpired: boolean;
  readonly #cells = new Map<string, CoordCell<R>>();
  /** Recent writes per key (`undefined`: deleted), for reads answered from an older state. */
  readonly #past = new Map<string, { atMs: number; cell: CoordCell<R> | undefined }[]>();
  readonly #watches = new Map<string, Watch<R>>();
  /** Outages of each node. */
  readonly #down: Int32Array;
  /** Extra mean latency of each node's hops while a spike lasts, ms. */
  readonly #spikeMs: Float64Array;
  #revision = 0;
  /** Calls that failed with `COORDINATOR_UNAVAILABLE`. */
  timeouts = 0;
  /** Reads answered from an older state. */
  staleReads = 0;
  /** Answers lost after their call took effect. */
  lostAnswers = 0;

  /** A coordinator scheduling on `timeline`. */
  constructor(timeline: Timeline, options: CoordinatorOptions) {
    const n = options.nodes;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`nodes must be at least 1: ${n}`);
    if (!(options.timeoutMs > 0)) {
      throw new RangeError(`timeoutMs must be above 0: ${options.timeoutMs}`);
    }
    this.#timeline = timeline;
    this.#prng = options.prng;
    this.#meanMs = options.latencyMeanMs;
    this.#capMs = (options.latencyCapFactor ?? Infinity) * options.latencyMeanMs;
    this.#spikeCapMs = options.spikeCapMs ?? Infinity;
    this.#timeoutMs = options.timeoutMs;
    this.#raced = options.timeout === "raced";
    this.#hopsAtSend = options.hopDraws === "at-send";
    this.#staleMaxMs = options.staleMaxMs ?? 0;
    this.#staleRate = this.#staleMaxMs > 0 ? options.staleRate ?? 0 : 0;
    this.#replyLossRate = options.replyLossRate ?? 0;
    this.#forgetsExpired = options.forgetsExpired ?? true;
    this.#down = new Int32Array(n);
    this.#spikeMs = new Float64Array(n);
  }

  /** The service's revision counter: the revision of its latest write. */
  get revision(): number {
    return this.#revision;
  }

  // ------------------------------------------------------------------ calls

  /** Whether `node` can reach the coordinator now. */
  #reachable(node: number): boolean {
    return this.#down[node] === 0;
  }

  /** One hop's latency for `node`: a capped exponential, plus a capped spike while one lasts. */
  #hopMs(node: number): number {
    const mean = this.#meanMs;
    let hop = Math.min(this.#prng.exp(mean), this.#capMs);
    const spike = this.#spikeMs[node]!;
    if (spike > 0) hop += Math.min(this.#prng.exp(spike), this.#spikeCapMs);
    return hop;
  }

  /**
   * A call from `node`: `apply` runs when the request arrives, if the node can reach the
   * coordinator then; `answer` gets its result one hop later if the node can still reach it
   * and the answer is not lost, else `COORDINATOR_UNAVAILABLE` at the timeout. A call may
   * take effect and still fail.
   */
  call<T>(node: number, apply: () => T, answer: (result: T | CoordFailure) => void): void {
    const timeline = this.#timeline;
    const sentAt = timeline.now;
    let there = this.#hopsAtSend ? this.#hopMs(node) : NaN;
    let back = this.#hopsAtSend ? this.#hopMs(node) : NaN;
    let answered = false;
    const respond = (result: T | CoordFailure) => {
      if (answered) return;
      answered = true;
      answer(result);
    };
    const timeout = () =>
      timeline.at(sentAt + this.#timeoutMs, () => {
        if (answered) return;
        this.timeouts++;
        respond(unavailable(this.#timeoutMs));
      });
    // A raced timeout runs from now; otherwise it is armed when a fault loses the call.
    const lost = this.#raced ? ignore : timeout;
    if (this.#raced) timeout();
    if (!this.#reachable(node)) return lost();
    if (!this.#hopsAtSend) there = this.#hopMs(node);
    timeline.at(sentAt + there, () => {
      if (!this.#reachable(node)) return lost();
      const result = apply(); // it took effect; the answer may still be lost or late
      if (this.#lostAnswer()) return lost();
      if (!this.#hopsAtSend) back = this.#hopMs(node);
      timeline.at(timeline.now + back, () => {
        if (this.#reachable(node)) respond(result);
        else lost();
      });
    });
  }

  /** Cuts `node` off the coordinator for `durationMs`. */
  outage(node: number, durationMs: number): void {
    this.#down[node]!++;
    this.#timeline.undoAfter(durationMs, () => this.#down[node]!--);
  }

  /** Slows `node`'s hops by up to an exponential of mean `extraMeanMs` for `durationMs`. */
  spike(node: number, extraMeanMs: number, durationMs: number): void {
    this.#spikeMs[node] = extraMeanMs;
    this.#timeline.undoAfter(durationMs, () => {
      this.#spikeMs[node] = 0;
    });
  }

  /** The safety phase is over: every node reaches the coordinator at its usual latency. */
  heal(): void {
    this.#down.fill(0);
    this.#spikeMs.fill(0);
  }

  #lostAnswer(): boolean {
    const lost = this.#timeline.faultsOn && this.#replyLossRate > 0 &&
      this.#prng.chance(this.#replyLossRate);
    if (lost) this.lostAnswers++;
    return lost;
  }

  // ------------------------------------------------------------------ registers

  /** The record of `key` now, `undefined` if absent or forgotten (its TTL ran out). */
  current(key: string): CoordCell<R> | undefined {
    const cell = this.#cells.get(key);
    if (cell === undefined || this.#timeline.now < cell.expiresAt) return cell;
    if (!this.#forgetsExpired) return cell; // a coordinator that never forgets
    this.#cells.delete(key);
    return undefined;
  }

  /**
   * A read of `key` as the coordinator answers it: now, or (a stale read, faults on) as it
   * was up to `staleMaxMs` ago.
   */
  get(key: string): { ok: true; record: R | undefined; revision: number } {
    const cell = this.#staleRead()
      ? this.#cellAt(key, this.#timeline.now - this.#prng.range(0, this.#staleMaxMs))
      : this.current(key);
    return { ok: true, record: cell?.record, revision: cell?.revision ?? 0 };
  }

  /**
   * Creates `key` (`revision` undefined: only if absent) or updates it (only at `revision`)
   * to `record`, forgotten `ttlMs` after this write if given; tells its watchers.
   */
  put(
    key: string,
    record: R,
    revision: number | undefined,
    ttlMs?: number,
  ): { ok: true; revision: number } | CoordFailure {
    const cell = this.current(key);
    const matches = revision === undefined ? cell === undefined : cell?.revision === revision;
    if (!matches) return revisionMoved(key);
    const now = this.#timeline.now;
    const written = {
      record,
      revision: ++this.#revision,
      expiresAt: ttlMs === undefined ? Infinity : now + ttlMs,
    };
    this.#cells.set(key, written);
    this.#remember(key, written);
    this.#notify(key, record, written.revision);
    return { ok: true, revision: written.revision };
  }

  /** Deletes `key` if its revision is still `revision` (the delete takes a revision); tells its watchers. */
  remove(key: string, revision: number): { ok: true; revision: number } | CoordFailure {
    const cell = this.current(key);
    if (cell === undefined || cell.revision !== revision) return revisionMoved(key);
    this.#cells.delete(key);
    this.#revision++;
    this.#remember(key, undefined);
    this.#notify(key, undefined, this.#revision);
    return { ok: true, revision: this.#revision };
  }

  /** Whether this read is answered from an older state. */
  #staleRead(): boolean {
    const stale = this.#timeline.faultsOn && this.#staleRate > 0 &&
      this.#prng.chance(this.#staleRate);
    if (stale) this.staleReads++;
    return stale;
  }

  /** Keeps the writes of `key` that a stale read may still return. */
  #remember(key: string, cell: CoordCell<R> | undefined): void {
    if (this.#staleRate === 0) return;
    let log = this.#past.get(key);
    if (log === undefined) {
      log = [];
      this.#past.set(key, log);
    }
    const now = this.#timeline.now;
    log.push({ atMs: now, cell });
    // Writes older than the one current `staleMaxMs` ago can no longer be read.
    const horizon = now - this.#staleMaxMs;
    let keep = 0;
    while (keep + 1 < log.length && log[keep + 1]!.atMs <= horizon) keep++;
    if (keep > 0) log.splice(0, keep);
  }

  /**
   * The record of `key` as the coordinator held it at true time `atMs` (a real past state: a
   * lagging replica answers with one), `undefined` if absent or expired then.
   */
  #cellAt(key: string, atMs: number): CoordCell<R> | undefined {
    const log = this.#past.get(key) ?? [];
    let cell: CoordCell<R> | undefined;
    for (const write of log) {
      if (write.atMs > atMs) break;
      cell = write.cell;
    }
    if (cell === undefined) {
      // Nothing logged then, or a delete: either the key had no write yet, or it was
      // absent then. Only a current cell older than every logged write can answer.
      const current = this.#cells.get(key);
      if (current === undefined || log.length > 0) return undefined;
      cell = current;
    }
    if (atMs >= cell.expiresAt && this.#forgetsExpired) return undefined;
    return cell;
  }

  // ------------------------------------------------------------------ watches

  /**
   * Watches `key` for `node` under `id`: the watch registers one hop from now (a change
   * before is not told, as a real watch may miss it), at once telling the key's state if it
   * moved past `seen`; from then on every change is told after a hop while the node can reach
   * the coordinator. A node that cannot reach it when the watch would register loses it.
   */
  watch(
    id: string,
    node: number,
    key: string,
    seen: number | undefined,
    tell: (record: R | undefined, revision: number) => void,
  ): void {
    const watch: Watch<R> = { node, key, registered: false, tell };
    this.#watches.set(id, watch);
    this.#timeline.at(this.#timeline.now + this.#hopMs(node), () => {
      if (this.#watches.get(id) !== watch || !this.#reachable(node)) {
        this.#watches.delete(id); // the runtime would resubscribe; the waiter's timer copes
        return;
      }
      watch.registered = true;
      const cell = this.#cells.get(key);
      if (seen !== undefined && (cell?.revision ?? 0) !== seen) {
        this.#tell(watch, id, cell?.record, cell?.revision ?? this.#revision);
      }
    });
  }

  /** Ends watch `id`. */
  unwatch(id: string): void {
    this.#watches.delete(id);
  }

  /** Ends every watch of `node` (it crashed). */
  unwatchNode(node: number): void {
    for (const [id, watch] of this.#watches) if (watch.node === node) this.#watches.delete(id);
  }

  /** Tells a change to every registered watcher of `key` that can reach the coordinator. */
  #notify(key: string, record: R | undefined, revision: number): void {
    for (const [id, watch] of this.#watches) {
      if (watch.key !== key || !watch.registered || !this.#reachable(watch.node)) continue;
      this.#tell(watch, id, record, revision);
    }
  }

  /** Tells one change after a hop, unless the watch ended or its node is cut off by then. */
  #tell(watch: Watch<R>, id: string, record: R | undefined, revision: number): void {
    this.#timeline.at(this.#timeline.now + this.#hopMs(watch.node), () => {
      if (this.#watches.get(id) !== watch || !this.#reachable(watch.node)) return;
      watch.tell(record, revision);
    });
  }
}

function ignore(): void {}

function revisionMoved(key: string): CoordFailure {
  return { ok: false, conflict: true, error: new WarpError("CONTENDED", `Revision moved: ${key}`) };
}

function unavailable(timeoutMs: number): CoordFailure {
  return {
    ok: false,
    conflict: false,
    error: new WarpError(
      "COORDINATOR_UNAVAILABLE",
      `Simulated coordinator call unanswered within its timeout, ms: ${timeoutMs}`,
    ),
  };
}
