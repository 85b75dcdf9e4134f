/**
 * A map from a pair of 32-bit integers to a non-negative integer, for the hot loops of the
 * linearizability search (its memo, the trie of lists): open addressing with linear
 * probing over typed arrays, doubled at half load. Rejected: a `Map` keyed by a combined
 * number (past 2^31 a heap number, hashed slowly) or a `Map` per node (an allocation per
 * new node): either made the search several times slower.
 *
 * @module
 */

/** See the module doc. Grows without bound: its callers bound it by their step budget. */
export class IntPairMap {
  #mask: number;
  #firsts: Int32Array;
  #seconds: Int32Array;
  /** The value plus one; 0 marks an empty slot. */
  #values: Int32Array;
  #size = 0;

  constructor(capacityLog2 = 10) {
    const capacity = 1 << capacityLog2;
    this.#mask = capacity - 1;
    this.#firsts = new Int32Array(capacity);
    this.#seconds = new Int32Array(capacity);
    this.#values = new Int32Array(capacity);
  }

  /** The value of the pair, or -1. */
  get(first: number, second: number): number {
    const mask = this.#mask;
    for (let slot = hashPair(first, second) & mask;; slot = (slot + 1) & mask) {
      const value = this.#values[slot]!;
      if (value === 0) return -1;
      if (this.#firsts[slot] === first && this.#seconds[slot] === second) return value - 1;
    }
  }

  /** Sets the pair's value (`value` >= 0). */
  set(first: number, second: number, value: number): void {
    if (this.#size * 2 >= this.#mask) this.#grow();
    const mask = this.#mask;
    for (let slot = hashPair(first, second) & mask;; slot = (slot + 1) & mask) {
      if (this.#values[slot] === 0) {
        this.#firsts[slot] = first;
        this.#seconds[slot] = second;
        this.#values[slot] = value + 1;
        this.#size++;
        return;
      }
      if (this.#firsts[slot] === first && this.#seconds[slot] === second) {
        this.#values[slot] = value + 1;
        return;
      }
    }
  }

  #grow(): void {
    const firsts = this.#firsts;
    const seconds = this.#seconds;
    const values = this.#values;
    const capacity = firsts.length * 2;
    this.#mask = capacity - 1;
    this.#firsts = new Int32Array(capacity);
    this.#seconds = new Int32Array(capacity);
    this.#values = new Int32Array(capacity);
    this.#size = 0;
    for (let i = 0; i < firsts.length; i++) {
      if (values[i] !== 0) this.set(firsts[i]!, seconds[i]!, values[i]! - 1);
    }
  }
}

function hashPair(first: number, second: number): number {
  let h = Math.imul(first ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(second, 0xc2b2ae35);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return h ^ (h >>> 12);
}
