/**
 * The Warp API: a node that serves reads from its L1 cache and keeps it consistent with
 * the other nodes of its cluster, over any {@linkcode Transport}, {@linkcode Store} and
 * {@linkcode Coordinator}. It drives the pure {@linkcode NodeCore}: it only turns the
 * core's effects into I/O and time.
 *
 * @module
 */

import type { Codec } from "./codec.ts";
import { jsonCodec } from "./codec.ts";
import type { Coordinator } from "./coordinator.ts";
import { MemoryCoordinator } from "./coordinator/memory.ts";
import type { Effect, HolderRecord, OpResult } from "./core/effects.ts";
import { validateHolderRecord } from "./core/effects.ts";
import { isLeaseId, leaseListProblem, makeLeaseId, validateLeaseRecord } from "./core/leases.ts";
import type { LeaseRecord } from "./core/leases.ts";
import { openEnvelope, sealEnvelope } from "./_lease_envelope.ts";
import { InvariantError, WarpError } from "./core/errors.ts";
import { isKey, isNodeId, KEY_LENGTH_MAX } from "./core/messages.ts";
import { NodeCore } from "./core/node.ts";
import type { NodeStats } from "./core/node.ts";
import type { KeyOptions, KeyPolicy } from "./core/registry.ts";
import type { Store } from "./store.ts";
import type { Transport, Unsubscribe } from "./transport.ts";
import { decodeMessage, encodeMessage } from "./wire.ts";
import { WakeTimer, withTimeout } from "./_wake_timer.ts";

/** Options of a {@linkcode Warp} node. */
export interface WarpOptions<T> {
  /** The primary storage. Every node of a cluster uses the same one. */
  readonly store: Store;
  /**
   * The bus to the other nodes. Without one the node is alone: distributed modes still
   * keep their rules, with no peer to tell. @default {undefined}
   */
  readonly transport?: Transport;
  /**
   * The coordinator for strong-distributed keys. Required with a `transport` if any key
   * is strong-distributed; alone, a node uses an in-memory one. @default {undefined}
   */
  readonly coordinator?: Coordinator;
  /** How values become bytes for the store. @default {jsonCodec} */
  readonly codec?: Codec<T>;
  /** This node's id, unique in the cluster. @default {a random id} */
  readonly nodeId?: string;
  /**
   * Namespace of this cluster on the bus and in the coordinator: clusters with different
   * prefixes never see each other's messages or records. (The store is shared data: keys
   * in it are not prefixed.) @default {"warp"}
   */
  readonly prefix?: string;
  /** Most L1 entries. @default {10000} */
  readonly entriesMax?: number;
  /** Most approximate L1 bytes. @default {67108864} */
  readonly bytesMax?: number;
  /** Bound on clock drift assumed by every guarantee, ppm. @default {500} */
  readonly maxDriftPpm?: number;
  /** Heartbeat period. @default {250} */
  readonly heartbeatIntervalMs?: number;
  /** How long a sequence gap may stay open before a flush. @default {500} */
  readonly gapTimeoutMs?: number;
  /** Deadline of each store or coordinator call. @default {10000} */
  readonly ioTimeoutMs?: number;
  /** Most callers waiting on one key's fill. @default {1000} */
  readonly waitersMax?: number;
  /** Most operations in flight on this node. @default {10000} */
  readonly opsMax?: number;
  /** Most peers tracked for sequence gaps. @default {1024} */
  readonly peersMax?: number;
  /** The node's monotonic clock in ms, for tests. @default {performance.now} */
  readonly clock?: () => number;
  /**
   * How long a check of a lease lets this node serve the values attached to it, and how
   * long `revokeLease` waits after its coordinator write (see `docs/leases.md`): shorter
   * means faster revocations and more coordinator reads. @default {1000}
   */
  readonly leaseCheckMs?: number;
  /** Deadline of `grantLease`, `keepAlive` and the coordinator part of `revokeLease`. @default {5000} */
  readonly leaseTimeoutMs?: number;
  /**
   * Keys and glob patterns to register at construction, each validated as by
   * {@linkcode Warp.register}: `{ "session:*": { mode: "eventual-distributed" } }`.
   * @default {{}}
   */
  readonly keys?: Readonly<Record<string, KeyOptions>>;
}

