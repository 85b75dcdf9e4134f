/**
 * Fault mixes and schedules for the simulator. A mix says how hostile the network, store
 * and clocks are; a schedule lists discrete faults (partitions, crashes, pauses, clock
 * steps, outages, store latency spikes) at true times. Swarm testing draws a mix per seed,
 * each kind possibly off, and a schedule from it; a third of swarm seeds are "gray": lossy
 * and paused at once, with coordinator outages and slow stores, where rare mixes live.
 *
 * @module
 */

import { deriveSeed, Prng } from "./prng.ts";

/** The coordinator's own faults, in a fault mix. */
export interface CoordinatorFaultRates {
  /**
   * Probability that a coordinator read is answered from an older state (a deposed leader,
   * a lagging replica: NATS ADR-8, ADR-53): the state of up to `coordStaleMaxMs` before.
   * @default {0}
   */
  readonly coordStaleRate?: number;
  /** How old a stale coordinator read may be, ms. @default {0} */
  readonly coordStaleMaxMs?: number;
  /**
   * Probability that a coordinator call's answer is lost after it took effect (a renewal
   * that landed, reported as a timeout). @default {0}
   */
  readonly coordReplyLossRate?: number;
}

/** Continuous fault rates of a run. Any rate may be zero. */
export interface FaultMix extends CoordinatorFaultRates {
  /** Probability that a message is lost (0–0.3). */
  readonly lossRate: number;
  /** Probability that a message is delivered twice (0–0.5). */
  readonly dupRate: number;
  /** Mean of the usual one-way delay, ms. */
  readonly delayMeanMs: number;
  /** Probability that a message takes the heavy tail (reordering). */
  readonly tailRate: number;
  /** Mean of the heavy-tail delay, ms. */
  readonly tailMeanMs: number;
  /** Mean store latency each way, ms. */
  readonly storeLatencyMeanMs: number;
  /** Probability that a store call fails (before or after taking effect). */
  readonly storeErrorRate: number;
  /** Timer jitter: a timer fires up to this late, ms. */
  readonly timerJitterMs: number;
  /** Largest clock offset between nodes, ms (offsets may be anything; safety needs none). */
  readonly clockOffsetMaxMs: number;
  /** Whether clocks drift (within the bound). */
  readonly drift: boolean;
}

/** A discrete fault at a true time. Every fault ends before the safety phase does. */
export type Fault =
  /** Messages on the listed directed links are lost while it lasts. */
  | {
    readonly kind: "partition";
    readonly atMs: number;
    readonly durationMs: number;
    readonly links: readonly (readonly [number, number])[];
    readonly label: string;
  }
  /** Extra delay on a directed link while it lasts. */
  | {
    readonly kind: "clog";
    readonly atMs: number;
    readonly durationMs: number;
    readonly from: number;
    readonly to: number;
    readonly extraMs: number;
  }
  /** The node crashes (L1 and in-flight work lost) and restarts `downMs` later. */
  | {
    readonly kind: "crash";
    readonly atMs: number;
    readonly node: number;
    readonly downMs: number;
  }
  /**
   * The node stops running (a GC pause, SIGSTOP); its clock goes on. With `after`, the
   * pause starts at the node's first coordinator call (or coordinator write) or store call
   * at or after `atMs`, so the answer of that call arrives to a node that has been away
   * for `durationMs`.
   */
  | {
    readonly kind: "pause";
    readonly atMs: number;
    readonly node: number;
    readonly durationMs: number;
    readonly after?: "coord-call" | "coord-write" | "store-call";
  }
  /** The node's clock jumps forward. */
  | {
    readonly kind: "clock-step";
    readonly atMs: number;
    readonly node: number;
    readonly stepMs: number;
  }
  /** The node loses the bus: everything it sends or would receive meanwhile is lost. */
  | {
    readonly kind: "bus-outage";
    readonly atMs: number;
    readonly node: number;
    readonly durationMs: number;
  }
  /** The node cannot reach the coordinator. */
  | {
    readonly kind: "coord-outage";
    readonly atMs: number;
    readonly node: number;
    readonly durationMs: number;
  }
  /** Every store call of the node takes an extra exponential latency of this mean. */
  | {
    readonly kind: "store-spike";
    readonly atMs: number;
    readonly node: number;
    readonly durationMs: number;
    readonly extraMeanMs: number;
  };

