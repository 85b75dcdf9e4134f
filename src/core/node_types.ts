/**
 * The public types of a {@linkcode NodeCore}: its configuration ({@linkcode NodeConfig}),
 * the {@linkcode Canary} flags (each read where its rule lives), the counters it keeps
 * ({@linkcode NodeStats}) and what a caller writes ({@linkcode WriteInput}). Kept apart from
 * `node.ts` so that the state machine reads on its own; `node.ts` re-exports them.
 *
 * @module
 */

import type { NodeId } from "./messages.ts";
import type { ValidatorOptions } from "./_validator.ts";

/** Configuration of a {@linkcode NodeCore}. */
export interface NodeConfig {
  /** This node's id, unique in the cluster: 1 to 64 of `[A-Za-z0-9_-]`. */
  readonly nodeId: NodeId;
  /** A number new at every start of the node (a restart is a new incarnation). */
  readonly incarnation: number;
  /** Most L1 entries. @default {10000} */
  readonly entriesMax?: number;
  /** Most approximate L1 bytes. @default {67108864} */
  readonly bytesMax?: number;
  /**
   * The bound on clock drift, in parts per million, that every node's clock keeps
   * relative to true time. Every guarantee assumes it. @default {500}
   */
  readonly maxDriftPpm?: number;
  /** How often the node broadcasts a heartbeat. @default {250} */
  readonly heartbeatIntervalMs?: number;
  /**
   * How long a gap in a peer's sequence numbers may stay open (messages reordered)
   * before the node flushes its eventual-distributed entries. @default {500}
   */
  readonly gapTimeoutMs?: number;
  /** Most caller operations in flight. @default {10000} */
  readonly opsMax?: number;
  /** Most callers waiting on one key's fill. @default {1000} */
  readonly waitersMax?: number;
  /** Most peers tracked; the least recently heard is forgotten beyond. @default {1024} */
  readonly peersMax?: number;
  /**
   * Most echoes one heartbeat carries (1 to 256); beyond, the echoes take turns over the
   * peers, so heartbeats stay small in a large cluster and the freshness proofs of eventual
   * entries lag by up to `⌈peers / echoesMax⌉` heartbeat intervals (`_echo_budget.ts`).
   * @default {32}
   */
  readonly echoesMax?: number;
  /**
   * How long a check of a lease (a coordinator read that found it active) lets this node
   * serve the values attached to it; also how long `revokeLease` waits after its
   * coordinator write, so that no node still trusts an older check. Shorter: faster
   * revocations, more coordinator reads (about one per lease in use per node per
   * 0.75 × `leaseCheckMs`). A lease records its granter's value, and every node uses the
   * smaller of its own and that one, and a revocation waits the larger, so nodes may
   * differ safely. At most one hour. @default {1000}
   */
  readonly leaseCheckMs?: number;
  /** Deadline of `grantLease`, `keepAliveLease` and the coordinator part of `revokeLease`. @default {5000} */
  readonly leaseTimeoutMs?: number;
  /** Most leases this node remembers the state of. @default {100000} */
  readonly leasesMax?: number;
  /**
   * How long one renewal of this node's session lasts: 0 to run without a session.
   * With a session (it needs a coordinator) the node keeps a member entry in the
   * coordinator's sessions record, renewed by compare-and-set every `sessionMs / 3`, and
   * its distributed entries live to their TTL: strong entries while the session lives,
   * eventual entries past their staleness bound while every member is heard with no gap
   * (see `_sessions.ts`). A writer waits out a silent holder's session in at most
   * `sessionMs × (1 + drift)` after posting a notice. Without one, eventual entries keep to
   * `maxStalenessMs` and strong entries to `leaseMs`. Nodes may differ: each entry records
   * its node's value. At most one hour. @default {0}
   */
  readonly sessionMs?: number;
  /**
   * The most a coordinator read may lag behind the coordinator's state, in ms. Every
   * decision of the session and strong protocols is made by compare-and-set and needs no
   * bound; lease checks are plain reads (a check may not rewrite a lease record, whose
   * writes restart its TTL), so a check trusts what it read from this much earlier. 0 for
   * a coordinator whose reads are current (PostgreSQL, one NATS server); a replicated NATS
   * KV may answer from an old leader (ADR-53) and needs a bound. Below half of
   * `leaseCheckMs`. @default {0}
   */
  readonly coordinatorStalenessMs?: number;
  /**
   * Draws the nonce each revoke carries (its ack must echo it): an integer from 0 to
   * `Number.MAX_SAFE_INTEGER`, unpredictable to whoever cannot read the bus. The runtime
   * passes a cryptographic source; the core never draws randomness of its own. @default
   * {a xorshift stream seeded from nodeId and incarnation: predictable, for tests and the
   * simulator only}
   */
  readonly nonce?: () => number;
  /**
   * The background validator (`_validator.ts`): compares a sample of L1 entries with the
   * store by version, under a store-read budget, and reports (or repairs) differences that
   * outlast their key's bound. Off unless its `mode` says otherwise. @default {undefined}
   */
  readonly validator?: ValidatorOptions;
  /**
   * Deliberately broken behaviour, for the simulator's canaries only: a run with a canary
   * must be reported as a violation, which proves the checkers bite. Never set it in
   * production. @default {undefined}
   */
  readonly canary?: Canary;
}

