/**
 * Distributed locks with fencing tokens: the pure protocol against a linearizable
 * compare-and-set coordinator.
 *
 * A lock is the coordinator record `lock/<name>` = `{ holder, ttlMs }`. The **fencing
 * token** of a grant is the coordinator revision of the write that granted it (a create,
 * or a takeover): revisions only grow, so every grant's token is larger than every
 * earlier grant's (L2). A holder's **belief** ends at `sentMs + ttlMs × (1 − drift)`, where
 * `sentMs` is when it sent the grant or renewal request (L1: the grant happened after it,
 * so the belief ends before `ttlMs` of true time has passed since). Expiry is judged by the
 * **waiters**, never by a timer in the holder: a waiter takes over only after seeing the
 * record at one revision, unchanged, for `ttlMs × (1 + drift)` plus a margin on its own
 * clock — the holder's belief, measured from before that revision was written, is over by
 * then (L1, L3). Renew and release are compare-and-set on the revision the holder last
 * wrote, so only the holder can do them (L4).
 *
 * @module
 */

import { assert, WarpError } from "./errors.ts";
import { describe } from "./_describe.ts";

/** The coordinator record of a held lock. */
export interface LockRecord {
  /** Who holds it: `nodeId/incarnation/handleId`. */
  readonly holder: string;
  /** The holder's time to live, which waiters use to judge expiry. */
  readonly ttlMs: number;
}

/** A granted lock, as the caller sees it. */
export interface LockGrant {
  /** Identifies the grant in later calls (renew, release). */
  readonly handle: number;
  /** The lock's name. */
  readonly name: string;
  /** The fencing token: larger than every earlier grant's token of this lock. */
  readonly token: number;
  /** Local time until which the holder may believe it holds the lock. */
  readonly heldUntilMs: number;
}

/** What a {@linkcode LockCore} asks its driver to do. */
export type LockEffect =
  | { readonly type: "coord-get"; readonly io: number; readonly key: string }
  /** Create (`revision` undefined) or compare-and-set `key` to `record`. */
  | {
    readonly type: "coord-put";
    readonly io: number;
    readonly key: string;
    readonly record: LockRecord;
    readonly revision: number | undefined;
  }
  /** Delete `key` if its revision is still `revision`. */
  | {
    readonly type: "coord-delete";
    readonly io: number;
    readonly key: string;
    readonly revision: number;
  }
  /**
   * Report every change of `key` after `revision` with `onWatch(io, …)` until
   * `coord-unwatch` — at once if the key has already moved past `revision` (it may change
   * between our read and the watch starting).
   */
  | {
    readonly type: "coord-watch";
    readonly io: number;
    readonly key: string;
    readonly revision: number;
  }
  | { readonly type: "coord-unwatch"; readonly io: number }
  | { readonly type: "resolve"; readonly op: number; readonly grant: LockGrant | undefined }
  | { readonly type: "reject"; readonly op: number; readonly error: WarpError }
  /** The holder's belief ran out without a renewal: the lock is lost. */
  | { readonly type: "lost"; readonly handle: number; readonly name: string };

/** A coordinator read as reported to the lock core. */
export type LockReadResult =
  | { readonly ok: true; readonly record: unknown; readonly revision: number }
  | { readonly ok: false; readonly error: WarpError };

/** A coordinator write or delete as reported; a lost compare-and-set is `conflict`. */
export type LockWriteResult =
  | { readonly ok: true; readonly revision: number }
  | { readonly ok: false; readonly conflict: boolean; readonly error: WarpError };

/** Options of an acquisition. */
export interface AcquireOptions {
  /** How long the grant lasts without renewal. */
  readonly ttlMs: number;
  /** Give up (TIMEOUT) after this long; 0 means try once (CONTENDED if held). */
  readonly timeoutMs: number;
}

/** Configuration of a {@linkcode LockCore}. */
export interface LockCoreConfig {
  /** This node's id, written in the lock records it holds. */
  readonly nodeId: string;
  /** This node's incarnation: grants of an earlier life are told apart. */
  readonly incarnation: number;
  /** The drift bound every node's clock keeps, ppm. @default {500} */
  readonly maxDriftPpm?: number;
  /** Most acquisitions waiting at once. @default {1000} */
  readonly waitersMax?: number;
  /** Extra wait before a takeover, for timer and rounding slack. @default {1} */
  readonly marginMs?: number;
}

