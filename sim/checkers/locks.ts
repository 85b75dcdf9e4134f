/**
 * Checks a recorded {@linkcode LockHistory} against the lock guarantees of CONSISTENCY.md:
 *
 * - **L1 mutual exclusion.** A grant's belief interval is `[grantTrueMs, end]` with `end`
 *   the earliest of `beliefEndTrueMs` (the true time at which the holder's own clock reached
 *   its latest `heldUntilMs`), `releaseTrueMs`, `lostTrueMs` and `crashTrueMs`. For one
 *   lock, the non-empty intervals of distinct grants never overlap. Every fenced operation
 *   (a **claim**) was checked inside its grant's interval, and it reached the resource
 *   (`arrivalTrueMs`) before any grant with a larger token began: a claim that acts after a
 *   newer grant exists acted on a stale belief (a holder that paused between its check and
 *   its act) — exactly what fencing is for, and still an L1 violation.
 * - **L2 fencing.** Every grant's token is the coordinator revision of the write that
 *   installed that grant's record (a create or a takeover, not a renewal), no later than the
 *   grant; so tokens are distinct and increase in the coordinator's grant order (the order
 *   of those writes — not of the grants' answers, which a slow reply may reorder). Without
 *   the coordinator's log, tokens must increase in answer order among grants answered while
 *   their belief lasted. The
 *   resource's admitted claims, in arrival order, have non-decreasing tokens: a stale
 *   holder's claim arriving after a newer token was admitted was rejected.
 * - **L3 liveness.** Judged on the *unheld stretches* that start (a grant's interval ends)
 *   at or after `l3.fromMs`: if a blocking acquisition was waiting then (or began during the
 *   stretch), the next grant of the lock comes within `l3.boundMs` of the later of the
 *   stretch's start and the waiter's start. A waiter whose acquisition ended otherwise
 *   (timeout, crash) before that deadline does not count. A record the coordinator
 *   installed during the stretch for a holder that never got its answer (it crashed, or gave
 *   up, before the reply) counts as a holder that crashed when it was written: the stretch
 *   starts again then. See {@linkcode lockL3BoundMs}.
 * - **L4 only the holder.** Every renew or release of a grant its node no longer held
 *   failed with `LOCK_NOT_HELD` and caused no coordinator write; and in the coordinator's
 *   log, every renewal (an update that keeps the holder) and every delete was made by the
 *   node incarnation named in the record it replaced.
 *
 * @module
 */

import type { Violation } from "../history.ts";

/** The format tag of this version of the lock history format. */
export const LOCK_HISTORY_FORMAT = "warp-lock-history/1";

/** The lock guarantees, in the order they are reported. */
export const LOCK_GUARANTEES = ["L1", "L2", "L3", "L4"] as const;

/** A lock guarantee of CONSISTENCY.md. */
export type LockGuarantee = typeof LOCK_GUARANTEES[number];

/** A granted lock and how long its holder believed in it (true times, ms). */
export interface LockGrantRecord {
  /** The lock's name. */
  readonly lock: string;
  /** The node that held it. */
  readonly node: string;
  /** The holder as the coordinator record names it: `node/incarnation/handle`. */
  readonly holder: string;
  /** The fencing token of the grant. */
  readonly token: number;
  /** When the grant was answered. */
  readonly grantTrueMs: number;
  /** When the holder's clock reached its latest `heldUntilMs` (renewals included). */
  readonly beliefEndTrueMs: number;
  /** When the holder released it. */
  readonly releaseTrueMs?: number;
  /** When the holder learned it lost it (a renewal conflict). */
  readonly lostTrueMs?: number;
  /** When the holder's node crashed. */
  readonly crashTrueMs?: number;
  /** Successful renewals. */
  readonly renewals: number;
}