/** The deliberate bugs a simulator canary can switch on. */
export interface Canary {
  /**
   * A strong-local or eventual conditional write that finds another version still installs
   * its value, at the version it expected plus one: a failed write's trace in L1 (E1s).
   */
  readonly installFailedConditional?: boolean;
  /** Install fill results even when they are older than a version already seen (E2). */
  readonly skipFillCheck?: boolean;
  /** Serve eventual entries for their whole TTL, ignoring maxStalenessMs (E3). */
  readonly ignoreStalenessBound?: boolean;
  /** Complete `revokeLease` right after its coordinator write, without waiting (G1). */
  readonly revokeWithoutWait?: boolean;
  /** Attach values to leases without checking them first, dead ones too (G3). */
  readonly attachUnchecked?: boolean;
  /**
   * Answer a fill that found the key absent with the version after the store's (as if from
   * the store's next revision): absence served at a version the store gave a value (E1s).
   */
  readonly absentVersionOffByOne?: boolean;
  /**
   * Never flush on a sequence gap left open past the gap timeout, nor on first contact with
   * a peer incarnation that has broadcast before: lost invalidations heal only by age (EP).
   */
  readonly ignoreGaps?: boolean;
  /** Serve eventual entries for `maxStalenessMs` on this clock, not `× (1 − drift)` (E3). */
  readonly stalenessWithoutDrift?: boolean;
  /** Wait out a silent holder for `leaseMs + margin`, not `leaseMs × (1 + drift)` (S1, S2). */
  readonly leaseWaitWithoutDrift?: boolean;
  /** Trust a lease check for the node's own `leaseCheckMs`, not the smaller with the record's (G1). */
  readonly trustOwnLeaseCheck?: boolean;
  /** Trust any read of a holder record that lists this node, however old (S1 under stale reads). */
  readonly trustStaleRegistration?: boolean;
  /** Wait out a silent holder's session without the drift factor (S1). */
  readonly sessionWaitWithoutDrift?: boolean;
  /** Believe in a session from the answer of its renewal instead of its sending (S1, E3). */
  readonly sessionFromAnswer?: boolean;
  /** Complete eventual writes without waiting to be an active member (E3). */
  readonly completeWithoutSession?: boolean;
  /** Serve eventual entries past their bound on heartbeats heard, with no echo (E3). */
  readonly trustHeartbeatArrival?: boolean;
  /** Count an ack whose nonce does not match the revoke it names (S1, S2 under a forger). */
  readonly acceptUnboundAcks?: boolean;
  /** Take a lease read as absent for dead without confirming it by a create (GV). */
  readonly trustAbsentLeaseRead?: boolean;
  /**
   * Expire a dropped entry instead of removing it, so fail-safe may serve an invalidated
   * value as its fallback (BentoCache #71; F2).
   */
  readonly fallbackServesRemoved?: boolean;
  /** Cache and answer a load that an invalidation overtook (LB1). */
  readonly cacheOvertakenLoads?: boolean;
  /** Count namespace clears, local and from peers, but remove nothing (CL). */
  readonly ignoreClears?: boolean;
  /**
   * The validator installs the store's answer of a check over whatever L1 holds when it
   * differs, unchecked (go-warp's auto-heal; V1).
   */
  readonly unconditionalHeal?: boolean;
  /**
   * The validator counts a difference as an inconsistency as soon as it finds it, without
   * waiting out the key's bound (an invalidation on its way counted as a failure; V1).
   */
  readonly countWithinBound?: boolean;
}

