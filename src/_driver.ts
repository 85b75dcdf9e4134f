/**
 * Private: the driver of a {@linkcode Warp} node, the one place that turns the pure
 * {@linkcode NodeCore}'s effects into I/O and time. Each input (a caller's operation, a bus
 * message, a store, coordinator or loader answer, a timer wake-up) is one `step`: the core
 * takes it, then every effect it produced is performed here (`store-get`, `store-write`,
 * `coord-get`, `coord-put`, `broadcast` and `send` through the bus link of
 * `_bus_link.ts`, `load`, `load-abort`, `resolve`, `reject`), each I/O call under
 * `ioTimeoutMs`, and its answer comes back as the next step; the timer is re-armed for the
 * core's next deadline. An `InvariantError` marks the node failed.
 *
 * Design: one pump over the core's effects, so every I/O call shares the same deadline,
 * error mapping (`STORE_ERROR`, `COORDINATOR_UNAVAILABLE`, `TIMEOUT`), counters and
 * failure handling, and the ordering rules (answers fed back as steps, never inside one)
 * hold in one place. The façade (`src/warp.ts`) checks arguments and starts operations
 * through `run` and `startBatch`; it performs no effect itself. Rejected: the façade
 * performing I/O inline in each method, which would scatter the deadline and error
 * handling over every call and let a method bypass the core's view of what is in flight.
 *
 * @module
 */

import type { Codec } from "./codec.ts";
import type { Coordinator } from "./coordinator.ts";
import type { CoordRecord, CoordRecordKind, Effect, LoadResult, OpResult } from "./core/effects.ts";
import { validateHolderRecord } from "./core/effects.ts";
import { validateLeaseRecord } from "./core/leases.ts";
import { validateSessionsRecord } from "./core/_sessions.ts";
import { openEnvelope } from "./_lease_envelope.ts";
import { InvariantError, WarpError } from "./core/errors.ts";
import type { NodeCore } from "./core/node.ts";
import type { ValidatorReport } from "./core/_validator.ts";
import type { Store, StoreRecord } from "./store.ts";
import { STORE_GET_MANY_MAX } from "./store.ts";
import type { Transport } from "./transport.ts";
import type { MessageAuth } from "./auth.ts";
import { asWarpError, timeoutAfter, WakeTimer, withTimeout } from "./_wake_timer.ts";
import { describe, describeError } from "./_describe.ts";
import { BusLink } from "./_bus_link.ts";
import type { Observer } from "./observe.ts";
import { RuntimeCounters } from "./metrics.ts";
import type {
  OperationName,
  ValidatorCheckResult,
  ValidatorKeyCount,
  WarpMetrics,
} from "./metrics.ts";
import {
  type BoundLoader,
  checkLoaderTtl,
  type LoadDecisions,
  type Loader,
  type LoaderContext,
  type ReadResult,
  readResult,
  type WarpStats,
} from "./_warp_options.ts";

/** A store record opened: codec bytes (`undefined`: no value), decoded value, leases. */
export interface Stored {
  version: number;
  bytes: Uint8Array | undefined;
  value: unknown;
  leases: string[];
}

