/**
 * Forgeries injected from a separate NATS connection, as whoever holds a bus credential
 * could: acks, `lrev`, heartbeats and absurd versions, against two nodes on real NATS
 * (NATS KV coordinator, one shared memory store), with and without the cluster secret.
 * With it, nothing breaks and each forgery is counted; without it, the limits that
 * `docs/operations.md` states hold — and the ones it says a secret is needed for show.
 *
 * Needs NATS with JetStream on 127.0.0.1:4222 (`WARP_TEST_NATS_URL`): if it is
 * unreachable the tests fail.
 *
 * @module
 */

import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { MemoryStore, type Transport, type Unsubscribe, Warp } from "../mod.ts";
import type { AuthOptions } from "../src/auth.ts";
import { MessageAuth, unsealUnchecked } from "../src/auth.ts";
import { NatsKvCoordinator, NatsTransport } from "../src/nats/mod.ts";
import { decodeMessage, encodeMessage } from "../src/wire.ts";
import type { Message } from "../src/core/messages.ts";
import { NATS_URL } from "./_process_cluster.ts";
import { sleep, waitFor } from "./_cluster.ts";

const RUN = `f${Date.now().toString(36)}${Math.floor(Math.random() * 2 ** 32).toString(36)}`;
const SECRET = "forgery test cluster secret, 32b";
const AUTH: AuthOptions = { secrets: [SECRET] };

/** A transport that can refuse a node the revokes sent to it (a lost revoke). */
class LossyTransport implements Transport {
  dropRevokes = false;
  readonly #inner: NatsTransport;

  constructor(inner: NatsTransport) {
    this.#inner = inner;
  }

  publish(subject: string, data: Uint8Array): void {
    this.#inner.publish(subject, data);
  }

  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe {
    return this.#inner.subscribe(subject, (data) => {
      if (this.dropRevokes && decodeMessage(unsealUnchecked(data))?.t === "revoke") return;
      handler(data);
    });
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

interface Setup {
  readonly w: Warp;
  readonly h: Warp;
  readonly hTransport: LossyTransport;
  /** The forger's own connection. */
  readonly forger: NatsConnection;
  readonly prefix: string;
  /** The incarnation of each node, read from its heartbeats as a forger would. */
  inc(nodeId: string): number;
}

/** Two nodes `w` and `h` on NATS under a fresh prefix, with or without the secret. */
async function withCluster(
  name: string,
  auth: AuthOptions | undefined,
  sessionMs: number,
  fn: (setup: Setup) => Promise<void>,
): Promise<void> {
  const prefix = `${RUN}_${name}`;
  const forger = await connect({ servers: NATS_URL });
  const coordinator = await NatsKvCoordinator.create(forger, { bucket: prefix });
  const store = new MemoryStore();
  const transports: Transport[] = [];
  const nodes: Warp[] = [];
  // The forger reads the broadcasts (heartbeats name each node's incarnation).
  const incs = new Map<string, number>();
  const listener = forger.subscribe(`${prefix}.all`, {
    callback: (_error, msg) => {
      const m = decodeMessage(unsealUnchecked(msg.data));
      if (m !== undefined) incs.set(m.from, m.inc);
    },
  });
  const open = async (nodeId: string) => {
    const transport = new LossyTransport(await NatsTransport.connect({ servers: NATS_URL }));
    transports.push(transport);
    const node = new Warp({
      store,
      coordinator,
      transport,
      prefix,
      nodeId,
      sessionMs,
      heartbeatIntervalMs: 50,
      keys: {
        "ev:*": { mode: "eventual-distributed", maxStalenessMs: 60_000, ttlMs: 60_000 },
        "st:*": { mode: "strong-distributed", leaseMs: 3000, writeTimeoutMs: 10_000 },
      },
      ...(auth !== undefined && { auth }),
    });
    nodes.push(node);
    return { node, transport };
  };
  try {
    const { node: w } = await open("w");
    const { node: h, transport: hTransport } = await open("h");
    await waitFor(() => incs.has("w") && incs.has("h"), "both nodes' heartbeats");
    await fn({ w, h, hTransport, forger, prefix, inc: (id) => incs.get(id)! });
  } finally {
    listener.unsubscribe();
    for (const node of nodes) await node.close();
    for (const transport of transports) await transport.close();
    await coordinator.destroy();
    await forger.close();
  }
}

