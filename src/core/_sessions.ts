/**
 * Node sessions: each node's standing in the cluster, kept in one coordinator record and
 * renewed by compare-and-set (Chubby's sessions, Burrows OSDI 2006, over a CAS register).
 *
 * The record `sessions` lists the members: per node its incarnation, its session number,
 * its `sessionMs`, the record revision its last renewal was based on (`after`), and the
 * notices other nodes posted for it (strong revocations it has not acknowledged). A node
 * renews about every `sessionMs / 3`: it reads the record, applies what concerns it (drops
 * the keys of its notices, learns who joined and who was removed, notices members that
 * stopped renewing), then writes the record back with a compare-and-set at the revision
 * it read. A successful write proves that the record it read was current at the moment of
 * the write: the node then believes in its session until `sent + sessionMs × (1 − drift)`
 * on its own clock, measured from when it *sent* the write, so the belief ends within
 * `sessionMs` of true time after the write took effect, whatever the delays.
 *
 * What a live session gives the other protocols:
 * - **strong-distributed** (`_strong.ts`): a holder serves its entries while its session
 *   lives. A writer that gets no acknowledgement from a holder posts a notice into the
 *   holder's entry; the holder's next renewal reads it (a renewal at an older revision
 *   fails), so it drops the key before its belief can be renewed. The writer completes on
 *   the acknowledgement, on reading the holder's entry renewed past the notice, or once
 *   the holder's session has provably ended: `sessionMs × (1 + drift) + margin` after its
 *   own write of the notice, on its own clock.
 * - **eventual-distributed** (`_peers.ts`): the members are the writers a node must have
 *   heard. A node serves an entry past the age bound only while its session lives and
 *   every member has echoed a recent heartbeat round with no gap; a node completes an
 *   eventual write only while it is an *active* member, one that every other member has
 *   taken in (each renewed on a record that lists it) or whose sessions from before it
 *   joined have provably ended.
 * - **membership changes**: a member that stops renewing is removed by the first member
 *   that has watched its entry stay unchanged for the removed member's own
 *   `sessionMs × (1 + drift) + margin`, so its belief has ended when it is removed; the
 *   others flush their eventual entries when they see a member removed (its last
 *   invalidations may have been lost).
 *
 * Every decision is made by a compare-and-set, never by a plain read: a replicated
 * coordinator may answer a read from an older state (NATS ADR-8, ADR-53), but a write at
 * the revision read succeeds only if that state is current. A read is used only where an
 * older state is safe: it is a real past state, so "member m renewed on a record at
 * revision ≥ r" or "m is absent at a revision after r" stays true.
 *
 * Rejected: one record per node (no contention between renewals), because a node could
 * then not learn of a new member by compare-and-set: a read of a membership list may be
 * old, and a member missed that way would be a writer whose invalidations nobody waits
 * for. One record makes every renewal a check of the whole membership; the price is
 * contention (a renewal that loses the race reads and writes again) and a record that
 * grows with the cluster (about 80 bytes per member). Also rejected: per-key cache leases
 * renewed by each holder (the protocol before sessions), which cost one coordinator round
 * trip per key per node per lease term, so entries did not live to their TTL.
 *
 * @module
 */

import { isKey, isNodeId } from "./messages.ts";
import type { NodeId } from "./messages.ts";
import type { CoordReadResult, CoordWriteResult } from "./effects.ts";
import { MARGIN_MS } from "./_kernel.ts";
import type { NodeKernel } from "./_kernel.ts";
import { nodeSeed, Xorshift32 } from "./_random.ts";

/** The coordinator key of the sessions record. */
export const SESSIONS_RECORD_KEY = "sessions";
/**
 * Most notices one member's entry holds; a writer that finds it full posts again later (the
 * member's next renewal empties it, or the member is removed once its session has ended).
 */
export const SESSION_NOTICES_MAX = 64;
/** The longest `sessionMs` a node may use: one hour. */
export const SESSION_MAX_MS = 3_600_000;
/** Renewal attempts in a row after a lost compare-and-set, before waiting a poll interval. */
const RENEW_ATTEMPTS_MAX = 4;
/** Posting attempts in a row after a lost compare-and-set. */
const POST_ATTEMPTS_MAX = 8;

