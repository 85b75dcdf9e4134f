/**
 * The Node path, inside `deno task test`: builds `dist/` (`deno task build:node`, see
 * `scripts/build_node.ts`; its `npm install` is skipped when `dist/node_modules/` matches
 * `dist/package.json`), then runs `test/node/smoke.node.mjs` under Node's own test runner
 * against it; and installs the packed build with `npm install` into a fresh folder, as a
 * user does, and type-checks and runs a TypeScript program against it under
 * `moduleResolution` `node16`, `nodenext`, `bundler` and `node10`.
 *
 * Needs `--allow-run` (deno, npm, node), `--allow-read`, `--allow-write=dist,/tmp`, the npm
 * registry (the fresh folder installs from it), and NATS on 127.0.0.1:4222 (or
 * `WARP_TEST_NATS_URL`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { buildNode, defaultPaths, NODE_MAJOR_MIN } from "../scripts/build_node.ts";
import type { BuildResult } from "../scripts/build_node.ts";
/** Tests in `smoke.node.mjs`: a run that reports fewer ran the wrong file or none. */
const SMOKE_TESTS_MIN = 6;

/** Reads a `# name N` counter from a TAP summary. */
function tapCount(output: string, name: string): number | undefined {
  const match = new RegExp(`^# ${name} (\\d+)$`, "m").exec(output);
  return match === null ? undefined : Number(match[1]);
}

/** One build per test run, shared by the tests of this file. */
let built: Promise<BuildResult> | undefined;
const build = () => built ??= buildNode(defaultPaths());

async function runNode(args: string[], cwd: URL): Promise<{ code: number; output: string }> {
  return await runCommand("node", args, cwd);
}

async function runCommand(
  command: string,
  args: string[],
  cwd: URL,
): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command(command, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, output: decoder.decode(stdout) + decoder.decode(stderr) };
}

Deno.test("buildNode() output passes the node:test smoke test under Node, when built from this tree", async () => {
  const paths = defaultPaths();
  const version = await runNode(["--version"], paths.root);
  const major = Number(/^v(\d+)\./.exec(version.output)?.[1]);
  assert.ok(major >= NODE_MAJOR_MIN, `Node ${NODE_MAJOR_MIN}+ required: ${version.output.trim()}`);

  const result = await build();
  assert.equal(result.manifest.type, "module");

  const smoke = await runNode(
    ["--test", "--test-reporter=tap", "test/node/smoke.node.mjs"],
    paths.root,
  );
  const passed = tapCount(smoke.output, "pass");
  const failed = tapCount(smoke.output, "fail");
  assert.equal(smoke.code, 0, `node --test exited with ${smoke.code}:\n${smoke.output}`);
  assert.equal(failed, 0, smoke.output);
  assert.ok(
    passed !== undefined && passed >= SMOKE_TESTS_MIN,
    `Expected at least ${SMOKE_TESTS_MIN} passing tests:\n${smoke.output}`,
  );
});

/** A user's program: mixed value types on one node, every entry point imported. */
const CONSUMER_TS = `
import { MemoryStore, structuredCodec, Warp } from "@warp/warp";
import type { Codec, WarpOptions } from "@warp/warp";
import { NodeCore } from "@warp/warp/core";
import { NatsTransport } from "@warp/warp/nats";
import { PostgresStore } from "@warp/warp/postgres";
import { RedisTransport } from "@warp/warp/redis";

interface User {
  readonly id: bigint;
  readonly createdAt: Date;
}
const codec: Codec<unknown> = structuredCodec;
const options: WarpOptions<unknown> = { store: new MemoryStore(), codec };
const warp = new Warp(options);
warp.register("user:*", { mode: "strong-local" });
warp.register("count:*", { mode: "strong-local" });
await warp.set<User>("user:1", { id: 2n ** 64n, createdAt: new Date(0) });
await warp.set("count:1", 41);
const user: User | undefined = await warp.get<User>("user:1");
const count: number | undefined = await warp.get<number>("count:1");
await warp.close();
console.log(JSON.stringify({
  user: user?.createdAt instanceof Date && user.id === 2n ** 64n,
  count,
  adapters: [NodeCore, NatsTransport, PostgresStore, RedisTransport].map((f) => typeof f),
}));
`;

/** TypeScript settings a Node user may have; each must find the package and its types. */
const RESOLUTIONS: Readonly<Record<string, { module: string; moduleResolution: string }>> = {
  node16: { module: "node16", moduleResolution: "node16" },
  nodenext: { module: "nodenext", moduleResolution: "nodenext" },
  bundler: { module: "esnext", moduleResolution: "bundler" },
  node10: { module: "esnext", moduleResolution: "node10" },
};

Deno.test("the packed build installs with npm into a fresh folder and type-checks under node16, nodenext, bundler and node10", async () => {
  const paths = defaultPaths();
  const { manifest } = await build();
  const folder = new URL(`file://${await Deno.makeTempDir({ prefix: "warp-npm-" })}/`);
  try {
    const packed = await runCommand(
      "npm",
      ["pack", "--silent", "--pack-destination", folder.pathname],
      paths.dist,
    );
    assert.equal(packed.code, 0, packed.output);
    const tarball = packed.output.trim().split("\n").at(-1)!;
    assert.match(tarball, /^warp-warp-.*\.tgz$/);
    const peers = manifest.peerDependencies as Record<string, string>;
    const devDependencies = manifest.devDependencies as Record<string, string>;
    await Deno.writeTextFile(
      new URL("package.json", folder),
      JSON.stringify({
        name: "warp-consumer",
        private: true,
        type: "module",
        dependencies: { "@warp/warp": `file:./${tarball}`, ...peers },
        devDependencies: {
          typescript: devDependencies.typescript,
          "@types/node": devDependencies["@types/node"],
        },
      }),
    );
    const install = await runCommand(
      "npm",
      ["install", "--no-audit", "--no-fund", "--loglevel=warn"],
      folder,
    );
    assert.equal(install.code, 0, install.output);
    // Warp's own engines range holds on this Node; only the NATS client's may warn.
    assert.doesNotMatch(install.output, /EBADENGINE.*@warp\/warp/, install.output);
    assert.equal(
      (manifest.dependencies as Record<string, string>)["@nats-io/transport-node"],
      undefined,
      "the NATS client is an optional peer, not a dependency",
    );

    await Deno.writeTextFile(new URL("consumer.ts", folder), CONSUMER_TS);
    for (const [name, resolution] of Object.entries(RESOLUTIONS)) {
      await Deno.writeTextFile(
        new URL(`tsconfig.${name}.json`, folder),
        JSON.stringify({
          compilerOptions: {
            ...resolution,
            target: "ES2022",
            lib: ["ESNext"],
            types: ["node"],
            strict: true,
            outDir: `out-${name}`,
            // Once with every .d.ts checked, Warp's included; the other settings only
            // resolve (a full check takes about a minute on a loaded machine).
            skipLibCheck: name !== "nodenext",
          },
          files: ["consumer.ts"],
        }),
      );
      const tsc = await runNode(
        ["node_modules/typescript/bin/tsc", "-p", `tsconfig.${name}.json`],
        folder,
      );
      assert.equal(tsc.code, 0, `tsc under ${name}:\n${tsc.output}`);
    }
    const run = await runNode(["out-nodenext/consumer.js"], folder);
    assert.equal(run.code, 0, run.output);
    assert.deepEqual(JSON.parse(run.output.trim().split("\n").at(-1)!), {
      user: true,
      count: 41,
      adapters: ["function", "function", "function", "function"],
    });
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
});
