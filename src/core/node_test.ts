/** NodeCore as a whole: the L1 hit rule, admission, bus input validation, the L1 bounds. */

import assert from "node:assert/strict";
import { none, only } from "../../test/_effects.ts";
import { testNode as node, writeThrough as write } from "../../test/_node_core.ts";
import fc from "fast-check";
import { NodeCore } from "./node.ts";

Deno.test("NodeCore.hit() serves a strong-local value until its TTL, then misses", () => {
  const n = node();
  const effects = write(n, 1, "local:1", "x", 1, 100);
  assert.equal(only(effects, "resolve").result.version, 1);
  none(effects, "broadcast");
  assert.equal(n.hit("local:1", 1099)?.value, "x");
  assert.equal(n.hit("local:1", 1100), undefined);
});

Deno.test("NodeCore rejects an unregistered key with UNREGISTERED_KEY naming it", () => {
  const n = node();
  n.get(1, "nope:1", 0);
  const reject = only(n.takeEffects(), "reject");
  assert.equal(reject.error.code, "UNREGISTERED_KEY");
  assert.match(reject.error.message, /nope:1/);
});

Deno.test("NodeCore drops and counts malformed bus messages", () => {
  const n = node();
  for (
    const bad of [null, 42, {}, { t: "inv", from: "b", inc: 1, seq: 0, key: "k", version: 1 }, {
      t: "zz",
      from: "b",
      inc: 1,
    }]
  ) {
    n.onMessage(bad, 0);
  }
  assert.equal(n.stats.messagesDropped, 5);
  assert.equal(n.stats.messagesReceived, 0);
});

Deno.test("NodeCore L1 respects entry and byte bounds under any sequence of writes", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 400 })), {
        maxLength: 200,
      }),
      (writes) => {
        const n = new NodeCore({ nodeId: "a", incarnation: 1, entriesMax: 8, bytesMax: 2000 });
        n.register("*", { mode: "strong-local" });
        let version = 0;
        for (const [k, size] of writes) {
          n.set(++version, `k${k}`, { value: k, payload: k, sizeBytes: size }, version);
          const w = n.takeEffects().find((e) => e.type === "store-write");
          if (w?.type !== "store-write") throw new Error("no store write");
          n.onStoreWrite(w.io, { ok: true, version }, version);
          n.takeEffects();
          assert.ok(n.l1Size <= 8);
          assert.ok(n.l1Bytes <= 2000);
        }
      },
    ),
  );
});
