/**
 * The writer's side of the strong-distributed protocol of one node: read the key's holder
 * record (`strong/<key>`: who may cache it, and which writer holds its write slot), claim
 * the slot, revoke every holder (each acknowledges, or its lease provably ran out), write
 * the store conditionally, release the slot. The holder's side — the record itself, a
 * fill's registration in it, the answer to a revoke — is `_holders.ts`.
 *
 * Design: leases for cache consistency (Gray & Cheriton): a holder serves a value for
 * `leaseMs × (1 − drift)` from when it asked to register, and a writer that cannot reach
 * a holder waits `leaseMs × (1 + drift)` from its claim, by which time the holder has
 * stopped serving on any clock within the drift bound. The claim is a compare-and-set on
 * the record, so no node can register between the claim and the release; the store write
 * is conditional on the version pinned in the record, so a writer whose slot was taken
 * over cannot land after its taker — once the taker's own store write has landed: a taker
 * that fails before gives the slot back to the writer it took it from, never free.
 * One strong write per key per node at a time (a chain).
 *
 * The `invalidate` of a loader-backed key (`origin: "loader"`, whose values come from the
 * application's own source) is this same write without its store phase: read the record,
 * claim the slot, revoke every holder (acknowledgements, notices, waits — unchanged),
 * answer, release. It completes only when no node can still serve what it loaded before;
 * readers that register afterwards load again, and those that find the slot claimed load
 * through, uncached (LB3, as S1).
 *
 * Rejected: invalidating before writing the store (go-warp's strong mode) — a peer could
 * re-read and cache the old value in between; and a lock per write from the lock protocol
 * — it would add a coordinator round trip, and the holder record already serialises
 * writers.
 *
 * @module
 */

import { assert, WarpError } from "./errors.ts";
import type { HolderRecord } from "./effects.ts";
import type { AckMessage, NodeId } from "./messages.ts";
import type { KeyPolicy } from "./registry.ts";
import { MARGIN_MS } from "./_kernel.ts";
import type { DropWatcher, NodeKernel } from "./_kernel.ts";
import type { StrongHolders } from "./_holders.ts";
import type { PostOutcome } from "./_sessions.ts";
import type { WriteInput } from "./node.ts";
import type { ExternalHooks, ExternalOutcome, ExternalWrite } from "./_strong_batch.ts";

const CONTENTION_BACKOFF_MS = 20;
/** Most contended slots watched. */
const CONTENDED_MAX = 10_000;
const NO_INPUT: WriteInput = { value: undefined, payload: undefined, sizeBytes: 0 };

/** One strong write in flight, through its phases. */
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
  /** The nonce of this claim's revoke to each holder, drawn at its first send: its ack echoes it. */
  readonly nonces: Map<NodeId, number>;
  timer: number;
  retransmitTimer: number;
  storeAttempts: number;
  /** Set when a revoke or drop of the key arrives while the release is in flight. */
  revokedDuringRelease: boolean;
  /** An invalidation of a loader-backed key: no store phase. */
  readonly storeless: boolean;
  /** Whether the claim was tried from the cached record (a conflict then reads). */
  optimistic: boolean;
  /** The revision of the claim (revokes and notices carry it). */
  claimRevision: number;
  /** Local time the claim was answered: a holder's cache lease ends within `leaseMs` of it. */
  claimedMs: number;
  /** Per silent holder, the local time by which it has provably stopped serving the key. */
  readonly waits: Map<NodeId, number>;
  /** Holders a notice was posted for, to poll: the post's revision and the member's session. */
  readonly posted: Map<NodeId, { revision: number; inc: number; session: number }>;
  /** Holders waited out: dropped from the record at the release. */
  readonly waitedOut: Set<NodeId>;
  /** The timer that posts notices (again) for the holders still silent with no wait. */
  postTimer: number;
  /**
   * The writer whose slot this write took over, if it did: a failure gives the slot back to
   * it, not free, since its conditional store write may still land (simulator seed 2).
   */
  tookOver: string | undefined;
  /** A write whose store phase a transaction performs (`_strong_batch.ts`); else none. */
  readonly external: ExternalHooks | undefined;
}

