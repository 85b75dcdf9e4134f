/**
 * The Warp API: a node that serves reads from its L1 cache and keeps it consistent with
 * the other nodes of its cluster, over any {@linkcode Transport}, {@linkcode Store} and
 * {@linkcode Coordinator}. It drives the pure {@linkcode NodeCore}: it only turns the
 * core's effects into I/O and time.
 *
 * @module
 */

import type { Codec } from "./codec.ts";
import { structuredCodec } from "./structured_codec.ts";
import type { Coordinator } from "./coordinator.ts";
import { MemoryCoordinator } from "./coordinator/memory.ts";
import type {
  AnswerSource,
  CoordRecord,
  CoordRecordKind,
  Effect,
  LoadResult,
  OpResult,
} from "./core/effects.ts";
import { validateHolderRecord } from "./core/effects.ts";
import { isLeaseId, leaseListProblem, makeLeaseId, validateLeaseRecord } from "./core/leases.ts";
import { validateSessionsRecord } from "./core/_sessions.ts";
import { openEnvelope, sealEnvelope } from "./_lease_envelope.ts";
import { InvariantError, WarpError } from "./core/errors.ts";
import { NodeCore } from "./core/node.ts";
import type { NodeStats } from "./core/node.ts";
import type { ValidatorOptions, ValidatorReport } from "./core/_validator.ts";
import { auditSettings, runAudit } from "./_audit.ts";
import type { AuditedRecord, AuditOptions, AuditReport } from "./_audit.ts";
import { entryAnswer } from "./core/l1.ts";
import { readSettings, resolvePolicy } from "./core/registry.ts";
import type { KeyOptions, KeyPolicy, ReadOptions } from "./core/registry.ts";
import type { Store, StoreRecord } from "./store.ts";
import { STORE_GET_MANY_MAX } from "./store.ts";
import {
  BATCH_PARALLEL,
  batchLoader,
  checkBatchKeys,
  inParallel,
  type LoadMany,
  type ManyResult,
  settleMany,
} from "./_batch.ts";
import { checkNamespace, WarpNamespace } from "./_namespace.ts";
import {
  checkKnownOptions,
  KEY_OPTION_NAMES,
  READ_OPTION_NAMES,
  SET_OPTION_NAMES,
  VALIDATOR_OPTION_NAMES,
  WARP_OPTION_NAMES,
} from "./_options.ts";
import { registrationProblems } from "./core/_options.ts";
import type { Transport, Unsubscribe } from "./transport.ts";
import type { Message } from "./core/messages.ts";
import { decodeMessage, encodeMessage } from "./wire.ts";
import { type AuthOptions, MessageAuth, unsealUnchecked } from "./auth.ts";
import { TIMER_DELAY_MAX_MS, WakeTimer, withTimeout } from "./_wake_timer.ts";
import { describe, describeError } from "./_describe.ts";
import {
  checkKey,
  checkMethods,
  checkNodeId,
  checkNumbers,
  checkOptions,
  checkPrefix,
} from "./_check.ts";
import { clusterSubjects, RESERVED_NODE_IDS } from "./_subjects.ts";
import { Observer } from "./observe.ts";
import type { Logger, WarpEventType, WarpListener } from "./observe.ts";
import { noopMetrics, RuntimeCounters } from "./metrics.ts";
import type {
  CompareAndSetCounts,
  MessageType,
  OperationName,
  ValidatorCheckResult,
  WarpMetrics,
} from "./metrics.ts";
import type { Entry } from "./core/l1.ts";
import { checkUpdateOptions, mergeReducer, runUpdate } from "./_update.ts";
import type {
  CompareAndSetResult,
  Merge,
  StoredForUpdate,
  UpdateIo,
  UpdateOptions,
} from "./_update.ts";
import type { Reducer, UpdateResult } from "./core/update.ts";
import { runTransaction } from "./_transaction.ts";
import type { TransactionIo, TransactionResult, TransactionStep } from "./_transaction.ts";

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
}

/** The default of {@linkcode WarpOptions.valueBytesMax}: 8 MiB. */
export const VALUE_BYTES_MAX_DEFAULT = 8 * 1024 * 1024;

/**
 * The largest {@linkcode WarpOptions.valueBytesMax} accepted: 1 GiB, what a PostgreSQL
 * `bytea` holds. A store may refuse less (`PostgresStore`: 64 MiB).
 */
export const VALUE_BYTES_LIMIT = 1024 * 1024 * 1024;

