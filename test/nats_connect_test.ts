/**
 * How the NATS adapters connect: credentials passed through unchanged to both
 * `NatsTransport.connect` and `NatsKvCoordinator.connect` (user and password, token, an
 * nkey through its authenticator), and the coordinator's check of the server (its version,
 * JetStream on the server, JetStream for the account), each failing with a message naming
 * what is missing, and a refused connect leaving no uncaught error behind (nats.js's late
 * `ECONNRESET`, see `src/nats/_node_transport.ts`). Private nats-servers on free ports, stopped
 * by PID.
 *
 * @module
 */

import assert from "node:assert/strict";
import { nkeys } from "@nats-io/transport-node";
import { NatsKvCoordinator, NatsTransport, nkeyAuthenticator } from "../src/nats/mod.ts";
import { natsServerProblem } from "../src/nats/_connect.ts";
import { KeepErrorListenerTransport } from "../src/nats/_node_transport.ts";
import { NodeTransport } from "@nats-io/transport-node/lib/node_transport.js";
import { PrivateNatsServer } from "./_nats_server.ts";

const UNAVAILABLE = { name: "WarpError", code: "COORDINATOR_UNAVAILABLE" };

async function withServer(
  options: { config?: string; jetstream?: boolean },
  fn: (server: PrivateNatsServer) => Promise<void>,
): Promise<void> {
  const server = await PrivateNatsServer.start(options);
  try {
    await fn(server);
  } finally {
    await server.stop();
  }
}

/** Both adapters work with these options, and a round trip goes through each. */
async function assertBothConnect(options: Record<string, unknown>): Promise<void> {
  const transport = await NatsTransport.connect({ ...options, maxReconnectAttempts: 0 });
  const coordinator = await NatsKvCoordinator.connect({
    ...options,
    maxReconnectAttempts: 0,
    bucket: "auth_test",
  });
  try {
    const revision = await coordinator.create("k", new Uint8Array([1]));
    assert.equal((await coordinator.get("k"))?.revision, revision);
    const got = new Promise<Uint8Array>((resolve) => transport.subscribe("auth.test", resolve));
    await transport.flush();
    transport.publish("auth.test", new Uint8Array([2]));
    assert.deepEqual([...await got], [2]);
  } finally {
    await coordinator.destroy();
    await transport.close();
  }
}

Deno.test("natsServerProblem() names what a server lacks for the coordinator", () => {
  assert.equal(natsServerProblem({ version: "2.9.10", jetstream: true }), undefined);
  assert.equal(natsServerProblem({ version: "2.10.0", jetstream: true }), undefined);
  assert.equal(natsServerProblem({ version: "2.11.0-beta.1", jetstream: true }), undefined);
  assert.match(
    natsServerProblem({ version: "2.8.4", jetstream: true })!,
    /2\.9\.0 or later.*2\.8\.4/,
  );
  assert.match(natsServerProblem({ version: "2.1.0", jetstream: true })!, /2\.9\.0 or later/);
  assert.match(natsServerProblem({ version: "2.9.10", jetstream: false })!, /JetStream.*-js/);
  // Replicated buckets: compare-and-set is decided once only from 2.9.21 (nats-server #4320).
  assert.equal(natsServerProblem({ version: "2.9.10", jetstream: true }, 1), undefined);
  assert.match(
    natsServerProblem({ version: "2.9.10", jetstream: true }, 3)!,
    /replicas 3.*2\.9\.21 or later.*#4320.*2\.9\.10/,
  );
  assert.equal(natsServerProblem({ version: "2.9.21", jetstream: true }, 3), undefined);
  assert.equal(natsServerProblem({ version: "2.10.0", jetstream: true }, 5), undefined);
  assert.match(natsServerProblem({ version: "2.9.10" })!, /JetStream/);
  assert.match(natsServerProblem(undefined)!, /No server information/);
});

Deno.test("NatsKvCoordinator refuses a server without JetStream, naming it", async () => {
  await withServer({ jetstream: false }, async (server) => {
    const version = await serverVersion(server);
    await assert.rejects(NatsKvCoordinator.connect({ servers: server.url }), {
      ...UNAVAILABLE,
      message:
        `Coordinator needs JetStream, which this nats-server ${version} has disabled (start it with -js): nats-server at ${server.url}`,
    });
    // The bus alone needs no JetStream.
    const transport = await NatsTransport.connect({ servers: server.url });
    await transport.close();
  });
});

Deno.test("NatsKvCoordinator refuses an account without JetStream, naming it", async () => {
  const config = `
    jetstream {}
    accounts {
      WITH: { jetstream: enabled, users: [{ user: with, password: w }] }
      WITHOUT: { users: [{ user: without, password: wo }] }
    }`;
  await withServer({ config }, async (server) => {
    await assert.rejects(
      NatsKvCoordinator.connect({
        servers: server.url,
        user: "without",
        pass: "wo",
        timeoutMs: 500,
      }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "COORDINATOR_UNAVAILABLE");
        assert.match(error.message, /^Coordinator needs JetStream for this connection's account/);
        return true;
      },
    );
    await assertBothConnect({ servers: server.url, user: "with", pass: "w" });
  });
});