/** A fenced operation on the protected resource. */
export interface LockClaimRecord {
  /** The lock's name. */
  readonly lock: string;
  /** The node that made the call. */
  readonly node: string;
  /** The grant it was made under (`holder` of a {@linkcode LockGrantRecord}). */
  readonly holder: string;
  /** The fencing token of the grant. */
  readonly token: number;
  /** When the node checked that it held the lock. */
  readonly checkTrueMs: number;
  /** When the operation reached the resource and was admitted or rejected. */
  readonly arrivalTrueMs: number;
  /** Whether the resource admitted it (its token was not older than one it had seen). */
  readonly admitted: boolean;
}

/** An acquisition, for L3. */
export interface LockAcquireRecord {
  /** The lock's name. */
  readonly lock: string;
  /** The node that made the call. */
  readonly node: string;
  /** The client operation's id. */
  readonly op: number;
  /** When the acquisition started. */
  readonly startTrueMs: number;
  /** When it ended; absent while pending at the end of the history. */
  readonly endTrueMs?: number;
  /** 0: a single try. */
  readonly timeoutMs: number;
  /** `granted`, an error code (`TIMEOUT`, `CONTENDED`…), `crashed` or `pending`. */
  readonly outcome: string;
}

/** A renew or release of a grant its node no longer held, for L4. */
export interface LockMisuseRecord {
  /** The lock's name. */
  readonly lock: string;
  /** The node that made the call. */
  readonly node: string;
  /** The client operation's id. */
  readonly op: number;
  /** Which call it was. */
  readonly kind: "renew" | "release";
  /** The grant's handle. */
  readonly handle: number;
  /** When the call was made. */
  readonly trueMs: number;
  /** The error code it failed with, `ok` if it succeeded, `crashed` or `pending`. */
  readonly outcome: string;
}

/** A write applied by the coordinator. */
export interface LockWriteRecord {
  /** The coordinator key written. */
  readonly key: string;
  /** The lock's name. */
  readonly lock: string;
  /** When the coordinator applied it. */
  readonly trueMs: number;
  /** What the write did. */
  readonly kind: "create" | "update" | "delete";
  /** The coordinator revision of the write (a delete gets one too). */
  readonly revision: number;
  /** The writer: `node/incarnation`. */
  readonly by: string;
  /** The client operation whose call emitted it, if any. */
  readonly op?: number;
  /** The record's holder after a create or update. */
  readonly holder?: string;
  /** The holder of the record it replaced or deleted. */
  readonly prevHolder?: string;
}

/** The parameters of the L3 judgement. */
export interface LockL3Params {
  /** Stretches starting before this true time are not judged (faults still settling). */
  readonly fromMs: number;
  /** Stretches whose deadline falls after this true time are not judged. */
  readonly untilMs: number;
  /** The longest a waiter may wait, see {@linkcode lockL3BoundMs}. */
  readonly boundMs: number;
}

/** A recorded lock history. */
export interface LockHistory {
  /** The format tag, {@linkcode LOCK_HISTORY_FORMAT}. */
  readonly format: typeof LOCK_HISTORY_FORMAT;
  /** Every grant. */
  readonly grants: readonly LockGrantRecord[];
  /** Every fenced operation on the protected resource. */
  readonly claims: readonly LockClaimRecord[];
  /** Every acquisition (L3). */
  readonly acquires: readonly LockAcquireRecord[];
  /** Every renew or release of a grant no longer held (L4). */
  readonly misuses: readonly LockMisuseRecord[];
  /** The coordinator's log of applied writes; without it L2 and L4 check less. */
  readonly writes?: readonly LockWriteRecord[];
  /** Node crashes, in true time. */
  readonly crashes: readonly { readonly node: string; readonly trueMs: number }[];
  /** Absent: L3 is skipped. */
  readonly l3?: LockL3Params;
  /** The drift bound the nodes assumed and their clocks kept, ppm, if known. */
  readonly maxDriftPpm?: number;
}

/** What L3 measured. */
export interface LockL3Stats {
  /** Stretches judged. */
  readonly judged: number;
  /** The longest wait judged, ms (0 if none). */
  readonly worstDelayMs: number;
  /** The L3 bound the waits were judged against, ms. */
  readonly boundMs: number;
}

