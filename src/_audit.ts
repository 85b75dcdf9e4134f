/**
 * Private: `Warp.audit`, the explicit full check of a node's L1 against the store by
 * version — what the background validator (`core/_validator.ts`) never does. It reads
 * every key L1 would serve now, in `Store.getMany` batches of at most
 * `STORE_GET_MANY_MAX` keys (or bounded parallel `get`s), one batch after another, and
 * classifies each entry as the validator does: equal, older than the store, newer than
 * the store (a bug), or holding a value the store deleted.
 *
 * Design: one pass with no rate limit, since the operator asked for it and can pick the
 * moment; batches in sequence, so it holds at most one batch of store reads in flight. It
 * reports what it saw at one instant: an entry older than the store may be within its
 * key's bound (an invalidation on its way), which the validator's follow-ups tell apart.
 * Rejected: repairing what it finds — a repair must go through the versioned fill rules of
 * the core, which the validator's `heal` mode does; an audit that wrote L1 itself would
 * be go-warp's unconditional heal.
 *
 * @module
 */

import { describe } from "./_describe.ts";
import { checkKnownOptions } from "./_options.ts";
import type { Store, StoreRecord } from "./store.ts";
import { STORE_GET_MANY_MAX } from "./store.ts";
import { timeoutAfter, withTimeout } from "./_wake_timer.ts";

/** Options of `Warp.audit`. */
export interface AuditOptions {
  /** Most keys listed per finding in the report (the counts cover all). @default {100} */
  readonly keysMax?: number;
  /** Stops the audit between batches: it then rejects with the signal's reason. @default {undefined} */
  readonly signal?: AbortSignal;
}

/** What `Warp.audit` found. */
export interface AuditReport {
  /** Entries compared with the store. */
  readonly checked: number;
  /** Entries whose version equals the store's (or both absent). */
  readonly consistent: number;
  /** Entries older than the store: within their bound, or an inconsistency (see the validator). */
  readonly olderThanStore: number;
  /** Entries newer than the store: a bug. */
  readonly newerThanStore: number;
  /** Entries holding a value the store deleted since. */
  readonly deletedInStore: number;
  /** Keys whose store read failed. */
  readonly errors: number;
  /** Up to `keysMax` keys of each finding. */
  readonly keys: {
    readonly olderThanStore: readonly string[];
    readonly newerThanStore: readonly string[];
    readonly deletedInStore: readonly string[];
  };
}

/** The names of {@linkcode AuditOptions}, checked at compile time against the interface. */
export const AUDIT_OPTION_NAMES = ["keysMax", "signal"] as const satisfies readonly (
  keyof AuditOptions
)[];

/** An entry L1 would serve, as the audit compares it. */
export interface AuditedEntry {
  readonly key: string;
  readonly version: number;
  readonly found: boolean;
}

/** What the store holds for a key, as the audit compares it (`undefined`: the read failed). */
export type AuditedRecord = { readonly version: number; readonly found: boolean } | undefined;

/**
 * Validates `options` (TypeError/RangeError naming the bad one).
 *
 * @example
 * ```ts
 * import { auditSettings } from "./_audit.ts";
 * console.log(auditSettings({}).keysMax); // 100
 * ```
 */
export function auditSettings(
  options: AuditOptions,
): { keysMax: number; signal: AbortSignal | undefined } {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`Invalid audit options, expected an object: ${describe(options)}`);
  }
  checkKnownOptions(options, AUDIT_OPTION_NAMES, "audit");
  const keysMax = options.keysMax ?? 100;
  if (!Number.isSafeInteger(keysMax) || keysMax < 0) {
    throw new RangeError(
      `Invalid keysMax of audit, expected an integer >= 0: ${describe(keysMax)}`,
    );
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError(
      `Invalid signal of audit, expected an AbortSignal: ${describe(options.signal)}`,
    );
  }
  return { keysMax, signal: options.signal };
}

/**
 * Compares `entries` with the store, read through `readBatch` (one batch of keys at a time),
 * and classifies each by version.
 *
 * @example
 * ```ts
 * import { runAudit } from "./_audit.ts";
 * const report = await runAudit(
 *   [{ key: "a", version: 1, found: true }, { key: "b", version: 1, found: true }],
 *   async (keys) => keys.map((k) => ({ version: k === "a" ? 1 : 2, found: true })),
 *   { keysMax: 10, signal: undefined },
 *   100,
 * );
 * console.log(report.consistent, report.keys.olderThanStore); // 1 ["b"]
 * ```
 */
export async function runAudit(
  entries: readonly AuditedEntry[],
  readBatch: (keys: readonly string[]) => Promise<readonly AuditedRecord[]>,
  settings: { keysMax: number; signal: AbortSignal | undefined },
  batchMax: number,
): Promise<AuditReport> {
  const counts = { consistent: 0, olderThanStore: 0, newerThanStore: 0, deletedInStore: 0 };
  const keys = {
    olderThanStore: [] as string[],
    newerThanStore: [] as string[],
    deletedInStore: [] as string[],
  };
  let errors = 0;
  let checked = 0;
  for (let at = 0; at < entries.length; at += batchMax) {
    settings.signal?.throwIfAborted();
    const batch = entries.slice(at, at + batchMax);
    const records = await readBatch(batch.map((e) => e.key));
    batch.forEach((entry, i) => {
      const record = records[i];
      if (record === undefined) {
        errors++;
        return;
      }
      checked++;
      const finding = classify(entry, record);
      if (finding === "consistent") {
        counts.consistent++;
        return;
      }
      counts[finding]++;
      if (keys[finding].length < settings.keysMax) keys[finding].push(entry.key);
    });
  }
  return { checked, ...counts, errors, keys };
}

function classify(
  entry: AuditedEntry,
  record: { readonly version: number; readonly found: boolean },
): "consistent" | "olderThanStore" | "newerThanStore" | "deletedInStore" {
  if (!entry.found && !record.found) return "consistent";
  if (entry.version === record.version && entry.found === record.found) return "consistent";
  if (entry.version > record.version && record.found) return "newerThanStore";
  return record.found ? "olderThanStore" : "deletedInStore";
}

/** Parallel `get`s of one `audit` batch, for a store without `getMany`. */
const AUDIT_GETS_MAX = 32;

/** The keys of one `audit` batch: a `getMany` call's, or a few parallel `get`s. */
export function auditBatchMax(store: Store): number {
  // Without getMany, a batch is that many parallel gets: keep it small.
  return store.getMany === undefined ? AUDIT_GETS_MAX : STORE_GET_MANY_MAX;
}

/** Reads the store's version of `keys` for `audit` (`undefined`: its read failed). */
export function storeVersions(
  store: Store,
  ioTimeoutMs: number,
): (keys: readonly string[]) => Promise<AuditedRecord[]> {
  return (keys) => readVersions(store, ioTimeoutMs, keys);
}

async function readVersions(
  store: Store,
  ioTimeoutMs: number,
  keys: readonly string[],
): Promise<AuditedRecord[]> {
  const open = (record: StoreRecord): AuditedRecord => ({
    version: record.version,
    found: record.value !== undefined,
  });
  if (store.getMany !== undefined && keys.length > 1) {
    const what = `Store read of ${keys.length} keys`;
    try {
      const records = await withTimeout(
        () => store.getMany!(keys),
        ioTimeoutMs,
        timeoutAfter(ioTimeoutMs, what),
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
          ioTimeoutMs,
          timeoutAfter(ioTimeoutMs, `Store read of ${key}`),
        ),
      );
    } catch {
      return undefined;
    }
  }));
}