/** A revocation posted for a member that did not acknowledge it over the bus. */
export interface SessionNotice {
  /** The strong-distributed key revoked. */
  readonly key: string;
  /** The revision of the writer's claim on the key's holder record. */
  readonly rev: number;
}

/** One member of the cluster, as its entry of the sessions record says. */
export interface SessionMember {
  /** The member's node id. */
  readonly id: NodeId;
  /** The member's incarnation. */
  readonly inc: number;
  /** The session number within the incarnation: new at every (re)join. */
  readonly session: number;
  /** The member's own `sessionMs`: how long its belief lasts after a renewal. */
  readonly sessionMs: number;
  /** The record revision the member's last renewal (or join) was based on. */
  readonly after: number;
  /** Revocations posted for it, not yet taken in. */
  readonly notices: readonly SessionNotice[];
}

/** The sessions record: every member, sorted by id. */
export interface SessionsRecord {
  /** Every member, sorted by id. */
  readonly members: readonly SessionMember[];
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks that `value` is a well-formed {@linkcode SessionsRecord} (coordinator content is
 * outside input); returns it or `undefined`. Never throws.
 *
 * @example
 * ```ts
 * import { validateSessionsRecord } from "./_sessions.ts";
 * const record = {
 *   members: [{ id: "a", inc: 1, session: 1, sessionMs: 2000, after: 0, notices: [] }],
 * };
 * console.log(validateSessionsRecord(record) !== undefined); // true
 * console.log(validateSessionsRecord({ members: [{ id: "a b" }] })); // undefined
 * ```
 */
export function validateSessionsRecord(
  value: unknown,
  membersMax = 4096,
): SessionsRecord | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const members = (value as Record<string, unknown>).members;
  if (!Array.isArray(members) || members.length > membersMax) return undefined;
  const ids = new Set<string>();
  for (const m of members as unknown[]) {
    if (typeof m !== "object" || m === null) return undefined;
    const e = m as Record<string, unknown>;
    if (!isNodeId(e.id) || ids.has(e.id)) return undefined;
    ids.add(e.id);
    if (!isCount(e.inc) || !isCount(e.session) || !isCount(e.after)) return undefined;
    if (!isCount(e.sessionMs) || e.sessionMs < 1 || e.sessionMs > SESSION_MAX_MS) {
      return undefined;
    }
    if (!Array.isArray(e.notices) || e.notices.length > SESSION_NOTICES_MAX) return undefined;
    for (const n of e.notices as unknown[]) {
      if (typeof n !== "object" || n === null) return undefined;
      const notice = n as Record<string, unknown>;
      if (!isKey(notice.key) || !isCount(notice.rev)) return undefined;
    }
  }
  return value as SessionsRecord;
}

/** What the other protocols do when the session protocol learns something. */
export interface SessionHooks {
  /** A notice revoked `key` at claim revision `rev`: drop it, trust no older holder record. */
  revoked(key: string, rev: number): void;
  /** Members were removed or replaced: their last invalidations may be lost; flush. */
  membersRemoved(): void;
  /** This node's session ended (it was removed): drop every distributed entry. */
  lost(): void;
  /**
   * This node joined (or joined again): strong entries it cached without a session (its
   * own writes' values) held only by their lease, and a writer that saw it absent from the
   * record waited that lease out, not a session; drop them so the session cannot extend them.
   */
  joined(): void;
  /** The session's liveness or activity changed (held writes may complete). */
  changed(): void;
}

/** Settings of {@linkcode Sessions}, validated by `NodeCore`. */
export interface SessionSettings {
  /** How long a renewal's belief lasts; 0: this node does not join (no session). */
  readonly sessionMs: number;
  /** How often a joining node, or a writer waiting on a notice, reads the record. */
  readonly pollMs: number;
  /** Most members the record may list. */
  readonly membersMax: number;
}

/** What this node knows of another member (a validated view: from a record it wrote on). */
interface MemberView {
  readonly inc: number;
  readonly session: number;
  readonly sessionMs: number;
}