/** The fault presets of `deno task sim --faults`. */
export type FaultPreset = "none" | "swarm" | "network" | "crash" | "partition" | "clock" | "gray";

/** The fault presets, for the CLI. */
export const FAULT_PRESETS: readonly FaultPreset[] = [
  "swarm",
  "none",
  "network",
  "crash",
  "partition",
  "clock",
  "gray",
];

/** The smallest and largest drift bound a seed draws, ppm (the core allows up to 100 000). */
export const DRIFT_PPM_RANGE = [100, 100_000] as const;

/**
 * Draws the drift bound of a seed, log-uniform over {@linkcode DRIFT_PPM_RANGE}: as many
 * seeds between 100 and 1000 ppm as between 1 % and 10 %, where a dropped drift factor
 * costs milliseconds instead of microseconds.
 *
 * @example
 * ```ts
 * import { drawDriftPpm } from "./faults.ts";
 * import { Prng } from "./prng.ts";
 * const ppm = drawDriftPpm(new Prng(1));
 * console.log(ppm >= 100 && ppm <= 100_000); // true
 * ```
 */
export function drawDriftPpm(prng: Prng): number {
  const [low, high] = DRIFT_PPM_RANGE;
  return Math.round(low * Math.pow(high / low, prng.float()));
}

/** A mix with nothing hostile in it. */
export const CALM: FaultMix = {
  lossRate: 0,
  dupRate: 0,
  delayMeanMs: 0.3,
  tailRate: 0,
  tailMeanMs: 0,
  storeLatencyMeanMs: 0.5,
  storeErrorRate: 0,
  timerJitterMs: 0,
  clockOffsetMaxMs: 0,
  drift: false,
};

/** Draws a swarm mix: each kind of fault on or off, with its own rate. */
export function drawMix(prng: Prng, preset: FaultPreset): FaultMix {
  if (preset === "none") return CALM;
  if (preset === "gray") return grayMix(prng);
  const on = (p: number) => preset === "swarm" ? prng.chance(p) : true;
  const net = preset === "swarm" || preset === "network";
  const clock = preset === "swarm" || preset === "clock";
  return {
    lossRate: net && on(0.6) ? prng.range(0, 0.3) : 0,
    dupRate: net && on(0.4) ? prng.range(0, 0.5) : 0,
    delayMeanMs: prng.range(0.1, 2),
    tailRate: net && on(0.5) ? prng.range(0, 0.2) : 0,
    tailMeanMs: prng.range(5, 150),
    storeLatencyMeanMs: prng.range(0.2, 5),
    storeErrorRate: preset === "swarm" && on(0.3) ? prng.range(0, 0.05) : 0,
    timerJitterMs: on(0.5) ? prng.range(0, 5) : 0,
    clockOffsetMaxMs: clock && on(0.7) ? prng.range(0, 100_000) : 0,
    drift: clock ? on(0.8) : false,
  };
}

/** A gray mix: messages lost, duplicated and late, a slow and sometimes failing store. */
function grayMix(prng: Prng): FaultMix {
  return {
    lossRate: prng.range(0.01, 0.3),
    dupRate: prng.chance(0.6) ? prng.range(0, 0.5) : 0,
    delayMeanMs: prng.range(0.1, 2),
    tailRate: prng.chance(0.7) ? prng.range(0, 0.2) : 0,
    tailMeanMs: prng.range(5, 150),
    storeLatencyMeanMs: prng.range(0.2, 5),
    storeErrorRate: prng.chance(0.4) ? prng.range(0, 0.05) : 0,
    timerJitterMs: prng.chance(0.5) ? prng.range(0, 5) : 0,
    clockOffsetMaxMs: prng.chance(0.7) ? prng.range(0, 100_000) : 0,
    drift: prng.chance(0.8),
  };
}