/** Counters of a node, for monitoring and for the simulator's reports. */
export interface NodeStats {
  /** Reads answered from L1. */
  hits: number;
  /** Reads L1 could not answer. */
  misses: number;
  /** Store reads started. */
  storeReads: number;
  /** Store writes and deletes started. */
  storeWrites: number;
  /** Fill results discarded because they were older than a version already seen. */
  staleFillsDiscarded: number;
  /** Fill results not cached because an invalidation, drop, revoke or flush raced them. */
  fillsNotCached: number;
  /** Invalidations and drops that outdated or removed a cached entry. */
  invalidationsApplied: number;
  /** Valid bus messages received from peers. */
  messagesReceived: number;
  /** Bus messages dropped as malformed, foreign or absurd. */
  messagesDropped: number;
  /**
   * The part of `messagesDropped` that carried a number no real node sends (above
   * `MESSAGE_NUMBER_MAX`, 2^52 − 1): forged.
   */
  absurdMessages: number;
  /**
   * Heartbeats ignored because their sender is not a session member at that incarnation
   * (under sessions only): forged, or from a node this one has not yet read as a member.
   */
  nonMemberHeartbeats: number;
  /**
   * Flushes on a first word from a peer incarnation folded into one pending flush (at most
   * one such flush per heartbeat interval).
   */
  flushesCoalesced: number;
  /** Sequence gaps seen in a peer's broadcasts. */
  gapsDetected: number;
  /** Flushes of every eventual-distributed L1 entry (a broadcast may have been missed). */
  flushes: number;
  /** L1 entries the flushes dropped. */
  entriesFlushed: number;
  /** `revoke` messages sent by strong writes. */
  revokesSent: number;
  /** `ack` messages received for them. */
  acksReceived: number;
  /**
   * Acks that answered no revoke in flight exactly (id, key, this incarnation, the revoke's
   * nonce): late, duplicated or forged. They change nothing.
   */
  acksRejected: number;
  /** Strong writes that completed by waiting out a silent holder's lease. */
  leaseWaits: number;
  /** Coordinator calls started. */
  coordinatorCalls: number;
  /** Coordinator reads of lease records. */
  leaseChecks: number;
  /** Reads that found a value attached to a revoked or expired lease (served as absent). */
  leaseDeadValues: number;
  /** Successful renewals (and joins) of this node's session. */
  sessionRenewals: number;
  /** Times this node found its session ended (removed) and dropped its distributed entries. */
  sessionsLost: number;
  /** Revocation notices posted for silent holders. */
  noticesPosted: number;
  /** Eventual writes whose answer waited for this node's session. */
  writesHeld: number;
  /** L1 hits past an entry's bound, served under the session's freshness proof. */
  provenHits: number;
  /** Loads started (the application's loader, through the driver). */
  loads: number;
  /** Loads discarded and started again because an invalidation overtook them (LB1). */
  loadsOvertaken: number;
  /** Loads aborted at their hard timeout. */
  loadTimeouts: number;
  /** Reads answered by fail-safe with a stale value. */
  staleAnswers: number;
  /** Background refreshes started by refresh-ahead. */
  refreshes: number;
  /** Namespace clears applied: this node's own and its peers'. */
  clears: number;
}

/** What a caller writes: the decoded value for L1 and the payload for the store. */
export interface WriteInput {
  /** The value L1 will serve (the driver's decoded copy). Ignored for a delete. */
  readonly value: unknown;
  /** What the store receives (for example the encoded bytes); `undefined`: delete. */
  readonly payload: unknown;
  /** The encoded size in bytes, for the L1 byte bound. */
  readonly sizeBytes: number;
  /**
   * Leases to attach the value to (ids from `makeLeaseId`; the payload must carry them to
   * the store). Ignored for a delete. @default {undefined}
   */
  readonly leases?: readonly string[];
  /**
   * Write only if the store's version of the key is this one, else reject with
   * `STORE_CONFLICT`. @default {undefined} unconditional
   */
  readonly expectedVersion?: number;
  /**
   * The TTL of the entry this write installs on this node (getOrSet's loader may set it).
   * @default {the key's ttlMs}
   */
  readonly ttlMs?: number;
  /**
   * The write is already in the store at this version (a committed transaction): no store
   * write, nothing installed in L1; only the invalidation (this node's L1 and, for an
   * eventual-distributed key, every node's, as a write of that version). Not for a
   * strong-distributed key, nor with leases or `expectedVersion`. @default {undefined}
   */
  readonly committedVersion?: number;
}
