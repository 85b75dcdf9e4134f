/**
 * Leases: a group of keys that one call invalidates on every node.
 *
 * A lease is a record in the coordinator, `lease/<id>`, written with a time to live: the
 * coordinator forgets it `ttlMs` after its last write, measured on the coordinator's own
 * clock (NATS JetStream KV: a bucket whose `max_age` is the TTL). Keep-alives rewrite it;
 * a revocation rewrites it as `revoked`. A value written with a lease carries the lease id
 * in its stored record, so any node that loads it knows its leases.
 *
 * A node serves a value attached to a lease only while its last check of the lease — a
 * coordinator read that found it active — is younger than `leaseCheckMs × (1 − drift)` on
 * its own clock. A revocation therefore completes `leaseCheckMs × (1 + drift)` after its
 * coordinator write: by then no check made before it can still be trusted anywhere (G1).
 * See `docs/leases.md`.
 *
 * The TTL is part of the id (`<ttl in base 36>.<random>`), because the coordinator keeps
 * records of different TTLs in different places and a node that finds an id in a stored
 * record must know where to look.
 *
 * @module
 */

import { describe } from "./_describe.ts";

/** A lease id: `<ttlMs in base 36>.<8 to 64 of [A-Za-z0-9_-]>`. */
export type LeaseId = string;

/** The shortest lease TTL. */
export const LEASE_TTL_MIN_MS = 1000;
/** The longest lease TTL: 30 days. */
export const LEASE_TTL_MAX_MS = 30 * 24 * 3600 * 1000;

const LEASE_ID_PATTERN = /^([0-9a-z]{1,8})\.[A-Za-z0-9_-]{8,64}$/;

/** The coordinator record of a lease. */
export interface LeaseRecord {
  /**
   * `active` until revoked. An expired lease has no record at all, until a node that found
   * none writes an `expired` tombstone (a create, so it proves the absence: a read alone
   * may come from an older state, before the lease was granted).
   */
  readonly lease: "active" | "revoked" | "expired";
  /**
   * The granting node's `leaseCheckMs`. Every node trusts a check of this lease for at
   * most this long, and a revocation waits at least this long, so nodes configured with
   * different `leaseCheckMs` still agree. Absent in a record from an older writer.
   */
  readonly checkMs?: number;
}

/** The longest `leaseCheckMs` a lease record may carry: one hour. */
export const LEASE_CHECK_MAX_MS = 3_600_000;

/**
 * Whether `value` is a well-formed lease id (its TTL within bounds).
 *
 * @example
 * ```ts
 * import { isLeaseId } from "./leases.ts";
 * console.log(isLeaseId("u0.abcdefgh"), isLeaseId("lease-1")); // true false
 * ```
 */
export function isLeaseId(value: unknown): value is LeaseId {
  return typeof value === "string" && leaseTtlMs(value) !== undefined;
}

/**
 * The TTL a lease id carries, or `undefined` if `id` is not a well-formed lease id.
 *
 * @example
 * ```ts
 * import { leaseTtlMs } from "./leases.ts";
 * console.log(leaseTtlMs("u0.abcdefgh")); // 1080
 * ```
 */
export function leaseTtlMs(id: string): number | undefined {
  const match = LEASE_ID_PATTERN.exec(id);
  if (match === null) return undefined;
  const ttl = parseInt(match[1]!, 36);
  return ttl >= LEASE_TTL_MIN_MS && ttl <= LEASE_TTL_MAX_MS ? ttl : undefined;
}

/**
 * Makes a lease id from a TTL and a random suffix (8 to 64 of `[A-Za-z0-9_-]`); throws a
 * RangeError on a TTL out of bounds or a malformed suffix.
 *
 * @example
 * ```ts
 * import { makeLeaseId } from "./leases.ts";
 * console.log(makeLeaseId(60_000, "abcdefgh")); // "1aao.abcdefgh"
 * ```
 */
export function makeLeaseId(ttlMs: number, random: string): LeaseId {
  if (!Number.isSafeInteger(ttlMs) || ttlMs < LEASE_TTL_MIN_MS || ttlMs > LEASE_TTL_MAX_MS) {
    throw new RangeError(
      `Lease ttlMs must be an integer from ${LEASE_TTL_MIN_MS} to ${LEASE_TTL_MAX_MS}: ${
        describe(ttlMs)
      }`,
    );
  }
  const id = `${ttlMs.toString(36)}.${random}`;
  if (!LEASE_ID_PATTERN.test(id)) {
    throw new RangeError(`Lease id suffix must be 8 to 64 of [A-Za-z0-9_-]: ${describe(random)}`);
  }
  return id;
}

/** The coordinator key of a lease's record. */
export function leaseRecordKey(id: LeaseId): string {
  return `lease/${id}`;
}

/**
 * Checks that `value` is a well-formed {@linkcode LeaseRecord} (coordinator content is
 * outside input); returns it or `undefined`.
 *
 * @example
 * ```ts
 * import { validateLeaseRecord } from "./leases.ts";
 * console.log(validateLeaseRecord({ lease: "revoked" })?.lease); // "revoked"
 * ```
 */
export function validateLeaseRecord(value: unknown): LeaseRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { lease, checkMs } = value as Record<string, unknown>;
  if (lease !== "active" && lease !== "revoked" && lease !== "expired") return undefined;
  if (checkMs === undefined || checkMs === null) return { lease };
  if (
    typeof checkMs !== "number" || !Number.isFinite(checkMs) || checkMs <= 0 ||
    checkMs > LEASE_CHECK_MAX_MS
  ) return undefined;
  return { lease, checkMs };
}

/**
 * Validates the lease ids attached to a write or found in a stored record: a duplicate-free
 * array of well-formed ids, at most {@linkcode LEASES_PER_KEY_MAX}. Returns the problem in
 * words, or `undefined` when the list is valid.
 *
 * @example
 * ```ts
 * import { leaseListProblem } from "./leases.ts";
 * console.log(leaseListProblem(["u0.abcdefgh"]), leaseListProblem(["x"]) !== undefined); // undefined true
 * ```
 */
export function leaseListProblem(leases: unknown): string | undefined {
  if (!Array.isArray(leases)) return "leases must be an array of lease ids";
  if (leases.length > LEASES_PER_KEY_MAX) {
    return `at most ${LEASES_PER_KEY_MAX} leases per key: ${leases.length}`;
  }
  for (const id of leases) {
    if (!isLeaseId(id)) return `not a lease id: ${describe(id)}`;
  }
  if (new Set(leases).size !== leases.length) return "the same lease is attached twice";
  return undefined;
}

/** The most leases one key may be attached to. */
export const LEASES_PER_KEY_MAX = 16;

/** What a node knows of one lease. */
export interface LeaseKnowledge {
  /**
   * `active`: a check found it so (trusted until `validUntilMs`); `revoked` / `expired`:
   * dead for good (ids are never reused); `unknown`: never checked, or the check is out.
   */
  state: "unknown" | "active" | "revoked" | "expired";
  /** Local time until which `active` may be trusted. */
  validUntilMs: number;
  /** Callbacks waiting for the check in flight, if one is. */
  waiting: (() => void)[] | undefined;
  /** Whether a cached value of this lease was served since the last check. */
  used: boolean;
}
