import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { NatsTransport } from "../src/nats/transport.ts";
import type { TransportStatus } from "../src/transport.ts";
import { PrivateNatsServer } from "./_nats_server.ts";

const NATS_URL = Deno.env.get("WARP_TEST_NATS_URL") ?? "127.0.0.1:4222";
const RUN = `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

Deno.test("NatsTransport.publish() reaches subscribers, the publisher included", async () => {
  const a = await NatsTransport.connect({ servers: NATS_URL });
  const b = await NatsTransport.connect({ servers: NATS_URL });
  try {
    const subject = `warp.${RUN}.echo.all`;
    const seenByA: string[] = [];
    const seenByB: string[] = [];
    a.subscribe(subject, (data) => seenByA.push(text(data)));
    b.subscribe(subject, (data) => seenByB.push(text(data)));
    await a.flush();
    await b.flush();
    a.publish(subject, bytes("one"));
    a.publish(subject, bytes("two"));
    await a.flush();
    await waitFor("both subscribers", () => seenByA.length === 2 && seenByB.length === 2);
    assert.deepEqual(seenByA, ["one", "two"]);
    assert.deepEqual(seenByB, ["one", "two"]);
    assert.equal(a.stats.published, 2);
    assert.equal(a.stats.received, 2);
    assert.equal(b.stats.received, 2);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("NatsTransport.subscribe() keeps delivering after a handler throws", async () => {
  const transport = await NatsTransport.connect({ servers: NATS_URL });
  try {
    const subject = `warp.${RUN}.throws`;
    const seen: string[] = [];
    transport.subscribe(subject, (data) => {
      seen.push(text(data));
      if (seen.length === 1) throw new Error("Handler bug");
    });
    await transport.flush();
    transport.publish(subject, bytes("first"));
    transport.publish(subject, bytes("second"));
    await waitFor("two messages", () => seen.length === 2);
    assert.deepEqual(seen, ["first", "second"]);
    assert.equal(transport.stats.handlerErrors, 1);
  } finally {
    await transport.close();
  }
});

Deno.test("NatsTransport.subscribe() stops delivering once unsubscribed", async () => {
  const transport = await NatsTransport.connect({ servers: NATS_URL });
  try {
    const subject = `warp.${RUN}.unsub`;
    const seen: string[] = [];
    const unsubscribe = transport.subscribe(subject, (data) => seen.push(text(data)));
    const probe: string[] = [];
    transport.subscribe(subject, (data) => probe.push(text(data)));
    await transport.flush();
    transport.publish(subject, bytes("before"));
    await waitFor("first message", () => seen.length === 1 && probe.length === 1);
    unsubscribe();
    unsubscribe();
    transport.publish(subject, bytes("after"));
    await waitFor("probe", () => probe.length === 2);
    assert.deepEqual(seen, ["before"]);
  } finally {
    await transport.close();
  }
});

Deno.test("NatsTransport.subscribe() accepts wildcards, publish() rejects them", async () => {
  const transport = await NatsTransport.connect({ servers: NATS_URL });
  try {
    const seen: string[] = [];
    transport.subscribe(`warp.${RUN}.wild.*`, (data) => seen.push(text(data)));
    transport.subscribe(`warp.${RUN}.deep.>`, (data) => seen.push(text(data)));
    await transport.flush();
    transport.publish(`warp.${RUN}.wild.n1`, bytes("star"));
    transport.publish(`warp.${RUN}.deep.a.b`, bytes("tail"));
    await waitFor("wildcard messages", () => seen.length === 2);
    assert.deepEqual(seen.sort(), ["star", "tail"]);
    assert.throws(() => transport.publish("warp.*", bytes("x")), TypeError);
    assert.throws(() => transport.publish("warp.>", bytes("x")), TypeError);
  } finally {
    await transport.close();
  }
});

Deno.test("NatsTransport rejects invalid subjects and data with TypeError", async () => {
  const transport = await NatsTransport.connect({ servers: NATS_URL });
  try {
    for (const subject of ["", "a b", "a..b", ".a", "a.", "a\tb", "a.>.b", "a.b*", "a\n"]) {
      assert.throws(() => transport.publish(subject, bytes("x")), TypeError, subject);
      assert.throws(() => transport.subscribe(subject, () => {}), TypeError, subject);
    }
    assert.throws(() => transport.publish("a".repeat(1025), bytes("x")), RangeError);
    assert.throws(
      () => transport.publish("a", "x" as unknown as Uint8Array),
      { name: "TypeError", message: 'Invalid data: expected a Uint8Array, got "x"' },
    );
    assert.throws(() => transport.subscribe("a", undefined as never), TypeError);
    assert.equal(transport.stats.published, 0);
  } finally {
    await transport.close();
  }
});

Deno.test("NatsTransport.publish() counts, never throws, after the connection closed", async () => {
  const nc = await connect({ servers: NATS_URL });
  const transport = NatsTransport.fromConnection(nc, { dropWhileDisconnected: false });
  await nc.close();
  transport.publish(`warp.${RUN}.closed`, bytes("lost"));
  assert.equal(transport.stats.publishErrors, 1);
  await transport.close();
});

Deno.test("NatsTransport.close() leaves a wrapped connection open unless asked", async () => {
  const nc = await connect({ servers: NATS_URL });
  try {
    const transport = NatsTransport.fromConnection(nc);
    transport.subscribe(`warp.${RUN}.wrapped`, () => {});
    await transport.close();
    await transport.close();
    assert.equal(nc.isClosed(), false);
    assert.throws(() => transport.subscribe(`warp.${RUN}.wrapped`, () => {}), {
      name: "WarpError",
      code: "CLOSED",
    });
    const owning = NatsTransport.fromConnection(nc, { closeConnection: true });
    await owning.close();
    assert.equal(nc.isClosed(), true);
  } finally {
    await nc.close();
  }
});

Deno.test("NatsTransport.connect() rejects when no server listens", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  await assert.rejects(NatsTransport.connect({ servers: `127.0.0.1:${port}`, timeout: 2000 }));
});

Deno.test({
  name: "NatsTransport.onStatus() reports a server crash and restart; pub/sub resumes",
  async fn() {
    const server = await PrivateNatsServer.start();
    let transport: NatsTransport | undefined;
    try {
      transport = await NatsTransport.connect({
        servers: server.url,
        reconnectTimeWait: 100,
        reconnectJitter: 20,
      });
      const statuses: TransportStatus[] = [];
      transport.onStatus((status) => statuses.push(status));
      const seen: string[] = [];
      const subject = `warp.${RUN}.fault`;
      transport.subscribe(subject, (data) => seen.push(text(data)));
      await transport.flush();
      transport.publish(subject, bytes("before"));
      await waitFor("message before the crash", () => seen.length === 1);

      await server.kill();
      await waitFor("disconnected", () => statuses.length === 1, 10_000);
      assert.deepEqual(statuses, ["disconnected"]);
      assert.equal(transport.connected, false);
      transport.publish(subject, bytes("while down"));
      assert.equal(transport.stats.droppedWhileDisconnected, 1);

      await server.restart();
      await waitFor("connected", () => statuses.length === 2, 10_000);
      assert.deepEqual(statuses, ["disconnected", "connected"]);
      assert.equal(transport.connected, true);
      await transport.flush();
      transport.publish(subject, bytes("after"));
      await waitFor("message after the restart", () => seen.length === 2, 5000);
      await transport.flush();
      // The message published while down was dropped, not delivered late.
      assert.deepEqual(seen, ["before", "after"]);
    } finally {
      await transport?.close();
      await server.stop();
    }
  },
});

/** Users of a private server: `full` may do anything, `mute` may not publish, `deaf` may not subscribe. */
const PERMISSIONS_CONFIG = `
authorization {
  users = [
    { user: "full", password: "full" }
    { user: "mute", password: "mute", permissions: { publish: { deny: ">" }, subscribe: { allow: ">" } } }
    { user: "deaf", password: "deaf", permissions: { publish: { allow: ">" }, subscribe: { deny: "warp.>" } } }
  ]
}
`;

Deno.test("NatsTransport counts and reports a publish the server refuses for lack of permission", async () => {
  const server = await PrivateNatsServer.start({ config: PERMISSIONS_CONFIG });
  const transports: NatsTransport[] = [];
  try {
    const open = async (user: string) => {
      const transport = await NatsTransport.connect({ servers: server.url, user, pass: user });
      transports.push(transport);
      return transport;
    };
    const full = await open("full");
    const mute = await open("mute");
    const seen: string[] = [];
    full.subscribe("warp.all", (data) => seen.push(text(data)));
    await full.flush();
    const events: string[] = [];
    mute.onError((event) => events.push(`${event.type} ${event.operation} ${event.subject}`));
    mute.publish("warp.all", bytes("refused"));
    full.publish("warp.all", bytes("allowed"));
    await full.flush();
    await waitFor("the server's refusal", () => mute.stats.permissionViolations === 1);
    await mute.flush();
    assert.deepEqual(events, ["permission-violation publish warp.all"]);
    assert.equal(mute.stats.published, 1, "handed to the client before the server refused it");
    assert.equal(mute.stats.publishErrors, 1);
    assert.equal(mute.connected, true, "a refusal does not end the connection");
    assert.deepEqual(seen, ["allowed"]);
    assert.equal(full.stats.permissionViolations, 0);
  } finally {
    for (const transport of transports) await transport.close();
    await server.stop();
  }
});

Deno.test("NatsTransport counts a subscription the server refuses, as a subscription error and a violation", async () => {
  const server = await PrivateNatsServer.start({ config: PERMISSIONS_CONFIG });
  const deaf = await NatsTransport.connect({ servers: server.url, user: "deaf", pass: "deaf" });
  try {
    const events: string[] = [];
    deaf.onError((event) => events.push(`${event.operation} ${event.subject}`));
    deaf.subscribe("warp.all", () => {});
    await deaf.flush();
    await waitFor("the server's refusal", () => deaf.stats.permissionViolations === 1);
    assert.deepEqual(events, ["subscription warp.all"]);
    assert.equal(deaf.stats.publishErrors, 0);
    assert.equal(deaf.stats.subscriptionErrors, 1);
  } finally {
    await deaf.close();
    await server.stop();
  }
});
