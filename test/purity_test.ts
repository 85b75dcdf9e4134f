/**
 * The core is pure: no clock, randomness, timers or I/O under `src/core/`, and no import
 * from outside it. This test reads the sources, with comments removed and string
 * contents blanked, so documentation may name what the code must not use.
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CORE = join(ROOT, "src", "core");

/** What must not appear in core code, and why. */
const FORBIDDEN: readonly { pattern: RegExp; what: string }[] = [
  { pattern: /\bDate\b/, what: "the clock (Date)" },
  { pattern: /\bperformance\b/, what: "the clock (performance)" },
  { pattern: /\bMath\s*\.\s*random\b/, what: "randomness (Math.random)" },
  { pattern: /\bcrypto\b/, what: "randomness (crypto)" },
  { pattern: /\bset(Timeout|Interval|Immediate)\b/, what: "a timer" },
  { pattern: /\bqueueMicrotask\b/, what: "a microtask" },
  { pattern: /\bDeno\b/, what: "the Deno runtime" },
  { pattern: /\bawait\b/, what: "await" },
  { pattern: /\basync\b/, what: "async" },
  { pattern: /\bfetch\s*\(/, what: "I/O (fetch)" },
  { pattern: /\brequire\s*\(/, what: "require()" },
  { pattern: /\bimport\s*\(/, what: "a dynamic import" },
];

/** A problem found in one source file. */
interface Violation {
  readonly line: number;
  readonly problem: string;
}

/**
 * Splits TypeScript source into code without comments (newlines kept, so line numbers
 * stay) and the same with string and template contents blanked too. Regular expression
 * literals are recognised by the usual heuristic (a `/` where an operand may start).
 */
function stripSource(source: string): { code: string; bare: string } {
  let code = "";
  let bare = "";
  const emit = (text: string, blank: boolean) => {
    code += text;
    bare += blank ? text.replace(/[^\n]/g, " ") : text;
  };
  /** Brace depths at which `${…}` substitutions of enclosing templates close. */
  const templateDepths: number[] = [];
  let depth = 0;
  let last = ""; // the last significant code character, for the regex heuristic
  let i = 0;
  const readString = (quote: string): void => {
    let j = i + 1;
    while (j < source.length && source[j] !== quote && source[j] !== "\n") {
      j += source[j] === "\\" ? 2 : 1;
    }
    emit(quote, false);
    emit(source.slice(i + 1, j), true);
    emit(source[j] ?? "", false);
    i = j + 1;
  };
  /** Reads template text from `i` up to the closing backtick or a `${`. */
  const readTemplate = (): void => {
    let j = i;
    while (
      j < source.length && source[j] !== "`" && !(source[j] === "$" && source[j + 1] === "{")
    ) {
      j += source[j] === "\\" ? 2 : 1;
    }
    emit(source.slice(i, j), true);
    if (source[j] === "`") {
      emit("`", false);
      i = j + 1;
      last = "`";
    } else {
      emit("${", false);
      templateDepths.push(depth);
      depth++;
      i = j + 2;
      last = "{";
    }
  };
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === "/" && next === "/") {
      while (i < source.length && source[i] !== "\n") i++;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end === -1 ? source.length : end + 2;
      emit(source.slice(i, stop).replace(/[^\n]/g, " "), false);
      i = stop;
    } else if (c === "'" || c === '"') {
      readString(c);
      last = c;
    } else if (c === "`") {
      emit("`", false);
      i++;
      readTemplate();
    } else if (c === "/" && (last === "" || "(,=:[!&|?{};+-*%<>~^".includes(last))) {
      let j = i + 1;
      let inClass = false;
      while (j < source.length && source[j] !== "\n") {
        if (source[j] === "\\") j++;
        else if (source[j] === "[") inClass = true;
        else if (source[j] === "]") inClass = false;
        else if (source[j] === "/" && !inClass) break;
        j++;
      }
      emit("/", false);
      emit(source.slice(i + 1, j), true);
      emit("/", false);
      i = j + 1;
      last = "/";
    } else {
      if (c === "{") depth++;
      if (c === "}") {
        depth--;
        if (templateDepths.at(-1) === depth) {
          templateDepths.pop();
          emit("}", false);
          i++;
          readTemplate();
          continue;
        }
      }
      emit(c, false);
      if (!/\s/.test(c)) last = /[\w$)\]]/.test(c) ? "a" : c;
      i++;
    }
  }
  return { code, bare };
}

