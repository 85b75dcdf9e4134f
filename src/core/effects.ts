/**
 * What a {@linkcode NodeCore} asks its driver to do, and what the driver reports back.
 *
 * @module
 */

import type { WarpError } from "./errors.ts";
import type { LeaseRecord } from "./leases.ts";
import type { Message, NodeId } from "./messages.ts";
import type { SessionsRecord } from "./_sessions.ts";

/**
 * The coordinator record of a strong-distributed key (`strong/<key>`): who may cache it,
 * and whether a write is in progress.
 */
export interface HolderRecord {
  /** The node ids registered as holders; a writer must revoke each one. */
  readonly holders: readonly NodeId[];
  /** The writer holding the key's write slot (`nodeId/incarnation/writeId`), if any. */
  readonly pending: string | undefined;
  /** The version of the last write committed through this record, if known. */
  readonly version: number | undefined;
}

/**
 * The kinds of coordinator record: a strong key's holder record, a lease record, and the
 * cluster's sessions record. A `coord-get` names the kind so the driver decodes and
 * validates the content as such.
 */
export type CoordRecordKind = "holder" | "lease" | "sessions";

/** A coordinator record of any kind. */
export type CoordRecord = HolderRecord | LeaseRecord | SessionsRecord;

/** An effect: something the driver must perform for the core. */
export type Effect =
  /** Publish `message` to every node (the sender included). */
  | { readonly type: "broadcast"; readonly message: Message }
  /** Send `message` to node `to`. */
  | { readonly type: "send"; readonly to: NodeId; readonly message: Message }
  /**
   * Read `key` from the store; report with `onStoreRead(io, …)`. `origin` is `validator`
   * for the background validator's reads and its heals (`_validator.ts`), absent otherwise:
   * a driver performs both alike.
   */
  | {
    readonly type: "store-get";
    readonly io: number;
    readonly key: string;
    readonly origin?: "validator";
  }
  /**
   * Write `payload` (what the caller passed to `set`) under `key`, conditionally on
   * `expectedVersion` when given; report with `onStoreWrite(io, …)`. A `payload` of
   * `undefined` means delete.
   */
  | {
    readonly type: "store-write";
    readonly io: number;
    readonly key: string;
    readonly payload: unknown;
    readonly expectedVersion: number | undefined;
  }
  /**
   * Read coordinator key `key`, which holds a record of kind `kind` (decode and validate
   * it as such); report with `onCoordRead(io, …)`. With `ttlMs`, the key lives among the
   * records that expire `ttlMs` after their last write (see `coord-put`).
   */
  | {
    readonly type: "coord-get";
    readonly io: number;
    readonly key: string;
    readonly kind: CoordRecordKind;
    readonly ttlMs?: number;
  }
  /**
   * Create (`revision` undefined) or compare-and-set (at `revision`) coordinator key `key`
   * to `record`; report with `onCoordWrite(io, …)`. With `ttlMs`, the coordinator forgets
   * the record `ttlMs` after this write, on its own clock, unless it is written again
   * (lease records).
   */
  | {
    readonly type: "coord-put";
    readonly io: number;
    readonly key: string;
    readonly record: CoordRecord;
    readonly revision: number | undefined;
    readonly ttlMs?: number;
  }
  /**
   * Run the application's loader for `key` and report its outcome with `onLoad(io, …)`:
   * the loader of caller operation `op` (`undefined`: a background load, refresh-ahead
   * or a reload after an invalidation, with no caller waiting: use the key's registered
   * loader, or report a failure). `stale` is the newest value this node holds for the key
   * (expired, never removed), for the loader's context. The core never calls user code.
   */
  | {
    readonly type: "load";
    readonly io: number;
    readonly key: string;
    readonly op: number | undefined;
    readonly stale: { readonly found: boolean; readonly value: unknown } | undefined;
  }
  /**
   * Abandon load `io` (its hard timeout passed, an invalidation overtook it, or the node
   * closed): abort the loader's signal. A later report of `io` is ignored.
   */
  | { readonly type: "load-abort"; readonly io: number }
  /** Caller operation `op` succeeded. */
  | { readonly type: "resolve"; readonly op: number; readonly result: OpResult }
  /** Caller operation `op` failed. */
  | { readonly type: "reject"; readonly op: number; readonly error: WarpError };

