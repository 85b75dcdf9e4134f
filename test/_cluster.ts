/**
 * A cluster of Warp nodes in one process for the API tests: one shared store and
 * coordinator, one in-process bus, small timers, and probes to see every message.
 *
 * @module
 */

import assert from "node:assert/strict";
import { InProcessBus, MemoryCoordinator, MemoryStore, Warp } from "../mod.ts";
import { WarpError } from "../mod.ts";
import type {
  Coordinator,
  CoordinatorCallOptions,
  InProcessTransport,
  KeyOptions,
  Store,
  StoreKeyPage,
  StoreListOptions,
  StoreRecord,
  StoreWriteOptions,
  Transport,
  Unsubscribe,
  WarpOptions,
} from "../mod.ts";
import { decodeMessage } from "../src/wire.ts";
import type { Message } from "../src/core/messages.ts";

/** Heartbeat period of the test clusters. */
export const HEARTBEAT_MS = 20;
/** Gap timeout of the test clusters. */
export const GAP_TIMEOUT_MS = 40;
/** maxStalenessMs of the `ev:*` keys. */
export const STALENESS_MS = 200;
/** leaseMs of the `st:*` keys. */
export const LEASE_MS = 200;
/** sessionMs of the test clusters' nodes. */
export const SESSION_MS = 300;

/**
 * The registrations every node of a test cluster has:
 * - `ev:*` eventual-distributed, entries live at most {@linkcode STALENESS_MS};
 * - `evl:*` eventual-distributed with a long staleness bound, so only messages (or a
 *   flush) can take an entry away within a test;
 * - `st:*` strong-distributed with a {@linkcode LEASE_MS} lease;
 * - `sl:*` strong-local.
 */
export const KEYS: Readonly<Record<string, KeyOptions>> = {
  "ev:*": { mode: "eventual-distributed", maxStalenessMs: STALENESS_MS },
  "evl:*": { mode: "eventual-distributed", maxStalenessMs: 60_000 },
  "st:*": { mode: "strong-distributed", leaseMs: LEASE_MS },
  "sl:*": { mode: "strong-local" },
};

/** A message a node's transport handed to the node. */
export interface Received {
  readonly subject: string;
  /** The decoded message, or `undefined` when it did not decode. */
  readonly message: Message | undefined;
}

/** What a test may change about a cluster. */
export interface ClusterOptions {
  /** Number of nodes, with ids and labels "a", "b", "c", ... @default {3} */
  readonly size?: number;
  /** Extra node options (timers, limits). */
  readonly node?: Partial<WarpOptions<unknown>>;
  /** Extra options of node `index` alone, over `node`. @default {none} */
  readonly nodeOf?: (index: number) => Partial<WarpOptions<unknown>>;
  /** The store node `index` uses, given the shared one. @default {the shared store} */
  readonly storeOf?: (index: number, shared: MemoryStore) => Store;
}

/** Three (or `size`) Warp nodes sharing a MemoryStore, a MemoryCoordinator and a bus. */
export class Cluster {
  readonly store: MemoryStore = new MemoryStore();
  readonly coordinator: MemoryCoordinator = new MemoryCoordinator();
  readonly bus: InProcessBus = new InProcessBus();
  /** Each node's bus endpoint, to cut it off with `disconnect()`. */
  readonly endpoints: InProcessTransport[] = [];
  /** Set `coordinatorCut[i]` to cut node `i` off from the (shared) coordinator. */
  readonly coordinatorCut: boolean[] = [];
  /** Each node's store (the shared one unless `storeOf` said otherwise). */
  readonly stores: Store[] = [];
  readonly nodes: Warp<unknown>[] = [];
  /** Every message each node received, in order. */
  readonly received: Received[][] = [];
  /** Every message routed on the bus (one per receiving endpoint), and whether it was lost. */
  readonly routed: { subject: string; type: string; from: string; to: string; lost: boolean }[] =
    [];
  /** Return true to lose a message on its way from `from` to `to` (labels). */
  lose: ((message: Message | undefined, from: string, to: string) => boolean) | undefined =
    undefined;

  constructor(options: ClusterOptions = {}) {
    const size = options.size ?? 3;
    this.bus.filter = (subject, data, from, to) => {
      const message = decodeMessage(data);
      const lost = this.lose?.(message, from.label, to.label) ?? false;
      this.routed.push({
        subject,
        type: message?.t ?? "malformed",
        from: from.label,
        to: to.label,
        lost,
      });
      return !lost;
    };
    for (let i = 0; i < size; i++) {
      const label = String.fromCharCode(97 + i);
      const endpoint = this.bus.connect({ label });
      const log: Received[] = [];
      const store = options.storeOf?.(i, this.store) ?? this.store;
      this.endpoints.push(endpoint);
      this.received.push(log);
      this.stores.push(store);
      this.coordinatorCut.push(false);
      const node = new Warp<unknown>({
        store,
        coordinator: new CuttableCoordinator(this.coordinator, () => this.coordinatorCut[i]!),
        transport: new SpyTransport(endpoint, log),
        nodeId: label,
        heartbeatIntervalMs: HEARTBEAT_MS,
        gapTimeoutMs: GAP_TIMEOUT_MS,
        sessionMs: SESSION_MS,
        ...options.node,
        ...options.nodeOf?.(i),
      });
      for (const [pattern, keyOptions] of Object.entries(KEYS)) node.register(pattern, keyOptions);
      this.nodes.push(node);
    }
  }

  /**
   * Resolves once every node's session is live (each has renewed it at least once), so
   * that distributed entries are cached from the first read; immediate without sessions.
   */
  async ready(): Promise<void> {
    if (this.nodes.some((n) => n.stats.sessionRenewals === 0)) {
      await waitFor(
        () => this.nodes.every((n) => n.stats.sessionRenewals > 0),
        "every node's session to be live",
      );
    }
  }

