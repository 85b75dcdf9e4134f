/**
 * The messages Warp nodes exchange over the bus, and their validation.
 *
 * Every message names its sender (`from`, a node id) and the sender's incarnation
 * (`inc`, new at every start, so a restarted node is a new peer). Broadcast messages
 * (`inv`, `drop`, `clr`, `hb`) carry a per-incarnation sequence number `seq`, starting at 1 and
 * growing by one per broadcast, so a receiver detects lost messages as gaps.
 *
 * @module
 */

import { isLeaseId } from "./leases.ts";
import { namespaceProblem } from "./_namespaces.ts";

/** A node's id: 1 to 64 characters of `[A-Za-z0-9_-]`. */
export type NodeId = string;

/** An eventual-distributed write or delete of `key` reached the store at `version`. */
export interface InvalidateMessage {
  /** The message type tag. */
  readonly t: "inv";
  /** The sender's node id. */
  readonly from: NodeId;
  /** The sender's incarnation: it grows at each restart, so a message from an earlier life is told apart. */
  readonly inc: number;
  /** The sender's broadcast sequence number (one per broadcast), by which receivers detect gaps. */
  readonly seq: number;
  /** The key written or deleted. */
  readonly key: string;
  /** The store version the write or delete reached. */
  readonly version: number;
}

/** Drop `key` from every L1 whatever its version (the user's `invalidate`). */
export interface DropMessage {
  /** The message type tag. */
  readonly t: "drop";
  /** The sender's node id. */
  readonly from: NodeId;
  /** The sender's incarnation: it grows at each restart, so a message from an earlier life is told apart. */
  readonly inc: number;
  /** The sender's broadcast sequence number (one per broadcast), by which receivers detect gaps. */
  readonly seq: number;
  /** The key to drop. */
  readonly key: string;
}

/**
 * Remove every key of namespace `ns` (those starting with `ns:`) from every L1: a
 * namespace clear, numbered in the sender's sequence like `drop`. `epoch` is how many
 * clears of `ns` the sender had applied with this one: a version of the namespace, never a
 * time.
 */
export interface ClearMessage {
  /** The message type: a namespace clear. */
  readonly t: "clr";
  /** The sender's node id. */
  readonly from: NodeId;
  /** The sender's incarnation. */
  readonly inc: number;
  /** The sender's broadcast sequence number (a lost clear is a gap). */
  readonly seq: number;
  /** The namespace cleared (keys starting with `ns:`). */
  readonly ns: string;
  /** The namespace's epoch on the sender after the clear. */
  readonly epoch: number;
}

/**
 * One peer's round, echoed in a heartbeat: `[id, inc, round]` says the sender had heard
 * round `round` of node `id` (incarnation `inc`) before it sent this heartbeat.
 */
export type Echo = readonly [id: NodeId, inc: number, round: number];

/** The most echoes one heartbeat carries (and so the most members a session cluster has). */
export const ECHOES_MAX = 256;

/**
 * Liveness, the sender's last used broadcast sequence number, and its freshness round.
 * `round` numbers the sender's heartbeats; `echo` holds, for each peer the sender hears,
 * the latest round of that peer it had heard. A node that finds its own round `r` echoed
 * by a peer, with every broadcast of that peer up to `seq` received, knows it has every
 * invalidation the peer sent before it sent round `r` (see `_peers.ts`).
 */
export interface HeartbeatMessage {
  /** The message type tag. */
  readonly t: "hb";
  /** The sender's node id. */
  readonly from: NodeId;
  /** The sender's incarnation: it grows at each restart, so a message from an earlier life is told apart. */
  readonly inc: number;
  /** The sender's broadcast sequence number (one per broadcast), by which receivers detect gaps. */
  readonly seq: number;
  /** The number of this heartbeat among the sender's heartbeats (its freshness round). */
  readonly round: number;
  /** For each peer the sender hears, the latest round of that peer it had heard. */
  readonly echo: readonly Echo[];
}