interface Waiter {
  readonly op: number;
  readonly name: string;
  readonly handle: number;
  readonly ttlMs: number;
  readonly deadlineMs: number;
  readonly wait: boolean;
  /** The record seen held by someone else: its revision, its ttl, and since when. */
  observed: { revision: number; ttlMs: number; sinceMs: number } | undefined;
  watchIo: number;
  timer: number;
  busy: boolean;
  /** A change was reported while a call was in flight: its answer may be stale. */
  changed: boolean;
  /** When our last claim write was sent: a grant discovered later believes from here. */
  claimSentMs: number | undefined;
}

interface Held {
  readonly handle: number;
  readonly name: string;
  readonly token: number;
  readonly ttlMs: number;
  revision: number;
  heldUntilMs: number;
  lostTimer: number;
}

const RETRY_MS = 50;

/** The coordinator key of lock `name`. */
export function lockKey(name: string): string {
  return `lock/${name}`;
}

/** Checks a lock record read from the coordinator (outside input). */
export function validateLockRecord(value: unknown): LockRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<string, unknown>;
  return typeof r.holder === "string" && typeof r.ttlMs === "number" && r.ttlMs > 0 &&
      Number.isFinite(r.ttlMs)
    ? { holder: r.holder, ttlMs: r.ttlMs }
    : undefined;
}

/**
 * The lock protocol of one node, sans I/O. The driver contract is NodeCore's: every input
 * carries `nowMs`; take the effects after each call and perform them, reporting each
 * coordinator call once with the matching `on…` method; call `tick` at `nextDeadlineMs`;
 * deliver watch events with `onWatch` until the watch is cancelled.
 *
 * @example
 * ```ts
 * import { LockCore } from "./lock.ts";
 * const locks = new LockCore({ nodeId: "a", incarnation: 1 });
 * locks.acquire(1, "jobs", { ttlMs: 1000, timeoutMs: 0 }, 0);
 * const [create] = locks.takeEffects(); // a free lock costs one create
 * if (create?.type !== "coord-put") throw new Error("expected a create");
 * locks.onWrite(create.io, { ok: true, revision: 41 }, 2);
 * const [granted] = locks.takeEffects();
 * console.log(granted?.type === "resolve" && granted.grant?.token); // 41
 * ```
 */
export class LockCore {
  readonly #nodeId: string;
  readonly #incarnation: number;
  readonly #drift: number;
  readonly #waitersMax: number;
  readonly #marginMs: number;
  #effects: LockEffect[] = [];
  #now = -Infinity;
  #nextId = 1;
  readonly #waiters = new Map<number, Waiter>();
  readonly #held = new Map<number, Held>();
  readonly #timers = new Map<number, { atMs: number; run: () => void }>();
  readonly #reads = new Map<number, (r: LockReadResult) => void>();
  readonly #writes = new Map<number, (r: LockWriteResult) => void>();
  readonly #watches = new Map<number, (r: LockReadResult) => void>();

  /** Creates the lock core of a node. */
  constructor(config: LockCoreConfig) {
    this.#nodeId = config.nodeId;
    this.#incarnation = config.incarnation;
    const ppm = config.maxDriftPpm ?? 500;
    if (!(ppm >= 0 && ppm <= 100_000)) {
      throw new RangeError(`Invalid maxDriftPpm: ${describe(ppm)}`);
    }
    this.#drift = ppm / 1e6;
    this.#waitersMax = config.waitersMax ?? 1000;
    this.#marginMs = config.marginMs ?? 1;
  }

  /** Takes the effects produced since the last call. */
  takeEffects(): LockEffect[] {
    const effects = this.#effects;
    this.#effects = [];
    return effects;
  }

