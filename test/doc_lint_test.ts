/**
 * Keeps `deno doc --lint` clean on every entry point of `deno.json` `exports`: every public
 * symbol documented, and every type the public API names exported too. The one exception
 * is types of the npm clients the adapters pass through unchanged (nats.js connection
 * options, a postgres.js client's options, node-redis client options): they are those
 * packages' own API, documented there, and re-exporting them would make their whole
 * surface Warp's.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

/** Types of the npm clients, named by the adapters' options as their packages define them. */
const THIRD_PARTY_TYPES: ReadonlySet<string> = new Set([
  "NodeConnectionOptions", // @nats-io/transport-node
  "NatsConnection", // @nats-io/transport-node
  "Authenticator", // @nats-io/nats-core, returned by the re-exported authenticators
  "postgres", // postgres
  "postgres.Options", // postgres
  "RedisClientOptions", // @redis/client
]);

interface Problem {
  readonly rule: string;
  readonly message: string;
  readonly at: string;
}

/** The problems in `deno doc --lint` output: one `error[rule]: message` block each. */
function problems(output: string): Problem[] {
  const found: Problem[] = [];
  for (const block of output.split(/^(?=error\[)/m).slice(1)) {
    const header = /^error\[([a-z-]+)\]: (.*)$/m.exec(block);
    const at = /-->\s*(\S+)/.exec(block)?.[1] ?? "?";
    if (header !== null) found.push({ rule: header[1]!, message: header[2]!, at });
  }
  return found;
}

function isThirdParty(problem: Problem): boolean {
  const match = /references private type '([^']+)'$/.exec(problem.message);
  return problem.rule === "private-type-ref" && match !== null &&
    THIRD_PARTY_TYPES.has(match[1]!);
}

Deno.test("deno doc --lint finds nothing on the entry points but the npm clients' own types", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as {
    exports: Record<string, string>;
  };
  const entries = Object.values(config.exports);
  assert.ok(entries.length >= 6, `entry points: ${entries.join(", ")}`);
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--lint", ...entries],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  const found = problems(output);
  const reported = /Found (\d+) documentation lint errors?/.exec(output);
  // Every reported error was parsed: a format change must not pass silently.
  assert.equal(found.length, reported === null ? 0 : Number(reported[1]), output);
  if (found.length === 0) assert.equal(code, 0, output);
  const left = found.filter((problem) => !isThirdParty(problem));
  assert.deepEqual(
    left.map((p) => `${p.at}: ${p.rule}: ${p.message}`),
    [],
    "document every public symbol and export every type the public API names",
  );
});

Deno.test("deno publish --dry-run ships no test, bench or build files", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty", "--no-check"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, output);
  const files = [...output.matchAll(/^\s+(file:\/\/\S+)/gm)].map((m) => m[1]!);
  assert.ok(files.some((file) => file.endsWith("/mod.ts")), output);
  const shipped = files.filter((file) =>
    /(_test|_bench)\.ts$|\/(test|bench|scripts|dist)\/|\.node\.mjs$/.test(file)
  );
  assert.deepEqual(shipped, [], "files that are not part of the package");
});
