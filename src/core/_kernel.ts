/**
 * The kernel a node's protocol modules share: the node's clock reading, its effect queue,
 * its timer table, the caller operations in flight, the tables of I/O awaiting an answer,
 * the counters, L1, and the version floors that keep the node from going back in time
 * (E2). {@linkcode NodeCore} creates one kernel and hands it to each protocol module
 * (`_fills.ts`, `_eventual.ts`, `_peers.ts`, `_strong.ts`, `_lease_protocol.ts`).
 *
 * Design: one plain object that every module calls directly, plus two key events fanned
 * out to the modules that keep something in flight per key: "this version exists" raises
 * their floors ({@linkcode VersionWatcher}), "this key was dropped" makes them cache nothing
 * read before. Modules never reach into each other's state: where one needs another (is
 * this lease active? register this node as a holder), it declares the small interface it
 * needs (`LeaseChecks` and `HolderRegistration` in `_fills.ts`, `EventualFlush` in
 * `_peers.ts`), and `NodeCore` hands it the module that implements it.
 *
 * Rejected: an event bus between modules (each emitting and subscribing by name) — it
 * hides which transition runs what, and the order of effects, which the simulator's
 * replay depends on, would rest on subscription order; and one class with every protocol's
 * state as private members — every transition could then touch every protocol's state,
 * and no protocol could be read on its own.
 *
 * @module
 */

import { WarpError } from "./errors.ts";
import type {
  CoordReadResult,
  CoordRecord,
  CoordRecordKind,
  CoordWriteResult,
  Effect,
  LoadResult,
  OpResult,
  StoreReadResult,
  StoreWriteResult,
} from "./effects.ts";
import type { EntryData, L1Cache } from "./l1.ts";
import type { Message, NodeId } from "./messages.ts";
import type { KeyPolicy, ReadSettings } from "./registry.ts";
import { TimerHeap } from "./timers.ts";
import { nodeSeed, Xorshift32 } from "./_random.ts";
import { entryLifetime } from "./_tuning.ts";
import type { Canary, NodeStats } from "./node.ts";
import type { Fill } from "./_fills.ts";
import type { StaleValue } from "./_loads.ts";
import { NODE_EVENTS_MAX } from "./events.ts";
import type { NodeEvent } from "./events.ts";

/** Padding added to every wait that must outlast a belief held on another clock. */
export const MARGIN_MS = 1;

/** A callback that does nothing: for I/O whose answer no longer matters. */
export function noop(): void {}

/** A read in flight; `fill` is the fill it waits on, once it waits on one. */
export interface ReadOp {
  readonly kind: "read";
  readonly key: string;
  readonly timer: number;
  fill: Fill | undefined;
  /** Its registration's read settings, with the caller's overrides. */
  readonly settings: ReadSettings;
  /** The soft-timeout timer, or 0. */
  softTimer: number;
}

/** A write (or lease operation) in flight. */
export interface WriteOp {
  readonly kind: "write";
  readonly key: string;
  readonly timer: number;
  /** Set once the op has been answered; a late store answer still takes effect. */
  answered: boolean;
}

/** A caller operation in flight. */
export type Op = ReadOp | WriteOp;

/** A protocol module whose work in flight per key has a version floor. */
export interface VersionWatcher {
  /** Version `version` of `key` exists and this node has seen it (applied, installed, answered). */
  versionSeen(key: string, version: number): void;
}

/** A protocol module whose work in flight per key a drop voids. */
export interface DropWatcher {
  /** `key` was dropped on this node (drop, revoke): what was read before must not be cached. */
  dropped(key: string): void;
}

/** What a kernel is made of, from the configuration `NodeCore` has validated. */
export type KernelParts =
  & Pick<
    NodeKernel,
    "nodeId" | "incarnation" | "stats" | "l1" | "drift" | "canary" | "sessions" | "currentReads"
  >
  & {
    /** The driver's nonce source (`NodeConfig.nonce`), or `undefined` for the seeded stream. */
    readonly nonce: (() => number) | undefined;
  };

