/**
 * The history format the checkers read: every client operation with its invoke and
 * completion times (true time) and outcome. The simulator writes it; a runtime over real
 * NATS can record one too; `deno task check-history FILE` checks a file of it.
 *
 * A history is JSON:
 * ```json
 * { "format": "warp-history/1",
 *   "keys": { "ev:1": { "mode": "eventual-distributed", "maxStalenessMs": 500, "ttlMs": 60000 } },
 *   "ops": [ { "id": 1, "process": "n1", "key": "ev:1", "kind": "write", "value": "n1-1",
 *              "invokeMs": 10.5, "completeMs": 12, "outcome": "ok", "version": 1 } ],
 *   "final": { "ev:1": { "version": 1, "value": "n1-1" } },
 *   "storeLog": [ { "key": "ev:1", "version": 1, "value": "n1-1", "atMs": 11.2 } ] }
 * ```
 *
 * `final`, `leases`, `storeLog` and `propagation` are optional: a checker whose part is
 * missing reports `skipped`.
 *
 * Checked against Warp's contract, every op's key must be described in `keys` (its mode
 * says which guarantees apply) and ops are reads, writes, deletes and invalidations.
 * Checked against a model instead (`check-history --model NAME`, `checkModel`), `keys` may
 * be left out and ops may also be compare-and-sets (`cas`) and appends (`append`):
 * ```json
 * { "format": "warp-history/1",
 *   "ops": [ { "id": 1, "process": 3, "key": "r", "kind": "cas", "expected": 1, "value": 2,
 *              "invokeMs": 0, "completeMs": 4, "outcome": "ok" } ] }
 * ```
 *
 * @module
 */

import type { ConsistencyMode } from "../src/core/registry.ts";

/** The format tag of this version of the history format. */
export const HISTORY_FORMAT = "warp-history/1";

/** What a history says about a key: its mode and the bounds that apply to it. */
export interface KeyInfo {
  /** The key's consistency mode. */
  readonly mode: ConsistencyMode;
  /** eventual-distributed: the staleness bound of E3. */
  readonly maxStalenessMs?: number;
  /** The key's TTL (SL2). */
  readonly ttlMs?: number;
  /**
   * The key's writes attach values to leases: it is checked by G1–G3, not by the value
   * guarantees (a revoked lease makes its values read as absent, which those do not model).
   */
  readonly leased?: boolean;
  /**
   * Bounds that differ between nodes (a mixed cluster): each node's own, keyed by
   * `process`. A read is judged by its node's figure (E3, SL2); the figures above are then
   * the largest. @default {undefined}
   */
  readonly byProcess?: Readonly<Record<string, KeyBounds>>;
}

/** One node's bounds of a key. */
export interface KeyBounds {
  /** The node's staleness bound of the key (E3). */
  readonly maxStalenessMs?: number;
  /** The node's TTL of the key (SL2). */
  readonly ttlMs?: number;
}

/**
 * The outcome of an operation:
 * - `ok`: it happened, with the recorded result;
 * - `fail`: it certainly did not happen;
 * - `unknown`: it may or may not have happened (a timeout, a crash); it stays open to the
 *   end of the history.
 */
export type Outcome = "ok" | "fail" | "unknown";

/** What an operation does; `cas`, `append` and `txn` are checked only against a model. */
export type OpKind = "read" | "write" | "delete" | "invalidate" | "cas" | "append" | "txn";

/**
 * One step of a transaction (`txn` op, the `multi-register` model): a read of a key (for
 * an ok txn, `value` is what it read, `null` absent) or a write.
 */
export interface TxnStep {
  /** A read or a write. */
  readonly kind: "read" | "write";
  /** The key. */
  readonly key: string;
  /** For a write the value written; for an ok read the value read (`null`: absent). */
  readonly value?: unknown;
}