interface Pending {
  resolve(result: OpResult): void;
  reject(error: unknown): void;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** The validator's checks by verdict, for `stats` and the metrics (zeros when it is off). */
function validatorChecks(
  report: ValidatorReport | undefined,
): Readonly<Record<ValidatorCheckResult, number>> {
  return {
    consistent: report?.consistent ?? 0,
    older_within_bound: report?.olderWithinBound ?? 0,
    inconsistent: report?.inconsistent ?? 0,
    deleted_in_store: report?.deletedInStore ?? 0,
    newer_than_store: report?.newerThanStore ?? 0,
  };
}

/** The validator's keys checked, consistent within each mark, and healed (zeros when off). */
function validatorKeys(
  report: ValidatorReport | undefined,
): Readonly<Record<ValidatorKeyCount, number>> {
  return {
    checked: report?.checked ?? 0,
    consistent_within_1s: report?.consistentWithin["1s"] ?? 0,
    consistent_within_10s: report?.consistentWithin["10s"] ?? 0,
    consistent_within_60s: report?.consistentWithin["60s"] ?? 0,
    healed: report?.healed ?? 0,
  };
}

/** Hands the core's recorded events (hit, miss, fill...) to the listeners. */
export function emitCoreEvents(core: NodeCore, observer: Observer): void {
  const events = core.takeEvents();
  if (events.length > 0) observer.emitCore(events);
}

/** What a {@linkcode Driver} performs its effects on, all resolved by `new Warp`. */
export interface DriverOptions<T> {
  readonly nodeId: string;
  readonly core: NodeCore;
  readonly store: Store;
  readonly transport: Transport | undefined;
  readonly coordinator: Coordinator | undefined;
  readonly codec: Codec<T>;
  readonly clock: () => number;
  readonly ioTimeoutMs: number;
  readonly valueBytesMax: number;
  /** The cluster's subject and coordinator-key prefix. */
  readonly prefix: string;
  readonly auth: MessageAuth | undefined;
  readonly metrics: WarpMetrics | undefined;
  /** Registered loaders, by the pattern of their registration (the façade fills it). */
  readonly loaders: ReadonlyMap<string, Loader<T>>;
}

/**
 * Performs a {@linkcode NodeCore}'s effects. The driver's contract: every input goes
 * through `step` (or `run`/`startBatch`, which start caller operations in one), never
 * re-entrantly from an effect; answers of I/O come back as later steps.
 */
export class Driver<T> {
  /** Listeners and logger; `undefined` while there are none (set by the façade). */
  observer: Observer | undefined;

  readonly #nodeId: string;
  readonly #core: NodeCore;
  readonly #store: Store;
  readonly #coordinator: Coordinator | undefined;
  readonly #codec: Codec<T>;
  readonly #clock: () => number;
  readonly #ioTimeoutMs: number;
  readonly #valueBytesMax: number;
  readonly #coordPrefix: string;
  readonly #pending = new Map<number, Pending>();
  /** Registered loaders, by the pattern of their registration. */
  readonly #loaders: ReadonlyMap<string, Loader<T>>;
  /** The loader (and its decisions) of each caller operation that may load. */
  readonly #opLoaders = new Map<number, BoundLoader<T>>();
  /** The abort controller of each load in flight, by the load's io. */
  readonly #loadControllers = new Map<number, AbortController>();
  /** The loader of the call being stepped, for a refresh-ahead its hit starts. */
  #loaderInScope: Loader<T> | undefined;
  /** While a batch step runs: the store reads it produced, performed together after it. */
  #readBatch: { io: number; key: string }[] | undefined;
  #nextOp = 1;
  readonly #timer: WakeTimer;
  /** The cluster's bus: what arrives is stepped into the core; broadcasts and sends go out. */
  readonly #bus: BusLink;
  readonly #auth: MessageAuth | undefined;
  /** Where durations go; `undefined` for none (no clock read for them). */
  readonly #metrics: WarpMetrics | undefined;
  readonly #counters = new RuntimeCounters();
  #failure: Error | undefined;

  /** A driver of `options.core`; it subscribes to nothing until {@linkcode Driver.join}. */
  constructor(options: DriverOptions<T>) {
    this.#nodeId = options.nodeId;
    this.#core = options.core;
    this.#store = options.store;
    this.#coordinator = options.coordinator;
    this.#codec = options.codec;
    this.#clock = options.clock;
    this.#ioTimeoutMs = options.ioTimeoutMs;
    this.#valueBytesMax = options.valueBytesMax;
    this.#auth = options.auth;
    this.#metrics = options.metrics;
    this.#loaders = options.loaders;
    this.#timer = new WakeTimer(
      this.#clock,
      () => this.step(() => this.#core.tick(this.#clock())),
    );
    this.#coordPrefix = `${options.prefix}/`;
    this.#bus = new BusLink({
      nodeId: options.nodeId,
      prefix: options.prefix,
      transport: options.transport,
      auth: options.auth,
      metrics: options.metrics,
      clock: this.#clock,
      counters: this.#counters,
      incarnation: () => this.#core.incarnation,
      onMessage: (message) => this.step(() => this.#core.onMessage(message, this.#clock())),
    });
  }

