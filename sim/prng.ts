/**
 * Seeded pseudo-random numbers for the simulator: every stream of randomness (workload,
 * network, faults, each node) is derived from one root seed by name, so adding a fault
 * kind does not change the workload a seed draws.
 *
 * @module
 */

/** Mixes a 32-bit state (splitmix32 finaliser). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * Derives an independent seed for the stream `name` from `root`.
 *
 * @example
 * ```ts
 * import { deriveSeed } from "./prng.ts";
 * console.log(deriveSeed(1, "network") !== deriveSeed(1, "workload")); // true
 * ```
 */
export function deriveSeed(root: number, name: string): number {
  let h = mix32(root ^ 0x9e3779b9);
  for (let i = 0; i < name.length; i++) h = mix32(h ^ name.charCodeAt(i));
  return h;
}

/**
 * A small, fast, seeded generator (sfc32).
 *
 * @example
 * ```ts
 * import { Prng } from "./prng.ts";
 * const a = new Prng(42), b = new Prng(42);
 * console.log(a.float() === b.float()); // true
 * ```
 */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Creates a generator from a 32-bit seed. */
  constructor(seed: number) {
    this.#a = mix32(seed ^ 0xa341316c);
    this.#b = mix32(seed ^ 0xc8013ea4);
    this.#c = mix32(seed ^ 0xad90777d);
    this.#d = 1;
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** A uniform 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** A uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /** A uniform float in [min, max). */
  range(min: number, max: number): number {
    return min + this.float() * (max - min);
  }

  /** An element of `items` (non-empty). */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)]!;
  }

  /** An exponential variate with the given mean. */
  exp(mean: number): number {
    return -mean * Math.log(1 - this.float());
  }
}
