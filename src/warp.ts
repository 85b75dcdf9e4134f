/**
 * The Warp API: a node that serves reads from its L1 cache and keeps it consistent with
 * the other nodes of its cluster, over any {@linkcode Transport}, {@linkcode Store} and
 * {@linkcode Coordinator}. It drives the pure {@linkcode NodeCore}: it only turns the
 * core's effects into I/O and time.
 *
 * This file is the façade: each method checks its arguments, encodes the value, and starts
 * one core operation; a hit is answered from the core with no I/O. What it delegates has a
 * module each: the option and result types and their checks (`_warp_options.ts`), the
 * driver that performs the core's effects (`_driver.ts`; its bus side, `_bus_link.ts`),
 * the reads that may go past L1 (`_reads.ts`), warmup (`_warmup.ts`), audit
 * (`_audit.ts`), update and transactions (`_update.ts`, `_transaction.ts`). Rejected: one
 * class holding all of it, where a reader of the public API had to page through the effect
 * pump, and the pump's rules (every answer a new step, one deadline and error mapping per
 * I/O call) had no boundary.
 *
 * @module
 */

import type { Codec } from "./codec.ts";
import { structuredCodec } from "./structured_codec.ts";
import type { Coordinator } from "./coordinator.ts";
import { MemoryCoordinator } from "./coordinator/memory.ts";
import { makeLeaseId } from "./core/leases.ts";
import { sealEnvelope } from "./_lease_envelope.ts";
import { WarpError } from "./core/errors.ts";
import { NodeCore } from "./core/node.ts";
import type { ValidatorReport } from "./core/_validator.ts";
import { auditBatchMax, auditSettings, runAudit, storeVersions } from "./_audit.ts";
import type { AuditOptions, AuditReport } from "./_audit.ts";
import { entryAnswer } from "./core/l1.ts";
import { readSettings, resolvePolicy } from "./core/registry.ts";
import type { KeyPolicy, ReadOptions } from "./core/registry.ts";
import type { Store } from "./store.ts";
import { checkBatchKeys, type LoadMany, type ManyResult, settleMany } from "./_batch.ts";
import { checkNamespace, WarpNamespace } from "./_namespace.ts";
import { checkKnownOptions } from "./_options.ts";
import { registrationProblems } from "./core/_options.ts";
import { MessageAuth } from "./auth.ts";
import { describe } from "./_describe.ts";
import { checkKey, checkNumbers, checkOptions } from "./_check.ts";
import { Observer } from "./observe.ts";
import type { WarpEventType, WarpListener } from "./observe.ts";
import { noopMetrics } from "./metrics.ts";
import type { WarpMetrics } from "./metrics.ts";
import type { Entry } from "./core/l1.ts";
import { checkUpdateOptions, runUpdate } from "./_update.ts";
import type { CompareAndSetResult, UpdateOptions } from "./_update.ts";
import type { Reducer, UpdateResult } from "./core/update.ts";
import { runTransaction } from "./_transaction.ts";
import { warmup } from "./_warmup.ts";
import { Driver, emitCoreEvents } from "./_driver.ts";
import { Reads } from "./_reads.ts";
import { Writes } from "./_writes.ts";
import type { TransactionResult, TransactionStep } from "./_transaction.ts";

export { DEFAULT_SESSION_MS, VALUE_BYTES_LIMIT, VALUE_BYTES_MAX_DEFAULT } from "./_warp_options.ts";
export type {
  GrantLeaseOptions,
  Loader,
  LoaderContext,
  ReadResult,
  SetOptions,
  WarpKeyOptions,
  WarpOptions,
  WarpReadOptions,
  WarpStats,
} from "./_warp_options.ts";
import {
  checkLease,
  checkValidator,
  checkWarpOptions,
  DEFAULT_SESSION_MS,
  type GrantLeaseOptions,
  KEY_OPTIONS_WITH_LOADER,
  leaseOption,
  type Loader,
  type ReadResult,
  readResult,
  type SetOptions,
  splitReadOptions,
  type WarpKeyOptions,
  type WarpOptions,
  type WarpReadOptions,
  type WarpStats,
} from "./_warp_options.ts";

/** A revoke's nonce: 48 bits from the platform's cryptographic random source. */
function randomNonce(): number {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  let nonce = 0;
  for (const byte of bytes) nonce = nonce * 256 + byte;
  return nonce;
}

/**
 * A Warp node: an L1 cache in front of a store, kept consistent with the other nodes.
 *
 * Reads of a cached, fresh key are answered from memory with no I/O in every mode. Keys
 * must be registered with a mode before use (see {@linkcode Warp.register}).
 *
 * Values are shared between callers: treat what `get` returns as immutable.
 *
 * @example Two nodes in one process
 * ```ts
 * import { InProcessBus, MemoryCoordinator, MemoryStore, Warp } from "../mod.ts";
 * const store = new MemoryStore();
 * const bus = new InProcessBus();
 * const coordinator = new MemoryCoordinator();
 * const a = new Warp({ store, coordinator, transport: bus.connect() });
 * const b = new Warp({ store, coordinator, transport: bus.connect() });
 * for (const node of [a, b]) node.register("user:*", { mode: "strong-distributed" });
 * await a.set("user:1", { name: "Ada" });
 * console.log(await b.get("user:1")); // { name: "Ada" }
 * await a.close();
 * await b.close();
 * ```
 */