/** A store record opened: codec bytes (`undefined`: no value), decoded value, leases. */
interface Stored {
  version: number;
  bytes: Uint8Array | undefined;
  value: unknown;
  leases: string[];
}

interface Pending {
  resolve(result: OpResult): void;
  reject(error: unknown): void;
}

/** What a loader decided about the entry it loads (through its context). */
interface LoadDecisions {
  ttlMs: number | undefined;
  cache: boolean;
}

/** A loader bound to a caller operation, and what it decided in its latest load. */
interface BoundLoader<T> {
  readonly loader: Loader<T>;
  readonly decisions: LoadDecisions;
}

/** A loader's TTL, validated when the loader sets it (the loader's call throws). */
function checkLoaderTtl(ms: unknown): number {
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new TypeError(`Invalid ttlMs, expected a number of milliseconds: ${describe(ms)}`);
  }
  if (ms <= 0 || ms > LOADER_TTL_MAX_MS) {
    throw new RangeError(`ttlMs must be in (0, ${LOADER_TTL_MAX_MS}]: ${ms}`);
  }
  return ms;
}

const LOADER_TTL_MAX_MS = 365 * 24 * 3600 * 1000;

/** The loader option of a read, checked; and the rest, for the core. */
function splitReadOptions<T>(
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
function readResult<T>(result: OpResult): ReadResult<T> {
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

const READ_OPTIONS_WITH_LOADER = [...READ_OPTION_NAMES, "loader"];
const KEY_OPTIONS_WITH_LOADER = [...KEY_OPTION_NAMES, "loader", "merge"];
const WARMUP_CONCURRENCY = 16;
/** Own invalidations remembered for timing their echo (the oldest is forgotten). */
const PUBLISHED_MAX = 1024;
const WARMUP_LIMIT_MAX = 1_000_000;
const NUMBER_OPTIONS = [
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
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** A revoke's nonce: 48 bits from the platform's cryptographic random source. */
function randomNonce(): number {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  let nonce = 0;
  for (const byte of bytes) nonce = nonce * 256 + byte;
  return nonce;
}

function randomNodeId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 16);
}

function checkLease(lease: unknown): asserts lease is string {
  if (!isLeaseId(lease)) {
    throw new TypeError(`Invalid lease id (grantLease makes them): ${describe(lease)}`);
  }
}

function leaseOption(options: SetOptions | undefined): readonly string[] {
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

function asWarpError(
  error: unknown,
  code: "STORE_ERROR" | "COORDINATOR_UNAVAILABLE",
  what: string,
): WarpError {
  if (error instanceof WarpError) return error;
  return new WarpError(code, `${what}: ${describeError(error)}`, {
    cause: error,
  });
}

/** Checks every option of `new Warp` before anything is built; returns the resolved ones. */
function checkWarpOptions<T>(options: WarpOptions<T>): {
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

/** Parallel `get`s of one `audit` batch, for a store without `getMany`. */
const AUDIT_GETS_MAX = 32;

/** The `validator` option, with unknown names refused as every option is (TypeError). */
function checkValidator(options: ValidatorOptions): ValidatorOptions {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid validator, expected an object: ${describe(options)}`);
  }
  checkKnownOptions(options, VALIDATOR_OPTION_NAMES, "validator");
  return options;
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
  readonly #valueBytesMax: number;
  readonly #allSubject: string;
  readonly #coordPrefix: string;
  readonly #nodeSubjectPrefix: string;
  readonly #pending = new Map<number, Pending>();
  /** The drift bound, as a fraction, that registrations are checked against. */
  readonly #drift: number;
  /** Store-backed getOrSet sequences in flight (read, load, write), one per key. */
  readonly #loading = new Map<string, Promise<ReadResult<T>>>();
  /** Registered loaders, by the pattern of their registration. */
  readonly #loaders = new Map<string, Loader<T>>();
  /** The loader (and its decisions) of each caller operation that may load. */
  readonly #opLoaders = new Map<number, BoundLoader<T>>();
  /** The abort controller of each load in flight, by the load's io. */
  readonly #loadControllers = new Map<number, AbortController>();
  /** Registered merges, by the pattern of their registration. */
  readonly #merges = new Map<string, Merge<T>>();
  /** The store read and conditional write that `update` and merged writes run on. */
  readonly #updateIo: UpdateIo<T> = {
    read: (key) =>
      this.#readStored(key).then((stored): StoredForUpdate<T> => ({
        found: stored.bytes !== undefined,
        value: stored.value as T | undefined,
        version: stored.version,
        leases: stored.leases,
      })),
    write: (key, value, expectedVersion, leases) =>
      this.#writeAt(key, value, expectedVersion, leases),
  };
  /** The loader of the call being stepped, for a refresh-ahead its hit starts. */
  #loaderInScope: Loader<T> | undefined;
  /** While a batch step runs: the store reads it produced, performed together after it. */
  #readBatch: { io: number; key: string }[] | undefined;
  readonly #unsubscribes: Unsubscribe[] = [];
  #nextOp = 1;
  readonly #timer: WakeTimer;
  #malformed = 0;
  readonly #auth: MessageAuth | undefined;
  #unsigned = 0;
  #badSignatures = 0;
  /** Listeners and logger; `undefined` while there are none (the hit path checks it). */
  #observer: Observer | undefined;
  /** Where durations go; `undefined` for none (no clock read for them). */
  readonly #metrics: WarpMetrics | undefined;
  readonly #counters = new RuntimeCounters();
  /** With metrics: when this node published each of its recent `inv`/`drop`, by seq. */
  readonly #published = new Map<number, number>();
  #failure: Error | undefined;
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
    this.#transport = transport;
    this.#coordinator = coordinator ??
      (transport === undefined ? new MemoryCoordinator() : undefined);
    this.#codec = options.codec ?? (structuredCodec as Codec<T>);
    this.#clock = options.clock ?? (() => performance.now());
    this.#timer = new WakeTimer(
      this.#clock,
      () => this.#step(() => this.#core.tick(this.#clock())),
    );
    this.#ioTimeoutMs = ioTimeoutMs;
    this.#valueBytesMax = valueBytesMax;
    this.#auth = options.auth === undefined ? undefined : new MessageAuth(options.auth, prefix);
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
    this.#drift = (options.maxDriftPpm ?? 500) / 1e6;
    const keys = options.keys ?? {};
    if (typeof keys !== "object" || keys === null || Array.isArray(keys)) {
      throw new TypeError(`Invalid keys, expected an object of registrations: ${String(keys)}`);
    }
    for (const [pattern, keyOptions] of Object.entries(keys)) this.register(pattern, keyOptions);
    this.#coordPrefix = `${prefix}/`;
    const subjects = clusterSubjects(prefix);
    this.#allSubject = subjects.broadcast;
    this.#nodeSubjectPrefix = subjects.direct("");
    if (transport !== undefined) {
      const onData = (data: Uint8Array) => this.#onBusData(data);
      try {
        this.#unsubscribes.push(transport.subscribe(this.#allSubject, onData));
        this.#unsubscribes.push(transport.subscribe(subjects.direct(nodeId), onData));
      } catch (error) {
        for (const unsubscribe of this.#unsubscribes) unsubscribe(); // no half-joined node
        throw error;
      }
    }
    if (this.#observer !== undefined) this.#core.observe(this.#observer.level);
    this.#step(() => this.#core.tick(this.#clock()));
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
    const observer = this.#observer ??= new Observer(undefined);
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
    const observer = this.#observer ??= new Observer(undefined);
    observer.off(type, listener);
    this.#core.observe(observer.level);
  }

  /** The L1 entry the core serves for `key` now, if any (a hit), its events handed on. */
  #hit(key: string): Entry | undefined {
    const entry = this.#core.hit(key, this.#clock());
    if (this.#observer !== undefined) this.#emitCoreEvents(this.#observer);
    return entry;
  }

  #emitCoreEvents(observer: Observer): void {
    const events = this.#core.takeEvents();
    if (events.length > 0) observer.emitCore(events);
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
      return this.#registerMerge(pattern, options);
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
    if (this.#observer !== undefined) this.#emitCoreEvents(this.#observer);
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
    if (this.#core.effectsPending) this.#step(() => {});
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
    if (policy?.origin === "loader") return await this.#readLoaded(key, policy, loader, core);
    if (loader === undefined) {
      return readResult(
        await this.#run((op, now) => this.#core.get(op, key, now, core), "read"),
      );
    }
    const entry = this.#hit(key);
    if (entry?.found) {
      if (entry.tuning !== undefined) this.#afterHit();
      return readResult(entryAnswer(entry, this.#clock(), "l1"));
    }
    const loading = this.#loading.get(key);
    if (loading !== undefined) return await loading;
    const sequence = this.#readOrLoad(key, loader, core).finally(() => this.#loading.delete(key));
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
      const core = this.#batchReadOptions(keys, options);
      return Promise.all(
        this.#startReads(keys, core, (policy) => this.#loaders.get(policy.pattern)),
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
    const core = this.#batchReadOptions(keys, options);
    const loaderOf = (policy: KeyPolicy) => this.#loaders.get(policy.pattern);
    return settleMany(keys, await this.#readAll(keys, core, loaderOf));
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
    const core = this.#batchReadOptions(keys, options);
    const settled: PromiseSettledResult<ReadResult<T>>[] = new Array(keys.length);
    // 1. Store-backed keys are read (together); loader-backed ones answer from L1 if they can.
    const stored: number[] = [];
    const toLoad: { index: number; stored: ReadResult<T> | undefined }[] = [];
    keys.forEach((key, index) => {
      if (this.#core.policyOf(key)?.origin !== "loader") stored.push(index);
      else toLoad.push({ index, stored: undefined });
    });
    const reads = await this.#readAll(stored.map((i) => keys[i]!), core, () => undefined);
    reads.forEach((read, j) => {
      const index = stored[j]!;
      if (read.status === "fulfilled" && !read.value.found && read.value.source !== "fallback") {
        toLoad.push({ index, stored: read.value });
      } else settled[index] = read;
    });
    // 2. Every miss loads in one step: one loadMany call.
    const loader = batchLoader(loadMany);
    const bounds = new Map<number, BoundLoader<T>>();
    const loads = this.#startBatch(toLoad.map(({ index }) => keys[index]!), (op, key, now, i) => {
      const bound = { loader, decisions: { ttlMs: undefined, cache: true } };
      bounds.set(i, bound);
      this.#opLoaders.set(op, bound);
      if (toLoad[i]!.stored === undefined) this.#core.get(op, key, now, core);
      else this.#core.load(op, key, now, core);
    }, loader);
    // 3. Store-backed values loaded are written, each conditionally on the version read.
    await inParallel(toLoad, BATCH_PARALLEL, async ({ index, stored: read }, i) => {
      try {
        const load = await loads[i]!;
        settled[index] = {
          status: "fulfilled",
          value: read === undefined
            ? load
            : await this.#storeLoaded(keys[index]!, read, load, bounds.get(i)!.decisions, core),
        };
      } catch (reason) {
        settled[index] = { status: "rejected", reason };
      }
    });
    return settleMany(keys, settled);
  }

  /** A batch's read options, checked against every key's registration (misuse throws). */
  #batchReadOptions(keys: readonly string[], options: unknown): ReadOptions | undefined {
    const { loader, core } = splitReadOptions(options as WarpReadOptions<T> | undefined);
    if (loader !== undefined) {
      throw new TypeError("Invalid option loader of a batch: getOrSetMany takes a loadMany");
    }
    if (core === undefined) return undefined;
    for (const key of keys) {
      const policy = this.#core.policyOf(key);
      if (policy !== undefined) readSettings(policy, core);
    }
    return core;
  }

  /**
   * Reads every key (see `#startReads`): in one step when the store has `getMany`, else
   * at most {@linkcode BATCH_PARALLEL} store reads in flight.
   */
  async #readAll(
    keys: readonly string[],
    core: ReadOptions | undefined,
    loaderOf: (policy: KeyPolicy) => Loader<T> | undefined,
  ): Promise<PromiseSettledResult<ReadResult<T>>[]> {
    if (this.#store.getMany !== undefined) {
      return await Promise.allSettled(this.#startReads(keys, core, loaderOf));
    }
    const settled: PromiseSettledResult<ReadResult<T>>[] = new Array(keys.length);
    await inParallel(keys, BATCH_PARALLEL, async (key, i) => {
      const [reading] = this.#startReads([key], core, loaderOf);
      settled[i] = (await Promise.allSettled([reading!]))[0]!;
    });
    return settled;
  }

  /**
   * Starts a read of every key in one driver step, each as `get` starts it (a hit answers
   * at once), so the store reads they need go out together. A loader-backed key loads with
   * `loaderOf` its registration; without one, only L1 can answer it (a TypeError).
   */
  #startReads(
    keys: readonly string[],
    core: ReadOptions | undefined,
    loaderOf: (policy: KeyPolicy) => Loader<T> | undefined,
  ): Promise<ReadResult<T>>[] {
    return this.#startBatch(keys, (op, key, now) => {
      const policy = this.#core.policyOf(key);
      if (policy?.origin === "loader") {
        const loader = loaderOf(policy);
        if (loader === undefined && this.#core.hit(key, now) === undefined) {
          throw new TypeError(
            `Key is loader-backed and its registration has no loader, pass one (getOrSetMany): ${
              describe(key)
            }`,
          );
        }
        if (loader !== undefined) {
          this.#opLoaders.set(op, { loader, decisions: { ttlMs: undefined, cache: true } });
        }
      }
      this.#core.get(op, key, now, core);
    });
  }

  /**
   * Starts one caller operation per key in a single step, with `start`; the store reads
   * the step produces are performed together (`#storeGetMany`). A `start` that throws
   * fails its key alone (its operation never began). Returns one promise per key.
   */
  #startBatch(
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
      this.#step(() => {
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

  /**
   * Reads a loader-backed key: the core loads it on a miss with `loader`, or the key's
   * registered one. Without either, only L1 can answer (a TypeError otherwise).
   */
  async #readLoaded(
    key: string,
    policy: KeyPolicy,
    loader: Loader<T> | undefined,
    core: ReadOptions | undefined,
  ): Promise<ReadResult<T>> {
    const chosen = loader ?? this.#loaders.get(policy.pattern);
    if (chosen === undefined) {
      const entry = this.#hit(key);
      if (entry !== undefined) return readResult(entryAnswer(entry, this.#clock(), "l1"));
      throw new TypeError(
        `Key is loader-backed and its registration has no loader, pass one (getOrSet): ${
          describe(key)
        }`,
      );
    }
    const bound = { loader: chosen, decisions: { ttlMs: undefined, cache: true } };
    let reading: Promise<OpResult>;
    this.#loaderInScope = chosen; // a hit in this step may start a refresh-ahead
    try {
      reading = this.#run((op, now) => {
        this.#opLoaders.set(op, bound);
        this.#core.get(op, key, now, core);
      }, "read");
    } finally {
      this.#loaderInScope = undefined;
    }
    return readResult(await reading);
  }

  /**
   * getOrSet of a store-backed key: read it; if the store has no value, run `loader` (in
   * the core, under its hard timeout) and write what it returns, conditionally on the
   * version the read found — a node that lost that race answers the winner's value. A
   * not-found, or `skipCache()`, writes nothing.
   */
  async #readOrLoad(
    key: string,
    loader: Loader<T>,
    core: ReadOptions | undefined,
  ): Promise<ReadResult<T>> {
    const read = readResult<T>(
      await this.#run((op, now) => this.#core.get(op, key, now, core), "read"),
    );
    if (read.found || read.source === "fallback") return read;
    const bound = { loader, decisions: { ttlMs: undefined, cache: true } };
    const load = readResult<T>(
      await this.#run((op, now) => {
        this.#opLoaders.set(op, bound);
        this.#core.load(op, key, now, core);
      }, "load"),
    );
    return await this.#storeLoaded(key, read, load, bound.decisions, core);
  }

  /**
   * getOrSet's write of a loaded value of a store-backed key: conditionally on the version
   * `read` found, unless it is not-found or `skipCache()`. A node that lost the race reads
   * the winner's value.
   */
  async #storeLoaded(
    key: string,
    read: ReadResult<T>,
    load: ReadResult<T>,
    decisions: LoadDecisions,
    core: ReadOptions | undefined,
  ): Promise<ReadResult<T>> {
    const { ttlMs, cache } = decisions;
    if (!load.found || !cache) return { ...load, version: read.version };
    const encoded = this.#encode(key, load.value as T);
    const input = {
      value: load.value,
      payload: sealEnvelope(encoded, []),
      sizeBytes: encoded.byteLength,
      expectedVersion: read.version,
      ...(ttlMs !== undefined ? { ttlMs } : core?.ttlMs !== undefined && { ttlMs: core.ttlMs }),
    };
    try {
      const written = await this.#run((op, now) => this.#core.set(op, key, input, now), "write");
      const entry = this.#core.inspect(key);
      const fresh = entry?.version === written.version ? entry.freshUntilMs - this.#clock() : 0;
      return { ...load, version: written.version, freshForMs: Math.max(0, fresh) };
    } catch (error) {
      if (!(error instanceof WarpError) || error.code !== "STORE_CONFLICT") throw error;
      return readResult(
        await this.#run((op, now) => this.#core.get(op, key, now, core), "read"),
      );
    }
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
    if (this.#observer !== undefined) this.#emitCoreEvents(this.#observer);
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
    const merge = this.#mergeOf(key);
    if (merge !== undefined) return await this.#setMerged(key, merge, value, leases);
    const encoded = this.#encode(key, value);
    // L1 keeps its own decoded copy, so the caller mutating `value` later changes nothing.
    const copy = this.#codec.decode(encoded);
    const input = {
      value: copy,
      payload: sealEnvelope(encoded, leases),
      sizeBytes: encoded.byteLength,
      ...(leases.length > 0 && { leases }),
    };
    const result = await this.#run((op, now) => this.#core.set(op, key, input, now), "write");
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
    await this.#run((op, now) => this.#core.grantLease(op, id, now), "lease");
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
    await this.#run((op, now) => this.#core.keepAliveLease(op, lease, now), "lease");
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
    await this.#run((op, now) => this.#core.revokeLease(op, lease, now), "lease");
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
        const result = await this.#run((op, now) => this.#core.set(op, key, input, now), "write");
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
      return runUpdate(this.#updateIo, key, reducer, checkUpdateOptions(options));
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
      return { status: "ok", version: await this.#writeAt(key, value, expectedVersion, []) };
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
      return runTransaction(this.#transactionIo(), steps);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #transactionIo(): TransactionIo<T> {
    const store = this.#store;
    return {
      policyOf: (key) => this.#core.policyOf(key),
      merges: (key) => this.#mergeOf(key) !== undefined,
      encode: (key, value) => sealEnvelope(this.#encode(key, value), []),
      transact: store.transact === undefined ? undefined : (steps) =>
        withTimeout(
          () => store.transact!(steps),
          this.#ioTimeoutMs,
          timeoutAfter(this.#ioTimeoutMs, `Store transaction of ${steps.length} keys`),
        ),
      committed: (key, version) => {
        const input = {
          value: undefined,
          payload: undefined,
          sizeBytes: 0,
          committedVersion: version,
        };
        return this.#run((op, now) => this.#core.set(op, key, input, now));
      },
      prepareStrong: async (keys) => {
        let handle = 0;
        const result = await this.#run((op, now) => {
          handle = op;
          this.#core.prepareTransaction(op, keys, now);
        }, "write");
        return { handle, versions: result.value as number[] };
      },
      finishStrong: (handle, outcome) =>
        this.#step(() => this.#core.finishTransaction(handle, outcome, this.#clock())),
    };
  }

  /** A conditional write through the core (every mode's protocol, strong included). */
  async #writeAt(
    key: string,
    value: T,
    expectedVersion: number,
    leases: readonly string[],
  ): Promise<number> {
    const encoded = this.#encode(key, value);
    const input = {
      value: this.#codec.decode(encoded),
      payload: sealEnvelope(encoded, leases),
      sizeBytes: encoded.byteLength,
      ...(leases.length > 0 && { leases }),
      expectedVersion,
    };
    const result = await this.#run((op, now) => this.#core.set(op, key, input, now));
    return result.version;
  }

  #registerMerge(pattern: string, options: WarpKeyOptions<T>): KeyPolicy {
    const { merge, ...rest } = options;
    if (typeof merge !== "function") {
      throw new TypeError(`Invalid merge of ${describe(pattern)}: ${describe(merge)}`);
    }
    if (rest.origin === "loader") {
      throw new TypeError(
        `A loader-backed key is never written to the store, so it cannot merge: ${
          describe(pattern)
        }`,
      );
    }
    const policy = this.#core.register(pattern, rest);
    this.#merges.set(pattern, merge);
    return policy;
  }

  #mergeOf(key: string): Merge<T> | undefined {
    if (this.#merges.size === 0) return undefined;
    const policy = this.#core.policyOf(key);
    return policy === undefined ? undefined : this.#merges.get(policy.pattern);
  }

  /** A `set` of a key with a merge: an update whose reducer is `merge(current, value)`. */
  async #setMerged(
    key: string,
    merge: Merge<T>,
    value: T,
    leases: readonly string[],
  ): Promise<number> {
    const result = await runUpdate(
      this.#updateIo,
      key,
      mergeReducer(merge, value),
      {},
      leases.length > 0 ? leases : undefined,
    );
    if (result.status === "ok") return result.version;
    throw new WarpError(
      "STORE_CONFLICT",
      `Merged write of ${describe(key)} lost the race ${result.attempts} times`,
    );
  }

  /** Encodes `value` within `valueBytesMax`; throws before any effect otherwise. */
  #encode(key: string, value: T): Uint8Array {
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
    const result = await this.#run((op, now) => this.#core.delete(op, key, now), "delete");
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
    await this.#run((op, now) => this.#core.invalidate(op, key, now), "invalidate");
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
    const result = await this.#run((op, now) => this.#core.clear(op, name, now));
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
        this.#loaderInScope = loader;
        try {
          this.#afterHit();
        } finally {
          this.#loaderInScope = undefined;
        }
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
    let list: string[];
    if (Array.isArray(keys)) {
      list = [...keys];
      for (const key of list) checkKey(key);
    } else {
      if (typeof keys !== "object" || keys === null) {
        throw new TypeError(
          `Invalid warmup argument, expected an array of keys or { prefix }: ${describe(keys)}`,
        );
      }
      const { prefix, limit = 10_000 } = keys as { prefix: unknown; limit?: unknown };
      // An empty prefix lists every key; otherwise it must be a storable key start.
      if (prefix !== "") checkKey(prefix, "warmup prefix");
      if (
        typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1 ||
        limit > WARMUP_LIMIT_MAX
      ) {
        throw new RangeError(
          `Invalid limit, expected 1 to ${WARMUP_LIMIT_MAX}: ${describe(limit)}`,
        );
      }
      list = [];
      let cursor: string | undefined;
      do {
        const listOptions = {
          prefix,
          limit: Math.min(1000, limit - list.length),
          ...(cursor !== undefined && { cursor }),
        };
        const page = await withTimeout(
          () => this.#store.list(listOptions),
          this.#ioTimeoutMs,
          timeoutAfter(this.#ioTimeoutMs, `Store list of ${describe(prefix)}`),
        ).catch((error) => {
          throw asWarpError(error, "STORE_ERROR", `Store list of ${describe(prefix)} failed`);
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
    // Without getMany, a batch is that many parallel gets: keep it small.
    const batchMax = this.#store.getMany === undefined ? AUDIT_GETS_MAX : STORE_GET_MANY_MAX;
    return await runAudit(entries, (keys) => this.#auditRead(keys), settings, batchMax);
  }

  /** The store's version of each of `keys` for `audit` (`undefined`: its read failed). */
  async #auditRead(keys: readonly string[]): Promise<AuditedRecord[]> {
    const store = this.#store;
    const open = (record: StoreRecord): AuditedRecord => ({
      version: record.version,
      found: record.value !== undefined,
    });
    if (store.getMany !== undefined && keys.length > 1) {
      const what = `Store read of ${keys.length} keys`;
      try {
        const records = await withTimeout(
          () => store.getMany!(keys),
          this.#ioTimeoutMs,
          timeoutAfter(this.#ioTimeoutMs, what),
        );
        if (Array.isArray(records) && records.length === keys.length) return records.map(open);
      } catch {
        // Counted below as errors, key by key.
      }
      return keys.map(() => undefined);
    }
    return await Promise.all(keys.map(async (key) => {
      try {
        return open(
          await withTimeout(
            () => store.get(key),
            this.#ioTimeoutMs,
            timeoutAfter(this.#ioTimeoutMs, `Store read of ${key}`),
          ),
        );
      } catch {
        return undefined;
      }
    }));
  }

  /** Counters of this node. */
  get stats(): WarpStats {
    return {
      ...this.#core.stats,
      entries: this.#core.l1Size,
      bytes: this.#core.l1Bytes,
      evictions: this.#core.l1Evictions,
      messagesDropped: this.#core.stats.messagesDropped + this.#malformed + this.#badSignatures +
        (this.#auth?.acceptsUnsigned ? 0 : this.#unsigned),
      malformedMessages: this.#malformed,
      unsignedMessages: this.#unsigned,
      badSignatures: this.#badSignatures,
      ...this.#counters.snapshot(),
      listenerErrors: this.#observer?.errors ?? 0,
      validatorChecks: validatorChecks(this.#core.validatorReport()),
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
      this.#metrics?.removeNode(this);
      await Promise.resolve();
    })();
    return this.#closing;
  }

  // ------------------------------------------------------------------ driver

  #run(
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
      this.#step(() => start(op, this.#clock()));
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
        metrics.recordOperation(this.nodeId, operation, outcome, (this.#clock() - startMs) / 1000);
      } catch {
        // a metrics adapter that throws must not fail the operation it measured
      }
    };
    promise.then(() => record("ok"), () => record("error"));
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
    if (this.#observer !== undefined) this.#emitCoreEvents(this.#observer);
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
    this.#observer?.emit({ type: "node-failed", error });
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
    let bytes = data;
    if (this.#auth === undefined) {
      bytes = unsealUnchecked(data);
    } else {
      const opened = this.#auth.open(data);
      if (!opened.ok) {
        if (opened.why === "unsigned") this.#unsigned++;
        else this.#badSignatures++;
        return;
      }
      if (!opened.signed) this.#unsigned++;
      bytes = opened.bytes;
    }
    const message = decodeMessage(bytes);
    if (message === undefined) {
      this.#malformed++;
      return;
    }
    this.#counters.received(message.t);
    if (this.#metrics !== undefined) this.#echoHeard(message, this.#metrics);
    this.#step(() => this.#core.onMessage(message, this.#clock()));
  }

  /** A message's bytes for the bus: encoded, and signed when the cluster has a secret. */
  #busBytes(message: Message): Uint8Array {
    const bytes = encodeMessage(message);
    return this.#auth === undefined ? bytes : this.#auth.seal(bytes);
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
        this.#counters.sent(effect.message.t);
        if (this.#metrics !== undefined) this.#publishing(effect.message);
        this.#transport?.publish(this.#allSubject, this.#busBytes(effect.message));
        return;
      case "send":
        this.#counters.sent(effect.message.t);
        this.#transport?.publish(
          this.#nodeSubjectPrefix + effect.to,
          this.#busBytes(effect.message),
        );
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
        this.#observer?.emit({ type: "loader-error", key, error });
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
      const encoded = this.#encode(key, value);
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
    this.#step(() => this.#core.onLoad(io, result, this.#clock()));
  }

  /** The registered loader of `key`'s registration, if any. */
  #registeredLoader(key: string): Loader<T> | undefined {
    const policy = this.#core.policyOf(key);
    return policy === undefined ? undefined : this.#loaders.get(policy.pattern);
  }

  #storeGet(io: number, key: string): void {
    this.#readStored(key).then(
      (stored) => this.#reportStored(io, stored),
      (error: WarpError) => {
        this.#step(() => this.#core.onStoreRead(io, { ok: false, error }, this.#clock()));
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
    this.#step(() => this.#core.onStoreRead(io, result, this.#clock()));
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
                this.#step(() =>
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
              this.#step(() =>
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
  async #readStored(key: string): Promise<Stored> {
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
          this.#step(() => this.#core.onStoreWrite(io, { ok: true, version }, this.#clock())),
        (error) => {
          const failure = this.#ioFailure(
            asWarpError(error, "STORE_ERROR", `Store write of ${describe(key)} failed`),
            "store-write",
            key,
          );
          this.#step(() =>
            this.#core.onStoreWrite(io, { ok: false, error: failure }, this.#clock())
          );
        },
      );
  }

  /** Notes when an own `inv` or `drop` is published, to time its echo (at most 1024 kept). */
  #publishing(message: Message): void {
    if (message.t !== "inv" && message.t !== "drop") return;
    const published = this.#published;
    if (published.size >= PUBLISHED_MAX) published.delete(published.keys().next().value!);
    published.set(message.seq, this.#clock());
  }

  /** An own `inv` or `drop` came back from the bus: reports how long after publishing. */
  #echoHeard(message: Message, metrics: WarpMetrics): void {
    if (message.t !== "inv" && message.t !== "drop") return;
    if (message.from !== this.nodeId || message.inc !== this.#core.incarnation) return;
    const publishedMs = this.#published.get(message.seq);
    if (publishedMs === undefined) return;
    this.#published.delete(message.seq);
    const seconds = (this.#clock() - publishedMs) / 1000;
    try {
      metrics.recordInvalidationEcho(this.nodeId, message.t, seconds);
    } catch {
      // a metrics adapter that throws must not break the bus path
    }
  }

  /** An I/O call failed with `failure`: past its deadline, that is a `timeout` event. */
  #ioFailure(
    failure: WarpError,
    operation: "store-read" | "store-write" | "coordinator-read" | "coordinator-write",
    key: string,
  ): WarpError {
    if (failure.code === "TIMEOUT" && this.#observer !== undefined) {
      this.#observer.emit({ type: "timeout", operation, key, timeoutMs: this.#ioTimeoutMs });
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
            this.#step(() => this.#core.onCoordRead(io, { ok: false, error }, this.#clock()));
            return;
          }
        }
        const result = { ok: true as const, record, revision: entry?.revision ?? 0 };
        this.#step(() => this.#core.onCoordRead(io, result, this.#clock()));
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
        this.#step(() => this.#core.onCoordRead(io, { ok: false, error: failure }, this.#clock()));
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
        this.#step(() =>
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
        this.#step(() => this.#core.onCoordWrite(io, result, this.#clock()));
      },
    );
  }
}
