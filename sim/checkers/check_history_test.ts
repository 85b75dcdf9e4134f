import assert from "node:assert/strict";
import { main } from "../check_history.ts";

const FIXTURE = new URL("./testdata/stale_read.json", import.meta.url).pathname;

async function run(args: string[], files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, {
    readTextFile: (path) => path in files ? Promise.resolve(files[path]!) : Deno.readTextFile(path),
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const clean = JSON.stringify({
  format: "warp-history/1",
  keys: { k: { mode: "strong-distributed" } },
  ops: [
    {
      id: 1,
      process: "n1",
      key: "k",
      kind: "write",
      value: 1,
      version: 1,
      invokeMs: 0,
      completeMs: 1,
      outcome: "ok",
    },
    {
      id: 2,
      process: "n2",
      key: "k",
      kind: "read",
      value: 1,
      found: true,
      version: 1,
      invokeMs: 2,
      completeMs: 3,
      outcome: "ok",
    },
  ],
});

Deno.test("main() prints each violation in a sentence and exits 1 on a stale read file", async () => {
  const { code, out, err } = await run([FIXTURE]);
  assert.equal(code, 1, err);
  assert.match(out, /^S1 +fail +1 +1$/m);
  assert.match(out, /^S2 +fail +1 +1$/m);
  assert.match(out, /^E1 +pass /m);
  assert.match(out, /^SL1 +skipped /m);
  assert.match(
    out,
    /^FAIL S2 st:1 \(ops 4, 3\): Read 4 on n2 invoked at 41 ms returned version 0 of st:1, but write 3 on n1 had completed with version 1 at 40 ms$/m,
  );
  assert.match(out, /^FAIL S1 st:1 \(ops 4, 3\): Ops of st:1 are not linearizable/m);
});

Deno.test("main() exits 0 on a clean history and prints JSON with --json", async () => {
  const text = await run(["h.json"], { "h.json": clean });
  assert.equal(text.code, 0);
  assert.match(text.out, /No violation$/);
  const json = await run(["h.json", "--json"], { "h.json": clean });
  assert.equal(json.code, 0);
  const parsed = JSON.parse(json.out);
  assert.equal(parsed.results.S1, "pass");
  assert.deepEqual(parsed.violations, []);
});

Deno.test("main() prints unknown clearly and exits 0 when the budget runs out", async () => {
  const ops = [];
  for (let i = 0; i < 6; i++) {
    ops.push({
      id: i,
      process: "n1",
      key: "k",
      kind: "write",
      value: i,
      invokeMs: 0,
      completeMs: 9,
      outcome: "ok",
    });
    ops.push({
      id: 10 + i,
      process: "n2",
      key: "k",
      kind: "read",
      value: (i * 5) % 6,
      found: true,
      invokeMs: 0,
      completeMs: 9,
      outcome: "ok",
    });
  }
  const file = JSON.stringify({
    format: "warp-history/1",
    keys: { k: { mode: "strong-distributed" } },
    ops,
  });
  const { code, out } = await run(["h.json", "--budget", "5"], { "h.json": file });
  assert.equal(code, 0);
  assert.match(out, /^S1 +unknown /m);
  assert.match(out, /^UNKNOWN S1 k: the linearizability search ran out of its budget of 5 steps/m);
});

Deno.test("main() exits 2 on bad arguments, an unreadable file or a malformed history", async () => {
  for (
    const [args, message] of [
      [[], /Expected exactly one history file: none/],
      [["a", "b"], /Expected exactly one history file: a b/],
      [["h.json", "--budget", "x"], /Invalid --budget, expected a positive integer: x/],
      [["h.json", "--verbose"], /Unknown option '--verbose'/],
      [["/nonexistent/h.json"], /^Cannot check \/nonexistent\/h.json: /],
      [["bad.json"], /^Cannot check bad.json: /],
      [
        ["old.json"],
        /^Cannot check old.json: Invalid history format, expected "warp-history\/1": "v0"$/,
      ],
    ] as const
  ) {
    const { code, err } = await run([...args], {
      "h.json": clean,
      "bad.json": "{ not json",
      "old.json": JSON.stringify({ format: "v0" }),
    });
    assert.equal(code, 2, args.join(" "));
    assert.match(err, message);
  }
});