/** A strong writer asks a holder of `key` to stop serving it and answer with `ack`. */
export interface RevokeMessage {
  /** The message type tag. */
  readonly t: "revoke";
  /** The sender's node id. */
  readonly from: NodeId;
  /** The sender's incarnation: it grows at each restart, so a message from an earlier life is told apart. */
  readonly inc: number;
  /** The writer's id for this revocation, echoed in the ack. */
  readonly id: number;
  /** The key the holder must stop serving. */
  readonly key: string;
  /**
   * The revision of the writer's claim on the key's holder record: the holder trusts no
   * read of that record older than it (it may predate the claim).
   */
  readonly rev: number;
  /**
   * A number the writer drew for this holder and this write (from the runtime's
   * randomness), echoed in the ack: an ack that does not carry it answers no revoke.
   */
  readonly nonce: number;
}

/**
 * A holder confirms it no longer serves `key` and will not cache it until told. It is
 * bound to the exact revoke it answers: the writer's id for the revocation (`id`), the
 * writer's incarnation (`to`), the key, and the revoke's `nonce`.
 */
export interface AckMessage {
  /** The message type tag. */
  readonly t: "ack";
  /** The sender's node id. */
  readonly from: NodeId;
  /** The sender's incarnation: it grows at each restart, so a message from an earlier life is told apart. */
  readonly inc: number;
  /** The revocation's id, echoed from the `revoke`. */
  readonly id: number;
  /** The key the holder stopped serving. */
  readonly key: string;
  /** The incarnation of the writer whose revoke this answers. */
  readonly to: number;
  /** The revoke's nonce. */
  readonly nonce: number;
}

/**
 * Lease `lease` was revoked in the coordinator: stop serving values attached to it. Best
 * effort and only a speed-up: the revocation is safe without it (see `leases.ts`).
 */
export interface LeaseRevokedMessage {
  /** The message type tag. */
  readonly t: "lrev";
  /** The sender's node id. */
  readonly from: NodeId;
  /** The sender's incarnation: it grows at each restart, so a message from an earlier life is told apart. */
  readonly inc: number;
  /** The id of the revoked lease. */
  readonly lease: string;
}

/** Every message of the protocol, tagged by `t`. */
export type Message =
  | InvalidateMessage
  | DropMessage
  | ClearMessage
  | HeartbeatMessage
  | RevokeMessage
  | AckMessage
  | LeaseRevokedMessage;

/**
 * The largest number a message may carry besides a nonce: 2^52 − 1, half of
 * `Number.MAX_SAFE_INTEGER`. Nothing real comes near it — versions and coordinator
 * revisions grow by one per write (142 years at a million writes a second), sequence
 * numbers and rounds by one per message, incarnations are microsecond timestamps (below
 * it until 2112) — so a message with a larger one is a forgery, dropped and counted
 * (`absurdMessages`) before it can pin a key's version floor or a peer's sequence.
 */
export const MESSAGE_NUMBER_MAX = 2 ** 52 - 1;

/**
 * Whether `message` carries a number above {@linkcode MESSAGE_NUMBER_MAX} (nonces aside).
 *
 * @example
 * ```ts
 * import { isAbsurd } from "./messages.ts";
 * const inv = { t: "inv", from: "a", inc: 1, seq: 1, key: "k", version: 2 ** 53 - 1 } as const;
 * console.log(isAbsurd(inv), isAbsurd({ ...inv, version: 7 })); // true false
 * ```
 */
export function isAbsurd(message: Message): boolean {
  if (message.inc > MESSAGE_NUMBER_MAX) return true;
  switch (message.t) {
    case "inv":
      return message.seq > MESSAGE_NUMBER_MAX || message.version > MESSAGE_NUMBER_MAX;
    case "drop":
      return message.seq > MESSAGE_NUMBER_MAX;
    case "hb":
      if (message.seq > MESSAGE_NUMBER_MAX || message.round > MESSAGE_NUMBER_MAX) return true;
      return message.echo.some(([, inc, round]) =>
        inc > MESSAGE_NUMBER_MAX || round > MESSAGE_NUMBER_MAX
      );
    case "revoke":
      return message.id > MESSAGE_NUMBER_MAX || message.rev > MESSAGE_NUMBER_MAX;
    case "ack":
      return message.id > MESSAGE_NUMBER_MAX || message.to > MESSAGE_NUMBER_MAX;
    case "clr":
      return message.seq > MESSAGE_NUMBER_MAX || message.epoch > MESSAGE_NUMBER_MAX;
    case "lrev":
      return false;
  }
}