  /** Registers `pattern` on every node. */
  register(pattern: string, options: KeyOptions): void {
    for (const node of this.nodes) node.register(pattern, options);
  }

  /** How many messages of `type` (from node `from`, if given) node `index` received. */
  receivedCount(index: number, type: Message["t"], from?: string): number {
    return this.received[index]!.filter((r) =>
      r.message?.t === type && (from === undefined || r.message.from === from)
    ).length;
  }

  /** The value the shared store holds for `key`, decoded, and its version. */
  async stored(key: string): Promise<{ value: unknown; version: number }> {
    const record = await this.store.get(key);
    return {
      value: record.value === undefined
        ? undefined
        : JSON.parse(new TextDecoder().decode(record.value)),
      version: record.version,
    };
  }

  /** Closes every node, then every endpoint. */
  async close(): Promise<void> {
    this.coordinator.unavailable = false;
    this.coordinatorCut.fill(false);
    for (const node of this.nodes) await node.close();
    for (const endpoint of this.endpoints) await endpoint.close();
  }
}

/** A node's view of the shared coordinator, which a test can cut. */
class CuttableCoordinator implements Coordinator {
  readonly #inner: Coordinator;
  readonly #cut: () => boolean;

  constructor(inner: Coordinator, cut: () => boolean) {
    this.#inner = inner;
    this.#cut = cut;
  }

  #check(): void {
    if (this.#cut()) {
      throw new WarpError("COORDINATOR_UNAVAILABLE", "Coordinator cut off by the test");
    }
  }

  async get(key: string, options?: CoordinatorCallOptions) {
    this.#check();
    return await this.#inner.get(key, options);
  }

  async create(key: string, value: Uint8Array, options?: CoordinatorCallOptions) {
    this.#check();
    return await this.#inner.create(key, value, options);
  }

  async update(
    key: string,
    value: Uint8Array,
    revision: number,
    options?: CoordinatorCallOptions,
  ) {
    this.#check();
    return await this.#inner.update(key, value, revision, options);
  }

  async delete(key: string, revision?: number) {
    this.#check();
    return await this.#inner.delete(key, revision);
  }
}

/** A transport that records what it hands to its node. */
class SpyTransport implements Transport {
  readonly #inner: InProcessTransport;
  readonly #log: Received[];

  constructor(inner: InProcessTransport, log: Received[]) {
    this.#inner = inner;
    this.#log = log;
  }

  publish(subject: string, data: Uint8Array): void {
    this.#inner.publish(subject, data);
  }

  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe {
    return this.#inner.subscribe(subject, (data) => {
      this.#log.push({ subject, message: decodeMessage(data) });
      handler(data);
    });
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** A call to a {@linkcode GatedStore} held until released. */
export interface Hold {
  /** Resolves when the held call has taken effect in the inner store (and is now held). */
  readonly reached: Promise<void>;
  /** Lets the held call answer. */
  release(): void;
}

/**
 * A store over another whose chosen calls take effect at once but answer only when the
 * test releases them: a slow read that returns what it read earlier, or a write whose
 * acknowledgement is delayed.
 */
export class GatedStore implements Store {
  readonly #inner: Store;
  readonly #holds: { op: "get" | "set"; key: string; reached: () => void; gate: Promise<void> }[] =
    [];

  constructor(inner: Store) {
    this.#inner = inner;
  }

  /** Holds the next `op` of `key`. */
  hold(op: "get" | "set", key: string): Hold {
    let reached!: () => void;
    let release!: () => void;
    const reachedPromise = new Promise<void>((resolve) => reached = resolve);
    const gate = new Promise<void>((resolve) => release = resolve);
    this.#holds.push({ op, key, reached, gate });
    return { reached: reachedPromise, release };
  }

  async get(key: string): Promise<StoreRecord> {
    const hold = this.#take("get", key);
    const record = await this.#inner.get(key);
    if (hold !== undefined) {
      hold.reached();
      await hold.gate;
    }
    return record;
  }

  async set(key: string, value: Uint8Array, options?: StoreWriteOptions): Promise<number> {
    const hold = this.#take("set", key);
    const version = await this.#inner.set(key, value, options);
    if (hold !== undefined) {
      hold.reached();
      await hold.gate;
    }
    return version;
  }

  delete(key: string, options?: StoreWriteOptions): Promise<number> {
    return this.#inner.delete(key, options);
  }

  list(options?: StoreListOptions): Promise<StoreKeyPage> {
    return this.#inner.list(options);
  }

  #take(op: "get" | "set", key: string) {
    const i = this.#holds.findIndex((h) => h.op === op && h.key === key);
    return i < 0 ? undefined : this.#holds.splice(i, 1)[0];
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` every few milliseconds until it holds; throws naming `what` if it
 * does not within `timeoutMs` (generous, for a noisy machine).
 */
export async function waitFor(
  condition: () => boolean,
  what: string,
  timeoutMs = 5_000,
): Promise<void> {
  const start = performance.now();
  while (!condition()) {
    if (performance.now() - start > timeoutMs) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${what}`);
    }
    await sleep(2);
  }
}

/**
 * Asserts that `promise` rejects with a `WarpError` of `code`; returns the error.
 *
 * @example
 * ```ts
 * import { WarpError } from "../mod.ts";
 * import { rejectsWith } from "./_cluster.ts";
 * const error = await rejectsWith(Promise.reject(new WarpError("TIMEOUT", "late")), "TIMEOUT");
 * console.log(error.message); // "late"
 * ```
 */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<WarpError> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof WarpError, `Expected a WarpError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}
