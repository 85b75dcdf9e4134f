/** Tests of how `.ci/run` reads `deno test` output: the CI trusts its one summary line. */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../.ci/run", import.meta.url));

/** Runs `.ci/run --parse-log -` on `log`; returns its output line and exit code. */
async function parse(log: string): Promise<{ line: string; code: number }> {
  const child = new Deno.Command("bash", {
    args: [SCRIPT, "--parse-log", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(log));
  await writer.close();
  const { code, stdout } = await child.output();
  return { line: new TextDecoder().decode(stdout).trim(), code };
}

Deno.test(".ci/run --parse-log passes a run whose summary has no failure", async () => {
  assert.deepEqual(
    await parse("running 3 tests\n...\nok | 3 passed | 0 failed (12ms)\n"),
    { line: "3 passed, 0 failed", code: 0 },
  );
});

Deno.test(".ci/run --parse-log fails a run with a failed test", async () => {
  assert.deepEqual(
    await parse("FAILED | 3 passed | 1 failed (1s)\n\nerror: Test failed\n"),
    { line: "3 passed, 1 failed", code: 1 },
  );
});

Deno.test(".ci/run --parse-log counts tests, not steps, and ignores colours", async () => {
  const log = "\x1b[0m\x1b[32mok\x1b[0m | 2 passed (5 steps) | 0 failed | 1 ignored " +
    "\x1b[0m\x1b[38;5;245m(869ms)\x1b[0m\n" +
    "FAILED | 0 passed (1 step) | 2 failed (1 step) (3ms)\n";
  assert.deepEqual(await parse(log), { line: "2 passed, 2 failed", code: 1 });
});

Deno.test(".ci/run --parse-log sums several summaries", async () => {
  const log = "ok | 3 passed | 0 failed (1ms)\nnoise | 9 passed\nok | 4 passed | 0 failed (2ms)\n";
  assert.deepEqual(await parse(log), { line: "7 passed, 0 failed", code: 0 });
});

Deno.test(".ci/run --parse-log fails a run in which no test ran", async () => {
  assert.deepEqual(await parse("ok | 0 passed | 0 failed | 5 filtered out (0ms)\n"), {
    line: "0 passed, 0 failed",
    code: 1,
  });
  assert.deepEqual(await parse("error: Type checking failed.\n"), {
    line: "0 passed, 0 failed",
    code: 1,
  });
});