/** The result of {@linkcode checkLockHistory}. */
export interface LockCheckResult {
  /** The violations found. */
  readonly violations: Violation[];
  /** Each lock guarantee's status. */
  readonly results: Record<LockGuarantee, "pass" | "fail" | "skipped">;
  /** What L3 measured. */
  readonly l3: LockL3Stats;
}

/**
 * The L3 bound in true time: a waiter's takeover timer runs `ttl·(1+drift)+margin` on its
 * own clock, which may be slow by the drift bound, plus `slackMs` for the messages between
 * the stretch's start and the grant (see the simulator's slack).
 *
 * @example
 * ```ts
 * import { lockL3BoundMs } from "./locks.ts";
 * console.log(lockL3BoundMs(100, 500, 1, 0).toFixed(2)); // "101.15"
 * ```
 */
export function lockL3BoundMs(
  ttlMs: number,
  maxDriftPpm: number,
  marginMs: number,
  slackMs: number,
): number {
  const d = maxDriftPpm / 1e6;
  return (ttlMs * (1 + d) + marginMs) / (1 - d) + slackMs;
}

/** A grant's belief interval end: the earliest of its clock, release, loss and crash. */
export function beliefEnd(grant: LockGrantRecord): number {
  return Math.min(
    grant.beliefEndTrueMs,
    grant.releaseTrueMs ?? Infinity,
    grant.lostTrueMs ?? Infinity,
    grant.crashTrueMs ?? Infinity,
  );
}

const VIOLATIONS_MAX = 50;

/**
 * Checks a lock history against L1–L4.
 *
 * @example
 * ```ts
 * import { checkLockHistory } from "./locks.ts";
 * const grant = (holder: string, token: number, from: number, to: number) => ({
 *   lock: "L", node: holder.split("/")[0]!, holder, token, grantTrueMs: from,
 *   beliefEndTrueMs: to, renewals: 0,
 * });
 * const { results } = checkLockHistory({
 *   format: "warp-lock-history/1",
 *   grants: [grant("a/1/1", 5, 0, 100), grant("b/1/1", 9, 90, 200)],
 *   claims: [], acquires: [], misuses: [], crashes: [],
 * });
 * console.log(results.L1); // "fail"
 * ```
 */
export function checkLockHistory(history: LockHistory): LockCheckResult {
  if (history.format !== LOCK_HISTORY_FORMAT) {
    throw new TypeError(`Unknown lock history format: ${String(history.format)}`);
  }
  const l1 = checkL1(history);
  const l2 = checkL2(history);
  const l3 = checkL3(history);
  const l4 = checkL4(history);
  const status = (v: Violation[], applies: boolean) =>
    v.length > 0 ? "fail" as const : applies ? "pass" as const : "skipped" as const;
  return {
    violations: [...l1, ...l2, ...l3.violations, ...l4].slice(0, VIOLATIONS_MAX * 4),
    results: {
      L1: status(l1, history.grants.length > 0),
      L2: status(l2, history.grants.length > 0 || history.claims.length > 0),
      L3: status(l3.violations, l3.stats.judged > 0),
      L4: status(
        l4,
        history.misuses.length > 0 || (history.writes !== undefined && history.writes.length > 0),
      ),
    },
    l3: l3.stats,
  };
}

function byLock<T extends { readonly lock: string }>(items: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(item.lock);
    if (group === undefined) groups.set(item.lock, [item]);
    else group.push(item);
  }
  return groups;
}

function push(violations: Violation[], v: Violation): void {
  if (violations.length < VIOLATIONS_MAX) violations.push(v);
}

const ms = (t: number) => t.toFixed(3);

// ------------------------------------------------------------------ L1

