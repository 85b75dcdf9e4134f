/**
 * The configuration of a Warp node as one plain object: its registrations (`keys`) and
 * its node options, without the I/O (store, transport, coordinator) or the identity. An
 * application keeps it in a module of its own and passes it to every node,
 * `new Warp({ ...config, store, transport, coordinator })`; `deno task sim --config FILE`
 * imports the same module and fuzzes a simulated cluster of that shape.
 *
 * @module
 */

import type { WarpOptions } from "./warp.ts";

/** The options of {@linkcode WarpOptions} that make up a {@linkcode WarpConfig}. */
export const CONFIG_OPTIONS = [
  "keys",
  "maxDriftPpm",
  "heartbeatIntervalMs",
  "gapTimeoutMs",
  "leaseCheckMs",
  "leaseTimeoutMs",
  "sessionMs",
  "coordinatorStalenessMs",
  "ioTimeoutMs",
  "entriesMax",
  "bytesMax",
  "waitersMax",
  "opsMax",
  "peersMax",
  "echoesMax",
  "prefix",
  "codec",
  "validator",
] as const;

/**
 * A node's configuration: the registrations and node options of {@linkcode WarpOptions},
 * the same on every node of a cluster (nodes may differ only where `docs/operations.md`
 * says they may).
 *
 * @example A configuration module, used by the application and by the simulator
 * ```ts
 * import type { WarpConfig } from "./config.ts";
 * import { MemoryStore } from "./store/memory.ts";
 * import { Warp } from "./warp.ts";
 * export const config = {
 *   leaseCheckMs: 500,
 *   keys: {
 *     "session:*": { mode: "eventual-distributed", maxStalenessMs: 500 },
 *     "cart:*": { mode: "strong-local", ttlMs: 30_000 },
 *   },
 * } satisfies WarpConfig;
 * const warp = new Warp({ ...config, store: new MemoryStore() });
 * await warp.set("cart:7", ["apple"]);
 * console.log(await warp.get("cart:7")); // ["apple"]
 * await warp.close();
 * ```
 */
export type WarpConfig = Pick<WarpOptions<unknown>, typeof CONFIG_OPTIONS[number]>;
