/**
 * The Node path, inside `deno task test`: builds `dist/` (see `test/node/build.ts`; its
 * `npm install` is skipped when `dist/node_modules/` matches `dist/package.json`), then runs
 * `test/node/smoke.node.mjs` under Node's own test runner against it.
 *
 * Needs `--allow-run` (deno, npm, node), `--allow-read` and `--allow-write=dist`, and NATS
 * on 127.0.0.1:4222 (or `WARP_TEST_NATS_URL`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { buildNode, defaultPaths } from "./node/build.ts";

/** Node's major version must be at least this: the package's `engines.node`. */
const NODE_MAJOR_MIN = 20;
/** Tests in `smoke.node.mjs`: a run that reports fewer ran the wrong file or none. */
const SMOKE_TESTS_MIN = 6;

/** Reads a `# name N` counter from a TAP summary. */
function tapCount(output: string, name: string): number | undefined {
  const match = new RegExp(`^# ${name} (\\d+)$`, "m").exec(output);
  return match === null ? undefined : Number(match[1]);
}

async function runNode(args: string[], cwd: URL): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command("node", {
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

  const build = await buildNode(paths);
  assert.equal(build.manifest.type, "module");

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