function checkL1(history: LockHistory): Violation[] {
  const violations: Violation[] = [];
  const grants = byLock(history.grants);
  for (const [lock, list] of grants) {
    const held = list.filter((g) => beliefEnd(g) > g.grantTrueMs)
      .sort((a, b) => a.grantTrueMs - b.grantTrueMs);
    let last: LockGrantRecord | undefined;
    for (const g of held) {
      if (last !== undefined && g.grantTrueMs < beliefEnd(last)) {
        push(violations, {
          guarantee: "L1",
          key: lock,
          ops: [g.token, last.token],
          message: `${g.holder} (token ${g.token}) was granted at ${
            ms(g.grantTrueMs)
          } while ${last.holder} (token ${last.token}) believed it held the lock until ${
            ms(beliefEnd(last))
          }`,
        });
      }
      if (last === undefined || beliefEnd(g) > beliefEnd(last)) last = g;
    }
  }
  const byHolder = new Map(history.grants.map((g) => [g.holder, g]));
  const claims = byLock(history.claims);
  for (const [lock, list] of claims) {
    // The earliest start among the grants with a larger token than each token.
    const held = (grants.get(lock) ?? []).filter((g) => beliefEnd(g) > g.grantTrueMs)
      .sort((a, b) => a.token - b.token);
    const newerFrom = new Array<number>(held.length + 1).fill(Infinity);
    for (let i = held.length - 1; i >= 0; i--) {
      newerFrom[i] = Math.min(newerFrom[i + 1]!, held[i]!.grantTrueMs);
    }
    for (const c of list) {
      const g = byHolder.get(c.holder);
      if (g === undefined || g.token !== c.token) {
        push(violations, {
          guarantee: "L1",
          key: lock,
          ops: [c.token],
          message: `${c.node} made a fenced operation with token ${c.token} under no grant of it`,
        });
        continue;
      }
      if (c.checkTrueMs < g.grantTrueMs || c.checkTrueMs >= beliefEnd(g)) {
        push(violations, {
          guarantee: "L1",
          key: lock,
          ops: [c.token],
          message: `${c.holder} checked its belief at ${
            ms(c.checkTrueMs)
          }, outside its belief interval [${ms(g.grantTrueMs)}, ${ms(beliefEnd(g))}]`,
        });
        continue;
      }
      let first = 0; // the first held grant with a larger token
      while (first < held.length && held[first]!.token <= c.token) first++;
      if (newerFrom[first]! < c.arrivalTrueMs) {
        const newer = held.slice(first).find((n) => n.grantTrueMs === newerFrom[first])!;
        push(violations, {
          guarantee: "L1",
          key: lock,
          ops: [c.token, newer.token],
          message: `${c.holder} acted (token ${c.token}, checked at ${ms(c.checkTrueMs)}) at ${
            ms(c.arrivalTrueMs)
          }, after ${newer.holder} was granted token ${newer.token} at ${
            ms(newer.grantTrueMs)
          }: a stale belief (${c.admitted ? "admitted" : "rejected by the fence"})`,
        });
      }
    }
  }
  return violations;
}

// ------------------------------------------------------------------ L2

