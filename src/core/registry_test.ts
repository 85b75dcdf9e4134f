import assert from "node:assert/strict";
import fc from "fast-check";
import { globMatch, Registry } from "./registry.ts";
import { WarpError } from "./errors.ts";

const literal = fc.stringMatching(/^[a-c:]{0,4}$/);
const pattern = fc.array(literal, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("*"))
  .filter((p) => p.length > 0);

/** The matcher Registry used before globMatch, kept as the oracle: a compiled regex. */
function matches(p: string, key: string): boolean {
  const parts = p.split("*");
  const regex = new RegExp(
    `^${parts.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("[\\s\\S]*")}$`,
  );
  return regex.test(key);
}

Deno.test("globMatch() agrees with the regex matcher on small patterns and keys", () => {
  // A small alphabet makes near-misses and overlapping parts common.
  const small = fc.stringMatching(/^[ab:*]{0,7}$/);
  const smallKey = fc.stringMatching(/^[ab:]{0,9}$/);
  fc.assert(
    fc.property(small, smallKey, (p, key) => {
      assert.equal(globMatch(p.split("*"), key), matches(p, key), `${p} on ${key}`);
    }),
    { numRuns: 20_000 },
  );
  // Any UTF-16, lone surrogates and regex metacharacters included.
  const any = fc.string({ unit: "binary", maxLength: 6 });
  fc.assert(
    fc.property(fc.array(any, { minLength: 1, maxLength: 4 }), any, (parts, key) => {
      const p = parts.join("*");
      assert.equal(globMatch(p.split("*"), key), matches(p, key));
    }),
    { numRuns: 5000 },
  );
});

/** Registry.find() as it was, with the regex matcher: the most specific registration. */
function oracleFind(patterns: readonly string[], key: string): string | undefined {
  if (patterns.includes(key) && !key.includes("*")) return key;
  const literals = (p: string) => p.length - (p.split("*").length - 1);
  const wildcards = (p: string) => p.split("*").length - 1;
  const ranked = patterns.map((p, order) => ({ p, order })).filter(({ p }) => p.includes("*"))
    .sort((a, b) =>
      literals(b.p) - literals(a.p) || wildcards(a.p) - wildcards(b.p) || a.order - b.order
    );
  return ranked.find(({ p }) => matches(p, key))?.p;
}

Deno.test("Registry.find() picks exactly what the regex-based registry picked", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.stringMatching(/^[ab:*]{1,6}$/), { minLength: 1, maxLength: 8 }),
      fc.stringMatching(/^[ab:]{0,8}$/),
      (patterns, key) => {
        const registry = new Registry();
        patterns.forEach((p) => registry.register(p, { mode: "strong-local" }));
        assert.equal(registry.find(key)?.pattern, oracleFind(patterns, key));
      },
    ),
    { numRuns: 5000 },
  );
});

Deno.test("globMatch() answers adversarial keys without backtracking", () => {
  // Each took the regex matcher from 0.2 s to over a minute on a 1 KiB key.
  const colons = ":".repeat(1005);
  const cases: [string, string][] = [
    ["cart:*:*:*:items", `cart${colons}`],
    ["*a*a*a*a*b", "a".repeat(1024)],
    ["a:*:*:*:*:z", `a${colons}`],
  ];
  for (const [p, key] of cases) assert.equal(globMatch(p.split("*"), key), false);
  assert.equal(globMatch("*a*a*a*a*b".split("*"), `${"a".repeat(1023)}b`), true);
});

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
      e instanceof WarpError && e.code === "UNREGISTERED_KEY" && e.message.endsWith(': "order:1"'),
  );
});

Deno.test("Registry.register() refuses a duplicate and invalid options, naming the value", () => {
  const registry = new Registry();
  registry.register("a:*", { mode: "eventual-distributed" });
  assert.throws(
    () => registry.register("a:*", { mode: "strong-local" }),
    /already registered: "a:\*"/,
  );
  assert.throws(() => registry.register("b", { mode: "bogus" as never }), /bogus/);
  assert.throws(() => registry.register("c", { mode: "strong-local", ttlMs: -5 }), RangeError);
  assert.throws(() => registry.register("", { mode: "strong-local" }), TypeError);
});

Deno.test("Registry.register() refuses a malformed pattern, naming it cut short", () => {
  const registry = new Registry();
  assert.throws(() => registry.register("a\ud800*", { mode: "strong-local" }), /lone surrogate/);
  assert.throws(() => registry.register("a\u0000*", { mode: "strong-local" }), /NUL/);
  const long = "x".repeat(10_000_000);
  assert.throws(
    () => registry.register(long, { mode: "strong-local" }),
    (e) => e instanceof TypeError && e.message.length < 200,
  );
  assert.throws(
    () => registry.register("k", { mode: long as never }),
    (e) => e instanceof TypeError && e.message.length < 200,
  );
});
