/**
 * The eventual protocol of one node, and strong-local writes (its case without a bus):
 * writes that go to the store and install in L1; for eventual-distributed keys, an `inv`
 * broadcast carrying the written version, applied by every other node; `invalidate`, a
 * `drop` broadcast that names no version; and the flush of every eventual entry, which the
 * peer tracking (`_peers.ts`) calls when broadcasts may have been missed.
 *
 * Design: invalidations carry the store version written, and a receiver only raises its
 * version floor for the key (the kernel's `noteVersion`): an older entry is dropped, a
 * newer one (or the writer's own echo) stays, and a fill or a write in flight cannot
 * install anything older afterwards (E2). Staleness is bounded by serving an entry for at
 * most `maxStalenessMs × (1 − drift)` from when it was read (E3) and by flushing on a
 * detected gap. A write in flight keeps a floor per key, so that its late answer does not
 * install over a newer version seen meanwhile.
 *
 * Loader-backed eventual keys (`origin: "loader"`) reuse this protocol whole: the
 * application's `invalidate` is a `drop` broadcast, which carries a sequence number like
 * `inv`, so the session's freshness proof (`_peers.ts`) covers it; and it completes the
 * way an eventual write does, once this node is an active member (held until then, and
 * sent again as it completes), so every node that serves past the age bound counts it
 * (LB2). Without sessions the age bound, counted from the load's start, is the rule.
 *
 * Rejected: invalidations that carry the value (an update protocol) — every node would
 * pay for every write, in bus bytes and decoding, whether it reads the key or not; and
 * dropping by key alone — a writer's own echo, or a duplicate, would evict the value it
 * has just written.
 *
 * @module
 */

import { WarpError } from "./errors.ts";
import type { OpResult } from "./effects.ts";
import type { KeyPolicy } from "./registry.ts";
import type { NodeKernel, VersionWatcher } from "./_kernel.ts";
import type { FlushEpoch } from "./_fills.ts";
import type { EventualFlush } from "./_peers.ts";
import type { WriteInput } from "./node.ts";
import type { FlushReason } from "./events.ts";

/** Most eventual writes waiting for this node's session at once. */
const HELD_MAX = 10_000;

/** What eventual writes need of the session protocol (`_sessions.ts`). */
export interface SessionGate {
  /** Whether the session lives and every member has taken this node in. */
  readonly active: boolean;
}

