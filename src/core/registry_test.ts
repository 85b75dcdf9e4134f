import assert from "node:assert/strict";
import fc from "fast-check";
import { Registry } from "./registry.ts";
import { WarpError } from "./errors.ts";

const literal = fc.stringMatching(/^[a-c:]{0,4}$/);
const pattern = fc.array(literal, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("*"))
  .filter((p) => p.length > 0);

function matches(p: string, key: string): boolean {
  const parts = p.split("*");
  const regex = new RegExp(
    `^${parts.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`,
    "s",
  );
  return regex.test(key);
}

Deno.test("Registry.find() picks a matching registration no less specific than any other match", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(pattern, { minLength: 1, maxLength: 6 }),
      fc.stringMatching(/^[a-c:]{1,8}$/),
      (patterns, key) => {
        const registry = new Registry();
        patterns.forEach((p) => registry.register(p, { mode: "strong-local" }));
        const found = registry.find(key);
        const matching = patterns.filter((p) => matches(p, key));
        if (matching.length === 0) {
          assert.equal(found, undefined);
          return;
        }
        assert.ok(found !== undefined && matching.includes(found.pattern));
        if (matching.includes(key)) assert.equal(found.pattern, key, "an exact registration wins");
        const literals = (p: string) => p.length - (p.split("*").length - 1);
        for (const other of matching) {
          if (other.includes("*") && !found.pattern.includes("*")) continue;
          assert.ok(
            literals(found.pattern) >= literals(other),
            `${found.pattern} beat by ${other}`,
          );
        }
      },
    ),
  );
});

Deno.test("Registry.resolve() names an unregistered key", () => {
  const registry = new Registry();
  registry.register("user:*", { mode: "strong-local" });
  assert.throws(
    () => registry.resolve("order:1"),
    (e) =>
      e instanceof WarpError && e.code === "UNREGISTERED_KEY" && e.message.endsWith(": order:1"),
  );
});

Deno.test("Registry.register() refuses a duplicate and invalid options, naming the value", () => {
  const registry = new Registry();
  registry.register("a:*", { mode: "eventual-distributed" });
  assert.throws(
    () => registry.register("a:*", { mode: "strong-local" }),
    /already registered: a:\*/,
  );
  assert.throws(() => registry.register("b", { mode: "bogus" as never }), /bogus/);
  assert.throws(() => registry.register("c", { mode: "strong-local", ttlMs: -5 }), RangeError);
  assert.throws(() => registry.register("", { mode: "strong-local" }), TypeError);
});
