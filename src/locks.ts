/**
 * Distributed locks with fencing tokens, over any {@linkcode Coordinator}: the runtime
 * that drives the pure {@linkcode LockCore}. See `docs/locks.md`.
 *
 * @module
 */

import type { Coordinator, CoordinatorEntry } from "./coordinator.ts";
import { InvariantError, WarpError } from "./core/errors.ts";
import { LockCore } from "./core/lock.ts";
import type { LockEffect, LockGrant, LockReadResult, LockWriteResult } from "./core/lock.ts";
import { WakeTimer, withTimeout } from "./_wake_timer.ts";
import type { WarpMetrics } from "./metrics.ts";
import { describe, describeError } from "./_describe.ts";
import {
  checkKey,
  checkMethods,
  checkNodeId,
  checkNumbers,
  checkOptions,
  checkPrefix,
} from "./_check.ts";

export { Fence } from "./core/lock.ts";

/** Options of {@linkcode Locks}. */
export interface LocksOptions {
  /** The coordinator every node of the cluster shares. */
  readonly coordinator: Coordinator;
  /** This node's id. @default {a random id} */
  readonly nodeId?: string;
  /**
   * Namespace of the lock records in the coordinator: dot-separated tokens of
   * `[A-Za-z0-9_-]`, at most 128 characters. @default {"warp"}
   */
  readonly prefix?: string;
  /** The drift bound every node's clock keeps, ppm. @default {500} */
  readonly maxDriftPpm?: number;
  /** Most acquisitions waiting at once on this node. @default {1000} */
  readonly waitersMax?: number;
  /** Poll period of waiters when the coordinator cannot watch. @default {100} */
  readonly pollMs?: number;
  /** Deadline of each coordinator call. @default {5000} */
  readonly ioTimeoutMs?: number;
  /** The node's monotonic clock in ms, for tests. @default {performance.now} */
  readonly clock?: () => number;
  /**
   * Where the waits of `acquire` (and `withLock`) are reported, as durations of operation
   * `lock`: from the call to the grant (`ok`) or the failure (`error`). @default {undefined}
   */
  readonly metrics?: WarpMetrics;
}

/** Options of an acquisition. */
export interface LockOptions {
  /** How long the grant lasts without renewal. @default {10000} */
  readonly ttlMs?: number;
  /** How long to wait for the lock before `TIMEOUT`. @default {10000} */
  readonly timeoutMs?: number;
  /** Aborts the wait (rejects with the signal's reason). @default {undefined} */
  readonly signal?: AbortSignal;
}

/** A held lock. */
export interface LockHandle {
  /** The lock's name. */
  readonly name: string;
  /**
   * The fencing token: larger than every earlier grant's token of this lock. Pass it to
   * the protected resource, which must refuse tokens below the highest it accepted.
   */
  readonly token: number;
  /** Fires when the lock is lost (the belief ran out unrenewed) or released. */
  readonly signal: AbortSignal;
  /** Whether this node may still believe it holds the lock, right now. */
  readonly held: boolean;
  /** Extends the lock by its TTL from now; rejects with `LOCK_NOT_HELD` if lost. */
  renew(): Promise<void>;
  /** Releases the lock; the belief ends at once. */
  release(): Promise<void>;
}

const DURATION_MAX_MS = 24 * 3600 * 1000;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function checkMs(name: string, value: unknown, min: number): number {
  if (typeof value !== "number") {
    throw new TypeError(`Invalid ${name}, expected a number of milliseconds: ${describe(value)}`);
  }
  if (!(value >= min && value <= DURATION_MAX_MS)) {
    throw new RangeError(`${name} must be in [${min}, ${DURATION_MAX_MS}] ms: ${value}`);
  }
  return value;
}

/**
 * Checks the name and options of an acquisition before anything happens: a refused call
 * takes no lock and starts no wait.
 */