/** One client operation. */
export interface HistoryOp {
  /** Unique in the history. */
  readonly id: number;
  /**
   * The node or client process that made the call: a string or a number, compared as
   * given (`1` and `"1"` are two processes).
   */
  readonly process: string | number;
  /** The key. */
  readonly key: string;
  /**
   * `write` stores `value`; `delete` stores absence; `read` returns `value` (absent: `found`
   * false); `invalidate` only drops caches and is ignored by the value checkers. Only with
   * a model: `cas` stores `value` if the key holds `expected`; `append` adds `value` to the
   * end of the key's list (a read of such a key returns the whole list); `txn` reads and
   * writes several keys at one instant (`txn`).
   */
  readonly kind: OpKind;
  /**
   * For a write, the value written (unique per write); for an ok read, the value read; for
   * a cas, the value it stores (`null`: absence); for an append, the element appended.
   */
  readonly value?: unknown;
  /**
   * For a `txn`: its steps, applied at one instant in order (the op's `key` is its first
   * step's).
   */
  readonly txn?: readonly TxnStep[];
  /** For a cas: the value it compares the key's with (`null`: the key is absent). */
  readonly expected?: unknown;
  /**
   * For an ok cas: whether it found `expected` and stored `value` (default true). A cas
   * that reported "not swapped" is `ok` with `swapped: false` if that answer is
   * trustworthy, or `fail` if the system only says it did nothing (Jepsen's `:fail`).
   */
  readonly swapped?: boolean;
  /** For an ok read: whether a value was found. */
  readonly found?: boolean;
  /** For an ok read or write: the store version read or written. */
  readonly version?: number;
  /** For an ok read: where it was answered from. */
  readonly source?: "l1" | "store";
  /** For an ok read from L1: how old the served value was on the node's own clock (SL2). */
  readonly ageMs?: number;
  /**
   * For an ok read from L1: a true time by which its entry had been read from the store
   * (the node's latest store call of the key before the read), for the clear check (CL).
   */
  readonly fetchedByMs?: number;
  /** True time of the call. */
  readonly invokeMs: number;
  /** True time of the answer; `null` if there was none (then the outcome is unknown). */
  readonly completeMs: number | null;
  /** Whether the call succeeded, failed, or its outcome is unknown. */
  readonly outcome: Outcome;
  /** Marks the probe reads made after faults stopped (E4 convergence). */
  readonly probe?: boolean;
  /** For a write: the leases it attached its value to. */
  readonly leases?: readonly string[];
}

/** A client's lease operation. */
export interface LeaseOp {
  /** Unique among the lease operations. */
  readonly id: number;
  /** The node that made the call. */
  readonly process: string;
  /** Which call. */
  readonly kind: "grant" | "keepalive" | "revoke";
  /** The lease id. */
  readonly lease: string;
  /** True time of the call. */
  readonly invokeMs: number;
  /** True time of the answer; `null` if there was none. */
  readonly completeMs: number | null;
  /** Whether it succeeded, failed, or is unknown. */
  readonly outcome: Outcome;
  /** The error code of a failed op. */
  readonly error?: string;
}

/** A client's clear of a namespace (`clear(ns)`: every key starting with `ns:`), CL. */
export interface ClearOp {
  /** The operation's id, unique in the history. */
  readonly id: number;
  /** The node that cleared. */
  readonly process: string | number;
  /** The namespace: the clear covers the keys that start with `ns:`. */
  readonly ns: string;
  /** True time the clear was invoked, ms. */
  readonly invokeMs: number;
  /** True time it completed, ms; `null` if it never answered. */
  readonly completeMs: number | null;
  /** How it ended. */
  readonly outcome: Outcome;
}

/** What the coordinator did with one lease's record, in true time (the simulator knows). */
export interface LeaseRecordLog {
  /** The lease's TTL, ms. */
  readonly ttlMs: number;
  /** True times the record was written active (grant, keep-alives). */
  readonly activeWritesMs: readonly number[];
  /** True time the record was written revoked, if it was. */
  readonly revokedAtMs: number | null;
}

