/**
 * The pure core of Warp: a sans-I/O state machine per node, for custom runtimes and the
 * simulator. It never reads a clock, draws randomness, arms a timer or performs I/O: every
 * input carries `nowMs` and every output is an {@linkcode Effect} for the driver.
 *
 * @example
 * ```ts
 * import { NodeCore } from "@warp/warp/core";
 * const node = new NodeCore({ nodeId: "a", incarnation: 1 });
 * node.register("user:*", { mode: "eventual-distributed", maxStalenessMs: 500 });
 * node.get(1, "user:1", 0);
 * console.log(node.takeEffects()[0]?.type); // "store-get"
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export * from "./messages.ts";
export * from "./effects.ts";
export * from "./registry.ts";
export * from "./l1.ts";
export * from "./timers.ts";
export * from "./node.ts";
export * from "./events.ts";
export * from "./lock.ts";
export * from "./leases.ts";
export type { SessionMember, SessionNotice, SessionsRecord } from "./_sessions.ts";
export type {
  ValidatorMode,
  ValidatorOptions,
  ValidatorReport,
  ValidatorVerdict,
} from "./_validator.ts";
export * from "./update.ts";