function publish(forger: NatsConnection, subject: string, message: Message): void {
  forger.publish(subject, encodeMessage(message));
}

/**
 * h holds st:1 = "old" and never receives w's revokes; while w writes "new", the forger
 * acks every revoke id 1..`ids` for h. Returns when w's write resolved and what h served
 * right after.
 */
async function forgeAcks(
  s: Setup,
  ack: (id: number) => Message,
  ids: number,
): Promise<{ writeMs: number; servedAfter: unknown }> {
  await s.w.set("st:1", "old");
  assert.equal(await s.h.get("st:1"), "old");
  assert.equal(s.h.peek("st:1"), "old", "h holds the key");
  s.hTransport.dropRevokes = true;
  const start = performance.now();
  const write = s.w.set("st:1", "new");
  await sleep(20); // the revoke is out: its id exists on w
  for (let id = 1; id <= ids; id++) publish(s.forger, `${s.prefix}.node.w`, ack(id));
  await s.forger.flush();
  await write;
  const writeMs = performance.now() - start;
  return { writeMs, servedAfter: s.h.peek("st:1") };
}

for (const secret of [false, true]) {
  const auth = secret ? AUTH : undefined;
  const label = secret ? "with the secret" : "without a secret";

  Deno.test(`NATS: blind forged acks (every id, no nonce) never complete a strong write early, ${label}`, async () => {
    await withCluster(`ack${+secret}`, auth, 2000, async (s) => {
      const wInc = s.inc("w");
      const hInc = s.inc("h");
      const { writeMs, servedAfter } = await forgeAcks(s, (id) => ({
        t: "ack",
        from: "h",
        inc: hInc,
        id,
        key: "st:1",
        to: wInc,
        nonce: id, // a guess: the nonce is 48 random bits
      }), 3000);
      assert.notEqual(servedAfter, "old", "h stopped serving the old value before w answered");
      assert.ok(writeMs > 100, `the write waited for h's session, not a forged ack: ${writeMs} ms`);
      if (secret) assert.ok(s.w.stats.unsignedMessages >= 3000, `${s.w.stats.unsignedMessages}`);
      else assert.ok(s.w.stats.acksRejected >= 3000, `acksRejected ${s.w.stats.acksRejected}`);
      assert.equal(s.w.stats.acksReceived, 0);
    });
  });

  Deno.test(`NATS: a forger reading the holder's subject ${secret ? "cannot" : "can"} ack for it, ${label}`, async () => {
    await withCluster(`snoop${+secret}`, auth, 2000, async (s) => {
      // The forger subscribes to h's own subject: it sees each revoke and its nonce.
      const sub = s.forger.subscribe(`${s.prefix}.node.h`, {
        callback: (_error, msg) => {
          const revoke = decodeMessage(unsealUnchecked(msg.data));
          if (revoke?.t !== "revoke") return;
          const ack: Message = {
            t: "ack",
            from: "h",
            inc: s.inc("h"),
            id: revoke.id,
            key: revoke.key,
            to: revoke.inc,
            nonce: revoke.nonce,
          };
          publish(s.forger, `${s.prefix}.node.w`, ack);
        },
      });
      try {
        const unused = (): Message => ({ t: "drop", from: "x", inc: 1, seq: 1, key: "ev:0" });
        const { servedAfter } = await forgeAcks(s, unused, 0);
        if (secret) {
          assert.notEqual(servedAfter, "old", "h stopped serving before w answered");
          assert.ok(s.w.stats.unsignedMessages > 0);
          assert.equal(s.w.stats.acksReceived, 0);
        } else {
          // The documented limit: without a secret, read access to a node's subject is
          // enough to forge its acks, and h serves the old value after the write answered.
          assert.equal(servedAfter, "old");
          assert.ok(s.w.stats.acksReceived > 0);
        }
      } finally {
        sub.unsubscribe();
      }
    });
  });

  Deno.test(`NATS: a forged lrev ${secret ? "is refused" : "hides a live lease's values"}, ${label}`, async () => {
    await withCluster(`lrev${+secret}`, auth, 2000, async (s) => {
      const lease = await s.w.grantLease({ ttlMs: 60_000 });
      await s.w.set("ev:1", "leased", { lease });
      assert.equal(await s.h.get("ev:1"), "leased");
      publish(s.forger, `${s.prefix}.all`, { t: "lrev", from: "x", inc: 1, lease });
      await s.forger.flush();
      await sleep(200);
      if (secret) {
        await waitFor(() => s.h.stats.unsignedMessages > 0, "h to refuse the lrev");
        assert.equal(await s.h.get("ev:1"), "leased");
        await s.w.set("ev:2", "also", { lease }); // the lease is still usable
      } else {
        // The documented limit: anyone who can publish can make a live lease's values
        // read as absent (safe: never a stale value, only a miss) until a restart.
        assert.equal(await s.h.get("ev:1"), undefined);
      }
    });
  });

  Deno.test(`NATS: forged heartbeats and absurd versions are counted and break nothing, ${label}`, async () => {
    for (const sessionMs of [2000, 0]) {
      await withCluster(`hb${+secret}${sessionMs}`, auth, sessionMs, async (s) => {
        await s.w.set("ev:1", "v1");
        assert.equal(await s.h.get("ev:1"), "v1");
        const flushes = s.h.stats.flushes;
        const heard = () => s.h.stats.messagesReceived + s.h.stats.messagesDropped;
        const before = heard();
        const start = performance.now();
        for (let i = 0; i < 20_000; i++) {
          publish(s.forger, `${s.prefix}.all`, {
            t: "hb",
            from: `forged${i}`,
            inc: 1,
            seq: 100,
            round: 1,
            echo: [],
          });
        }
        publish(s.forger, `${s.prefix}.all`, {
          t: "inv",
          from: "w",
          inc: s.inc("w"),
          seq: 10_000,
          key: "ev:1",
          version: Number.MAX_SAFE_INTEGER,
        });
        publish(s.forger, `${s.prefix}.all`, {
          t: "hb",
          from: "w",
          inc: s.inc("w"),
          seq: Number.MAX_SAFE_INTEGER,
          round: 1,
          echo: [],
        });
        await s.forger.flush();
        await waitFor(() => heard() - before >= 20_002, "h to take every forgery in", 20_000);
        const elapsedMs = performance.now() - start;
        if (secret) {
          assert.ok(s.h.stats.unsignedMessages >= 20_002);
          assert.equal(s.h.stats.flushes, flushes, "nothing forged was acted on");
        } else {
          assert.equal(s.h.stats.absurdMessages, 2);
          // At most one first-word flush per heartbeat interval (50 ms), however many ids.
          const most = Math.ceil(elapsedMs / 50) + 2;
          assert.ok(s.h.stats.flushes - flushes <= most, `${s.h.stats.flushes - flushes} flushes`);
          if (sessionMs > 0) assert.ok(s.h.stats.nonMemberHeartbeats >= 20_000);
        }
        // No read fails STALE_READ, and a write still reaches h.
        await s.w.set("ev:1", "v2");
        await waitFor(() => s.h.peek("ev:1") !== "v1", "the invalidation to reach h");
        assert.equal(await s.h.get("ev:1"), "v2");
      });
    }
  });
}

Deno.test("NATS: a node with the secret refuses messages signed for another prefix", async () => {
  await withCluster("prefix", AUTH, 2000, async (s) => {
    await s.w.set("ev:1", "v1");
    assert.equal(await s.h.get("ev:1"), "v1");
    const other = new MessageAuth(AUTH, "another-cluster");
    s.forger.publish(
      `${s.prefix}.all`,
      other.seal(encodeMessage({ t: "drop", from: "w", inc: s.inc("w"), seq: 1, key: "ev:1" })),
    );
    await waitFor(() => s.h.stats.badSignatures === 1, "h to refuse it");
    assert.equal(s.h.peek("ev:1"), "v1");
  });
});
