/**
 * Seeded randomness for the pure core: a xorshift32 stream per use, seeded from the
 * node's id and incarnation, so that a node's choices (when to renew its session, how
 * much to jitter a TTL) differ between nodes and restarts yet replay exactly in the
 * simulator. The core never calls `Math.random`.
 *
 * Rejected: one stream shared by every module — a module that draws one more number would
 * shift every other module's draws, and the simulator's pinned seeds would replay
 * differently after an unrelated change.
 *
 * @module
 */

/**
 * A 32-bit seed from a node's id and incarnation (FNV-1a over the id, started from the
 * incarnation), xored with `salt` to give each use its own stream.
 *
 * @example
 * ```ts
 * import { nodeSeed } from "./_random.ts";
 * console.log(nodeSeed("a", 1) === nodeSeed("a", 1), nodeSeed("a", 1) === nodeSeed("a", 2)); // true false
 * ```
 */
export function nodeSeed(nodeId: string, incarnation: number, salt = 0): number {
  let seed = 2166136261 ^ incarnation;
  for (let i = 0; i < nodeId.length; i++) {
    seed = Math.imul(seed ^ nodeId.charCodeAt(i), 16777619);
  }
  return (seed ^ salt) >>> 0;
}

/**
 * A xorshift32 stream (Marsaglia 2003): fast, small, and plenty for jitter; not for
 * anything an adversary may predict.
 *
 * @example
 * ```ts
 * import { Xorshift32 } from "./_random.ts";
 * const random = new Xorshift32(7);
 * const x = random.next();
 * console.log(x >= 0 && x < 1); // true
 * ```
 */
export class Xorshift32 {
  #state: number;

  /** Starts a stream from `seed` (0 is replaced by 1: the generator's one fixed point). */
  constructor(seed: number) {
    this.#state = seed >>> 0 || 1;
  }

  /** The next number, uniform in [0, 1). */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return this.#state / 0x1_0000_0000;
  }
}