/** When this node first saw a member's entry as it is: to tell one that stopped renewing. */
interface Sighting {
  readonly inc: number;
  readonly session: number;
  readonly after: number;
  readonly sinceMs: number;
}

/** The outcome of posting a notice for one holder. */
export type PostOutcome =
  /** The holder is a member: posted; its session has ended by `untilMs` at the latest. */
  | {
    readonly kind: "posted";
    readonly untilMs: number;
    readonly revision: number;
    readonly inc: number;
    readonly session: number;
  }
  /** The holder is not a member: it holds no session (a node without sessions). */
  | { readonly kind: "absent" }
  /** The holder's notices are full: nothing posted; post again later. */
  | { readonly kind: "full" };

/** The session protocol of one node. */
export class Sessions {
  readonly #k: NodeKernel;
  readonly #settings: SessionSettings;
  readonly #hooks: SessionHooks;
  #joined = false;
  #session = 0;
  /** Revision of this session's join; holder records older than it are not trusted. */
  #joinRevision = Infinity;
  #active = false;
  #activeByMs = Infinity;
  /** Other members, from the last record this node wrote on. */
  readonly #members = new Map<NodeId, MemberView>();
  readonly #sightings = new Map<NodeId, Sighting>();
  #renewing = false;
  #renewTimer = 0;
  #closed = false;
  /** Revision of this node's last successful write of the record: older reads are stale. */
  #lastRevision = 0;
  /**
   * The renewal schedule's jitter, seeded from the node's id and incarnation: nodes that
   * start together would otherwise renew in step forever and lose each other's
   * compare-and-sets (the session benchmark saw 19 % lost at 50 nodes).
   */
  readonly #jitter: Xorshift32;

  /** Makes the session protocol of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel, settings: SessionSettings, hooks: SessionHooks) {
    this.#k = kernel;
    this.#settings = settings;
    this.#hooks = hooks;
    this.#jitter = new Xorshift32(nodeSeed(kernel.nodeId, kernel.incarnation));
  }

  /** The next renewal period: between 80 and 100 % of a third of `sessionMs`. */
  #renewalPeriodMs(): number {
    return (this.#settings.sessionMs / 3) * (0.8 + 0.2 * this.#jitter.next());
  }

  /** Whether this node joins the cluster's sessions (a coordinator and `sessionMs` > 0). */
  get enabled(): boolean {
    return this.#settings.sessionMs > 0;
  }

