import assert from "node:assert/strict";
import fc from "fast-check";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsKvCoordinator } from "../src/nats/coordinator.ts";
import { escapeKvKey, KV_KEY_LENGTH_MAX, unescapeKvKey } from "../src/nats/_kv_key.ts";
import { getWhenBack, testCoordinator } from "./_coordinator_suite.ts";
import { PrivateNatsServer } from "./_nats_server.ts";

const NATS_URL = Deno.env.get("WARP_TEST_NATS_URL") ?? "127.0.0.1:4222";
const RUN = `${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
let bucketCount = 0;

const bytes = (text: string) => new TextEncoder().encode(text);

testCoordinator({
  name: "NatsKvCoordinator",
  ttlMs: 1000,
  modelRuns: 10,
  deletedKeysKeepRevisions: true,
  async open() {
    const nc = await connect({ servers: NATS_URL });
    const bucket = `warp_test_${RUN}_${bucketCount++}`;
    const coordinator = await NatsKvCoordinator.create(nc, { bucket });
    const others: NatsKvCoordinator[] = [];
    return {
      coordinator,
      another: async () => {
        const other = await NatsKvCoordinator.create(nc, { bucket });
        others.push(other);
        return other;
      },
      now: () => performance.now(),
      elapse: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
      close: async () => {
        for (const other of others) await other.close();
        await coordinator.destroy();
        await nc.close();
      },
    };
  },
});

Deno.test("NatsKvCoordinator.create() rejects an invalid bucket or replicas", async () => {
  const nc = await connect({ servers: NATS_URL });
  try {
    await assert.rejects(NatsKvCoordinator.create(nc, { bucket: "a.b" }), TypeError);
    await assert.rejects(NatsKvCoordinator.create(nc, { bucket: "x", replicas: 0 }), RangeError);
  } finally {
    await nc.close();
  }
});

Deno.test({
  name: "NatsKvCoordinator rejects with COORDINATOR_UNAVAILABLE when the server is gone",
  async fn() {
    const server = await PrivateNatsServer.start();
    let nc: NatsConnection | undefined;
    try {
      nc = await connect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const coordinator = await NatsKvCoordinator.create(nc, { bucket: "fault", timeoutMs: 500 });
      const revision = await coordinator.create("k", bytes("1"));
      await server.kill();
      const unavailable = { name: "WarpError", code: "COORDINATOR_UNAVAILABLE" };
      const started = Date.now();
      await assert.rejects(coordinator.get("k"), unavailable);
      assert.ok(Date.now() - started < 3000);
      await assert.rejects(coordinator.update("k", bytes("2"), revision), unavailable);
      await server.restart();
      // Once reconnected, JetStream has recovered the stream from its store directory. The
      // update that timed out was not applied later.
      assert.deepEqual(await getWhenBack(coordinator, "k"), { value: bytes("1"), revision });
      await coordinator.close();
      await nc.close();
      await assert.rejects(coordinator.get("k"), unavailable);
    } finally {
      await nc?.close();
      await server.stop();
    }
  },
});

Deno.test("escapeKvKey() is reversible and yields valid KV keys", async () => {
  const valid = /^[-/_=.A-Za-z0-9]+$/;
  await fc.assert(
    fc.asyncProperty(fc.string({ unit: "binary", minLength: 1, maxLength: 64 }), async (key) => {
      const escaped = await escapeKvKey(key);
      assert.match(escaped, valid);
      assert.ok(!escaped.startsWith(".") && !escaped.endsWith(".") && !escaped.includes(".."));
      assert.equal(unescapeKvKey(escaped), key);
    }),
  );
  assert.equal(await escapeKvKey("lock:orders.42"), "lock=3Aorders.42");
  assert.equal(await escapeKvKey("a..b"), "a=2E=2Eb");
  const hashed = await escapeKvKey("日".repeat(200));
  assert.match(hashed, /^=H[-_A-Za-z0-9]{43}$/);
  assert.equal(unescapeKvKey(hashed), undefined);
  assert.ok((await escapeKvKey("x".repeat(KV_KEY_LENGTH_MAX))).length === KV_KEY_LENGTH_MAX);
});
