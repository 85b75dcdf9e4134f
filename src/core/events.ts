/**
 * What a node's protocols did that a driver may want to tell its operator about: a gap in
 * a peer's invalidations, a flush, a lost session, a refresh-ahead, a loader past its hard
 * timeout. The core records them only while its driver observes it
 * ({@linkcode NodeCore.observe}); the driver takes them after every input with
 * {@linkcode NodeCore.takeEvents}, as it takes effects.
 *
 * Design: a list the core appends to, drained by the driver, like the effects — the core
 * stays pure (no callback runs inside a transition, so a listener can neither throw into a
 * protocol nor re-enter it), and a node nobody observes pays one `undefined` check at each
 * of these rare points, nothing on the read path. Rejected: making them effects (every
 * driver, the simulator's included, would have to handle and ignore them) and a callback
 * into the driver (a listener's exception or re-entrant call inside a transition).
 *
 * @module
 */

/** Why a node dropped every eventual-distributed entry. */
export type FlushReason =
  /** A gap in a peer's sequence numbers stayed open past `gapTimeoutMs`, or overflowed. */
  | "gap"
  /** A peer was first heard past its first broadcast, or under a new incarnation. */
  | "peer-joined"
  /** Members left the session record: what they wrote last may be lost. */
  | "members-removed"
  /** This node's own session ended. */
  | "session-lost";

/** A gap opened in a peer's broadcasts: some of its invalidations may be lost. */
export interface GapEvent {
  /** The event's tag. */
  readonly type: "gap";
  /** The id of the peer whose broadcasts have a gap. */
  readonly peer: string;
  /** `sequence`: a number was skipped; `peer-joined`: first heard past its start. */
  readonly reason: "sequence" | "peer-joined";
}

/** Every eventual-distributed entry was dropped. */
export interface FlushEvent {
  /** The event's tag. */
  readonly type: "flush";
  /** Why the entries were dropped. */
  readonly reason: FlushReason;
  /** How many L1 entries the flush dropped. */
  readonly entries: number;
}

/** This node found its session gone: its distributed entries were dropped. */
export interface SessionLostEvent {
  /** The event's tag. */
  readonly type: "session-lost";
}

/** Refresh-ahead started a background fill of `key`. */
export interface RefreshEvent {
  /** The event's tag. */
  readonly type: "refresh";
  /** The key refreshed. */
  readonly key: string;
}

/** A load of `key` outlived its hard timeout and was aborted. */
export interface LoadTimeoutEvent {
  /** The event's tag. */
  readonly type: "load-timeout";
  /** The key loaded. */
  readonly key: string;
  /** The hard timeout it outlived, ms. */
  readonly hardTimeoutMs: number;
}

/**
 * A read's outcome: `hit` (answered from L1), `miss` (L1 could not answer: the store or
 * the loader was asked) or `stale` (a miss answered by fail-safe with a value past its
 * freshness). `hit` and `miss` are recorded only while read events are observed
 * (`NodeCore.observe("all")`); `stale`, rare, whenever the node is observed.
 */
export interface ReadEvent {
  /** The event's tag: the read's outcome. */
  readonly type: "hit" | "miss" | "stale";
  /** The key read. */
  readonly key: string;
}

/** A validator event (`alert` and `heal` modes), recorded while the node is observed. */
export interface ValidatorEvent {
  /** The event's tag. */
  readonly type: "validator";
  /** What was found: an outlasted difference, or L1 newer than the store. */
  readonly verdict: "inconsistent" | "deleted-in-store" | "newer-than-store";
  /** The key checked. */
  readonly key: string;
  /** The version L1 served. */
  readonly cachedVersion: number;
  /** The version the store answered with. */
  readonly storeVersion: number;
  /** The bound the difference outlasted, ms (0 for newer-than-store). */
  readonly boundMs: number;
  /** Whether a versioned fill was started to repair it. */
  readonly healing: boolean;
}

/** Every event a {@linkcode NodeCore} records, tagged by `type`. */
export type NodeEvent =
  | ReadEvent
  | GapEvent
  | FlushEvent
  | SessionLostEvent
  | RefreshEvent
  | LoadTimeoutEvent
  | ValidatorEvent;

/**
 * The most events a node holds between two `takeEvents`: a driver drains them after every
 * input, so only one that never does reaches it; beyond it, events are counted and lost.
 */
export const NODE_EVENTS_MAX = 1024;