/** The lease part of a history (G1–G3). */
export interface LeaseHistory {
  /** The nodes' `leaseCheckMs`; where they differ, the largest (no node trusts a check longer). */
  readonly leaseCheckMs: number;
  /** The drift bound the nodes assume, ppm. */
  readonly maxDriftPpm: number;
  /** Every lease operation. */
  readonly ops: readonly LeaseOp[];
  /** Per lease id, what the coordinator did with its record. */
  readonly records: Readonly<Record<string, LeaseRecordLog>>;
}

/**
 * One write the store applied, as the store itself saw it. The simulator logs every one; a
 * real store can supply its log too (a KV bucket's history, a Postgres audit table). The
 * store-log check (E1s) judges every ok read and write against it.
 */
export interface StoreLogEntry {
  /** The key of the written value. */
  readonly key: string;
  /** The version the store gave the write (at least 1; version 0 is "never written"). */
  readonly version: number;
  /** The value stored, as a read returns it; omitted for a deletion. */
  readonly value?: unknown;
  /** Whether the write was a deletion. @default {false} */
  readonly deleted?: boolean;
  /** The leases the value is attached to, if any: while one is dead it reads as absent. */
  readonly leases?: readonly string[];
  /** True time the store applied the write. */
  readonly atMs: number;
  /** The transaction the write belongs to (`History.transactions`), if any (T1). */
  readonly tx?: number;
}

/** One multi-key transaction of a history (T1). */
export interface TransactionRecord {
  /** Unique among the transactions; the store log's entries of its writes carry it as `tx`. */
  readonly id: number;
  /** The history ops (a write or delete each, one per key) it made. */
  readonly ops: readonly number[];
  /** `ok`: committed; `fail`: certainly nothing written; `unknown`: either. */
  readonly outcome: "ok" | "fail" | "unknown";
}

/** A node held an L1 entry it could serve: one sample of a node's cache (EP). */
export interface L1Sample {
  /** True time of the sample. */
  readonly atMs: number;
  /** The node. */
  readonly process: string;
  /** The key of the sampled entry. */
  readonly key: string;
  /** The version of the entry the node could have served at `atMs`. */
  readonly version: number;
}

/**
 * The fault-free phase of a run and the propagation bounds the EP check holds it to: an
 * invalidation of an eventual-distributed key reaches every node within the bound, meaning
 * that from then on no node serves from L1, or holds ready to serve, an older version.
 */
export interface PropagationPhase {
  /** True time the faults stopped; the phase lasts to the end of the history. */
  readonly fromMs: number;
  /** The bound for a write that completed ok in the phase, from its completion. */
  readonly boundMs: number;
  /**
   * The bound for a write that completed ok before the phase (its invalidation may have
   * been lost: a gap left open by the faults), from `fromMs`.
   */
  readonly healBoundMs: number;
  /**
   * Samples of L1 entries that nodes could serve (the simulator records those older than
   * the store's newest version at the time); every L1 read in the history counts as one too.
   */
  readonly samples: readonly L1Sample[];
}

/**
 * One `update` (read-modify-write) of a key that only updates write: `add` increments a
 * counter by 1; `union` adds `element` to a set kept as an array (M1); `lww` writes
 * `element` over whatever the key holds (`merges.lastWriterWins`, M2).
 */
export interface UpdateOp {
  /** The operation's id, unique in the history. */
  readonly id: number;
  /** The node that updated. */
  readonly process: string;
  /** The key updated. */
  readonly key: string;
  /** The reducer: add 1 to a counter, add an element to a set, or last writer wins. */
  readonly kind: "add" | "union" | "lww";
  /** For `union`: the element added; for `lww`: the value written (unique per update). */
  readonly element?: string;
  /** For an ok update: the value it wrote and that value's store version. */
  readonly value?: unknown;
  /** For an ok update: the store version of the value it wrote. */
  readonly version?: number;
  /** True time the update was invoked, ms. */
  readonly invokeMs: number;
  /** True time it completed, ms; `null` if it never answered. */
  readonly completeMs: number | null;
  /** `fail`: it certainly wrote nothing (conflict, aborted, a definite error). */
  readonly outcome: Outcome;
}

