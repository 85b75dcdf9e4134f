/**
 * The L1 cache: a bounded map from key to {@linkcode Entry}, evicting least recently used
 * entries when it holds more than `entriesMax` entries or `bytesMax` approximate bytes.
 *
 * The LRU list is intrusive (the entries are its links) so that a hit costs one `Map.get`
 * and a few pointer writes, and allocates nothing.
 *
 * @module
 */

import { assert } from "./errors.ts";
import type { OpResult } from "./effects.ts";
import type { KeyPolicy } from "./registry.ts";

/** Approximate bytes an entry costs beyond its value and key. */
export const ENTRY_OVERHEAD_BYTES = 96;

/**
 * Per-entry state of the features that act on hits (refresh-ahead, sliding TTL, the
 * access-frequency TTL; `_tuning.ts`). Entries of keys without them carry `undefined`, so
 * that their hits cost what they cost before these features existed.
 */
export interface EntryTuning {
  /** Local time the read or load that produced the entry was issued. */
  readonly askMs: number;
  /** The entry's TTL now (the access-frequency rule moves it). */
  ttlMs: number;
  /** The part of `freshUntilMs` that does not come from the TTL (a bound), or `Infinity`. */
  readonly capUntilMs: number;
  /** Local time of the latest hit. */
  lastHitMs: number;
  /** Local time from which a hit starts a background refresh; `Infinity`: none (left). */
  refreshAtMs: number;
  /** Local time from which a hit must go through the tuning step (`-Infinity`: every hit). */
  checkAtMs: number;
}

/** One cached key. Owned by {@linkcode L1Cache}; treat as read-only outside it. */
export interface Entry {
  /** The cached key. */
  readonly key: string;
  /** The decoded value; meaningless when `found` is false. */
  value: unknown;
  /** False for a cached absence (a deleted or never-written key). */
  found: boolean;
  /** The store's version of this value (0: never written, or loader-backed). */
  version: number;
  /** Loader-backed keys: the invalidation epoch its load started at; 0 otherwise. */
  epoch: number;
  /** Approximate bytes: value bytes + key + overhead. */
  sizeBytes: number;
  /** Local time from which this entry may no longer be served (its TTL, or a tighter bound). */
  freshUntilMs: number;
  /**
   * Local time until which it may be served without a freshness proof; past it and before
   * `freshUntilMs`, only under the node's proof (its session, see `NodeCore.hit`).
   * `Infinity` for entries that need none.
   */
  boundUntilMs: number;
  /**
   * Local time from which a hit leaves the fast path (`NodeCore.hit`): the earlier of
   * `boundUntilMs` and the tuning's `checkAtMs`. One comparison decides both.
   */
  checkAtMs: number;
  /** Refresh-ahead, sliding and access-frequency state, if the key's policy has any. */
  tuning: EntryTuning | undefined;
  /** The policy of the key, resolved when the entry was installed. */
  policy: KeyPolicy;
  /** The leases the value is attached to: served only while each is known active. */
  leases: readonly string[] | undefined;
  /** The previous entry in LRU order (towards the most recently used). */
  prev: Entry | undefined;
  /** The next entry in LRU order (towards the least recently used). */
  next: Entry | undefined;
}

/** What {@linkcode L1Cache.install} caches for a key. */
export interface EntryData {
  /** The decoded value; ignored when `found` is false. */
  readonly value: unknown;
  /** Whether the key has a value (false: a cached absence). */
  readonly found: boolean;
  /** The store version of the value (or of the absence). */
  readonly version: number;
  /** The encoded size in bytes. */
  readonly sizeBytes: number;
  /** The leases the value is attached to, if any. */
  readonly leases?: readonly string[] | undefined;
  /** Loader-backed keys: the invalidation epoch the load started at. @default {0} */
  readonly epoch?: number;
}

/**
 * A read's answer from `entry` at `nowMs`: served from L1 (`l1`, with the TTL it has left),
 * or a fail-safe `fallback`, flagged stale.
 *
 * @example
 * ```ts
 * import { entryAnswer, L1Cache } from "./l1.ts";
 * import { resolvePolicy } from "./registry.ts";
 * const l1 = new L1Cache({ entriesMax: 1, bytesMax: 1000 });
 * const policy = resolvePolicy("k", { mode: "strong-local" });
 * const entry = l1.install("k", { value: 1, found: true, version: 2, sizeBytes: 1 }, 100, policy)!;
 * console.log(entryAnswer(entry, 40, "l1").freshForMs, entryAnswer(entry, 40, "fallback").stale); // 60 true
 * ```
 */
export function entryAnswer(entry: Entry, nowMs: number, source: "l1" | "fallback"): OpResult {
  const stale = source === "fallback";
  return {
    found: entry.found,
    value: entry.value,
    version: entry.version,
    epoch: entry.epoch,
    source,
    stale,
    freshForMs: stale ? 0 : Math.max(0, entry.freshUntilMs - nowMs),
  };
}

