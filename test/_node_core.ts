/**
 * Helpers for the unit tests of `NodeCore` and its protocol modules: a node with one key
 * pattern per mode, the few inputs most tests feed it, and the plumbing of node sessions
 * (the sessions record read and compare-and-set by hand, or served from a register).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Effect, HolderRecord } from "../src/core/effects.ts";
import type { Message } from "../src/core/messages.ts";
import { NodeCore } from "../src/core/node.ts";
import { WarpError } from "../src/core/errors.ts";
import type { NodeConfig } from "../src/core/node.ts";
import type { KeyOptions } from "../src/core/registry.ts";
import { SESSIONS_RECORD_KEY } from "../src/core/_sessions.ts";
import type { SessionMember, SessionsRecord } from "../src/core/_sessions.ts";
import { only } from "./_effects.ts";

type CoordGet = Extract<Effect, { type: "coord-get" }>;
type CoordPut = Extract<Effect, { type: "coord-put" }>;

/**
 * A started node (its first tick done, its effects taken) with drift 1000 ppm and
 * `local:*` strong-local (TTL 1 s), `ev:*` eventual (staleness 500 ms) and `st:*`
 * strong-distributed (lease 1 s, write deadline 3 s).
 *
 * @example
 * ```ts
 * import { testNode } from "./_node_core.ts";
 * console.log(testNode("b").policyOf("ev:1")?.mode); // "eventual-distributed"
 * ```
 */
export function testNode(id = "a", options: Partial<NodeConfig> = {}): NodeCore {
  const n = registeredNode(id, options);
  n.tick(0);
  n.takeEffects();
  return n;
}

/** The node of {@linkcode testNode}, before its first tick. */
function registeredNode(id: string, options: Partial<NodeConfig>): NodeCore {
  const n = new NodeCore({ nodeId: id, incarnation: 1, maxDriftPpm: 1000, ...options });
  n.register("local:*", { mode: "strong-local", ttlMs: 1000 });
  n.register("ev:*", { mode: "eventual-distributed", ttlMs: 60_000, maxStalenessMs: 500 });
  n.register("st:*", {
    mode: "strong-distributed",
    ttlMs: 60_000,
    leaseMs: 1000,
    writeTimeoutMs: 3000,
  });
  return n;
}

/**
 * The `sessionMs` of {@linkcode sessionNode}: with the drift of 1000 ppm a renewal's belief
 * lasts 2997 ms from its sending, and renewals come every 1000 ms.
 *
 * @example
 * ```ts
 * import { SESSION_MS } from "./_node_core.ts";
 * console.log(SESSION_MS * (1 - 0.001)); // 2997
 * ```
 */
export const SESSION_MS = 3000;

/**
 * The node of {@linkcode testNode} with a session of {@linkcode SESSION_MS}, its first tick
 * done at 0: the read of the sessions record that joins is among its effects, not taken.
 *
 * @example
 * ```ts
 * import { sessionNode, sessionsRead } from "./_node_core.ts";
 * const n = sessionNode("b");
 * console.log(sessionsRead(n.takeEffects()).kind); // "sessions"
 * ```
 */
export function sessionNode(id = "a", options: Partial<NodeConfig> = {}): NodeCore {
  const n = registeredNode(id, { sessionMs: SESSION_MS, ...options });
  n.tick(0);
  return n;
}

/**
 * A member entry of the sessions record: incarnation 1, session 1, `sessionMs`
 * {@linkcode SESSION_MS}, based on revision 0, no notices, unless `fields` say otherwise.
 *
 * @example
 * ```ts
 * import { member } from "./_node_core.ts";
 * console.log(member("b", { after: 4 }).after); // 4
 * ```
 */
export function member(id: string, fields: Partial<SessionMember> = {}): SessionMember {
  return { id, inc: 1, session: 1, sessionMs: SESSION_MS, after: 0, notices: [], ...fields };
}