/** The longest key Warp accepts, in UTF-16 code units. */
export const KEY_LENGTH_MAX = 1024;

const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether `value` is a valid node id. */
export function isNodeId(value: unknown): value is NodeId {
  return typeof value === "string" && NODE_ID_PATTERN.test(value);
}

/**
 * Whether `value` is a valid key: a string of 1 to {@linkcode KEY_LENGTH_MAX} UTF-16 code
 * units, well-formed Unicode (no lone surrogate: UTF-8, the wire format, PostgreSQL text
 * and NATS KV keys cannot carry one) and without NUL (PostgreSQL text cannot hold it).
 *
 * @example
 * ```ts
 * import { isKey } from "./messages.ts";
 * console.log(isKey("user:1"), isKey(""), isKey("a\ud800"), isKey("a\u0000")); // true false false false
 * ```
 */
export function isKey(value: unknown): value is string {
  return keyProblem(value) === undefined;
}

/**
 * Why `value` is not a valid key ({@linkcode isKey}), in a few words for an error
 * message; `undefined` when it is one. Linear in the key's length.
 *
 * @example
 * ```ts
 * import { keyProblem } from "./messages.ts";
 * console.log(keyProblem("a\ud800")); // "it has a lone surrogate"
 * console.log(keyProblem("user:1")); // undefined
 * ```
 */
export function keyProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return "expected a string";
  if (value.length === 0) return "it is empty";
  if (value.length > KEY_LENGTH_MAX) return `it is longer than ${KEY_LENGTH_MAX} characters`;
  if (!value.isWellFormed()) return "it has a lone surrogate";
  if (value.includes("\u0000")) return "it has a NUL character";
  return undefined;
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function isEchoList(value: unknown): value is readonly Echo[] {
  if (!Array.isArray(value) || value.length > ECHOES_MAX) return false;
  for (const echo of value as unknown[]) {
    if (!Array.isArray(echo) || echo.length !== 3) return false;
    if (!isNodeId(echo[0]) || !isCount(echo[1]) || !isCount(echo[2])) return false;
  }
  return true;
}

/**
 * Checks that `value` is a well-formed {@linkcode Message}; returns it, or `undefined` when
 * it is not. Never throws: bus input is untrusted.
 *
 * @example
 * ```ts
 * import { validateMessage } from "./messages.ts";
 * const ok = validateMessage({ t: "hb", from: "a", inc: 1, seq: 0, round: 1, echo: [] });
 * const bad = validateMessage({ t: "hb", from: "a b", inc: 1, seq: -1, round: 1, echo: [] });
 * console.log(ok !== undefined, bad === undefined); // true true
 * ```
 */
export function validateMessage(value: unknown): Message | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const m = value as Record<string, unknown>;
  if (!isNodeId(m.from) || !isCount(m.inc)) return undefined;
  switch (m.t) {
    case "inv":
      return isCount(m.seq) && m.seq > 0 && isKey(m.key) && isCount(m.version) && m.version > 0
        ? m as unknown as InvalidateMessage
        : undefined;
    case "drop":
      return isCount(m.seq) && m.seq > 0 && isKey(m.key) ? m as unknown as DropMessage : undefined;
    case "clr":
      return isCount(m.seq) && m.seq > 0 && namespaceProblem(m.ns) === undefined &&
          isCount(m.epoch) && m.epoch > 0
        ? m as unknown as ClearMessage
        : undefined;
    case "hb":
      return isCount(m.seq) && isCount(m.round) && isEchoList(m.echo)
        ? m as unknown as HeartbeatMessage
        : undefined;
    case "revoke":
      return isCount(m.id) && isKey(m.key) && isCount(m.rev) && isCount(m.nonce)
        ? m as unknown as RevokeMessage
        : undefined;
    case "ack":
      return isCount(m.id) && isKey(m.key) && isCount(m.to) && isCount(m.nonce)
        ? m as unknown as AckMessage
        : undefined;
    case "lrev":
      return isLeaseId(m.lease) ? m as unknown as LeaseRevokedMessage : undefined;
    default:
      return undefined;
  }
}
