/**
 * The lease protocol on one node: what the node knows of each lease (a check, trusted for
 * a while, or death), the checks that L1 hits, fills and attaching writes wait on, and the
 * caller's lease operations: grant, keep-alive and revoke. Lease ids and records are in
 * `leases.ts`; the reasoning behind G1–G3 is in `docs/leases.md`.
 *
 * Design: a node serves a value attached to a lease only while its last *check* of the
 * lease (a coordinator read that found it active, asked at `askMs`) is younger than
 * `leaseCheckMs × (1 − drift)`; a revocation completes `leaseCheckMs × (1 + drift)` after
 * its coordinator write, so no check made before it is still trusted anywhere. Checks are
 * shared (one read per lease in flight, whoever waits on it) and renewed ahead of time for
 * leases in use, so a hot leased key stays an L1 hit.
 *
 * Rejected: revocation by broadcast alone (`lrev` is only a shortcut here) — the bus is at
 * most once, and a node that missed it would serve a revoked value until the value's own
 * TTL; and a per-value lease check at every hit — a coordinator round trip per read, which
 * is what L1 is there to avoid.
 *
 * @module
 */

import { WarpError } from "./errors.ts";
import { leaseRecordKey, leaseTtlMs } from "./leases.ts";
import type { LeaseKnowledge, LeaseRecord } from "./leases.ts";
import { MARGIN_MS, noop } from "./_kernel.ts";
import type { NodeKernel, WriteOp } from "./_kernel.ts";
import type { LeaseChecks, LeaseVerdict } from "./_fills.ts";

/** Lease write attempts (keep-alive, revoke) before contention is reported. */
const LEASE_CAS_ATTEMPTS_MAX = 8;

/** Settings of a {@linkcode LeaseProtocol}, validated by `NodeCore`. */
export interface LeaseSettings {
  /** How long a check is trusted, and how long a revocation waits (`leaseCheckMs`). */
  readonly checkMs: number;
  /** Deadline of a lease operation's coordinator part (`leaseTimeoutMs`). */
  readonly timeoutMs: number;
  /** Most leases remembered (`leasesMax`). */
  readonly leasesMax: number;
  /**
   * The most a coordinator read may lag behind the coordinator's state, true ms
   * (`coordinatorStalenessMs`): a check trusts what it read from that much earlier.
   */
  readonly stalenessMs: number;
}

/** The lease protocol of one node. */
export class LeaseProtocol implements LeaseChecks {
  readonly #k: NodeKernel;
  readonly #checkMs: number;
  readonly #timeoutMs: number;
  readonly #leasesMax: number;
  readonly #stalenessMs: number;
  /** What this node knows of each lease it has met. */
  readonly #leases = new Map<string, LeaseKnowledge>();

  /** Makes the lease protocol of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel, settings: LeaseSettings) {
    this.#k = kernel;
    this.#checkMs = settings.checkMs;
    this.#timeoutMs = settings.timeoutMs;
    this.#leasesMax = settings.leasesMax;
    this.#stalenessMs = settings.stalenessMs;
  }

  // ---------------------------------------------------------------- caller operations

  /**
   * Grants lease `id` as caller op `op` (admitted by `NodeCore`): creates its record, which
   * the coordinator forgets `ttlMs` after its last write.
   */
  grant(op: number, id: string, ttlMs: number): void {
    const k = this.#k;
    this.#begin(op, id);
    const askMs = k.now;
    const record: LeaseRecord = { lease: "active", checkMs: this.#checkMs };
    k.coordPut(leaseRecordKey(id), record, undefined, ttlMs, (put) => {
      if (put.ok) {
        this.#learn(id, "active", askMs, record.checkMs);
        k.answerWrite(op, { found: true, value: id, version: put.revision, source: "none" });
      } else if (put.conflict) {
        k.answerWrite(op, new WarpError("CONTENDED", `Lease id already in use: ${id}`));
      } else {
        k.answerWrite(op, leaseUnavailable(id, put.error));
      }
    });
  }

  /** Keeps lease `id` alive as caller op `op`: rewrites its record, restarting its TTL. */
  keepAlive(op: number, id: string, ttlMs: number): void {
    const k = this.#k;
    this.#begin(op, id);
    const attempt = (n: number): void => {
      const askMs = k.now;
      this.#readRecord(op, id, ttlMs, (record, revision) => {
        if (record.lease !== "active") {
          this.#learn(id, record.lease, askMs);
          k.answerWrite(op, this.#error([id], "Cannot keep alive")!);
          return;
        }
        k.coordPut(leaseRecordKey(id), record, revision, ttlMs, (put) => {
          if (put.ok) {
            this.#learn(id, "active", askMs, record.checkMs);
            k.answerWrite(op, {
              found: true,
              value: id,
              version: put.revision,
              source: "none",
            });
          } else if (put.conflict && n < LEASE_CAS_ATTEMPTS_MAX) {
            attempt(n + 1);
          } else {
            k.answerWrite(op, leaseFailure(id, put));
          }
        });
      });
    };
    attempt(1);
  }