/** The state and plumbing every protocol module of one node shares. */
export class NodeKernel {
  readonly nodeId: NodeId;
  readonly incarnation: number;
  /** The counters `NodeCore.stats` exposes (the same object). */
  readonly stats: NodeStats;
  readonly l1: L1Cache;
  /** The drift bound as a fraction: a local duration d is at least d × (1 − drift) of true time. */
  readonly drift: number;
  /** Deliberate bugs, for the simulator's canaries only. */
  readonly canary: Canary;
  /**
   * Whether this node joins the cluster's sessions (`_sessions.ts`): its distributed
   * entries then live to their TTL, served under a freshness proof past their bound.
   */
  readonly sessions: boolean;
  /**
   * Whether coordinator reads are assumed current (`coordinatorStalenessMs` 0: PostgreSQL, one
   * NATS server). Only then may a node without a session trust a read of a holder record.
   */
  readonly currentReads: boolean;
  /** Local time until which this node's session lives (`-Infinity`: none); set by `_sessions.ts`. */
  liveUntilMs = -Infinity;
  /**
   * Local time as of which this node has every invalidation of every member (`_peers.ts`):
   * an eventual entry is fresh enough while `now < freshAsOfMs + maxStalenessMs × (1 − drift)`.
   */
  freshAsOfMs = -Infinity;
  /** Caller operations in flight, by op id. */
  readonly ops = new Map<number, Op>();
  /** Handlers of I/O in flight, by `io` id, one table per kind of answer. */
  readonly storeReads = new Map<number, (r: StoreReadResult) => void>();
  readonly storeWrites = new Map<number, (r: StoreWriteResult) => void>();
  readonly coordReads = new Map<number, (r: CoordReadResult) => void>();
  readonly coordWrites = new Map<number, (r: CoordWriteResult) => void>();
  readonly loads = new Map<number, (r: LoadResult) => void>();
  /**
   * The invalidation epoch: how many drops (invalidations, revocations, notices) this node
   * has applied. A load records it when it starts (`_fills.ts`).
   */
  dropEpoch = 0;
  /**
   * Events recorded for the driver (`events.ts`), or `undefined` while nobody observes the
   * node: a protocol checks it before building an event, so an unobserved node builds none.
   */
  events: NodeEvent[] | undefined;
  /** Whether reads record `hit` and `miss` events too (there are many). */
  readEvents = false;
  /** Events lost because the driver left more than `NODE_EVENTS_MAX` untaken. */
  eventsDropped = 0;

  readonly #timers = new TimerHeap();
  readonly #timerActions = new Map<number, () => void>();
  readonly #versionWatchers: VersionWatcher[] = [];
  readonly #dropWatchers: DropWatcher[] = [];
  #effects: Effect[] = [];
  #now = -Infinity;
  /** Timers, I/O and strong writes draw their ids from this one counter. */
  #nextId = 1;
  /** Last broadcast sequence number used. */
  #seq = 0;
  /** Jitter of TTLs and refresh points, its own stream (see `_random.ts`). */
  readonly #random: Xorshift32;
  /** Nonces of revokes: the driver's source, or a seeded stream of 48-bit numbers. */
  readonly #nonce: () => number;

  /** Makes the kernel of a node from its validated parts. */
  constructor(parts: KernelParts) {
    this.nodeId = parts.nodeId;
    this.incarnation = parts.incarnation;
    this.stats = parts.stats;
    this.l1 = parts.l1;
    this.drift = parts.drift;
    this.canary = parts.canary;
    this.sessions = parts.sessions;
    this.currentReads = parts.currentReads;
    this.#random = new Xorshift32(nodeSeed(this.nodeId, this.incarnation, 0x5eed));
    if (parts.nonce !== undefined) {
      this.#nonce = parts.nonce;
    } else {
      const stream = new Xorshift32(nodeSeed(this.nodeId, this.incarnation, 0x0ce));
      this.#nonce = () =>
        Math.floor(stream.next() * 0x1_0000_0000) * 0x1_0000 +
        Math.floor(stream.next() * 0x1_0000);
    }
  }

