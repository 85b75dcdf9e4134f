/**
 * The pure state machine of one Warp node.
 *
 * @module
 */

import { assert, WarpError } from "./errors.ts";
import type {
  CoordReadResult,
  CoordWriteResult,
  Effect,
  HolderRecord,
  OpResult,
  StoreReadResult,
  StoreWriteResult,
} from "./effects.ts";
import { L1Cache } from "./l1.ts";
import {
  isLeaseId,
  LEASE_CHECK_MAX_MS,
  leaseListProblem,
  leaseRecordKey,
  leaseTtlMs,
} from "./leases.ts";
import type { LeaseKnowledge, LeaseRecord } from "./leases.ts";
import type { Entry, EntryData } from "./l1.ts";
import { isNodeId, validateMessage } from "./messages.ts";
import type { Message, NodeId } from "./messages.ts";
import { Registry } from "./registry.ts";
import type { KeyOptions, KeyPolicy } from "./registry.ts";
import { TimerHeap } from "./timers.ts";

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
   * Deliberately broken behaviour, for the simulator's canaries only: a run with a canary
   * must be reported as a violation, which proves the checkers bite. Never set it in
   * production. @default {undefined}
   */
  readonly canary?: Canary;
}

/** The deliberate bugs a simulator canary can switch on. */
export interface Canary {
  /** Install fill results even when they are older than a version already seen (E2). */
  readonly skipFillCheck?: boolean;
  /** Serve eventual entries for their whole TTL, ignoring maxStalenessMs (E3). */
  readonly ignoreStalenessBound?: boolean;
  /** Complete `revokeLease` right after its coordinator write, without waiting (G1). */
  readonly revokeWithoutWait?: boolean;
  /** Attach values to leases without checking them first, dead ones too (G3). */
  readonly attachUnchecked?: boolean;
  /** Serve eventual entries for `maxStalenessMs` on this clock, not `× (1 − drift)` (E3). */
  readonly stalenessWithoutDrift?: boolean;
  /** Wait out a silent holder for `leaseMs + margin`, not `leaseMs × (1 + drift)` (S1, S2). */
  readonly leaseWaitWithoutDrift?: boolean;
  /** Trust a lease check for the node's own `leaseCheckMs`, not the smaller with the record's (G1). */
  readonly trustOwnLeaseCheck?: boolean;
}

/** Counters of a node, for monitoring and for the simulator's reports. */
export interface NodeStats {
  hits: number;
  misses: number;
  storeReads: number;
  storeWrites: number;
  /** Fill results discarded because they were older than a version already seen. */
  staleFillsDiscarded: number;
  /** Fill results not cached because an invalidation, drop, revoke or flush raced them. */
  fillsNotCached: number;
  invalidationsApplied: number;
  messagesReceived: number;
  /** Bus messages dropped as malformed or foreign. */
  messagesDropped: number;
  gapsDetected: number;
  flushes: number;
  revokesSent: number;
  acksReceived: number;
  /** Strong writes that completed by waiting out a silent holder's lease. */
  leaseWaits: number;
  coordinatorCalls: number;
  /** Coordinator reads of lease records. */
  leaseChecks: number;
  /** Reads that found a value attached to a revoked or expired lease (served as absent). */
  leaseDeadValues: number;
}

const DRIFT_PPM_MAX = 100_000;
const FILL_ATTEMPTS_MAX = 4;
const AHEAD_MAX = 256;
const PEER_FORGET_MS = 600_000;
const MARGIN_MS = 1;
/** Lease checks one read or write makes before it gives up on a slow coordinator. */
const LEASE_ROUNDS_MAX = 3;
/** Lease write attempts (keep-alive, revoke) before contention is reported. */
const LEASE_CAS_ATTEMPTS_MAX = 8;
const CONTENTION_BACKOFF_MS = 20;
const CONTENDED_MAX = 10_000;

/** The coordinator key of a strong-distributed key's holder record. */
export function holderRecordKey(key: string): string {
  // Coordinators limit key length (NATS KV: 1024). Long keys share records by hash: a
  // collision only makes two keys contend for one write slot, never breaks safety.
  return key.length <= HOLDER_KEY_INLINE_MAX ? `strong/${key}` : `strong#${hash53(key)}`;
}

const HOLDER_KEY_INLINE_MAX = 512;

/** A 53-bit string hash (cyrb53), pure and fast. */
function hash53(text: string): string {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

interface Fill {
  readonly key: string;
  readonly policy: KeyPolicy;
  readonly waiters: number[];
  /** Local time the current store read was issued. */
  askMs: number;
  /** Strong: local time the holder registration was confirmed (issued). */
  leaseAskMs: number;
  /** The oldest version this fill may return. */
  minVersion: number;
  /** Whether the result may be cached (no revoke, drop or pending write raced it). */
  cacheable: boolean;
  readonly flushEpoch: number;
  attempts: number;
  /** Whether the store read has been issued (joiners after that get an older read). */
  readIssued: boolean;
  /** Lease checks made for this fill's answer. */
  leaseRounds: number;
}

interface ReadOp {
  readonly kind: "read";
  readonly key: string;
  readonly timer: number;
  fill: Fill | undefined;
}

interface WriteOp {
  readonly kind: "write";
  readonly key: string;
  readonly timer: number;
  /** Set once the op has been answered; a late store answer still takes effect. */
  answered: boolean;
}

type Op = ReadOp | WriteOp;

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
}

interface StrongWrite {
  readonly op: number;
  readonly id: number;
  readonly key: string;
  readonly policy: KeyPolicy;
  readonly input: WriteInput;
  readonly deadlineMs: number;
  phase: "read" | "claim" | "revoke" | "store" | "release" | "done";
  revision: number;
  record: HolderRecord | undefined;
  awaiting: Set<NodeId>;
  timer: number;
  retransmitTimer: number;
  storeAttempts: number;
  /** Set when a revoke or drop of the key arrives while the release is in flight. */
  revokedDuringRelease: boolean;
  /** Whether the claim was tried from the cached record (a conflict then reads). */
  optimistic: boolean;
}

interface Peer {
  inc: number;
  contiguous: number;
  highest: number;
  readonly ahead: Set<number>;
  gapSinceMs: number | undefined;
  lastHeardMs: number;
}

/**
 * The pure, I/O-free state machine of one Warp node: L1 cache, the three consistency
 * modes, single-flight fills, the invalidation and heartbeat protocol, and the strong
 * write protocol against the coordinator.
 *
 * **Driver contract.** A driver (the in-process runtime, the NATS runtime, the
 * simulator) owns the clock, the store, the coordinator and the bus:
 * 1. Every input carries `nowMs`, the node's own monotonic clock in milliseconds.
 * 2. After every call, take the effects with {@linkcode NodeCore.takeEffects} and perform
 *    them in order: `broadcast`/`send` on the bus; `store-*` and `coord-*` asynchronously,
 *    reporting each outcome exactly once with the matching `on…` method and the `io`
 *    id; `resolve`/`reject` answer the caller's operation `op`.
 * 3. Call {@linkcode NodeCore.tick} once right after creation (it starts the heartbeat),
 *    then at or after {@linkcode NodeCore.nextDeadlineMs}; an early or spurious tick is
 *    harmless.
 * 4. Feed every bus message to {@linkcode NodeCore.onMessage}; it validates and drops
 *    malformed ones.
 * 5. On a hot read, call {@linkcode NodeCore.hit} first: it answers from L1 with no
 *    effect and no allocation, or returns `undefined`; then call `get`.
 * If a method throws an `InvariantError`, the node is broken: stop using it.
 *
 * @example A strong-local key, driven by hand
 * ```ts
 * import { NodeCore } from "./node.ts";
 * const node = new NodeCore({ nodeId: "a", incarnation: 1 });
 * node.register("user:*", { mode: "strong-local" });
 * node.set(1, "user:1", { value: "ada", payload: "ada", sizeBytes: 3 }, 0);
 * const [write] = node.takeEffects();
 * if (write?.type !== "store-write") throw new Error("expected a store write");
 * node.onStoreWrite(write.io, { ok: true, version: 1 }, 5);
 * console.log(node.takeEffects()[0]?.type); // "resolve"
 * console.log(node.hit("user:1", 6)?.value); // "ada"
 * ```
 */
export class NodeCore {
  /** This node's id. */
  readonly nodeId: NodeId;
  /** This node's incarnation. */
  readonly incarnation: number;
  /** Counters. */
  readonly stats: NodeStats = {
    hits: 0,
    misses: 0,
    storeReads: 0,
    storeWrites: 0,
    staleFillsDiscarded: 0,
    fillsNotCached: 0,
    invalidationsApplied: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    gapsDetected: 0,
    flushes: 0,
    revokesSent: 0,
    acksReceived: 0,
    leaseWaits: 0,
    coordinatorCalls: 0,
    leaseChecks: 0,
    leaseDeadValues: 0,
  };

