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

import type { NodeId } from "./messages.ts";
import type { NodeKernel } from "./_kernel.ts";

/** Most sequence numbers held ahead of a gap before the gap is healed by a flush. */
const AHEAD_MAX = 256;
/** A peer not heard for this long is forgotten. */
const PEER_FORGET_MS = 600_000;

/** What this node has heard of one peer incarnation's broadcasts. */
interface Peer {
  inc: number;
  contiguous: number;
  highest: number;
  readonly ahead: Set<number>;
  gapSinceMs: number | undefined;
  lastHeardMs: number;
}

/** What peer tracking needs of the eventual protocol (`_eventual.ts`). */
export interface EventualFlush {
  /** Broadcasts of unknown keys may have been missed: drop every eventual entry. */
  flush(): void;
}

/** Settings of {@linkcode Peers}, validated by `NodeCore`. */
export interface PeerSettings {
  readonly heartbeatIntervalMs: number;
  readonly gapTimeoutMs: number;
  /** Most peers tracked (`peersMax`). */
  readonly peersMax: number;
  readonly flusher: EventualFlush;
}

/** Heartbeats and gap detection of one node. */
export class Peers {
  readonly #k: NodeKernel;
  readonly #settings: PeerSettings;
  readonly #peers = new Map<NodeId, Peer>();
  #heartbeatTimer = 0;

  /** Makes the peer tracking of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel, settings: PeerSettings) {
    this.#k = kernel;
    this.#settings = settings;
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
      };
      this.#peers.set(from, peer);
      if ((heartbeat ? seq : seq - 1) > 0 && !k.canary.ignoreGaps) {
        k.stats.gapsDetected++;
        this.#settings.flusher.flush();
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
    if (peer.contiguous >= peer.highest) {
      peer.gapSinceMs = undefined;
      return;
    }
    if (peer.ahead.size > AHEAD_MAX) {
      this.#healGap(peer);
      return;
    }
    if (peer.gapSinceMs === undefined) this.#openGap(peer);
  }

  /** A gap opened: heal it by a flush unless it closes within `gapTimeoutMs`. */
  #openGap(peer: Peer): void {
    const k = this.#k;
    const gapTimeoutMs = this.#settings.gapTimeoutMs;
    peer.gapSinceMs = k.now;
    k.stats.gapsDetected++;
    k.arm(k.now + gapTimeoutMs, () => {
      if (peer.gapSinceMs !== undefined && k.now - peer.gapSinceMs >= gapTimeoutMs) {
        this.#healGap(peer);
      }
    });
  }

  /** Missed invalidations of unknown keys: drop every eventual entry, then go on. */
  #healGap(peer: Peer): void {
    if (!this.#k.canary.ignoreGaps) this.#settings.flusher.flush();
    peer.contiguous = peer.highest;
    peer.ahead.clear();
    peer.gapSinceMs = undefined;
  }

  #scheduleHeartbeat(): void {
    const k = this.#k;
    this.#heartbeatTimer = k.arm(k.now + this.#settings.heartbeatIntervalMs, () => {
      k.broadcast({ t: "hb", from: k.nodeId, inc: k.incarnation, seq: k.seq });
      this.#forgetSilentPeers();
      this.#scheduleHeartbeat();
    });
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
