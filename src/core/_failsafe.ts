/**
 * Fail-safe (stale-if-error): when the store or the loader fails or times out, a read
 * that asked for it (`failSafeMaxMs` > 0, from its registration or its call) is answered
 * with the newest value this node holds for the key, **flagged stale** (F1), if that
 * value's freshness ended at most `failSafeMaxMs` ago — and never with a removed value
 * (F2). After such an answer, further reads of the key answer the same way without calling
 * the store or the loader again for `failSafeThrottleMs`.
 *
 * Why a value in L1 is a safe fallback: L1 keeps an entry past its freshness (expiry only
 * stops `hit` from serving it), but every **removal** deletes it — an invalidation or a
 * drop, a newer version seen (`noteVersion`: a write, a delete, an `inv`), a revocation or
 * a notice, a flush, a lost session. So an entry still in L1 was never removed, and it is
 * at least as new as every version this node has seen (E2 holds for stale answers too). A
 * value attached to leases is a fallback only while a check of each lease is trusted (G1
 * is not waived for stale answers). BentoCache #71 is the bug this avoids: its "delete"
 * marked an entry expired, and the grace period served the invalidated value again; the
 * canary `fallbackServesRemoved` brings it back to show the simulator's F2 check bites.
 *
 * A stale answer is never the default for any mode: F3 (strong-distributed keys answer
 * stale only when asked) holds because fail-safe is off unless the key's registration or
 * the caller sets `failSafeMaxMs`.
 *
 * Rejected: a separate copy of expired values kept for fail-safe — a second store of
 * values would have to be removed on every invalidation path too, and one forgotten path
 * is #71 again.
 *
 * @module
 */

import type { OpResult } from "./effects.ts";
import { entryAnswer } from "./l1.ts";
import type { ReadSettings } from "./registry.ts";
import type { NodeKernel } from "./_kernel.ts";
import type { LeaseChecks } from "./_fills.ts";

/** Most keys whose retries are throttled at once; past it the table starts over. */
const THROTTLED_MAX = 10_000;

/** Fail-safe answers of one node. */
export class FailSafe {
  readonly #k: NodeKernel;
  readonly #leases: LeaseChecks;
  /** Keys answered by fail-safe after a failure: until when retries wait. */
  readonly #throttled = new Map<string, number>();

  /** Makes the fail-safe answers of the node whose kernel is `kernel`. */
  constructor(kernel: NodeKernel, leases: LeaseChecks) {
    this.#k = kernel;
    this.#leases = leases;
  }

  /**
   * The stale answer a read of `key` with `settings` may get now, or `undefined`: the
   * L1 entry of `key` (never removed, see above) if fail-safe is on for the read, its
   * freshness ended less than `failSafeMaxMs` ago, and each of its leases is known active.
   */
  fallback(key: string, settings: ReadSettings): OpResult | undefined {
    if (settings.failSafeMaxMs <= 0) return undefined;
    const k = this.#k;
    const entry = k.l1.get(key);
    if (entry === undefined || k.now >= entry.freshUntilMs + settings.failSafeMaxMs) {
      return undefined;
    }
    if (entry.leases !== undefined && this.#leases.verdict(entry.leases) !== "active") {
      return undefined;
    }
    k.stats.staleAnswers++;
    if (k.events !== undefined) k.note({ type: "stale", key });
    return entryAnswer(entry, k.now, "fallback");
  }

  /** A failure of `key` was answered by fail-safe: hold retries back for `throttleMs`. */
  throttle(key: string, throttleMs: number): void {
    const throttled = this.#throttled;
    if (!throttled.has(key) && throttled.size >= THROTTLED_MAX) throttled.clear();
    throttled.set(key, this.#k.now + throttleMs);
  }

  /** Whether retries of `key` are held back now (a recent failure was answered stale). */
  throttled(key: string): boolean {
    const until = this.#throttled.get(key);
    if (until === undefined) return false;
    if (this.#k.now < until) return true;
    this.#throttled.delete(key);
    return false;
  }
}