/** The update part of a history (M1, M2): the updates; the store log holds their writes. */
export interface UpdateHistory {
  /** Every update, in invocation order. */
  readonly ops: readonly UpdateOp[];
}

/** A recorded history. */
export interface History {
  /** The format tag, {@linkcode HISTORY_FORMAT}. */
  readonly format: typeof HISTORY_FORMAT;
  /** Every key of the history and its bounds. */
  readonly keys: Readonly<Record<string, KeyInfo>>;
  /** Every client operation. */
  readonly ops: readonly HistoryOp[];
  /** The store's content at the end, if known: newest version and value per key. */
  readonly final?: Readonly<Record<string, { readonly version: number; readonly value: unknown }>>;
  /** Lease operations and the coordinator's lease records, if the run used leases. */
  readonly leases?: LeaseHistory;
  /** Every write the store applied, in the order it applied them, if known (E1s). */
  readonly storeLog?: readonly StoreLogEntry[];
  /** The fault-free phase and its propagation bounds, if the run had one (EP). */
  readonly propagation?: PropagationPhase;
  /** The drift bound the nodes assumed and their clocks kept, ppm, if known. */
  readonly maxDriftPpm?: number;
  /** Namespace clears, if the run made any (CL). */
  readonly clears?: readonly ClearOp[];
  /** Updates of keys only updates write, if the run made any (M1); needs `storeLog`. */
  readonly updates?: UpdateHistory;
  /** Loader-backed keys, their loads and the drops that reached each node (LB1–LB3, F1–F3). */
  readonly loaders?: LoaderHistory;
  /** Multi-key transactions, if the run made any (T1); needs `storeLog`. */
  readonly transactions?: readonly TransactionRecord[];
  /** What the nodes' background validators found and installed, if they ran (V1). */
  readonly validator?: ValidatorHistory;
}

/**
 * What the background validators did (V1): each difference they counted or found newer
 * than the store, and each value their reads installed in L1, with what L1 held before —
 * the latter two taken by the driver from the node's L1, not from the validator's word.
 */
export interface ValidatorHistory {
  /** Every verdict a validator reported (inconsistent, deleted in store, newer than store). */
  readonly verdicts: readonly ValidatorVerdictEntry[];
  /** Every L1 install made by a validator's store read (a heal), in order. */
  readonly installs: readonly HealInstall[];
  /** Checks that got a store answer, over every node. @default {0} */
  readonly checks?: number;
  /**
   * The bounds of keys the history's `keys` do not describe (the driver's own
   * registrations, such as keys written behind Warp's back), ms. @default {{}}
   */
  readonly keyBoundsMs?: Readonly<Record<string, number>>;
}

/** One verdict of a node's validator. */
export interface ValidatorVerdictEntry {
  /** The node. */
  readonly process: string;
  /** The key checked. */
  readonly key: string;
  /** What it found. */
  readonly verdict: "inconsistent" | "deleted-in-store" | "newer-than-store";
  /** The version it says L1 served. */
  readonly cachedVersion: number;
  /** The version it says the store answered. */
  readonly storeVersion: number;
  /** The bound it says the difference outlasted, ms. */
  readonly boundMs: number;
  /** True time of the verdict, ms. */
  readonly atMs: number;
  /** The version the node's L1 would serve then, read by the driver (`null`: nothing). */
  readonly heldVersion: number | null;
}

/** An L1 install made by a validator's store read, as the driver saw it. */
export interface HealInstall {
  /** The node. */
  readonly process: string;
  /** The key. */
  readonly key: string;
  /** The version installed. */
  readonly version: number;
  /** The version L1 held just before (`null`: nothing). */
  readonly heldBefore: number | null;
  /** True time of the install, ms. */
  readonly atMs: number;
}

/**
 * What a history says of a loader-backed key (`origin: "loader"`): its mode and bounds on
 * every node (the simulator registers it alike everywhere).
 */
