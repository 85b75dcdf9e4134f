/**
 * Checks the lease guarantees G1–G3 of CONSISTENCY.md on a history with a lease part.
 *
 * - **G1**: no read that completes after `revokeLease(id)` completed ok returns a value
 *   attached to `id`.
 * - **G2**: no read returns a value attached to a lease later than
 *   `expiry + leaseCheckMs × (1 + drift) + 1 ms`, where `expiry` is the true time the
 *   coordinator forgot the lease (its last active write plus the TTL; the simulated
 *   coordinator's clock is true time). That is within the contract's
 *   `ttl × (1 + maxDrift) + margin` of the last keep-alive, with margin
 *   `leaseCheckMs × (1 + maxDrift) + 1 ms`.
 * - **G3**: no keep-alive invoked after the lease died (revoked or expired in the
 *   coordinator) succeeds; no write attaching a lease succeeds when invoked more than
 *   `leaseCheckMs × (1 + drift) + 1 ms` after its death (a node may attach on the strength
 *   of a check that young, which orders the write before the death).
 *
 * - **GV** (lease validity, the other side of G1/G2): a read that reports the value of
 *   version v absent because of its leases completes after one of them died in the
 *   coordinator (revoked or expired). Leases must not kill live values.
 *
 * Values are mapped to their leases through the writes that wrote them (each write's
 * value is unique), versions through the ok writes that recorded them.
 *
 * @module
 */

import type { History, LeaseHistory, LeaseRecordLog, Violation } from "../history.ts";

/** The lease guarantees. */
export const LEASE_GUARANTEES = ["G1", "G2", "G3", "GV"] as const;

/** A lease guarantee. */
export type LeaseGuarantee = typeof LEASE_GUARANTEES[number];

/** Per guarantee: how many ops were checked, and the violations. */
export interface LeaseCheckResult {
  readonly checked: Record<LeaseGuarantee, number>;
  readonly violations: Violation[];
}

/**
 * When the coordinator forgot a lease record: the first active write not followed by
 * another within the TTL, plus the TTL (possibly after the end of the run). `Infinity`
 * if the lease was never written active.
 */
export function leaseExpiryMs(log: LeaseRecordLog): number {
  const writes = [...log.activeWritesMs].sort((a, b) => a - b);
  for (let i = 0; i < writes.length; i++) {
    const lapse = writes[i]! + log.ttlMs;
    const next = writes[i + 1];
    if (next === undefined || next > lapse) return lapse;
  }
  return Infinity;
}

/**
 * Checks G1–G3. `report` receives every violation.
 *
 * @example
 * ```ts
 * import { checkLeases } from "./leases.ts";
 * const history = {
 *   format: "warp-history/1" as const,
 *   keys: { "k": { mode: "strong-distributed" as const, leased: true } },
 *   ops: [
 *     { id: 1, process: "n0", key: "k", kind: "write" as const, value: "x", leases: ["l"],
 *       invokeMs: 0, completeMs: 1, outcome: "ok" as const, version: 1 },
 *     { id: 3, process: "n1", key: "k", kind: "read" as const, value: "x", found: true,
 *       invokeMs: 9, completeMs: 9, outcome: "ok" as const, version: 1 },
 *   ],
 *   leases: {
 *     leaseCheckMs: 100, maxDriftPpm: 0,
 *     ops: [{ id: 2, process: "n0", kind: "revoke" as const, lease: "l", invokeMs: 2,
 *             completeMs: 5, outcome: "ok" as const }],
 *     records: { l: { ttlMs: 1000, activeWritesMs: [0], revokedAtMs: 3 } },
 *   },
 * };
 * console.log(checkLeases(history).violations[0]?.guarantee); // "G1"
 * ```
 */
