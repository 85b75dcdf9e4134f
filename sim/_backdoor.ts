/**
 * Private: writes behind Warp's back, so that the validator has real inconsistencies to
 * count and heal (V1). Keys `bd:0`…`bd:2` are registered eventual-distributed on every node
 * (a short staleness bound, 100 ms, and a TTL of 1 s, which sessions let an entry reach);
 * the nodes only read them, and another application writes the store directly: no
 * invalidation is sent, so a node keeps serving its old entry past the bound until the
 * validator finds it, counts it and heals it (or the TTL ends it).
 *
 * These keys are outside the history's `keys` on purpose: a write behind Warp's back is
 * outside the contract, so E1–E4 do not judge them. Only V1 does, with the bounds this
 * module registered (`bounds`), and the store log records each write with its true time.
 *
 * Design: its own random stream, and off unless asked (`SimOptions.backdoor`), so that no
 * other draw moves. Rejected: writing an ordinary workload key behind Warp's back — every
 * value guarantee of that key would then fail, as it should.
 *
 * @module
 */

import type { NodeCore } from "../src/core/node.ts";
import type { Prng } from "./prng.ts";

/** The keys written behind Warp's back. */
export const BACKDOOR_KEYS: readonly string[] = ["bd:0", "bd:1", "bd:2"];
/** Their staleness bound, ms. */
const BOUND_MS = 100;
/** How often the workload acts, ms of true time. */
const STEP_MS = 5;
/** The share of its actions that write the store; the others read on a node. */
const WRITE_SHARE = 0.15;

/** What the workload needs of the cluster. */
export interface BackdoorHost {
  /** True time now. */
  now(): number;
  /** Schedules `run` at true time `atMs`. */
  at(atMs: number, run: () => void): void;
  /** Whether the workload still runs (the cluster is issuing operations). */
  issuing(): boolean;
  /** Number of nodes. */
  readonly nodes: number;
  /** Reads `key` on node `index` through its core (a miss fills L1), if it runs. */
  read(index: number, key: string): void;
  /** Writes `value` to the store directly, logged in the store log; returns its version. */
  writeStore(key: string, value: string): number;
}

/** The writes behind Warp's back of one run. */
export class Backdoor {
  readonly #host: BackdoorHost;
  readonly #prng: Prng;
  #writes = 0;

  /** A workload on `host`, drawing on `prng`. */
  constructor(host: BackdoorHost, prng: Prng) {
    this.#host = host;
    this.#prng = prng;
  }

  /** Registers the keys on a node's core. */
  register(core: NodeCore): void {
    core.register("bd:*", { mode: "eventual-distributed", maxStalenessMs: BOUND_MS, ttlMs: 1000 });
  }

  /** The keys' bounds, for V1. */
  bounds(): Record<string, number> {
    return Object.fromEntries(BACKDOOR_KEYS.map((key) => [key, BOUND_MS]));
  }

  /** Starts acting, every `STEP_MS`, while the cluster issues operations. */
  start(): void {
    this.#host.at(this.#host.now() + STEP_MS, () => this.#step());
  }

  #step(): void {
    const host = this.#host;
    if (!host.issuing()) return;
    const key = BACKDOOR_KEYS[this.#prng.int(0, BACKDOOR_KEYS.length - 1)]!;
    if (this.#prng.chance(WRITE_SHARE)) host.writeStore(key, `bd-${++this.#writes}`);
    else host.read(this.#prng.int(0, host.nodes - 1), key);
    host.at(host.now() + STEP_MS, () => this.#step());
  }
}
