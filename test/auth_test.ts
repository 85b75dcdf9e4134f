/**
 * Authenticated bus messages (`src/auth.ts`): nodes with the cluster secret sign what they
 * publish and drop and count what arrives unsigned or badly signed; rotation with two
 * secrets; turning authentication on in a live cluster; the framing fuzzed.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { InProcessBus, MemoryCoordinator, MemoryStore, Warp } from "../mod.ts";
import type { AuthOptions } from "../src/auth.ts";
import { AUTH_TAG_BYTES, MessageAuth, unsealUnchecked } from "../src/auth.ts";
import { decodeMessage, encodeMessage } from "../src/wire.ts";
import type { Message } from "../src/core/messages.ts";
import { waitFor } from "./_cluster.ts";

const OLD = "the old cluster secret, 32 bytes";
const NEW = "the new cluster secret, 32 bytes";

/** Two nodes on one bus, store and coordinator, with `ev:*` eventual and `st:*` strong keys. */
function pair(authA: AuthOptions | undefined, authB: AuthOptions | undefined) {
  const bus = new InProcessBus();
  const store = new MemoryStore();
  const coordinator = new MemoryCoordinator();
  const keys = {
    "ev:*": { mode: "eventual-distributed", maxStalenessMs: 60_000, ttlMs: 60_000 },
    "st:*": { mode: "strong-distributed", leaseMs: 2000, writeTimeoutMs: 3000 },
  } as const;
  const node = (nodeId: string, auth: AuthOptions | undefined) =>
    new Warp({
      store,
      coordinator,
      transport: bus.connect(),
      nodeId,
      keys,
      sessionMs: 0,
      heartbeatIntervalMs: 20,
      ...(auth !== undefined && { auth }),
    });
  return { bus, a: node("a", authA), b: node("b", authB) };
}

/** Whether b hears a's eventual write, and whether a strong write of a completes on b's ack. */
async function talk(a: Warp, b: Warp): Promise<{ invalidated: boolean; acked: boolean }> {
  await a.set("ev:1", "v1");
  assert.equal(await b.get("ev:1"), "v1");
  await a.set("ev:1", "v2");
  let invalidated = true;
  try {
    await eventually(async () => (await b.get("ev:1")) === "v2", 600);
  } catch {
    invalidated = false;
  }
  await b.get("st:1"); // b holds st:1: a's write must be acknowledged by b
  const waits = a.stats.leaseWaits;
  const set = a.set("st:1", "x").then(() => true, () => false);
  const acked = await set && a.stats.leaseWaits === waits && a.stats.acksReceived > 0;
  return { invalidated, acked };
}