  /** The earliest local time at which `tick` has work. */
  nextDeadlineMs(): number {
    let next = Infinity;
    for (const t of this.#timers.values()) if (t.atMs < next) next = t.atMs;
    return next;
  }

  /** Runs the timers due at `nowMs`. */
  tick(nowMs: number): void {
    this.#advance(nowMs);
    for (const [id, t] of [...this.#timers]) {
      if (t.atMs <= this.#now && this.#timers.delete(id)) t.run();
    }
  }

  /** Whether grant `handle` may still be believed held at `nowMs` (synchronous). */
  holds(handle: number, nowMs: number): boolean {
    const held = this.#held.get(handle);
    return held !== undefined && nowMs < held.heldUntilMs;
  }

  /** Number of grants held and acquisitions waiting. */
  get counts(): { held: number; waiting: number } {
    return { held: this.#held.size, waiting: this.#waiters.size };
  }

  /**
   * Acquires lock `name` as operation `op`; resolves with the grant, or rejects with
   * CONTENDED (held and `timeoutMs` 0), TIMEOUT, or LIMIT_EXCEEDED.
   */
  acquire(op: number, name: string, options: AcquireOptions, nowMs: number): void {
    this.#advance(nowMs);
    if (this.#waiters.size >= this.#waitersMax) {
      this.#effects.push({
        type: "reject",
        op,
        error: new WarpError(
          "LIMIT_EXCEEDED",
          `Too many waiters for locks, at most ${this.#waitersMax}`,
        ),
      });
      return;
    }
    const waiter: Waiter = {
      op,
      name,
      handle: this.#nextId++,
      ttlMs: options.ttlMs,
      deadlineMs: this.#now + options.timeoutMs,
      wait: options.timeoutMs > 0,
      observed: undefined,
      watchIo: 0,
      timer: 0,
      busy: false,
      changed: false,
      claimSentMs: undefined,
    };
    this.#waiters.set(waiter.handle, waiter);
    if (waiter.wait) {
      this.#arm(
        waiter.deadlineMs,
        () =>
          this.#giveUp(
            waiter,
            new WarpError("TIMEOUT", `Lock not acquired in time: ${describe(name)}`),
          ),
      );
    }
    // Optimistically create the record: a free lock costs one coordinator write. A
    // conflict (held) or an unknown outcome falls back to reading the record.
    this.#claim(waiter, undefined);
  }