function checkL2(history: LockHistory): Violation[] {
  const violations: Violation[] = [];
  for (const [lock, list] of byLock(history.grants)) {
    const seen = new Map<number, LockGrantRecord>();
    for (const g of list) {
      const twin = seen.get(g.token);
      if (twin !== undefined) {
        push(violations, {
          guarantee: "L2",
          key: lock,
          ops: [g.token],
          message: `${g.holder} and ${twin.holder} were granted the same token ${g.token}`,
        });
      }
      seen.set(g.token, g);
    }
    if (history.writes === undefined) {
      // Without the coordinator's log, order grants by when they were answered, leaving out
      // those answered after their belief ended (a late answer reorders them harmlessly).
      const ordered = list.filter((g) => beliefEnd(g) > g.grantTrueMs)
        .sort((a, b) => a.grantTrueMs - b.grantTrueMs);
      for (let i = 1; i < ordered.length; i++) {
        const a = ordered[i - 1]!, b = ordered[i]!;
        if (b.token <= a.token) {
          push(violations, {
            guarantee: "L2",
            key: lock,
            ops: [b.token, a.token],
            message: `${b.holder} was granted token ${b.token} at ${
              ms(b.grantTrueMs)
            }, not above ${a.holder}'s earlier token ${a.token}`,
          });
        }
      }
    }
  }
  if (history.writes !== undefined) checkTokenWrites(history, history.writes, violations);
  for (const [lock, list] of byLock(history.claims)) {
    const ordered = list.map((c, i) => ({ c, i }))
      .sort((a, b) => a.c.arrivalTrueMs - b.c.arrivalTrueMs || a.i - b.i);
    let highest: LockClaimRecord | undefined;
    for (const { c } of ordered) {
      if (!c.admitted) continue;
      if (highest !== undefined && c.token < highest.token) {
        push(violations, {
          guarantee: "L2",
          key: lock,
          ops: [c.token, highest.token],
          message: `the resource admitted ${c.holder}'s token ${c.token} at ${
            ms(c.arrivalTrueMs)
          } after admitting token ${highest.token}`,
        });
      }
      if (highest === undefined || c.token > highest.token) highest = c;
    }
  }
  return violations;
}

/** Each grant's token is the revision of the write that installed its record. */
function checkTokenWrites(
  history: LockHistory,
  writes: readonly LockWriteRecord[],
  violations: Violation[],
): void {
  const byRevision = new Map(writes.map((w) => [w.revision, w]));
  const installs: { w: LockWriteRecord; g: LockGrantRecord }[] = [];
  for (const g of history.grants) {
    const w = byRevision.get(g.token);
    const installing = w !== undefined && w.lock === g.lock && w.holder === g.holder &&
      (w.kind === "create" || w.prevHolder !== g.holder);
    if (!installing || w.trueMs > g.grantTrueMs) {
      push(violations, {
        guarantee: "L2",
        key: g.lock,
        ops: [g.token],
        message: w === undefined
          ? `${g.holder}'s token ${g.token} is no coordinator revision`
          : !installing
          ? `${g.holder}'s token ${g.token} is the revision of a ${w.kind} by ${w.by} of ${
            w.holder ?? "nothing"
          }, not of the write that installed its grant`
          : `${g.holder} was granted at ${ms(g.grantTrueMs)} before its record was written at ${
            ms(w.trueMs)
          }`,
      });
      continue;
    }
    installs.push({ w, g });
  }
  installs.sort((a, b) => a.w.trueMs - b.w.trueMs || a.w.revision - b.w.revision);
  for (let i = 1; i < installs.length; i++) {
    const a = installs[i - 1]!, b = installs[i]!;
    if (a.g.lock === b.g.lock && b.g.token <= a.g.token) {
      push(violations, {
        guarantee: "L2",
        key: b.g.lock,
        ops: [b.g.token, a.g.token],
        message: `${b.g.holder}'s token ${b.g.token} is not above the earlier grant's ${a.g.token}`,
      });
    }
  }
}

// ------------------------------------------------------------------ L3

