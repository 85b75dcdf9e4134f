/**
 * Warp's NATS adapters: {@linkcode NatsTransport}, the message bus between nodes over core
 * NATS, and {@linkcode NatsKvCoordinator}, the compare-and-set coordinator over JetStream
 * KV. A separate entry point, so importing Warp's core never pulls in a NATS client.
 *
 * Both take nats.js connection options passed through unchanged (servers, `user`/`pass`,
 * `token`, `tls`, an `authenticator`: the nats.js authenticators for creds files, nkeys,
 * JWTs, tokens and passwords are re-exported here), or a connection you made.
 *
 * @example A transport and a coordinator on one connection
 * ```ts ignore
 * import { NatsKvCoordinator, NatsTransport } from "@warp/warp/nats";
 *
 * const transport = await NatsTransport.connect({ servers: "127.0.0.1:4222" });
 * const coordinator = await NatsKvCoordinator.create(transport.connection, { bucket: "warp" });
 * // ... hand both to Warp ...
 * await coordinator.close();
 * await transport.close();
 * ```
 *
 * @module
 */

export * from "./transport.ts";
export * from "./coordinator.ts";
export { NATS_SERVER_VERSION_MIN } from "./_connect.ts";
// The authenticators of nats.js, so that credentials need no dependency of your own.
export {
  credsAuthenticator,
  jwtAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/transport-node";
