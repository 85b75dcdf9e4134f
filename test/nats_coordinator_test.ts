import assert from "node:assert/strict";
import fc from "fast-check";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { NatsKvCoordinator } from "../src/nats/coordinator.ts";
import { escapeKvKey, KV_KEY_LENGTH_MAX, unescapeKvKey } from "../src/nats/_kv_key.ts";
import type { CoordinatorEntry } from "../src/coordinator.ts";
import { PrivateNatsServer } from "./_nats_server.ts";

const NATS_URL = Deno.env.get("WARP_TEST_NATS_URL") ?? "127.0.0.1:4222";
const RUN = `${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
let bucketCount = 0;

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** Runs `fn` with a coordinator on a fresh bucket, then deletes the bucket and closes. */
async function withCoordinator(
  fn: (coordinator: NatsKvCoordinator, nc: NatsConnection) => Promise<void>,
): Promise<void> {
  const nc = await connect({ servers: NATS_URL });
  try {
    const bucket = `warp_test_${RUN}_${bucketCount++}`;
    const coordinator = await NatsKvCoordinator.create(nc, { bucket });
    try {
      await fn(coordinator, nc);
    } finally {
      await coordinator.destroy();
    }
  } finally {
    await nc.close();
  }
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const CONTENDED = { name: "WarpError", code: "CONTENDED" };

Deno.test("NatsKvCoordinator compare-and-set: create, update, delete with revisions", async () => {
  await withCoordinator(async (coordinator) => {
    assert.equal(await coordinator.get("lock:a"), undefined);
    const first = await coordinator.create("lock:a", bytes("one"));
    const entry = await coordinator.get("lock:a");
    assert.equal(entry?.revision, first);
    assert.equal(text(entry!.value), "one");
    await assert.rejects(coordinator.create("lock:a", bytes("again")), CONTENDED);

    const second = await coordinator.update("lock:a", bytes("two"), first);
    assert.ok(second > first);
    await assert.rejects(coordinator.update("lock:a", bytes("stale"), first), CONTENDED);
    await assert.rejects(coordinator.delete("lock:a", first), CONTENDED);
    assert.equal(text((await coordinator.get("lock:a"))!.value), "two");

    await coordinator.delete("lock:a", second);
    assert.equal(await coordinator.get("lock:a"), undefined);
    await assert.rejects(coordinator.update("lock:a", bytes("gone"), second), CONTENDED);
    await assert.rejects(coordinator.delete("lock:a", second), CONTENDED);
  });
});

Deno.test("NatsKvCoordinator.create() succeeds on a deleted key with a newer revision", async () => {
  await withCoordinator(async (coordinator) => {
    const first = await coordinator.create("k", bytes("1"));
    await coordinator.delete("k");
    const again = await coordinator.create("k", bytes("2"));
    // The tombstone took revision first + 1, so the re-create is at least first + 2.
    assert.ok(again >= first + 2, `${again} after ${first}`);
    assert.deepEqual(await coordinator.get("k"), { value: bytes("2"), revision: again });
    await assert.rejects(coordinator.create("k", bytes("3")), CONTENDED);
  });
});

Deno.test("NatsKvCoordinator.delete() without a revision succeeds on an absent key", async () => {
  await withCoordinator(async (coordinator) => {
    await coordinator.delete("never-written");
    assert.equal(await coordinator.get("never-written"), undefined);
    await assert.rejects(coordinator.delete("absent", 1), CONTENDED);
    await assert.rejects(coordinator.update("absent", bytes("x"), 1), CONTENDED);
    // A key deleted without ever being written can still be created.
    assert.ok(await coordinator.create("never-written", bytes("x")) >= 1);
  });
});

Deno.test("NatsKvCoordinator keeps arbitrary keys apart", async () => {
  await withCoordinator(async (coordinator) => {
    const keys = [
      "a",
      "A",
      "a.b",
      "a..b",
      ".a",
      "a.",
      ".",
      "a b",
      "*",
      ">",
      "a.*",
      "=",
      "=3D",
      ":",
      "=3A",
      "é",
      "日本",
      "😀",
      "\u0001", // NUL is refused: the Coordinator contract has no NUL keys
      "$KV",
      "x".repeat(1024),
      "日".repeat(1024),
      "日".repeat(1023) + "本",
    ];
    const revisions = new Map<string, number>();
    for (const key of keys) revisions.set(key, await coordinator.create(key, bytes(key)));
    for (const key of keys) {
      const entry = await coordinator.get(key);
      assert.equal(entry?.revision, revisions.get(key), key);
      assert.equal(text(entry!.value), key);
    }
  });
});

Deno.test("NatsKvCoordinator rejects invalid arguments with TypeError and RangeError", async () => {
  await withCoordinator(async (coordinator) => {
    const keys = ["", "x".repeat(4097), "\ud800", "a\udc00b", "a\u0000", 7 as unknown as string];
    for (const key of keys) {
      await assert.rejects(coordinator.get(key), TypeError);
      await assert.rejects(coordinator.create(key, bytes("x")), TypeError);
    }
    await assert.rejects(coordinator.create("k", "x" as unknown as Uint8Array), {
      name: "TypeError",
      message: 'Invalid value: expected a Uint8Array, got "x"',
    });
    for (const revision of [0, -1, 1.5, NaN]) {
      await assert.rejects(coordinator.update("k", bytes("x"), revision), RangeError);
      await assert.rejects(coordinator.delete("k", revision), RangeError);
    }
    await assert.rejects(coordinator.watch("k", "no" as never), TypeError);
  });
  const nc = await connect({ servers: NATS_URL });
  try {
    await assert.rejects(NatsKvCoordinator.create(nc, { bucket: "a.b" }), TypeError);
    await assert.rejects(NatsKvCoordinator.create(nc, { bucket: "x", replicas: 0 }), RangeError);
  } finally {
    await nc.close();
  }
});

Deno.test("NatsKvCoordinator.create() lets exactly one of many concurrent callers win", async () => {
  await withCoordinator(async (coordinator, nc) => {
    const others = await Promise.all(
      [1, 2, 3].map(() => NatsKvCoordinator.create(nc, { bucket: coordinator.bucket })),
    );
    const all = [coordinator, ...others];
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => all[i % all.length]!.create("race", bytes(`${i}`))),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    for (const result of results) {
      if (result.status === "rejected") assert.equal(result.reason.code, "CONTENDED");
    }
    const revision = (await coordinator.get("race"))!.revision;
    const updates = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => coordinator.update("race", bytes(`u${i}`), revision)),
    );
    assert.equal(updates.filter((r) => r.status === "fulfilled").length, 1);
  });
});

Deno.test("NatsKvCoordinator.watch() reports later writes and deletes, then stops", async () => {
  await withCoordinator(async (coordinator) => {
    const first = await coordinator.create("watched", bytes("before"));
    const seen: (CoordinatorEntry | undefined)[] = [];
    const stop = await coordinator.watch("watched", (entry) => {
      seen.push(entry);
      throw new Error("Listener bug");
    });
    const otherKey: unknown[] = [];
    const stopOther = await coordinator.watch("watched2", (entry) => otherKey.push(entry));
    const second = await coordinator.update("watched", bytes("after"), first);
    await coordinator.delete("watched");
    const third = await coordinator.create("watched", bytes("again"));
    await waitFor("three events", () => seen.length === 3);
    assert.deepEqual(seen, [
      { value: bytes("after"), revision: second },
      undefined,
      { value: bytes("again"), revision: third },
    ]);
    stop();
    stop();
    await coordinator.update("watched", bytes("unseen"), third);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(seen.length, 3);
    assert.deepEqual(otherKey, []);
    stopOther();
  });
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
      let entry: CoordinatorEntry | undefined;
      const deadline = Date.now() + 10_000;
      while (entry === undefined) {
        entry = await coordinator.get("k").catch(async (error) => {
          if (Date.now() > deadline) throw error;
          // While down, calls fail at once: back off so the client can reconnect.
          await new Promise((resolve) => setTimeout(resolve, 50));
          return undefined;
        });
      }
      assert.deepEqual(entry, { value: bytes("1"), revision });
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