/** What the strong protocol needs of the session protocol (`_sessions.ts`). */
export interface NoticeBoard {
  /** Posts a revocation of `key` (claimed at `rev`) for each silent holder. */
  post(
    holders: readonly NodeId[],
    key: string,
    rev: number,
    done: (outcomes: Map<NodeId, PostOutcome> | undefined) => void,
  ): void;
  /** Which posted holders have provably taken their notice in, or lost their session. */
  poll(
    posted: ReadonlyMap<NodeId, { revision: number; inc: number; session: number }>,
    then: (settled: NodeId[]) => void,
  ): void;
}

/** Settings of {@linkcode StrongWrites}, validated by `NodeCore`. */
export interface StrongSettings {
  /** How often unanswered revokes are sent again (the heartbeat interval). */
  readonly retransmitMs: number;
  /** How long a writer waits for acknowledgements before it posts notices. */
  readonly ackWaitMs: number;
  /** How often a writer reads the sessions record while it waits on notices. */
  readonly pollMs: number;
  readonly notices: NoticeBoard;
}

/** The strong-distributed protocol of one node. */
export class StrongWrites implements DropWatcher {
  readonly #k: NodeKernel;
  readonly #settings: StrongSettings;
  readonly #holders: StrongHolders;
  readonly #chains = new Map<string, StrongWrite[]>();
  readonly #byId = new Map<number, StrongWrite>();
  /** Keys whose write slot another writer holds: the record's revision and when first seen. */
  readonly #contended = new Map<string, { revision: number; sinceMs: number }>();

  /**
   * Makes the writer side of the strong protocol of the node whose kernel is `kernel`;
   * it reads and writes holder records through `holders`.
   */
  constructor(kernel: NodeKernel, settings: StrongSettings, holders: StrongHolders) {
    this.#k = kernel;
    this.#settings = settings;
    this.#holders = holders;
  }

  // ---------------------------------------------------------------- acknowledgements

  /**
   * A holder acknowledged a revoke. It counts only if it answers exactly the revoke this
   * node sent that holder for a write in flight: id, key, this incarnation and the nonce
   * (a forger that did not see the revoke cannot make one). Anything else is counted in
   * `acksRejected` (late, duplicated, or forged) and changes nothing.
   */
  onAck(ack: AckMessage): void {
    const k = this.#k;
    const write = this.#byId.get(ack.id);
    if (
      write === undefined || write.phase !== "revoke" || write.key !== ack.key ||
      ack.to !== k.incarnation || !write.awaiting.has(ack.from) ||
      (write.nonces.get(ack.from) !== ack.nonce && !k.canary.acceptUnboundAcks)
    ) {
      k.stats.acksRejected++;
      return;
    }
    write.awaiting.delete(ack.from);
    k.stats.acksReceived++;
    if (write.awaiting.size === 0) this.#store(write);
  }

  /**
   * A drop or revoke of `key`. Our own release may have landed and a newer writer revoked
   * us before its answer came back: the value it would install is already superseded
   * (simulator seed 50005).
   */
  dropped(key: string): void {
    const write = this.#chains.get(key)?.[0];
    if (write !== undefined && write.phase === "release") write.revokedDuringRelease = true;
  }

  // ---------------------------------------------------------------- the write

  /** Writes a strong-distributed key as caller op `op` (admitted by `NodeCore`). */
  write(op: number, key: string, policy: KeyPolicy, input: WriteInput): void {
    this.#begin(op, key, policy, input, false, undefined);
  }

  /**
   * Invalidates a loader-backed strong-distributed key as caller op `op` (admitted): the
   * write's claim and revocations, without its store phase.
   */
  invalidate(op: number, key: string, policy: KeyPolicy): void {
    this.#begin(op, key, policy, NO_INPUT, true, undefined);
  }