/** Limits of an {@linkcode L1Cache}. */
export interface L1Limits {
  /** Most entries held. @default {10000} */
  readonly entriesMax: number;
  /** Most approximate bytes held. @default {67108864} (64 MiB) */
  readonly bytesMax: number;
}

/**
 * A bounded LRU map of entries.
 *
 * @example
 * ```ts
 * import { L1Cache } from "./l1.ts";
 * import { Registry } from "./registry.ts";
 * const registry = new Registry();
 * registry.register("user:*", { mode: "strong-local" });
 * const policy = registry.resolve("user:1");
 * const l1 = new L1Cache({ entriesMax: 2, bytesMax: 1_000_000 });
 * l1.install("user:1", { value: "ada", found: true, version: 1, sizeBytes: 3 }, 60_000, policy);
 * console.log(l1.get("user:1")?.value); // "ada"
 * ```
 */
export class L1Cache {
  readonly #map = new Map<string, Entry>();
  readonly #limits: L1Limits;
  #head: Entry | undefined;
  #tail: Entry | undefined;
  #bytes = 0;
  /** Entries evicted to respect the limits. */
  evictions = 0;

  /** Creates an empty cache with the given limits. */
  constructor(limits: L1Limits) {
    assert(limits.entriesMax >= 1 && limits.bytesMax >= 1, "L1 limits must be positive");
    this.#limits = limits;
  }

  /** Number of entries held. */
  get size(): number {
    return this.#map.size;
  }

  /** Approximate bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The entry of `key`, without touching recency. */
  get(key: string): Entry | undefined {
    return this.#map.get(key);
  }

  /** Marks `entry` most recently used. */
  touch(entry: Entry): void {
    if (this.#head === entry) return;
    this.#unlink(entry);
    this.#pushHead(entry);
  }

  /**
   * Installs or replaces the entry of `key` and evicts to respect the limits. A value
   * larger than `bytesMax` on its own is not cached; returns the entry, or `undefined`.
   */
  install(
    key: string,
    data: EntryData,
    freshUntilMs: number,
    policy: KeyPolicy,
    boundUntilMs = Infinity,
    tuning: EntryTuning | undefined = undefined,
  ): Entry | undefined {
    const sizeBytes = data.sizeBytes + key.length * 2 + ENTRY_OVERHEAD_BYTES;
    this.delete(key);
    if (sizeBytes > this.#limits.bytesMax) return undefined;
    const entry: Entry = {
      key,
      value: data.value,
      found: data.found,
      version: data.version,
      epoch: data.epoch ?? 0,
      sizeBytes,
      freshUntilMs,
      boundUntilMs,
      checkAtMs: tuning === undefined ? boundUntilMs : Math.min(boundUntilMs, tuning.checkAtMs),
      tuning,
      policy,
      leases: data.found && data.leases !== undefined && data.leases.length > 0
        ? data.leases
        : undefined,
      prev: undefined,
      next: undefined,
    };
    this.#map.set(key, entry);
    this.#pushHead(entry);
    this.#bytes += sizeBytes;
    while (this.#map.size > this.#limits.entriesMax || this.#bytes > this.#limits.bytesMax) {
      const victim = this.#tail;
      assert(victim !== undefined && victim !== entry, "L1 eviction found no victim");
      this.delete(victim.key);
      this.evictions++;
    }
    return entry;
  }

  /** Removes the entry of `key`; returns whether there was one. */
  delete(key: string): boolean {
    const entry = this.#map.get(key);
    if (entry === undefined) return false;
    this.#map.delete(key);
    this.#unlink(entry);
    this.#bytes -= entry.sizeBytes;
    assert(this.#bytes >= 0, `L1 byte count went negative: ${this.#bytes}`);
    return true;
  }

  /** Removes every entry for which `predicate` holds; returns how many. */
  deleteWhere(predicate: (entry: Entry) => boolean): number {
    let removed = 0;
    for (const entry of [...this.#map.values()]) {
      if (predicate(entry)) {
        this.delete(entry.key);
        removed++;
      }
    }
    return removed;
  }

  /** Every entry, most recently used first. */
  *entries(): IterableIterator<Entry> {
    for (let e = this.#head; e !== undefined; e = e.next) yield e;
  }

  #pushHead(entry: Entry): void {
    entry.prev = undefined;
    entry.next = this.#head;
    if (this.#head !== undefined) this.#head.prev = entry;
    this.#head = entry;
    if (this.#tail === undefined) this.#tail = entry;
  }

  #unlink(entry: Entry): void {
    if (entry.prev !== undefined) entry.prev.next = entry.next;
    else if (this.#head === entry) this.#head = entry.next;
    if (entry.next !== undefined) entry.next.prev = entry.prev;
    else if (this.#tail === entry) this.#tail = entry.prev;
    entry.prev = undefined;
    entry.next = undefined;
  }
}
