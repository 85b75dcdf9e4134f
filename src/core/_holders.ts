/**
 * The holder side of the strong-distributed protocol of one node: the holder record each
 * strong key keeps in the coordinator (`strong/<key>`: who may cache it, and which writer
 * holds its write slot), how a fill registers this node in it before it reads the store,
 * and how this node answers a writer's revocation (drop, then acknowledge). The writer's
 * side is `_strong.ts`; both read and write records only through this module, so the
 * floors that make a stale record read untrusted hold for every read.
 *
 * Design: a holder registers by compare-and-set (or, where a read is provably current,
 * by a read that lists it) and serves only while its registration's lease or session
 * lives; every record revision this node sees raises a per-key floor, and a read below
 * the floor (a lagging replica) is trusted for nothing but a compare-and-set.
 *
 * Rejected: registering by a plain record read everywhere — under stale coordinator reads
 * a node could find itself listed from before a writer's claim and serve past the write.
 *
 * @module
 */

import type { WarpError } from "./errors.ts";
import type { CoordReadResult, CoordWriteResult, HolderRecord } from "./effects.ts";
import type { RevokeMessage } from "./messages.ts";
import type { NodeKernel } from "./_kernel.ts";
import type { HolderRegistration } from "./_fills.ts";

/** Registration compare-and-sets tried before a fill reads through uncached. */
const REGISTER_ATTEMPTS_MAX = 3;
/** Most holder records remembered for optimistic claims, and most floors kept. */
const RECORDS_MAX = 10_000;
const HOLDER_KEY_INLINE_MAX = 512;

/**
 * The coordinator key of a strong-distributed key's holder record.
 *
 * @example
 * ```ts
 * import { holderRecordKey } from "./node.ts";
 * console.log(holderRecordKey("account:7")); // "strong/account:7"
 * ```
 */
export function holderRecordKey(key: string): string {
  // Coordinators limit key length (NATS KV: 1024). Long keys share records by hash: a
  // collision only makes two keys contend for one write slot, never breaks safety.
  return key.length <= HOLDER_KEY_INLINE_MAX ? `strong/${key}` : `strong#${hash53(key)}`;
}

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

/**
 * A coordinator read of a holder record; `stale` when it is older than a revision this
 * node has seen or than a claim that revoked it (trust it for nothing but a compare-and-set).
 */
export type HolderReadResult =
  | {
    readonly ok: true;
    readonly record: HolderRecord | undefined;
    readonly revision: number;
    readonly stale?: boolean;
  }
  | { readonly ok: false; readonly error: WarpError };

/** What the holder side needs of the session protocol (`_sessions.ts`). */
export interface SessionJoin {
  /** The revision of this node's session join: holder records older than it are not trusted. */
  readonly joinRevision: number;
}

/** The holder records of one node's strong keys, and its registrations in them. */
export class StrongHolders implements HolderRegistration {
  readonly #k: NodeKernel;
  readonly #session: SessionJoin;
  /** The holder record of a strong key as this node last saw it, for optimistic claims. */
  readonly #records = new Map<string, { record: HolderRecord; revision: number }>();
  /**
   * Per key, the revision of the latest claim that revoked this node: a holder record read
   * at an older revision may predate that claim (a lagging replica answered), so it is not
   * trusted. Bounded: a forgotten floor lifts the floor of every key to it.
   */
  readonly #floors = new Map<string, number>();
  #floorForgotten = 0;

  /** Makes the holder side of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel, session: SessionJoin) {
    this.#k = kernel;
    this.#session = session;
  }

  /**
   * Registers this node as a holder of `key` before a fill reads the store, unless a
   * write holds the slot; `then` gets when the registration was asked, or `undefined`.
   *
   * Under sessions a holder serves while its session lives, so it registers only with a
   * live session; a record read that shows it registered is trusted only if it is at
   * least as new as every claim that revoked it and as its session's join (an older read
   * may come from a lagging replica, from before a writer claimed the slot). Otherwise
   * the registration is a compare-and-set, which proves the record current. Without
   * sessions, a read is trusted only where coordinator reads are current
   * (`coordinatorStalenessMs` 0); else every registration is a compare-and-set (which moves
   * the record's revision: the next writer's optimistic claim then reads again).
   */
  registerHolder(key: string, then: (askMs: number | undefined) => void): void {
    const k = this.#k;
    if (k.sessions && k.now >= k.liveUntilMs) {
      then(undefined);
      return;
    }
    this.#register(key, 1, then);
  }

