/** The echo budget (`_echo_budget.ts`): every eligible peer in turn, never more than the budget. */

import assert from "node:assert/strict";
import fc from "fast-check";
import { EchoBudget } from "./_echo_budget.ts";

Deno.test("EchoBudget.take() returns every item while they fit the budget", () => {
  const budget = new EchoBudget(3);
  assert.deepEqual(budget.take(["a", "b"]), ["a", "b"]);
  assert.deepEqual(budget.take(["a", "b", "c"]), ["a", "b", "c"]);
  assert.deepEqual(budget.take([]), []);
});

Deno.test("EchoBudget.take() takes turns over a list longer than the budget", () => {
  const budget = new EchoBudget(2);
  const peers = ["a", "b", "c", "d", "e"];
  assert.deepEqual(
    [budget.take(peers), budget.take(peers), budget.take(peers)],
    [["a", "b"], ["c", "d"], ["e", "a"]],
  );
});

Deno.test("EchoBudget rejects a budget that is not a positive integer", () => {
  for (const bad of [0, -1, 1.5, Number.NaN, Infinity]) {
    assert.throws(() => new EchoBudget(bad), RangeError);
  }
});

Deno.test("EchoBudget.take() never exceeds the budget and covers a stable list within ⌈n / budget⌉ calls", () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 40 }),
    fc.integer({ min: 0, max: 120 }),
    fc.integer({ min: 0, max: 50 }),
    (echoesMax, n, warmup) => {
      const budget = new EchoBudget(echoesMax);
      const items = Array.from({ length: n }, (_, i) => i);
      // Whatever turns came before (a list that changed size, say), coverage holds.
      for (let i = 0; i < warmup; i++) budget.take(items.slice(0, (i * 7) % (n + 1)));
      const seen = new Set<number>();
      for (let call = 0; call < Math.ceil(n / echoesMax); call++) {
        const taken = budget.take(items);
        assert.ok(taken.length <= echoesMax);
        assert.equal(new Set(taken).size, taken.length, "no item twice in one heartbeat");
        for (const item of taken) seen.add(item);
      }
      assert.equal(seen.size, n);
    },
  ));
});
