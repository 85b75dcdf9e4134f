/**
 * Private: how Warp's NATS adapters open a connection of their own, and what they check
 * of the server before they rely on it.
 *
 * @module
 */

import { connect } from "@nats-io/transport-node";
import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";

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

/** Connects with {@linkcode CONNECT_DEFAULTS} under `options`. */
export function connectNats(options: NodeConnectionOptions): Promise<NatsConnection> {
  return connect({ ...CONNECT_DEFAULTS, ...options });
}

/** The oldest nats-server the coordinator runs on: KV buckets with `allow_direct` (2.9.0). */
export const NATS_SERVER_VERSION_MIN = "2.9.0";

/**
 * Why the server a connection reached cannot host the coordinator's KV buckets, as the
 * start of an error message naming what is missing; `undefined` when it can. Reads the
 * server's INFO (its version, whether JetStream is enabled); whether the connection's
 * account may use JetStream is only learnt by asking it.
 */
export function natsServerProblem(
  info: { readonly version?: string; readonly jetstream?: boolean } | undefined,
): string | undefined {
  if (info === undefined) return "No server information (is the connection closed?)";
  const version = info.version ?? "unknown";
  if (!atLeast(version, NATS_SERVER_VERSION_MIN)) {
    return `Coordinator needs nats-server ${NATS_SERVER_VERSION_MIN} or later for its KV buckets, this one is ${version}`;
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
