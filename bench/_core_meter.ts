/**
 * Counts what the {@linkcode NodeCore}s of a simulated run ask their drivers for, inside a
 * window of the nodes' clocks: store reads by key, coordinator reads, writes and lost
 * compare-and-sets by record kind, bus publishes and deliveries with their encoded bytes,
 * and the size of heartbeats and of the sessions record.
 *
 * The simulator sums only `coordinatorCalls` (reads and writes together) over the whole
 * run, tail included, so the meter wraps `NodeCore.prototype.takeEffects` (every effect
 * leaves a core there) and the inputs (each carries the node's `nowMs` last), in this
 * process only. It observes and never changes an argument or a result, so a metered run
 * replays the same events. In a run with faults `none` the clocks neither drift nor start
 * offset, so a node's `nowMs` is true time and the window is the same on every node.
 *
 * Rejected: driving the cores with a copy of the simulator's loop (a second simulator to
 * keep in step), and adding counters to `src/` or `sim/` (outside this task).
 *
 * @module
 */

import { NodeCore } from "../src/core/node.ts";
import type { CoordRecordKind, CoordWriteResult, Effect } from "../src/core/effects.ts";
import type { Echo, Message } from "../src/core/messages.ts";
import type { SessionsRecord } from "../src/core/_sessions.ts";
import { encodeMessage } from "../src/wire.ts";

/** What the cores emitted inside the window. */
export interface Tally {
  /** Store reads by key prefix (the text before the first `:`). */
  readonly storeReads: Record<string, number>;
  readonly coordReads: Record<CoordRecordKind, number>;
  readonly coordWrites: Record<CoordRecordKind, number>;
  /** Compare-and-sets answered with a conflict (the revision moved). */
  readonly coordConflicts: Record<CoordRecordKind, number>;
  /** Bus publishes: a broadcast or a direct send is one. */
  publishes: number;
  /** Copies delivered: a broadcast reaches every node, its sender included. */
  deliveries: number;
  /** Encoded bytes of every delivered copy (with `encode`). */
  bytesDelivered: number;
  /** The same copies with production-shaped ids, incarnations and counters. */
  bytesDeliveredProduction: number;
  heartbeats: number;
  /** Encoded bytes of the heartbeats sent, as the simulator's nodes sent them. */
  heartbeatBytes: number;
  /** The same heartbeats with production-shaped ids, incarnations and counters. */
  heartbeatBytesProduction: number;
  /** JSON bytes of the sessions records written (what `Warp` stores), as sent. */
  sessionsRecordBytes: number;
  /** The same records with production-shaped ids, incarnations and revisions. */
  sessionsRecordBytesProduction: number;
}

/** Options of {@linkcode meter}. */
export interface MeterOptions {
  /** Start of the window on the nodes' clocks, ms (inclusive). */
  readonly fromMs: number;
  /** End of the window, ms (exclusive). */
  readonly toMs: number;
  /** Nodes in the cluster: how many copies a broadcast makes. */
  readonly nodes: number;
  /** Encode every message (bytes); off, only publishes and deliveries are counted. */
  readonly encode: boolean;
}

/** `Warp` draws 16 hex digits for a node id. */
const PRODUCTION_ID_CHARS = 16;
/** `Warp`'s incarnation is `Date.now() × 1000` plus a random part (here: mid-2025). */
const PRODUCTION_INCARNATION = 1_750_000_000_000_000;
/** Heartbeat counters and record revisions after about three days at four heartbeats a second. */
const PRODUCTION_COUNTER = 1_000_000;
const INPUTS = [
  "tick",
  "get",
  "set",
  "delete",
  "invalidate",
  "grantLease",
  "keepAliveLease",
  "revokeLease",
  "close",
  "onStoreRead",
  "onStoreWrite",
  "onCoordRead",
  "onCoordWrite",
  "onMessage",
] as const;

let active: { readonly options: MeterOptions; readonly tally: Tally } | undefined;
let nowMs = 0;
/** The record kind of each coordinator write in flight, per core, by I/O id. */
const writesInFlight = new WeakMap<NodeCore, Map<number, CoordRecordKind>>();
let installed = false;

/**
 * Runs `body` (one simulated run) with every core in this process metered, and returns
 * the tally beside `body`'s result. Not reentrant.
 *
 * @example
 * ```ts
 * import { meter } from "./_core_meter.ts";
 * import { SimCluster } from "../sim/cluster.ts";
 * const { tally } = meter({ fromMs: 0, toMs: 300, nodes: 3, encode: true }, () =>
 *   new SimCluster({ seed: 7, nodes: 3, faults: "none", safetyMs: 300, livenessMs: 100 }).run()
 * );
 * console.log(tally.heartbeats > 0); // true
 * ```
 */