export class Warp<T = unknown> {
  /** This node's id. */
  readonly nodeId: string;

  readonly #core: NodeCore;
  /** Performs the core's effects: every I/O and timer of the node goes through it. */
  readonly #driver: Driver<T>;
  /** The reads that may go past L1 (loaders, getOrSet, batches). */
  readonly #reads: Reads<T>;
  /** The conditional writes (update, compareAndSet, merges, transactions). */
  readonly #writes: Writes<T>;
  readonly #store: Store;
  readonly #coordinator: Coordinator | undefined;
  readonly #codec: Codec<T>;
  readonly #clock: () => number;
  readonly #ioTimeoutMs: number;
  /** The drift bound, as a fraction, that registrations are checked against. */
  readonly #drift: number;
  /** Store-backed getOrSet sequences in flight (read, load, write), one per key. */
  readonly #loading = new Map<string, Promise<ReadResult<T>>>();
  /** Registered loaders, by the pattern of their registration. */
  readonly #loaders = new Map<string, Loader<T>>();
  /**
   * Listeners and logger; `undefined` while there are none (the hit path checks it). The
   * driver holds the same one (`#observe`), for the events of its steps.
   */
  #observer: Observer | undefined;
  /** Where durations go; `undefined` for none (no clock read for them). */
  readonly #metrics: WarpMetrics | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Creates a node and joins its cluster. Every option is checked first (`TypeError` or
   * `RangeError` naming it): a refused node has subscribed to nothing.
   */
  constructor(options: WarpOptions<T>) {
    const { nodeId, prefix, ioTimeoutMs, valueBytesMax } = checkWarpOptions(options);
    const { store, transport, coordinator } = options;
    this.nodeId = nodeId;
    this.#store = store;
    this.#coordinator = coordinator ??
      (transport === undefined ? new MemoryCoordinator() : undefined);
    this.#codec = options.codec ?? (structuredCodec as Codec<T>);
    this.#clock = options.clock ?? (() => performance.now());
    this.#ioTimeoutMs = ioTimeoutMs;
    const auth = options.auth === undefined ? undefined : new MessageAuth(options.auth, prefix);
    this.#metrics = options.metrics === noopMetrics ? undefined : options.metrics;
    if (options.logger !== undefined) this.#observer = new Observer(options.logger);
    this.#core = new NodeCore({
      nodeId,
      nonce: randomNonce,
      // New at every start and, with the clock's help, larger than the previous one.
      incarnation: Date.now() * 1000 + Math.floor(Math.random() * 1000),
      ...(options.entriesMax !== undefined && { entriesMax: options.entriesMax }),
      ...(options.bytesMax !== undefined && { bytesMax: options.bytesMax }),
      ...(options.maxDriftPpm !== undefined && { maxDriftPpm: options.maxDriftPpm }),
      ...(options.heartbeatIntervalMs !== undefined &&
        { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      ...(options.gapTimeoutMs !== undefined && { gapTimeoutMs: options.gapTimeoutMs }),
      ...(options.waitersMax !== undefined && { waitersMax: options.waitersMax }),
      ...(options.opsMax !== undefined && { opsMax: options.opsMax }),
      ...(options.peersMax !== undefined && { peersMax: options.peersMax }),
      ...(options.echoesMax !== undefined && { echoesMax: options.echoesMax }),
      ...(options.leaseCheckMs !== undefined && { leaseCheckMs: options.leaseCheckMs }),
      ...(options.leaseTimeoutMs !== undefined && { leaseTimeoutMs: options.leaseTimeoutMs }),
      sessionMs: this.#coordinator === undefined ? 0 : options.sessionMs ?? DEFAULT_SESSION_MS,
      ...(options.coordinatorStalenessMs !== undefined &&
        { coordinatorStalenessMs: options.coordinatorStalenessMs }),
      ...(options.validator !== undefined && { validator: checkValidator(options.validator) }),
    });
    this.#driver = new Driver({
      nodeId,
      core: this.#core,
      store,
      transport,
      coordinator: this.#coordinator,
      codec: this.#codec,
      clock: this.#clock,
      ioTimeoutMs,
      valueBytesMax,
      prefix,
      auth,
      metrics: this.#metrics,
      loaders: this.#loaders,
    });
    this.#driver.observer = this.#observer;
    this.#reads = new Reads({
      core: this.#core,
      driver: this.#driver,
      store,
      clock: this.#clock,
      loaders: this.#loaders,
      hit: (key) => this.#hit(key),
    });
    this.#writes = new Writes({
      core: this.#core,
      driver: this.#driver,
      store,
      codec: this.#codec,
      clock: this.#clock,
      ioTimeoutMs,
    });
    this.#drift = (options.maxDriftPpm ?? 500) / 1e6;
    const keys = options.keys ?? {};
    if (typeof keys !== "object" || keys === null || Array.isArray(keys)) {
      throw new TypeError(`Invalid keys, expected an object of registrations: ${String(keys)}`);
    }
    for (const [pattern, keyOptions] of Object.entries(keys)) this.register(pattern, keyOptions);
    this.#driver.join();
    if (this.#observer !== undefined) this.#core.observe(this.#observer.level);
    this.#driver.step(() => this.#core.tick(this.#clock()));
    this.#metrics?.addNode(this);
  }

  /**
   * Adds a listener for events of `type` (see {@linkcode WarpEvent}): it runs after the
   * node's step that caused the event, never inside it; if it throws, the error is counted
   * (`stats.listenerErrors`) and logged, and the node goes on. `hit` and `miss` events are
   * recorded only while one of them has a listener.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("k", { mode: "strong-local" });
   * const seen: string[] = [];
   * warp.on("miss", (event) => seen.push(`miss ${event.key}`));
   * warp.on("hit", (event) => seen.push(`hit ${event.key}`));
   * await warp.get("k");
   * await warp.set("k", 1);
   * await warp.get("k");
   * console.log(seen); // [ "miss k", "hit k" ]
   * await warp.close();
   * ```
   */
  on<K extends WarpEventType>(type: K, listener: WarpListener<K>): void {
    const observer = this.#observe();
    observer.on(type, listener);
    this.#core.observe(observer.level);
  }

  /**
   * Removes a listener added with {@linkcode Warp.on}; one never added is ignored.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * const listener = () => {};
   * warp.on("flush", listener);
   * warp.off("flush", listener);
   * await warp.close();
   * ```
   */
  off<K extends WarpEventType>(type: K, listener: WarpListener<K>): void {
    const observer = this.#observe();
    observer.off(type, listener);
    this.#core.observe(observer.level);
  }

  /** The node's observer, made on first use and shared with the driver. */
  #observe(): Observer {
    if (this.#observer === undefined) {
      this.#driver.observer = this.#observer = new Observer(undefined);
    }
    return this.#observer;
  }

  /** The L1 entry the core serves for `key` now, if any (a hit), its events handed on. */
  #hit(key: string): Entry | undefined {
    const entry = this.#core.hit(key, this.#clock());
    if (this.#observer !== undefined) emitCoreEvents(this.#core, this.#observer);
    return entry;
  }

  /**
   * Registers an exact key or a glob pattern (`*` matches any run of characters) with
   * its consistency mode and options. The most specific registration wins for a key.
   * Every node of a cluster must register the same keys the same way.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("session:*", { mode: "eventual-distributed", ttlMs: 60_000, maxStalenessMs: 500 });
   * await warp.close();
   * ```
   */
  register<V extends T = T>(pattern: string, options: WarpKeyOptions<V>): KeyPolicy;
  register(pattern: string, options: WarpKeyOptions<T>): KeyPolicy {
    checkOptions(options, `options of ${describe(pattern)}`, false);
    checkKnownOptions(options, KEY_OPTIONS_WITH_LOADER, `register(${describe(pattern)})`);
    const { loader: _, merge: _merge, ...resolvable } = options;
    // Each option alone (TypeError/RangeError), then together. The write deadline is held
    // to the documented rule, above leaseMs × (1 + drift); how a session's wait compares is
    // the simulator's check (`configProblems`), since it depends on every node's session.
    const [problem] = registrationProblems(
      resolvePolicy(pattern, resolvable),
      resolvable,
      this.#drift,
      undefined,
    );
    if (problem !== undefined) {
      throw problem.includes(" applies to ") ? new TypeError(problem) : new RangeError(problem);
    }
    if (options?.mode === "strong-distributed" && this.#coordinator === undefined) {
      throw new TypeError(
        `A strong-distributed key needs a coordinator shared by the cluster: ${describe(pattern)}`,
      );
    }
    if (typeof options === "object" && options !== null && options.merge !== undefined) {
      return this.#writes.registerMerge(pattern, options);
    }
    if (typeof options !== "object" || options === null || options.loader === undefined) {
      return this.#core.register(pattern, options);
    }
    const { loader, ...keyOptions } = options;
    if (typeof loader !== "function") {
      throw new TypeError(`Invalid loader of ${describe(pattern)}: ${describe(loader)}`);
    }
    if (keyOptions.origin !== "loader") {
      throw new TypeError(
        `A registered loader needs origin "loader" (a store-backed key loads with getOrSet): ${
          describe(pattern)
        }`,
      );
    }
    const policy = this.#core.register(pattern, keyOptions);
    this.#loaders.set(pattern, loader);
    return policy;
  }

  /**
   * Reads a key: from L1 if its mode allows, else from the store. Resolves to the value,
   * or `undefined` if the key has none.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<string>({ store: new MemoryStore() });
   * warp.register("greeting", { mode: "strong-local" });
   * await warp.set("greeting", "hello");
   * console.log(await warp.get("greeting")); // "hello"
   * await warp.close();
   * ```
   */
  get<V extends T = T>(key: string, options?: WarpReadOptions<V>): Promise<V | undefined>;
  get(key: string, options?: WarpReadOptions<T>): Promise<T | undefined> {
    if (options !== undefined) {
      try {
        this.#checkReadOptions(key, options);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const entry = this.#core.hit(key, this.#clock()); // #hit, inlined: the hot path
    if (this.#observer !== undefined) emitCoreEvents(this.#core, this.#observer);
    if (entry !== undefined) {
      if (entry.tuning !== undefined) this.#afterHit();
      return Promise.resolve(entry.value as T | undefined);
    }
    return this.read(key, options).then((result) => result.value);
  }

  /**
   * Checks a read's options before a hit can answer (a miss checks them again in the
   * core): misuse throws whether or not the key is cached.
   */
  #checkReadOptions(key: string, options: WarpReadOptions<T>): void {
    checkKey(key);
    const { core } = splitReadOptions(options);
    const policy = this.#core.policyOf(key);
    if (policy !== undefined) readSettings(policy, core);
  }

  /** A hit may have started a refresh-ahead: perform its effects. */
  #afterHit(): void {
    if (this.#core.effectsPending) this.#driver.step(() => {});
  }

  /**
   * Reads a key and says how: found or not, its version, and whether from L1 or store.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("k", { mode: "strong-local" });
   * console.log((await warp.read("k")).found); // false
   * await warp.close();
   * ```
   */
  read<V extends T = T>(key: string, options?: WarpReadOptions<V>): Promise<ReadResult<V>>;
  async read(key: string, options?: WarpReadOptions<T>): Promise<ReadResult<T>> {
    checkKey(key);
    const { loader, core } = splitReadOptions(options);
    const policy = this.#core.policyOf(key);
    if (policy !== undefined) readSettings(policy, core); // misuse throws, hit or miss
    if (policy?.origin === "loader") return await this.#reads.readLoaded(key, policy, loader, core);
    if (loader === undefined) {
      return readResult(
        await this.#driver.run((op, now) => this.#core.get(op, key, now, core), "read"),
      );
    }
    const entry = this.#hit(key);
    if (entry?.found) {
      if (entry.tuning !== undefined) this.#afterHit();
      return readResult(entryAnswer(entry, this.#clock(), "l1"));
    }
    const loading = this.#loading.get(key);
    if (loading !== undefined) return await loading;
    const sequence = this.#reads.readOrLoad(key, loader, core).finally(() =>
      this.#loading.delete(key)
    );
    this.#loading.set(key, sequence);
    return await sequence;
  }

  /**
   * Reads several keys at once, each as {@linkcode Warp.read} does (same options), and
   * resolves to their results in order; rejects as soon as one read rejects.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("k:*", { mode: "strong-local" });
   * await warp.set("k:1", "one");
   * const [one, two] = await warp.readMany(["k:1", "k:2"]);
   * console.log(one?.value, one?.source, two?.found); // "one" "l1" false
   * await warp.close();
   * ```
   */
  readMany<V extends T = T>(
    keys: readonly string[],
    options?: WarpReadOptions<V>,
  ): Promise<ReadResult<V>[]>;
  readMany(keys: readonly string[], options?: WarpReadOptions<T>): Promise<ReadResult<T>[]> {
    try {
      checkBatchKeys(keys);
      if (options?.loader !== undefined) {
        return Promise.all(keys.map((key) => this.read(key, options)));
      }
      const core = this.#reads.batchReadOptions(keys, options);
      return Promise.all(
        this.#reads.startReads(keys, core, (policy) => this.#loaders.get(policy.pattern)),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reads several keys at once and answers per key: a key that fails (a store error, an
   * unregistered key, a loader error) fails alone. Each key is read as {@linkcode Warp.get}
   * reads it — from L1 when its mode allows, else through the same fill, with the same
   * version and epoch rules — but the store reads of the misses go out together: one
   * `Store.getMany` call (one query on `PostgresStore`) per 1000 keys, or, for a store
   * without it, 16 reads in flight at a time. Loader-backed keys load with their
   * registered loader. A bad argument (not an array, a bad key, more than 10 000 keys, bad
   * options) rejects the whole call with a `TypeError` or `RangeError`.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<string>({ store: new MemoryStore() });
   * warp.register("user:*", { mode: "eventual-distributed" });
   * await warp.set("user:1", "Ada");
   * const [one, two, other] = await warp.getMany(["user:1", "user:2", "order:1"]);
   * console.log(one?.value, two?.ok, two?.value); // "Ada" true undefined
   * console.log(other?.ok); // false (UNREGISTERED_KEY)
   * await warp.close();
   * ```
   */
  async getMany(keys: readonly string[], options?: ReadOptions): Promise<ManyResult<T>[]> {
    checkBatchKeys(keys);
    const core = this.#reads.batchReadOptions(keys, options);
    const loaderOf = (policy: KeyPolicy) => this.#loaders.get(policy.pattern);
    return settleMany(keys, await this.#reads.readAll(keys, core, loaderOf));
  }

  /**
   * Reads several keys and loads the misses with **one** call of `loadMany`, answering per
   * key. Store-backed keys are read (as {@linkcode Warp.getMany}); those the store has no
   * value for are loaded and each loaded value is written to the store conditionally on the
   * version read, as {@linkcode Warp.getOrSet} does (a node that loses that race answers
   * the winner's value). Loader-backed keys that L1 cannot serve are loaded through the
   * core's fill path, with their invalidation epochs (a load an invalidation overtook is
   * loaded again, in a `loadMany` call of its own). A key `loadMany` leaves out is "not
   * found"; if it rejects, each of its keys fails with `LOADER_ERROR` (unless fail-safe
   * answers).
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<number>({ store: new MemoryStore() });
   * warp.register("price:*", { mode: "eventual-distributed", origin: "loader" });
   * const prices = new Map([["price:a", 1], ["price:b", 2]]); // stands for your database
   * const calls: string[][] = [];
   * const loadMany = (keys: string[]) => {
   *   calls.push(keys);
   *   return new Map(keys.map((key) => [key, prices.get(key)]));
   * };
   * await warp.getOrSetMany(["price:a"], loadMany);
   * const results = await warp.getOrSetMany(["price:a", "price:b", "price:c"], loadMany);
   * console.log(results.map((r) => r.value)); // [1, 2, undefined]
   * console.log(calls); // [["price:a"], ["price:b", "price:c"]]
   * await warp.close();
   * ```
   */
  async getOrSetMany(
    keys: readonly string[],
    loadMany: LoadMany<T>,
    options?: ReadOptions,
  ): Promise<ManyResult<T>[]> {
    checkBatchKeys(keys);
    if (typeof loadMany !== "function") {
      throw new TypeError(`Invalid loadMany, expected a function: ${describe(loadMany)}`);
    }
    const core = this.#reads.batchReadOptions(keys, options);
    return await this.#reads.getOrSetMany(keys, loadMany, core);
  }

  /**
   * The value of `key` if L1 may serve it right now under its mode's rules, else
   * `undefined`. Synchronous and allocation-free; never touches the store.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<number>({ store: new MemoryStore() });
   * warp.register("hits", { mode: "strong-local" });
   * await warp.set("hits", 1);
   * console.log(warp.peek("hits")); // 1
   * await warp.close();
   * ```
   */
  peek<V extends T = T>(key: string): V | undefined;
  peek(key: string): T | undefined {
    const entry = this.#core.hit(key, this.#clock()); // #hit, inlined: the hot path
    if (this.#observer !== undefined) emitCoreEvents(this.#core, this.#observer);
    if (entry === undefined) {
      // Misses only, so hits stay cheap: a bad key throws, an unregistered one too (as get).
      checkKey(key);
      if (this.#core.policyOf(key) === undefined) {
        throw new WarpError(
          "UNREGISTERED_KEY",
          `Key matches no registered key or pattern: ${describe(key)}`,
        );
      }
    } else if (entry.tuning !== undefined) this.#afterHit();
    return entry?.value as T | undefined;
  }

  /**
   * Writes a value to the store, then makes the cluster consistent as the key's mode
   * says. Resolves to the store's new version. If the store write fails, no cache
   * changes and the promise rejects with a `WarpError` (`STORE_ERROR`). A value whose
   * encoding is over `valueBytesMax` rejects with `VALUE_TOO_LARGE` before anything
   * happens, as does one nested deeper than `JSON_DEPTH_MAX`.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("user:*", { mode: "eventual-distributed" });
   * console.log(await warp.set("user:1", { name: "Ada" })); // 1
   * await warp.close();
   * ```
   */
  set<V extends T = T>(key: string, value: V, options?: SetOptions): Promise<number>;
  async set(key: string, value: T, options?: SetOptions): Promise<number> {
    checkKey(key);
    const leases = leaseOption(options);
    if (leases.length > 0) this.#needCoordinator("attach a value to a lease");
    const merge = this.#writes.mergeOf(key);
    if (merge !== undefined) return await this.#writes.setMerged(key, merge, value, leases);
    const encoded = this.#driver.encode(key, value);
    // L1 keeps its own decoded copy, so the caller mutating `value` later changes nothing.
    const copy = this.#codec.decode(encoded);
    const input = {
      value: copy,
      payload: sealEnvelope(encoded, leases),
      sizeBytes: encoded.byteLength,
      ...(leases.length > 0 && { leases }),
    };
    const result = await this.#driver.run(
      (op, now) => this.#core.set(op, key, input, now),
      "write",
    );
    return result.version;
  }

  /**
   * Grants a lease: a group of keys (attach them with `set(key, value, { lease })` or
   * {@linkcode Warp.attachKey}) that one {@linkcode Warp.revokeLease} invalidates on every
   * node. Unless kept alive with {@linkcode Warp.keepAlive}, it expires `ttlMs` after the
   * grant, cluster-wide. Resolves to the lease id. Needs the cluster's coordinator.
   *
   * @example A user's sessions, dropped everywhere at logout
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore(), leaseCheckMs: 50 });
   * warp.register("session:*", { mode: "eventual-distributed" });
   * const lease = await warp.grantLease({ ttlMs: 60_000 });
   * await warp.set("session:a", { user: 1 }, { lease });
   * await warp.set("session:b", { user: 1 }, { lease });
   * await warp.revokeLease(lease);
   * console.log(await warp.get("session:a"), await warp.get("session:b")); // undefined undefined
   * await warp.close();
   * ```
   */
  async grantLease(options: GrantLeaseOptions): Promise<string> {
    checkOptions(options, "grantLease options", false);
    checkKnownOptions(options, ["ttlMs"], "grantLease");
    checkNumbers(options as unknown as Record<string, unknown>, ["ttlMs"]);
    this.#needCoordinator("grant a lease");
    const random = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(12))))
      .replaceAll("+", "-").replaceAll("/", "_");
    const id = makeLeaseId(options.ttlMs, random); // RangeError on a bad TTL
    await this.#driver.run((op, now) => this.#core.grantLease(op, id, now), "lease");
    return id;
  }

  /**
   * Restarts a lease's TTL. Rejects with `LEASE_REVOKED` or `LEASE_EXPIRED` if it is dead
   * (G3): a dead lease stays dead.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * const lease = await warp.grantLease({ ttlMs: 5_000 });
   * await warp.keepAlive(lease);
   * await warp.close();
   * ```
   */
  async keepAlive(lease: string): Promise<void> {
    checkLease(lease);
    this.#needCoordinator("keep a lease alive");
    await this.#driver.run((op, now) => this.#core.keepAliveLease(op, lease, now), "lease");
  }

  /**
   * Revokes a lease. When it resolves, no node serves a value attached to it, from L1 or
   * the store (G1); reads of those keys return absent until they are written again.
   * Takes about `leaseCheckMs` (default 1 s): the time every node's last check of the
   * lease needs to run out. Revoking a dead lease succeeds.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore(), leaseCheckMs: 50 });
   * warp.register("cart:*", { mode: "strong-local" });
   * const lease = await warp.grantLease({ ttlMs: 60_000 });
   * await warp.set("cart:1", ["apple"], { lease });
   * await warp.revokeLease(lease);
   * console.log(await warp.get("cart:1")); // undefined
   * await warp.close();
   * ```
   */
  async revokeLease(lease: string): Promise<void> {
    checkLease(lease);
    this.#needCoordinator("revoke a lease");
    await this.#driver.run((op, now) => this.#core.revokeLease(op, lease, now), "lease");
  }

  /**
   * Attaches the current value of `key` to `lease` as well (a new version, same value),
   * keeping the leases it had. Rejects with `NOT_FOUND` if the key has no value, with
   * `LEASE_REVOKED` / `LEASE_EXPIRED` if the lease (or one the value already has) is dead,
   * and with `STORE_CONFLICT` if the key kept changing under it. Resolves to the new
   * version.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore(), leaseCheckMs: 50 });
   * warp.register("doc:*", { mode: "eventual-distributed" });
   * await warp.set("doc:1", "draft");
   * const lease = await warp.grantLease({ ttlMs: 60_000 });
   * await warp.attachKey("doc:1", lease);
   * await warp.revokeLease(lease);
   * console.log(await warp.get("doc:1")); // undefined
   * await warp.close();
   * ```
   */
  async attachKey(key: string, lease: string): Promise<number> {
    checkKey(key);
    checkLease(lease);
    this.#needCoordinator("attach a key to a lease");
    for (let attempt = 1;; attempt++) {
      const stored = await this.#driver.readStored(key);
      if (stored.bytes === undefined) {
        throw new WarpError("NOT_FOUND", `Key has no value to attach to a lease: ${describe(key)}`);
      }
      if (stored.leases.includes(lease)) return stored.version;
      const leases = [...stored.leases, lease];
      const input = {
        value: stored.value,
        payload: sealEnvelope(stored.bytes, leases),
        sizeBytes: stored.bytes.byteLength,
        leases,
        expectedVersion: stored.version,
      };
      try {
        const result = await this.#driver.run(
          (op, now) => this.#core.set(op, key, input, now),
          "write",
        );
        return result.version;
      } catch (error) {
        if (!(error instanceof WarpError) || error.code !== "STORE_CONFLICT" || attempt >= 5) {
          throw error;
        }
      }
    }
  }

  /**
   * Read-modify-write without lost updates: reads the key's value and version **from the
   * store** (never L1), applies `reducer` (pure; it may run several times, and may return
   * `abort()`), and writes the result through the key's mode on condition that the store
   * is still at that version; on a conflict it backs off and tries again, at most
   * `attemptsMax` times. Resolves to a result, not an exception, for the expected
   * outcomes: `ok` (with the value and version written), `conflict` (every attempt lost a
   * race; nothing written), `aborted` (the reducer or `signal`). A store failure rejects
   * as `set` does (its outcome is unknown, and it is not retried). See `docs/updates.md`.
   *
   * @example A counter two writers increment
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<number>({ store: new MemoryStore() });
   * warp.register("count", { mode: "eventual-distributed" });
   * const results = await Promise.all(
   *   [1, 2, 3].map(() => warp.update("count", (n) => (n ?? 0) + 1)),
   * );
   * assert.deepEqual(results.map((r) => r.status), ["ok", "ok", "ok"]);
   * assert.equal(await warp.get("count"), 3);
   * await warp.close();
   * ```
   */
  update(key: string, reducer: Reducer<T>, options?: UpdateOptions): Promise<UpdateResult<T>> {
    try {
      checkKey(key);
      if (typeof reducer !== "function") {
        throw new TypeError(`Invalid reducer, expected a function: ${describe(reducer)}`);
      }
      return runUpdate(this.#writes.updateIo, key, reducer, checkUpdateOptions(options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Writes `value` only if the store's version of `key` is `expectedVersion` (0: only if
   * the key was never written; a deleted key is at its tombstone's version). Resolves to
   * `{ status: "ok", version }`, or `{ status: "conflict" }` with nothing written and no
   * cache changed. The value is attached to no lease. A store failure rejects.
   *
   * @example A writer that read version 1 loses to one that wrote meanwhile
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<number>({ store: new MemoryStore() });
   * warp.register("balance", { mode: "strong-local" });
   * const read = await warp.set("balance", 100);
   * await warp.set("balance", 105);
   * assert.deepEqual(await warp.compareAndSet("balance", read, 101), { status: "conflict" });
   * assert.equal(await warp.get("balance"), 105);
   * await warp.close();
   * ```
   */
  async compareAndSet(
    key: string,
    expectedVersion: number,
    value: T,
  ): Promise<CompareAndSetResult> {
    checkKey(key);
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
      throw new RangeError(`Invalid expectedVersion: ${describe(expectedVersion)}`);
    }
    try {
      return { status: "ok", version: await this.#writes.writeAt(key, value, expectedVersion, []) };
    } catch (error) {
      if (error instanceof WarpError && error.code === "STORE_CONFLICT") {
        return { status: "conflict" };
      }
      throw error;
    }
  }

  /**
   * Writes and checks several keys all or nothing, through the store's `transact` (a store
   * without one rejects with a `TypeError`). Checks compare store versions; a `set` or
   * `delete` with `expectedVersion` is conditional. Resolves to `{ status: "ok", versions }`
   * or `{ status: "conflict" }` (nothing written anywhere). Nothing is cached on commit:
   * each written key is invalidated as its mode says (eventual-distributed: on every node
   * within its staleness bound), after the commit only. Strong-distributed keys have their
   * write slots claimed in key order and their holders revoked before the commit, and are
   * released after it: once it resolves ok, no node serves an older value of them.
   *
   * @example A transfer between two balances
   * ```ts
   * import assert from "node:assert/strict";
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<number>({ store: new MemoryStore() });
   * warp.register("acct:*", { mode: "eventual-distributed" });
   * const a = await warp.read("acct:a").then((r) => r.version); // 0: never written
   * const result = await warp.transaction([
   *   { kind: "set", key: "acct:a", value: 90, expectedVersion: a },
   *   { kind: "set", key: "acct:b", value: 10, expectedVersion: 0 },
   * ]);
   * assert.equal(result.status, "ok");
   * assert.equal(await warp.get("acct:b"), 10);
   * await warp.close();
   * ```
   */
  transaction(steps: readonly TransactionStep<T>[]): Promise<TransactionResult> {
    try {
      return runTransaction(this.#writes.transactionIo(), steps);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #needCoordinator(what: string): void {
    if (this.#coordinator === undefined) {
      throw new TypeError(`Cannot ${what} without a coordinator shared by the cluster`);
    }
  }

  /**
   * Deletes a key from the store (the store keeps a tombstone version) and from every
   * cache as the key's mode says. Resolves to the tombstone's version.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("k", { mode: "strong-local" });
   * await warp.set("k", 1);
   * await warp.delete("k");
   * console.log(await warp.get("k")); // undefined
   * await warp.close();
   * ```
   */
  async delete(key: string): Promise<number> {
    checkKey(key);
    const result = await this.#driver.run((op, now) => this.#core.delete(op, key, now), "delete");
    return result.version;
  }

  /**
   * Drops a key from L1 here and (best effort) on every node, without touching the
   * store; the next read goes to the store.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("k", { mode: "eventual-distributed" });
   * await warp.set("k", 1);
   * await warp.invalidate("k");
   * console.log(warp.peek("k")); // undefined
   * await warp.close();
   * ```
   */
  async invalidate(key: string): Promise<void> {
    checkKey(key);
    await this.#driver.run((op, now) => this.#core.invalidate(op, key, now), "invalidate");
  }

  /**
   * A view of this node under namespace `name`: every key and pattern it is given is
   * prefixed with `name:`, and its {@linkcode WarpNamespace.clear} drops them all from
   * every node's L1. Views share this node (L1, bus, limits). A bad name is a TypeError.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<number>({ store: new MemoryStore() });
   * const carts = warp.namespace("carts");
   * carts.register("*", { mode: "strong-local" });
   * await carts.set("7", 3);
   * console.log(await warp.get("carts:7")); // 3
   * await warp.close();
   * ```
   */
  namespace(name: string): WarpNamespace<T> {
    return new WarpNamespace(this, name);
  }

  /**
   * Clears namespace `name` on every node: {@linkcode WarpNamespace.clear}. Resolves to the
   * namespace's epoch on this node.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("users:*", { mode: "eventual-distributed" });
   * await warp.set("users:1", "Ada");
   * console.log(await warp.clearNamespace("users"), warp.peek("users:1")); // 1 undefined
   * await warp.close();
   * ```
   */
  async clearNamespace(name: string): Promise<number> {
    checkNamespace(name);
    const result = await this.#driver.run((op, now) => this.#core.clear(op, name, now));
    return result.version;
  }

  /**
   * Reads a key through a loader; resolves to its value, or `undefined` when the loader
   * said "not found". For a loader-backed key (`origin: "loader"`), `loader` loads it on a
   * miss and the value is cached in L1 only. For a store-backed key, `loader` runs when
   * the store has no value; its result is written to the store (conditionally: if another
   * node wrote first, its value is the answer) and returned. Concurrent calls for one key
   * on this node share one loader call. The loader gets an `AbortSignal` and the stale
   * value, may set the entry's TTL or skip caching (see {@linkcode LoaderContext}), and is
   * aborted at the read's `hardTimeoutMs`. {@linkcode Warp.read} with `{ loader }` gives
   * the full answer (source, stale, freshness).
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp<string>({ store: new MemoryStore() });
   * warp.register("report:*", { mode: "eventual-distributed" });
   * const value = await warp.getOrSet("report:1", () => Promise.resolve("computed"));
   * console.log(value); // "computed"
   * await warp.close();
   * ```
   *
   * @example A cache in front of your own table: load, write your table, invalidate
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const prices = new Map([["p1", 10]]); // stands for your own database
   * const warp = new Warp<number>({ store: new MemoryStore() });
   * warp.register("price:*", { mode: "eventual-distributed", origin: "loader", ttlMs: 30_000 });
   * const load = ({ key }: { key: string }) => prices.get(key.slice("price:".length));
   * console.log(await warp.getOrSet("price:p1", load)); // 10
   * prices.set("p1", 20); // your write commits...
   * await warp.invalidate("price:p1"); // ...then every node's copy is dropped
   * console.log(await warp.getOrSet("price:p1", load)); // 20
   * await warp.close();
   * ```
   */
  getOrSet<V extends T = T>(
    key: string,
    loader: Loader<V>,
    options?: ReadOptions,
  ): Promise<V | undefined>;
  async getOrSet(
    key: string,
    loader: Loader<T>,
    options?: ReadOptions,
  ): Promise<T | undefined> {
    checkKey(key);
    if (typeof loader !== "function") {
      throw new TypeError(`Invalid loader, expected a function: ${describe(loader)}`);
    }
    if (options !== undefined) this.#checkReadOptions(key, options);
    const cached = this.#hit(key);
    // A cached absence is an answer for a loader-backed key; a store-backed one loads.
    if (cached !== undefined && (cached.found || cached.policy.origin === "loader")) {
      if (cached.tuning !== undefined) {
        this.#driver.withLoaderInScope(loader, () => this.#afterHit());
      }
      return cached.value as T | undefined;
    }
    return (await this.read(key, { ...options, loader })).value;
  }

  /**
   * Loads keys into L1 ahead of use: a list of keys, or every key of the store with a
   * prefix. Resolves to how many were loaded and how many failed; never rejects for a
   * single key.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * warp.register("user:*", { mode: "strong-local" });
   * await warp.set("user:1", "a");
   * console.log(await warp.warmup({ prefix: "user:" })); // { loaded: 1, failed: 0 }
   * await warp.close();
   * ```
   */
  async warmup(
    keys: readonly string[] | { readonly prefix: string; readonly limit?: number },
  ): Promise<{ loaded: number; failed: number }> {
    return await warmup(keys, this.#store, this.#ioTimeoutMs, (key) => this.read(key));
  }

  /**
   * The background validator's figures (`validator` option), or `undefined` when it is off:
   * checks, what they found, heals, the store-read budget, and how many checked keys were
   * consistent within 1 s, 10 s and 60 s (see `docs/validator.md`).
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "@warp/warp";
   * const warp = new Warp({ store: new MemoryStore(), validator: { mode: "count" } });
   * console.log(warp.validatorReport()?.checked); // 0
   * await warp.close();
   * ```
   */
  validatorReport(): ValidatorReport | undefined {
    return this.#core.validatorReport();
  }

  /**
   * Checks every entry L1 would serve now against the store, by version: a full pass, in
   * `Store.getMany` batches read one after another, with no rate limit (the background
   * validator never makes one). Resolves with the counts of entries equal to the store,
   * older (maybe within their bound), newer (a bug) and deleted in the store, and up to
   * `keysMax` keys of each. It repairs nothing. Bad options are a TypeError/RangeError.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "@warp/warp";
   * const store = new MemoryStore();
   * const warp = new Warp({ store, keys: { "user:*": { mode: "strong-local" } } });
   * await warp.set("user:1", "ada");
   * await store.set("user:1", new TextEncoder().encode("behind Warp's back"));
   * const report = await warp.audit();
   * console.log(report.olderThanStore, report.keys.olderThanStore); // 1 ["user:1"]
   * await warp.close();
   * ```
   */
  async audit(options: AuditOptions = {}): Promise<AuditReport> {
    const settings = auditSettings(options);
    const entries = this.#core.servableEntries(this.#clock());
    const batchMax = auditBatchMax(this.#store);
    const read = storeVersions(this.#store, this.#ioTimeoutMs);
    return await runAudit(entries, read, settings, batchMax);
  }

  /** Counters of this node. */
  get stats(): WarpStats {
    return this.#driver.stats();
  }

  /** Why the node failed (a broken internal invariant), if it did. */
  get failure(): Error | undefined {
    return this.#driver.failure;
  }

  /**
   * Leaves the cluster: operations in flight fail with `CLOSED`, timers stop, the bus
   * subscriptions end. The transport, store and coordinator are the caller's to close.
   *
   * @example
   * ```ts
   * import { MemoryStore, Warp } from "../mod.ts";
   * const warp = new Warp({ store: new MemoryStore() });
   * await warp.close();
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#driver.close();
      this.#metrics?.removeNode(this);
      await Promise.resolve();
    })();
    return this.#closing;
  }
}
