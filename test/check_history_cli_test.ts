/**
 * `check-history` as a CI runs it: a `deno run` subprocess on history files, its exit code
 * asserted (0 pass, 1 violation, 2 bad input, 3 unknown or nothing checked).
 */
import assert from "node:assert/strict";

const CLI = new URL("../sim/check_history.ts", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/check_history/", import.meta.url).pathname;

async function checkHistory(...args: string[]) {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
  const { code, stdout, stderr } = await command.output();
  const decoder = new TextDecoder();
  return { code, out: decoder.decode(stdout), err: decoder.decode(stderr) };
}

Deno.test("check-history exits 0 on a linearizable cas register with timed-out ops", async () => {
  const { code, out, err } = await checkHistory(
    FIXTURES + "cas_register_ok.json",
    "--model",
    "cas-register",
  );
  assert.equal(code, 0, err);
  assert.match(out, /: 7 checked, 1 failed and dropped, 3 of unknown outcome; 1 key$/m);
  assert.match(out, /^Linearizable \(\d+ steps\)$/m);
});

Deno.test("check-history exits 1 on a non-linearizable history, naming the key and the op", async () => {
  const register = await checkHistory(
    FIXTURES + "cas_register_bad.json",
    "--model",
    "cas-register",
  );
  assert.equal(register.code, 1, register.err);
  assert.match(
    register.out,
    /^FAIL r \(ops 5, 4, 3, 2, 1\): Ops of r are not linearizable: read 5 on process 3 \(returned 1\) cannot take effect after ops 1, 2, 3, 4, which leave 3$/m,
  );
  // Key b fails; c, after it, is not searched.
  const kv = await checkHistory(FIXTURES + "kv_bad.json", "--model", "kv");
  assert.equal(kv.code, 1, kv.err);
  assert.match(kv.out, /^a +pass +2 /m);
  assert.match(kv.out, /^b +fail +3 /m);
  assert.match(kv.out, /^c +skipped +1 +0$/m);
  assert.match(kv.out, /^Not linearizable: key b; 1 key not searched$/m);
});

Deno.test("check-history exits 3 when a tiny budget runs out, and on an empty history", async () => {
  const budget = await checkHistory(
    FIXTURES + "cas_register_ok.json",
    "--model",
    "cas-register",
    "--budget",
    "2",
  );
  assert.equal(budget.code, 3, budget.err);
  assert.match(budget.out, /^UNKNOWN r: the search ran out of its budget \(2 steps per key\)/m);
  const empty = await checkHistory(FIXTURES + "empty.json", "--model", "cas-register");
  assert.equal(empty.code, 3, empty.err);
  assert.match(empty.out, /^NOTHING CHECKED/m);
});

Deno.test("check-history exits 2 on malformed input, naming the problem and where", async () => {
  const malformed = await checkHistory(FIXTURES + "malformed.json", "--model", "cas-register");
  assert.equal(malformed.code, 2);
  assert.match(malformed.err, /Invalid op 2, a cas must record expected \(null: absent\)/);
  const noKeys = await checkHistory(FIXTURES + "cas_register_ok.json");
  assert.equal(noKeys.code, 2);
  assert.match(noKeys.err, /or check against a model: --model/);
  const noFile = await checkHistory(FIXTURES + "missing.json");
  assert.equal(noFile.code, 2);
  assert.match(noFile.err, /^Cannot read /);
});

Deno.test("check-history reads Jepsen EDN histories: one register, or independent keys", async () => {
  const register = await checkHistory(FIXTURES + "cas_register.edn");
  assert.equal(register.code, 0, register.err + register.out);
  assert.match(register.out, /\(EDN, one register; 1 op of non-client processes left out\)/);
  assert.match(register.out, /^Linearizable/m);
  const independent = await checkHistory(FIXTURES + "independent_bad.edn");
  assert.equal(independent.code, 1, independent.err);
  assert.match(independent.out, /against kv: /);
  // Op ids are the lines of their invocations.
  assert.match(
    independent.out,
    /^FAIL 7 \(ops 5, 1\): Ops of 7 are not linearizable: read 5 on process 2 \(returned 3\)/m,
  );
});

Deno.test("check-history reads Knossos multi-register transactions", async () => {
  const { code, out, err } = await checkHistory(
    FIXTURES + "multi_register_bad.edn",
    "--initial",
    "0",
  );
  assert.equal(code, 1, err);
  assert.match(out, /\(EDN, transactions\) against multi-register: /);
  assert.match(
    out,
    /^FAIL x,y \(ops 7, 5, 3\): Ops of x,y are not linearizable: txn 7 on process 2 \(\[read x 1, read y 0\]\) cannot take effect after ops 3, 5, which leave x = 1, y = 1$/m,
  );
});