  /** Starts the session (the first renewal joins), unless disabled or started. */
  start(): void {
    if (!this.enabled || this.#renewTimer !== 0 || this.#renewing) return;
    this.#renew(1);
  }

  /** Stops renewing (the node is closing); the belief runs out by itself. */
  close(): void {
    this.#closed = true;
    this.#k.disarm(this.#renewTimer);
  }

  /** The current session's number (0 before the first join). */
  get session(): number {
    return this.#session;
  }

  /** Whether the session lives now and every member has taken this node in. */
  get active(): boolean {
    return this.#active && this.#k.now < this.#k.liveUntilMs;
  }

  /**
   * The revision of this session's join: a holder record read at an older revision may
   * predate a revocation this session never saw, so it is not trusted.
   */
  get joinRevision(): number {
    return this.#joinRevision;
  }

  /** The other members (validated), with their incarnations. */
  members(): IterableIterator<[NodeId, MemberView]> {
    return this.#members.entries();
  }

  /** The incarnation of member `id` as this node last read it, or `undefined` if not a member. */
  memberInc(id: NodeId): number | undefined {
    return this.#members.get(id)?.inc;
  }

  /** How many other members there are. */
  get memberCount(): number {
    return this.#members.size;
  }

  // ---------------------------------------------------------------- renewal

  #scheduleRenewal(atMs: number): void {
    if (this.#closed) return;
    this.#k.disarm(this.#renewTimer);
    this.#renewTimer = this.#k.arm(atMs, () => {
      this.#renewTimer = 0;
      this.#renew(1);
    });
  }

  #renew(attempt: number): void {
    const k = this.#k;
    if (this.#closed || this.#renewing) return;
    this.#renewing = true;
    this.#read((read) => {
      if (!read.ok) {
        this.#renewing = false;
        this.#scheduleRenewal(k.now + this.#settings.pollMs);
        return;
      }
      if (read.revision < this.#lastRevision) {
        // An older state than one this node wrote: a lagging replica answered. Its write
        // would fail anyway; ask again rather than act on it.
        this.#renewing = false;
        if (attempt < RENEW_ATTEMPTS_MAX) this.#renew(attempt + 1);
        else this.#scheduleRenewal(k.now + this.#settings.pollMs);
        return;
      }
      const record = read.record;
      const mine = record?.members.find((m) => m.id === k.nodeId);
      const ours = mine !== undefined && mine.inc === k.incarnation &&
        mine.session === this.#session;
      if (this.#joined && !ours) {
        // Removed (or replaced): notices posted for this session may be gone with it, so
        // nothing it cached can be trusted. Start over as a new session.
        this.#loseSession();
      }
      if (ours) { for (const n of mine.notices) this.#hooks.revoked(n.key, n.rev); }
      const next = this.#nextRecord(record, read.revision);
      if (next === undefined) {
        this.#renewing = false;
        this.#scheduleRenewal(k.now + this.#settings.pollMs);
        return;
      }
      const sentMs = k.now;
      const joining = !this.#joined;
      k.coordPut(
        SESSIONS_RECORD_KEY,
        next,
        record === undefined ? undefined : read.revision,
        undefined,
        (put) => this.#renewed(put, next, sentMs, joining, attempt),
      );
    });
  }

  /** The record with this node's entry renewed, and members that stopped renewing removed. */
  #nextRecord(record: SessionsRecord | undefined, revision: number): SessionsRecord | undefined {
    const k = this.#k;
    const members: SessionMember[] = [];
    for (const m of record?.members ?? []) {
      if (m.id === k.nodeId) continue;
      if (this.#expired(m)) continue;
      members.push(m);
    }
    if (members.length + 1 > this.#settings.membersMax) return undefined;
    if (!this.#joined) this.#session = Math.max(this.#session, 0) + 1;
    members.push({
      id: k.nodeId,
      inc: k.incarnation,
      session: this.#session,
      sessionMs: this.#settings.sessionMs,
      after: record === undefined ? 0 : revision,
      notices: [],
    });
    members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { members };
  }

  /**
   * Whether member `m` has provably stopped renewing: this node has seen its entry
   * unchanged for its `sessionMs × (1 + drift)` plus a margin, so the belief its last
   * renewal gave it has ended (that renewal took effect before the first sighting).
   */
  #expired(m: SessionMember): boolean {
    const seen = this.#sightings.get(m.id);
    if (seen === undefined) return false;
    if (seen.inc !== m.inc || seen.session !== m.session || seen.after !== m.after) return false;
    return this.#k.now - seen.sinceMs >= m.sessionMs * (1 + this.#k.drift) + MARGIN_MS;
  }

  #renewed(
    put: CoordWriteResult,
    record: SessionsRecord,
    sentMs: number,
    joining: boolean,
    attempt: number,
  ): void {
    const k = this.#k;
    this.#renewing = false;
    if (this.#closed) return;
    if (!put.ok) {
      if (put.conflict && attempt < RENEW_ATTEMPTS_MAX) this.#renew(attempt + 1);
      else this.#scheduleRenewal(k.now + this.#settings.pollMs);
      return;
    }
    k.stats.sessionRenewals++;
    // The write took effect at some instant after sentMs: a belief measured from then
    // ends within sessionMs of true time after it, whatever the answer's delay.
    const fromMs = k.canary.sessionFromAnswer ? k.now : sentMs;
    this.#k.liveUntilMs = fromMs + this.#settings.sessionMs * (1 - k.drift);
    this.#lastRevision = put.revision;
    if (joining) {
      this.#joined = true;
      this.#joinRevision = put.revision;
      this.#active = false;
      this.#hooks.joined();
      // Members that renewed before this join may still believe in a session that does
      // not know this node, for at most their sessionMs after the join took effect.
      let longestMs = 0;
      for (const m of record.members) {
        if (m.id !== k.nodeId) longestMs = Math.max(longestMs, m.sessionMs);
      }
      this.#activeByMs = k.now + longestMs * (1 + k.drift) + MARGIN_MS;
      if (longestMs === 0) this.#active = true;
      else this.#armActivation();
    }
    this.#adopt(record);
    this.#scheduleRenewal(fromMs + this.#renewalPeriodMs());
    this.#hooks.changed();
  }

  /** Makes `record` (just written, so current when written) this node's view of the members. */
  #adopt(record: SessionsRecord): void {
    const k = this.#k;
    let removed = false;
    const present = new Set<NodeId>();
    for (const m of record.members) {
      if (m.id === k.nodeId) continue;
      present.add(m.id);
      const known = this.#members.get(m.id);
      if (known !== undefined && (known.inc !== m.inc || known.session !== m.session)) {
        removed = true;
      }
      this.#members.set(m.id, { inc: m.inc, session: m.session, sessionMs: m.sessionMs });
    }
    for (const id of [...this.#members.keys()]) {
      if (!present.has(id)) {
        this.#members.delete(id);
        this.#sightings.delete(id);
        removed = true;
      }
    }
    if (removed) this.#hooks.membersRemoved();
  }

  #loseSession(): void {
    this.#k.stats.sessionsLost++;
    if (this.#k.events !== undefined) this.#k.note({ type: "session-lost" });
    this.#joined = false;
    this.#active = false;
    this.#k.liveUntilMs = -Infinity;
    this.#joinRevision = Infinity;
    this.#members.clear();
    this.#hooks.lost();
    this.#hooks.changed();
  }

  // ---------------------------------------------------------------- activation

  /** Until active, read the record every poll interval to see the members take us in. */
  #armActivation(): void {
    const k = this.#k;
    const at = Math.min(k.now + this.#settings.pollMs, this.#activeByMs);
    k.arm(at, () => {
      if (this.#active || !this.#joined || this.#closed) return;
      if (k.now >= this.#activeByMs) {
        this.#active = true;
        this.#hooks.changed();
        return;
      }
      this.#read(() => {
        if (!this.#active) this.#armActivation();
      });
    });
  }

  /** Checks, on any record read, whether every member has renewed on one listing us. */
  #checkActivation(record: SessionsRecord | undefined, revision: number): void {
    if (this.#active || !this.#joined || record === undefined) return;
    // A state older than our join (a lagging replica) says nothing of who has taken us in:
    // the members that joined between it and our join are not in it.
    if (revision < this.#joinRevision) return;
    const k = this.#k;
    for (const m of record.members) {
      if (m.id === k.nodeId) continue;
      // A member absent from this record was removed after our join, or joined after it
      // (then it knows us): either way it holds no belief that ignores us.
      if (m.after < this.#joinRevision) return;
    }
    this.#active = true;
    this.#hooks.changed();
  }

  // ---------------------------------------------------------------- reads

  /** Reads the record; every read feeds the sightings and the activation check. */
  #read(then: (read: SessionsRead) => void): void {
    const k = this.#k;
    k.coordGet(SESSIONS_RECORD_KEY, "sessions", undefined, (result: CoordReadResult) => {
      if (!result.ok) {
        then(result);
        return;
      }
      const record = result.record as SessionsRecord | undefined;
      this.#sight(record);
      this.#checkActivation(record, result.revision);
      then({ ok: true, record, revision: result.revision });
    });
  }

  #sight(record: SessionsRecord | undefined): void {
    const k = this.#k;
    for (const m of record?.members ?? []) {
      if (m.id === k.nodeId) continue;
      const seen = this.#sightings.get(m.id);
      if (
        seen === undefined || seen.inc !== m.inc || seen.session !== m.session ||
        seen.after !== m.after
      ) {
        if (this.#sightings.size >= this.#settings.membersMax && seen === undefined) {
          this.#sightings.clear(); // forgetting sightings only delays a removal
        }
        this.#sightings.set(m.id, {
          inc: m.inc,
          session: m.session,
          after: m.after,
          sinceMs: k.now,
        });
      }
    }
  }

  // ---------------------------------------------------------------- notices (writers)

  /**
   * Posts a notice revoking `key` (claimed at revision `rev`) for each of `holders`, in one
   * compare-and-set; `done` gets the outcome per holder, or `undefined` if the coordinator
   * could not be written (the writer keeps waiting for acknowledgements). A holder is
   * `absent` only if the compare-and-set succeeded on a record without it. A member whose
   * notices are full is left as it is (`full`): removing it would not end the belief its
   * last renewal gave it, and a writer that later found it absent would wait too little
   * (found by the session unit tests); the writer posts again.
   */
  post(
    holders: readonly NodeId[],
    key: string,
    rev: number,
    done: (outcomes: Map<NodeId, PostOutcome> | undefined) => void,
  ): void {
    const attempt = (n: number): void => {
      this.#read((read) => {
        if (!read.ok) {
          done(undefined);
          return;
        }
        const record = read.record;
        const targets = new Map<NodeId, SessionMember>();
        for (const m of record?.members ?? []) {
          if (holders.includes(m.id)) targets.set(m.id, m);
        }
        // The record is written back even when no holder is in it: a read may come from
        // a lagging replica, from before a holder joined, and only the compare-and-set
        // proves the holders absent now (an absent record is created, empty).
        const members: SessionMember[] = [];
        for (const m of record?.members ?? []) {
          if (!targets.has(m.id)) {
            members.push(m);
            continue;
          }
          if (
            m.notices.length >= SESSION_NOTICES_MAX ||
            m.notices.some((x) => x.key === key && x.rev >= rev)
          ) {
            members.push(m);
            continue;
          }
          members.push({ ...m, notices: [...m.notices, { key, rev }] });
        }
        const revision = record === undefined ? undefined : read.revision;
        this.#k.coordPut(SESSIONS_RECORD_KEY, { members }, revision, undefined, (put) => {
          if (!put.ok) {
            if (put.conflict && n < POST_ATTEMPTS_MAX) attempt(n + 1);
            else done(undefined);
            return;
          }
          const now = this.#k.now;
          const outcomes = new Map<NodeId, PostOutcome>();
          for (const h of holders) {
            const m = targets.get(h);
            const full = m !== undefined && m.notices.length >= SESSION_NOTICES_MAX &&
              !m.notices.some((x) => x.key === key && x.rev >= rev);
            outcomes.set(
              h,
              m === undefined ? { kind: "absent" } : full ? { kind: "full" } : {
                kind: "posted",
                untilMs: now + m.sessionMs * (1 + this.#k.drift) + MARGIN_MS,
                revision: put.revision,
                inc: m.inc,
                session: m.session,
              },
            );
          }
          done(outcomes);
        });
      });
    };
    attempt(1);
  }

  /**
   * Reads the record for a writer waiting on notices; `then` gets, per holder posted at
   * `revision` with `inc`/`session`, whether it has taken the notice in (renewed on a
   * record at or after the post) or is no longer that member (removed: its session
   * ended). Either is a real past state, so an old read can only say "not yet".
   */
  poll(
    posted: ReadonlyMap<NodeId, { revision: number; inc: number; session: number }>,
    then: (settled: NodeId[]) => void,
  ): void {
    this.#read((read) => {
      if (!read.ok) {
        then([]);
        return;
      }
      const settled: NodeId[] = [];
      for (const [id, post] of posted) {
        if (read.revision < post.revision) continue; // an older state says nothing
        const m = read.record?.members.find((x) => x.id === id);
        if (m === undefined || m.inc !== post.inc || m.session !== post.session) {
          settled.push(id);
        } else if (m.after >= post.revision) {
          settled.push(id);
        }
      }
      then(settled);
    });
  }
}

/** A read of the sessions record. */
type SessionsRead =
  | { readonly ok: true; readonly record: SessionsRecord | undefined; readonly revision: number }
  | { readonly ok: false };