/**
 * The one read of the sessions record among `effects` (asserting there is exactly one).
 *
 * @example
 * ```ts
 * import { sessionsRead } from "./_node_core.ts";
 * const read = { type: "coord-get", io: 3, key: "sessions", kind: "sessions" } as const;
 * console.log(sessionsRead([read]).io); // 3
 * ```
 */
export function sessionsRead(effects: readonly Effect[]): CoordGet {
  return onlyOnSessions(effects, "coord-get");
}

/**
 * The one compare-and-set of the sessions record among `effects` (asserting there is
 * exactly one).
 *
 * @example
 * ```ts
 * import { sessionsWrite } from "./_node_core.ts";
 * const put = {
 *   type: "coord-put",
 *   io: 4,
 *   key: "sessions",
 *   record: { members: [] },
 *   revision: 2,
 * } as const;
 * console.log(sessionsWrite([put]).revision); // 2
 * ```
 */
export function sessionsWrite(effects: readonly Effect[]): CoordPut {
  return onlyOnSessions(effects, "coord-put");
}

function onlyOnSessions<K extends "coord-get" | "coord-put">(
  effects: readonly Effect[],
  type: K,
): Extract<Effect, { type: K }> {
  return only(effects.filter((e) => !isCoord(e) || e.key === SESSIONS_RECORD_KEY), type);
}

function isCoord(e: Effect): e is CoordGet | CoordPut {
  return e.type === "coord-get" || e.type === "coord-put";
}

/**
 * Renews (or joins) the session of `n`: takes its effects, answers the one read of the
 * sessions record among them with `record` at `revision` at `readMs`, and answers the
 * compare-and-set that follows with revision `revision + 1` at `answerMs`. Returns that
 * compare-and-set; the other effects taken are dropped.
 *
 * @example
 * ```ts
 * import { renewSession, sessionNode } from "./_node_core.ts";
 * const n = sessionNode();
 * const put = renewSession(n, undefined, 0, 10);
 * console.log(put.revision, n.stats.sessionRenewals); // undefined 1
 * ```
 */
export function renewSession(
  n: NodeCore,
  record: SessionsRecord | undefined,
  revision: number,
  readMs: number,
  answerMs = readMs,
): CoordPut {
  n.onCoordRead(sessionsRead(n.takeEffects()).io, { ok: true, record, revision }, readMs);
  const put = sessionsWrite(n.takeEffects());
  n.onCoordWrite(put.io, { ok: true, revision: revision + 1 }, answerMs);
  return put;
}

/** The coordinator's sessions record, as a compare-and-set register (see `serveSessions`). */
export interface SessionsCell {
  record: SessionsRecord | undefined;
  revision: number;
}

/**
 * Performs, on `cell`, every read and compare-and-set of the sessions record among
 * `effects` and among the effects their answers bring, answering each at `nowMs` (a lost
 * compare-and-set as a conflict); returns every other effect, in order.
 *
 * @example
 * ```ts
 * import { serveSessions, sessionNode } from "./_node_core.ts";
 * import type { SessionsCell } from "./_node_core.ts";
 * const n = sessionNode();
 * const cell: SessionsCell = { record: undefined, revision: 0 };
 * serveSessions(n, cell, n.takeEffects(), 0);
 * console.log(cell.revision, cell.record?.members[0]?.id); // 1 "a"
 * ```
 */
export function serveSessions(
  n: NodeCore,
  cell: SessionsCell,
  effects: readonly Effect[],
  nowMs: number,
): Effect[] {
  const queue = [...effects];
  const rest: Effect[] = [];
  for (let served = 0; queue.length > 0; served++) {
    assert.ok(served < 1000, "the node keeps calling the coordinator");
    const e = queue.shift()!;
    if (!isCoord(e) || e.key !== SESSIONS_RECORD_KEY) {
      rest.push(e);
      continue;
    }
    if (e.type === "coord-get") {
      n.onCoordRead(e.io, { ok: true, record: cell.record, revision: cell.revision }, nowMs);
    } else if (e.revision === (cell.record === undefined ? undefined : cell.revision)) {
      cell.record = e.record as SessionsRecord;
      cell.revision++;
      n.onCoordWrite(e.io, { ok: true, revision: cell.revision }, nowMs);
    } else {
      n.onCoordWrite(e.io, { ok: false, conflict: true, error: contended() }, nowMs);
    }
    queue.push(...n.takeEffects());
  }
  return rest;
}