  /** Extends grant `handle` as operation `op`; resolves with the extended grant. */
  renew(op: number, handle: number, nowMs: number): void {
    this.#advance(nowMs);
    const held = this.#held.get(handle);
    if (held === undefined || this.#now >= held.heldUntilMs) {
      this.#effects.push({ type: "reject", op, error: notHeld(held?.name ?? String(handle)) });
      return;
    }
    const sentMs = this.#now;
    this.#put(lockKey(held.name), this.#record(held.handle, held.ttlMs), held.revision, (r) => {
      if (!this.#held.has(handle)) {
        this.#effects.push({ type: "reject", op, error: notHeld(held.name) });
        return;
      }
      if (!r.ok) {
        if (r.conflict) this.#drop(held, true);
        this.#effects.push({
          type: "reject",
          op,
          error: r.conflict ? notHeld(held.name) : r.error,
        });
        return;
      }
      held.revision = r.revision;
      held.heldUntilMs = Math.max(held.heldUntilMs, this.#beliefEnd(sentMs, held.ttlMs));
      this.#armLost(held);
      this.#effects.push({ type: "resolve", op, grant: grantOf(held) });
    });
  }

  /** Releases grant `handle` as operation `op`; the belief ends at once. */
  release(op: number, handle: number, nowMs: number): void {
    this.#advance(nowMs);
    const held = this.#held.get(handle);
    if (held === undefined) {
      this.#effects.push({ type: "reject", op, error: notHeld(String(handle)) });
      return;
    }
    this.#drop(held, false);
    const io = this.#nextId++;
    this.#writes.set(io, (r) => {
      // A conflict means someone took over after our belief ended: nothing to release.
      if (r.ok || r.conflict) this.#effects.push({ type: "resolve", op, grant: undefined });
      else this.#effects.push({ type: "reject", op, error: r.error });
    });
    this.#effects.push({
      type: "coord-delete",
      io,
      key: lockKey(held.name),
      revision: held.revision,
    });
  }

  /** Reports a `coord-get`. */
  onRead(io: number, result: LockReadResult, nowMs: number): void {
    this.#advance(nowMs);
    const handler = this.#reads.get(io);
    if (handler === undefined) return;
    this.#reads.delete(io);
    handler(result);
  }

  /** Reports a `coord-put` or `coord-delete`. */
  onWrite(io: number, result: LockWriteResult, nowMs: number): void {
    this.#advance(nowMs);
    const handler = this.#writes.get(io);
    if (handler === undefined) return;
    this.#writes.delete(io);
    handler(result);
  }

  /** Reports a change seen by watch `io` (`record` undefined: deleted). */
  onWatch(io: number, result: LockReadResult, nowMs: number): void {
    this.#advance(nowMs);
    this.#watches.get(io)?.(result);
  }

  // ------------------------------------------------------------------ internals

  #advance(nowMs: number): void {
    if (typeof nowMs !== "number" || Number.isNaN(nowMs)) {
      throw new TypeError(`Invalid nowMs: ${describe(nowMs)}`);
    }
    if (nowMs > this.#now) this.#now = nowMs;
  }

  #arm(atMs: number, run: () => void): number {
    const id = this.#nextId++;
    this.#timers.set(id, { atMs, run });
    return id;
  }

  #record(handle: number, ttlMs: number): LockRecord {
    return { holder: `${this.#nodeId}/${this.#incarnation}/${handle}`, ttlMs };
  }

  /** A belief that starts when the request was sent, shortened by the drift bound. */
  #beliefEnd(sentMs: number, ttlMs: number): number {
    return sentMs + ttlMs * (1 - this.#drift);
  }

  #read(key: string, handler: (r: LockReadResult) => void): void {
    const io = this.#nextId++;
    this.#reads.set(io, handler);
    this.#effects.push({ type: "coord-get", io, key });
  }

  #put(
    key: string,
    record: LockRecord,
    revision: number | undefined,
    handler: (r: LockWriteResult) => void,
  ): void {
    const io = this.#nextId++;
    this.#writes.set(io, handler);
    this.#effects.push({ type: "coord-put", io, key, record, revision });
  }

  /** One try: read the record; create it, take it over, or wait for it. */
  #attempt(waiter: Waiter): void {
    if (!this.#waiters.has(waiter.handle)) return;
    if (waiter.busy) {
      waiter.changed = true;
      return;
    }
    waiter.busy = true;
    waiter.changed = false;
    const mine = this.#record(waiter.handle, waiter.ttlMs).holder;
    this.#read(lockKey(waiter.name), (read) => {
      waiter.busy = false;
      if (!this.#waiters.has(waiter.handle)) return;
      if (waiter.changed) {
        this.#attempt(waiter); // a change came in meanwhile: this answer may be older
        return;
      }
      if (!read.ok) {
        this.#retryOrFail(waiter, read.error);
        return;
      }
      const record = read.record === undefined ? undefined : validateLockRecord(read.record);
      if (read.record !== undefined && record === undefined) {
        this.#retryOrFail(
          waiter,
          new WarpError(
            "COORDINATOR_UNAVAILABLE",
            `Malformed lock record: ${describe(waiter.name)}`,
          ),
        );
        return;
      }
      if (record === undefined) {
        this.#claim(waiter, undefined);
        return;
      }
      if (record.holder === mine && waiter.claimSentMs !== undefined) {
        // Our own earlier write landed though its answer was lost: the grant is ours, and
        // its belief starts when that write was sent.
        this.#grant(waiter, read.revision, waiter.claimSentMs);
        return;
      }
      if (!waiter.wait) {
        this.#giveUp(waiter, new WarpError("CONTENDED", `Lock is held: ${describe(waiter.name)}`));
        return;
      }
      this.#observe(waiter, read.revision, record.ttlMs);
    });
  }

  /** Watches a held record and arms the takeover for when its holder's belief is over. */
  #observe(waiter: Waiter, revision: number, ttlMs: number): void {
    if (waiter.observed?.revision !== revision) {
      waiter.observed = { revision, ttlMs, sinceMs: this.#now };
    }
    if (waiter.watchIo === 0) {
      waiter.watchIo = this.#nextId++;
      this.#watches.set(waiter.watchIo, () => {
        // Any change (release, renewal, takeover): look again. A release wakes us at once.
        this.#timers.delete(waiter.timer);
        this.#attempt(waiter);
      });
      this.#effects.push({
        type: "coord-watch",
        io: waiter.watchIo,
        key: lockKey(waiter.name),
        revision,
      });
    }
    this.#timers.delete(waiter.timer);
    const seen = waiter.observed!;
    const takeoverAt = seen.sinceMs + seen.ttlMs * (1 + this.#drift) + this.#marginMs;
    waiter.timer = this.#arm(takeoverAt, () => {
      if (!this.#waiters.has(waiter.handle) || waiter.observed?.revision !== revision) return;
      this.#claim(waiter, revision);
    });
  }

  /** Writes our record: a create, or a takeover at the revision we watched expire. */
  #claim(waiter: Waiter, revision: number | undefined): void {
    waiter.busy = true;
    const sentMs = this.#now;
    waiter.claimSentMs ??= sentMs;
    this.#put(lockKey(waiter.name), this.#record(waiter.handle, waiter.ttlMs), revision, (r) => {
      waiter.busy = false;
      if (!this.#waiters.has(waiter.handle)) {
        // Gave up meanwhile; if the write landed, give the lock back.
        if (r.ok) {
          this.#effects.push({
            type: "coord-delete",
            io: this.#nextId++,
            key: lockKey(waiter.name),
            revision: r.revision,
          });
        }
        return;
      }
      if (r.ok) this.#grant(waiter, r.revision, sentMs);
      else if (r.conflict) this.#attempt(waiter);
      else this.#retryOrFail(waiter, r.error); // outcome unknown: the next read tells
    });
  }

  #grant(waiter: Waiter, revision: number, sentMs: number): void {
    this.#endWait(waiter);
    const held: Held = {
      handle: waiter.handle,
      name: waiter.name,
      token: revision,
      ttlMs: waiter.ttlMs,
      revision,
      heldUntilMs: this.#beliefEnd(sentMs, waiter.ttlMs),
      lostTimer: 0,
    };
    assert(held.heldUntilMs > sentMs, `Lock belief ends before it starts: ${waiter.name}`);
    this.#held.set(held.handle, held);
    this.#armLost(held);
    this.#effects.push({ type: "resolve", op: waiter.op, grant: grantOf(held) });
  }

  #armLost(held: Held): void {
    this.#timers.delete(held.lostTimer);
    held.lostTimer = this.#arm(held.heldUntilMs, () => {
      if (this.#held.get(held.handle) === held && this.#now >= held.heldUntilMs) {
        this.#drop(held, true);
      }
    });
  }

  #drop(held: Held, lost: boolean): void {
    this.#held.delete(held.handle);
    this.#timers.delete(held.lostTimer);
    if (lost) this.#effects.push({ type: "lost", handle: held.handle, name: held.name });
  }

  #retryOrFail(waiter: Waiter, error: WarpError): void {
    if (!waiter.wait || this.#now + RETRY_MS >= waiter.deadlineMs) {
      this.#giveUp(waiter, error);
      return;
    }
    this.#timers.delete(waiter.timer);
    waiter.timer = this.#arm(this.#now + RETRY_MS, () => this.#attempt(waiter));
  }

  #giveUp(waiter: Waiter, error: WarpError): void {
    if (!this.#waiters.has(waiter.handle)) return;
    this.#endWait(waiter);
    this.#effects.push({ type: "reject", op: waiter.op, error });
  }

  #endWait(waiter: Waiter): void {
    this.#waiters.delete(waiter.handle);
    this.#timers.delete(waiter.timer);
    if (waiter.watchIo !== 0) {
      this.#watches.delete(waiter.watchIo);
      this.#effects.push({ type: "coord-unwatch", io: waiter.watchIo });
    }
  }
}

function grantOf(held: Held): LockGrant {
  return { handle: held.handle, name: held.name, token: held.token, heldUntilMs: held.heldUntilMs };
}

function notHeld(name: string): WarpError {
  return new WarpError("LOCK_NOT_HELD", `Lock is not held by this caller: ${describe(name)}`);
}

/**
 * The fence a protected resource keeps: it accepts an operation only if its fencing token
 * is at least the highest it has accepted, so operations of a stale holder are refused
 * even when that holder still believes it holds the lock (L2).
 *
 * @example
 * ```ts
 * import { Fence } from "./lock.ts";
 * const fence = new Fence();
 * console.log(fence.admit(7), fence.admit(9), fence.admit(7)); // true true false
 * ```
 */
export class Fence {
  #highest = -Infinity;

  /** The highest token accepted so far. */
  get highest(): number {
    return this.#highest;
  }

  /** Accepts `token` (and remembers it) if it is not below the highest accepted. */
  admit(token: number): boolean {
    if (!Number.isFinite(token)) throw new TypeError(`Invalid fencing token: ${describe(token)}`);
    if (token < this.#highest) return false;
    this.#highest = token;
    return true;
  }
}
