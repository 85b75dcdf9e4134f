/**
 * `RedisTransport`: the shared bus suite (`test/_bus_suite.ts`), then what is its own — a
 * client you made, a Redis Cluster refused, and a private server killed and restarted.
 * Needs Redis on 127.0.0.1:6379 (`WARP_TEST_REDIS_URL`) and `redis-server` on the path.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createClient } from "@redis/client";
import { REDIS_MESSAGE_BYTES_MAX, RedisTransport } from "../src/redis/transport.ts";
import type { RedisClientLike } from "../src/redis/transport.ts";
import type { TransportStatus } from "../src/transport.ts";
import { testBus, uniqueSubject, waitFor } from "./_bus_suite.ts";
import { PrivateRedis } from "./_redis_server.ts";

const REDIS_URL = Deno.env.get("WARP_TEST_REDIS_URL") ?? "redis://127.0.0.1:6379";

testBus({
  name: "RedisTransport",
  connect: () => RedisTransport.connect({ url: REDIS_URL }),
  connectTo: (url, connectTimeoutMs) => RedisTransport.connect({ url, connectTimeoutMs }),
  scheme: "redis",
  messageBytesMax: REDIS_MESSAGE_BYTES_MAX,
});

Deno.test("RedisTransport on a client you made: publishes on it, subscribes on a duplicate, leaves it open", async () => {
  const client = createClient({ url: REDIS_URL });
  client.on("error", () => {});
  await client.connect();
  try {
    const bus = await RedisTransport.connect({ redis: client as unknown as RedisClientLike });
    const subject = uniqueSubject("given");
    const got: number[] = [];
    bus.subscribe(subject, (data) => got.push(data[0]!));
    await bus.ready;
    bus.publish(subject, new Uint8Array([5]));
    await waitFor("the message", () => got.length === 1);
    await bus.close();
    assert.equal(await client.ping(), "PONG", "the client stays open");
    await assert.rejects(
      RedisTransport.connect({ redis: client as unknown as RedisClientLike, url: REDIS_URL }),
      TypeError,
    );
  } finally {
    client.destroy();
  }
});

Deno.test("RedisTransport.connect() refuses a Redis Cluster with a clear TypeError", async () => {
  const server = await PrivateRedis.start({ cluster: true });
  try {
    await assert.rejects(RedisTransport.connect({ url: server.url }), {
      name: "TypeError",
      message:
        "Redis runs in cluster mode, which RedisTransport does not support: point it at a standalone Redis or a primary",
    });
  } finally {
    await server.stop();
  }
});

Deno.test("RedisTransport on a private server: down and up are reported, publishes while down dropped, subscriptions restored", async () => {
  const server = await PrivateRedis.start();
  try {
    const bus = await RedisTransport.connect({ url: server.url });
    try {
      const subject = uniqueSubject("restart");
      const got: number[] = [];
      const statuses: TransportStatus[] = [];
      bus.onStatus((status) => statuses.push(status));
      bus.subscribe(subject, (data) => got.push(data[0]!));
      await bus.ready;
      bus.publish(subject, new Uint8Array([0]));
      await waitFor("a message before", () => got.length === 1);
      await server.kill();
      await waitFor("disconnected", () => statuses.includes("disconnected"));
      bus.publish(subject, new Uint8Array([1]));
      assert.equal(bus.stats.droppedWhileDisconnected, 1);
      await server.restart();
      await waitFor("connected", () => statuses.at(-1) === "connected", 10_000);
      const deadline = Date.now() + 10_000;
      while (!got.includes(2)) {
        assert.ok(Date.now() < deadline, "a message was delivered after the restart");
        bus.publish(subject, new Uint8Array([2]));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.ok(!got.includes(1), "the dropped message never arrived");
    } finally {
      await bus.close();
    }
  } finally {
    await server.stop();
  }
});
