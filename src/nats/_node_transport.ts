/**
 * Private: nats.js's TCP transport with one defect worked around, a socket left without an
 * `error` listener while an error may still be emitted on it.
 *
 * The defect, in `@nats-io/transport-node` 3.4.0 (`transport-node/src/node_transport.ts`,
 * `_closed()` lines 474–475 and `discard()` lines 401–402 at nats-io/nats.js 3a7b736b, the
 * same in the published `lib/node_transport.js` lines 421–422 and 349–350): when the client
 * gives up a connection it calls `socket.removeAllListeners()` and then `socket.destroy()`.
 * If the socket has just failed, node:net has already called `destroy(error)` and emits that
 * `error` a little later (Node: on the next tick; Deno: once the handle has closed, 0.5 to 2
 * ms later here); with no listener left, the emit throws outside any promise and ends the
 * process, under Node and Deno alike (the test in `test/nats_connect_test.ts` makes that
 * order certain). A refused connect meets it by chance: nats-server reads `CONNECT`, writes
 * `-ERR 'Authorization Violation'` and closes; the client's `PING`, written separately, then
 * meets a reset, so the client reads the `-ERR` and next fails with `read ECONNRESET`, while
 * nats.js, rejecting the connect on the `-ERR`, strips the listeners. Measured with loops of
 * 200 refused connects on a private server: under Deno 2.9.6, 2 to 129 uncaught resets per
 * loop, depending on load; under Node 20.20, none in 1,000 (its later I/O callback
 * delivers the reset after nats.js has destroyed the socket without an error). No nats.js
 * issue names it; the fix there is to keep an `error` listener on the socket it gives up.
 *
 * Design chosen: a `NodeTransport` subclass whose {@linkcode setupHandlers} (the moment the
 * final socket gets nats.js's handlers) makes the socket keep a listener that ignores late
 * errors through any `removeAllListeners()`. Ignoring them is right: nats.js has already
 * given the socket up and reported why (the `-ERR`, a close). Installed through nats.js's
 * own plug-in point, `setTransportFactory`, by {@linkcode connectNodeTransport}.
 *
 * Alternatives rejected: a process-wide `error`/`uncaughtException` handler (a library must
 * not swallow its user's errors); patching `NodeTransport.prototype` (changes every
 * connection in the process behind its owner's back); adding the listener after
 * `close()`/`discard()` return (`disconnect()` strips the listeners only after an `await`,
 * so a listener added when the call returns is too early, and one added on `closed()` may be
 * too late).
 *
 * Limits: the factory is global to nats.js. A connection opened later with nats.js's own
 * `connect` installs the plain transport again, so Warp's connections that dial (reconnect)
 * after that are unguarded until Warp connects again; and connections the user opened with
 * nats.js's `connect` get the guarded transport when they redial after Warp connects
 * (harmless: the same transport, one listener more). The few microtasks between reading the
 * server's INFO and {@linkcode setupHandlers} stay as nats.js has them.
 *
 * @module
 */

import {
  connect,
  hasWsProtocol,
  NatsConnectionImpl,
  setTransportFactory,
} from "@nats-io/transport-node";
import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import { nodeResolveHost, NodeTransport } from "@nats-io/transport-node/lib/node_transport.js";

/** Sockets already made to keep a listener, so that one is patched once. */
const keeping = new WeakSet<object>();

/** The listener left on a socket nats.js has given up: its late errors are already told. */
function ignoreLateError(_error: unknown): void {}

/**
 * Makes `socket` keep an `error` listener: one now if it has none, and one again after every
 * `removeAllListeners()` that takes its `error` listeners away.
 */
export function keepErrorListener(socket: NodeTransport["socket"] | undefined): void {
  if (socket === undefined || keeping.has(socket)) return;
  keeping.add(socket);
  const removeAll = socket.removeAllListeners;
  // The arguments pass through as they came: node:events tells "remove all" by their count.
  socket.removeAllListeners = function (this: typeof socket, ...event: [] | [string | symbol]) {
    removeAll.apply(this, event);
    if (event.length === 0 || event[0] === "error") this.on("error", ignoreLateError);
    return this;
  };
  if (socket.listenerCount("error") === 0) socket.on("error", ignoreLateError);
}

/** nats.js's TCP transport whose socket never loses its last `error` listener. */
export class KeepErrorListenerTransport extends NodeTransport {
  override setupHandlers(): void {
    super.setupHandlers();
    keepErrorListener(this.socket);
  }
}

/**
 * Connects as nats.js's `connect` from `@nats-io/transport-node` does, with
 * {@linkcode KeepErrorListenerTransport} as the transport. WebSocket URLs go to nats.js's
 * `connect`, which refuses them.
 */
export function connectNodeTransport(options: NodeConnectionOptions): Promise<NatsConnection> {
  if (hasWsProtocol(options)) return connect(options);
  setTransportFactory({
    factory: () => new KeepErrorListenerTransport(),
    dnsResolveFn: nodeResolveHost,
  });
  return NatsConnectionImpl.connect(options);
}
