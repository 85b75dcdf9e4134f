/**
 * Peer tracking on one node: its heartbeats, and what it has heard of every other node's
 * numbered broadcasts (`inv`, `drop`), so that a lost one is noticed. The bus is at most
 * once; a gap in a peer's sequence numbers that stays open past `gapTimeoutMs` (messages
 * may only be reordered), or a first word from a peer that has broadcast before, means
 * invalidations of unknown keys were missed: the node flushes its eventual entries
 * (`_eventual.ts`) and goes on.
 *
 * Design: per peer incarnation, the highest sequence number heard and the highest below
 * which every number was heard (`contiguous`), with the few numbers heard ahead of it;
 * heartbeats carry the sender's last number, so a loss just before a quiet spell is
 * noticed within a heartbeat. A node's own echo is ignored. The peer table is bounded:
 * the least recently heard peer is forgotten first, and a peer silent for ten minutes is
 * forgotten (a later word from it counts as a first word).
 *
 * Rejected: asking the sender to replay what was missed (a NACK protocol) — the sender
 * would have to keep every broadcast it made, bounded only by how long a partition lasts;
 * and flushing at every out-of-order arrival — on a bus that reorders, nodes would flush
 * all the time.
 *
 * @module
 */

import { ECHOES_MAX } from "./messages.ts";
import type { Echo, NodeId } from "./messages.ts";
import type { NodeKernel } from "./_kernel.ts";
import { EchoBudget } from "./_echo_budget.ts";
import type { FlushReason } from "./events.ts";

/** Most sequence numbers held ahead of a gap before the gap is healed by a flush. */
const AHEAD_MAX = 256;
/** A peer not heard for this long is forgotten. */
const PEER_FORGET_MS = 600_000;

/** A peer not heard for this many heartbeat intervals is left out of the echoes. */
const ECHO_SILENCE_INTERVALS = 8;
/** Rounds of this node remembered: an echo of an older round is of no use. */
const ROUNDS_KEPT = 256;

/** What this node has heard of one peer incarnation's broadcasts. */
interface Peer {
  inc: number;
  contiguous: number;
  highest: number;
  readonly ahead: Set<number>;
  gapSinceMs: number | undefined;
  lastHeardMs: number;
  /** The latest round of the peer heard (echoed back in this node's heartbeats). */
  round: number;
  /** The newest round of ours the peer echoed with every broadcast before it received. */
  echoed: number;
  /** A newer echo whose heartbeat is ahead of a gap: usable once the gap closes. */
  pending: { readonly round: number; readonly seq: number } | undefined;
}

/** The members whose echoes prove freshness (from `_sessions.ts`). */
export interface Membership {
  /** Every other member, with its incarnation. */
  members(): Iterable<readonly [NodeId, { readonly inc: number }]>;
  /** The incarnation of member `id`, or `undefined` if it is not a member. */
  memberInc(id: NodeId): number | undefined;
}

/** What peer tracking needs of the eventual protocol (`_eventual.ts`). */
export interface EventualFlush {
  /** Broadcasts of unknown keys may have been missed: drop every eventual entry. */
  flush(reason: FlushReason): void;
}

/** Settings of {@linkcode Peers}, validated by `NodeCore`. */
export interface PeerSettings {
  readonly heartbeatIntervalMs: number;
  readonly gapTimeoutMs: number;
  /** Most peers tracked (`peersMax`). */
  readonly peersMax: number;
  /** Most echoes per heartbeat (`echoesMax`; `_echo_budget.ts`). */
  readonly echoesMax: number;
  readonly flusher: EventualFlush;
}

/** Heartbeats and gap detection of one node. */
export class Peers {
  readonly #k: NodeKernel;
  readonly #settings: PeerSettings;
  readonly #peers = new Map<NodeId, Peer>();
  #heartbeatTimer = 0;
  /** This node's heartbeat rounds: the local time each was sent, by round modulo the ring. */
  readonly #roundSentMs = new Float64Array(ROUNDS_KEPT);
  #round = 0;
  #membership: Membership | undefined;
  /** Local time before which a first-word flush is coalesced into the pending one. */
  #firstWordFlushAllowedMs = -Infinity;
  /** Whether a coalesced first-word flush waits for its timer (no freshness proof meanwhile). */
  #flushPending = false;
  readonly #budget: EchoBudget;

  /** Makes the peer tracking of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel, settings: PeerSettings) {
    this.#k = kernel;
    this.#settings = settings;
    this.#budget = new EchoBudget(Math.min(settings.echoesMax, ECHOES_MAX));
  }

  /**
   * Makes freshness proofs count over `membership` (the session's members). Without one,
   * no proof is ever made and eventual entries keep to the age bound.
   */
  useMembership(membership: Membership): void {
    this.#membership = membership;
  }