/** Options of {@linkcode Warp.set}. */
export interface SetOptions {
  /**
   * Attach the value to this lease (or these, at most 16): once one of them is revoked or
   * expires, the value reads as absent on every node. A revoked or expired lease rejects
   * the write with `LEASE_REVOKED` / `LEASE_EXPIRED`. @default {undefined}
   */
  readonly lease?: string | readonly string[];
}

/** Options of {@linkcode Warp.grantLease}. */
export interface GrantLeaseOptions {
  /**
   * The lease expires this long after its grant or last keep-alive, measured by the
   * coordinator: 1000 ms to 30 days, whole milliseconds.
   */
  readonly ttlMs: number;
}

/** A read's full answer. */
export interface ReadResult<T> {
  /** Whether the key has a value. */
  readonly found: boolean;
  /** The value, when found. */
  readonly value: T | undefined;
  /** The store version of what was read (0: never written). */
  readonly version: number;
  /** Whether the answer came from L1 or the store. */
  readonly source: "l1" | "store";
}

/** Counters of a node. */
export interface WarpStats extends NodeStats {
  /** L1 entries held. */
  readonly entries: number;
  /** Approximate L1 bytes held. */
  readonly bytes: number;
  /** L1 entries evicted to respect `entriesMax` and `bytesMax`. */
  readonly evictions: number;
  /** Bus messages that did not decode (malformed, foreign, oversized). */
  readonly malformedMessages: number;
}

interface Pending {
  resolve(result: OpResult): void;
  reject(error: unknown): void;
}

const PREFIX_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const WARMUP_CONCURRENCY = 16;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function randomNodeId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}

function checkKey(key: unknown): asserts key is string {
  if (!isKey(key)) {
    throw new TypeError(
      `Invalid key, expected a string of 1 to ${KEY_LENGTH_MAX} characters: ${
        typeof key === "string" ? JSON.stringify(key) : String(key)
      }`,
    );
  }
}

function checkLease(lease: unknown): asserts lease is string {
  if (!isLeaseId(lease)) {
    throw new TypeError(`Invalid lease id (grantLease makes them): ${String(lease)}`);
  }
}

function leaseOption(options: SetOptions | undefined): readonly string[] {
  if (options === undefined) return [];
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid set options: ${String(options)}`);
  }
  const lease = options.lease;
  if (lease === undefined) return [];
  const leases = typeof lease === "string" ? [lease] : lease;
  const problem = leaseListProblem(leases);
  if (problem !== undefined) throw new TypeError(`Invalid lease option: ${problem}`);
  return [...leases];
}

function asWarpError(
  error: unknown,
  code: "STORE_ERROR" | "COORDINATOR_UNAVAILABLE",
  what: string,
): WarpError {
  if (error instanceof WarpError) return error;
  return new WarpError(code, `${what}: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}

