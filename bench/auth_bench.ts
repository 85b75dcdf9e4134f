/**
 * What signing costs per bus message, beside the unsigned path, in the same run: the
 * sender's work (encode, then sign) and the receiver's (check the tag, then decode), for
 * an invalidation (the hot path) and a heartbeat of a 16-member session; and a receiver
 * refusing a badly signed message (what a forger's flood costs a node with the secret).
 *
 * Run: npx -y deno@2 task bench:table --filter auth (or `deno bench bench/auth_bench.ts`);
 * the effect on propagation over real NATS: `deno task bench:auth`.
 *
 * @module
 */

import { MessageAuth } from "../src/auth.ts";
import type { Message } from "../src/core/messages.ts";
import { decodeMessage, encodeMessage } from "../src/wire.ts";

const auth = new MessageAuth({ secrets: ["a cluster secret of 32 bytes...."] }, "warp");
const wrong = new MessageAuth({ secrets: ["another secret, also 32 bytes..."] }, "warp");
let sink = 0;

const messages: [string, Message][] = [
  ["invalidation", {
    t: "inv",
    from: "node-1",
    inc: 1764000000000123,
    seq: 42,
    key: "user:1234",
    version: 3,
  }],
  ["heartbeat, 16 echoes", {
    t: "hb",
    from: "node-1",
    inc: 1764000000000123,
    seq: 42,
    round: 900,
    echo: Array.from(
      { length: 16 },
      (_, i) => [`node-${i + 2}`, 1764000000000000 + i, 899] as const,
    ),
  }],
];

for (const [name, message] of messages) {
  const plain = encodeMessage(message);
  const sealed = auth.seal(plain);
  const forged = wrong.seal(plain);
  Deno.bench({
    name: `send unsigned (encode), ${name}`,
    group: `auth: send, ${name}`,
    baseline: true,
    fn() {
      sink += encodeMessage(message).length;
    },
  });
  Deno.bench({
    name: `send signed (encode + HMAC), ${name}`,
    group: `auth: send, ${name}`,
    fn() {
      sink += auth.seal(encodeMessage(message)).length;
    },
  });
  Deno.bench({
    name: `receive unsigned (decode), ${name}`,
    group: `auth: receive, ${name}`,
    baseline: true,
    fn() {
      if (decodeMessage(plain) !== undefined) sink++;
    },
  });
  Deno.bench({
    name: `receive signed (HMAC check + decode), ${name}`,
    group: `auth: receive, ${name}`,
    fn() {
      const opened = auth.open(sealed);
      if (opened.ok && decodeMessage(opened.bytes) !== undefined) sink++;
    },
  });
  Deno.bench({
    name: `refuse a badly signed one, ${name}`,
    group: `auth: receive, ${name}`,
    fn() {
      if (!auth.open(forged).ok) sink++;
    },
  });
}

globalThis.addEventListener("unload", () => {
  if (sink === 0.5) console.log(sink); // keep the results alive
});
