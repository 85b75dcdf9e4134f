/**
 * Private: the background validator in the cache scenario (V1). Every node runs one in
 * `heal` mode, at rates scaled to the simulator's short runs; this log records what the
 * validators report (their events, drained after every step) and, independently, what
 * their store reads did to L1: the driver reads the node's L1 before and after each such
 * answer, and right after each verdict, so the checker (`checkers/validator.ts`) holds the
 * validator's word against what the node really held.
 *
 * Design: one small class the cluster calls at three points (a node's configuration, the
 * answer of a validator read, the end of a step), so the scenario file only gains those
 * calls. Rejected: reading the installs from the core's own events — a validator that
 * installs unchecked would also be the one to report it.
 *
 * @module
 */

import type { NodeCore } from "../src/core/node.ts";
import type { ValidatorOptions } from "../src/core/mod.ts";
import type { HealInstall, ValidatorHistory, ValidatorVerdictEntry } from "./history.ts";

/**
 * The validator settings of the simulated nodes: heal mode; the runs last seconds and keys
 * are few and hot, so it checks half the invalidations 50 ms after them, samples L1
 * twenty times a second, within 40 store reads a second per node.
 */
export const SIM_VALIDATOR: ValidatorOptions = {
  mode: "heal",
  storeReadsPerS: 40,
  afterInvalidationShare: 0.5,
  samplePerS: 20,
  checkDelayMs: 50,
};

/** What a simulated node is to the log: its id and running core. */
interface LoggedNode {
  readonly id: string;
}

/** The validators' verdicts and installs of one run. */
export class ValidatorLog {
  readonly #verdicts: ValidatorVerdictEntry[] = [];
  readonly #installs: HealInstall[] = [];
  readonly #now: () => number;
  readonly #local: (node: LoggedNode) => number;
  /** Totals of the nodes' reports, summed as nodes crash and at the end. */
  readonly totals: Record<string, number> = {};

  /** A log reading true time from `now` and a node's clock from `local`. */
  constructor(now: () => number, local: (node: LoggedNode) => number) {
    this.#now = now;
    this.#local = local;
  }

  /**
   * Delivers the answer of a validator's store read of `key` (`deliver`), recording the
   * install it made, if any, with the version L1 held just before.
   */
  answer(node: LoggedNode, core: NodeCore, key: string, deliver: () => void): void {
    const before = core.inspect(key);
    deliver();
    const after = core.inspect(key);
    if (after === undefined || after === before) return;
    this.#installs.push({
      process: node.id,
      key,
      version: after.version,
      heldBefore: before?.version ?? null,
      atMs: this.#now(),
    });
  }

  /** Drains the node's events after a step, keeping the validator's verdicts. */
  drain(node: LoggedNode, core: NodeCore): void {
    for (const event of core.takeEvents()) {
      if (event.type !== "validator") continue;
      this.#verdicts.push({
        process: node.id,
        key: event.key,
        verdict: event.verdict,
        cachedVersion: event.cachedVersion,
        storeVersion: event.storeVersion,
        boundMs: event.boundMs,
        atMs: this.#now(),
        heldVersion: core.servable(event.key, this.#local(node))?.version ?? null,
      });
    }
  }

  /** Adds a node's report to `into` (the totals: before a crash loses it). */
  add(core: NodeCore | undefined, into: Record<string, number> = this.totals): void {
    const report = core?.validatorReport();
    if (report === undefined) return;
    for (const [name, value] of Object.entries(report)) {
      if (typeof value === "number") into[name] = (into[name] ?? 0) + value;
    }
    for (const [mark, value] of Object.entries(report.consistentWithin)) {
      const name = `consistentWithin${mark}`;
      into[name] = (into[name] ?? 0) + value;
    }
  }

  /** The history's validator part; `checks` from the run's totals. */
  history(checks: number): ValidatorHistory {
    return { verdicts: [...this.#verdicts], installs: [...this.#installs], checks };
  }
}