function checkL3(history: LockHistory): { violations: Violation[]; stats: LockL3Stats } {
  const violations: Violation[] = [];
  const params = history.l3;
  if (params === undefined) {
    return { violations, stats: { judged: 0, worstDelayMs: 0, boundMs: 0 } };
  }
  let judged = 0;
  let worst = 0;
  const acquires = byLock(history.acquires);
  const installs = byLock(
    (history.writes ?? []).filter((w) =>
      w.kind === "create" || (w.kind === "update" && w.prevHolder !== w.holder)
    ),
  );
  for (const [lock, list] of byLock(history.grants)) {
    const starts = [...list].sort((a, b) => a.grantTrueMs - b.grantTrueMs);
    const waiting = (acquires.get(lock) ?? []).filter((a) => a.timeoutMs > 0);
    const ends = list.map((g) => ({ g, end: beliefEnd(g) })).sort((a, b) => a.end - b.end);
    for (const { g, end } of ends) {
      if (end < params.fromMs) continue;
      const nextGrant = starts.find((o) => o.grantTrueMs >= end);
      const next = nextGrant?.grantTrueMs ?? Infinity;
      // Stretches inside another grant's interval are not unheld.
      if (list.some((o) => o !== g && o.grantTrueMs <= end && beliefEnd(o) > end)) continue;
      // A record installed for a holder that never got its answer (it crashed or gave up)
      // is a holder that vanished at once: the stretch starts again when it was written.
      let s = end;
      for (const w of installs.get(lock) ?? []) {
        if (w.trueMs > s && w.trueMs < next && w.holder !== nextGrant?.holder) s = w.trueMs;
      }
      // The waiter that could have taken it over first.
      let from = Infinity;
      let waiter: LockAcquireRecord | undefined;
      for (const a of waiting) {
        const w = Math.max(s, a.startTrueMs);
        if (a.startTrueMs >= next || w >= from) continue;
        if (a.endTrueMs !== undefined && a.endTrueMs < s) continue; // not waiting any more
        const deadline = w + params.boundMs;
        const gaveUp = a.outcome !== "granted" && (a.endTrueMs ?? Infinity) < deadline;
        if (gaveUp) continue;
        from = w;
        waiter = a;
      }
      if (waiter === undefined || from + params.boundMs > params.untilMs) continue;
      judged++;
      const delay = next - from;
      if (delay > worst && Number.isFinite(delay)) worst = delay;
      if (delay > params.boundMs) {
        push(violations, {
          guarantee: "L3",
          key: lock,
          ops: [g.token],
          message: `after ${g.holder}'s belief (token ${g.token}) ended at ${
            ms(end)
          }, ${waiter.node} waited from ${ms(from)} and the next grant came ${
            Number.isFinite(next) ? `at ${ms(next)}, ${delay.toFixed(3)} ms later` : "never"
          }, beyond the bound of ${params.boundMs.toFixed(3)} ms`,
        });
      }
    }
  }
  return { violations, stats: { judged, worstDelayMs: worst, boundMs: params.boundMs } };
}

// ------------------------------------------------------------------ L4

function checkL4(history: LockHistory): Violation[] {
  const violations: Violation[] = [];
  const writesByOp = new Map<number, LockWriteRecord>();
  for (const w of history.writes ?? []) if (w.op !== undefined) writesByOp.set(w.op, w);
  for (const m of history.misuses) {
    const write = writesByOp.get(m.op);
    if (write !== undefined) {
      push(violations, {
        guarantee: "L4",
        key: m.lock,
        ops: [m.op],
        message:
          `${m.node}'s ${m.kind} of lost grant ${m.handle} wrote the coordinator (a ${write.kind} at revision ${write.revision})`,
      });
    }
    if (m.outcome !== "LOCK_NOT_HELD" && m.outcome !== "crashed" && m.outcome !== "pending") {
      push(violations, {
        guarantee: "L4",
        key: m.lock,
        ops: [m.op],
        message: `${m.node}'s ${m.kind} of lost grant ${m.handle} ended ${m.outcome}, ` +
          `not LOCK_NOT_HELD`,
      });
    }
  }
  for (const w of history.writes ?? []) {
    const renewal = w.kind === "update" && w.prevHolder === w.holder;
    if (!renewal && w.kind !== "delete") continue;
    if (w.prevHolder !== undefined && !w.prevHolder.startsWith(`${w.by}/`)) {
      push(violations, {
        guarantee: "L4",
        key: w.lock,
        ops: [w.revision],
        message: `${w.by} ${renewal ? "renewed" : "deleted"} ${w.prevHolder}'s record at ${
          ms(w.trueMs)
        } (revision ${w.revision})`,
      });
    }
  }
  return violations;
}
