import assert from "node:assert/strict";
import { importJepsenHistory, REGISTER_KEY } from "./jepsen.ts";
import { checkModel } from "./model_check.ts";
import { EdnSet, Keyword, readEdn, Tagged } from "./_edn.ts";

Deno.test("readEdn() reads the forms of Jepsen histories, with lines", () => {
  const { forms, mapLines } = readEdn(
    '; a comment\n[{:a 1, "s" "x\\ny", 2 -3.5e2, nil true}\n (:k sym) #{1} #_ :gone #inst "2024"]',
  );
  assert.equal(forms.length, 1);
  assert.equal(forms[0]!.line, 2);
  const [map, list, set, tagged] = forms[0]!.value as unknown[];
  assert.ok(map instanceof Map);
  assert.deepEqual([...map], [[":a", 1], ['"s"', "x\ny"], ["2", -350], ["nil", true]]);
  assert.equal(mapLines.get(map), 2);
  assert.ok((list as unknown[])[0] instanceof Keyword);
  assert.ok(set instanceof EdnSet);
  assert.ok(tagged instanceof Tagged);
  assert.equal((tagged as Tagged).tag, "inst");
});

Deno.test("readEdn() refuses what it does not support, with the line and column", () => {
  for (
    const [text, message] of [
      ["[1 2", /^Invalid EDN at line 1, column 5, unclosed collection, expected "\]"$/],
      ["\n  \\a", /^Invalid EDN at line 2, column 3, characters \(\\c\) are not supported$/],
      ["1/2", /unsupported number: 1\/2$/],
      ["99999999999999999999", /integer too large: 99999999999999999999$/],
      ['"abc', /unclosed string$/],
      ["{:a}", /map with an odd number of forms$/],
      ["{[1] 2}", /unsupported map key/],
      ['#"re"', /unsupported dispatch: #"$/],
      [")", /unexpected "\)"$/],
    ] as const
  ) {
    assert.throws(() => readEdn(text), { name: "SyntaxError", message }, text);
  }
});

Deno.test("importJepsenHistory() reads a register: invoke/ok/fail/info, times as event order", () => {
  const { history, keyed, ignored } = importJepsenHistory(
    [
      "{:process 0, :type :invoke, :f :write, :value 3}",
      "{:process :nemesis, :type :info, :f :start, :value nil}",
      "{:process 1, :type :invoke, :f :cas, :value [3 4]}",
      "{:process 0, :type :ok, :f :write, :value 3}",
      "{:process 1, :type :fail, :f :cas, :value [3 4]}",
      "{:process 2, :type :invoke, :f :read, :value nil}",
      "{:process 2, :type :ok, :f :read, :value 3}",
      "{:process 3, :type :invoke, :f :write, :value :x}",
      "{:process 3, :type :info, :f :write, :value :x}",
      "{:process 4, :type :invoke, :f :read, :value nil}",
    ].join("\n"),
  );
  assert.equal(keyed, false);
  assert.equal(ignored, 1);
  const r = REGISTER_KEY;
  assert.deepEqual(history.ops, [
    {
      id: 1,
      process: 0,
      key: r,
      invokeMs: 0,
      completeMs: 2,
      outcome: "ok",
      kind: "write",
      value: 3,
    },
    {
      id: 3,
      process: 1,
      key: r,
      invokeMs: 1,
      completeMs: 3,
      outcome: "fail",
      kind: "cas",
      expected: 3,
      value: 4,
    },
    {
      id: 6,
      process: 2,
      key: r,
      invokeMs: 4,
      completeMs: 5,
      outcome: "ok",
      kind: "read",
      value: 3,
      found: true,
    },
    {
      id: 8,
      process: 3,
      key: r,
      invokeMs: 6,
      completeMs: null,
      outcome: "unknown",
      kind: "write",
      value: ":x",
    },
    { id: 10, process: 4, key: r, invokeMs: 8, completeMs: null, outcome: "unknown", kind: "read" },
  ]);
});

Deno.test("importJepsenHistory() reads a nil read as unknown, as Knossos does, or as absent", () => {
  const text = "[{:process 0, :type :invoke, :f :write, :value 1}\n" +
    " {:process 0, :type :ok, :f :write, :value 1}\n" +
    " {:process 0, :type :invoke, :f :read, :value nil}\n" +
    " {:process 0, :type :ok, :f :read, :value nil}]";
  const lenient = importJepsenHistory(text);
  assert.equal(lenient.history.ops[1]!.outcome, "unknown");
  assert.equal(checkModel(lenient.history, "cas-register").status, "pass");
  const strict = importJepsenHistory(text, { nilRead: "absent" });
  assert.equal(strict.history.ops[1]!.found, false);
  assert.equal(checkModel(strict.history, "cas-register").status, "fail");
});

Deno.test("importJepsenHistory() reads independent keys and one-op Knossos transactions", () => {
  const keyed = importJepsenHistory(
    "{:process 0, :type :invoke, :f :cas, :value [:k [1 2]]}\n" +
      "{:process 0, :type :ok, :f :cas, :value [:k [1 2]]}\n" +
      "{:process 1, :type :invoke, :f :read, :value [5 nil]}\n" +
      '{:process 1, :type :ok, :f :read, :value [5 "v"]}',
  );
  assert.equal(keyed.keyed, true);
  assert.deepEqual(keyed.history.ops.map((op) => [op.key, op.kind, op.expected, op.value]), [
    ["k", "cas", 1, 2],
    ["5", "read", undefined, "v"],
  ]);
  const txn = importJepsenHistory(
    "{:process 0, :type :invoke, :f :txn, :value [[:write :x 1]]}\n" +
      "{:process 0, :type :ok, :f :txn, :value [[:write :x 1]]}\n" +
      "{:process 1, :type :invoke, :f :txn, :value [[:read :x nil]]}\n" +
      "{:process 1, :type :ok, :f :txn, :value [[:read :x 1]]}",
  );
  assert.deepEqual(txn.history.ops.map((op) => [op.key, op.kind, op.value]), [
    ["x", "write", 1],
    ["x", "read", 1],
  ]);
  assert.equal(checkModel(txn.history, "kv").status, "pass");
});

Deno.test("importJepsenHistory() reads Knossos multi-register transactions as txn ops", () => {
  const imported = importJepsenHistory(
    "[{:process 0, :type :invoke, :f :txn, :value [[:write :x 1] [:write :y 1]]}\n" +
      " {:process 1, :type :invoke, :f :txn, :value [[:read :x nil] [:read :y nil]]}\n" +
      " {:process 0, :type :ok, :f :txn, :value [[:write :x 1] [:write :y 1]]}\n" +
      " {:process 1, :type :ok, :f :txn, :value [[:read :x 1] [:read :y 0]]}]",
  );
  assert.equal(imported.transactions, true);
  assert.deepEqual(imported.history.ops[1], {
    id: 2,
    process: 1,
    key: "x",
    kind: "txn",
    txn: [{ kind: "read", key: "x", value: 1 }, { kind: "read", key: "y", value: 0 }],
    invokeMs: 1,
    completeMs: 3,
    outcome: "ok",
  });
  // A torn read: x written, y not, by one transaction.
  const result = checkModel(imported.history, "multi-register", { initial: 0 });
  assert.equal(result.status, "fail");
  assert.equal(result.keys[0]!.key, "x,y");
  assert.equal(
    result.keys[0]!.explanation,
    "Ops of x,y are not linearizable: txn 2 on process 1 ([read x 1, read y 0]) cannot take " +
      "effect after op 1, which leaves x = 1, y = 1",
  );
});

Deno.test("importJepsenHistory() refuses what it does not support, naming the line", () => {
  const invoke = (process: string, f: string, value: string) =>
    `{:process ${process}, :type :invoke, :f ${f}, :value ${value}}`;
  for (
    const [text, message] of [
      ["[1]", /^Invalid op at line 1, expected a map: 1$/],
      [invoke("0", ":append", "1"), /^Invalid op at line 1, unsupported :f .*: ":append"$/],
      [invoke("0", ":txn", "[[:cas :x [1 2]] [:read :y nil]]"), /unsupported micro-op .*: :cas$/],
      [invoke("0", ":txn", "[[:read :x]]"), /micro-ops \[f key value\]: \[\[:read :x\]\]$/],
      [
        invoke("0", ":txn", "[[:read :x nil] [:read :y nil]]") +
        "\n{:process 0, :type :ok, :f :txn, :value [[:read :y 1] [:read :x 1]]}",
        /^Invalid op at line 2, completes a transaction with other steps: \[\[:read :y 1\] \[:read :x 1\]\]$/,
      ],
      [invoke('"p"', ":read", "nil"), /:process must be an integer, or a keyword/],
      [invoke("1.5", ":read", "nil"), /:process must be an integer: 1.5$/],
      [invoke("0", ":cas", "5"), /a cas :value must be \[expected new\]: 5$/],
      [
        invoke("0", ":read", "nil") + "\n" + invoke("0", ":read", "nil"),
        /^Invalid op at line 2, process 0 invokes while its op of line 1 is pending: 0$/,
      ],
      [
        "{:process 0, :type :ok, :f :read, :value 1}",
        /^Invalid op at line 1, :ok of process 0 with no invocation pending: "read"$/,
      ],
      [
        invoke("0", ":read", "nil") + "\n{:process 0, :type :ok, :f :write, :value 1}",
        /^Invalid op at line 2, completes an invocation of :read with :f: ":write"$/,
      ],
      ["{:process 0, :type :begin, :f :read}", /:type must be :invoke, :ok, :fail or :info/],
      [invoke("0", ":write", "#{1}"), /unsupported value \(sets, symbols and tagged values/],
    ] as const
  ) {
    assert.throws(() => importJepsenHistory(text), { name: "TypeError", message }, text);
  }
  assert.throws(() => importJepsenHistory("[1"), SyntaxError);
  assert.throws(
    () => importJepsenHistory("", { nilRead: "maybe" as "absent" }),
    /^TypeError: Invalid nilRead/,
  );
});