export interface LoaderKeyInfo {
  /** The registration's consistency mode. */
  readonly mode: ConsistencyMode;
  /** The TTL of an entry whose loader did not set its own. */
  readonly ttlMs: number;
  /** eventual-distributed: the staleness bound of LB2. */
  readonly maxStalenessMs?: number;
  /** The registration's fail-safe window (0: off; a read may still ask). */
  readonly failSafeMaxMs: number;
}

/**
 * One call of the application's loader, as the driver ran it. The simulated loader tags the
 * value it returns with the load's id (`value|L<id>`), so each answer names its load.
 */
export interface LoadLogEntry {
  /** Unique in the history; the tag of the value it returned. */
  readonly id: number;
  /** The node that ran it. */
  readonly process: string;
  /** The key loaded. */
  readonly key: string;
  /** True time the node started it (the `load` effect). */
  readonly startMs: number;
  /** Its place in the order of load starts, drops and answers (ties in true time). */
  readonly startSeq: number;
  /** The source version it read (0: never written), if its read took effect. */
  readonly version?: number;
  /** The source value it read (`null`: absent), if its read took effect. */
  readonly value?: unknown;
  /** The TTL it was installed with: the loader's own, or the read's. */
  readonly ttlMs: number;
}

/** A drop of a loader-backed key reached a node: a `drop` or `revoke`, or its own invalidate. */
export interface DropLogEntry {
  /** The node it reached. */
  readonly process: string;
  /** The key dropped. */
  readonly key: string;
  /** True time it reached the node. */
  readonly atMs: number;
  /** Its place in the order of load starts, drops and answers. */
  readonly seq: number;
}

/** A read or an `invalidate` of a loader-backed key. */
export interface LoaderOp {
  /** The operation's id, unique in the history. */
  readonly id: number;
  /** The node it ran on. */
  readonly process: string;
  /** The key read or invalidated. */
  readonly key: string;
  /** A read, or the application's `invalidate` after writing its source. */
  readonly kind: "read" | "invalidate";
  /** True time it was invoked. */
  readonly invokeMs: number;
  /** True time of the answer; `null`: none came (unknown outcome). */
  readonly completeMs: number | null;
  /** How it ended. */
  readonly outcome: Outcome;
  /** ok reads: whether the load found a value. */
  readonly found?: boolean;
  /** ok reads: the source value answered (`null`: absent). */
  readonly value?: unknown;
  /** ok reads: the load whose value was answered. */
  readonly load?: number;
  /** ok reads: where the answer came from. */
  readonly source?: "l1" | "loader" | "fallback";
  /** ok reads: whether the answer said it is stale (F1). */
  readonly stale?: boolean;
  /** Reads: the fail-safe window the read asked for, from its call or registration (0: none). */
  readonly failSafeMs?: number;
  /** ok reads: the answer's place in the order of load starts, drops and answers. */
  readonly answerSeq?: number;
}

/** The loader-backed part of a history. */
export interface LoaderHistory {
  /** Each loader-backed key's registration. */
  readonly keys: Readonly<Record<string, LoaderKeyInfo>>;
  /** Reads and invalidations, in invocation order. */
  readonly ops: readonly LoaderOp[];
  /** Every call of the loader. */
  readonly loads: readonly LoadLogEntry[];
  /** Every drop that reached a node. */
  readonly drops: readonly DropLogEntry[];
  /** Every write the application made to its source, in the order the source applied them. */
  readonly sourceLog: readonly StoreLogEntry[];
}

/** One violation found by a checker. */
export interface Violation {
  /** The guarantee violated, as named in CONSISTENCY.md (E1, E2, E3, E4, S1, S2, SL1, SL2…). */
  readonly guarantee: string;
  /** The key. */
  readonly key: string;
  /** The operations involved, offending one first. */
  readonly ops: readonly number[];
  /** What went wrong, in a sentence with the values. */
  readonly message: string;
}
