/**
 * Private: the options and results of a {@linkcode Warp} node, and their checks. The
 * option and result types (`WarpOptions`, `WarpKeyOptions`, `WarpReadOptions`,
 * `SetOptions`, `GrantLeaseOptions`, `Loader`, `LoaderContext`, `ReadResult`,
 * `WarpStats`) are re-exported by `src/warp.ts` and `mod.ts`; the checks run before the
 * node builds or starts anything, so a refused call has no effect.
 *
 * Design: the types and their validation live together, beside the `Warp` class rather
 * than in it, so the façade reads as its methods and the option rules read in one place.
 * Rejected: validating inside the core (`src/core/`), which would make the pure state
 * machine throw for runtime-only options (codec, clock, loaders) it never sees.
 *
 * @module
 */

import type { Codec } from "./codec.ts";
import type { Coordinator } from "./coordinator.ts";
import type { AnswerSource, OpResult } from "./core/effects.ts";
import { isLeaseId, leaseListProblem } from "./core/leases.ts";
import type { NodeStats } from "./core/node.ts";
import type { ValidatorOptions } from "./core/_validator.ts";
import type { KeyOptions, ReadOptions } from "./core/registry.ts";
import type { Store } from "./store.ts";
import {
  checkKnownOptions,
  KEY_OPTION_NAMES,
  READ_OPTION_NAMES,
  SET_OPTION_NAMES,
  VALIDATOR_OPTION_NAMES,
  WARP_OPTION_NAMES,
} from "./_options.ts";
import type { Transport } from "./transport.ts";
import type { AuthOptions } from "./auth.ts";
import { TIMER_DELAY_MAX_MS } from "./_wake_timer.ts";
import { describe } from "./_describe.ts";
import { checkMethods, checkNodeId, checkNumbers, checkOptions, checkPrefix } from "./_check.ts";
import { RESERVED_NODE_IDS } from "./_subjects.ts";
import type { Logger } from "./observe.ts";
import type {
  CompareAndSetCounts,
  MessageType,
  ValidatorCheckResult,
  ValidatorKeyCount,
  WarpMetrics,
} from "./metrics.ts";
import type { Merge } from "./_update.ts";

/** The default `sessionMs` of a node with a coordinator. */
export const DEFAULT_SESSION_MS = 2000;

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
  /**
   * How values become bytes for the store: the default stores JSON values as JSON text and
   * round-trips `Date`, `BigInt`, `Map`, `Set`, `undefined` and `Uint8Array` too; pass
   * `jsonCodec` to accept plain JSON only. @default {structuredCodec}
   */
  readonly codec?: Codec<T>;
  /**
   * This node's id, unique in the cluster: 1 to 64 of `[A-Za-z0-9_-]`, not `all` (the
   * broadcast subject's name). @default {a random id}
   */
  readonly nodeId?: string;
  /**
   * Namespace of this cluster on the bus and in the coordinator: clusters with different
   * prefixes never see each other's messages or records, nested prefixes (`a`, `a.node`)
   * included. Dot-separated tokens of `[A-Za-z0-9_-]`, at most 128 characters. (The store
   * is shared data: keys in it are not prefixed.) @default {"warp"}
   */
  readonly prefix?: string;
  /**
   * The largest value `set` writes, in encoded bytes (the codec's output): a larger one
   * rejects with a `WarpError` of code `VALUE_TOO_LARGE` before anything happens. 1 to
   * {@linkcode VALUE_BYTES_LIMIT}. @default {8388608} (8 MiB)
   */
  readonly valueBytesMax?: number;
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
  /**
   * Most echoes one heartbeat carries (1 to 256): past this many peers, heartbeats stay
   * this size and eventual entries' freshness proofs lag by `⌈peers / echoesMax⌉`
   * heartbeat intervals (docs/operations.md, "Bus"). @default {32}
   */
  readonly echoesMax?: number;
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
  readonly keys?: Readonly<Record<string, WarpKeyOptions<T>>>;
  /**
   * How long one renewal of this node's session lasts (see `docs/protocol.md`). With a
   * session, distributed entries live to their TTL in a healthy cluster; the node renews
   * it with one coordinator compare-and-set (and one read) every `sessionMs / 3`, and a
   * strong write waits at most about `sessionMs` for a holder that stopped answering.
   * 0 turns sessions off: eventual entries then keep to `maxStalenessMs` and strong ones
   * to `leaseMs`. Needs a coordinator; without one, sessions are off.
   * @default {2000} with a coordinator
   */
  readonly sessionMs?: number;
  /**
   * The most a coordinator read may lag behind its state, ms: 0 for PostgreSQL or one NATS
   * server; set it for a replicated NATS KV, which may answer a read from an old leader
   * (see `docs/operations.md`). Only lease checks depend on it. @default {0}
   */
  readonly coordinatorStalenessMs?: number;
  /**
   * Authenticate bus messages with a cluster secret: every message this node publishes is
   * signed, and one received unsigned or badly signed is dropped and counted
   * (`unsignedMessages`, `badSignatures`). Every node of the cluster needs it. Without it,
   * whoever can publish on the prefix can forge messages (see `docs/operations.md`).
   * @default {undefined} messages are not signed
   */
  readonly auth?: AuthOptions;
  /**
   * Where events an operator should see are logged, each at its level (see
   * `docs/metrics.md`): pino's shape, `{ debug, info, warn, error }` taking
   * `(fields, message)`. @default {undefined} (nothing is logged)
   */
  readonly logger?: Logger;
  /**
   * Where this node reports its metrics: `OpenTelemetryMetrics` (`@warp/warp/otel`),
   * `PrometheusMetrics` (`@warp/warp/prometheus`), or your own. @default {noopMetrics}
   */
  readonly metrics?: WarpMetrics;
  /**
   * The background validator (see `docs/validator.md`): compares a sample of L1 entries
   * with the store by version — a share of the keys a delay after the invalidations this
   * node applies, and a few random entries a second — under a store-read budget, and
   * counts (`count`), reports with a `validator` event (`alert`) or repairs through a
   * versioned fill (`heal`) the differences that outlast their key's bound.
   * `warp.validatorReport()` has its figures. @default {undefined} (off)
   */
  readonly validator?: ValidatorOptions;
}

