/**
 * The effect of signing on propagation over real NATS: two nodes in this process on their
 * own connections, one writing an eventual key, the other taking the invalidation in; the
 * time from the writer's publish to the moment the reader's node has applied it (the
 * receiver's tag check and decode included), for a cluster without a secret and one
 * with, in alternating rounds so that both see the same machine load. Medians and the
 * ratio signed ÷ unsigned.
 *
 * Run: npx -y deno@2 task bench:auth [--writes 400]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { MemoryStore, type Transport, type Unsubscribe, Warp } from "../mod.ts";
import type { AuthOptions } from "../src/auth.ts";
import { unsealUnchecked } from "../src/auth.ts";
import { NatsTransport } from "../src/nats/mod.ts";
import { decodeMessage } from "../src/wire.ts";

const NATS_URL = Deno.env.get("WARP_TEST_NATS_URL") ?? "127.0.0.1:4222";
const { values } = parseArgs({
  args: Deno.args,
  options: { writes: { type: "string", default: "400" } },
});
const WRITES = Number(values.writes);
const ROUND = 20;

/** Notes when each invalidation of `bench:k` was published and when it was applied. */
class TimedTransport implements Transport {
  readonly #inner: NatsTransport;
  readonly #onSent: ((version: number) => void) | undefined;
  readonly #onApplied: ((version: number) => void) | undefined;

  constructor(
    inner: NatsTransport,
    hooks: { sent?: (version: number) => void; applied?: (version: number) => void },
  ) {
    this.#inner = inner;
    this.#onSent = hooks.sent;
    this.#onApplied = hooks.applied;
  }

  publish(subject: string, data: Uint8Array): void {
    const m = this.#onSent === undefined ? undefined : decodeMessage(unsealUnchecked(data));
    if (m?.t === "inv") this.#onSent!(m.version);
    this.#inner.publish(subject, data);
  }

  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe {
    return this.#inner.subscribe(subject, (data) => {
      handler(data); // the node checks the tag and decodes, then applies
      if (this.#onApplied === undefined) return;
      const m = decodeMessage(unsealUnchecked(data));
      if (m?.t === "inv" && m.from === "writer") this.#onApplied(m.version);
    });
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

interface Cluster {
  readonly writer: Warp;
  readonly reader: Warp;
  readonly latenciesMs: number[];
  close(): Promise<void>;
}

async function cluster(prefix: string, auth: AuthOptions | undefined): Promise<Cluster> {
  const store = new MemoryStore();
  const sentAt = new Map<number, number>();
  const latenciesMs: number[] = [];
  let resolveApplied: (() => void) | undefined;
  const keys = { "bench:*": { mode: "eventual-distributed", maxStalenessMs: 60_000 } } as const;
  const writerTransport = new TimedTransport(await NatsTransport.connect({ servers: NATS_URL }), {
    sent: (version) => sentAt.set(version, performance.now()),
  });
  const readerTransport = new TimedTransport(await NatsTransport.connect({ servers: NATS_URL }), {
    applied: (version) => {
      const sent = sentAt.get(version);
      if (sent !== undefined) latenciesMs.push(performance.now() - sent);
      resolveApplied?.();
    },
  });
  const common = { store, prefix, keys, ...(auth !== undefined && { auth }) };
  const writer = new Warp({ ...common, transport: writerTransport, nodeId: "writer" });
  const reader = new Warp({ ...common, transport: readerTransport, nodeId: "reader" });
  const c = {
    writer,
    reader,
    latenciesMs,
    async close() {
      await writer.close();
      await reader.close();
      await writerTransport.close();
      await readerTransport.close();
    },
    applied: () => new Promise<void>((resolve) => (resolveApplied = resolve)),
  };
  return c;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const run = `authbench${Date.now().toString(36)}`;
const plain = await cluster(`${run}_plain`, undefined);
const signed = await cluster(`${run}_signed`, { secrets: ["a cluster secret of 32 bytes...."] });
await new Promise((resolve) => setTimeout(resolve, 500)); // subscriptions active, peers heard
for (let done = 0; done < WRITES; done += ROUND) {
  for (const c of [plain, signed] as const) {
    for (let i = 0; i < ROUND; i++) {
      const applied = (c as unknown as { applied(): Promise<void> }).applied();
      await c.writer.set("bench:k", done + i);
      await Promise.race([applied, new Promise((resolve) => setTimeout(resolve, 1000))]);
    }
  }
}
const a = median(plain.latenciesMs);
const b = median(signed.latenciesMs);
console.log(
  `propagation publish → applied over NATS, ${WRITES} writes each, alternating rounds of ${ROUND}`,
);
console.log(`| cluster        | writes | median ms | p90 ms |`);
console.log(`| -------------- | ------ | --------- | ------ |`);
for (const [name, c] of [["unsigned", plain], ["signed (HMAC)", signed]] as const) {
  const sorted = [...c.latenciesMs].sort((x, y) => x - y);
  const p90 = sorted[Math.floor(sorted.length * 0.9)]!;
  console.log(
    `| ${name.padEnd(14)} | ${String(c.latenciesMs.length).padStart(6)} | ${
      median(c.latenciesMs).toFixed(3).padStart(9)
    } | ${p90.toFixed(3).padStart(6)} |`,
  );
}
console.log(`ratio of medians, signed ÷ unsigned: ${(b / a).toFixed(2)}`);
await plain.close();
await signed.close();