/**
 * A lost compare-and-set, as a driver reports it.
 *
 * @example
 * ```ts
 * import { contended } from "./_node_core.ts";
 * console.log(contended().code); // "CONTENDED"
 * ```
 */
export function contended(): WarpError {
  return new WarpError("CONTENDED", "Revision moved");
}

/**
 * Drives a strong miss of `key` on `n` through its holder registration (the holder
 * record read as `record` at `revision`, then written at `revision + 1`) to the store
 * read of `v` at `version`, answered and cached, all at `now`.
 *
 * @example
 * ```ts
 * import { strongFill, testNode } from "./_node_core.ts";
 * const n = testNode("b");
 * strongFill(n, 1, "st:k", undefined, 0, 0, "v", 1);
 * console.log(n.hit("st:k", 1)?.value); // "v"
 * ```
 */
export function strongFill(
  n: NodeCore,
  op: number,
  key: string,
  record: HolderRecord | undefined,
  revision: number,
  now: number,
  v: string,
  version: number,
): void {
  n.get(op, key, now);
  const get = only(n.takeEffects(), "coord-get");
  assert.equal(get.key, `strong/${key}`);
  n.onCoordRead(get.io, { ok: true, record, revision }, now);
  const put = only(n.takeEffects(), "coord-put");
  assert.ok((put.record as HolderRecord).holders.includes(n.nodeId));
  n.onCoordWrite(put.io, { ok: true, revision: revision + 1 }, now);
  const storeGet = only(n.takeEffects(), "store-get");
  n.onStoreRead(storeGet.io, storeRead(v, version), now);
  assert.equal(only(n.takeEffects(), "resolve").result.value, v);
}

/**
 * What a caller writes: the string as value and payload, its length as size.
 *
 * @example
 * ```ts
 * import { writeInput } from "./_node_core.ts";
 * console.log(writeInput("ada").sizeBytes); // 3
 * ```
 */
export function writeInput(v: string): { value: string; payload: string; sizeBytes: number } {
  return { value: v, payload: v, sizeBytes: v.length };
}

/**
 * A successful store read of `v` at `version`.
 *
 * @example
 * ```ts
 * import { storeRead } from "./_node_core.ts";
 * console.log(storeRead("v", 3).version); // 3
 * ```
 */
export function storeRead(v: string, version: number) {
  return { ok: true as const, found: true, value: v, version, sizeBytes: v.length };
}

/**
 * Writes through a local or eventual key, answering the store write with `version`;
 * returns the effects of the answer.
 *
 * @example
 * ```ts
 * import { testNode, writeThrough } from "./_node_core.ts";
 * const n = testNode();
 * writeThrough(n, 1, "local:1", "x", 1, 100);
 * console.log(n.hit("local:1", 101)?.value); // "x"
 * ```
 */
export function writeThrough(
  n: NodeCore,
  op: number,
  key: string,
  v: string,
  version: number,
  now: number,
): Effect[] {
  n.set(op, key, writeInput(v), now);
  const w = only(n.takeEffects(), "store-write");
  n.onStoreWrite(w.io, { ok: true, version }, now);
  return n.takeEffects();
}

/**
 * Reads `key` through a miss on `n`, answering the store read with `v` at `version`;
 * returns the effects of the answer.
 *
 * @example
 * ```ts
 * import { readThrough, testNode } from "./_node_core.ts";
 * const n = testNode();
 * readThrough(n, 1, "ev:1", "x", 1, 100);
 * console.log(n.hit("ev:1", 101)?.value); // "x"
 * ```
 */
