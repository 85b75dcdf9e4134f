/**
 * Namespace clears on one node: `clear(ns)` removes every key of namespace `ns` (the keys
 * that start with `ns:`, nested namespaces included) from L1 on every node, and behaves as
 * an invalidation of each of those keys with the same guarantees, mode by mode: on the
 * clearing node at once; for eventual-distributed keys on the other nodes within
 * `maxStalenessMs`, under every fault; strong-local keys are this node's own business.
 *
 * Design: a clear is a **versioned event**, never a time. The clearing node applies it,
 * then broadcasts a `clr` message numbered in its own broadcast sequence (`seq`, like
 * `inv` and `drop`) and carrying the namespace's epoch on that node (how many clears of
 * the namespace it has applied, itself included). A receiver applies it the way it
 * applies a `drop` of each key: every L1 entry of the namespace is removed (not expired:
 * fail-safe never serves it, F2) and every fill or load of such a key in flight is
 * voided (`kernel.drop`: a load is overtaken and loaded again, LB1; a store fill answers
 * but caches nothing, E2). A lost `clr` is a gap in the sender's sequence, which flushes
 * every eventual entry (`_peers.ts`); its sequence number is counted by the session's
 * freshness proof, so an entry served past the age bound has seen it; and, like a
 * loader-backed invalidation (`_eventual.ts`), a clear completes only once its node is an
 * active member (held and broadcast again until then), so that proof counts it. Nothing
 * compares clocks: a node whose clock is wrong can neither miss a clear nor evict on one.
 *
 * Rejected: a clear as a wall-clock timestamp ("entries older than T are gone", checked
 * on every hit) — a node with a wrong clock evicts the whole namespace, or keeps what it
 * should drop, cluster-wide (FusionCache #627), and every hit pays a comparison; and a
 * per-entry namespace epoch checked lazily on hits — it moves the cost to the hot path,
 * where the eager removal costs one pass over L1 per clear (clears are rare, hits are
 * not). Strong-distributed keys are not cleared: their guarantee needs each holder of
 * each key revoked through the coordinator, which a namespace does not enumerate; a clear
 * whose namespace may hold one is refused with `NOT_SUPPORTED` (`mayHold`).
 *
 * @module
 */

import { WarpError } from "./errors.ts";
import type { KeyPolicy } from "./registry.ts";
import type { NodeKernel } from "./_kernel.ts";
import type { SessionGate } from "./_eventual.ts";

/** The separator between a namespace and the rest of a key: `users:42` is in `users`. */
export const NAMESPACE_SEPARATOR = ":";

/** The longest namespace name, in UTF-16 code units. */
export const NAMESPACE_LENGTH_MAX = 256;

/** Most clears waiting for this node's session at once. */
const HELD_MAX = 1000;

/** Most namespaces whose epochs a node remembers; the oldest is forgotten beyond. */
const EPOCHS_MAX = 10_000;

/**
 * Why `value` is not a namespace name, in a few words; `undefined` when it is one: 1 to
 * {@linkcode NAMESPACE_LENGTH_MAX} characters, well-formed, without NUL or `*` (a
 * namespace is a literal key prefix), not ending in the separator.
 *
 * @example
 * ```ts
 * import { namespaceProblem } from "./_namespaces.ts";
 * console.log(namespaceProblem("users"), namespaceProblem("users:eu")); // undefined undefined
 * console.log(namespaceProblem("us*")); // "it has a *"
 * ```
 */
export function namespaceProblem(value: unknown): string | undefined {
  if (typeof value !== "string") return "expected a string";
  if (value.length === 0) return "it is empty";
  if (value.length > NAMESPACE_LENGTH_MAX) {
    return `it is longer than ${NAMESPACE_LENGTH_MAX} characters`;
  }
  if (!value.isWellFormed()) return "it has a lone surrogate";
  if (value.includes("\u0000")) return "it has a NUL character";
  if (value.includes("*")) return "it has a *";
  if (value.endsWith(NAMESPACE_SEPARATOR)) return `it ends with "${NAMESPACE_SEPARATOR}"`;
  return undefined;
}

/**
 * Whether a registration `pattern` (an exact key, or a glob with `*`) may match a key of
 * namespace prefix `prefix` (`ns:`): an exact key that starts with it, or a glob whose
 * literal start and the prefix agree as far as both go (the first `*` absorbs the rest).
 *
 * @example
 * ```ts
 * import { mayMatchUnder } from "./_namespaces.ts";
 * console.log(mayMatchUnder("users:*", "users:"), mayMatchUnder("*", "users:")); // true true
 * console.log(mayMatchUnder("orders:*", "users:"), mayMatchUnder("u*", "users:")); // false true
 * ```
 */
export function mayMatchUnder(pattern: string, prefix: string): boolean {
  const star = pattern.indexOf("*");
  if (star < 0) return pattern.startsWith(prefix);
  const literal = pattern.slice(0, star);
  return literal.startsWith(prefix) || prefix.startsWith(literal);
}

