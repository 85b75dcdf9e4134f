/**
 * How the NATS adapters connect: credentials passed through unchanged to both
 * `NatsTransport.connect` and `NatsKvCoordinator.connect` (user and password, token, an
 * nkey through its authenticator), and the coordinator's check of the server (its version,
 * JetStream on the server, JetStream for the account), each failing with a message naming
 * what is missing. Private nats-servers on free ports, stopped by PID.
 *
 * @module
 */

import assert from "node:assert/strict";
import { nkeys } from "@nats-io/transport-node";
import { NatsKvCoordinator, NatsTransport, nkeyAuthenticator } from "../src/nats/mod.ts";
import { natsServerProblem } from "../src/nats/_connect.ts";
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
  // A connect the server refuses can leave nats.js's socket to report ECONNRESET after the
  // connect promise has rejected, outside any promise (seen 2 runs in about 10 on a loaded
  // machine). Such a late reset of a refused connection is absorbed here, and only that.
  const lateResets = (event: ErrorEvent) => {
    if ((event.error as { code?: unknown } | undefined)?.code === "ECONNRESET") {
      event.preventDefault();
    }
  };
  globalThis.addEventListener("error", lateResets);
  try {
    await credentialsPassThrough();
  } finally {
    await new Promise((resolve) => setTimeout(resolve, 200));
    globalThis.removeEventListener("error", lateResets);
  }
});

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
