/**
 * A node's configuration resolved: every option of {@linkcode NodeConfig} checked against
 * its bounds (a TypeError or RangeError naming it) and given its default, before the node
 * builds anything; and the zero of its counters ({@linkcode NodeStats}).
 *
 * Design: one function from the caller's configuration to plain settings, so `NodeCore`'s
 * constructor reads as the composition of its protocols. Rejected: each protocol module
 * checking its own options, which would spread the cross-option rules (the coordinator's
 * staleness against the lease check) and leave half-built modules behind a refused node.
 *
 * @module
 */

import { describeValue } from "./_describe.ts";
import { LEASE_CHECK_MAX_MS } from "./leases.ts";
import { ECHOES_MAX, isNodeId } from "./messages.ts";
import { ECHOES_PER_HEARTBEAT_DEFAULT } from "./_echo_budget.ts";
import { SESSION_MAX_MS } from "./_sessions.ts";
import type { NodeConfig, NodeStats } from "./node_types.ts";

const DRIFT_PPM_MAX = 100_000;

/** The numbers of a {@linkcode NodeConfig}, checked, with their defaults. */
export interface NodeSettings {
  readonly driftPpm: number;
  readonly entriesMax: number;
  readonly bytesMax: number;
  readonly heartbeatIntervalMs: number;
  readonly gapTimeoutMs: number;
  readonly opsMax: number;
  readonly waitersMax: number;
  readonly peersMax: number;
  readonly echoesMax: number;
  readonly leaseCheckMs: number;
  readonly leaseTimeoutMs: number;
  readonly leasesMax: number;
  readonly sessionMs: number;
  readonly stalenessMs: number;
}

/** Checks `config` (TypeError/RangeError on misuse) and resolves its defaults. */
export function nodeSettings(config: NodeConfig): NodeSettings {
  if (!isNodeId(config.nodeId)) {
    throw new TypeError(`Invalid nodeId, expected 1 to 64 of [A-Za-z0-9_-]: ${config.nodeId}`);
  }
  if (!Number.isSafeInteger(config.incarnation) || config.incarnation < 0) {
    throw new RangeError(`Invalid incarnation: ${config.incarnation}`);
  }
  if (config.nonce !== undefined && typeof config.nonce !== "function") {
    throw new TypeError(`Invalid nonce, expected a function: ${typeof config.nonce}`);
  }
  const driftPpm = positive("maxDriftPpm", config.maxDriftPpm, 500, 0);
  if (driftPpm > DRIFT_PPM_MAX) {
    throw new RangeError(`maxDriftPpm must be at most ${DRIFT_PPM_MAX}: ${driftPpm}`);
  }
  const entriesMax = positive("entriesMax", config.entriesMax, 10_000);
  const bytesMax = positive("bytesMax", config.bytesMax, 64 * 1024 * 1024);
  const heartbeatIntervalMs = positive("heartbeatIntervalMs", config.heartbeatIntervalMs, 250);
  const gapTimeoutMs = positive("gapTimeoutMs", config.gapTimeoutMs, 500);
  const opsMax = positive("opsMax", config.opsMax, 10_000);
  const waitersMax = positive("waitersMax", config.waitersMax, 1000);
  const peersMax = positive("peersMax", config.peersMax, 1024);
  const echoesMax = positive("echoesMax", config.echoesMax, ECHOES_PER_HEARTBEAT_DEFAULT);
  if (!Number.isSafeInteger(echoesMax) || echoesMax > ECHOES_MAX) {
    throw new RangeError(`echoesMax must be an integer of at most ${ECHOES_MAX}: ${echoesMax}`);
  }
  const leaseCheckMs = positive("leaseCheckMs", config.leaseCheckMs, 1000);
  if (leaseCheckMs > LEASE_CHECK_MAX_MS) {
    throw new RangeError(`leaseCheckMs must be at most ${LEASE_CHECK_MAX_MS}: ${leaseCheckMs}`);
  }
  const leaseTimeoutMs = positive("leaseTimeoutMs", config.leaseTimeoutMs, 5000);
  const leasesMax = positive("leasesMax", config.leasesMax, 100_000);

  const sessionMs = positive("sessionMs", config.sessionMs, 0, 0);
  if (sessionMs > SESSION_MAX_MS) {
    throw new RangeError(`sessionMs must be at most ${SESSION_MAX_MS}: ${sessionMs}`);
  }

  const stalenessMs = positive("coordinatorStalenessMs", config.coordinatorStalenessMs, 0, 0);
  if (stalenessMs * 2 >= leaseCheckMs) {
    throw new RangeError(
      `coordinatorStalenessMs must be below half of leaseCheckMs (${leaseCheckMs}): ${stalenessMs}`,
    );
  }
  return {
    driftPpm,
    entriesMax,
    bytesMax,
    heartbeatIntervalMs,
    gapTimeoutMs,
    opsMax,
    waitersMax,
    peersMax,
    echoesMax,
    leaseCheckMs,
    leaseTimeoutMs,
    leasesMax,
    sessionMs,
    stalenessMs,
  };
}

/** A node's counters, all zero. */
export function zeroNodeStats(): NodeStats {
  return {
    hits: 0,
    misses: 0,
    storeReads: 0,
    storeWrites: 0,
    staleFillsDiscarded: 0,
    fillsNotCached: 0,
    invalidationsApplied: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    absurdMessages: 0,
    nonMemberHeartbeats: 0,
    flushesCoalesced: 0,
    gapsDetected: 0,
    flushes: 0,
    entriesFlushed: 0,
    revokesSent: 0,
    acksReceived: 0,
    acksRejected: 0,
    leaseWaits: 0,
    coordinatorCalls: 0,
    leaseChecks: 0,
    leaseDeadValues: 0,
    sessionRenewals: 0,
    sessionsLost: 0,
    noticesPosted: 0,
    writesHeld: 0,
    provenHits: 0,
    loads: 0,
    loadsOvertaken: 0,
    loadTimeouts: 0,
    staleAnswers: 0,
    refreshes: 0,
    clears: 0,
  };
}

function positive(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(
      `${name} must be a number of at least ${min}, got ${describeValue(value)}`,
    );
  }
  return value;
}
