/**
 * A small, strict reader of EDN (Clojure's data notation), enough for Jepsen and Knossos
 * history files: `nil`, booleans, integers and decimals, strings, keywords, symbols,
 * lists, vectors, maps, sets, `;` comments, `#_` discards and tagged values (`#inst "…"`,
 * kept as {@linkcode Tagged}). Characters (`\a`), ratios, regexes and other dispatch forms
 * are refused with the line and column. Written here rather than taken from a dependency:
 * the importer needs a few dozen lines of it.
 *
 * @module
 */

/** An EDN keyword, `:name`. */
export class Keyword {
  constructor(readonly name: string) {}
  toString(): string {
    return `:${this.name}`;
  }
}

/** An EDN symbol, `name`. */
export class EdnSymbol {
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
}

/** A tagged value, `#tag value`. */
export class Tagged {
  constructor(readonly tag: string, readonly value: EdnValue) {}
}

/** An EDN set, `#{…}` (its elements in file order). */
export class EdnSet {
  constructor(readonly items: readonly EdnValue[]) {}
}

/**
 * What {@linkcode readEdn} returns: lists and vectors are arrays; maps are `Map`s keyed by
 * their keys as written (`:type`, `"name"`, `7`, `nil`).
 */
export type EdnValue =
  | null
  | boolean
  | number
  | string
  | Keyword
  | EdnSymbol
  | Tagged
  | EdnSet
  | EdnValue[]
  | Map<string, EdnValue>;

/** A top-level form and where it starts. */
export interface EdnForm {
  readonly value: EdnValue;
  /** 1-based line of the form's first character. */
  readonly line: number;
}

const DELIMITERS = new Set([...'()[]{}"; \t\r\n,']);
const ESCAPES: Readonly<Record<string, string>> = {
  "n": "\n",
  "t": "\t",
  "r": "\r",
  "\\": "\\",
  '"': '"',
  "b": "\b",
  "f": "\f",
};

/** What {@linkcode readEdn} read. */
export interface EdnRead {
  readonly forms: readonly EdnForm[];
  /** The 1-based line where each map starts. */
  readonly mapLines: WeakMap<Map<string, EdnValue>, number>;
}

/**
 * Reads every top-level form of an EDN text.
 *
 * @throws {SyntaxError} naming the line, column and what is wrong.
 */
export function readEdn(text: string): EdnRead {
  const mapLines = new WeakMap<Map<string, EdnValue>, number>();
  let at = 0;
  const fail = (problem: string, where = at): never => {
    const before = text.slice(0, where);
    const line = before.split("\n").length;
    const column = where - before.lastIndexOf("\n");
    throw new SyntaxError(`Invalid EDN at line ${line}, column ${column}, ${problem}`);
  };
  let counted = 0;
  let line = 1;
  /** The line of `where`, for increasing `where`s. */
  const lineOf = (where: number): number => {
    for (; counted < where; counted++) if (text.charCodeAt(counted) === 10) line++;
    return line;
  };
  const skip = (): void => {
    while (at < text.length) {
      const c = text[at]!;
      if (c === ";") {
        while (at < text.length && text[at] !== "\n") at++;
      } else if (c === " " || c === "\t" || c === "\r" || c === "\n" || c === ",") {
        at++;
      } else if (c === "#" && text[at + 1] === "_") {
        at += 2;
        read();
      } else return;
    }
  };
  const token = (): string => {
    const start = at;
    while (at < text.length && !DELIMITERS.has(text[at]!)) at++;
    return text.slice(start, at);
  };
  const readSeq = (close: string): EdnValue[] => {
    const items: EdnValue[] = [];
    for (;;) {
      skip();
      if (at >= text.length) fail(`unclosed collection, expected "${close}"`);
      if (text[at] === close) {
        at++;
        return items;
      }
      items.push(read());
    }
  };
  const readString = (): string => {
    let out = "";
    for (at++; at < text.length; at++) {
      const c = text[at]!;
      if (c === '"') {
        at++;
        return out;
      }
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[++at];
      if (e === "u") {
        const hex = text.slice(at + 1, at + 5);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail(`invalid \\u escape: ${hex}`);
        out += String.fromCharCode(parseInt(hex, 16));
        at += 4;
      } else if (e !== undefined && e in ESCAPES) out += ESCAPES[e];
      else fail(`invalid string escape: \\${e ?? ""}`);
    }
    return fail("unclosed string");
  };
  const atom = (word: string, start: number): EdnValue => {
    if (word === "nil") return null;
    if (word === "true") return true;
    if (word === "false") return false;
    if (/^[+-]?\d/.test(word)) {
      const match = /^([+-]?\d+)N?$/.exec(word);
      if (match) {
        const n = Number(match[1]);
        if (!Number.isSafeInteger(n)) fail(`integer too large: ${word}`, start);
        return n;
      }
      if (/^[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?$/.test(word)) return Number(word.replace("M", ""));
      return fail(`unsupported number: ${word}`, start);
    }
    if (word.startsWith(":")) {
      if (word.length === 1) fail("empty keyword", start);
      return new Keyword(word.slice(1));
    }
    return new EdnSymbol(word);
  };
  function read(): EdnValue {
    skip();
    if (at >= text.length) fail("unexpected end of input");
    const start = at;
    const c = text[at]!;
    switch (c) {
      case "(":
        at++;
        return readSeq(")");
      case "[":
        at++;
        return readSeq("]");
      case "{": {
        const line = lineOf(at);
        at++;
        const items = readSeq("}");
        if (items.length % 2 !== 0) fail("map with an odd number of forms", start);
        const map = new Map<string, EdnValue>();
        for (let i = 0; i < items.length; i += 2) {
          const key = items[i]!;
          if (key instanceof Keyword) map.set(`:${key.name}`, items[i + 1]!);
          else if (typeof key === "string") map.set(JSON.stringify(key), items[i + 1]!);
          else if (typeof key === "number") map.set(String(key), items[i + 1]!);
          else if (key === null) map.set("nil", items[i + 1]!);
          else fail("unsupported map key (keywords, strings, numbers and nil only)", start);
        }
        mapLines.set(map, line);
        return map;
      }
      case '"':
        return readString();
      case ")":
      case "]":
      case "}":
        return fail(`unexpected "${c}"`);
      case "\\":
        return fail("characters (\\c) are not supported");
      case "#": {
        at++;
        if (text[at] === "{") {
          at++;
          return new EdnSet(readSeq("}"));
        }
        const tag = token();
        if (!/^[a-zA-Z]/.test(tag)) fail(`unsupported dispatch: #${tag || text[at] || ""}`, start);
        return new Tagged(tag, read());
      }
      default: {
        const word = token();
        if (word === "") fail(`unexpected character: ${c}`);
        return atom(word, start);
      }
    }
  }
  const forms: EdnForm[] = [];
  for (skip(); at < text.length; skip()) {
    const line = lineOf(at);
    forms.push({ value: read(), line });
  }
  return { forms, mapLines };
}
