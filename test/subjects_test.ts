/**
 * Prefix isolation: clusters with different prefixes share no bus subject, for every pair
 * of prefixes and node ids, nested prefixes (`a`, `a.node`) included.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { InProcessBus, MemoryStore, Warp } from "../mod.ts";
import { checkNodeId, checkPrefix } from "../src/_check.ts";
import { clusterSubjects, RESERVED_NODE_IDS } from "../src/_subjects.ts";
import { waitFor } from "./_cluster.ts";

// Tokens that make nesting and aliasing likely: the subjects' own words among them.
const token = fc.constantFrom("a", "b", "node", "all", "x-1", "_");
const prefix = fc.array(token, { minLength: 1, maxLength: 4 }).map((tokens) => tokens.join("."));
const nodeId: fc.Arbitrary<string> = fc.constantFrom("a", "b", "node", "all", "x-1", "n7");

/** The subjects a node subscribes to, and those a node of `from` may publish to. */
function heardBy(p: string, id: string): Set<string> {
  const subjects = clusterSubjects(p);
  return new Set([subjects.broadcast, subjects.direct(id)]);
}
function sentBy(p: string, peers: readonly string[]): string[] {
  const subjects = clusterSubjects(p);
  return [subjects.broadcast, ...peers.map((peer) => subjects.direct(peer))];
}

Deno.test("clusterSubjects() of two different prefixes share no subject, whatever the node ids", () => {
  fc.assert(
    fc.property(prefix, prefix, nodeId, fc.array(nodeId, { maxLength: 4 }), (p, q, id, peers) => {
      fc.pre(p !== q);
      checkPrefix(p);
      checkPrefix(q);
      fc.pre([id, ...peers].every((peer) => !RESERVED_NODE_IDS.includes(peer)));
      const heard = heardBy(p, id);
      for (const subject of sentBy(q, peers)) {
        assert.ok(!heard.has(subject), `${subject}: node ${id} of ${p} hears cluster ${q}`);
      }
    }),
    { numRuns: 20_000 },
  );
});

Deno.test("clusterSubjects() canary: without the reserved id, a nested prefix aliases a broadcast", () => {
  // The check above would catch it: node "all" of "a" hears every broadcast of "a.node".
  assert.ok(heardBy("a", "all").has(clusterSubjects("a.node").broadcast));
  assert.throws(() => checkNodeId("all", RESERVED_NODE_IDS), /reserved: "all"/);
});

Deno.test("Warp nodes of different prefixes on one bus never hear each other", async () => {
  await fc.assert(
    fc.asyncProperty(prefix, nodeId, nodeId, fc.boolean(), async (p, idP, idQ, nested) => {
      fc.pre(!RESERVED_NODE_IDS.includes(idP) && !RESERVED_NODE_IDS.includes(idQ));
      const q = nested ? `${p}.node` : `${p}.b`;
      const bus = new InProcessBus();
      const store = new MemoryStore();
      const heard: { from: string; to: string }[] = [];
      bus.filter = (_subject, _data, from, to) => {
        heard.push({ from: from.label, to: to.label });
        return true;
      };
      const open = (prefix: string, id: string, label: string) =>
        new Warp({ store, transport: bus.connect({ label }), prefix, nodeId: id });
      const nodes = [open(p, idP, "p"), open(q, idQ, "q1"), open(q, `${idQ}2`, "q2")];
      const [inP, writer, peer] = nodes as [Warp, Warp, Warp];
      try {
        for (const node of nodes) node.register("k:*", { mode: "eventual-distributed" });
        await writer.set("k:1", "old");
        assert.equal(await inP.get("k:1"), "old");
        assert.equal(await peer.get("k:1"), "old");
        await writer.set("k:1", "new");
        await waitFor(() => peer.peek("k:1") === undefined, "the invalidation within q");
        await new Promise((resolve) => setTimeout(resolve, 5));
        assert.equal(inP.peek("k:1"), "old", "p never heard q's invalidation");
        assert.equal(inP.stats.invalidationsApplied, 0);
        const crossed = heard.filter(({ from, to }) => (from === "p") !== (to === "p"));
        assert.deepEqual(crossed, []);
      } finally {
        for (const node of nodes) await node.close();
      }
    }),
    { numRuns: 60 },
  );
});