  readonly #registry = new Registry();
  readonly #l1: L1Cache;
  readonly #timers = new TimerHeap();
  readonly #timerActions = new Map<number, () => void>();
  readonly #drift: number;
  readonly #heartbeatIntervalMs: number;
  readonly #gapTimeoutMs: number;
  readonly #opsMax: number;
  readonly #waitersMax: number;
  readonly #peersMax: number;
  readonly #canary: Canary;
  readonly #leaseCheckMs: number;
  readonly #leaseTimeoutMs: number;
  readonly #leasesMax: number;
  /** What this node knows of each lease it has met. */
  readonly #leases = new Map<string, LeaseKnowledge>();

  #effects: Effect[] = [];
  #now = -Infinity;
  #closed = false;
  #nextId = 1;
  /** Last broadcast sequence number used. */
  #seq = 0;
  #flushEpoch = 0;
  #heartbeatTimer = 0;

  readonly #ops = new Map<number, Op>();
  readonly #fills = new Map<string, Fill>();
  /**
   * Fills replaced by a newer one (no longer joinable) that still answer their own
   * readers: their version floors must rise like the current fill's (simulator seed 9800857).
   */
  readonly #supersededFills = new Map<string, Fill[]>();
  /** Keys with local or eventual writes in flight: how many, and the newest version seen. */
  readonly #writeFloors = new Map<string, { count: number; floor: number }>();
  readonly #strongChains = new Map<string, StrongWrite[]>();
  readonly #strongById = new Map<number, StrongWrite>();
  /** The holder record of a strong key as this node last saw it, for optimistic claims. */
  readonly #records = new Map<string, { record: HolderRecord; revision: number }>();
  /** Keys whose write slot another writer holds: the record's revision and when first seen. */
  readonly #contended = new Map<string, { revision: number; sinceMs: number }>();
  readonly #peers = new Map<NodeId, Peer>();
  readonly #storeReads = new Map<number, (r: StoreReadResult) => void>();
  readonly #storeWrites = new Map<number, (r: StoreWriteResult) => void>();
  readonly #coordReads = new Map<number, (r: CoordReadResult) => void>();
  readonly #coordWrites = new Map<number, (r: CoordWriteResult) => void>();