/** The eventual protocol (and strong-local writes) of one node. */
export class EventualWrites implements VersionWatcher, FlushEpoch, EventualFlush {
  readonly #k: NodeKernel;
  /** Keys with local or eventual writes in flight: how many, and the newest version seen. */
  readonly #writeFloors = new Map<string, { count: number; floor: number }>();
  #flushEpoch = 0;
  readonly #gate: SessionGate;
  /**
   * Eventual writes (and loader-backed invalidations, `drop`) that landed while this node
   * was not an active member.
   */
  #held: {
    readonly op: number;
    readonly key: string;
    readonly result: OpResult;
    readonly drop: boolean;
  }[] = [];

  /** Makes the eventual protocol of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel, gate: SessionGate) {
    this.#k = kernel;
    this.#gate = gate;
  }

  /** How many flushes there have been: a fill that began before the latest does not cache. */
  get flushEpoch(): number {
    return this.#flushEpoch;
  }

  /** Writes a strong-local or eventual-distributed key as caller op `op` (admitted). */
  write(op: number, key: string, policy: KeyPolicy, input: WriteInput): void {
    const k = this.#k;
    const timer = k.arm(k.now + policy.writeTimeoutMs, () => k.timeoutWrite(op));
    k.ops.set(op, { kind: "write", key, timer, answered: false });
    const askMs = k.now;
    const deleting = input.payload === undefined;
    const floors = this.#writeFloors.get(key) ?? { count: 0, floor: 0 };
    floors.count++;
    this.#writeFloors.set(key, floors);
    k.storeWrite(key, input.payload, input.expectedVersion, (result) => {
      // A newer version seen while this write was in flight (an invalidation, another
      // write) means installing ours would take the node back in time (E2).
      const seenNewer = result.ok && floors.floor > result.version;
      if (--floors.count === 0) this.#writeFloors.delete(key);
      if (!result.ok) {
        // A failed store write leaves L1 untouched.
        const conflict = result.error.code === "STORE_CONFLICT";
        k.answerWrite(
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
      if (!seenNewer) k.install(key, policy, data, askMs, input.ttlMs);
      k.noteVersion(key, result.version);
      if (policy.mode === "eventual-distributed") this.#invalidate(key, result.version);
      this.#complete(op, policy, key, { ...data, source: "none" }, false);
    });
  }

  /**
   * Answers an eventual write once this node is an active member of the cluster's
   * sessions: every reader that serves past the staleness bound then counts this node
   * among the writers it must have heard (it took it in, see `_sessions.ts`), and has not
   * dropped it (a member is removed only after its session provably ended). A write that
   * lands while the session has lapsed waits for it to be renewed; past its deadline its
   * caller hears `OUTCOME_UNKNOWN` (the value was written, but no bound can be promised).
   * Without sessions every reader keeps to the age bound, which needs no membership.
   */
  #complete(op: number, policy: KeyPolicy, key: string, result: OpResult, drop: boolean): void {
    const k = this.#k;
    if (
      policy.mode !== "eventual-distributed" || !k.sessions || this.#gate.active ||
      k.canary.completeWithoutSession
    ) {
      k.answerWrite(op, result);
      return;
    }
    if (this.#held.length >= HELD_MAX) {
      this.#held = this.#held.filter((h) => k.ops.has(h.op)); // drop those past their deadline
    }
    if (this.#held.length >= HELD_MAX) {
      k.answerWrite(
        op,
        new WarpError(
          "OUTCOME_UNKNOWN",
          `Written, but too many writes wait for this node's session: ${policy.pattern}`,
        ),
      );
      return;
    }
    k.stats.writesHeld++;
    this.#held.push({ op, key, result, drop });
  }

  /** Tells every node that `version` of `key` exists (an `inv` broadcast). */
  #invalidate(key: string, version: number): void {
    const k = this.#k;
    k.broadcast({ t: "inv", from: k.nodeId, inc: k.incarnation, seq: k.nextSeq(), key, version });
  }

  /** Tells every node to drop `key`, whatever its version (a `drop` broadcast). */
  #drop(key: string): void {
    const k = this.#k;
    k.broadcast({ t: "drop", from: k.nodeId, inc: k.incarnation, seq: k.nextSeq(), key });
  }

  /** The session changed: answer the writes that waited for it, if it is active now. */
  sessionChanged(): void {
    if (this.#held.length === 0 || !this.#gate.active) return;
    const held = this.#held;
    this.#held = [];
    for (const { op, key, result, drop } of held) {
      // Its first invalidation went out while the session had lapsed, and may have been
      // lost where nobody counted on this node: send it again as the write completes.
      if (drop) this.#drop(key);
      else this.#invalidate(key, result.version);
      this.#k.answerWrite(op, result);
    }
  }

  /**
   * Drops `key` from L1 here and, unless strong-local, on every node (a `drop` broadcast,
   * best effort), as caller op `op` (admitted). Completes at once, except for a
   * loader-backed eventual key under sessions: like an eventual write, once this node is
   * an active member (see `#complete`).
   */
  invalidate(op: number, key: string, policy: KeyPolicy): void {
    const k = this.#k;
    k.drop(key);
    if (policy.mode !== "strong-local") this.#drop(key);
    const result = { found: false, value: undefined, version: 0, source: "none" as const };
    if (policy.origin !== "loader") {
      k.resolve(op, result);
      return;
    }
    const timer = k.arm(k.now + policy.writeTimeoutMs, () => k.timeoutWrite(op));
    k.ops.set(op, { kind: "write", key, timer, answered: false });
    this.#complete(op, policy, key, result, true);
  }

  /** Another node wrote version `version` of `key` (an `inv` message). */
  applyInvalidation(key: string, version: number): void {
    const k = this.#k;
    const entry = k.l1.get(key);
    if (entry !== undefined && entry.version < version) k.stats.invalidationsApplied++;
    k.noteVersion(key, version);
  }

  /** Broadcasts of unknown keys may have been missed: drop every eventual entry. */
  flush(reason: FlushReason): void {
    const entries = this.#k.l1.deleteWhere((e) => e.policy.mode === "eventual-distributed");
    this.#flushEpoch++;
    this.#k.stats.flushes++;
    this.#k.stats.entriesFlushed += entries;
    if (this.#k.events !== undefined) this.#k.note({ type: "flush", reason, entries });
  }

  /** Raises the floor of the writes of `key` in flight. */
  versionSeen(key: string, version: number): void {
    const writes = this.#writeFloors.get(key);
    if (writes !== undefined && writes.floor < version) writes.floor = version;
  }
}
