/**
 * The simulators' event loop: a binary heap of events ordered by (true time, sequence), so
 * events at the same instant run in the order they were scheduled, and a run is a pure
 * function of its seed. Every processed event is folded into a trace hash.
 *
 * @module
 */

interface SimEvent {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

/** A deterministic event queue over virtual true time. */
export class EventQueue {
  readonly #heap: SimEvent[] = [];
  #seq = 0;
  #hash = 0x811c9dc5;
  /** The current true time: the time of the event being run. */
  now = 0;
  /** Events run so far. */
  events = 0;

  /** Schedules `run` at true time `at` (never in the past). */
  at(at: number, run: () => void): void {
    const event: SimEvent = { at: Math.max(at, this.now), seq: this.#seq++, run };
    const h = this.#heap;
    let i = h.length;
    h.push(event);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent]!;
      if (p.at < event.at || (p.at === event.at && p.seq < event.seq)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = event;
  }

  /** Runs events in order until none is left at or before `horizon`. */
  runUntil(horizon: number): void {
    for (let e = this.#pop(); e !== undefined && e.at <= horizon; e = this.#pop()) {
      this.now = e.at;
      this.events++;
      this.#hash = Math.imul(this.#hash ^ (e.seq & 0xffff), 16777619) >>> 0;
      this.#hash = Math.imul(this.#hash ^ ((e.at * 1000) | 0), 16777619) >>> 0;
      e.run();
    }
  }

  /** A hash of every event run: equal for equal runs. */
  get hash(): string {
    return (this.#hash >>> 0).toString(16).padStart(8, "0");
  }

  #pop(): SimEvent | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = last;
      let mi = -1;
      const left = h[l], right = h[r];
      if (left !== undefined && (left.at < m.at || (left.at === m.at && left.seq < m.seq))) {
        m = left;
        mi = l;
      }
      if (right !== undefined && (right.at < m.at || (right.at === m.at && right.seq < m.seq))) {
        m = right;
        mi = r;
      }
      if (mi < 0) break;
      h[i] = m;
      i = mi;
    }
    h[i] = last;
    return top;
  }
}
