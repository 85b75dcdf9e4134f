/**
 * Private: the simulated bus between nodes. Each directed link delivers a message after an
 * exponential delay, or loses it, or delivers it twice, or takes a heavy-tailed detour that
 * reorders it; faults cut links (partitions), slow them (clogs) or take a node off the bus
 * (bus outages). A message in flight when its link goes down is lost, as NATS loses it.
 *
 * Design: links are flat typed arrays indexed `from · n + to` holding counts (a link may be
 * cut by two overlapping partitions at once, and comes back when both end), with every draw
 * on one stream in a fixed order per message, so a seed replays its network bit for bit.
 * Rejected: a map of link objects keyed by pair. It costs a lookup and an allocation where a
 * send is the simulator's most frequent event, and overlapping faults would need their own
 * bookkeeping.
 *
 * @module
 */

import type { Prng } from "./prng.ts";
import type { FaultMix } from "./faults.ts";
import type { Timeline } from "./_timeline.ts";

/** The network's rates, from a run's fault mix. */
export type NetworkMix = Pick<
  FaultMix,
  "lossRate" | "dupRate" | "delayMeanMs" | "tailRate" | "tailMeanMs"
>;

/** Messages sent, lost (any cause) and duplicated, counted by the network. */
export interface MessageCounts {
  sent: number;
  lost: number;
  duplicated: number;
}

/** Options of a {@linkcode SimNetwork}. */
export interface NetworkOptions<M> {
  /** Number of nodes (0 … nodes − 1). */
  readonly nodes: number;
  /** The network's own stream. */
  readonly prng: Prng;
  readonly mix: NetworkMix;
  /** Where the counts go (a run's stats). */
  readonly counts: MessageCounts;
  /** Hands a message that arrived to node `to`. */
  readonly receive: (from: number, to: number, message: M) => void;
  /**
   * Sees every message as it is sent, before any fault draws (a forger on the bus).
   * @default {none}
   */
  readonly tap?: (from: number, to: number, message: M) => void;
  /**
   * Sees every message sent: when it will arrive (`null`: lost) and why it was lost.
   * @default {none}
   */
  readonly traceSend?: (
    from: number,
    to: number,
    message: M,
    deliverAt: number | null,
    why?: string,
  ) => void;
}

/**
 * The bus of a simulated run.
 *
 * @example
 * ```ts
 * import { SimNetwork } from "./_network.ts";
 * import { Timeline } from "./_timeline.ts";
 * import { Prng } from "./prng.ts";
 * const timeline = new Timeline(1000);
 * const counts = { sent: 0, lost: 0, duplicated: 0 };
 * const got: string[] = [];
 * const mix = { lossRate: 0, dupRate: 0, delayMeanMs: 1, tailRate: 0, tailMeanMs: 0 };
 * const net = new SimNetwork<string>(timeline, {
 *   nodes: 2, prng: new Prng(1), mix, counts, receive: (_from, _to, m) => got.push(m),
 * });
 * net.partition([[0, 1]], 100);
 * net.send(0, 1, "cut off");
 * net.send(1, 0, "the other way");
 * timeline.runUntil(1000);
 * console.log(got, counts.lost); // ["the other way"] 1
 * ```
 */
export class SimNetwork<M> {
  readonly #timeline: Timeline;
  readonly #n: number;
  readonly #prng: Prng;
  readonly #mix: NetworkMix;
  readonly #counts: MessageCounts;
  readonly #receive: NetworkOptions<M>["receive"];
  readonly #traceSend: NetworkOptions<M>["traceSend"];
  readonly #tap: NetworkOptions<M>["tap"];
  /** Partitions cutting each directed link. */
  readonly #blocked: Int32Array;
  /** Extra delay on each directed link, ms. */
  readonly #clog: Float64Array;
  /** Bus outages of each node. */
  readonly #busDown: Int32Array;

  /** A bus between `options.nodes` nodes, scheduling on `timeline`. */
  constructor(timeline: Timeline, options: NetworkOptions<M>) {
    const n = options.nodes;
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`nodes must be at least 1: ${n}`);
    this.#timeline = timeline;
    this.#n = n;
    this.#prng = options.prng;
    this.#mix = options.mix;
    this.#counts = options.counts;
    this.#receive = options.receive;
    this.#traceSend = options.traceSend;
    this.#tap = options.tap;
    this.#blocked = new Int32Array(n * n);
    this.#clog = new Float64Array(n * n);
    this.#busDown = new Int32Array(n);
  }

  /** Whether a message from `from` to `to` can pass now. */
  #linkUp(from: number, to: number): boolean {
    return this.#blocked[from * this.#n + to] === 0 && this.#busDown[from] === 0 &&
      this.#busDown[to] === 0;
  }

  /**
   * Sends `message` from `from` to `to`: possibly twice, each copy lost or delivered after
   * its delay (a node's message to itself takes 0.01 ms). Faults draw only while they are on.
   */
  send(from: number, to: number, message: M): void {
    const counts = this.#counts;
    const timeline = this.#timeline;
    const net = this.#prng;
    const mix = this.#mix;
    counts.sent++;
    this.#tap?.(from, to, message);
    const copies = timeline.faultsOn && net.chance(mix.dupRate) ? 2 : 1;
    if (copies === 2) counts.duplicated++;
    for (let c = 0; c < copies; c++) {
      let why: string | undefined;
      if (!this.#linkUp(from, to)) why = "partition or bus outage";
      else if (timeline.faultsOn && net.chance(mix.lossRate)) why = "lost";
      let delay = net.exp(mix.delayMeanMs) + this.#clog[from * this.#n + to]!;
      if (timeline.faultsOn && net.chance(mix.tailRate)) delay += net.exp(mix.tailMeanMs);
      if (from === to) delay = 0.01;
      const deliverAt = timeline.now + delay;
      if (why !== undefined) {
        counts.lost++;
        this.#traceSend?.(from, to, message, null, why);
        continue;
      }
      this.#traceSend?.(from, to, message, deliverAt);
      timeline.at(deliverAt, () => {
        if (!this.#linkUp(from, to)) {
          counts.lost++; // in flight when the link went down: lost, as NATS loses it
          return;
        }
        this.#receive(from, to, message);
      });
    }
  }

  /** Cuts the directed `links` for `durationMs`. */
  partition(links: readonly (readonly [number, number])[], durationMs: number): void {
    for (const [a, b] of links) this.#blocked[a * this.#n + b]!++;
    this.#timeline.undoAfter(durationMs, () => {
      for (const [a, b] of links) this.#blocked[a * this.#n + b]!--;
    });
  }

  /** Adds `extraMs` to every delay from `from` to `to` for `durationMs`. */
  clog(from: number, to: number, extraMs: number, durationMs: number): void {
    const link = from * this.#n + to;
    this.#clog[link]! += extraMs;
    this.#timeline.undoAfter(durationMs, () => {
      this.#clog[link]! -= extraMs;
    });
  }

  /** Takes `node` off the bus for `durationMs`: what it sends or would receive is lost. */
  busOutage(node: number, durationMs: number): void {
    this.#busDown[node]!++;
    this.#timeline.undoAfter(durationMs, () => this.#busDown[node]!--);
  }

  /** The safety phase is over: every link is up and unclogged. */
  heal(): void {
    this.#blocked.fill(0);
    this.#clog.fill(0);
    this.#busDown.fill(0);
  }
}