  /** Creates a node; validates the configuration (TypeError/RangeError on misuse). */
  constructor(config: NodeConfig) {
    if (!isNodeId(config.nodeId)) {
      throw new TypeError(`Invalid nodeId, expected 1 to 64 of [A-Za-z0-9_-]: ${config.nodeId}`);
    }
    if (!Number.isSafeInteger(config.incarnation) || config.incarnation < 0) {
      throw new RangeError(`Invalid incarnation: ${config.incarnation}`);
    }
    this.nodeId = config.nodeId;
    this.incarnation = config.incarnation;
    const driftPpm = positive("maxDriftPpm", config.maxDriftPpm, 500, 0);
    if (driftPpm > DRIFT_PPM_MAX) {
      throw new RangeError(`maxDriftPpm must be at most ${DRIFT_PPM_MAX}: ${driftPpm}`);
    }
    this.#drift = driftPpm / 1e6;
    this.#l1 = new L1Cache({
      entriesMax: positive("entriesMax", config.entriesMax, 10_000),
      bytesMax: positive("bytesMax", config.bytesMax, 64 * 1024 * 1024),
    });
    this.#heartbeatIntervalMs = positive("heartbeatIntervalMs", config.heartbeatIntervalMs, 250);
    this.#gapTimeoutMs = positive("gapTimeoutMs", config.gapTimeoutMs, 500);
    this.#opsMax = positive("opsMax", config.opsMax, 10_000);
    this.#waitersMax = positive("waitersMax", config.waitersMax, 1000);
    this.#peersMax = positive("peersMax", config.peersMax, 1024);
    this.#canary = config.canary ?? {};
    this.#leaseCheckMs = positive("leaseCheckMs", config.leaseCheckMs, 1000);
    if (this.#leaseCheckMs > LEASE_CHECK_MAX_MS) {
      throw new RangeError(
        `leaseCheckMs must be at most ${LEASE_CHECK_MAX_MS}: ${this.#leaseCheckMs}`,
      );
    }
    this.#leaseTimeoutMs = positive("leaseTimeoutMs", config.leaseTimeoutMs, 5000);
    this.#leasesMax = positive("leasesMax", config.leasesMax, 100_000);
  }

  // ---------------------------------------------------------------- registration

  /** Registers an exact key or glob pattern; see {@linkcode Registry.register}. */
  register(pattern: string, options: KeyOptions): KeyPolicy {
    return this.#registry.register(pattern, options);
  }

  /** The policy of `key`, or `undefined` if unregistered. */
  policyOf(key: string): KeyPolicy | undefined {
    return this.#registry.find(key);
  }

  // ---------------------------------------------------------------- driver API

  /** Takes the effects produced since the last call, in order. */
  takeEffects(): Effect[] {
    const effects = this.#effects;
    if (effects.length === 0) return effects;
    this.#effects = [];
    return effects;
  }

  /** The earliest local time at which {@linkcode tick} has work, or `Infinity`. */
  nextDeadlineMs(): number {
    return this.#timers.nextDeadlineMs();
  }

  /** Runs every timer due at `nowMs`. */
  tick(nowMs: number): void {
    this.#advance(nowMs);
    if (this.#heartbeatTimer === 0 && !this.#closed) this.#scheduleHeartbeat();
    for (
      let id = this.#timers.popDue(this.#now);
      id !== undefined;
      id = this.#timers.popDue(this.#now)
    ) {
      const action = this.#timerActions.get(id);
      this.#timerActions.delete(id);
      action?.();
    }
  }

  /** Number of L1 entries. */
  get l1Size(): number {
    return this.#l1.size;
  }

  /** L1 entries evicted to respect the bounds. */
  get l1Evictions(): number {
    return this.#l1.evictions;
  }

  /** Approximate L1 bytes. */
  get l1Bytes(): number {
    return this.#l1.bytes;
  }

  /** The L1 entry of `key` whatever its freshness, for inspection (tests, validator). */
  inspect(key: string): Entry | undefined {
    return this.#l1.get(key);
  }

  /** Number of caller operations in flight. */
  get opsInFlight(): number {
    return this.#ops.size;
  }

  /**
   * The hot read path: the entry of `key` if L1 may serve it at `nowMs` under its mode's
   * rules, else `undefined`. No effects, no allocation.
   */
  hit(key: string, nowMs: number): Entry | undefined {
    const entry = this.#l1.get(key);
    if (entry === undefined || nowMs >= entry.freshUntilMs || this.#closed) return undefined;
    if (entry.leases !== undefined && !this.#leasesServable(entry.leases, nowMs)) return undefined;
    this.#l1.touch(entry);
    this.stats.hits++;
    return entry;
  }

  /** Reads `key` as caller operation `op`: from L1 if it may serve it, else the store. */
  get(op: number, key: string, nowMs: number): void {
    this.#advance(nowMs);
    const policy = this.#admit(op, key);
    if (policy === undefined) return;
    if (this.#serveHit(op, key)) return;
    this.stats.misses++;
    const readOp: ReadOp = {
      kind: "read",
      key,
      timer: this.#arm(this.#now + policy.readTimeoutMs, () => this.#timeoutRead(op)),
      fill: undefined,
    };
    this.#ops.set(op, readOp);
    this.#readMiss(op, readOp, policy, 0);
  }

  /** Answers read `op` from L1 if L1 may serve `key` now; returns whether it did. */
  #serveHit(op: number, key: string): boolean {
    const entry = this.hit(key, this.#now);
    if (entry === undefined) return false;
    this.#resolve(op, {
      found: entry.found,
      value: entry.value,
      version: entry.version,
      source: "l1",
    });
    return true;
  }

  /**
   * A read L1 could not answer at once. A fresh entry whose leases are not known active
   * waits for their check; one attached to a dead lease is dropped; then the store.
   */
  #readMiss(op: number, readOp: ReadOp, policy: KeyPolicy, leaseRounds: number): void {
    const key = readOp.key;
    const entry = this.#l1.get(key);
    if (entry?.leases !== undefined && this.#now < entry.freshUntilMs) {
      const verdict = this.#leaseVerdict(entry.leases);
      if (verdict === "unknown" && leaseRounds < LEASE_ROUNDS_MAX) {
        this.#ensureLeases(entry.leases, () => {
          if (this.#ops.get(op) !== readOp) return; // timed out meanwhile
          if (!this.#serveHit(op, key)) this.#readMiss(op, readOp, policy, leaseRounds + 1);
        });
        return;
      }
      // Dead, or uncheckable: the store decides (its answer goes through the same rule).
      this.#l1.delete(key);
    }
    let fill = this.#fills.get(key);
    if (fill !== undefined && !this.#joinable(fill)) fill = undefined; // superseded below
    if (fill !== undefined && fill.waiters.length >= this.#waitersMax) {
      this.#reject(op, new WarpError("LIMIT_EXCEEDED", `Too many readers waiting on key: ${key}`));
      return;
    }
    readOp.fill = fill;
    if (fill !== undefined) {
      fill.waiters.push(op);
      return;
    }
    fill = {
      key,
      policy,
      waiters: [op],
      askMs: this.#now,
      leaseAskMs: this.#now,
      minVersion: 0,
      cacheable: true,
      flushEpoch: this.#flushEpoch,
      attempts: 0,
      readIssued: false,
      leaseRounds: 0,
    };
    readOp.fill = fill;
    const superseded = this.#fills.get(key);
    if (superseded !== undefined) {
      const list = this.#supersededFills.get(key);
      if (list === undefined) this.#supersededFills.set(key, [superseded]);
      else list.push(superseded);
    }
    this.#fills.set(key, fill);
    if (policy.mode === "strong-distributed") this.#strongFillRegister(fill);
    else this.#fillRead(fill);
  }

  /**
   * Writes `input` under `key` as caller operation `op`. With `input.leases`, each lease is
   * checked active first (a dead one rejects with `LEASE_REVOKED` or `LEASE_EXPIRED`, G3)
   * and the value is attached to them.
   */
  set(op: number, key: string, input: WriteInput, nowMs: number): void {
    this.#advance(nowMs);
    if (input.leases !== undefined) {
      const problem = leaseListProblem(input.leases);
      if (problem !== undefined) {
        throw new TypeError(`Invalid leases of a write of ${key}: ${problem}`);
      }
    }
    if (
      input.expectedVersion !== undefined &&
      (!Number.isSafeInteger(input.expectedVersion) || input.expectedVersion < 0)
    ) {
      throw new TypeError(`Invalid expectedVersion of a write of ${key}: ${input.expectedVersion}`);
    }
    const policy = this.#admit(op, key);
    if (policy === undefined) return;
    const leases = input.payload === undefined ? undefined : input.leases;
    if (leases === undefined || leases.length === 0 || this.#canary.attachUnchecked) {
      this.#dispatchWrite(op, key, policy, input);
      return;
    }
    // Hold the op while the leases are checked; the write proper re-registers it.
    const checking: WriteOp = {
      kind: "write",
      key,
      timer: this.#arm(this.#now + policy.writeTimeoutMs, () => {
        this.#reject(op, new WarpError("TIMEOUT", `Lease check of a write timed out: ${key}`));
      }),
      answered: false,
    };
    this.#ops.set(op, checking);
    this.#ensureLeases(leases, () => {
      if (this.#ops.get(op) !== checking) return;
      const error = this.#leaseError(leases, `Cannot attach ${key}`);
      if (error !== undefined) {
        this.#reject(op, error);
        return;
      }
      this.#disarm(checking.timer);
      this.#ops.delete(op);
      this.#dispatchWrite(op, key, policy, input);
    });
  }

  #dispatchWrite(op: number, key: string, policy: KeyPolicy, input: WriteInput): void {
    if (policy.mode === "strong-distributed") this.#strongWrite(op, key, policy, input);
    else this.#localWrite(op, key, policy, input);
  }

  // ---------------------------------------------------------------- leases

  /**
   * Grants lease `id` (made by `makeLeaseId`, the TTL inside it) as caller operation `op`:
   * creates its coordinator record, which the coordinator forgets `ttl` after its last
   * write. Resolves with `value` the id and `version` the record's revision.
   */
  grantLease(op: number, id: string, nowMs: number): void {
    this.#advance(nowMs);
    const ttlMs = this.#admitLease(op, id);
    if (ttlMs === undefined) return;
    const askMs = this.#now;
    const record: LeaseRecord = { lease: "active", checkMs: this.#leaseCheckMs };
    this.#coordPutRaw(leaseRecordKey(id), record, undefined, ttlMs, (put) => {
      if (put.ok) {
        this.#learnLease(id, "active", askMs, record.checkMs);
        this.#answerWrite(op, { found: true, value: id, version: put.revision, source: "none" });
      } else if (put.conflict) {
        this.#answerWrite(op, new WarpError("CONTENDED", `Lease id already in use: ${id}`));
      } else {
        this.#answerWrite(op, leaseUnavailable(id, put.error));
      }
    });
  }

  /**
   * Keeps lease `id` alive as caller operation `op`: rewrites its record, which restarts
   * its TTL. A revoked or expired lease rejects with `LEASE_REVOKED` / `LEASE_EXPIRED` (G3).
   */
  keepAliveLease(op: number, id: string, nowMs: number): void {
    this.#advance(nowMs);
    const ttlMs = this.#admitLease(op, id);
    if (ttlMs === undefined) return;
    const attempt = (n: number): void => {
      const askMs = this.#now;
      this.#readLeaseRecord(op, id, ttlMs, (record, revision) => {
        if (record === undefined || record.lease === "revoked") {
          this.#learnLease(id, record === undefined ? "expired" : "revoked", askMs);
          this.#answerWrite(op, this.#leaseError([id], "Cannot keep alive")!);
          return;
        }
        this.#coordPutRaw(leaseRecordKey(id), record, revision, ttlMs, (put) => {
          if (put.ok) {
            this.#learnLease(id, "active", askMs, record.checkMs);
            this.#answerWrite(op, {
              found: true,
              value: id,
              version: put.revision,
              source: "none",
            });
          } else if (put.conflict && n < LEASE_CAS_ATTEMPTS_MAX) {
            attempt(n + 1);
          } else {
            this.#answerWrite(op, leaseFailure(id, put));
          }
        });
      });
    };
    attempt(1);
  }

  /**
   * Revokes lease `id` as caller operation `op`: writes its record as revoked, tells every
   * node (best effort), then waits `leaseCheckMs × (1 + drift)` so that no node can still
   * trust a check made before the write. When it resolves, no node serves a value attached
   * to the lease (G1). Revoking a revoked or expired lease succeeds.
   */
  revokeLease(op: number, id: string, nowMs: number): void {
    this.#advance(nowMs);
    const ttlMs = this.#admitLease(op, id);
    if (ttlMs === undefined) return;
    const finish = (revision: number, recordCheckMs: number | undefined): void => {
      this.#learnLease(id, "revoked", this.#now);
      this.#broadcast({ t: "lrev", from: this.nodeId, inc: this.incarnation, lease: id });
      const done = () =>
        this.#answerWrite(op, { found: false, value: id, version: revision, source: "none" });
      if (this.#canary.revokeWithoutWait) {
        done();
        return;
      }
      // No node trusts a check for longer than the record's checkMs or its own: wait out
      // the longest of those this node can know of.
      const waitMs = Math.max(this.#leaseCheckMs, recordCheckMs ?? 0) * (1 + this.#drift) +
        MARGIN_MS;
      this.#extendLeaseOp(op, waitMs);
      this.#arm(this.#now + waitMs, done);
    };
    const attempt = (n: number): void => {
      this.#readLeaseRecord(op, id, ttlMs, (record, revision) => {
        if (record === undefined || record.lease === "revoked") {
          // Dead already; still wait out checks made before.
          finish(revision, record?.checkMs);
          return;
        }
        const revoked: LeaseRecord = {
          lease: "revoked",
          ...(record.checkMs !== undefined && { checkMs: record.checkMs }),
        };
        this.#coordPutRaw(leaseRecordKey(id), revoked, revision, ttlMs, (put) => {
          if (put.ok) finish(put.revision, record.checkMs);
          else if (put.conflict && n < LEASE_CAS_ATTEMPTS_MAX) attempt(n + 1);
          else this.#answerWrite(op, leaseFailure(id, put));
        });
      });
    };
    attempt(1);
  }

  /** What this node knows of lease `id`, for inspection (tests, the simulator). */
  leaseState(id: string, nowMs: number): "unknown" | "active" | "revoked" | "expired" {
    const known = this.#leases.get(id);
    if (known === undefined) return "unknown";
    if (known.state === "active" && nowMs >= known.validUntilMs) return "unknown";
    return known.state;
  }

  /** Reads lease `id`'s record for caller op `op`; an unreachable coordinator fails the op. */
  #readLeaseRecord(
    op: number,
    id: string,
    ttlMs: number,
    then: (record: LeaseRecord | undefined, revision: number) => void,
  ): void {
    this.#coordGetRaw(leaseRecordKey(id), "lease", ttlMs, (read) => {
      if (read.ok) then(read.record as LeaseRecord | undefined, read.revision);
      else this.#answerWrite(op, leaseUnavailable(id, read.error));
    });
  }

  /** Gives a lease op `extraMs` more before its deadline (a revocation's wait). */
  #extendLeaseOp(op: number, extraMs: number): void {
    const pending = this.#ops.get(op);
    if (pending === undefined || pending.kind !== "write" || pending.answered) return;
    this.#disarm(pending.timer);
    this.#ops.set(op, {
      ...pending,
      timer: this.#arm(this.#now + extraMs + this.#leaseTimeoutMs, () => this.#timeoutWrite(op)),
    });
  }

  #admitLease(op: number, id: string): number | undefined {
    const ttlMs = isLeaseId(id) ? leaseTtlMs(id) : undefined;
    if (ttlMs === undefined) throw new TypeError(`Invalid lease id: ${id}`);
    if (!this.#mayStart(op)) return undefined;
    const timer = this.#arm(this.#now + this.#leaseTimeoutMs, () => this.#timeoutWrite(op));
    this.#ops.set(op, { kind: "write", key: leaseRecordKey(id), timer, answered: false });
    return ttlMs;
  }

  /** Whether every lease in `ids` is known active at `nowMs`; marks them used. */
  #leasesServable(ids: readonly string[], nowMs: number): boolean {
    for (let i = 0; i < ids.length; i++) {
      const known = this.#leases.get(ids[i]!);
      if (known === undefined || known.state !== "active" || nowMs >= known.validUntilMs) {
        return false;
      }
      known.used = true;
    }
    return true;
  }

  /** Lease `id` now: `active` (a check still trusted), `dead` (for good), or `unknown`. */
  #leaseNow(id: string): "active" | "dead" | "unknown" {
    const known = this.#leases.get(id);
    if (known === undefined) return "unknown";
    if (known.state === "revoked" || known.state === "expired") return "dead";
    return known.state === "active" && this.#now < known.validUntilMs ? "active" : "unknown";
  }

  /** `dead` if any lease is dead, `active` if all are, else `unknown`. */
  #leaseVerdict(ids: readonly string[]): "active" | "dead" | "unknown" {
    let verdict: "active" | "unknown" = "active";
    for (const id of ids) {
      const now = this.#leaseNow(id);
      if (now === "dead") return "dead";
      if (now === "unknown") verdict = "unknown";
    }
    return verdict;
  }

  /** The G3 error for a write or keep-alive naming `ids`, or `undefined` if all are active. */
  #leaseError(ids: readonly string[], what: string): WarpError | undefined {
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
    if (this.#leaseVerdict(ids) === "unknown") {
      return new WarpError(
        "COORDINATOR_UNAVAILABLE",
        `${what}: the lease could not be checked in the coordinator: ${ids.join(", ")}`,
      );
    }
    return undefined;
  }

  /** Checks every lease of `ids` not known active now, then calls `then` (whatever came back). */
  #ensureLeases(ids: readonly string[], then: () => void): void {
    let outstanding = 1;
    const done = () => {
      if (--outstanding === 0) then();
    };
    for (const id of ids) {
      if (this.#leaseNow(id) !== "unknown") continue;
      outstanding++;
      this.#checkLease(id, done);
    }
    done();
  }

  /** One coordinator read of a lease's record, shared by every caller waiting on it. */
  #checkLease(id: string, then: () => void): void {
    const known = this.#knowLease(id);
    if (known.waiting !== undefined) {
      known.waiting.push(then);
      return;
    }
    known.waiting = [then];
    known.used = false;
    const askMs = this.#now;
    this.stats.leaseChecks++;
    this.#coordGetRaw(leaseRecordKey(id), "lease", leaseTtlMs(id)!, (read) => {
      const waiting = known.waiting ?? [];
      known.waiting = undefined;
      if (read.ok) {
        const record = read.record as LeaseRecord | undefined;
        this.#learnLease(
          id,
          record === undefined ? "expired" : record.lease === "revoked" ? "revoked" : "active",
          askMs,
          record?.checkMs,
        );
      }
      for (const callback of waiting) callback();
    });
  }

  #knowLease(id: string): LeaseKnowledge {
    let known = this.#leases.get(id);
    if (known === undefined) {
      if (this.#leases.size >= this.#leasesMax) this.#forgetLeases();
      known = { state: "unknown", validUntilMs: -Infinity, waiting: undefined, used: false };
      this.#leases.set(id, known);
    }
    return known;
  }

  /** Forgets the oldest tenth of the lease table (none with a check in flight). */
  #forgetLeases(): void {
    let toForget = Math.max(1, Math.floor(this.#leasesMax / 10));
    for (const [id, known] of this.#leases) {
      if (toForget === 0) break;
      if (known.waiting !== undefined) continue;
      this.#leases.delete(id);
      toForget--;
    }
  }

  /**
   * Records what a coordinator answer asked at `askMs` said of lease `id`. Death is final
   * (ids are never reused): a late `active` answer never revives a lease.
   */
  #learnLease(
    id: string,
    state: "active" | "revoked" | "expired",
    askMs: number,
    recordCheckMs?: number,
  ): void {
    const known = this.#knowLease(id);
    if (known.state === "revoked" || known.state === "expired") return;
    known.state = state;
    if (state !== "active") {
      known.validUntilMs = -Infinity;
      return;
    }
    // The record was active at some instant after askMs: trust it for checkMs of true time
    // from then, that is, checkMs × (1 − drift) on this clock.
    let checkMs = Math.min(this.#leaseCheckMs, recordCheckMs ?? Infinity);
    if (this.#canary.trustOwnLeaseCheck) checkMs = this.#leaseCheckMs;
    const until = askMs + checkMs * (1 - this.#drift);
    if (until <= known.validUntilMs) return;
    known.validUntilMs = until;
    // A lease in use is checked again before its check runs out, so hot keys stay hits.
    const refreshAt = askMs + checkMs * (1 - this.#drift) * 0.75;
    this.#arm(refreshAt, () => {
      if (known.used && known.state === "active" && known.waiting === undefined) {
        this.#checkLease(id, noop);
      }
    });
  }

  /** Deletes `key` from the store (a tombstone version) as caller operation `op`. */
  delete(op: number, key: string, nowMs: number): void {
    this.set(op, key, { value: undefined, payload: undefined, sizeBytes: 0 }, nowMs);
  }

  /**
   * Drops `key` from L1 on every node, without touching the store, as caller operation
   * `op`. Completes at once: the drop is best effort on other nodes.
   */
  invalidate(op: number, key: string, nowMs: number): void {
    this.#advance(nowMs);
    const policy = this.#admit(op, key);
    if (policy === undefined) return;
    this.#applyDrop(key);
    if (policy.mode !== "strong-local") {
      this.#broadcast({
        t: "drop",
        from: this.nodeId,
        inc: this.incarnation,
        seq: ++this.#seq,
        key,
      });
    }
    this.#resolve(op, { found: false, value: undefined, version: 0, source: "none" });
  }

  /** Closes the node: every operation in flight fails with `CLOSED`. */
  close(nowMs: number): void {
    this.#advance(nowMs);
    if (this.#closed) return;
    this.#closed = true;
    for (const op of [...this.#ops.keys()]) {
      this.#reject(op, new WarpError("CLOSED", `Node closed: ${this.nodeId}`));
    }
    for (const id of this.#timerActions.keys()) this.#timers.cancel(id);
    this.#timerActions.clear();
  }

  /** Whether {@linkcode close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---------------------------------------------------------------- I/O results

  /** Reports the outcome of a `store-get` effect. */
  onStoreRead(io: number, result: StoreReadResult, nowMs: number): void {
    this.#complete(this.#storeReads, io, result, nowMs);
  }

  /** Reports the outcome of a `store-write` effect. */
  onStoreWrite(io: number, result: StoreWriteResult, nowMs: number): void {
    this.#complete(this.#storeWrites, io, result, nowMs);
  }

  /** Reports the outcome of a `coord-get` effect. */
  onCoordRead(io: number, result: CoordReadResult, nowMs: number): void {
    this.#complete(this.#coordReads, io, result, nowMs);
  }

  /** Reports the outcome of a `coord-put` effect. */
  onCoordWrite(io: number, result: CoordWriteResult, nowMs: number): void {
    this.#complete(this.#coordWrites, io, result, nowMs);
  }

  /** Feeds a message from the bus; malformed or foreign messages are dropped and counted. */
  onMessage(raw: unknown, nowMs: number): void {
    this.#advance(nowMs);
    const message = validateMessage(raw);
    if (message === undefined || this.#closed) {
      this.stats.messagesDropped++;
      return;
    }
    this.stats.messagesReceived++;
    switch (message.t) {
      case "inv":
        this.#track(message.from, message.inc, message.seq, false);
        this.#applyInvalidation(message.key, message.version);
        return;
      case "drop":
        this.#track(message.from, message.inc, message.seq, false);
        this.#applyDrop(message.key);
        return;
      case "hb":
        this.#track(message.from, message.inc, message.seq, true);
        return;
      case "revoke":
        this.#applyDrop(message.key);
        this.#send(message.from, {
          t: "ack",
          from: this.nodeId,
          inc: this.incarnation,
          id: message.id,
          key: message.key,
        });
        return;
      case "ack":
        this.#onAck(message.from, message.id, message.key);
        return;
      case "lrev":
        this.#learnLease(message.lease, "revoked", this.#now);
        return;
    }
  }

  // ---------------------------------------------------------------- internals: plumbing

  #advance(nowMs: number): void {
    if (typeof nowMs !== "number" || Number.isNaN(nowMs)) {
      throw new TypeError(`Invalid nowMs: ${nowMs}`);
    }
    // A clock that went backwards is treated as standing still: time never rewinds here.
    if (nowMs > this.#now) this.#now = nowMs;
  }

  #admit(op: number, key: string): KeyPolicy | undefined {
    if (!this.#mayStart(op)) return undefined;
    const policy = this.#registry.find(key);
    if (policy === undefined) {
      this.#reject(
        op,
        new WarpError("UNREGISTERED_KEY", `Key matches no registered key or pattern: ${key}`),
      );
    }
    return policy;
  }

  /** Whether caller operation `op` may start: else it is rejected (closed, over the limit). */
  #mayStart(op: number): boolean {
    if (this.#ops.has(op)) throw new TypeError(`Operation id already in flight: ${op}`);
    if (this.#closed) {
      this.#reject(op, new WarpError("CLOSED", `Node closed: ${this.nodeId}`));
      return false;
    }
    if (this.#ops.size >= this.#opsMax) {
      this.#reject(
        op,
        new WarpError("LIMIT_EXCEEDED", `Too many operations in flight, at most ${this.#opsMax}`),
      );
      return false;
    }
    return true;
  }

  #complete<R>(table: Map<number, (r: R) => void>, io: number, result: R, nowMs: number): void {
    this.#advance(nowMs);
    const handler = table.get(io);
    if (handler === undefined) return; // unknown or duplicate report: ignore
    table.delete(io);
    if (!this.#closed) handler(result);
  }

  #arm(atMs: number, action: () => void): number {
    const id = this.#nextId++;
    this.#timerActions.set(id, action);
    this.#timers.arm(id, atMs);
    return id;
  }

  #disarm(id: number): void {
    this.#timers.cancel(id);
    this.#timerActions.delete(id);
  }

  #resolve(op: number, result: OpResult): void {
    const pending = this.#ops.get(op);
    if (pending !== undefined) {
      this.#disarm(pending.timer);
      this.#ops.delete(op);
    }
    this.#effects.push({ type: "resolve", op, result });
  }

  #reject(op: number, error: WarpError): void {
    const pending = this.#ops.get(op);
    if (pending !== undefined) {
      this.#disarm(pending.timer);
      this.#ops.delete(op);
    }
    this.#effects.push({ type: "reject", op, error });
  }

  /** Answers a write op unless it was already answered (timed out). */
  #answerWrite(op: number, outcome: OpResult | WarpError): void {
    const pending = this.#ops.get(op);
    if (pending === undefined || pending.kind !== "write" || pending.answered) return;
    if (outcome instanceof WarpError) this.#reject(op, outcome);
    else this.#resolve(op, outcome);
  }

  #broadcast(message: Message): void {
    this.#effects.push({ type: "broadcast", message });
  }

  #send(to: NodeId, message: Message): void {
    this.#effects.push({ type: "send", to, message });
  }

  #storeGet(key: string, handler: (r: StoreReadResult) => void): void {
    const io = this.#nextId++;
    this.#storeReads.set(io, handler);
    this.stats.storeReads++;
    this.#effects.push({ type: "store-get", io, key });
  }

  #storeWrite(
    key: string,
    payload: unknown,
    expectedVersion: number | undefined,
    handler: (r: StoreWriteResult) => void,
  ): void {
    const io = this.#nextId++;
    this.#storeWrites.set(io, handler);
    this.stats.storeWrites++;
    this.#effects.push({ type: "store-write", io, key, payload, expectedVersion });
  }

  #coordGet(key: string, handler: (r: HolderReadResult) => void): void {
    const io = this.#nextId++;
    // The driver decodes by the effect's kind: a "holder" read carries a holder record.
    this.#coordReads.set(io, handler as (r: CoordReadResult) => void);
    this.stats.coordinatorCalls++;
    this.#effects.push({ type: "coord-get", io, key: holderRecordKey(key), kind: "holder" });
  }

  #coordGetRaw(
    key: string,
    kind: "holder" | "lease",
    ttlMs: number,
    handler: (r: CoordReadResult) => void,
  ): void {
    const io = this.#nextId++;
    this.#coordReads.set(io, handler);
    this.stats.coordinatorCalls++;
    this.#effects.push({ type: "coord-get", io, key, kind, ttlMs });
  }

  #coordPutRaw(
    key: string,
    record: LeaseRecord,
    revision: number | undefined,
    ttlMs: number,
    handler: (r: CoordWriteResult) => void,
  ): void {
    const io = this.#nextId++;
    this.#coordWrites.set(io, handler);
    this.stats.coordinatorCalls++;
    this.#effects.push({ type: "coord-put", io, key, record, revision, ttlMs });
  }

  #coordPut(
    key: string,
    record: HolderRecord,
    revision: number | undefined,
    handler: (r: CoordWriteResult) => void,
  ): void {
    const io = this.#nextId++;
    this.#coordWrites.set(io, handler);
    this.stats.coordinatorCalls++;
    this.#effects.push({ type: "coord-put", io, key: holderRecordKey(key), record, revision });
  }

  /** Local time until which an entry read (or written) at `askMs` may be served. */
  #freshUntil(policy: KeyPolicy, askMs: number): number {
    // A local duration d is at most d / (1 - drift) of true time: shorten by the drift bound.
    switch (policy.mode) {
      case "strong-local":
        return askMs + policy.ttlMs;
      case "eventual-distributed":
        if (this.#canary.ignoreStalenessBound) return askMs + policy.ttlMs;
        if (this.#canary.stalenessWithoutDrift) {
          return askMs + Math.min(policy.ttlMs, policy.maxStalenessMs);
        }
        return askMs + Math.min(policy.ttlMs, policy.maxStalenessMs * (1 - this.#drift));
      case "strong-distributed":
        return askMs + Math.min(policy.ttlMs, policy.leaseMs * (1 - this.#drift));
    }
  }

  /** Installs a value unless L1 holds a newer one; returns whether it was installed. */
  #install(
    key: string,
    policy: KeyPolicy,
    data: EntryData,
    askMs: number,
  ): void {
    const existing = this.#l1.get(key);
    if (existing !== undefined && existing.version > data.version && !this.#canary.skipFillCheck) {
      return;
    }
    this.#l1.install(key, data, this.#freshUntil(policy, askMs), policy);
    this.#noteVersion(key, data.version);
  }

  /**
   * Records that version `version` of `key` exists and this node has seen it (applied,
   * installed or answered it): no fill may return, no write may install, and L1 may not
   * keep, anything older (E2; simulator seeds 702025 and 2015177).
   */
  #noteVersion(key: string, version: number): void {
    const entry = this.#l1.get(key);
    if (entry !== undefined && entry.version < version && !this.#canary.skipFillCheck) {
      this.#l1.delete(key);
    }
    const fill = this.#fills.get(key);
    if (fill !== undefined && fill.minVersion < version) fill.minVersion = version;
    for (const old of this.#supersededFills.get(key) ?? []) {
      if (old.minVersion < version) old.minVersion = version;
    }
    const writes = this.#writeFloors.get(key);
    if (writes !== undefined && writes.floor < version) writes.floor = version;
  }

  // ---------------------------------------------------------------- reads

  #timeoutRead(op: number): void {
    const pending = this.#ops.get(op);
    if (pending === undefined || pending.kind !== "read") return;
    const fill = pending.fill;
    if (fill !== undefined) {
      const i = fill.waiters.indexOf(op);
      if (i >= 0) fill.waiters.splice(i, 1);
    }
    this.#ops.delete(op);
    this.#effects.push({
      type: "reject",
      op,
      error: new WarpError("TIMEOUT", `Read did not complete in time: ${pending.key}`),
    });
  }

  /**
   * Whether a reader invoked now may share `fill`'s answer. The answer comes from a store
   * read issued before this reader was invoked; for a strong key that is linearizable only
   * if no write can have committed since: the fill was not revoked and its lease still
   * runs (a writer must revoke this node or wait out that lease before committing).
   * Seed 30 of the simulator found the read that broke S2 without this rule.
   */
  #joinable(fill: Fill): boolean {
    if (fill.policy.mode !== "strong-distributed" || !fill.readIssued) return true;
    return fill.cacheable && this.#now < fill.leaseAskMs + fill.policy.leaseMs * (1 - this.#drift);
  }

  #fillRead(fill: Fill): void {
    fill.askMs = this.#now;
    fill.attempts++;
    fill.readIssued = true;
    this.#storeGet(fill.key, (result) => this.#onFillRead(fill, result));
  }

  #onFillRead(fill: Fill, result: StoreReadResult): void {
    // A superseded fill still answers its own readers, but never installs.
    if (this.#fills.get(fill.key) !== fill) fill.cacheable = false;
    if (!result.ok) {
      this.#endFill(
        fill,
        new WarpError("STORE_ERROR", `Store read failed: ${fill.key}`, {
          cause: result.error.cause ?? result.error,
        }),
      );
      return;
    }
    const { policy } = fill;
    // E2: a value older than one this node applied or served since the fill began would
    // take the node back in time. E3: a read slower than the staleness bound may be too old.
    const tooOld = result.version < fill.minVersion && !this.#canary.skipFillCheck;
    const tooSlow = policy.mode === "eventual-distributed" &&
      this.#now - fill.askMs >= policy.maxStalenessMs * (1 - this.#drift);
    if (tooOld || tooSlow) {
      if (tooOld) this.stats.staleFillsDiscarded++;
      if (fill.attempts >= FILL_ATTEMPTS_MAX) {
        this.#endFill(
          fill,
          new WarpError("STALE_READ", `Store kept returning values too old to serve: ${fill.key}`),
        );
      } else {
        this.#fillRead(fill);
      }
      return;
    }
    if (result.leases !== undefined && result.leases.length > 0) {
      const verdict = this.#leaseVerdict(result.leases);
      if (verdict === "unknown") {
        if (fill.leaseRounds >= LEASE_ROUNDS_MAX) {
          this.#endFill(
            fill,
            new WarpError(
              "COORDINATOR_UNAVAILABLE",
              `The leases of ${fill.key} could not be checked: ${result.leases.join(", ")}`,
            ),
          );
          return;
        }
        fill.leaseRounds++;
        this.#ensureLeases(result.leases, () => this.#onFillRead(fill, result));
        return;
      }
      if (verdict === "dead") {
        // A value attached to a revoked or expired lease reads as absent (G1, G2).
        this.stats.leaseDeadValues++;
        result = {
          ok: true,
          found: false,
          value: undefined,
          version: result.version,
          sizeBytes: 0,
        };
      }
    }
    const cacheable = fill.cacheable &&
      (policy.mode !== "eventual-distributed" || fill.flushEpoch === this.#flushEpoch);
    if (cacheable) {
      const askMs = policy.mode === "strong-distributed" ? fill.leaseAskMs : fill.askMs;
      this.#install(fill.key, policy, result, askMs);
    } else {
      this.stats.fillsNotCached++;
    }
    // Answer with the newest value this node knows: an entry installed meanwhile may be newer.
    const entry = this.#l1.get(fill.key);
    const answer = entry !== undefined && entry.version > result.version
      ? { found: entry.found, value: entry.value, version: entry.version, source: "store" as const }
      : {
        found: result.found,
        value: result.value,
        version: result.version,
        source: "store" as const,
      };
    // E2 covers what a node *answered*, cached or not: writes in flight must not install
    // anything older than this (simulator seed 702025: an uncached answer, then an older
    // write's late install).
    this.#noteVersion(fill.key, answer.version);
    this.#endFill(fill, answer);
  }

  #endFill(fill: Fill, outcome: OpResult | WarpError): void {
    if (this.#fills.get(fill.key) === fill) {
      this.#fills.delete(fill.key);
    } else {
      const list = this.#supersededFills.get(fill.key) ?? [];
      const index = list.indexOf(fill);
      if (index >= 0) list.splice(index, 1);
      if (list.length === 0) this.#supersededFills.delete(fill.key);
    }
    for (const op of fill.waiters) {
      if (!this.#ops.has(op)) continue; // timed out meanwhile
      if (outcome instanceof WarpError) this.#reject(op, outcome);
      else this.#resolve(op, outcome);
    }
  }

  /**
   * strong-distributed miss: make sure this node is a registered holder with no write
   * pending before reading the store, so that any writer either revokes this node or
   * waits out its lease — which is measured from when the registration was *asked*.
   */
  #strongFillRegister(fill: Fill): void {
    const askMs = this.#now;
    this.#coordGet(fill.key, (read) => {
      if (read.ok) this.#remember(fill.key, read.record, read.revision);
      if (!read.ok || read.record?.pending !== undefined) {
        fill.cacheable = false; // read through the store, linearizable, without caching
        this.#fillRead(fill);
        return;
      }
      const record = read.record;
      if (record !== undefined && record.holders.includes(this.nodeId)) {
        fill.leaseAskMs = askMs;
        this.#fillRead(fill);
        return;
      }
      const next: HolderRecord = {
        holders: [...(record?.holders ?? []), this.nodeId],
        pending: undefined,
        version: record?.version,
      };
      const claimAskMs = this.#now;
      this.#coordPut(fill.key, next, record === undefined ? undefined : read.revision, (put) => {
        if (put.ok) {
          fill.leaseAskMs = claimAskMs;
          this.#remember(fill.key, next, put.revision);
        } else {
          fill.cacheable = false;
        }
        this.#fillRead(fill);
      });
    });
  }

  // ---------------------------------------------------------------- local & eventual writes

  #localWrite(op: number, key: string, policy: KeyPolicy, input: WriteInput): void {
    const timer = this.#arm(this.#now + policy.writeTimeoutMs, () => this.#timeoutWrite(op));
    this.#ops.set(op, { kind: "write", key, timer, answered: false });
    const askMs = this.#now;
    const deleting = input.payload === undefined;
    const floors = this.#writeFloors.get(key) ?? { count: 0, floor: 0 };
    floors.count++;
    this.#writeFloors.set(key, floors);
    this.#storeWrite(key, input.payload, input.expectedVersion, (result) => {
      // A newer version seen while this write was in flight (an invalidation, another
      // write) means installing ours would take the node back in time (E2).
      const seenNewer = result.ok && floors.floor > result.version;
      if (--floors.count === 0) this.#writeFloors.delete(key);
      if (!result.ok) {
        // A failed store write leaves L1 untouched.
        const conflict = result.error.code === "STORE_CONFLICT";
        this.#answerWrite(
          op,
          new WarpError(
            conflict ? "STORE_CONFLICT" : "STORE_ERROR",
            conflict
              ? `Store version is not ${input.expectedVersion}: ${key}`
              : `Store write failed: ${key}`,
            { cause: result.error.cause ?? result.error },
          ),
        );
        return;
      }
      const data = {
        value: deleting ? undefined : input.value,
        found: !deleting,
        version: result.version,
        sizeBytes: input.sizeBytes,
        leases: deleting ? undefined : input.leases,
      };
      if (!seenNewer) this.#install(key, policy, data, askMs);
      this.#noteVersion(key, result.version);
      if (policy.mode === "eventual-distributed") {
        this.#broadcast({
          t: "inv",
          from: this.nodeId,
          inc: this.incarnation,
          seq: ++this.#seq,
          key,
          version: result.version,
        });
      }
      this.#answerWrite(op, { ...data, source: "none" });
    });
  }

  #timeoutWrite(op: number): void {
    const pending = this.#ops.get(op);
    if (pending === undefined || pending.kind !== "write") return;
    this.#ops.delete(op);
    pending.answered = true;
    this.#effects.push({
      type: "reject",
      op,
      error: new WarpError(
        "OUTCOME_UNKNOWN",
        `Write did not complete in time, it may or may not have taken effect: ${pending.key}`,
      ),
    });
  }

  #applyInvalidation(key: string, version: number): void {
    const entry = this.#l1.get(key);
    if (entry !== undefined && entry.version < version) this.stats.invalidationsApplied++;
    this.#noteVersion(key, version);
  }

  #applyDrop(key: string): void {
    if (this.#l1.delete(key)) this.stats.invalidationsApplied++;
    const fill = this.#fills.get(key);
    if (fill !== undefined) fill.cacheable = false;
    // Our own release may have landed and a newer writer revoked us before its answer came
    // back: the value it would install is already superseded (simulator seed 50005).
    const write = this.#strongChains.get(key)?.[0];
    if (write !== undefined && write.phase === "release") write.revokedDuringRelease = true;
  }

  #flushDistributed(): void {
    this.#l1.deleteWhere((e) => e.policy.mode === "eventual-distributed");
    this.#flushEpoch++;
    this.stats.flushes++;
  }

  // ---------------------------------------------------------------- heartbeats and gaps

  #scheduleHeartbeat(): void {
    this.#heartbeatTimer = this.#arm(this.#now + this.#heartbeatIntervalMs, () => {
      this.#broadcast({ t: "hb", from: this.nodeId, inc: this.incarnation, seq: this.#seq });
      this.#forgetSilentPeers();
      this.#scheduleHeartbeat();
    });
  }

  #forgetSilentPeers(): void {
    for (const [id, peer] of this.#peers) {
      if (this.#now - peer.lastHeardMs > PEER_FORGET_MS) this.#peers.delete(id);
    }
  }

  /** Tracks a peer's broadcast sequence; a gap that stays open past the timeout flushes. */
  #track(from: NodeId, inc: number, seq: number, heartbeat: boolean): void {
    if (from === this.nodeId && inc === this.incarnation) return;
    let peer = this.#peers.get(from);
    if (peer === undefined || inc !== peer.inc) {
      if (peer === undefined && this.#peers.size >= this.#peersMax) this.#forgetOldestPeer();
      // First word from this incarnation. Broadcasts it made before this one may have been
      // missed (a subscription becomes active a moment after it is made; a partition), and
      // which keys they named is unknown: flush once, then track from here. A node that has
      // just started has an empty L1, so this costs nothing there.
      peer = {
        inc,
        contiguous: seq,
        highest: seq,
        ahead: new Set(),
        gapSinceMs: undefined,
        lastHeardMs: this.#now,
      };
      this.#peers.set(from, peer);
      if ((heartbeat ? seq : seq - 1) > 0) {
        this.stats.gapsDetected++;
        this.#flushDistributed();
      }
      return;
    }
    peer.lastHeardMs = this.#now;
    if (seq > peer.highest) peer.highest = seq;
    if (!heartbeat && seq > peer.contiguous) {
      if (seq === peer.contiguous + 1) {
        peer.contiguous = seq;
        while (peer.ahead.delete(peer.contiguous + 1)) peer.contiguous++;
      } else {
        peer.ahead.add(seq);
      }
    }
    if (peer.contiguous >= peer.highest) {
      peer.gapSinceMs = undefined;
      return;
    }
    if (peer.ahead.size > AHEAD_MAX) {
      this.#healGap(peer);
      return;
    }
    if (peer.gapSinceMs === undefined) {
      peer.gapSinceMs = this.#now;
      this.stats.gapsDetected++;
      const gapPeer = peer;
      this.#arm(this.#now + this.#gapTimeoutMs, () => {
        if (
          gapPeer.gapSinceMs !== undefined && this.#now - gapPeer.gapSinceMs >= this.#gapTimeoutMs
        ) {
          this.#healGap(gapPeer);
        }
      });
    }
  }

  /** Missed invalidations of unknown keys: drop every eventual entry, then go on. */
  #healGap(peer: Peer): void {
    this.#flushDistributed();
    peer.contiguous = peer.highest;
    peer.ahead.clear();
    peer.gapSinceMs = undefined;
  }

  #forgetOldestPeer(): void {
    let oldest: [NodeId, Peer] | undefined;
    for (const entry of this.#peers) {
      if (oldest === undefined || entry[1].lastHeardMs < oldest[1].lastHeardMs) oldest = entry;
    }
    if (oldest !== undefined) this.#peers.delete(oldest[0]);
  }

  // ---------------------------------------------------------------- strong writes

  #strongWrite(op: number, key: string, policy: KeyPolicy, input: WriteInput): void {
    const timer = this.#arm(this.#now + policy.writeTimeoutMs, () => this.#strongDeadline(write));
    this.#ops.set(op, { kind: "write", key, timer, answered: false });
    const write: StrongWrite = {
      op,
      id: this.#nextId++,
      key,
      policy,
      input,
      deadlineMs: this.#now + policy.writeTimeoutMs,
      phase: "read",
      revision: 0,
      record: undefined,
      awaiting: new Set(),
      timer: 0,
      retransmitTimer: 0,
      storeAttempts: 0,
      revokedDuringRelease: false,
      optimistic: false,
    };
    this.#strongById.set(write.id, write);
    const chain = this.#strongChains.get(key);
    if (chain !== undefined) {
      chain.push(write); // one strong write per key per node at a time
      return;
    }
    this.#strongChains.set(key, [write]);
    this.#strongRead(write);
  }

  #remember(key: string, record: HolderRecord | undefined, revision: number): void {
    if (record === undefined) {
      this.#records.delete(key);
      return;
    }
    if (this.#records.size >= CONTENDED_MAX && !this.#records.has(key)) this.#records.clear();
    this.#records.set(key, { record, revision });
  }

  #pendingId(write: StrongWrite): string {
    return `${this.nodeId}/${this.incarnation}/${write.id}`;
  }

  /** Phase 1: read the holder record; wait out (or take over) another writer's slot. */
  #strongRead(write: StrongWrite): void {
    write.phase = "read";
    const known = this.#records.get(write.key);
    if (!write.optimistic && known !== undefined && known.record.pending === undefined) {
      // Claim at the revision last seen: uncontended writes skip a coordinator read. A
      // conflict sends us back here to read the record.
      write.optimistic = true;
      this.#strongClaim(write, known.record, known.revision);
      return;
    }
    write.optimistic = true;
    this.#coordGet(write.key, (read) => {
      if (write.phase !== "read") return;
      if (!read.ok) {
        this.#strongFail(write, unavailable(write.key, read.error));
        return;
      }
      const record = read.record;
      this.#remember(write.key, record, read.revision);
      if (record?.pending !== undefined && record.pending !== this.#pendingId(write)) {
        // Another writer holds the slot. Taking it over is always safe — the conditional
        // store write fences out the old writer — but taking it from a live writer makes
        // that writer fail, so wait until the record has stayed unchanged, on this node's
        // clock, for half a write deadline (a live writer releases well within it). The
        // observation outlives this write, so a dead writer's slot is freed for the next.
        const takeoverMs = (write.policy.writeTimeoutMs / 2) * (1 + this.#drift) + MARGIN_MS;
        let seen = this.#contended.get(write.key);
        if (seen?.revision !== read.revision) {
          if (this.#contended.size >= CONTENDED_MAX) this.#contended.clear();
          seen = { revision: read.revision, sinceMs: this.#now };
          this.#contended.set(write.key, seen);
        } else if (this.#now - seen.sinceMs >= takeoverMs) {
          this.#contended.delete(write.key);
          this.#strongClaim(write, record, read.revision);
          return;
        }
        if (this.#now + CONTENTION_BACKOFF_MS >= write.deadlineMs) {
          this.#strongFail(
            write,
            new WarpError("CONTENDED", `Another write of the key is in progress: ${write.key}`),
          );
          return;
        }
        write.timer = this.#arm(this.#now + CONTENTION_BACKOFF_MS, () => this.#strongRead(write));
        return;
      }
      this.#strongClaim(write, record, record === undefined ? undefined : read.revision);
    });
  }

  /** Phase 2: take the key's write slot; from now on no node can register as holder. */
  #strongClaim(
    write: StrongWrite,
    record: HolderRecord | undefined,
    revision: number | undefined,
  ): void {
    write.phase = "claim";
    const claimed: HolderRecord = {
      holders: record?.holders ?? [],
      pending: this.#pendingId(write),
      version: record?.version,
    };
    this.#coordPut(write.key, claimed, revision, (put) => {
      if (write.phase !== "claim") {
        // The write gave up (deadline) while the claim was in flight: give the slot back,
        // keeping the holders, none of which was revoked.
        if (put.ok) {
          this.#coordPut(write.key, { ...claimed, pending: undefined }, put.revision, noop);
        }
        return;
      }
      if (!put.ok) {
        this.#records.delete(write.key);
        if (put.conflict) this.#strongRead(write);
        else this.#strongFail(write, unavailable(write.key, put.error));
        return;
      }
      write.revision = put.revision;
      write.record = claimed;
      this.#remember(write.key, claimed, put.revision);
      this.#strongRevoke(write);
    });
  }

  /**
   * Phase 3: every registered holder must acknowledge the revocation, or its lease must
   * provably have run out: it asked for its lease before our claim, so it ends within
   * `leaseMs` of true time after the claim; on our clock, `leaseMs * (1 + drift)`.
   */
  #strongRevoke(write: StrongWrite): void {
    write.phase = "revoke";
    this.#applyDrop(write.key);
    for (const holder of write.record?.holders ?? []) {
      if (holder !== this.nodeId) write.awaiting.add(holder);
    }
    if (write.awaiting.size === 0) {
      this.#strongStore(write);
      return;
    }
    const drift = this.#canary.leaseWaitWithoutDrift ? 0 : this.#drift;
    write.timer = this.#arm(
      this.#now + write.policy.leaseMs * (1 + drift) + MARGIN_MS,
      () => {
        if (write.phase !== "revoke") return;
        this.stats.leaseWaits++;
        this.#strongStore(write);
      },
    );
    this.#sendRevokes(write);
  }

  #sendRevokes(write: StrongWrite): void {
    for (const holder of write.awaiting) {
      this.stats.revokesSent++;
      this.#send(holder, {
        t: "revoke",
        from: this.nodeId,
        inc: this.incarnation,
        id: write.id,
        key: write.key,
      });
    }
    // The bus may lose a revoke or its ack: ask again until answered or the lease is out.
    write.retransmitTimer = this.#arm(this.#now + this.#heartbeatIntervalMs, () => {
      if (write.phase === "revoke") this.#sendRevokes(write);
    });
  }

  #onAck(from: NodeId, id: number, key: string): void {
    const write = this.#strongById.get(id);
    if (write === undefined || write.phase !== "revoke" || write.key !== key) return;
    if (!write.awaiting.delete(from)) return;
    this.stats.acksReceived++;
    if (write.awaiting.size === 0) this.#strongStore(write);
  }

  /** Phase 4: the conditional store write; the condition fences out a taken-over writer. */
  #strongStore(write: StrongWrite): void {
    write.phase = "store";
    this.#disarm(write.timer);
    this.#disarm(write.retransmitTimer);
    const known = write.input.expectedVersion ?? write.record?.version;
    if (known !== undefined && write.storeAttempts === 0) {
      this.#strongStoreAt(write, known);
      return;
    }
    // The version to write at is unknown (a new record, a failed writer's release) or has
    // moved. Learn it from the store, then pin it in our record while the slot is provably
    // still ours: a writer that takes the slot over later writes at that same version, so
    // at most one of us can land. Reading it and writing at once would let a writer that
    // stalls between the two land after its taker (simulator seed 9905005).
    this.#storeGet(write.key, (read) => {
      if (write.phase !== "store") return;
      if (!read.ok) {
        this.#strongFail(
          write,
          new WarpError("STORE_ERROR", `Store read failed: ${write.key}`, {
            cause: read.error.cause ?? read.error,
          }),
        );
        return;
      }
      const pinned: HolderRecord = {
        holders: write.record?.holders ?? [],
        pending: this.#pendingId(write),
        version: read.version,
      };
      this.#coordPut(write.key, pinned, write.revision, (put) => {
        if (write.phase !== "store") return;
        if (!put.ok) {
          this.#records.delete(write.key);
          this.#strongFail(
            write,
            put.conflict
              ? new WarpError("CONTENDED", `Write slot was taken over: ${write.key}`)
              : unavailable(write.key, put.error),
          );
          return;
        }
        write.revision = put.revision;
        write.record = pinned;
        this.#remember(write.key, pinned, put.revision);
        this.#strongStoreAt(write, read.version);
      });
    });
  }

  #strongStoreAt(write: StrongWrite, expectedVersion: number): void {
    write.storeAttempts++;
    const deleting = write.input.payload === undefined;
    this.#storeWrite(write.key, write.input.payload, expectedVersion, (result) => {
      if (write.phase !== "store") return;
      if (result.ok) {
        this.#strongCommitted(write, result.version, deleting);
        return;
      }
      if (
        result.error.code !== "STORE_CONFLICT" || write.storeAttempts >= 3 ||
        write.input.expectedVersion !== undefined
      ) {
        this.#strongFail(
          write,
          new WarpError(
            result.error.code === "STORE_CONFLICT" ? "STORE_CONFLICT" : "STORE_ERROR",
            `Store write failed: ${write.key}`,
            { cause: result.error.cause ?? result.error },
          ),
        );
        return;
      }
      // The version moved: learn and pin it again, which fails if the slot was taken over
      // (then the taker's write is newer, and ours must not land after it).
      this.#strongStore(write);
    });
  }

  /** Committed: answer the caller, then release the slot and become the only holder. */
  #strongCommitted(write: StrongWrite, version: number, deleting: boolean): void {
    this.#noteVersion(write.key, version);
    const data = {
      value: deleting ? undefined : write.input.value,
      found: !deleting,
      version,
      sizeBytes: write.input.sizeBytes,
      leases: deleting ? undefined : write.input.leases,
    };
    this.#answerWrite(write.op, { ...data, source: "none" });
    write.phase = "release";
    const askMs = this.#now;
    // Holders that acknowledged stay registered (they may cache again without a
    // coordinator write, and the record stays stable for the next optimistic claim); the
    // silent ones whose lease was waited out are dropped. A superset of the nodes that may
    // cache is always safe.
    const kept = (write.record?.holders ?? []).filter((h) =>
      h !== this.nodeId && !write.awaiting.has(h)
    );
    const released: HolderRecord = { holders: [this.nodeId, ...kept], pending: undefined, version };
    this.#coordPut(write.key, released, write.revision, (put) => {
      if (put.ok) this.#remember(write.key, released, put.revision);
      else this.#records.delete(write.key);
      if (put.ok && !write.revokedDuringRelease) {
        this.#install(write.key, write.policy, data, askMs);
      }
      this.#strongFinish(write);
    });
  }

  #strongFail(write: StrongWrite, error: WarpError): void {
    const claimed = write.phase === "revoke" || write.phase === "store";
    this.#answerWrite(write.op, error);
    this.#disarm(write.timer);
    this.#disarm(write.retransmitTimer);
    if (!claimed) {
      this.#strongFinish(write);
      return;
    }
    // Give the slot back, keeping every holder not yet revoked (during phase 3 some may
    // still serve). If the store write did land after all, its version is unknown here.
    const holders = write.phase === "revoke" ? [...write.awaiting] : [];
    write.phase = "release";
    this.#coordPut(
      write.key,
      { holders, pending: undefined, version: undefined },
      write.revision,
      () => {
        this.#strongFinish(write);
      },
    );
  }

  #strongDeadline(write: StrongWrite): void {
    const pending = this.#ops.get(write.op);
    if (pending === undefined || pending.kind !== "write" || pending.answered) return;
    if (write.phase === "store" || write.phase === "release") {
      this.#timeoutWrite(write.op); // in flight in the store: the outcome is unknown
      return;
    }
    this.#strongFail(
      write,
      new WarpError(
        "TIMEOUT",
        `Strong write could not complete in time, it did not take effect: ${write.key}`,
      ),
    );
  }

  #strongFinish(write: StrongWrite): void {
    write.phase = "done";
    this.#strongById.delete(write.id);
    const chain = this.#strongChains.get(write.key);
    const index = chain?.indexOf(write) ?? -1;
    assert(chain !== undefined && index >= 0, `Strong write of ${write.key} is not in its chain`);
    chain.splice(index, 1);
    // A queued write can fail (its deadline) before its turn: then the head runs on.
    if (index > 0) return;
    const next = chain[0];
    if (next === undefined) this.#strongChains.delete(write.key);
    else this.#strongRead(next);
  }
}

function noop(): void {}

/** A coordinator read of a holder record. */
type HolderReadResult =
  | { readonly ok: true; readonly record: HolderRecord | undefined; readonly revision: number }
  | { readonly ok: false; readonly error: WarpError };

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

function unavailable(key: string, cause: WarpError): WarpError {
  return new WarpError(
    "COORDINATOR_UNAVAILABLE",
    `Coordinator unreachable, strong write failed fast: ${key}`,
    { cause },
  );
}

function positive(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
    throw new RangeError(`${name} must be a number of at least ${min}: ${value}`);
  }
  return value;
}