  /**
   * Revokes lease `id` as caller op `op`: writes its record as revoked, tells every node
   * (best effort), then waits `leaseCheckMs × (1 + drift)` so that no node can still trust
   * a check made before the write (G1). Revoking a revoked or expired lease succeeds.
   */
  revoke(op: number, id: string, ttlMs: number): void {
    const k = this.#k;
    this.#begin(op, id);
    const finish = (revision: number, recordCheckMs: number | undefined): void => {
      this.#learn(id, "revoked", k.now);
      k.broadcast({ t: "lrev", from: k.nodeId, inc: k.incarnation, lease: id });
      const done = () =>
        k.answerWrite(op, { found: false, value: id, version: revision, source: "none" });
      if (k.canary.revokeWithoutWait) {
        done();
        return;
      }
      // No node trusts a check for longer than the record's checkMs or its own: wait out
      // the longest of those this node can know of.
      const waitMs = Math.max(this.#checkMs, recordCheckMs ?? 0) * (1 + k.drift) + MARGIN_MS;
      this.#extendOp(op, waitMs);
      k.arm(k.now + waitMs, done);
    };
    const attempt = (n: number): void => {
      this.#readRecord(op, id, ttlMs, (record, revision) => {
        if (record.lease !== "active") {
          // Dead already; still wait out checks made before.
          finish(revision, record.checkMs);
          return;
        }
        const revoked: LeaseRecord = {
          lease: "revoked",
          ...(record.checkMs !== undefined && { checkMs: record.checkMs }),
        };
        k.coordPut(leaseRecordKey(id), revoked, revision, ttlMs, (put) => {
          if (put.ok) finish(put.revision, record.checkMs);
          else if (put.conflict && n < LEASE_CAS_ATTEMPTS_MAX) attempt(n + 1);
          else k.answerWrite(op, leaseFailure(id, put));
        });
      });
    };
    attempt(1);
  }

  /**
   * Writes `key` as caller op `op` once every lease of `leases` is checked active (G3): a
   * dead one rejects with `LEASE_REVOKED` or `LEASE_EXPIRED`, an uncheckable one with
   * `COORDINATOR_UNAVAILABLE`. The op is held, with deadline `timeoutMs`, while the
   * checks run; `write` then starts the write proper, which registers the op again.
   */
  attach(
    op: number,
    key: string,
    leases: readonly string[],
    timeoutMs: number,
    write: () => void,
  ): void {
    const k = this.#k;
    if (k.canary.attachUnchecked) {
      write();
      return;
    }
    const checking: WriteOp = {
      kind: "write",
      key,
      timer: k.arm(k.now + timeoutMs, () => {
        k.reject(op, new WarpError("TIMEOUT", `Lease check of a write timed out: ${key}`));
      }),
      answered: false,
    };
    k.ops.set(op, checking);
    this.ensure(leases, () => {
      if (k.ops.get(op) !== checking) return;
      const error = this.#error(leases, `Cannot attach ${key}`);
      if (error !== undefined) {
        k.reject(op, error);
        return;
      }
      k.disarm(checking.timer);
      k.ops.delete(op);
      write();
    });
  }

  /** What this node knows of lease `id`, for inspection (tests, the simulator). */
  state(id: string, nowMs: number): "unknown" | "active" | "revoked" | "expired" {
    const known = this.#leases.get(id);
    if (known === undefined) return "unknown";
    if (known.state === "active" && nowMs >= known.validUntilMs) return "unknown";
    return known.state;
  }

  /** A node revoked lease `id` (an `lrev` message): it is dead here too. */
  revoked(id: string): void {
    this.#learn(id, "revoked", this.#k.now);
  }

  // ---------------------------------------------------------------- checks

  /** Whether every lease in `ids` is known active at `nowMs`; marks them used. The L1 hit path. */
  servable(ids: readonly string[], nowMs: number): boolean {
    for (let i = 0; i < ids.length; i++) {
      const known = this.#leases.get(ids[i]!);
      if (known === undefined || known.state !== "active" || nowMs >= known.validUntilMs) {
        return false;
      }
      known.used = true;
    }
    return true;
  }

  /** `dead` if any lease is dead, `active` if all are, else `unknown`. */
  verdict(ids: readonly string[]): LeaseVerdict {
    let verdict: "active" | "unknown" = "active";
    for (const id of ids) {
      const now = this.#now(id);
      if (now === "dead") return "dead";
      if (now === "unknown") verdict = "unknown";
    }
    return verdict;
  }

  /** Checks every lease of `ids` not known active now, then calls `then` (whatever came back). */
  ensure(ids: readonly string[], then: () => void): void {
    let outstanding = 1;
    const done = () => {
      if (--outstanding === 0) then();
    };
    for (const id of ids) {
      if (this.#now(id) !== "unknown") continue;
      outstanding++;
      this.#check(id, done);
    }
    done();
  }

  /** Lease `id` now: `active` (a check still trusted), `dead` (for good), or `unknown`. */
  #now(id: string): LeaseVerdict {
    const known = this.#leases.get(id);
    if (known === undefined) return "unknown";
    if (known.state === "revoked" || known.state === "expired") return "dead";
    return known.state === "active" && this.#k.now < known.validUntilMs ? "active" : "unknown";
  }

  /** The G3 error for a write or keep-alive naming `ids`, or `undefined` if all are active. */
  #error(ids: readonly string[], what: string): WarpError | undefined {
    for (const id of ids) {
      const state = this.#leases.get(id)?.state;
      if (state === "revoked") {
        return new WarpError("LEASE_REVOKED", `${what}: lease was revoked: ${id}`);
      }
      if (state === "expired") {
        return new WarpError(
          "LEASE_EXPIRED",
          `${what}: lease expired (not kept alive within its TTL) or was never granted: ${id}`,
        );
      }
    }
    if (this.verdict(ids) === "unknown") {
      return new WarpError(
        "COORDINATOR_UNAVAILABLE",
        `${what}: the lease could not be checked in the coordinator: ${ids.join(", ")}`,
      );
    }
    return undefined;
  }

  /** One coordinator read of a lease's record, shared by every caller waiting on it. */
  #check(id: string, then: () => void): void {
    const known = this.#know(id);
    if (known.waiting !== undefined) {
      known.waiting.push(then);
      return;
    }
    known.waiting = [then];
    known.used = false;
    const k = this.#k;
    const askMs = k.now;
    k.stats.leaseChecks++;
    this.#readConfirmed(id, leaseTtlMs(id)!, 1, (read) => {
      const waiting = known.waiting ?? [];
      known.waiting = undefined;
      if (read.ok) this.#learn(id, read.record.lease, askMs, read.record.checkMs);
      for (const callback of waiting) callback();
    });
  }

  /**
   * Records what a coordinator answer asked at `askMs` said of lease `id`. Death is final
   * (ids are never reused): a late `active` answer never revives a lease.
   */
  #learn(
    id: string,
    state: "active" | "revoked" | "expired",
    askMs: number,
    recordCheckMs?: number,
  ): void {
    const known = this.#know(id);
    if (known.state === "revoked" || known.state === "expired") return;
    known.state = state;
    if (state !== "active") {
      known.validUntilMs = -Infinity;
      return;
    }
    // The record was active at some instant no earlier than `stalenessMs` before askMs (a
    // read may come from an older state): trust it for checkMs of true time from then,
    // that is, until askMs − stalenessMs × (1 + drift) + checkMs × (1 − drift) on this clock.
    const drift = this.#k.drift;
    let checkMs = Math.min(this.#checkMs, recordCheckMs ?? Infinity);
    if (this.#k.canary.trustOwnLeaseCheck) checkMs = this.#checkMs;
    const until = askMs - this.#stalenessMs * (1 + drift) + checkMs * (1 - drift);
    if (until <= known.validUntilMs) return;
    known.validUntilMs = until;
    // A lease in use is checked again before its check runs out, so hot keys stay hits.
    const refreshAt = askMs + (until - askMs) * 0.75;
    this.#k.arm(refreshAt, () => {
      if (known.used && known.state === "active" && known.waiting === undefined) {
        this.#check(id, noop);
      }
    });
  }

  #know(id: string): LeaseKnowledge {
    let known = this.#leases.get(id);
    if (known === undefined) {
      if (this.#leases.size >= this.#leasesMax) this.#forget();
      known = { state: "unknown", validUntilMs: -Infinity, waiting: undefined, used: false };
      this.#leases.set(id, known);
    }
    return known;
  }

  /** Forgets the oldest tenth of the lease table (none with a check in flight). */
  #forget(): void {
    let toForget = Math.max(1, Math.floor(this.#leasesMax / 10));
    for (const [id, known] of this.#leases) {
      if (toForget === 0) break;
      if (known.waiting !== undefined) continue;
      this.#leases.delete(id);
      toForget--;
    }
  }

  // ---------------------------------------------------------------- plumbing

  /** Registers lease op `op` as in flight, with its deadline (`leaseTimeoutMs`). */
  #begin(op: number, id: string): void {
    const k = this.#k;
    const timer = k.arm(k.now + this.#timeoutMs, () => k.timeoutWrite(op));
    k.ops.set(op, { kind: "write", key: leaseRecordKey(id), timer, answered: false });
  }

  /** Reads lease `id`'s record for caller op `op`; an unreachable coordinator fails the op. */
  #readRecord(
    op: number,
    id: string,
    ttlMs: number,
    then: (record: LeaseRecord, revision: number) => void,
  ): void {
    this.#readConfirmed(id, ttlMs, 1, (read) => {
      if (read.ok) then(read.record, read.revision);
      else this.#k.answerWrite(op, read.error);
    });
  }

  /**
   * Reads lease `id`'s record. Where reads may be old (`coordinatorStalenessMs` > 0), a
   * record found absent is confirmed by creating an `expired` tombstone: the read may come
   * from before the grant, and a live lease must never be taken for dead (death is final
   * here). The create succeeds only if the record is absent now; if it exists after all,
   * read again.
   */
  #readConfirmed(
    id: string,
    ttlMs: number,
    attempt: number,
    then: (
      read: { ok: true; record: LeaseRecord; revision: number } | { ok: false; error: WarpError },
    ) => void,
  ): void {
    const k = this.#k;
    k.coordGet(leaseRecordKey(id), "lease", ttlMs, (read) => {
      if (!read.ok) {
        then({ ok: false, error: leaseUnavailable(id, read.error) });
        return;
      }
      const record = read.record as LeaseRecord | undefined;
      // Reads assumed current (no staleness bound) need no proof of an absence.
      if (record !== undefined || this.#stalenessMs === 0 || k.canary.trustAbsentLeaseRead) {
        then({ ok: true, record: record ?? { lease: "expired" }, revision: read.revision });
        return;
      }
      const tombstone: LeaseRecord = { lease: "expired" };
      k.coordPut(leaseRecordKey(id), tombstone, undefined, ttlMs, (put) => {
        if (put.ok) then({ ok: true, record: tombstone, revision: put.revision });
        else if (put.conflict && attempt < LEASE_CAS_ATTEMPTS_MAX) {
          this.#readConfirmed(id, ttlMs, attempt + 1, then);
        } else then({ ok: false, error: leaseFailure(id, put) });
      });
    });
  }

  /** Gives a lease op `extraMs` more before its deadline (a revocation's wait). */
  #extendOp(op: number, extraMs: number): void {
    const k = this.#k;
    const pending = k.ops.get(op);
    if (pending === undefined || pending.kind !== "write" || pending.answered) return;
    k.disarm(pending.timer);
    k.ops.set(op, {
      ...pending,
      timer: k.arm(k.now + extraMs + this.#timeoutMs, () => k.timeoutWrite(op)),
    });
  }
}

/** A lease write that failed: contention (after retries) or an unreachable coordinator. */
function leaseFailure(id: string, put: { conflict: boolean; error: WarpError }): WarpError {
  if (put.conflict) {
    return new WarpError("CONTENDED", `Lease record kept changing under the write: ${id}`, {
      cause: put.error,
    });
  }
  return leaseUnavailable(id, put.error);
}

function leaseUnavailable(id: string, cause: WarpError): WarpError {
  return new WarpError("COORDINATOR_UNAVAILABLE", `Coordinator unreachable: lease ${id}`, {
    cause,
  });
}