/** The module specifiers a source (without comments) imports or re-exports from. */
function importSpecifiers(code: string): { specifier: string; index: number }[] {
  const found: { specifier: string; index: number }[] = [];
  const patterns = [
    /(?:^|[\s;}])(?:import|export)\s[^;'"`]*?\bfrom\s*(["'])(.*?)\1/g,
    /(?:^|[\s;}])import\s*(["'])(.*?)\1/g,
  ];
  for (const pattern of patterns) {
    for (const match of code.matchAll(pattern)) {
      found.push({ specifier: match[2]!, index: match.index });
    }
  }
  return found;
}

/** Every purity problem in one core file's source. */
function findViolations(source: string, file: string): Violation[] {
  const { code, bare } = stripSource(source);
  const lineOf = (index: number) => code.slice(0, index).split("\n").length;
  const violations: Violation[] = [];
  for (const { pattern, what } of FORBIDDEN) {
    for (const match of bare.matchAll(new RegExp(pattern.source, "g"))) {
      violations.push({ line: lineOf(match.index), problem: `uses ${what}: ${match[0]}` });
    }
  }
  for (const { specifier, index } of importSpecifiers(code)) {
    const target = resolve(dirname(file), specifier);
    const inside = !relative(CORE, target).startsWith("..");
    const ok = /^\.\.?\//.test(specifier) && inside && target.endsWith(".ts") &&
      !target.endsWith("_test.ts");
    if (!ok) {
      violations.push({
        line: lineOf(index),
        problem: `imports from outside src/core/: ${specifier}`,
      });
    }
  }
  return violations.sort((a, b) => a.line - b.line);
}

function coreSourceFiles(directory: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...coreSourceFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) files.push(path);
  }
  return files.sort();
}

Deno.test("src/core/ has no clock, randomness, timers or I/O", () => {
  const files = coreSourceFiles(CORE);
  assert.ok(files.length > 0, `No source files found in ${CORE}`);
  const report: string[] = [];
  for (const file of files) {
    for (const { line, problem } of findViolations(readFileSync(file, "utf8"), file)) {
      report.push(`${relative(ROOT, file)}:${line}: ${problem}`);
    }
  }
  assert.deepEqual(report, [], `The core must stay pure:\n${report.join("\n")}`);
});

const sample = join(CORE, "sample.ts");
const problemsIn = (source: string) => findViolations(source, sample).map((v) => v.problem);

Deno.test("findViolations() flags each clock, randomness, timer and runtime use", () => {
  const cases = [
    "const now = Date.now();",
    "const t = new Date();",
    "const t = performance.now();",
    "const r = Math.random();",
    "const id = crypto.randomUUID();",
    "setTimeout(() => {}, 1);",
    "setInterval(() => {}, 1);",
    "queueMicrotask(() => {});",
    "Deno.exit(1);",
    "async function f() { await g(); }",
    "const x = `${Date.now()}`;",
    "const x = `a${`b${performance.now()}`}c`;",
    'const m = await import("./x.ts");',
  ];
  for (const source of cases) assert.notDeepEqual(problemsIn(source), [], source);
});

Deno.test("findViolations() allows only relative imports of other src/core files", () => {
  assert.deepEqual(problemsIn('import { a } from "./a.ts";\nexport * from "../core/b.ts";'), []);
  assert.deepEqual(problemsIn('import type {\n  A,\n  B,\n} from "./types.ts";'), []);
  assert.deepEqual(problemsIn('import fc from "npm:fast-check";'), [
    "imports from outside src/core/: npm:fast-check",
  ]);
  assert.deepEqual(problemsIn('import { x } from "node:fs";'), [
    "imports from outside src/core/: node:fs",
  ]);
  assert.deepEqual(problemsIn('export { Store } from "../store.ts";'), [
    "imports from outside src/core/: ../store.ts",
  ]);
  assert.deepEqual(problemsIn('import "fast-check";'), [
    "imports from outside src/core/: fast-check",
  ]);
  assert.deepEqual(problemsIn('import { h } from "./helper_test.ts";'), [
    "imports from outside src/core/: ./helper_test.ts",
  ]);
});

Deno.test("findViolations() ignores comments, strings and regular expressions", () => {
  const source = [
    "/** Never reads Date.now(): time is an input.",
    ' * import { x } from "npm:y";',
    " * await nothing */",
    "// setTimeout is the driver's job",
    'const message = "Do not await Deno.";',
    "const pattern = /Date\\.now|'/;",
    "const ratio = a / b / c; // performance.now()",
    "const text = `async ${'x'} setTimeout`;",
  ].join("\n");
  assert.deepEqual(problemsIn(source), []);
});

Deno.test("findViolations() reports the line of each problem", () => {
  const violations = findViolations("const a = 1;\n\nconst b = Date.now();", sample);
  assert.deepEqual(violations, [{ line: 3, problem: "uses the clock (Date): Date" }]);
});