Deno.test("NATS credentials pass through to both adapters: user and password, token, nkey", async () => {
  await withUncaughtErrorsCounted(async (uncaught) => {
    await credentialsPassThrough();
    await settle();
    assert.deepEqual(uncaught, []);
  });
});

Deno.test("NatsTransport and NatsKvCoordinator leave no uncaught error behind a refused connect", async () => {
  // The server refuses the credentials: it writes -ERR and closes, and the client's PING,
  // sent after CONNECT, then meets a reset. Before the guard in _node_transport.ts, nats.js
  // could leave that reset's ECONNRESET to be emitted on a socket without an error listener,
  // outside any promise (measured here: 1 to 65 refused connects in 100, depending on load).
  await withUncaughtErrorsCounted(async (uncaught) => {
    await withServer(
      { config: "authorization { user: warp, password: s3cret }" },
      async (server) => {
        const refused = { servers: server.url, user: "warp", pass: "no", maxReconnectAttempts: 0 };
        for (let i = 0; i < REFUSED_CONNECTS; i++) {
          const connecting = i % 2 === 0
            ? NatsTransport.connect(refused)
            : NatsKvCoordinator.connect(refused);
          await assert.rejects(connecting, { name: "AuthorizationError" });
        }
        await settle();
      },
    );
    assert.deepEqual(uncaught.map(String), [], `${uncaught.length} of ${REFUSED_CONNECTS}`);
  });
});

Deno.test("KeepErrorListenerTransport keeps an error listener on a socket nats.js gave up, nats.js's own transport does not", async () => {
  // The order that the refused connects above meet by chance, made certain: the socket fails
  // (node:net destroys it with the error and emits that error later), and nats.js closes the
  // transport before the emit. Runs without a NATS server: the peer only sends INFO.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const peers: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      peers.push(conn);
      await conn.write(new TextEncoder().encode('INFO {"server_id":"peer","proto":1}\r\n'));
    }
  })();
  const server = {
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
    tlsName: "",
  };
  /**
   * Uncaught errors after the socket of a connected `transport` fails and nats.js gives the
   * transport up, the ways it does: `close(error)` (a refused connect, `close()`) and
   * `discard()` (the old transport, when a reconnect dials).
   */
  const lateErrors = (transport: NodeTransport, giveUp: "close" | "discard") =>
    withUncaughtErrorsCounted(async (uncaught) => {
      await transport.connect(server, {});
      const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
      transport.socket.destroy(reset);
      if (giveUp === "close") await transport.close(reset);
      else transport.discard();
      await settle();
      return uncaught.length;
    });
  try {
    for (const giveUp of ["close", "discard"] as const) {
      assert.equal(await lateErrors(new KeepErrorListenerTransport(), giveUp), 0, giveUp);
      // The defect this works around, still in nats.js: when this fails, nats.js keeps a
      // listener itself and _node_transport.ts can go.
      assert.equal(await lateErrors(new NodeTransport(), giveUp), 1, giveUp);
    }
  } finally {
    listener.close();
    for (const peer of peers) peer.close();
    await accepting.catch(() => {});
  }
});

/** Refused connects per run: enough that the defect, at its rarest seen (1 in 100), shows. */
const REFUSED_CONNECTS = 400;

/**
 * Runs `fn` with every uncaught error recorded into the array it gets (and kept from ending
 * the test process), so that the test can assert there were none.
 */
async function withUncaughtErrorsCounted<T>(
  fn: (uncaught: unknown[]) => Promise<T>,
): Promise<T> {
  const uncaught: unknown[] = [];
  const record = (event: ErrorEvent) => {
    uncaught.push(event.error);
    event.preventDefault();
  };
  globalThis.addEventListener("error", record);
  try {
    return await fn(uncaught);
  } finally {
    globalThis.removeEventListener("error", record);
  }
}

/** Lets errors already scheduled on closed sockets be emitted (they follow within ms). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 200));
}

async function credentialsPassThrough(): Promise<void> {
  await withServer({ config: "authorization { user: warp, password: s3cret }" }, async (server) => {
    await assertBothConnect({ servers: server.url, user: "warp", pass: "s3cret" });
    await assert.rejects(NatsTransport.connect({ servers: server.url, user: "warp", pass: "no" }));
    await assert.rejects(
      NatsKvCoordinator.connect({ servers: server.url, user: "warp", pass: "no" }),
    );
  });
  await withServer({ config: "authorization { token: t0ken }" }, async (server) => {
    await assertBothConnect({ servers: server.url, token: "t0ken" });
    await assert.rejects(NatsTransport.connect({ servers: server.url, token: "wrong" }));
  });
  const user = nkeys.createUser();
  const config = `authorization { users: [{ nkey: ${user.getPublicKey()} }] }`;
  await withServer({ config }, async (server) => {
    const authenticator = nkeyAuthenticator(user.getSeed());
    await assertBothConnect({ servers: server.url, authenticator });
    const stranger = nkeyAuthenticator(nkeys.createUser().getSeed());
    await assert.rejects(
      NatsKvCoordinator.connect({ servers: server.url, authenticator: stranger }),
    );
  });
}

/** The version a private server reports. */
async function serverVersion(server: PrivateNatsServer): Promise<string> {
  const transport = await NatsTransport.connect({ servers: server.url });
  try {
    return transport.connection.info!.version;
  } finally {
    await transport.close();
  }
}