/**
 * What a loader is called with: the key, a signal aborted when Warp abandons the load (its
 * hard timeout, an invalidation that overtook it, `close()`), the stale value if this node
 * holds one, and two decisions about this entry.
 */
export interface LoaderContext<T> {
  /** The key to load. */
  readonly key: string;
  /** Aborted when Warp no longer wants this load: stop work, and pass it on (`fetch`). */
  readonly signal: AbortSignal;
  /**
   * The value this node holds for the key — expired, or due for a refresh, but never
   * invalidated or replaced — for a conditional fetch; `undefined` when there is none, or
   * it was an absence.
   */
  readonly stale: T | undefined;
  /** Caches this entry for `ms` instead of the call's or registration's `ttlMs`. */
  setTtl(ms: number): void;
  /**
   * Answers this value without caching it (and, for a store-backed key, without writing
   * it to the store).
   */
  skipCache(): void;
}

/**
 * The application's loader of a key: its value, or `undefined` for "not found", which is
 * an answer like any other (cached as an absence unless `skipCache()`). A loader that
 * throws or rejects fails the read with `LOADER_ERROR` (its error as `cause`), unless
 * fail-safe answers.
 */
export type Loader<T> = (context: LoaderContext<T>) => T | undefined | Promise<T | undefined>;

/**
 * Options of a registration (`register`, `keys`): the {@linkcode KeyOptions} of the core,
 * and for a loader-backed key (`origin: "loader"`) the loader `get`, `read` and
 * refresh-ahead use when a call names none.
 */
export interface WarpKeyOptions<T> extends KeyOptions {
  /** The loader of these keys. Only with `origin: "loader"`. @default {undefined} */
  readonly loader?: Loader<T>;
  /**
   * Merge on write: `set` of these keys then stores `merge(current, value)`, `current`
   * read from the store and the write conditional on its version (see `merges` and
   * `docs/updates.md`). Not with `origin: "loader"`. @default {undefined} plain writes
   */
  readonly merge?: Merge<T>;
}

/**
 * Options of one read (`get`, `read`, `readMany`, `getOrSet`): the key's registered read
 * settings overridden for this call, and a loader.
 */
