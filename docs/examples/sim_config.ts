/**
 * A Warp configuration kept in a module of its own: the registrations and node options
 * every node of a service passes to Warp, and the simulator fuzzes.
 *
 * Every node of the service:
 *
 * ```ts ignore
 * import { config } from "./sim_config.ts";
 * const warp = new Warp({ ...config, store, transport, coordinator });
 * ```
 *
 * The simulator, on a cluster of five nodes configured so, under faults (needs nothing
 * running):
 *
 * ```sh
 * npx -y deno@2 task sim --config docs/examples/sim_config.ts --seeds 200
 * ```
 *
 * @module
 */

import type { WarpConfig } from "../../mod.ts";

/** The configuration of every node. */
export const config = {
  maxDriftPpm: 1000,
  heartbeatIntervalMs: 100,
  gapTimeoutMs: 300,
  leaseCheckMs: 300,
  // A node's standing in the cluster, renewed every third of it: entries live to their TTL,
  // and a write waits at most about this long for a holder that stopped answering.
  sessionMs: 1000,
  keys: {
    // One session: read on every request, written at login; 500 ms of staleness is fine.
    "session:*": { mode: "eventual-distributed", ttlMs: 60_000, maxStalenessMs: 500 },
    // The index of a user's sessions: a write is seen at once by every node.
    "user-sessions:*": { mode: "strong-distributed", leaseMs: 400, writeTimeoutMs: 2000 },
    // A shopping cart, only ever written by the node that serves its user.
    "cart:*": { mode: "strong-local", ttlMs: 2000 },
    // One exact key: the site's settings.
    "config:site": { mode: "strong-distributed", leaseMs: 400, writeTimeoutMs: 2000 },
  },
} satisfies WarpConfig;