export function readThrough(
  n: NodeCore,
  op: number,
  key: string,
  v: string,
  version: number,
  now: number,
): Effect[] {
  n.get(op, key, now);
  const r = only(n.takeEffects(), "store-get");
  n.onStoreRead(r.io, storeRead(v, version), now);
  return n.takeEffects();
}

/**
 * A heartbeat from `from` (incarnation `inc`) whose last broadcast was `seq`, at `round`,
 * echoing `echo` (none by default).
 *
 * @example
 * ```ts
 * import { heartbeat, testNode } from "./_node_core.ts";
 * const n = testNode();
 * n.onMessage(heartbeat("b", 7, 0), 1);
 * console.log(n.stats.messagesReceived); // 1
 * ```
 */
export function heartbeat(
  from: string,
  inc: number,
  seq: number,
  round = 1,
  echo: readonly (readonly [string, number, number])[] = [],
): Message {
  return { t: "hb", from, inc, seq, round, echo };
}

/**
 * A loader's successful report of `v` (its length as size); `fields` add a TTL or
 * `cache: false`.
 *
 * @example
 * ```ts
 * import { loaded } from "./_node_core.ts";
 * console.log(loaded("v").found, loaded(undefined).found); // true false
 * ```
 */
export function loaded(
  v: string | undefined,
  fields: { ttlMs?: number; cache?: boolean } = {},
) {
  return {
    ok: true as const,
    found: v !== undefined,
    value: v,
    sizeBytes: v?.length ?? 0,
    ...fields,
  };
}

/**
 * The node of {@linkcode testNode} with loader-backed keys: `lloc:*` strong-local (TTL
 * 1 s), `lev:*` eventual (staleness 500 ms) and `lst:*` strong-distributed (lease 1 s,
 * write deadline 3 s), each with `extra` options (fail-safe, timeouts, tuning).
 *
 * @example
 * ```ts
 * import { loaderNode } from "./_node_core.ts";
 * console.log(loaderNode("a").policyOf("lev:1")?.origin); // "loader"
 * ```
 */
export function loaderNode(
  id = "a",
  extra: Partial<KeyOptions> = {},
  options: Partial<NodeConfig> = {},
): NodeCore {
  const n = testNode(id, options);
  registerLoaderKeys(n, extra);
  return n;
}

/**
 * Registers the loader-backed keys of {@linkcode loaderNode} on `n`, with `extra` options.
 *
 * @example
 * ```ts
 * import { registerLoaderKeys, sessionNode } from "./_node_core.ts";
 * const n = sessionNode("b");
 * registerLoaderKeys(n);
 * console.log(n.policyOf("lst:1")?.mode); // "strong-distributed"
 * ```
 */
export function registerLoaderKeys(n: NodeCore, extra: Partial<KeyOptions> = {}): void {
  const origin = "loader" as const;
  n.register("lloc:*", { mode: "strong-local", origin, ttlMs: 1000, ...extra });
  n.register("lev:*", {
    mode: "eventual-distributed",
    origin,
    ttlMs: 60_000,
    maxStalenessMs: 500,
    ...extra,
  });
  n.register("lst:*", {
    mode: "strong-distributed",
    origin,
    ttlMs: 60_000,
    leaseMs: 1000,
    writeTimeoutMs: 3000,
    ...extra,
  });
}

/**
 * A started node (drift 500 ppm, the default) with one registration, `pattern`,
 * strong-local and store-backed unless `options` say otherwise.
 *
 * @example
 * ```ts
 * import { oneKeyNode } from "./_node_core.ts";
 * console.log(oneKeyNode("k*", { ttlMs: 100 }).policyOf("k1")?.ttlMs); // 100
 * ```
 */
export function oneKeyNode(pattern: string, options: Partial<KeyOptions> = {}): NodeCore {
  const n = new NodeCore({ nodeId: "a", incarnation: 1 });
  n.register(pattern, { mode: "strong-local", ...options });
  n.tick(0);
  n.takeEffects();
  return n;
}