/** Polls an async `condition` until it holds; throws after `timeoutMs`. */
async function eventually(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const start = performance.now();
  while (!(await condition())) {
    if (performance.now() - start > timeoutMs) throw new Error(`Not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function closeAll(...nodes: Warp[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.close()));
}

Deno.test("Warp nodes with the same secret talk: invalidations and acks pass, nothing is refused", async () => {
  const { a, b } = pair({ secrets: [NEW] }, { secrets: [NEW] });
  try {
    assert.deepEqual(await talk(a, b), { invalidated: true, acked: true });
    for (const n of [a, b]) {
      assert.equal(n.stats.unsignedMessages, 0);
      assert.equal(n.stats.badSignatures, 0);
    }
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("Warp nodes with different secrets hear nothing of each other, and count every message", async () => {
  const { a, b } = pair({ secrets: [OLD] }, { secrets: [NEW] });
  try {
    await a.set("ev:1", "v1");
    assert.equal(await b.get("ev:1"), "v1");
    await a.set("ev:1", "v2");
    await waitFor(() => b.stats.badSignatures >= 3, "b to refuse a's messages");
    assert.equal(await b.get("ev:1"), "v1", "b never applied a's invalidation");
    assert.equal(b.stats.messagesDropped, b.stats.badSignatures);
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("Warp rotates a secret in steps: [old, new] and [new, old] talk, [old] and [new] do not", async () => {
  const step1 = pair({ secrets: [OLD, NEW] }, { secrets: [NEW, OLD] });
  try {
    assert.deepEqual(await talk(step1.a, step1.b), { invalidated: true, acked: true });
    assert.equal(step1.a.stats.badSignatures + step1.b.stats.badSignatures, 0);
  } finally {
    await closeAll(step1.a, step1.b);
  }
  const mismatch = pair({ secrets: [OLD] }, { secrets: [NEW] });
  try {
    const result = await talk(mismatch.a, mismatch.b);
    assert.deepEqual(result, { invalidated: false, acked: false });
  } finally {
    await closeAll(mismatch.a, mismatch.b);
  }
});

Deno.test("Warp turns authentication on in a live cluster: acceptUnsigned takes unsigned messages and counts them", async () => {
  const { a, b } = pair({ secrets: [NEW], acceptUnsigned: true }, undefined);
  try {
    // b has no secret: it reads a's signed messages unchecked, a accepts b's unsigned ones.
    assert.deepEqual(await talk(a, b), { invalidated: true, acked: true });
    await b.set("ev:2", "w1");
    assert.equal(await a.get("ev:2"), "w1");
    await b.set("ev:2", "w2");
    await eventually(async () => (await a.get("ev:2")) === "w2", 5000);
    assert.ok(a.stats.unsignedMessages > 0);
    assert.equal(a.stats.messagesDropped, 0, "accepted, so not dropped");
  } finally {
    await closeAll(a, b);
  }
});

Deno.test("Warp with a secret drops and counts forged messages from a connection without it", async () => {
  const { bus, a, b } = pair({ secrets: [NEW] }, { secrets: [NEW] });
  const forger = bus.connect();
  try {
    await a.set("ev:1", "v1");
    assert.equal(await b.get("ev:1"), "v1");
    // Unsigned, then signed with a wrong secret: a drop of ev:1 from a plausible sender.
    const drop: Message = { t: "drop", from: "a", inc: 1, seq: 9, key: "ev:1" };
    forger.publish("warp.all", encodeMessage(drop));
    const wrong = new MessageAuth({ secrets: [OLD] }, "warp");
    forger.publish("warp.all", wrong.seal(encodeMessage(drop)));
    // Signed with the right secret for another cluster's prefix.
    forger.publish(
      "warp.all",
      new MessageAuth({ secrets: [NEW] }, "other").seal(encodeMessage(drop)),
    );
    await waitFor(() => b.stats.unsignedMessages === 1 && b.stats.badSignatures === 2, "counts");
    const read = await b.read("ev:1");
    assert.equal(read.source, "l1", "b still serves its entry: the drop was refused");
  } finally {
    await forger.close();
    await closeAll(a, b);
  }
});

Deno.test("Warp refuses bad auth options with a TypeError or RangeError, having subscribed to nothing", () => {
  const bad: [unknown, ErrorConstructor][] = [
    [{ secrets: [] }, TypeError],
    [{ secrets: "a string of thirty two characters" }, TypeError],
    [{ secrets: ["short"] }, RangeError],
    [{ secrets: [42] }, TypeError],
    [{ secrets: [NEW, NEW, NEW, NEW, NEW] }, TypeError],
    [{ secrets: [NEW], acceptUnsigned: "yes" }, TypeError],
    [null, TypeError],
  ];
  for (const [auth, type] of bad) {
    const bus = new InProcessBus();
    let subscribed = 0;
    const transport = bus.connect();
    const counting = {
      publish: transport.publish.bind(transport),
      close: transport.close.bind(transport),
      subscribe: (subject: string, handler: (data: Uint8Array) => void) => {
        subscribed++;
        return transport.subscribe(subject, handler);
      },
    };
    assert.throws(
      () => new Warp({ store: new MemoryStore(), transport: counting, auth: auth as AuthOptions }),
      type,
      JSON.stringify(auth),
    );
    assert.equal(subscribed, 0);
    transport.close();
  }
});

const SECRET = new TextEncoder().encode(NEW);

Deno.test("MessageAuth.open() never throws and accepts only what seal() made, for arbitrary and mutated bytes", () => {
  const auth = new MessageAuth({ secrets: [SECRET] }, "warp");
  const message = fc.record({
    from: fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    inc: fc.maxSafeNat(),
    seq: fc.maxSafeNat().map((n) => Math.max(1, n)),
    key: fc.string({ minLength: 1, maxLength: 30 }),
  }).map((m): Message => ({ t: "drop", ...m }));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      const opened = auth.open(bytes);
      if (opened.ok) throw new Error("accepted arbitrary bytes");
      unsealUnchecked(bytes); // never throws either
    }),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(message, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, index, flip) => {
      const sealed = auth.seal(encodeMessage(m));
      const opened = auth.open(sealed);
      assert.ok(opened.ok && opened.signed);
      assert.deepEqual(decodeMessage(opened.bytes), m);
      const mutated = sealed.slice();
      mutated[index % mutated.length]! ^= flip;
      const tampered = auth.open(mutated);
      // One changed byte: refused, whether it hit the header, a field or the tag.
      assert.equal(tampered.ok, false);
      assert.equal(auth.open(sealed.subarray(0, sealed.length - 1)).ok, false);
      assert.equal(sealed.length, encodeMessage(m).length + AUTH_TAG_BYTES);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("MessageAuth.open() and unsealUnchecked() leave the bytes they are given as they came, Buffers included", async () => {
  const { Buffer } = await import("node:buffer");
  const auth = new MessageAuth({ secrets: [Buffer.from(NEW)] }, "warp");
  const sealed = auth.seal(encodeMessage({ t: "drop", from: "a", inc: 1, seq: 1, key: "k" }));
  const asBuffer = Buffer.from(sealed); // what a NATS client may hand over
  const copy = Uint8Array.from(asBuffer);
  assert.ok(auth.open(asBuffer).ok);
  unsealUnchecked(asBuffer);
  assert.deepEqual(Uint8Array.from(asBuffer), copy);
});
