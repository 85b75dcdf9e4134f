/**
 * Test helper: a TCP server on 127.0.0.1 that accepts connections and never says a word,
 * the worst case for a client's connect (an unroutable host fails the TCP handshake, which
 * a client can time out; this one completes it and then hangs the protocol's greeting).
 *
 * @module
 */

/** A listening socket that accepts and stays silent. */
export interface SilentServer {
  readonly port: number;
  /** `scheme://127.0.0.1:port` (with a user for PostgreSQL). */
  url(scheme: "postgres" | "redis"): string;
  /** Stops listening and closes every connection it accepted. */
  close(): Promise<void>;
}

/** Starts a {@linkcode SilentServer} on a free port. */
export function silentServer(): SilentServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const connections: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) connections.push(conn);
    } catch {
      // Closed.
    }
  })();
  return {
    port,
    url: (scheme) =>
      scheme === "postgres"
        ? `postgres://postgres@127.0.0.1:${port}/test`
        : `redis://127.0.0.1:${port}`,
    async close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch {
          // Closed by the client.
        }
      }
      await accepting;
    },
  };
}