  #register(key: string, attempt: number, then: (askMs: number | undefined) => void): void {
    const k = this.#k;
    const askMs = k.now;
    this.read(key, (read) => {
      if (read.ok) this.remember(key, read.record, read.revision);
      if (!read.ok || read.record?.pending !== undefined) {
        then(undefined);
        return;
      }
      const record = read.record;
      const listed = record !== undefined && record.holders.includes(k.nodeId);
      // Under sessions a read is trusted from the floors (any staleness); without one, only
      // where reads are current (every registration a compare-and-set otherwise).
      const trusted = k.canary.trustStaleRegistration ||
        (read.stale !== true && (k.sessions || k.currentReads));
      if (listed && trusted) {
        then(askMs);
        return;
      }
      const next: HolderRecord = {
        holders: listed ? record.holders : [...(record?.holders ?? []), k.nodeId],
        pending: undefined,
        version: record?.version,
      };
      const claimAskMs = k.now;
      this.write(key, next, record === undefined ? undefined : read.revision, (put) => {
        if (put.ok) {
          this.remember(key, next, put.revision);
          then(claimAskMs);
        } else if (put.conflict && attempt < REGISTER_ATTEMPTS_MAX) {
          this.#register(key, attempt + 1, then);
        } else {
          then(undefined);
        }
      });
    });
  }

  /** The oldest revision of `key`'s holder record this node trusts a read of. */
  #floorOf(key: string): number {
    const floor = this.#floors.get(key) ?? this.#floorForgotten;
    return Math.max(floor, this.#k.sessions ? this.#session.joinRevision : 0);
  }

  /** A claim at revision `rev` revoked this node's hold on `key`. */
  #raiseFloor(key: string, rev: number): void {
    const floors = this.#floors;
    if ((floors.get(key) ?? this.#floorForgotten) >= rev) return;
    if (!floors.has(key) && floors.size >= RECORDS_MAX) {
      for (const v of floors.values()) this.#floorForgotten = Math.max(this.#floorForgotten, v);
      floors.clear();
    }
    floors.set(key, rev);
  }

  /** A notice in this node's session entry revoked `key`: drop it, like a `revoke`. */
  revokedByNotice(key: string, rev: number): void {
    this.#raiseFloor(key, rev);
    this.#k.drop(key);
  }

  /** This node's session ended: no strong entry may be served or cached from before. */
  sessionLost(): void {
    const k = this.#k;
    k.l1.deleteWhere((e) => e.policy.mode === "strong-distributed");
  }

  /**
   * A writer revokes this node's hold on `key` (a `revoke` message): drop it, acknowledge
   * with the revoke's id, the writer's incarnation and the revoke's nonce.
   */
  onRevoke(revoke: RevokeMessage): void {
    const k = this.#k;
    this.#raiseFloor(revoke.key, revoke.rev);
    k.drop(revoke.key);
    k.send(revoke.from, {
      t: "ack",
      from: k.nodeId,
      inc: k.incarnation,
      id: revoke.id,
      key: revoke.key,
      to: revoke.inc,
      nonce: revoke.nonce,
    });
  }

  // ---------------------------------------------------------------- holder records

  /** The record of `key` as this node last saw it, if it remembers one. */
  known(key: string): { record: HolderRecord; revision: number } | undefined {
    return this.#records.get(key);
  }

  /** Forgets the remembered record of `key` (a write to it failed). */
  forget(key: string): void {
    this.#records.delete(key);
  }

  /** Remembers `record` at `revision` as the newest this node knows of `key`. */
  remember(key: string, record: HolderRecord | undefined, revision: number): void {
    if (record === undefined) {
      this.#records.delete(key);
      return;
    }
    if (this.#records.size >= RECORDS_MAX && !this.#records.has(key)) this.#records.clear();
    this.#records.set(key, { record, revision });
  }

  /**
   * Reads `key`'s holder record. Every revision this node sees of a record, read or
   * written by itself, raises its floor: a later read older than one it has seen is never
   * trusted (a writer's own failed release may have dropped it from the holders, and an
   * older read would still list it: simulator seed 2083 with stale reads).
   */
  read(key: string, handler: (r: HolderReadResult) => void): void {
    // The driver decodes by the effect's kind: a "holder" read carries a holder record.
    this.#k.coordGet(holderRecordKey(key), "holder", undefined, (result: CoordReadResult) => {
      const read = result as HolderReadResult;
      if (!read.ok) {
        handler(read);
        return;
      }
      const stale = read.revision < this.#floorOf(key);
      this.#raiseFloor(key, read.revision);
      handler(stale ? { ...read, stale } : read);
    });
  }

  /** Creates (`revision` undefined) or compare-and-sets `key`'s record; a success raises its floor. */
  write(
    key: string,
    record: HolderRecord,
    revision: number | undefined,
    handler: (r: CoordWriteResult) => void,
  ): void {
    this.#k.coordPut(holderRecordKey(key), record, revision, undefined, (put) => {
      if (put.ok) this.#raiseFloor(key, put.revision);
      handler(put);
    });
  }
}
