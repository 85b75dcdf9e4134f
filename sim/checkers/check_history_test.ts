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

Deno.test("main() prints unknown clearly and exits 3 when the budget runs out", async () => {
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
  assert.equal(code, 3);
  assert.match(out, /^S1 +unknown /m);
  assert.match(
    out,
    /^UNKNOWN S1 k: the linearizability search ran out of its budget \(5 steps per key\)/m,
  );
  const total = await run(["h.json", "--budget-total", "7"], { "h.json": file });
  assert.equal(total.code, 3);
  assert.match(total.out, /\(100000 steps per key, 7 steps in all\)/);
});

Deno.test("main() prints its usage and exit codes with --help", async () => {
  const { code, out } = await run(["--help"]);
  assert.equal(code, 0);
  assert.match(
    out,
    /^Usage: check_history.ts FILE \[--model register\|cas-register\|kv\|append-kv\|multi-register\]/,
  );
  assert.match(out, /3 unknown or nothing checked$/);
});

Deno.test("main() exits 3 when nothing was checked", async () => {
  const none = JSON.stringify({ format: "warp-history/1", keys: {}, ops: [] });
  const contract = await run(["h.json"], { "h.json": none });
  assert.equal(contract.code, 3);
  assert.match(contract.out, /Nothing checked$/);
  const model = await run(["h.json", "--model", "kv"], { "h.json": none });
  assert.equal(model.code, 3);
  assert.match(model.out, /^NOTHING CHECKED/m);
  // Every op failed: nothing happened, nothing to check.
  const failed = JSON.stringify({
    format: "warp-history/1",
    ops: [{
      id: 1,
      process: 1,
      key: "r",
      kind: "write",
      value: 1,
      invokeMs: 0,
      completeMs: 1,
      outcome: "fail",
    }],
  });
  assert.equal((await run(["h.json", "--model", "register"], { "h.json": failed })).code, 3);
});

Deno.test("main() checks against a model: exit 0, or 1 naming the failing key and op", async () => {
  const op = (id: number, kind: string, extra: object, invokeMs: number) => ({
    id,
    process: id,
    key: "r",
    kind,
    invokeMs,
    completeMs: invokeMs + 1,
    outcome: "ok",
    ...extra,
  });
  const ok = [op(1, "write", { value: 1 }, 0), op(2, "cas", { expected: 1, value: 2 }, 2)];
  const good = JSON.stringify({ format: "warp-history/1", ops: ok });
  const pass = await run(["h.json", "--model", "cas-register"], { "h.json": good });
  assert.equal(pass.code, 0, pass.err);
  assert.match(pass.out, /^r +pass +2 /m);
  assert.match(pass.out, /^Linearizable/m);
  const bad = JSON.stringify({
    format: "warp-history/1",
    ops: [...ok, op(3, "read", { value: 1 }, 4)],
  });
  const fail = await run(["h.json", "--model", "cas-register"], { "h.json": bad });
  assert.equal(fail.code, 1);
  assert.match(
    fail.out,
    /^FAIL r \(ops 3, 2, 1\): Ops of r are not linearizable: read 3 on process 3 \(returned 1\) cannot take effect after ops 1, 2, which leave 2$/m,
  );
  const initial = await run(["h.json", "--model", "cas-register", "--initial", "1"], {
    "h.json": JSON.stringify({ format: "warp-history/1", ops: [op(1, "read", { value: 1 }, 0)] }),
  });
  assert.equal(initial.code, 0, initial.out);
  const json = await run(["h.json", "--model", "cas-register", "--json"], { "h.json": bad });
  assert.equal(JSON.parse(json.out).keys[0].status, "fail");
});

Deno.test("main() exits 2 on bad arguments, an unreadable file or a malformed history", async () => {
  for (
    const [args, message] of [
      [[], /Expected exactly one history file: none/],
      [["a", "b"], /Expected exactly one history file: a b/],
      [["h.json", "--budget", "x"], /Invalid --budget, expected a positive integer: x/],
      [["h.json", "--budget", "1.5"], /Invalid --budget, expected a positive integer: 1.5/],
      [["h.json", "--budget-total", "0"], /Invalid --budget-total, expected a positive integer: 0/],
      [["h.json", "--model", "queue"], /Invalid --model, expected one of register, cas-register/],
      [["h.json", "--format", "xml"], /Invalid --format, expected json or edn: xml/],
      [["h.json", "--initial", "{"], /Invalid --initial, expected a JSON value: \{/],
      [["h.json", "--nil-read", "maybe"], /Invalid --nil-read, expected unknown or absent/],
      [
        ["h.json", "--model", "append-kv"],
        /Invalid op 1, the value written of an append-kv key must be an array: 1$/,
      ],
      [
        ["h.json", "--model", "kv", "--format", "edn"],
        /^Cannot check h.json: Invalid EDN at line 1, column 10, empty keyword$/,
      ],
      [["bad.edn"], /^Cannot check bad.edn: Invalid EDN at line 2, column 1, unclosed collection/],
      [["h.json", "--verbose"], /Unknown option '--verbose'/],
      [["/nonexistent/h.json"], /^Cannot read \/nonexistent\/h.json: /],
      [["bad.json"], /^Cannot check bad.json: Invalid JSON: /],
      [
        ["old.json"],
        /^Cannot check old.json: Invalid history format, expected "warp-history\/1": "v0"$/,
      ],
    ] as const
  ) {
    const { code, err } = await run([...args], {
      "h.json": clean,
      "bad.json": "{ not json",
      "bad.edn": "[{:process 1\n",
      "old.json": JSON.stringify({ format: "v0" }),
    });
    assert.equal(code, 2, args.join(" "));
    assert.match(err, message);
  }
});