function checkAcquire(
  name: unknown,
  options: unknown,
): { ttlMs: number; timeoutMs: number; signal: AbortSignal | undefined } {
  checkKey(name, "lock name");
  checkOptions(options, "lock options", true);
  const { ttlMs = 10_000, timeoutMs = 10_000, signal } = options ?? {};
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Invalid signal, expected an AbortSignal: ${describe(signal)}`);
  }
  return {
    ttlMs: checkMs("ttlMs", ttlMs, 1),
    timeoutMs: checkMs("timeoutMs", timeoutMs, 1),
    signal,
  };
}

function asCoordError(error: unknown, what: string): WarpError {
  if (error instanceof WarpError) return error;
  return new WarpError(
    "COORDINATOR_UNAVAILABLE",
    `${what}: ${describeError(error)}`,
    { cause: error },
  );
}

interface Pending {
  resolve(grant: LockGrant | undefined): void;
  reject(error: unknown): void;
}

/**
 * Distributed locks with fencing tokens.
 *
 * Safety (CONSISTENCY.md L1–L4) assumes only that clock drift stays within
 * `maxDriftPpm`: a holder believes it holds the lock until `ttl × (1 − drift)` after it
 * asked, and another node takes over only after watching the lock's record stay unchanged
 * for `ttl × (1 + drift)`. The coordinator's per-key TTL is not used (NATS 2.9 ignores it).
 * A process that pauses past its TTL can still act on a stale belief: the fencing token is
 * what keeps the protected resource safe then.
 *
 * @example
 * ```ts
 * import { Fence, Locks, MemoryCoordinator } from "../mod.ts";
 * const coordinator = new MemoryCoordinator();
 * const a = new Locks({ coordinator }), b = new Locks({ coordinator });
 * const fence = new Fence();
 * const lock = await a.acquire("nightly-report", { ttlMs: 5000 });
 * console.log(fence.admit(lock.token)); // true
 * console.log(await b.tryAcquire("nightly-report")); // undefined: held
 * await lock.release();
 * await b.withLock("nightly-report", (token) => console.log(fence.admit(token))); // true
 * a.close();
 * b.close();
 * ```
 */
export class Locks {
  readonly #core: LockCore;
  readonly #coordinator: Coordinator;
  readonly #prefix: string;
  readonly #clock: () => number;
  readonly #pollMs: number;
  readonly #ioTimeoutMs: number;
  readonly #pending = new Map<number, Pending>();
  readonly #controllers = new Map<number, AbortController>();
  readonly #unwatch = new Map<number, () => void>();
  #nextOp = 1;
  readonly #timer: WakeTimer;
  #closed = false;
  readonly #nodeId: string;
  readonly #metrics: WarpMetrics | undefined;

  /** Creates the lock client of a node; checks every option (`TypeError`/`RangeError`). */
  constructor(options: LocksOptions) {
    checkOptions(options, "options", false);
    checkMethods(options.coordinator, "coordinator", ["get", "create", "update", "delete"]);
    checkNumbers(options as unknown as Record<string, unknown>, [
      "maxDriftPpm",
      "waitersMax",
      "pollMs",
      "ioTimeoutMs",
    ]);
    const nodeId = options.nodeId ?? crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    checkNodeId(nodeId);
    const prefix = options.prefix ?? "warp";
    checkPrefix(prefix);
    if (options.clock !== undefined && typeof options.clock !== "function") {
      throw new TypeError(`Invalid clock, expected a function: ${describe(options.clock)}`);
    }
    if (options.metrics !== undefined) {
      checkMethods(options.metrics, "metrics", [
        "addNode",
        "removeNode",
        "recordInvalidationEcho",
        "recordOperation",
      ]);
    }
    this.#nodeId = nodeId;
    this.#metrics = options.metrics;
    const { waitersMax } = options;
    if (waitersMax !== undefined && !(Number.isSafeInteger(waitersMax) && waitersMax >= 1)) {
      throw new RangeError(`waitersMax must be a positive integer: ${waitersMax}`);
    }
    this.#coordinator = options.coordinator;
    this.#prefix = `${prefix}/`;
    this.#clock = options.clock ?? (() => performance.now());
    this.#timer = new WakeTimer(
      this.#clock,
      () => this.#step(() => this.#core.tick(this.#clock())),
    );
    this.#pollMs = checkMs("pollMs", options.pollMs ?? 100, 1);
    this.#ioTimeoutMs = checkMs("ioTimeoutMs", options.ioTimeoutMs ?? 5000, 1);
    this.#core = new LockCore({
      nodeId,
      incarnation: Date.now() * 1000 + Math.floor(Math.random() * 1000),
      ...(options.maxDriftPpm !== undefined && { maxDriftPpm: options.maxDriftPpm }),
      ...(options.waitersMax !== undefined && { waitersMax: options.waitersMax }),
    });
  }

  /**
   * Waits for lock `name` and returns a handle carrying its fencing token. Rejects with a
   * `WarpError` `TIMEOUT` after `timeoutMs`, or with the signal's reason when aborted.
   */
  async acquire(name: string, options?: LockOptions): Promise<LockHandle> {
    const { ttlMs, timeoutMs, signal } = checkAcquire(name, options);
    const metrics = this.#metrics;
    if (metrics === undefined) {
      return this.#handle((await this.#acquire(name, ttlMs, timeoutMs, signal))!);
    }
    const startMs = this.#clock();
    const record = (outcome: "ok" | "error") => {
      try {
        metrics.recordOperation(this.#nodeId, "lock", outcome, (this.#clock() - startMs) / 1000);
      } catch {
        // a metrics adapter that throws must not fail the acquisition it measured
      }
    };
    let grant: LockGrant | undefined;
    try {
      grant = await this.#acquire(name, ttlMs, timeoutMs, signal);
    } catch (error) {
      record("error");
      throw error;
    }
    record("ok");
    return this.#handle(grant!);
  }

  /** Takes lock `name` if it is free right now; `undefined` if it is held. */
  async tryAcquire(
    name: string,
    options?: Pick<LockOptions, "ttlMs">,
  ): Promise<LockHandle | undefined> {
    const { ttlMs } = checkAcquire(name, options);
    try {
      return this.#handle((await this.#acquire(name, ttlMs, 0, undefined))!);
    } catch (error) {
      if (error instanceof WarpError && error.code === "CONTENDED") return undefined;
      throw error;
    }
  }

  /**
   * Runs `fn` holding lock `name`, renewing it every third of its TTL, and releases it
   * after. `fn` gets the fencing token and a signal that fires if the lock is lost.
   */
  async withLock<R>(
    name: string,
    fn: (token: number, signal: AbortSignal) => R | Promise<R>,
    options?: LockOptions,
  ): Promise<R> {
    if (typeof fn !== "function") throw new TypeError(`Invalid function: ${describe(fn)}`);
    const { ttlMs } = checkAcquire(name, options);
    const lock = await this.acquire(name, options);
    const every = ttlMs / 3;
    const renewer = setInterval(() => lock.renew().catch(() => {}), every);
    try {
      return await fn(lock.token, lock.signal);
    } finally {
      clearInterval(renewer);
      if (lock.held) await lock.release().catch(() => {});
    }
  }

  /** Stops every wait and watch. Held locks are not released: they expire. */
  close(): void {
    this.#closed = true;
    this.#timer.cancel();
    for (const unwatch of this.#unwatch.values()) unwatch();
    this.#unwatch.clear();
    for (const [op, pending] of this.#pending) {
      this.#pending.delete(op);
      pending.reject(new WarpError("CLOSED", "Locks closed"));
    }
    for (const controller of this.#controllers.values()) {
      controller.abort(new WarpError("CLOSED", "Locks closed"));
    }
  }

  // ------------------------------------------------------------------ driver

  #acquire(
    name: string,
    ttlMs: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<LockGrant | undefined> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const promise = this.#run((op, now) => this.#core.acquire(op, name, { ttlMs, timeoutMs }, now));
    if (signal === undefined) return promise;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then((grant) => {
        signal.removeEventListener("abort", onAbort);
        if (signal.aborted && grant !== undefined) {
          // Granted after the caller gave up: give it back.
          this.#run((op, now) => this.#core.release(op, grant.handle, now)).catch(() => {});
          return;
        }
        resolve(grant);
      }, reject);
    });
  }

  #handle(grant: LockGrant): LockHandle {
    const controller = new AbortController();
    this.#controllers.set(grant.handle, controller);
    const core = this.#core, clock = this.#clock;
    const run = this.#run.bind(this);
    return {
      name: grant.name,
      token: grant.token,
      signal: controller.signal,
      get held() {
        return core.holds(grant.handle, clock());
      },
      renew: async () => {
        await run((op, now) => core.renew(op, grant.handle, now));
      },
      release: async () => {
        controller.abort(new WarpError("LOCK_NOT_HELD", `Lock released: ${describe(grant.name)}`));
        this.#controllers.delete(grant.handle);
        await run((op, now) => core.release(op, grant.handle, now));
      },
    };
  }

  #run(start: (op: number, nowMs: number) => void): Promise<LockGrant | undefined> {
    if (this.#closed) return Promise.reject(new WarpError("CLOSED", "Locks closed"));
    const op = this.#nextOp++;
    const promise = new Promise<LockGrant | undefined>((resolve, reject) =>
      this.#pending.set(op, { resolve, reject })
    );
    this.#step(() => start(op, this.#clock()));
    return promise;
  }

  #step(input: () => void): void {
    if (this.#closed) return;
    input();
    for (const effect of this.#core.takeEffects()) this.#perform(effect);
    this.#timer.schedule(this.#core.nextDeadlineMs(), this.#pending.size > 0);
  }

  #perform(effect: LockEffect): void {
    const key = this.#prefix +
      (effect.type === "coord-unwatch" || effect.type === "resolve" || effect.type === "reject" ||
          effect.type === "lost"
        ? ""
        : effect.key);
    switch (effect.type) {
      case "resolve":
      case "reject": {
        const pending = this.#pending.get(effect.op);
        this.#pending.delete(effect.op);
        if (effect.type === "resolve") pending?.resolve(effect.grant);
        else pending?.reject(effect.error);
        return;
      }
      case "lost":
        this.#controllers.get(effect.handle)?.abort(
          new WarpError("LOCK_NOT_HELD", `Lock lost: ${describe(effect.name)}`),
        );
        this.#controllers.delete(effect.handle);
        return;
      case "coord-get":
        this.#io(
          () => this.#coordinator.get(key),
          `Lock read of ${describe(effect.key)}`,
          (entry) => {
            this.#step(() => this.#core.onRead(effect.io, readResult(entry), this.#clock()));
          },
          (error) =>
            this.#step(() => this.#core.onRead(effect.io, { ok: false, error }, this.#clock())),
        );
        return;
      case "coord-put": {
        const bytes = textEncoder.encode(JSON.stringify(effect.record));
        const write = () =>
          effect.revision === undefined
            ? this.#coordinator.create(key, bytes)
            : this.#coordinator.update(key, bytes, effect.revision);
        this.#io(
          write,
          `Lock write of ${describe(effect.key)}`,
          (revision) => {
            this.#step(() => this.#core.onWrite(effect.io, { ok: true, revision }, this.#clock()));
          },
          (error) =>
            this.#step(() => this.#core.onWrite(effect.io, writeFailure(error), this.#clock())),
        );
        return;
      }
      case "coord-delete":
        this.#io(
          () => this.#coordinator.delete(key, effect.revision),
          `Lock release of ${describe(effect.key)}`,
          () => {
            this.#step(() =>
              this.#core.onWrite(effect.io, { ok: true, revision: 0 }, this.#clock())
            );
          },
          (error) =>
            this.#step(() => this.#core.onWrite(effect.io, writeFailure(error), this.#clock())),
        );
        return;
      case "coord-watch":
        this.#watch(effect.io, key, effect.revision);
        return;
      case "coord-unwatch":
        this.#unwatch.get(effect.io)?.();
        this.#unwatch.delete(effect.io);
        return;
    }
  }

  /**
   * Watches `key` for the core from `revision` on; without a coordinator watch, polls. A
   * change between the core's read and the watch starting is caught by one read after
   * the watch is in place.
   */
  #watch(io: number, key: string, revision: number): void {
    const notify = (entry: CoordinatorEntry | undefined) => {
      if (!this.#unwatch.has(io)) return;
      this.#step(() => this.#core.onWatch(io, readResult(entry), this.#clock()));
    };
    const catchUp = () => {
      // Through a promise, so that a coordinator throwing instead of rejecting is ignored too.
      Promise.resolve().then(() => this.#coordinator.get(key)).then((entry) => {
        if ((entry?.revision ?? 0) !== revision) notify(entry);
      }, () => {});
    };
    const poll = () => {
      const timer = setInterval(() => notify(undefined), this.#pollMs);
      this.#unwatch.set(io, () => clearInterval(timer));
    };
    const watch = this.#coordinator.watch?.bind(this.#coordinator);
    if (watch === undefined) return poll();
    let stop: ReturnType<typeof watch>;
    try {
      stop = watch(key, notify);
    } catch {
      return poll(); // the watch could not start
    }
    if (typeof stop === "function") {
      this.#unwatch.set(io, stop);
      catchUp();
      return;
    }
    let cancelled = false;
    this.#unwatch.set(io, () => {
      cancelled = true;
    });
    stop.then((unwatch) => {
      if (cancelled || this.#closed) {
        unwatch();
        return;
      }
      this.#unwatch.set(io, unwatch);
      catchUp();
    }, () => {
      // The watch could not start: fall back to polling.
      const timer = setInterval(() => notify(undefined), this.#pollMs);
      if (cancelled) clearInterval(timer);
      else this.#unwatch.set(io, () => clearInterval(timer));
    });
  }

  #io<R>(
    call: () => Promise<R>,
    what: string,
    ok: (value: R) => void,
    fail: (error: WarpError) => void,
  ): void {
    const timeout = () =>
      new WarpError("COORDINATOR_UNAVAILABLE", `${what} took longer than ${this.#ioTimeoutMs} ms`);
    withTimeout(call, this.#ioTimeoutMs, timeout).then(
      (value) => this.#guard(() => ok(value)),
      (error) => this.#guard(() => fail(asCoordError(error, what))),
    );
  }

  #guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      if (!(error instanceof InvariantError)) throw error;
      this.close();
    }
  }
}

function readResult(entry: CoordinatorEntry | undefined): LockReadResult {
  if (entry === undefined) return { ok: true, record: undefined, revision: 0 };
  try {
    return {
      ok: true,
      record: JSON.parse(textDecoder.decode(entry.value)),
      revision: entry.revision,
    };
  } catch {
    return { ok: true, record: null, revision: entry.revision }; // malformed: the core refuses it
  }
}

function writeFailure(error: WarpError): LockWriteResult {
  return { ok: false, conflict: error.code === "CONTENDED", error };
}