  /** A nonce for a revoke (see `NodeConfig.nonce`); a bad one from the driver is a TypeError. */
  nonce(): number {
    const nonce = this.#nonce();
    if (!Number.isSafeInteger(nonce) || nonce < 0) {
      throw new TypeError(`Invalid nonce from the driver's nonce source: ${nonce}`);
    }
    return nonce;
  }

  // ---------------------------------------------------------------- time, ids, effects

  /** The node's clock as of the latest input. */
  get now(): number {
    return this.#now;
  }

  /** Takes the time of an input; a clock that went backwards is treated as standing still. */
  advance(nowMs: number): void {
    if (typeof nowMs !== "number" || Number.isNaN(nowMs)) {
      throw new TypeError(`Invalid nowMs: ${nowMs}`);
    }
    if (nowMs > this.#now) this.#now = nowMs;
  }

  /** A new id for a timer, an I/O or a strong write. */
  newId(): number {
    return this.#nextId++;
  }

  /** The last broadcast sequence number used (heartbeats carry it). */
  get seq(): number {
    return this.#seq;
  }

  /** The sequence number of a new numbered broadcast (`inv`, `drop`). */
  nextSeq(): number {
    return ++this.#seq;
  }

  /** Whether effects wait to be taken. */
  get effectsPending(): boolean {
    return this.#effects.length > 0;
  }

  /** Takes the effects produced since the last call, in order. */
  takeEffects(): Effect[] {
    const effects = this.#effects;
    if (effects.length === 0) return effects;
    this.#effects = [];
    return effects;
  }

  /** Records `event` for the driver; only call it when `events` is defined. */
  note(event: NodeEvent): void {
    const events = this.events;
    if (events === undefined) return;
    if (events.length >= NODE_EVENTS_MAX) this.eventsDropped++;
    else events.push(event);
  }

  // ---------------------------------------------------------------- timers

  /** Arms a timer that runs `action` at or after local time `atMs`; returns its id. */
  arm(atMs: number, action: () => void): number {
    const id = this.#nextId++;
    this.#timerActions.set(id, action);
    this.#timers.arm(id, atMs);
    return id;
  }

  /** Cancels timer `id`; a fired or unknown id is ignored. */
  disarm(id: number): void {
    this.#timers.cancel(id);
    this.#timerActions.delete(id);
  }

  /** The earliest armed deadline, or `Infinity`. */
  nextDeadlineMs(): number {
    return this.#timers.nextDeadlineMs();
  }

  /** Runs every timer due now, in deadline order (those armed meanwhile too, if due). */
  runDueTimers(): void {
    for (
      let id = this.#timers.popDue(this.#now);
      id !== undefined;
      id = this.#timers.popDue(this.#now)
    ) {
      const action = this.#timerActions.get(id);
      this.#timerActions.delete(id);
      action?.();
    }
  }

  /** Cancels every timer (the node is closing). */
  cancelTimers(): void {
    for (const id of this.#timerActions.keys()) this.#timers.cancel(id);
    this.#timerActions.clear();
  }

  // ---------------------------------------------------------------- answering operations

  /** Answers caller operation `op` with a result. */
  resolve(op: number, result: OpResult): void {
    this.#settle(op);
    this.#effects.push({ type: "resolve", op, result });
  }

  /** Answers caller operation `op` with an error. */
  reject(op: number, error: WarpError): void {
    this.#settle(op);
    this.#effects.push({ type: "reject", op, error });
  }

  /** Forgets operation `op` and cancels its deadline, if it is in flight. */
  #settle(op: number): void {
    const pending = this.ops.get(op);
    if (pending !== undefined) {
      this.disarm(pending.timer);
      if (pending.kind === "read" && pending.softTimer !== 0) this.disarm(pending.softTimer);
      this.ops.delete(op);
    }
  }

  /** Answers a write op unless it was already answered (timed out). */
  answerWrite(op: number, outcome: OpResult | WarpError): void {
    const pending = this.ops.get(op);
    if (pending === undefined || pending.kind !== "write" || pending.answered) return;
    if (outcome instanceof WarpError) this.reject(op, outcome);
    else this.resolve(op, outcome);
  }

  /** A write op's deadline passed: its outcome is unknown to the caller. */
  timeoutWrite(op: number): void {
    const pending = this.ops.get(op);
    if (pending === undefined || pending.kind !== "write") return;
    this.ops.delete(op);
    pending.answered = true;
    this.#effects.push({
      type: "reject",
      op,
      error: new WarpError(
        "OUTCOME_UNKNOWN",
        `Write did not complete in time, it may or may not have taken effect: ${pending.key}`,
      ),
    });
  }

  // ---------------------------------------------------------------- I/O

  /** Publishes `message` to every node, this one included. */
  broadcast(message: Message): void {
    this.#effects.push({ type: "broadcast", message });
  }

  /** Sends `message` to node `to`. */
  send(to: NodeId, message: Message): void {
    this.#effects.push({ type: "send", to, message });
  }

  /** Reads `key` from the store; `handler` gets the answer. `origin`: see the effect. */
  storeGet(key: string, handler: (r: StoreReadResult) => void, origin?: "validator"): void {
    const io = this.#awaitIo(this.storeReads, handler);
    this.stats.storeReads++;
    this.#effects.push(
      origin === undefined
        ? { type: "store-get", io, key }
        : { type: "store-get", io, key, origin },
    );
  }

  /** Writes `payload` (`undefined`: delete) under `key`, conditionally on `expectedVersion`. */
  storeWrite(
    key: string,
    payload: unknown,
    expectedVersion: number | undefined,
    handler: (r: StoreWriteResult) => void,
  ): void {
    const io = this.#awaitIo(this.storeWrites, handler);
    this.stats.storeWrites++;
    this.#effects.push({ type: "store-write", io, key, payload, expectedVersion });
  }

  /** Reads coordinator key `key`, a record of kind `kind` (with `ttlMs`: a lease record). */
  coordGet(
    key: string,
    kind: CoordRecordKind,
    ttlMs: number | undefined,
    handler: (r: CoordReadResult) => void,
  ): void {
    const io = this.#awaitIo(this.coordReads, handler);
    this.stats.coordinatorCalls++;
    // Two literal shapes, not a spread: this runs for every coordinator call.
    this.#effects.push(
      ttlMs === undefined
        ? { type: "coord-get", io, key, kind }
        : { type: "coord-get", io, key, kind, ttlMs },
    );
  }

  /** Creates (`revision` undefined) or compare-and-sets coordinator key `key`. */
  coordPut(
    key: string,
    record: CoordRecord,
    revision: number | undefined,
    ttlMs: number | undefined,
    handler: (r: CoordWriteResult) => void,
  ): void {
    const io = this.#awaitIo(this.coordWrites, handler);
    this.stats.coordinatorCalls++;
    this.#effects.push(
      ttlMs === undefined
        ? { type: "coord-put", io, key, record, revision }
        : { type: "coord-put", io, key, record, revision, ttlMs },
    );
  }

  /**
   * Asks the driver to run the loader of `key` for caller op `op` (`undefined`: none
   * waiting), with `stale` for its context; `handler` gets the outcome. Returns the io.
   */
  load(
    key: string,
    op: number | undefined,
    stale: StaleValue,
    handler: (r: LoadResult) => void,
  ): number {
    const io = this.#awaitIo(this.loads, handler);
    this.#effects.push({ type: "load", io, key, op, stale });
    return io;
  }

  /** Abandons load `io`: the driver aborts its loader, and its report will be ignored. */
  abortLoad(io: number): void {
    if (this.loads.delete(io)) this.#effects.push({ type: "load-abort", io });
  }

  /** Registers `handler` for the answer to a new I/O; returns the I/O's id. */
  #awaitIo<R>(table: Map<number, (r: R) => void>, handler: (r: R) => void): number {
    const io = this.#nextId++;
    table.set(io, handler);
    return io;
  }

  // ---------------------------------------------------------------- L1 and version floors

  /** Registers a module to be told of every version seen ({@linkcode noteVersion}). */
  watchVersions(watcher: VersionWatcher): void {
    this.#versionWatchers.push(watcher);
  }

  /** Registers a module to be told of every key dropped ({@linkcode drop}). */
  watchDrops(watcher: DropWatcher): void {
    this.#dropWatchers.push(watcher);
  }

  /**
   * The part of an entry's lifetime that is not its TTL: without sessions, its mode's
   * bound (staleness, cache lease); otherwise (and for strong-local) none, `Infinity`.
   */
  #capUntil(policy: KeyPolicy, askMs: number): number {
    // A local duration d is at most d / (1 - drift) of true time: shorten by the drift bound.
    if (this.sessions || policy.mode === "strong-local") return Infinity;
    return this.boundUntil(policy, askMs);
  }

  /**
   * Local time until which an entry read at `askMs` may be served without a freshness
   * proof: for eventual keys the staleness bound, which holds whatever the bus lost; for
   * strong keys under sessions none (a holder serves only while its session lives);
   * otherwise no limit beyond `freshUntil`.
   */
  boundUntil(policy: KeyPolicy, askMs: number): number {
    switch (policy.mode) {
      case "strong-local":
        return Infinity;
      case "eventual-distributed":
        if (this.canary.ignoreStalenessBound) return askMs + policy.ttlMs;
        if (this.canary.stalenessWithoutDrift) {
          return askMs + Math.min(policy.ttlMs, policy.maxStalenessMs);
        }
        return askMs + Math.min(policy.ttlMs, policy.maxStalenessMs * (1 - this.drift));
      case "strong-distributed":
        if (this.sessions) return -Infinity;
        return askMs + Math.min(policy.ttlMs, policy.leaseMs * (1 - this.drift));
    }
  }

  /**
   * Installs a value read, loaded or written at `askMs`, with TTL `ttlMs` (jittered and
   * tuned as its policy says, `_tuning.ts`), unless L1 holds a newer one.
   */
  install(
    key: string,
    policy: KeyPolicy,
    data: EntryData,
    askMs: number,
    ttlMs = policy.ttlMs,
  ): void {
    const existing = this.l1.get(key);
    if (existing !== undefined && existing.version > data.version && !this.canary.skipFillCheck) {
      return;
    }
    const life = entryLifetime(policy, askMs, ttlMs, this.#capUntil(policy, askMs), this.#draw);
    this.l1.install(
      key,
      data,
      life.freshUntilMs,
      policy,
      this.boundUntil(policy, askMs),
      life.tuning,
    );
    this.noteVersion(key, data.version);
  }

  readonly #draw = (): number => this.#random.next();

  /**
   * Records that version `version` of `key` exists and this node has seen it (applied,
   * installed or answered it): no fill may return, no write may install, and L1 may not
   * keep, anything older (E2; simulator seeds 702025 and 2015177).
   */
  noteVersion(key: string, version: number): void {
    const entry = this.l1.get(key);
    if (entry !== undefined && entry.version < version && !this.canary.skipFillCheck) {
      this.l1.delete(key);
    }
    for (const watcher of this.#versionWatchers) watcher.versionSeen(key, version);
  }

  /**
   * Drops `key` from L1, and voids what is in flight for it (drop, revoke, invalidate):
   * a removal, so fail-safe can never serve what was there (F2).
   */
  drop(key: string): void {
    this.dropEpoch++;
    if (this.canary.fallbackServesRemoved) {
      // BentoCache #71: "remove" done as "expire", so the entry stays a fail-safe fallback.
      const entry = this.l1.get(key);
      if (entry !== undefined) {
        entry.freshUntilMs = Math.min(entry.freshUntilMs, this.#now);
        this.stats.invalidationsApplied++;
      }
    } else if (this.l1.delete(key)) {
      this.stats.invalidationsApplied++;
    }
    for (const watcher of this.#dropWatchers) watcher.dropped(key);
  }
}