  /**
   * Recomputes the kernel's `freshAsOfMs`: the send time of the latest round of ours
   * that every member has echoed back with no broadcast of its own missing before it.
   * Each such member sent that echo after receiving the round, so every invalidation it
   * sent before the round was sent has reached this node (its sequence numbers are
   * contiguous up to the echoing heartbeat). `-Infinity` when some member has echoed
   * nothing usable (or there is no membership).
   */
  refreshProof(): void {
    const k = this.#k;
    const membership = this.#membership;
    let asOf = membership === undefined || this.#flushPending ? -Infinity : Infinity;
    if (membership !== undefined && !this.#flushPending) {
      for (const [id, member] of membership.members()) {
        const peer = this.#peers.get(id);
        if (peer === undefined || peer.inc !== member.inc || peer.echoed === 0) {
          asOf = -Infinity;
          break;
        }
        if (this.#round - peer.echoed >= ROUNDS_KEPT) {
          asOf = -Infinity;
          break;
        }
        asOf = Math.min(asOf, this.#roundSentMs[peer.echoed % ROUNDS_KEPT]!);
      }
    }
    // With no other member, nobody else can have written: Infinity (the session still
    // has to live for the proof to count; see NodeCore.hit).
    k.freshAsOfMs = asOf;
  }

  /**
   * A peer's heartbeat: its sequence (gaps), its round, and its echo of ours. Under
   * sessions, a heartbeat from a node that is not a member at that incarnation is ignored
   * (counted in `nonMemberHeartbeats`): anyone can send one, and it would flush. A real
   * node's is heard again once this node reads it in the membership, as a first word.
   */
  heartbeat(from: NodeId, inc: number, seq: number, round: number, echo: readonly Echo[]): void {
    const k = this.#k;
    const membership = this.#membership;
    if (
      membership !== undefined && membership.memberInc(from) !== inc &&
      !(from === k.nodeId && inc === k.incarnation)
    ) {
      k.stats.nonMemberHeartbeats++;
      return;
    }
    this.track(from, inc, seq, true);
    const peer = this.#peers.get(from);
    if (peer === undefined || peer.inc !== inc) return;
    if (round > peer.round) peer.round = round;
    if (k.canary.trustHeartbeatArrival) peer.echoed = Math.max(peer.echoed, this.#round);
    for (const [id, echoInc, echoRound] of echo) {
      if (id !== k.nodeId || echoInc !== k.incarnation) continue;
      if (echoRound > this.#round) break; // a round we never sent: ignore the lie
      if (seq <= peer.contiguous) {
        if (echoRound > peer.echoed) peer.echoed = echoRound;
      } else if (peer.pending === undefined || echoRound > peer.pending.round) {
        peer.pending = { round: echoRound, seq };
      }
      break;
    }
    this.refreshProof();
  }

  /** Starts the heartbeat, unless it runs already. */
  startHeartbeat(): void {
    if (this.#heartbeatTimer === 0) this.#scheduleHeartbeat();
  }

  /** Tracks a peer's broadcast sequence; a gap that stays open past the timeout flushes. */
  track(from: NodeId, inc: number, seq: number, heartbeat: boolean): void {
    const k = this.#k;
    if (from === k.nodeId && inc === k.incarnation) return;
    let peer = this.#peers.get(from);
    if (peer === undefined || inc !== peer.inc) {
      if (peer === undefined && this.#peers.size >= this.#settings.peersMax) {
        this.#forgetOldestPeer();
      }
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
        lastHeardMs: k.now,
        round: 0,
        echoed: 0,
        pending: undefined,
      };
      // A known peer under a new incarnation restarted: what its old incarnation sent last
      // may have been lost, and nothing will ever reveal that gap (the new one counts from
      // 1). Flush then too (the simulator's EP check found it).
      const restarted = this.#peers.has(from);
      this.#peers.set(from, peer);
      if (((heartbeat ? seq : seq - 1) > 0 || restarted) && !k.canary.ignoreGaps) {
        k.stats.gapsDetected++;
        if (k.events !== undefined) k.note({ type: "gap", peer: from, reason: "peer-joined" });
        this.#firstWordFlush();
      }
      return;
    }
    peer.lastHeardMs = k.now;
    if (seq > peer.highest) peer.highest = seq;
    if (!heartbeat && seq > peer.contiguous) {
      if (seq === peer.contiguous + 1) {
        peer.contiguous = seq;
        while (peer.ahead.delete(peer.contiguous + 1)) peer.contiguous++;
      } else {
        peer.ahead.add(seq);
      }
    }
    if (this.#promote(peer)) this.refreshProof();
    if (peer.contiguous >= peer.highest) {
      peer.gapSinceMs = undefined;
      return;
    }
    if (peer.ahead.size > AHEAD_MAX) {
      this.#healGap(peer);
      return;
    }
    if (peer.gapSinceMs === undefined) this.#openGap(peer, from);
  }

  /**
   * A first word from a peer incarnation flushes, at most once per heartbeat interval: ids
   * and incarnations cost a forger nothing, so a limit per peer would not bound it. A flush
   * asked for within the interval is coalesced into one at its end, and no freshness proof
   * counts until it is done (entries keep to their bound meanwhile).
   */
  #firstWordFlush(): void {
    const k = this.#k;
    if (this.#flushPending) {
      k.stats.flushesCoalesced++;
      return;
    }
    const intervalMs = this.#settings.heartbeatIntervalMs;
    if (k.now >= this.#firstWordFlushAllowedMs) {
      this.#firstWordFlushAllowedMs = k.now + intervalMs;
      this.#settings.flusher.flush("peer-joined");
      return;
    }
    k.stats.flushesCoalesced++;
    this.#flushPending = true;
    this.refreshProof();
    k.arm(this.#firstWordFlushAllowedMs, () => {
      this.#flushPending = false;
      this.#firstWordFlushAllowedMs = k.now + intervalMs;
      this.#settings.flusher.flush("peer-joined");
      this.refreshProof();
    });
  }

  /** A gap opened: heal it by a flush unless it closes within `gapTimeoutMs`. */
  #openGap(peer: Peer, from: NodeId): void {
    const k = this.#k;
    const gapTimeoutMs = this.#settings.gapTimeoutMs;
    peer.gapSinceMs = k.now;
    k.stats.gapsDetected++;
    if (k.events !== undefined) k.note({ type: "gap", peer: from, reason: "sequence" });
    k.arm(k.now + gapTimeoutMs, () => {
      if (peer.gapSinceMs !== undefined && k.now - peer.gapSinceMs >= gapTimeoutMs) {
        this.#healGap(peer);
      }
    });
  }

  /** Missed invalidations of unknown keys: drop every eventual entry, then go on. */
  #healGap(peer: Peer): void {
    if (!this.#k.canary.ignoreGaps) this.#settings.flusher.flush("gap");
    peer.contiguous = peer.highest;
    peer.ahead.clear();
    peer.gapSinceMs = undefined;
    this.#promote(peer);
    this.refreshProof();
  }

  /**
   * An echo that waited on a gap becomes usable once every broadcast before it is in;
   * returns whether the peer's echoed round rose (the proof must then be recomputed).
   */
  #promote(peer: Peer): boolean {
    const pending = peer.pending;
    if (pending === undefined || pending.seq > peer.contiguous) return false;
    peer.pending = undefined;
    if (pending.round <= peer.echoed) return false;
    peer.echoed = pending.round;
    return true;
  }