/** How many of each discrete fault a schedule draws. */
function counts(prng: Prng, preset: FaultPreset): Record<Fault["kind"], number> {
  const n = (max: number, p = 0.6) => (prng.chance(p) ? prng.int(1, max) : 0);
  const none = { "store-spike": 0 };
  switch (preset) {
    case "none":
    case "network":
      return {
        partition: 0,
        clog: preset === "network" ? n(3) : 0,
        crash: 0,
        pause: 0,
        "clock-step": 0,
        "bus-outage": 0,
        "coord-outage": 0,
        ...none,
      };
    case "crash":
      return {
        partition: 0,
        clog: 0,
        crash: n(3, 1),
        pause: n(3, 1),
        "clock-step": 0,
        "bus-outage": 0,
        "coord-outage": 0,
        ...none,
      };
    case "partition":
      return {
        partition: n(4, 1),
        clog: n(2),
        crash: 0,
        pause: 0,
        "clock-step": 0,
        "bus-outage": n(2),
        "coord-outage": n(2),
        ...none,
      };
    case "clock":
      return {
        partition: 0,
        clog: 0,
        crash: 0,
        pause: n(2),
        "clock-step": n(4, 1),
        "bus-outage": 0,
        "coord-outage": 0,
        ...none,
      };
    case "swarm":
      return {
        partition: n(3),
        clog: n(3),
        crash: n(2),
        pause: n(2),
        "clock-step": n(2),
        "bus-outage": n(2),
        "coord-outage": n(2),
        ...none,
      };
    case "gray":
      return {
        partition: 0,
        clog: n(2, 0.4),
        crash: 0,
        pause: prng.int(2, 6),
        "clock-step": 0,
        "bus-outage": n(1, 0.3),
        "coord-outage": prng.int(1, 3),
        "store-spike": prng.int(1, 3),
      };
  }
}

/** Directed links between two groups of nodes, both ways unless `oneWay`. */
function cut(a: readonly number[], b: readonly number[], oneWay = false): [number, number][] {
  const links: [number, number][] = [];
  for (const x of a) {
    for (const y of b) {
      links.push([x, y]);
      if (!oneWay) links.push([y, x]);
    }
  }
  return links;
}