  /**
   * Starts a write of `key` whose store phase is performed outside: read, claim, revoke
   * and pin as any write, then `hooks.ready` and wait for {@linkcode completeExternal}.
   * It answers no caller op; its deadline fails it only before it is ready.
   */
  writeExternal(key: string, policy: KeyPolicy, hooks: ExternalHooks): ExternalWrite {
    return this.#begin(-1, key, policy, NO_INPUT, false, hooks);
  }

  /**
   * Ends an external write: released at the committed version (nothing cached here),
   * released without one, or left claimed while its commit may still land.
   */
  completeExternal(handle: ExternalWrite, outcome: ExternalOutcome): void {
    const write = handle as StrongWrite;
    assert(write.external !== undefined, `Not an external write: ${write.key}`);
    if (write.phase === "done" || write.phase === "release") return;
    if (outcome.kind === "failed") {
      this.#fail(write, outcome.error);
      return;
    }
    assert(write.phase === "store", `External write of ${write.key} is not ready`);
    if (outcome.kind === "unknown") {
      // Like a writer stalled before its store write: its pinned version fences a taker.
      this.#finish(write);
      return;
    }
    this.#k.noteVersion(write.key, outcome.version);
    this.#release(write, [], outcome.version, () => {});
  }

  #begin(
    op: number,
    key: string,
    policy: KeyPolicy,
    input: WriteInput,
    storeless: boolean,
    external: ExternalHooks | undefined,
  ): StrongWrite {
    const k = this.#k;
    const timer = k.arm(k.now + policy.writeTimeoutMs, () => this.#deadline(write));
    if (external === undefined) k.ops.set(op, { kind: "write", key, timer, answered: false });
    const write: StrongWrite = {
      op,
      id: k.newId(),
      key,
      policy,
      input,
      deadlineMs: k.now + policy.writeTimeoutMs,
      phase: "read",
      revision: 0,
      record: undefined,
      awaiting: new Set(),
      nonces: new Map(),
      timer: 0,
      retransmitTimer: 0,
      storeAttempts: 0,
      revokedDuringRelease: false,
      tookOver: undefined,
      storeless,
      optimistic: false,
      claimRevision: 0,
      claimedMs: 0,
      waits: new Map(),
      posted: new Map(),
      waitedOut: new Set(),
      postTimer: 0,
      external,
    };
    this.#byId.set(write.id, write);
    const chain = this.#chains.get(key);
    if (chain !== undefined) {
      chain.push(write); // one strong write per key per node at a time
      return write;
    }
    this.#chains.set(key, [write]);
    this.#read(write);
    return write;
  }

  /** Phase 1: read the holder record; wait out (or take over) another writer's slot. */
  #read(write: StrongWrite): void {
    const k = this.#k;
    write.phase = "read";
    const known = this.#holders.known(write.key);
    if (!write.optimistic && known !== undefined && known.record.pending === undefined) {
      // Claim at the revision last seen: uncontended writes skip a coordinator read. A
      // conflict sends us back here to read the record.
      write.optimistic = true;
      this.#claim(write, known.record, known.revision);
      return;
    }
    write.optimistic = true;
    this.#holders.read(write.key, (read) => {
      if (write.phase !== "read") return;
      if (!read.ok) {
        this.#fail(write, unavailable(write.key, read.error));
        return;
      }
      const record = read.record;
      this.#holders.remember(write.key, record, read.revision);
      if (record?.pending !== undefined && record.pending !== this.#pendingId(write)) {
        // Another writer holds the slot. Taking it over is always safe — the conditional
        // store write fences out the old writer — but taking it from a live writer makes
        // that writer fail, so wait until the record has stayed unchanged, on this node's
        // clock, for half a write deadline (a live writer releases well within it). The
        // observation outlives this write, so a dead writer's slot is freed for the next.
        const takeoverMs = (write.policy.writeTimeoutMs / 2) * (1 + k.drift) + MARGIN_MS;
        let seen = this.#contended.get(write.key);
        if (seen?.revision !== read.revision) {
          if (this.#contended.size >= CONTENDED_MAX) this.#contended.clear();
          seen = { revision: read.revision, sinceMs: k.now };
          this.#contended.set(write.key, seen);
        } else if (k.now - seen.sinceMs >= takeoverMs) {
          this.#contended.delete(write.key);
          this.#claim(write, record, read.revision);
          return;
        }
        if (k.now + CONTENTION_BACKOFF_MS >= write.deadlineMs) {
          this.#fail(
            write,
            new WarpError("CONTENDED", `Another write of the key is in progress: ${write.key}`),
          );
          return;
        }
        write.timer = k.arm(k.now + CONTENTION_BACKOFF_MS, () => this.#read(write));
        return;
      }
      this.#claim(write, record, record === undefined ? undefined : read.revision);
    });
  }

  /** Phase 2: take the key's write slot; from now on no node can register as holder. */
  #claim(write: StrongWrite, record: HolderRecord | undefined, revision: number | undefined): void {
    write.phase = "claim";
    const previous = record?.pending;
    write.tookOver = previous !== undefined && previous !== this.#pendingId(write)
      ? previous
      : undefined;
    const claimed: HolderRecord = {
      holders: record?.holders ?? [],
      pending: this.#pendingId(write),
      version: record?.version,
    };
    this.#holders.write(write.key, claimed, revision, (put) => {
      if (write.phase !== "claim") {
        // The write gave up (deadline) while the claim was in flight: give the slot back,
        // keeping the holders, none of which was revoked.
        if (put.ok) {
          this.#holders.write(
            write.key,
            { ...claimed, pending: write.tookOver },
            put.revision,
            (back) => {
              if (back.ok) this.#orphaned(write, back.revision);
            },
          );
        }
        return;
      }
      if (!put.ok) {
        this.#holders.forget(write.key);
        if (put.conflict) this.#read(write);
        else this.#fail(write, unavailable(write.key, put.error));
        return;
      }
      write.revision = put.revision;
      write.claimRevision = put.revision;
      write.claimedMs = this.#k.now;
      write.record = claimed;
      this.#holders.remember(write.key, claimed, put.revision);
      if (this.#conflictsEarly(write, claimed, put.revision)) return;
      write.external?.claimed();
      if (write.phase === "claim") this.#revoke(write); // unless the claim's owner gave up
    });
  }

  /**
   * An external write whose owner expects another version than the record's: a conflict
   * whatever the store holds (the record's version is the store's unless a fenced write
   * landed since, which moved it further). Give the slot back with every holder, none of
   * which was revoked yet, so a conflicting transaction leaves their caches alone.
   */
  #conflictsEarly(write: StrongWrite, claimed: HolderRecord, revision: number): boolean {
    const expected = write.external?.expectedVersion;
    if (expected === undefined || claimed.version === undefined || claimed.version === expected) {
      return false;
    }
    write.phase = "release";
    // Without a version: were the record's stale (the store written around Warp), keeping
    // it would make every retry conflict; the next writer learns it from the store.
    const back = { ...claimed, pending: write.tookOver, version: undefined };
    this.#holders.write(write.key, back, revision, (put) => {
      if (put.ok) this.#orphaned(write, put.revision);
      else this.#holders.forget(write.key);
      this.#finish(write);
    });
    write.external!.failed(new WarpError("STORE_CONFLICT", `Version moved: ${write.key}`));
    return true;
  }

  /**
   * Phase 3: every registered holder must stop serving the key: it acknowledges the
   * revoke, or it provably stopped. A holder that stays silent for `ackWaitMs` gets a
   * notice in its session entry (`_sessions.ts`): it then stops when it takes the notice
   * in (seen by polling the record) or, at the latest, when its session ends,
   * `sessionMs × (1 + drift) + margin` after the notice was written. A holder without a
   * session serves under a cache lease asked before our claim, which ends within `leaseMs`
   * of true time after the claim; on our clock, `leaseMs × (1 + drift)`.
   */
  #revoke(write: StrongWrite): void {
    const k = this.#k;
    write.phase = "revoke";
    // New nonces per claim: an ack of an earlier claim's revoke (the holder may have
    // registered again since) answers nothing of this one.
    write.nonces.clear();
    k.drop(write.key);
    for (const holder of write.record?.holders ?? []) {
      if (holder !== k.nodeId) write.awaiting.add(holder);
    }
    if (write.awaiting.size === 0) {
      this.#store(write);
      return;
    }
    this.#sendRevokes(write);
    this.#postLater(write);
  }

  #postLater(write: StrongWrite): void {
    const k = this.#k;
    write.postTimer = k.arm(k.now + this.#settings.ackWaitMs, () => this.#postNotices(write));
  }

  #sendRevokes(write: StrongWrite): void {
    const k = this.#k;
    for (const holder of write.awaiting) {
      k.stats.revokesSent++;
      let nonce = write.nonces.get(holder);
      if (nonce === undefined) write.nonces.set(holder, nonce = k.nonce());
      k.send(holder, {
        t: "revoke",
        from: k.nodeId,
        inc: k.incarnation,
        id: write.id,
        key: write.key,
        rev: write.claimRevision,
        nonce,
      });
    }
    // The bus may lose a revoke or its ack: ask again until answered or waited out.
    write.retransmitTimer = k.arm(k.now + this.#settings.retransmitMs, () => {
      if (write.phase === "revoke") this.#sendRevokes(write);
    });
  }

  /** Posts notices for the holders still silent; retried while the coordinator fails. */
  #postNotices(write: StrongWrite): void {
    const k = this.#k;
    if (write.phase !== "revoke") return;
    const silent = [...write.awaiting].filter((h) => !write.waits.has(h));
    if (silent.length === 0) return;
    this.#settings.notices.post(silent, write.key, write.claimRevision, (outcomes) => {
      if (write.phase !== "revoke") return;
      if (outcomes === undefined) {
        this.#postLater(write);
        return;
      }
      let posted = 0;
      let full = false;
      for (const [holder, outcome] of outcomes) {
        if (!write.awaiting.has(holder)) continue;
        if (outcome.kind === "full") {
          full = true; // its next renewal empties the list: post again then
        } else if (outcome.kind === "posted") {
          posted++;
          const waitMs = outcome.untilMs - k.now;
          write.waits.set(
            holder,
            k.canary.sessionWaitWithoutDrift ? k.now + waitMs / (1 + k.drift) : outcome.untilMs,
          );
          write.posted.set(holder, outcome);
        } else {
          const leaseWaitMs = k.canary.leaseWaitWithoutDrift
            ? write.policy.leaseMs + MARGIN_MS
            : write.policy.leaseMs * (1 + k.drift) + MARGIN_MS;
          write.waits.set(holder, write.claimedMs + leaseWaitMs);
        }
      }
      k.stats.noticesPosted += posted;
      this.#armWaits(write);
      if (posted > 0) this.#poll(write);
      if (full) this.#postLater(write);
    });
  }

  /** Wakes at the earliest wait's end: holders whose wait is over are waited out. */
  #armWaits(write: StrongWrite): void {
    const k = this.#k;
    k.disarm(write.timer);
    let next = Infinity;
    for (const holder of write.awaiting) {
      const until = write.waits.get(holder);
      if (until !== undefined && until < next) next = until;
    }
    if (next === Infinity) return;
    write.timer = k.arm(next, () => {
      if (write.phase !== "revoke") return;
      for (const holder of [...write.awaiting]) {
        const until = write.waits.get(holder);
        if (until === undefined || k.now < until) continue;
        write.awaiting.delete(holder);
        write.waitedOut.add(holder);
        k.stats.leaseWaits++;
      }
      if (write.awaiting.size === 0) this.#store(write);
      else this.#armWaits(write);
    });
  }

  /** While notices are out, read the sessions record: a holder that took its in is done. */
  #poll(write: StrongWrite): void {
    const k = this.#k;
    k.arm(k.now + this.#settings.pollMs, () => {
      if (write.phase !== "revoke") return;
      const open = new Map<NodeId, { revision: number; inc: number; session: number }>();
      for (const [holder, post] of write.posted) {
        if (write.awaiting.has(holder)) open.set(holder, post);
      }
      if (open.size === 0) return;
      this.#settings.notices.poll(open, (settled) => {
        if (write.phase !== "revoke") return;
        for (const holder of settled) write.awaiting.delete(holder);
        if (write.awaiting.size === 0) this.#store(write);
        else this.#poll(write);
      });
    });
  }

  /** Phase 4: the conditional store write; the condition fences out a taken-over writer. */
  #store(write: StrongWrite): void {
    const k = this.#k;
    write.phase = "store";
    k.disarm(write.timer);
    k.disarm(write.retransmitTimer);
    k.disarm(write.postTimer);
    if (write.storeless) {
      this.#revoked(write);
      return;
    }
    const known = write.input.expectedVersion ?? write.record?.version;
    if (known !== undefined && write.storeAttempts === 0) {
      this.#storeAt(write, known);
      return;
    }
    // The version to write at is unknown (a new record, a failed writer's release) or has
    // moved. Learn it from the store, then pin it in our record while the slot is provably
    // still ours: a writer that takes the slot over later writes at that same version, so
    // at most one of us can land. Reading it and writing at once would let a writer that
    // stalls between the two land after its taker (simulator seed 9905005).
    k.storeGet(write.key, (read) => {
      if (write.phase !== "store") return;
      if (!read.ok) {
        this.#fail(
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
      this.#holders.write(write.key, pinned, write.revision, (put) => {
        if (write.phase !== "store") return;
        if (!put.ok) {
          this.#holders.forget(write.key);
          this.#fail(
            write,
            put.conflict
              ? new WarpError("CONTENDED", `Write slot was taken over: ${write.key}`)
              : unavailable(write.key, put.error),
          );
          return;
        }
        write.revision = put.revision;
        write.record = pinned;
        this.#holders.remember(write.key, pinned, put.revision);
        this.#storeAt(write, read.version);
      });
    });
  }

  #storeAt(write: StrongWrite, expectedVersion: number): void {
    if (write.external !== undefined) {
      write.external.ready(expectedVersion); // the owner commits, conditional on it
      return;
    }
    write.storeAttempts++;
    const deleting = write.input.payload === undefined;
    this.#k.storeWrite(write.key, write.input.payload, expectedVersion, (result) => {
      if (write.phase !== "store") return;
      if (result.ok) {
        this.#committed(write, result.version, deleting);
        return;
      }
      if (
        result.error.code !== "STORE_CONFLICT" || write.storeAttempts >= 3 ||
        write.input.expectedVersion !== undefined
      ) {
        this.#fail(
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
      this.#store(write);
    });
  }

  /** Committed: answer the caller, then release the slot and become the only holder. */
  #committed(write: StrongWrite, version: number, deleting: boolean): void {
    const k = this.#k;
    k.noteVersion(write.key, version);
    const data = {
      value: deleting ? undefined : write.input.value,
      found: !deleting,
      version,
      sizeBytes: write.input.sizeBytes,
      leases: deleting ? undefined : write.input.leases,
    };
    k.answerWrite(write.op, { ...data, source: "none" });
    const askMs = k.now;
    this.#release(write, [k.nodeId], version, (released) => {
      if (released && !write.revokedDuringRelease) {
        k.install(write.key, write.policy, data, askMs, write.input.ttlMs);
      }
    });
  }

  /**
   * A loader-backed key's holders are all revoked (or waited out): no node serves what it
   * loaded before. Answer, then release the slot, caching nothing (this node loaded nothing).
   */
  #revoked(write: StrongWrite): void {
    this.#k.answerWrite(write.op, { found: false, value: undefined, version: 0, source: "none" });
    this.#release(write, [], write.record?.version, () => {});
  }

  /**
   * Gives the write slot back: the record lists `first` and the holders that acknowledged
   * (or took a notice in), which may cache again without a coordinator write and keep the
   * record stable for the next optimistic claim; the silent ones that were waited out are
   * dropped. A superset of the nodes that may cache is always safe. `then` hears whether
   * the release was written.
   */
  #release(
    write: StrongWrite,
    first: readonly NodeId[],
    version: number | undefined,
    then: (released: boolean) => void,
  ): void {
    const k = this.#k;
    write.phase = "release";
    const kept = (write.record?.holders ?? []).filter((h) =>
      h !== k.nodeId && !write.waitedOut.has(h)
    );
    const released: HolderRecord = { holders: [...first, ...kept], pending: undefined, version };
    this.#holders.write(write.key, released, write.revision, (put) => {
      if (put.ok) this.#holders.remember(write.key, released, put.revision);
      else this.#holders.forget(write.key);
      then(put.ok);
      this.#finish(write);
    });
  }

  #fail(write: StrongWrite, error: WarpError): void {
    const k = this.#k;
    const claimed = write.phase === "revoke" || write.phase === "store";
    if (write.external === undefined) k.answerWrite(write.op, error);
    k.disarm(write.timer);
    k.disarm(write.retransmitTimer);
    k.disarm(write.postTimer);
    if (!claimed) {
      this.#finish(write);
      write.external?.failed(error); // told last: its owner may end its other writes now
      return;
    }
    // Give the slot back, keeping every holder not yet revoked (during phase 3 some may
    // still serve). If the store write did land after all, its version is unknown here. A
    // slot taken over goes back to the writer it was taken from, whose conditional store
    // write may still land: were it free, a reader could register, read the old version and
    // keep it past that write, which revoked no one registered after its claim (seed 2).
    const holders = write.phase === "revoke" ? [...write.awaiting] : [];
    write.phase = "release";
    this.#holders.write(
      write.key,
      { holders, pending: write.tookOver, version: undefined },
      write.revision,
      (put) => {
        if (put.ok) this.#orphaned(write, put.revision);
        this.#finish(write);
      },
    );
    write.external?.failed(error);
  }

  /**
   * A slot this write took over went back to its stalled writer at `revision`: it was seen
   * orphaned for half a write deadline already, so the next write of the key here takes it
   * over at once while the record stays at that revision (without this, a holder slower to
   * wait out than half a deadline would fail every write after a dead writer's for good).
   */
  #orphaned(write: StrongWrite, revision: number): void {
    if (write.tookOver === undefined) return;
    if (this.#contended.size >= CONTENDED_MAX) this.#contended.clear();
    this.#contended.set(write.key, { revision, sinceMs: -Infinity });
  }

  #deadline(write: StrongWrite): void {
    const k = this.#k;
    const pending = k.ops.get(write.op);
    const open = write.external !== undefined
      ? write.phase !== "done"
      : pending?.kind === "write" && !pending.answered;
    if (!open) return;
    if (write.phase === "store" || write.phase === "release") {
      if (write.external !== undefined) return; // ready: its owner decides
      k.timeoutWrite(write.op); // in flight in the store: the outcome is unknown
      return;
    }
    const what = write.storeless ? "invalidation" : "write";
    this.#fail(
      write,
      new WarpError(
        "TIMEOUT",
        `Strong ${what} could not complete in time, it did not take effect: ${write.key}`,
      ),
    );
  }

  #finish(write: StrongWrite): void {
    write.phase = "done";
    this.#byId.delete(write.id);
    const chain = this.#chains.get(write.key);
    const index = chain?.indexOf(write) ?? -1;
    assert(chain !== undefined && index >= 0, `Strong write of ${write.key} is not in its chain`);
    chain.splice(index, 1);
    // A queued write can fail (its deadline) before its turn: then the head runs on.
    if (index > 0) return;
    const next = chain[0];
    if (next === undefined) this.#chains.delete(write.key);
    else this.#read(next);
  }

  // ---------------------------------------------------------------- holder records
  #pendingId(write: StrongWrite): string {
    const k = this.#k;
    return `${k.nodeId}/${k.incarnation}/${write.id}`;
  }
}

function unavailable(key: string, cause: WarpError): WarpError {
  return new WarpError(
    "COORDINATOR_UNAVAILABLE",
    `Coordinator unreachable, strong write failed fast: ${key}`,
    { cause },
  );
}