  #scheduleHeartbeat(): void {
    const k = this.#k;
    this.#heartbeatTimer = k.arm(k.now + this.#settings.heartbeatIntervalMs, () => {
      const round = ++this.#round;
      this.#roundSentMs[round % ROUNDS_KEPT] = k.now;
      k.broadcast({
        t: "hb",
        from: k.nodeId,
        inc: k.incarnation,
        seq: k.seq,
        round,
        // Only session members use echoes (for their freshness proofs): skip the bytes else.
        echo: this.#membership === undefined ? [] : this.#echoes(),
      });
      this.#forgetSilentPeers();
      this.#scheduleHeartbeat();
    });
  }

  /**
   * The latest round heard from peers heard lately, for the peers' freshness proofs: all
   * of them, or the echo budget's turn of them in a large cluster.
   */
  #echoes(): Echo[] {
    const echoes: Echo[] = [];
    const recentMs = this.#settings.heartbeatIntervalMs * ECHO_SILENCE_INTERVALS;
    for (const [id, peer] of this.#peers) {
      if (peer.round === 0 || this.#k.now - peer.lastHeardMs > recentMs) continue;
      echoes.push([id, peer.inc, peer.round]);
    }
    return this.#budget.take(echoes);
  }

  #forgetSilentPeers(): void {
    for (const [id, peer] of this.#peers) {
      if (this.#k.now - peer.lastHeardMs > PEER_FORGET_MS) this.#peers.delete(id);
    }
  }

  #forgetOldestPeer(): void {
    let oldest: [NodeId, Peer] | undefined;
    for (const entry of this.#peers) {
      if (oldest === undefined || entry[1].lastHeardMs < oldest[1].lastHeardMs) oldest = entry;
    }
    if (oldest !== undefined) this.#peers.delete(oldest[0]);
  }
}