function shuffled(prng: Prng, n: number): number[] {
  const items = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = prng.int(0, i);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** The partitions a schedule may draw: isolate one, split, one-way, overlapping, swizzle. */
function drawPartition(prng: Prng, nodes: number, atMs: number, durationMs: number): Fault[] {
  const order = shuffled(prng, nodes);
  const kind = prng.pick(["isolate", "split", "one-way", "overlap", "swizzle"] as const);
  const majority = Math.floor(nodes / 2) + 1;
  const partition = (
    links: [number, number][],
    label: string,
    at = atMs,
    d = durationMs,
  ): Fault => ({
    kind: "partition",
    atMs: at,
    durationMs: d,
    links,
    label,
  });
  switch (kind) {
    case "isolate":
      return [partition(cut([order[0]!], order.slice(1)), `isolate n${order[0]}`)];
    case "split":
      return [partition(cut(order.slice(0, majority), order.slice(majority)), "majority/minority")];
    case "one-way":
      return [partition(cut([order[0]!], order.slice(1), true), `one-way from n${order[0]}`)];
    case "overlap": {
      // Two majorities that share a bridge node: each side hears the bridge, not the other.
      if (nodes < 3) return [];
      const bridge = order[0]!;
      const rest = order.slice(1);
      const half = Math.ceil(rest.length / 2);
      return [
        partition(
          cut(rest.slice(0, half), rest.slice(half)),
          `overlapping majorities via n${bridge}`,
        ),
      ];
    }
    case "swizzle": {
      // Cut nodes off one by one, then heal them in a random order.
      const healOrder = shuffled(prng, nodes);
      const step = durationMs / (2 * nodes);
      return order.map((node, i) => {
        const start = atMs + i * step;
        const end = atMs + durationMs / 2 + healOrder.indexOf(node) * step;
        return partition(
          cut([node], order.filter((x) => x !== node)),
          `swizzle n${node}`,
          start,
          Math.max(1, end - start),
        );
      });
    }
  }
}

/**
 * Draws a schedule of discrete faults, all ending before `safetyMs`.
 *
 * @example
 * ```ts
 * import { drawSchedule } from "./faults.ts";
 * import { Prng } from "./prng.ts";
 * const faults = drawSchedule(new Prng(1), "partition", 5, 2000);
 * console.log(faults.every((f) => f.atMs < 2000)); // true
 * ```
 */
export function drawSchedule(
  prng: Prng,
  preset: FaultPreset,
  nodes: number,
  safetyMs: number,
): Fault[] {
  const faults: Fault[] = [];
  const c = counts(prng, preset);
  const window = (maxMs: number) => drawWindow(prng, maxMs, safetyMs);
  for (let i = 0; i < c.partition; i++) {
    const w = window(safetyMs / 2);
    faults.push(...drawPartition(prng, nodes, w.atMs, w.durationMs));
  }
  for (let i = 0; i < c.clog; i++) {
    const w = window(safetyMs / 3);
    const from = prng.int(0, nodes - 1);
    faults.push({
      kind: "clog",
      ...w,
      from,
      to: (from + prng.int(1, nodes - 1)) % nodes,
      extraMs: prng.range(5, 300),
    });
  }
  for (let i = 0; i < c.crash; i++) {
    const w = window(safetyMs / 3);
    faults.push({
      kind: "crash",
      atMs: w.atMs,
      node: prng.int(0, nodes - 1),
      downMs: w.durationMs,
    });
  }
  for (let i = 0; i < c.pause; i++) {
    if (preset === "gray") {
      faults.push(drawPause(prng, nodes, safetyMs));
      continue;
    }
    const w = window(safetyMs / 3);
    faults.push({ kind: "pause", ...w, node: prng.int(0, nodes - 1) });
  }
  for (let i = 0; i < c["clock-step"]; i++) {
    faults.push({
      kind: "clock-step",
      atMs: prng.range(0, safetyMs),
      node: prng.int(0, nodes - 1),
      stepMs: prng.range(1, 5000),
    });
  }
  for (let i = 0; i < c["bus-outage"]; i++) {
    faults.push({ kind: "bus-outage", ...window(safetyMs / 3), node: prng.int(0, nodes - 1) });
  }
  for (let i = 0; i < c["coord-outage"]; i++) {
    faults.push({ kind: "coord-outage", ...window(safetyMs / 3), node: prng.int(0, nodes - 1) });
  }
  for (let i = 0; i < c["store-spike"]; i++) faults.push(drawStoreSpike(prng, nodes, safetyMs));
  return faults.sort((a, b) => a.atMs - b.atMs);
}

/** A fault's start and length, ending before the safety phase does. */
function drawWindow(
  prng: Prng,
  maxMs: number,
  safetyMs: number,
): { atMs: number; durationMs: number } {
  const durationMs = prng.range(10, Math.min(maxMs, safetyMs * 0.6));
  const atMs = prng.range(0, safetyMs - durationMs - 1);
  return { atMs, durationMs };
}

/**
 * A pause, mostly started by the node's next coordinator or store call (a call in flight
 * across a pause is where a stale answer hides), mostly short.
 */
function drawPause(prng: Prng, nodes: number, safetyMs: number): Fault {
  const w = drawWindow(prng, safetyMs / 3, safetyMs);
  const durationMs = prng.chance(0.5) ? prng.range(1, 60) : w.durationMs;
  const node = prng.int(0, nodes - 1);
  const trigger = prng.float();
  if (trigger < 0.2) return { kind: "pause", atMs: w.atMs, durationMs, node };
  const after = trigger < 0.7 ? "coord-call" : "store-call";
  return { kind: "pause", atMs: w.atMs, durationMs, node, after };
}

function drawStoreSpike(prng: Prng, nodes: number, safetyMs: number): Fault {
  return {
    kind: "store-spike",
    ...drawWindow(prng, safetyMs / 3, safetyMs),
    node: prng.int(0, nodes - 1),
    extraMeanMs: prng.range(5, 200),
  };
}

/**
 * What swarm seeds draw beyond the classic swarm (from their own stream, so the classic
 * part of a seed, and the regression seeds pinned on it, stay as they were): a third of
 * seeds turn gray — lossy and paused at once, with coordinator outages and store spikes,
 * the combination no other preset makes — and the rest get a few triggered pauses and
 * store spikes. The mix is returned with the rates a gray seed raises.
 *
 * @example
 * ```ts
 * import { CALM, drawSwarmExtras } from "./faults.ts";
 * import { Prng } from "./prng.ts";
 * const { faults } = drawSwarmExtras(new Prng(2), CALM, 5, 2000);
 * console.log(faults.every((f) => f.atMs < 2000)); // true
 * ```
 */
export function drawSwarmExtras(
  prng: Prng,
  mix: FaultMix,
  nodes: number,
  safetyMs: number,
): { mix: FaultMix; faults: Fault[] } {
  const faults: Fault[] = [];
  const gray = prng.chance(1 / 3);
  const pauses = gray ? prng.int(2, 5) : prng.chance(0.5) ? prng.int(1, 2) : 0;
  for (let i = 0; i < pauses; i++) faults.push(drawPause(prng, nodes, safetyMs));
  const spikes = gray ? prng.int(1, 2) : prng.chance(0.25) ? 1 : 0;
  for (let i = 0; i < spikes; i++) faults.push(drawStoreSpike(prng, nodes, safetyMs));
  if (!gray) return { mix, faults: faults.sort((a, b) => a.atMs - b.atMs) };
  for (let i = prng.int(1, 3); i > 0; i--) {
    faults.push({
      kind: "coord-outage",
      ...drawWindow(prng, safetyMs / 3, safetyMs),
      node: prng.int(0, nodes - 1),
    });
  }
  const raised = {
    ...mix,
    lossRate: mix.lossRate > 0 ? mix.lossRate : prng.range(0.01, 0.3),
    dupRate: mix.dupRate > 0 || !prng.chance(0.5) ? mix.dupRate : prng.range(0, 0.5),
    tailRate: mix.tailRate > 0 || !prng.chance(0.5) ? mix.tailRate : prng.range(0, 0.2),
  };
  return { mix: raised, faults: faults.sort((a, b) => a.atMs - b.atMs) };
}

/**
 * A seed's fault mix and schedule as a preset draws them. Swarm seeds add their extras
 * ({@linkcode drawSwarmExtras}) after the classic schedule, so the classic faults keep
 * their indices (a shrunk run's path names them); `classic` leaves the extras out.
 *
 * @example
 * ```ts
 * import { drawFaults } from "./faults.ts";
 * const classic = drawFaults(7, "swarm", 5, 2000, true);
 * const full = drawFaults(7, "swarm", 5, 2000);
 * console.log(full.schedule.slice(0, classic.schedule.length).length === classic.schedule.length); // true
 * ```
 */
export function drawFaults(
  seed: number,
  preset: FaultPreset,
  nodes: number,
  safetyMs: number,
  classic = false,
): { mix: FaultMix; schedule: Fault[] } {
  const prng = new Prng(deriveSeed(seed >>> 0, "faults"));
  const drawn = drawMix(prng, preset);
  const schedule = drawSchedule(prng, preset, nodes, safetyMs);
  if (classic) return { mix: drawn, schedule };
  const mix = drawCoordinatorFaults(
    new Prng(deriveSeed(seed >>> 0, "faults-coord")),
    drawn,
    preset,
  );
  if (preset !== "swarm") return { mix, schedule };
  const extra = new Prng(deriveSeed(seed >>> 0, "faults-extra"));
  const extras = drawSwarmExtras(extra, mix, nodes, safetyMs);
  return { mix: extras.mix, schedule: [...schedule, ...extras.faults] };
}

/**
 * The coordinator's own faults, from their own stream (so the classic draws stay as they
 * were): reads answered from an older state and answers lost after the call took effect.
 * Swarm seeds draw each with some probability, gray seeds always, the coordinator-facing
 * presets (partition, crash) often. Any mix takes them (the lock scenario's too).
 *
 * @example
 * ```ts
 * import { CALM, drawCoordinatorFaults } from "./faults.ts";
 * import { Prng } from "./prng.ts";
 * const mix = drawCoordinatorFaults(new Prng(3), CALM, "gray");
 * console.log(mix.coordStaleRate! > 0); // true
 * ```
 */
export function drawCoordinatorFaults<M extends CoordinatorFaultRates>(
  prng: Prng,
  mix: M,
  preset: FaultPreset,
): M {
  const p = preset === "gray" ? 1 : preset === "swarm" ? 0.5 : preset === "partition" ||
      preset === "crash"
    ? 0.7
    : 0;
  const stale = prng.chance(p);
  const lost = prng.chance(p * 0.8);
  return {
    ...mix,
    coordStaleRate: stale ? prng.range(0.01, 0.5) : 0,
    coordStaleMaxMs: stale ? prng.range(5, 400) : 0,
    coordReplyLossRate: lost ? prng.range(0.005, 0.1) : 0,
  };
}