export interface WarpReadOptions<T> extends ReadOptions {
  /**
   * The loader to call on a miss: for a loader-backed key in place of its registered one;
   * for a store-backed key, when the store has no value (then its result is written to
   * the store, unless it is not-found or `skipCache()`; `getOrSet`). @default {undefined}
   */
  readonly loader?: Loader<T>;
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

/** A read's full answer, with its status (lru-cache's per-call `status` is the precedent). */
export interface ReadResult<T> {
  /** Whether the key has a value. */
  readonly found: boolean;
  /** The value, when found. */
  readonly value: T | undefined;
  /** The store version of what was read (0: never written, or a loader-backed key). */
  readonly version: number;
  /**
   * Loader-backed keys: the invalidation epoch the value was loaded at (this node's count
   * of invalidations applied when its load started); 0 for store-backed keys.
   */
  readonly epoch: number;
  /**
   * Where the answer came from: `l1`, `store`, `loader` (the key's loader, or getOrSet's),
   * or `fallback` (fail-safe: a value past its freshness, see `stale`).
   */
  readonly source: Exclude<AnswerSource, "none">;
  /**
   * Whether the value is past its freshness (fail-safe after a store or loader failure, a
   * soft timeout). A stale answer is exempt from the staleness bound and linearizability,
   * never from the rest: it was never invalidated, replaced or revoked on this node.
   */
  readonly stale: boolean;
  /**
   * How much longer, at most, this node's L1 may serve this value, ms: its TTL left (an
   * invalidation, a lapsed session or the staleness bound may end it sooner). 0 for an
   * answer not cached, or stale.
   */
  readonly freshForMs: number;
}

/** Counters of a node. */
export interface WarpStats extends NodeStats {
  /** L1 entries held. */
  readonly entries: number;
  /** Approximate L1 bytes held. */
  readonly bytes: number;
  /** L1 entries evicted to respect `entriesMax` and `bytesMax`. */
  readonly evictions: number;
  /**
   * Bus messages this node received and did not act on: those that did not decode
   * (`malformedMessages`), and decoded ones the core refused or that arrived after
   * `close`. `messagesReceived + messagesDropped` is every message received.
   */
  readonly messagesDropped: number;
  /**
   * The part of `messagesDropped` that did not decode: malformed, foreign, another wire
   * version, over 24 576 bytes.
   */
  readonly malformedMessages: number;
  /**
   * Messages that arrived unsigned on a node with `auth`: dropped (part of
   * `messagesDropped`), or with `auth.acceptUnsigned` accepted and counted here only, so
   * that an operator sees when the last unsigned sender is gone.
   */
  readonly unsignedMessages: number;
  /** The part of `messagesDropped` whose tag matched none of the node's `auth.secrets`. */
  readonly badSignatures: number;
  /** Messages this node published, by type. */
  readonly messagesSentByType: Readonly<Record<MessageType, number>>;
  /** Messages this node received that decoded, by type. */
  readonly messagesReceivedByType: Readonly<Record<MessageType, number>>;
  /** Coordinator compare-and-sets (create, update) by result. */
  readonly compareAndSets: CompareAndSetCounts;
  /** Coordinator reads. */
  readonly coordinatorReads: number;
  /** Event listener or logger calls that threw (counted, never passed on). */
  readonly listenerErrors: number;
  /**
   * The background validator's checks by verdict (zeros when it is off; the full figures
   * are in `validatorReport()`).
   */
  readonly validatorChecks: Readonly<Record<ValidatorCheckResult, number>>;
  /**
   * The background validator's keys checked, of them those consistent within 1 s, 10 s and
   * 60 s of the check, and heals started (zeros when it is off).
   */
  readonly validatorKeys: Readonly<Record<ValidatorKeyCount, number>>;
}

/** The default of {@linkcode WarpOptions.valueBytesMax}: 8 MiB. */
export const VALUE_BYTES_MAX_DEFAULT = 8 * 1024 * 1024;

/**
 * The largest {@linkcode WarpOptions.valueBytesMax} accepted: 1 GiB, what a PostgreSQL
 * `bytea` holds. A store may refuse less (`PostgresStore`: 64 MiB).
 */
export const VALUE_BYTES_LIMIT = 1024 * 1024 * 1024;

/** What a loader decided about the entry it loads (through its context). */
export interface LoadDecisions {
  ttlMs: number | undefined;
  cache: boolean;
}

/** A loader bound to a caller operation, and what it decided in its latest load. */
export interface BoundLoader<T> {
  readonly loader: Loader<T>;
  readonly decisions: LoadDecisions;
}

/** A loader's TTL, validated when the loader sets it (the loader's call throws). */
export function checkLoaderTtl(ms: unknown): number {
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new TypeError(`Invalid ttlMs, expected a number of milliseconds: ${describe(ms)}`);
  }
  if (ms <= 0 || ms > LOADER_TTL_MAX_MS) {
    throw new RangeError(`ttlMs must be in (0, ${LOADER_TTL_MAX_MS}]: ${ms}`);
  }
  return ms;
}

export const LOADER_TTL_MAX_MS = 365 * 24 * 3600 * 1000;

/** The loader option of a read, checked; and the rest, for the core. */
export function splitReadOptions<T>(
  options: WarpReadOptions<T> | undefined,
): { loader: Loader<T> | undefined; core: ReadOptions | undefined } {
  checkOptions(options, "read options", true);
  if (options === undefined) return { loader: undefined, core: undefined };
  checkKnownOptions(options, READ_OPTIONS_WITH_LOADER, "a read");
  const { loader, ...core } = options as WarpReadOptions<T>;
  if (loader !== undefined && typeof loader !== "function") {
    throw new TypeError(`Invalid loader, expected a function: ${describe(loader)}`);
  }
  return { loader, core: Object.keys(core).length === 0 ? undefined : core };
}

