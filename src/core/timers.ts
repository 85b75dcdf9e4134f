/**
 * The core's timer table: a binary min-heap of (deadline, sequence, id), with lazy
 * cancellation. A fired or cancelled timer is skipped when it reaches the top.
 *
 * @module
 */

/** One armed timer. */
interface Timer {
  readonly atMs: number;
  readonly seq: number;
  readonly id: number;
}

/**
 * A min-heap of deadlines, ordered by time then by arming order.
 *
 * @example
 * ```ts
 * import { TimerHeap } from "./timers.ts";
 * const timers = new TimerHeap();
 * timers.arm(7, 100);
 * timers.arm(8, 50);
 * console.log(timers.nextDeadlineMs()); // 50
 * console.log(timers.popDue(60)); // 8
 * ```
 */
export class TimerHeap {
  readonly #heap: Timer[] = [];
  readonly #live = new Map<number, number>();
  #seq = 0;

  /** Arms (or re-arms) timer `id` at `atMs`. */
  arm(id: number, atMs: number): void {
    const seq = ++this.#seq;
    this.#live.set(id, seq);
    this.#heap.push({ atMs, seq, id });
    this.#up(this.#heap.length - 1);
  }

  /** Cancels timer `id`, if armed. */
  cancel(id: number): void {
    this.#live.delete(id);
  }

  /** Number of armed timers. */
  get size(): number {
    return this.#live.size;
  }

  /** The earliest armed deadline, or `Infinity`. */
  nextDeadlineMs(): number {
    this.#dropDead();
    return this.#heap[0]?.atMs ?? Infinity;
  }

  /** Removes and returns the id of a timer due at `nowMs`, or `undefined`. */
  popDue(nowMs: number): number | undefined {
    this.#dropDead();
    const top = this.#heap[0];
    if (top === undefined || top.atMs > nowMs) return undefined;
    this.#pop();
    this.#live.delete(top.id);
    return top.id;
  }

  #dropDead(): void {
    for (let top = this.#heap[0]; top !== undefined; top = this.#heap[0]) {
      if (this.#live.get(top.id) === top.seq) return;
      this.#pop();
    }
  }

  #pop(): void {
    const last = this.#heap.pop()!;
    if (this.#heap.length > 0) {
      this.#heap[0] = last;
      this.#down(0);
    }
  }

  #less(a: Timer, b: Timer): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(h[i]!, h[parent]!)) return;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && this.#less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.#less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
