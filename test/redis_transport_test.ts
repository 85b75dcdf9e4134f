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
import { testBus, testBusOutage, uniqueSubject, waitFor } from "./_bus_suite.ts";
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

testBusOutage(
  "RedisTransport on a private server: a kill and restart are reported, publishes meanwhile dropped, subscriptions restored",
  async () => {
    const server = await PrivateRedis.start();
    const bus = await RedisTransport.connect({ url: server.url });
    return {
      bus,
      fault: () => server.kill(),
      recover: () => server.restart(),
      close: async () => {
        await bus.close();
        await server.stop();
      },
    };
  },
);