/** The caller's view of a read's result. */
export function readResult<T>(result: OpResult): ReadResult<T> {
  return {
    found: result.found,
    value: result.value as T | undefined,
    version: result.version,
    epoch: result.epoch ?? 0,
    source: result.source === "none" ? "store" : result.source,
    stale: result.stale ?? false,
    freshForMs: result.freshForMs ?? 0,
  };
}

export const READ_OPTIONS_WITH_LOADER = [...READ_OPTION_NAMES, "loader"];

export const KEY_OPTIONS_WITH_LOADER = [...KEY_OPTION_NAMES, "loader", "merge"];

export const NUMBER_OPTIONS = [
  "entriesMax",
  "bytesMax",
  "maxDriftPpm",
  "heartbeatIntervalMs",
  "gapTimeoutMs",
  "ioTimeoutMs",
  "waitersMax",
  "opsMax",
  "peersMax",
  "echoesMax",
  "leaseCheckMs",
  "leaseTimeoutMs",
  "valueBytesMax",
] as const;

export function randomNodeId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}

export function checkLease(lease: unknown): asserts lease is string {
  if (!isLeaseId(lease)) {
    throw new TypeError(`Invalid lease id (grantLease makes them): ${describe(lease)}`);
  }
}

export function leaseOption(options: SetOptions | undefined): readonly string[] {
  checkOptions(options, "set options", true);
  if (options === undefined) return [];
  checkKnownOptions(options, SET_OPTION_NAMES, "set");
  const lease = (options as SetOptions).lease;
  if (lease === undefined) return [];
  const leases = typeof lease === "string" ? [lease] : lease;
  const problem = leaseListProblem(leases);
  if (problem !== undefined) throw new TypeError(`Invalid lease option: ${problem}`);
  return [...leases];
}

/** Checks every option of `new Warp` before anything is built; returns the resolved ones. */
export function checkWarpOptions<T>(options: WarpOptions<T>): {
  nodeId: string;
  prefix: string;
  ioTimeoutMs: number;
  valueBytesMax: number;
} {
  checkOptions(options, "options", false);
  checkKnownOptions(options, WARP_OPTION_NAMES, "new Warp");
  checkMethods(options.store, "store", ["get", "set", "delete", "list"]);
  if (options.transport !== undefined) {
    checkMethods(options.transport, "transport", ["publish", "subscribe", "close"]);
  }
  if (options.coordinator !== undefined) {
    checkMethods(options.coordinator, "coordinator", ["get", "create", "update", "delete"]);
  }
  if (options.codec !== undefined) checkMethods(options.codec, "codec", ["encode", "decode"]);
  if (options.logger !== undefined) {
    checkMethods(options.logger, "logger", ["debug", "info", "warn", "error"]);
  }
  if (options.metrics !== undefined) {
    checkMethods(options.metrics, "metrics", [
      "addNode",
      "removeNode",
      "recordInvalidationEcho",
      "recordOperation",
    ]);
  }
  if (options.clock !== undefined && typeof options.clock !== "function") {
    throw new TypeError(`Invalid clock, expected a function: ${describe(options.clock)}`);
  }
  checkNumbers(options as unknown as Record<string, unknown>, NUMBER_OPTIONS);
  const nodeId = options.nodeId ?? randomNodeId();
  checkNodeId(nodeId, RESERVED_NODE_IDS);
  const prefix = options.prefix ?? "warp";
  checkPrefix(prefix);
  const ioTimeoutMs = options.ioTimeoutMs ?? 10_000;
  if (!(ioTimeoutMs > 0 && ioTimeoutMs <= TIMER_DELAY_MAX_MS)) {
    throw new RangeError(`ioTimeoutMs must be in (0, ${TIMER_DELAY_MAX_MS}]: ${ioTimeoutMs}`);
  }
  const valueBytesMax = options.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;
  if (!Number.isSafeInteger(valueBytesMax) || valueBytesMax < 1) {
    throw new RangeError(`valueBytesMax must be a positive integer: ${valueBytesMax}`);
  }
  if (valueBytesMax > VALUE_BYTES_LIMIT) {
    throw new RangeError(`valueBytesMax must be at most ${VALUE_BYTES_LIMIT}: ${valueBytesMax}`);
  }
  return { nodeId, prefix, ioTimeoutMs, valueBytesMax };
}

/** The `validator` option, with unknown names refused as every option is (TypeError). */
export function checkValidator(options: ValidatorOptions): ValidatorOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid validator, expected an object: ${describe(options)}`);
  }
  checkKnownOptions(options, VALIDATOR_OPTION_NAMES, "validator");
  return options;
}