export function checkLeases(history: History): LeaseCheckResult {
  const checked: Record<LeaseGuarantee, number> = { G1: 0, G2: 0, G3: 0, GV: 0 };
  const violations: Violation[] = [];
  const leases: LeaseHistory | undefined = history.leases;
  if (leases === undefined) return { checked, violations };
  const slackMs = leases.leaseCheckMs * (1 + leases.maxDriftPpm / 1e6) + 1;

  const leasesOfValue = new Map<unknown, readonly string[]>();
  for (const op of history.ops) {
    if (op.kind === "write" && op.leases !== undefined && op.leases.length > 0) {
      leasesOfValue.set(op.value, op.leases);
    }
  }
  const revokedAt = new Map<string, { completeMs: number; op: number }>();
  for (const op of leases.ops) {
    if (op.kind !== "revoke" || op.outcome !== "ok" || op.completeMs === null) continue;
    const seen = revokedAt.get(op.lease);
    if (seen === undefined || op.completeMs < seen.completeMs) {
      revokedAt.set(op.lease, { completeMs: op.completeMs, op: op.id });
    }
  }
  const expiry = new Map<string, number>();
  /** When the coordinator forgot the lease (Infinity: unknown lease, or never). */
  const expiryMs = (lease: string): number => {
    let at = expiry.get(lease);
    if (at === undefined) {
      const log = leases.records[lease];
      at = log === undefined ? Infinity : leaseExpiryMs(log);
      expiry.set(lease, at);
    }
    return at;
  };
  const deathMs = (lease: string): number =>
    Math.min(expiryMs(lease), leases.records[lease]?.revokedAtMs ?? Infinity);

  // G1 and G2: what reads served.
  for (const op of history.ops) {
    if (op.kind !== "read" || op.outcome !== "ok" || op.found !== true) continue;
    if (!history.keys[op.key]?.leased || op.completeMs === null) continue;
    const attached = leasesOfValue.get(op.value);
    if (attached === undefined) continue;
    for (const lease of attached) {
      checked.G1++;
      checked.G2++;
      const revoke = revokedAt.get(lease);
      if (revoke !== undefined && op.completeMs > revoke.completeMs) {
        violations.push({
          guarantee: "G1",
          key: op.key,
          ops: [op.id, revoke.op],
          message: `read at ${ms(op.completeMs)} served ${String(op.value)}, attached to lease ` +
            `${lease} whose revocation completed at ${ms(revoke.completeMs)}`,
        });
      }
      const lapse = expiryMs(lease);
      if (op.completeMs > lapse + slackMs) {
        violations.push({
          guarantee: "G2",
          key: op.key,
          ops: [op.id],
          message: `read at ${ms(op.completeMs)} served ${String(op.value)}, attached to lease ` +
            `${lease} which expired in the coordinator at ${ms(lapse)} (bound ${
              ms(lapse + slackMs)
            })`,
        });
      }
    }
  }

  // GV: a value reported dead had a dead lease.
  const writeAt = new Map<string, { leases: readonly string[]; id: number }>();
  for (const op of history.ops) {
    if (op.kind === "write" && op.outcome === "ok" && op.version !== undefined) {
      writeAt.set(`${op.version}\u0000${op.key}`, { leases: op.leases ?? [], id: op.id });
    }
  }
  for (const op of history.ops) {
    if (op.kind !== "read" || op.outcome !== "ok" || op.found !== false || !op.version) continue;
    if (!history.keys[op.key]?.leased || op.completeMs === null) continue;
    const write = writeAt.get(`${op.version}\u0000${op.key}`);
    if (write === undefined) continue; // a delete's version, or an unknown write's
    checked.GV++;
    if (!write.leases.some((lease) => deathMs(lease) < op.completeMs!)) {
      violations.push({
        guarantee: "GV",
        key: op.key,
        ops: [op.id, write.id],
        message: `read at ${ms(op.completeMs)} found version ${op.version} absent, but ` +
          `no lease of write ${write.id} (${write.leases.join(", ") || "none"}) was dead`,
      });
    }
  }

  // G3: keep-alives and attaching writes after the lease died.
  for (const op of leases.ops) {
    if (op.kind !== "keepalive" || op.outcome === "fail") continue;
    checked.G3++;
    if (op.outcome === "ok" && op.invokeMs > deathMs(op.lease)) {
      violations.push({
        guarantee: "G3",
        key: op.lease,
        ops: [op.id],
        message: `keep-alive invoked at ${ms(op.invokeMs)} succeeded on lease ${op.lease}, ` +
          `dead in the coordinator since ${ms(deathMs(op.lease))}`,
      });
    }
  }
  for (const op of history.ops) {
    if (op.kind !== "write" || op.leases === undefined || op.outcome === "fail") continue;
    checked.G3++;
    if (op.outcome !== "ok") continue;
    for (const lease of op.leases) {
      const death = deathMs(lease);
      if (op.invokeMs > death + slackMs) {
        violations.push({
          guarantee: "G3",
          key: op.key,
          ops: [op.id],
          message: `write invoked at ${ms(op.invokeMs)} attached ${String(op.value)} to lease ` +
            `${lease}, dead since ${ms(death)}`,
        });
      }
    }
  }
  return { checked, violations };
}

function ms(value: number): string {
  return `${value.toFixed(3)} ms`;
}