/**
 * Where a read was answered from: `l1`, `store` (a store read), `loader` (a load of a
 * loader-backed key, or getOrSet's loader), `fallback` (fail-safe: a stale value this
 * node held); `none` for what is not a read.
 */
export type AnswerSource = "l1" | "store" | "loader" | "fallback" | "none";

/** The result of a caller operation. */
export interface OpResult {
  /** Whether the key has a value (reads); true for sets, false for deletes. */
  readonly found: boolean;
  /** The value read (reads) or written (sets); `undefined` otherwise. */
  readonly value: unknown;
  /** The store version read or written; 0 for an `invalidate` and loader-backed keys. */
  readonly version: number;
  /** Where a read was answered from. */
  readonly source: AnswerSource;
  /**
   * Reads of loader-backed keys: the invalidation epoch the value was loaded at (this
   * node's count of invalidations applied when its load started). 0 otherwise.
   */
  readonly epoch?: number;
  /** Reads: whether the answer is past its freshness (fail-safe, a soft timeout; F1). */
  readonly stale?: boolean;
  /**
   * Reads: how much longer, at most, L1 may serve this value (its TTL left; an
   * invalidation, a lapsed session or the staleness bound may end it sooner). 0 for an
   * answer that was not cached, or is stale.
   */
  readonly freshForMs?: number;
}

/**
 * A load as reported by the driver: the loader's value, decoded as L1 will keep it, with
 * its encoded size; `found` false when the loader said "not found" (a value too). The
 * loader may set this entry's TTL, or ask not to cache it.
 */
export type LoadResult =
  | {
    readonly ok: true;
    readonly found: boolean;
    readonly value: unknown;
    readonly sizeBytes: number;
    /** This entry's TTL, set by the loader. @default {the read's ttlMs} */
    readonly ttlMs?: number;
    /** False: answer the readers but cache nothing. @default {true} */
    readonly cache?: boolean;
  }
  | { readonly ok: false; readonly error: WarpError };

/** A store read as reported by the driver: the decoded value and its encoded size. */
export type StoreReadResult =
  | {
    readonly ok: true;
    readonly found: boolean;
    readonly value: unknown;
    readonly version: number;
    readonly sizeBytes: number;
    /** The leases the stored value is attached to, if any. */
    readonly leases?: readonly string[];
  }
  | { readonly ok: false; readonly error: WarpError };

/** A store write as reported by the driver. */
export type StoreWriteResult =
  | { readonly ok: true; readonly version: number }
  | { readonly ok: false; readonly error: WarpError };

/** A coordinator read as reported by the driver (`record` undefined: key absent). */
export type CoordReadResult =
  | {
    readonly ok: true;
    /** A record of the kind the `coord-get` named. */
    readonly record: CoordRecord | undefined;
    readonly revision: number;
  }
  | { readonly ok: false; readonly error: WarpError };

/** A coordinator write as reported by the driver; a lost compare-and-set is `conflict`. */
export type CoordWriteResult =
  | { readonly ok: true; readonly revision: number }
  | { readonly ok: false; readonly conflict: boolean; readonly error: WarpError };

/**
 * Checks that `value` is a well-formed {@linkcode HolderRecord} (coordinator content is
 * outside input); returns it or `undefined`.
 *
 * @example
 * ```ts
 * import { validateHolderRecord } from "./effects.ts";
 * console.log(validateHolderRecord({ holders: ["a"], pending: undefined, version: 3 }) !== undefined);
 * ```
 */
export function validateHolderRecord(value: unknown): HolderRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (!Array.isArray(r.holders) || r.holders.length > 4096) return undefined;
  if (!r.holders.every((h) => typeof h === "string")) return undefined;
  if (r.pending !== undefined && r.pending !== null && typeof r.pending !== "string") {
    return undefined;
  }
  if (
    r.version !== undefined && r.version !== null &&
    !(typeof r.version === "number" && Number.isSafeInteger(r.version) && r.version >= 0)
  ) return undefined;
  return {
    holders: r.holders as string[],
    pending: (r.pending ?? undefined) as string | undefined,
    version: (r.version ?? undefined) as number | undefined,
  };
}