function timeoutAfter(ms: number, what: string): () => Error {
  return () => new WarpError("TIMEOUT", `${what} took longer than ${ms} ms`);
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
  readonly #store: Store;
  readonly #transport: Transport | undefined;
  readonly #coordinator: Coordinator | undefined;
  readonly #codec: Codec<T>;
  readonly #clock: () => number;
  readonly #ioTimeoutMs: number;
  readonly #allSubject: string;
  readonly #coordPrefix: string;
  readonly #nodeSubjectPrefix: string;
  readonly #pending = new Map<number, Pending>();
  readonly #loading = new Map<string, Promise<T>>();
  readonly #unsubscribes: Unsubscribe[] = [];
  #nextOp = 1;
  readonly #timer: WakeTimer;
  #malformed = 0;
  #failure: Error | undefined;
  #closing: Promise<void> | undefined;

  /** Creates a node and joins its cluster; validates every option. */
  constructor(options: WarpOptions<T>) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Invalid options: ${String(options)}`);
    }
    const { store, transport, coordinator } = options;
    if (typeof store?.get !== "function" || typeof store.set !== "function") {
      throw new TypeError(`Invalid store, expected a Store: ${String(store)}`);
    }
    const nodeId = options.nodeId ?? randomNodeId();
    if (!isNodeId(nodeId)) {
      throw new TypeError(`Invalid nodeId, expected 1 to 64 of [A-Za-z0-9_-]: ${nodeId}`);
    }
    const prefix = options.prefix ?? "warp";
    if (!PREFIX_PATTERN.test(prefix)) throw new TypeError(`Invalid prefix: ${prefix}`);
    this.nodeId = nodeId;
    this.#store = store;
    this.#transport = transport;
    this.#coordinator = coordinator ??
      (transport === undefined ? new MemoryCoordinator() : undefined);
    this.#codec = options.codec ?? (jsonCodec as Codec<T>);
    this.#clock = options.clock ?? (() => performance.now());
    this.#timer = new WakeTimer(
      this.#clock,
      () => this.#step(() => this.#core.tick(this.#clock())),
    );
    this.#ioTimeoutMs = options.ioTimeoutMs ?? 10_000;
    if (!(this.#ioTimeoutMs > 0)) {
      throw new RangeError(`ioTimeoutMs must be positive: ${this.#ioTimeoutMs}`);
    }
    this.#core = new NodeCore({
      nodeId,
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
      ...(options.leaseCheckMs !== undefined && { leaseCheckMs: options.leaseCheckMs }),
      ...(options.leaseTimeoutMs !== undefined && { leaseTimeoutMs: options.leaseTimeoutMs }),
    });
    const keys = options.keys ?? {};
    if (typeof keys !== "object" || keys === null || Array.isArray(keys)) {
      throw new TypeError(`Invalid keys, expected an object of registrations: ${String(keys)}`);
    }
    for (const [pattern, keyOptions] of Object.entries(keys)) this.register(pattern, keyOptions);
    this.#coordPrefix = `${prefix}/`;
    this.#allSubject = `${prefix}.all`;
    this.#nodeSubjectPrefix = `${prefix}.node.`;
    if (transport !== undefined) {
      const onData = (data: Uint8Array) => this.#onBusData(data);
      this.#unsubscribes.push(transport.subscribe(this.#allSubject, onData));
      this.#unsubscribes.push(transport.subscribe(this.#nodeSubjectPrefix + nodeId, onData));
    }
    this.#step(() => this.#core.tick(this.#clock()));
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
  register(pattern: string, options: KeyOptions): KeyPolicy {
    if (options?.mode === "strong-distributed" && this.#coordinator === undefined) {
      throw new TypeError(
        `A strong-distributed key needs a coordinator shared by the cluster: ${pattern}`,
      );
    }
    return this.#core.register(pattern, options);
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
  get(key: string): Promise<T | undefined> {
    const entry = this.#core.hit(key, this.#clock());
    if (entry !== undefined) return Promise.resolve(entry.value as T | undefined);
    return this.read(key).then((result) => result.value);
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
  async read(key: string): Promise<ReadResult<T>> {
    checkKey(key);
    const result = await this.#run((op, now) => this.#core.get(op, key, now));
    return {
      found: result.found,
      value: result.value as T | undefined,
      version: result.version,
      source: result.source === "l1" ? "l1" : "store",
    };
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
  peek(key: string): T | undefined {
    return this.#core.hit(key, this.#clock())?.value as T | undefined;
  }

  /**
   * Writes a value to the store, then makes the cluster consistent as the key's mode
   * says. Resolves to the store's new version. If the store write fails, no cache
   * changes and the promise rejects with a `WarpError` (`STORE_ERROR`).
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
  async set(key: string, value: T, options?: SetOptions): Promise<number> {
    checkKey(key);
    const leases = leaseOption(options);
    if (leases.length > 0) this.#needCoordinator("attach a value to a lease");
    const encoded = this.#codec.encode(value);
    // L1 keeps its own decoded copy, so the caller mutating `value` later changes nothing.
    const copy = this.#codec.decode(encoded);
    const input = {
      value: copy,
      payload: sealEnvelope(encoded, leases),
      sizeBytes: encoded.byteLength,
      ...(leases.length > 0 && { leases }),
    };
    const result = await this.#run((op, now) => this.#core.set(op, key, input, now));
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
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Invalid grantLease options: ${String(options)}`);
    }
    this.#needCoordinator("grant a lease");
    const random = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(12))))
      .replaceAll("+", "-").replaceAll("/", "_");
    const id = makeLeaseId(options.ttlMs, random); // RangeError on a bad TTL
    await this.#run((op, now) => this.#core.grantLease(op, id, now));
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
    await this.#run((op, now) => this.#core.keepAliveLease(op, lease, now));
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
    await this.#run((op, now) => this.#core.revokeLease(op, lease, now));
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
      const stored = await this.#readStored(key);
      if (stored.bytes === undefined) {
        throw new WarpError("NOT_FOUND", `Key has no value to attach to a lease: ${key}`);
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
        const result = await this.#run((op, now) => this.#core.set(op, key, input, now));
        return result.version;
      } catch (error) {
        if (!(error instanceof WarpError) || error.code !== "STORE_CONFLICT" || attempt >= 5) {
          throw error;
        }
      }
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
    const result = await this.#run((op, now) => this.#core.delete(op, key, now));
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
    await this.#run((op, now) => this.#core.invalidate(op, key, now));
  }

  /**
   * Reads a key; if it has no value anywhere, computes one with `loader`, writes it, and
   * returns it. Concurrent calls for one key on this node share one loader call.
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
   */
  async getOrSet(key: string, loader: () => T | Promise<T>): Promise<T> {
    checkKey(key);
    if (typeof loader !== "function") {
      throw new TypeError(`Invalid loader, expected a function: ${String(loader)}`);
    }
    const cached = this.#core.hit(key, this.#clock());
    if (cached?.found) return cached.value as T;
    const loading = this.#loading.get(key);
    if (loading !== undefined) return await loading;
    const promise = (async () => {
      const read = await this.read(key);
      if (read.found) return read.value as T;
      const value = await loader();
      await this.set(key, value);
      return value;
    })().finally(() => this.#loading.delete(key));
    this.#loading.set(key, promise);
    return await promise;
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
    let list: string[];
    if (Array.isArray(keys)) {
      keys.forEach(checkKey);
      list = [...keys];
    } else {
      const { prefix, limit = 10_000 } = keys as { prefix: string; limit?: number };
      if (typeof prefix !== "string") throw new TypeError(`Invalid prefix: ${String(prefix)}`);
      if (!Number.isSafeInteger(limit) || limit < 1) {
        throw new RangeError(`Invalid limit: ${limit}`);
      }
      list = [];
      let cursor: string | undefined;
      do {
        const page = await this.#store.list({
          prefix,
          limit: Math.min(1000, limit - list.length),
          ...(cursor !== undefined && { cursor }),
        });
        list.push(...page.keys);
        cursor = page.cursor;
      } while (cursor !== undefined && list.length < limit);
    }
    let loaded = 0, failed = 0, next = 0;
    const worker = async () => {
      while (next < list.length) {
        const key = list[next++]!;
        try {
          await this.read(key);
          loaded++;
        } catch {
          failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WARMUP_CONCURRENCY, list.length) }, worker));
    return { loaded, failed };
  }

  /** Counters of this node. */
  get stats(): WarpStats {
    return {
      ...this.#core.stats,
      entries: this.#core.l1Size,
      bytes: this.#core.l1Bytes,
      evictions: this.#core.l1Evictions,
      malformedMessages: this.#malformed,
    };
  }

  /** Why the node failed (a broken internal invariant), if it did. */
  get failure(): Error | undefined {
    return this.#failure;
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
      for (const unsubscribe of this.#unsubscribes) unsubscribe();
      this.#timer.cancel();
      this.#step(() => this.#core.close(this.#clock()));
      await Promise.resolve();
    })();
    return this.#closing;
  }

  // ------------------------------------------------------------------ driver

  #run(start: (op: number, nowMs: number) => void): Promise<OpResult> {
    if (this.#failure !== undefined) {
      return Promise.reject(
        new WarpError("CLOSED", `Node failed: ${this.#failure.message}`, { cause: this.#failure }),
      );
    }
    const op = this.#nextOp++;
    const promise = new Promise<OpResult>((resolve, reject) =>
      this.#pending.set(op, { resolve, reject })
    );
    this.#step(() => start(op, this.#clock()));
    return promise;
  }

  /** Runs one core input, then performs its effects and re-arms the timer. */
  #step(input: () => void): void {
    if (this.#failure !== undefined) return;
    try {
      input();
      for (const effect of this.#core.takeEffects()) this.#perform(effect);
      this.#schedule();
    } catch (error) {
      if (!(error instanceof InvariantError)) throw error;
      this.#fail(error);
    }
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

  #onBusData(data: Uint8Array): void {
    const message = decodeMessage(data);
    if (message === undefined) {
      this.#malformed++;
      return;
    }
    this.#step(() => this.#core.onMessage(message, this.#clock()));
  }

  #perform(effect: Effect): void {
    switch (effect.type) {
      case "resolve":
      case "reject": {
        const pending = this.#pending.get(effect.op);
        if (pending === undefined) return;
        this.#pending.delete(effect.op);
        if (effect.type === "resolve") pending.resolve(effect.result);
        else pending.reject(effect.error);
        return;
      }
      case "broadcast":
        this.#transport?.publish(this.#allSubject, encodeMessage(effect.message));
        return;
      case "send":
        this.#transport?.publish(
          this.#nodeSubjectPrefix + effect.to,
          encodeMessage(effect.message),
        );
        return;
      case "store-get":
        this.#storeGet(effect.io, effect.key);
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
    }
  }

  #storeGet(io: number, key: string): void {
    this.#readStored(key).then(
      (stored) => {
        const result = {
          ok: true as const,
          found: stored.bytes !== undefined,
          value: stored.value,
          version: stored.version,
          sizeBytes: stored.bytes?.byteLength ?? 0,
          ...(stored.leases.length > 0 && { leases: stored.leases }),
        };
        this.#step(() => this.#core.onStoreRead(io, result, this.#clock()));
      },
      (error: WarpError) => {
        this.#step(() => this.#core.onStoreRead(io, { ok: false, error }, this.#clock()));
      },
    );
  }

  /**
   * Reads `key` from the store within `ioTimeoutMs` and opens its lease envelope: the
   * codec bytes (`undefined`: no value), their decoded value, and the leases. Rejects with
   * a `WarpError`: `STORE_ERROR` for a failed read or a value that does not decode.
   */
  async #readStored(key: string): Promise<{
    version: number;
    bytes: Uint8Array | undefined;
    value: unknown;
    leases: string[];
  }> {
    const record = await withTimeout(
      this.#store.get(key),
      this.#ioTimeoutMs,
      timeoutAfter(this.#ioTimeoutMs, `Store read of ${key}`),
    ).catch((error) => {
      throw asWarpError(error, "STORE_ERROR", `Store read of ${key} failed`);
    });
    if (record.value === undefined) {
      return { version: record.version, bytes: undefined, value: undefined, leases: [] };
    }
    try {
      const opened = openEnvelope(record.value);
      if (opened === undefined) throw new Error("malformed lease envelope");
      const value = this.#codec.decode(opened.value);
      return { version: record.version, bytes: opened.value, value, leases: opened.leases };
    } catch (error) {
      throw new WarpError("STORE_ERROR", `Stored value does not decode: ${key}`, { cause: error });
    }
  }

  #storeWrite(
    io: number,
    key: string,
    payload: Uint8Array | undefined,
    expectedVersion: number | undefined,
  ): void {
    const options = expectedVersion === undefined ? undefined : { expectedVersion };
    const write = payload === undefined
      ? this.#store.delete(key, options)
      : this.#store.set(key, payload, options);
    withTimeout(write, this.#ioTimeoutMs, timeoutAfter(this.#ioTimeoutMs, `Store write of ${key}`))
      .then(
        (version) =>
          this.#step(() => this.#core.onStoreWrite(io, { ok: true, version }, this.#clock())),
        (error) => {
          const failure = asWarpError(error, "STORE_ERROR", `Store write of ${key} failed`);
          this.#step(() =>
            this.#core.onStoreWrite(io, { ok: false, error: failure }, this.#clock())
          );
        },
      );
  }

  #coordGet(io: number, key: string, kind: "holder" | "lease", ttlMs: number | undefined): void {
    const coordinator = this.#coordinator!;
    const options = ttlMs === undefined ? undefined : { ttlMs };
    withTimeout(
      coordinator.get(this.#coordPrefix + key, options),
      this.#ioTimeoutMs,
      timeoutAfter(this.#ioTimeoutMs, `Coordinator read of ${key}`),
    ).then(
      (entry) => {
        let record: HolderRecord | LeaseRecord | undefined;
        if (entry !== undefined) {
          try {
            const parsed = JSON.parse(textDecoder.decode(entry.value));
            record = kind === "lease" ? validateLeaseRecord(parsed) : validateHolderRecord(parsed);
          } catch {
            record = undefined;
          }
          if (record === undefined) {
            const error = new WarpError(
              "COORDINATOR_UNAVAILABLE",
              `Malformed coordinator record: ${key}`,
            );
            this.#step(() => this.#core.onCoordRead(io, { ok: false, error }, this.#clock()));
            return;
          }
        }
        const result = { ok: true as const, record, revision: entry?.revision ?? 0 };
        this.#step(() => this.#core.onCoordRead(io, result, this.#clock()));
      },
      (error) => {
        const failure = asWarpError(
          error,
          "COORDINATOR_UNAVAILABLE",
          `Coordinator read of ${key} failed`,
        );
        this.#step(() => this.#core.onCoordRead(io, { ok: false, error: failure }, this.#clock()));
      },
    );
  }

  #coordPut(
    io: number,
    key: string,
    record: HolderRecord | LeaseRecord,
    revision: number | undefined,
    ttlMs: number | undefined,
  ): void {
    const coordinator = this.#coordinator!;
    const bytes = textEncoder.encode(JSON.stringify(record));
    const options = ttlMs === undefined ? undefined : { ttlMs };
    const write = revision === undefined
      ? coordinator.create(this.#coordPrefix + key, bytes, options)
      : coordinator.update(this.#coordPrefix + key, bytes, revision, options);
    withTimeout(
      write,
      this.#ioTimeoutMs,
      timeoutAfter(this.#ioTimeoutMs, `Coordinator write of ${key}`),
    ).then(
      (newRevision) =>
        this.#step(() =>
          this.#core.onCoordWrite(io, { ok: true, revision: newRevision }, this.#clock())
        ),
      (error) => {
        const failure = asWarpError(
          error,
          "COORDINATOR_UNAVAILABLE",
          `Coordinator write of ${key} failed`,
        );
        const result = {
          ok: false as const,
          conflict: failure.code === "CONTENDED",
          error: failure,
        };
        this.#step(() => this.#core.onCoordWrite(io, result, this.#clock()));
      },
    );
  }
}