  /** Why the node failed (a broken internal invariant), if it did. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Subscribes to the cluster's subjects, both or neither (a throw unsubscribes). */
  join(): void {
    this.#bus.join();
  }

  /** Leaves: the bus subscriptions end, the timer stops, the core closes (ops fail). */
  close(): void {
    this.#bus.leave();
    this.#timer.cancel();
    this.step(() => this.#core.close(this.#clock()));
  }

  /** Binds `loader` (and what it decides) to caller operation `op`, for its `load`. */
  bindLoader(op: number, bound: BoundLoader<T>): void {
    this.#opLoaders.set(op, bound);
  }

  /** Runs `fn` with `loader` in scope: a refresh-ahead a hit in it starts loads with it. */
  withLoaderInScope<R>(loader: Loader<T> | undefined, fn: () => R): R {
    this.#loaderInScope = loader;
    try {
      return fn();
    } finally {
      this.#loaderInScope = undefined;
    }
  }

  /** The node's counters, with the core's. */
  stats(): WarpStats {
    const drops = this.#bus.drops();
    const validator = this.#core.validatorReport();
    return {
      ...this.#core.stats,
      entries: this.#core.l1Size,
      bytes: this.#core.l1Bytes,
      evictions: this.#core.l1Evictions,
      messagesDropped: this.#core.stats.messagesDropped + drops.malformed + drops.badSignatures +
        (this.#auth?.acceptsUnsigned ? 0 : drops.unsigned),
      malformedMessages: drops.malformed,
      unsignedMessages: drops.unsigned,
      badSignatures: drops.badSignatures,
      ...this.#counters.snapshot(),
      listenerErrors: this.observer?.errors ?? 0,
      validatorChecks: validatorChecks(validator),
      validatorKeys: validatorKeys(validator),
    };
  }

  /**
   * Starts one caller operation per key in a single step, with `start`; the store reads
   * the step produces are performed together (`#storeGetMany`). A `start` that throws
   * fails its key alone (its operation never began). Returns one promise per key.
   */
  startBatch(
    keys: readonly string[],
    start: (op: number, key: string, nowMs: number, index: number) => void,
    loaderInScope?: Loader<T>,
  ): Promise<ReadResult<T>>[] {
    if (this.#failure !== undefined) {
      const error = new WarpError("CLOSED", `Node failed: ${this.#failure.message}`, {
        cause: this.#failure,
      });
      return keys.map(() => Promise.reject(error));
    }
    const promises: Promise<ReadResult<T>>[] = [];
    const reads: { io: number; key: string }[] = [];
    this.#readBatch = reads;
    this.#loaderInScope = loaderInScope;
    try {
      this.step(() => {
        const now = this.#clock();
        keys.forEach((key, index) => {
          const op = this.#nextOp++;
          const result = new Promise<OpResult>((resolve, reject) =>
            this.#pending.set(op, { resolve, reject })
          );
          try {
            start(op, key, now, index);
            promises.push(result.then(readResult<T>));
          } catch (error) {
            this.#pending.delete(op);
            this.#opLoaders.delete(op);
            promises.push(Promise.reject(error));
          }
        });
      });
    } finally {
      this.#readBatch = undefined;
      this.#loaderInScope = undefined;
    }
    this.#storeGetMany(reads);
    return promises;
  }

  /** Encodes `value` within `valueBytesMax`; throws before any effect otherwise. */
  encode(key: string, value: T): Uint8Array {
    const encoded = this.#codec.encode(value);
    if (!(encoded instanceof Uint8Array)) {
      throw new TypeError(
        `Invalid codec, encode returned ${describe(encoded)} for ${describe(key)}`,
      );
    }
    if (encoded.byteLength > this.#valueBytesMax) {
      throw new WarpError(
        "VALUE_TOO_LARGE",
        `Value of ${
          describe(key)
        } is ${encoded.byteLength} bytes encoded, over valueBytesMax ${this.#valueBytesMax}`,
      );
    }
    return encoded;
  }

  /**
   * Starts caller operation `op` with `start` in one step; resolves with the core's answer
   * (its duration reported to the metrics, if any). A node that failed rejects with `CLOSED`.
   */
  run(
    start: (op: number, nowMs: number) => void,
    operation: OperationName = "other",
  ): Promise<OpResult> {
    if (this.#failure !== undefined) {
      return Promise.reject(
        new WarpError("CLOSED", `Node failed: ${this.#failure.message}`, { cause: this.#failure }),
      );
    }
    const op = this.#nextOp++;
    const promise = new Promise<OpResult>((resolve, reject) =>
      this.#pending.set(op, { resolve, reject })
    );
    try {
      this.step(() => start(op, this.#clock()));
    } catch (error) {
      // Misuse the core refused before any effect (a TypeError): nothing is in flight.
      this.#pending.delete(op);
      this.#opLoaders.delete(op);
      throw error;
    }
    return this.#metrics === undefined ? promise : this.#timed(promise, operation, this.#metrics);
  }

  /** Reports the duration of operation `promise` to `metrics` when it settles. */
  #timed(promise: Promise<OpResult>, operation: OperationName, metrics: WarpMetrics) {
    const startMs = this.#clock();
    const record = (outcome: "ok" | "error") => {
      try {
        metrics.recordOperation(this.#nodeId, operation, outcome, (this.#clock() - startMs) / 1000);
      } catch {
        // a metrics adapter that throws must not fail the operation it measured
      }
    };
    promise.then(() => record("ok"), () => record("error"));
    return promise;
  }

  /** Runs one core input, then performs its effects and re-arms the timer. */
  step(input: () => void): void {
    if (this.#failure !== undefined) return;
    try {
      input();
      for (const effect of this.#core.takeEffects()) this.#perform(effect);
      this.#schedule();
    } catch (error) {
      if (!(error instanceof InvariantError)) throw error;
      this.#fail(error);
    }
    if (this.observer !== undefined) emitCoreEvents(this.#core, this.observer);
  }

  #fail(error: Error): void {
    this.#failure = error;
    try {
      this.#core.close(this.#clock()); // a closed core serves nothing from L1
    } catch {
      // the core is broken; it is not used again
    }
    for (const [op, pending] of this.#pending) {
      this.#pending.delete(op);
      pending.reject(new WarpError("CLOSED", `Node failed: ${error.message}`, { cause: error }));
    }
    this.#opLoaders.clear();
    for (const controller of this.#loadControllers.values()) controller.abort();
    this.#loadControllers.clear();
    this.observer?.emit({ type: "node-failed", error });
  }

  /**
   * Arms the timer for the core's next deadline. While a caller waits on an operation the
   * timer keeps the process alive (a strong write may be waiting out a lease); otherwise
   * it does not, so an idle node never holds a script open.
   */
  #schedule(): void {
    if (this.#core.closed) return;
    this.#timer.schedule(this.#core.nextDeadlineMs(), this.#pending.size > 0);
  }

  #perform(effect: Effect): void {
    switch (effect.type) {
      case "resolve":
      case "reject": {
        const pending = this.#pending.get(effect.op);
        this.#opLoaders.delete(effect.op);
        if (pending === undefined) return;
        this.#pending.delete(effect.op);
        if (effect.type === "resolve") pending.resolve(effect.result);
        else pending.reject(effect.error);
        return;
      }
      case "broadcast":
        this.#bus.broadcast(effect.message);
        return;
      case "send":
        this.#bus.send(effect.to, effect.message);
        return;
      case "store-get":
        if (this.#readBatch !== undefined) this.#readBatch.push(effect);
        else this.#storeGet(effect.io, effect.key);
        return;
      case "store-write":
        this.#storeWrite(
          effect.io,
          effect.key,
          effect.payload as Uint8Array | undefined,
          effect.expectedVersion,
        );
        return;
      case "coord-get":
        this.#coordGet(effect.io, effect.key, effect.kind, effect.ttlMs);
        return;
      case "coord-put":
        this.#coordPut(effect.io, effect.key, effect.record, effect.revision, effect.ttlMs);
        return;
      case "load":
        this.#load(effect.io, effect.key, effect.op, effect.stale);
        return;
      case "load-abort":
        this.#loadControllers.get(effect.io)?.abort();
        this.#loadControllers.delete(effect.io);
        return;
    }
  }

  /**
   * Runs a loader for the core's `load` effect `io`: the loader of caller op `op`, else
   * the one in scope (a refresh-ahead started by a `getOrSet` hit), else the key's
   * registered one. Its value is copied through the codec (L1 keeps its own copy, and
   * `valueBytesMax` holds), and reported with `onLoad`; an abort makes the report moot.
   */
  #load(
    io: number,
    key: string,
    op: number | undefined,
    stale: { readonly found: boolean; readonly value: unknown } | undefined,
  ): void {
    const bound = op === undefined ? undefined : this.#opLoaders.get(op);
    const loader = bound?.loader ?? this.#loaderInScope ?? this.#registeredLoader(key);
    const decisions: LoadDecisions = bound?.decisions ?? { ttlMs: undefined, cache: true };
    decisions.ttlMs = undefined;
    decisions.cache = true;
    const controller = new AbortController();
    this.#loadControllers.set(io, controller);
    const context: LoaderContext<T> = {
      key,
      signal: controller.signal,
      stale: stale?.found ? stale.value as T : undefined,
      setTtl: (ms: number) => {
        decisions.ttlMs = checkLoaderTtl(ms);
      },
      skipCache: () => {
        decisions.cache = false;
      },
    };
    const loading = loader === undefined
      ? Promise.reject(new TypeError(`No loader for a background load of ${describe(key)}`))
      : Promise.resolve().then(() => loader(context));
    loading.then(
      (value) => this.#loaded(io, controller, this.#loadedValue(key, value, decisions)),
      (error) => {
        this.observer?.emit({ type: "loader-error", key, error });
        const failure = error instanceof WarpError && error.code === "VALUE_TOO_LARGE"
          ? error
          : new WarpError(
            "LOADER_ERROR",
            `Loader of ${describe(key)} failed: ${describeError(error)}`,
            {
              cause: error,
            },
          );
        this.#loaded(io, controller, { ok: false, error: failure });
      },
    );
  }

  /** The loader's value as the core takes it: not-found, or a copy through the codec. */
  #loadedValue(key: string, value: T | undefined, decisions: LoadDecisions): LoadResult {
    const extra = {
      ...(decisions.ttlMs !== undefined && { ttlMs: decisions.ttlMs }),
      ...(!decisions.cache && { cache: false }),
    };
    if (value === undefined) {
      return { ok: true, found: false, value: undefined, sizeBytes: 0, ...extra };
    }
    try {
      const encoded = this.encode(key, value);
      const copy = this.#codec.decode(encoded);
      return { ok: true, found: true, value: copy, sizeBytes: encoded.byteLength, ...extra };
    } catch (error) {
      const failure = error instanceof WarpError
        ? error
        : new WarpError("LOADER_ERROR", `Loader's value of ${describe(key)} does not encode`, {
          cause: error,
        });
      return { ok: false, error: failure };
    }
  }

  #loaded(io: number, controller: AbortController, result: LoadResult): void {
    if (controller.signal.aborted) return; // abandoned: the core ignores the report anyway
    this.#loadControllers.delete(io);
    this.step(() => this.#core.onLoad(io, result, this.#clock()));
  }

  /** The registered loader of `key`'s registration, if any. */
  #registeredLoader(key: string): Loader<T> | undefined {
    const policy = this.#core.policyOf(key);
    return policy === undefined ? undefined : this.#loaders.get(policy.pattern);
  }

  #storeGet(io: number, key: string): void {
    this.readStored(key).then(
      (stored) => this.#reportStored(io, stored),
      (error: WarpError) => {
        this.step(() => this.#core.onStoreRead(io, { ok: false, error }, this.#clock()));
      },
    );
  }

  #reportStored(io: number, stored: Stored): void {
    const result = {
      ok: true as const,
      found: stored.bytes !== undefined,
      value: stored.value,
      version: stored.version,
      sizeBytes: stored.bytes?.byteLength ?? 0,
      ...(stored.leases.length > 0 && { leases: stored.leases }),
    };
    this.step(() => this.#core.onStoreRead(io, result, this.#clock()));
  }

  /**
   * Performs the store reads one batch step produced: one `Store.getMany` call per
   * {@linkcode STORE_GET_MANY_MAX} keys, each record reported to the core as `get`'s would
   * be (a failed call fails each of its reads). A store without `getMany` reads each key.
   */
  #storeGetMany(reads: readonly { io: number; key: string }[]): void {
    const store = this.#store;
    if (store.getMany === undefined || reads.length < 2) {
      for (const { io, key } of reads) this.#storeGet(io, key);
      return;
    }
    const getMany = store.getMany.bind(store);
    for (let at = 0; at < reads.length; at += STORE_GET_MANY_MAX) {
      const chunk = reads.slice(at, at + STORE_GET_MANY_MAX);
      const keys = chunk.map((read) => read.key);
      const what = `Store read of ${keys.length} keys`;
      withTimeout(() => getMany(keys), this.#ioTimeoutMs, timeoutAfter(this.#ioTimeoutMs, what))
        .then((records) => {
          if (!Array.isArray(records) || records.length !== keys.length) {
            throw new TypeError(
              `Store getMany answered ${describe(records)} for ${keys.length} keys`,
            );
          }
          return records as StoreRecord[];
        })
        .then(
          (records) => {
            chunk.forEach(({ io, key }, i) => {
              let stored: Stored;
              try {
                stored = this.#openStored(key, records[i]!);
              } catch (error) {
                const failure = error as WarpError;
                this.step(() =>
                  this.#core.onStoreRead(io, { ok: false, error: failure }, this.#clock())
                );
                return;
              }
              this.#reportStored(io, stored);
            });
          },
          (error) => {
            const failure = asWarpError(error, "STORE_ERROR", `${what} failed`);
            for (const { io } of chunk) {
              this.step(() =>
                this.#core.onStoreRead(io, { ok: false, error: failure }, this.#clock())
              );
            }
          },
        );
    }
  }

  /**
   * Reads `key` from the store within `ioTimeoutMs` and opens its lease envelope: the
   * codec bytes (`undefined`: no value), their decoded value, and the leases. Rejects with
   * a `WarpError`: `STORE_ERROR` for a failed read or a value that does not decode.
   */
  async readStored(key: string): Promise<Stored> {
    const record = await withTimeout(
      () => this.#store.get(key),
      this.#ioTimeoutMs,
      timeoutAfter(this.#ioTimeoutMs, `Store read of ${describe(key)}`),
    ).catch((error) => {
      throw this.#ioFailure(
        asWarpError(error, "STORE_ERROR", `Store read of ${describe(key)} failed`),
        "store-read",
        key,
      );
    });
    return this.#openStored(key, record);
  }

  /** A store record opened: its lease envelope and codec (`STORE_ERROR` if they fail). */
  #openStored(key: string, record: StoreRecord): Stored {
    if (record.value === undefined) {
      return { version: record.version, bytes: undefined, value: undefined, leases: [] };
    }
    try {
      const opened = openEnvelope(record.value);
      if (opened === undefined) throw new Error("malformed lease envelope");
      const value = this.#codec.decode(opened.value);
      return { version: record.version, bytes: opened.value, value, leases: opened.leases };
    } catch (error) {
      throw new WarpError("STORE_ERROR", `Stored value does not decode: ${describe(key)}`, {
        cause: error,
      });
    }
  }

  #storeWrite(
    io: number,
    key: string,
    payload: Uint8Array | undefined,
    expectedVersion: number | undefined,
  ): void {
    const options = expectedVersion === undefined ? undefined : { expectedVersion };
    const write = () =>
      payload === undefined
        ? this.#store.delete(key, options)
        : this.#store.set(key, payload, options);
    withTimeout(
      write,
      this.#ioTimeoutMs,
      timeoutAfter(this.#ioTimeoutMs, `Store write of ${describe(key)}`),
    )
      .then(
        (version) =>
          this.step(() => this.#core.onStoreWrite(io, { ok: true, version }, this.#clock())),
        (error) => {
          const failure = this.#ioFailure(
            asWarpError(error, "STORE_ERROR", `Store write of ${describe(key)} failed`),
            "store-write",
            key,
          );
          this.step(() =>
            this.#core.onStoreWrite(io, { ok: false, error: failure }, this.#clock())
          );
        },
      );
  }

  /** An I/O call failed with `failure`: past its deadline, that is a `timeout` event. */
  #ioFailure(
    failure: WarpError,
    operation: "store-read" | "store-write" | "coordinator-read" | "coordinator-write",
    key: string,
  ): WarpError {
    if (failure.code === "TIMEOUT" && this.observer !== undefined) {
      this.observer.emit({ type: "timeout", operation, key, timeoutMs: this.#ioTimeoutMs });
    }
    return failure;
  }

  #coordGet(io: number, key: string, kind: CoordRecordKind, ttlMs: number | undefined): void {
    const coordinator = this.#coordinator!;
    const options = ttlMs === undefined ? undefined : { ttlMs };
    this.#counters.coordinatorRead();
    withTimeout(
      () => coordinator.get(this.#coordPrefix + key, options),
      this.#ioTimeoutMs,
      timeoutAfter(this.#ioTimeoutMs, `Coordinator read of ${describe(key)}`),
    ).then(
      (entry) => {
        let record: CoordRecord | undefined;
        if (entry !== undefined) {
          try {
            const parsed = JSON.parse(textDecoder.decode(entry.value));
            record = kind === "lease"
              ? validateLeaseRecord(parsed)
              : kind === "sessions"
              ? validateSessionsRecord(parsed)
              : validateHolderRecord(parsed);
          } catch {
            record = undefined;
          }
          if (record === undefined) {
            const error = new WarpError(
              "COORDINATOR_UNAVAILABLE",
              `Malformed coordinator record: ${describe(key)}`,
            );
            this.step(() => this.#core.onCoordRead(io, { ok: false, error }, this.#clock()));
            return;
          }
        }
        const result = { ok: true as const, record, revision: entry?.revision ?? 0 };
        this.step(() => this.#core.onCoordRead(io, result, this.#clock()));
      },
      (error) => {
        const failure = this.#ioFailure(
          asWarpError(
            error,
            "COORDINATOR_UNAVAILABLE",
            `Coordinator read of ${describe(key)} failed`,
          ),
          "coordinator-read",
          key,
        );
        this.step(() => this.#core.onCoordRead(io, { ok: false, error: failure }, this.#clock()));
      },
    );
  }

  #coordPut(
    io: number,
    key: string,
    record: CoordRecord,
    revision: number | undefined,
    ttlMs: number | undefined,
  ): void {
    const coordinator = this.#coordinator!;
    const bytes = textEncoder.encode(JSON.stringify(record));
    const options = ttlMs === undefined ? undefined : { ttlMs };
    const write = () =>
      revision === undefined
        ? coordinator.create(this.#coordPrefix + key, bytes, options)
        : coordinator.update(this.#coordPrefix + key, bytes, revision, options);
    withTimeout(
      write,
      this.#ioTimeoutMs,
      timeoutAfter(this.#ioTimeoutMs, `Coordinator write of ${describe(key)}`),
    ).then(
      (newRevision) => {
        this.#counters.compareAndSet("ok");
        this.step(() =>
          this.#core.onCoordWrite(io, { ok: true, revision: newRevision }, this.#clock())
        );
      },
      (error) => {
        const failure = this.#ioFailure(
          asWarpError(
            error,
            "COORDINATOR_UNAVAILABLE",
            `Coordinator write of ${describe(key)} failed`,
          ),
          "coordinator-write",
          key,
        );
        const result = {
          ok: false as const,
          conflict: failure.code === "CONTENDED",
          error: failure,
        };
        this.#counters.compareAndSet(result.conflict ? "conflict" : "error");
        this.step(() => this.#core.onCoordWrite(io, result, this.#clock()));
      },
    );
  }
}