export function meter<T>(options: MeterOptions, body: () => T): { result: T; tally: Tally } {
  if (active !== undefined) throw new Error("A meter is already running");
  if (!(options.fromMs < options.toMs)) {
    throw new RangeError(`Empty meter window: ${options.fromMs}..${options.toMs}`);
  }
  install();
  const kinds = () => ({ holder: 0, lease: 0, sessions: 0 });
  const tally: Tally = {
    storeReads: {},
    coordReads: kinds(),
    coordWrites: kinds(),
    coordConflicts: kinds(),
    publishes: 0,
    deliveries: 0,
    bytesDelivered: 0,
    bytesDeliveredProduction: 0,
    heartbeats: 0,
    heartbeatBytes: 0,
    heartbeatBytesProduction: 0,
    sessionsRecordBytes: 0,
    sessionsRecordBytesProduction: 0,
  };
  active = { options, tally };
  try {
    return { result: body(), tally };
  } finally {
    active = undefined;
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  const proto = NodeCore.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of INPUTS) {
    const input = proto[name]!;
    proto[name] = function (this: NodeCore, ...args: unknown[]): unknown {
      nowMs = args[args.length - 1] as number;
      if (name === "onCoordWrite") noteWriteAnswer(this, args[0] as number, args[1]);
      return input.apply(this, args);
    };
  }
  const takeEffects = proto.takeEffects!;
  proto.takeEffects = function (this: NodeCore): unknown {
    const effects = takeEffects.call(this) as Effect[];
    if (active !== undefined) count(this, effects);
    return effects;
  };
}

function inWindow(): boolean {
  return active !== undefined && nowMs >= active.options.fromMs && nowMs < active.options.toMs;
}

function noteWriteAnswer(core: NodeCore, io: number, result: unknown): void {
  const kind = writesInFlight.get(core)?.get(io);
  if (kind === undefined) return;
  writesInFlight.get(core)!.delete(io);
  const answer = result as CoordWriteResult;
  if (inWindow() && !answer.ok && answer.conflict === true) active!.tally.coordConflicts[kind]++;
}

function count(core: NodeCore, effects: readonly Effect[]): void {
  if (!inWindow()) return;
  const { options, tally } = active!;
  for (const effect of effects) {
    switch (effect.type) {
      case "store-get": {
        const prefix = effect.key.split(":")[0]!;
        tally.storeReads[prefix] = (tally.storeReads[prefix] ?? 0) + 1;
        break;
      }
      case "coord-get":
        tally.coordReads[effect.kind]++;
        break;
      case "coord-put": {
        const kind: CoordRecordKind = "members" in effect.record
          ? "sessions"
          : "lease" in effect.record
          ? "lease"
          : "holder";
        tally.coordWrites[kind]++;
        let inFlight = writesInFlight.get(core);
        if (inFlight === undefined) writesInFlight.set(core, inFlight = new Map());
        inFlight.set(effect.io, kind);
        if (kind === "sessions" && options.encode) {
          const record = effect.record as SessionsRecord;
          tally.sessionsRecordBytes += jsonBytes(record);
          tally.sessionsRecordBytesProduction += jsonBytes(productionRecord(record));
        }
        break;
      }
      case "broadcast":
        countMessage(tally, options, effect.message, options.nodes);
        break;
      case "send":
        countMessage(tally, options, effect.message, 1);
        break;
    }
  }
}

function countMessage(tally: Tally, options: MeterOptions, message: Message, copies: number) {
  tally.publishes++;
  tally.deliveries += copies;
  if (message.t === "hb") tally.heartbeats++;
  if (!options.encode) return;
  const bytes = encodeMessage(message).length;
  const production = encodeMessage(productionMessage(message)).length;
  tally.bytesDelivered += bytes * copies;
  tally.bytesDeliveredProduction += production * copies;
  if (message.t !== "hb") return;
  tally.heartbeatBytes += bytes;
  tally.heartbeatBytesProduction += production;
}

function productionId(id: string): string {
  return id.padStart(PRODUCTION_ID_CHARS, "0");
}

/** `message` as a node up for days, with `Warp`'s ids and incarnations, would send it. */
function productionMessage(message: Message): Message {
  const from = productionId(message.from), inc = PRODUCTION_INCARNATION + message.inc;
  switch (message.t) {
    case "hb":
      return {
        ...message,
        from,
        inc,
        seq: PRODUCTION_COUNTER + message.seq,
        round: PRODUCTION_COUNTER + message.round,
        echo: message.echo.map(([id, echoInc, round]): Echo => [
          productionId(id),
          PRODUCTION_INCARNATION + echoInc,
          PRODUCTION_COUNTER + round,
        ]),
      };
    case "inv":
    case "drop":
      return { ...message, from, inc, seq: PRODUCTION_COUNTER + message.seq };
    case "revoke":
      return { ...message, from, inc, rev: PRODUCTION_COUNTER + message.rev };
    default:
      return { ...message, from, inc };
  }
}

function productionRecord(record: SessionsRecord): SessionsRecord {
  return {
    members: record.members.map((member) => ({
      ...member,
      id: productionId(member.id),
      inc: PRODUCTION_INCARNATION + member.inc,
      after: PRODUCTION_COUNTER + member.after,
    })),
  };
}

const textEncoder = new TextEncoder();
function jsonBytes(value: unknown): number {
  return textEncoder.encode(JSON.stringify(value)).length;
}
