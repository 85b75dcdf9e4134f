/**
 * Private: how Warp's NATS adapters open a connection of their own, and what they check
 * of the server before they rely on it.
 *
 * @module
 */

import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import { connectNodeTransport } from "./_node_transport.ts";

/**
 * Warp's defaults over nats.js's: reconnect forever, soon, with jitter, under the name
 * `warp`. Every other option (servers, credentials and authenticators, TLS) passes through
 * unchanged.
 */
export const CONNECT_DEFAULTS: NodeConnectionOptions = {
  maxReconnectAttempts: -1,
  reconnectTimeWait: 250,
  reconnectJitter: 100,
  name: "warp",
};

/**
 * Connects with {@linkcode CONNECT_DEFAULTS} under `options`, through nats.js's TCP
 * transport made to keep an `error` listener on its socket (see `_node_transport.ts`: without
 * it, a server refusing the credentials could crash the process with a late `ECONNRESET`).
 */
export function connectNats(options: NodeConnectionOptions): Promise<NatsConnection> {
  return connectNodeTransport({ ...CONNECT_DEFAULTS, ...options });
}

/** The oldest nats-server the coordinator runs on: KV buckets with `allow_direct` (2.9.0). */
export const NATS_SERVER_VERSION_MIN = "2.9.0";

/**
 * The oldest nats-server whose replicated streams decide a compare-and-set (KV `create`,
 * `update` with a revision) once: before 2.9.21, concurrent writes expecting the same
 * revision could all succeed on a clustered stream, the expected-sequence check being a
 * check by the leader before the write went through consensus (nats-server #4320, fixed by
 * #4319). Measured here on 2.9.10 with three servers: two or more of six concurrent
 * compare-and-sets at one revision succeeded in 299 rounds of 300 on an R3 bucket, in none
 * on an R1 bucket; Warp's locks then granted one lock to two holders at once.
 */
export const NATS_SERVER_VERSION_MIN_REPLICATED = "2.9.21";

/**
 * Why the server a connection reached cannot host the coordinator's KV buckets with
 * `replicas` replicas, as the start of an error message naming what is missing;
 * `undefined` when it can. Reads the server's INFO (its version, whether JetStream is
 * enabled); whether the connection's account may use JetStream is only learnt by asking
 * it. Only the server the connection reached is checked: a cluster being upgraded may run
 * older servers elsewhere.
 */
export function natsServerProblem(
  info: { readonly version?: string; readonly jetstream?: boolean } | undefined,
  replicas = 1,
): string | undefined {
  if (info === undefined) return "No server information (is the connection closed?)";
  const version = info.version ?? "unknown";
  if (!atLeast(version, NATS_SERVER_VERSION_MIN)) {
    return `Coordinator needs nats-server ${NATS_SERVER_VERSION_MIN} or later for its KV buckets, this one is ${version}`;
  }
  if (replicas > 1 && !atLeast(version, NATS_SERVER_VERSION_MIN_REPLICATED)) {
    return `Coordinator with replicated buckets (replicas ${replicas}) needs nats-server ` +
      `${NATS_SERVER_VERSION_MIN_REPLICATED} or later: earlier servers let concurrent ` +
      `compare-and-sets at one revision all succeed on a clustered stream (nats-server ` +
      `#4320), this one is ${version}`;
  }
  if (info.jetstream !== true) {
    return `Coordinator needs JetStream, which this nats-server ${version} has disabled (start it with -js)`;
  }
  return undefined;
}

/** Whether dotted version `version` is at least `min` (numerically, part by part). */
function atLeast(version: string, min: string): boolean {
  const parts = (text: string) => text.split(/[.-]/, 3).map((part) => Number.parseInt(part, 10));
  const have = parts(version), need = parts(min);
  for (let i = 0; i < 3; i++) {
    const h = have[i] ?? 0, n = need[i]!;
    if (!Number.isFinite(h)) return false;
    if (h !== n) return h > n;
  }
  return true;
}