/** The clears of one node: applying them, and clearing as a caller operation. */
export class NamespaceClears {
  readonly #k: NodeKernel;
  readonly #gate: SessionGate;
  /** What the node's read path has in flight, to void what a clear covers. */
  readonly #inFlight: () => Iterable<string>;
  /** Clears applied per namespace on this node (the namespace's epoch here). */
  readonly #epochs = new Map<string, number>();
  /** Clears done while this node was not an active member: sent again when it is. */
  #held: { readonly op: number; readonly ns: string }[] = [];

  /**
   * The clears of the node whose kernel is `kernel`; `inFlight` lists the keys of the
   * fills and loads in flight (`_fills.ts`).
   */
  constructor(kernel: NodeKernel, gate: SessionGate, inFlight: () => Iterable<string>) {
    this.#k = kernel;
    this.#gate = gate;
    this.#inFlight = inFlight;
  }

  /** How many clears of `ns` this node has applied (0: none, or forgotten). */
  epoch(ns: string): number {
    return this.#epochs.get(ns) ?? 0;
  }

  /**
   * Clears namespace `ns` as caller op `op` (admitted; `policies` checked by the caller to
   * hold no strong-distributed key): here at once, then on every node (a `clr` broadcast).
   * With sessions it completes once this node is an active member, like an eventual
   * write; past `timeoutMs` its caller hears `OUTCOME_UNKNOWN`.
   */
  clear(op: number, ns: string, timeoutMs: number): void {
    const k = this.#k;
    const epoch = this.apply(ns);
    this.#broadcast(ns, epoch);
    const result = { found: false, value: undefined, version: epoch, source: "none" as const };
    if (!k.sessions || this.#gate.active || k.canary.completeWithoutSession) {
      k.resolve(op, result);
      return;
    }
    const timer = k.arm(k.now + timeoutMs, () => k.timeoutWrite(op));
    k.ops.set(op, { kind: "write", key: `${ns}${NAMESPACE_SEPARATOR}`, timer, answered: false });
    if (this.#held.length >= HELD_MAX) this.#held = this.#held.filter((h) => k.ops.has(h.op));
    if (this.#held.length >= HELD_MAX) {
      k.answerWrite(
        op,
        new WarpError(
          "OUTCOME_UNKNOWN",
          `Cleared, but too many clears wait for the session: ${ns}`,
        ),
      );
      return;
    }
    k.stats.writesHeld++;
    this.#held.push({ op, ns });
  }

  /** The session changed: answer the clears that waited for it, if it is active now. */
  sessionChanged(): void {
    if (this.#held.length === 0 || !this.#gate.active) return;
    const held = this.#held;
    this.#held = [];
    for (const { op, ns } of held) {
      if (!this.#k.ops.has(op)) continue; // past its deadline: its caller heard already
      // Its first broadcast went out while the session had lapsed, and may have been lost
      // where nobody counted on this node: send it again as the clear completes.
      this.#broadcast(ns, this.epoch(ns));
      this.#k.answerWrite(op, {
        found: false,
        value: undefined,
        version: this.epoch(ns),
        source: "none",
      });
    }
  }

  /**
   * Applies a clear of `ns` (this node's, or a peer's `clr`): removes every L1 entry of the
   * namespace and voids every fill and load of one in flight. Returns the namespace's new
   * epoch on this node.
   */
  apply(ns: string): number {
    const k = this.#k;
    const epoch = this.epoch(ns) + 1;
    this.#epochs.delete(ns); // re-inserted last: the map forgets the least recent first
    this.#epochs.set(ns, epoch);
    if (this.#epochs.size > EPOCHS_MAX) {
      this.#epochs.delete(this.#epochs.keys().next().value!);
    }
    k.stats.clears++;
    if (k.canary.ignoreClears) return epoch;
    const prefix = ns + NAMESPACE_SEPARATOR;
    const keys = new Set<string>();
    for (const entry of k.l1.entries()) if (entry.key.startsWith(prefix)) keys.add(entry.key);
    for (const key of this.#inFlight()) if (key.startsWith(prefix)) keys.add(key);
    for (const key of keys) k.drop(key);
    return epoch;
  }

  #broadcast(ns: string, epoch: number): void {
    const k = this.#k;
    k.broadcast({ t: "clr", from: k.nodeId, inc: k.incarnation, seq: k.nextSeq(), ns, epoch });
  }
}

/**
 * The registration of `policies` that keeps namespace `ns` from being cleared, if any: a
 * strong-distributed one that may hold a key of it.
 */
export function blockingRegistration(
  policies: Iterable<KeyPolicy>,
  ns: string,
): KeyPolicy | undefined {
  const prefix = ns + NAMESPACE_SEPARATOR;
  for (const policy of policies) {
    if (policy.mode === "strong-distributed" && mayMatchUnder(policy.pattern, prefix)) {
      return policy;
    }
  }
  return undefined;
}
