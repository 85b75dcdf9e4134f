/**
 * Helpers for the unit tests of `NodeCore` and its protocol modules: a node with one key
 * pattern per mode, and the few inputs most tests feed it.
 *
 * @module
 */

import type { Effect } from "../src/core/effects.ts";
import { NodeCore } from "../src/core/node.ts";
import type { NodeConfig } from "../src/core/node.ts";
import { only } from "./_effects.ts";

/**
 * A started node (its first tick done, its effects taken) with drift 1000 ppm and
 * `local:*` strong-local (TTL 1 s), `ev:*` eventual (staleness 500 ms) and `st:*`
 * strong-distributed (lease 1 s, write deadline 3 s).
 *
 * @example
 * ```ts
 * import { testNode } from "./_node_core.ts";
 * console.log(testNode("b").policyOf("ev:1")?.mode); // "eventual-distributed"
 * ```
 */
export function testNode(id = "a", options: Partial<NodeConfig> = {}): NodeCore {
  const n = new NodeCore({ nodeId: id, incarnation: 1, maxDriftPpm: 1000, ...options });
  n.register("local:*", { mode: "strong-local", ttlMs: 1000 });
  n.register("ev:*", { mode: "eventual-distributed", ttlMs: 60_000, maxStalenessMs: 500 });
  n.register("st:*", {
    mode: "strong-distributed",
    ttlMs: 60_000,
    leaseMs: 1000,
    writeTimeoutMs: 3000,
  });
  n.tick(0);
  n.takeEffects();
  return n;
}

/**
 * What a caller writes: the string as value and payload, its length as size.
 *
 * @example
 * ```ts
 * import { writeInput } from "./_node_core.ts";
 * console.log(writeInput("ada").sizeBytes); // 3
 * ```
 */
export function writeInput(v: string): { value: string; payload: string; sizeBytes: number } {
  return { value: v, payload: v, sizeBytes: v.length };
}

/**
 * A successful store read of `v` at `version`.
 *
 * @example
 * ```ts
 * import { storeRead } from "./_node_core.ts";
 * console.log(storeRead("v", 3).version); // 3
 * ```
 */
export function storeRead(v: string, version: number) {
  return { ok: true as const, found: true, value: v, version, sizeBytes: v.length };
}

/**
 * Writes through a local or eventual key, answering the store write with `version`;
 * returns the effects of the answer.
 *
 * @example
 * ```ts
 * import { testNode, writeThrough } from "./_node_core.ts";
 * const n = testNode();
 * writeThrough(n, 1, "local:1", "x", 1, 100);
 * console.log(n.hit("local:1", 101)?.value); // "x"
 * ```
 */
export function writeThrough(
  n: NodeCore,
  op: number,
  key: string,
  v: string,
  version: number,
  now: number,
): Effect[] {
  n.set(op, key, writeInput(v), now);
  const w = only(n.takeEffects(), "store-write");
  n.onStoreWrite(w.io, { ok: true, version }, now);
  return n.takeEffects();
}
