/**
 * The wire format of Warp's bus messages ({@linkcode Message}), version 3.
 *
 * A compact binary layout, because heartbeats and invalidations are the hot path:
 *
 * ```text
 * 0x57 'W' | version 0x03 | type | from | inc | fields of the type
 * type 1 inv:    seq, version, key
 * type 2 drop:   seq, key
 * type 3 hb:     seq, round, echo count, then per echo: id (as `from`), inc, round
 * type 4 revoke: id, rev, nonce, key
 * type 5 ack:    id, to, nonce, key
 * type 6 lrev:   lease (a varint byte length then ASCII)
 * type 7 clr:    seq, epoch, ns (as `key`)
 * ```
 *
 * Numbers (`inc`, `seq`, `version`, `id`, `rev`, `nonce`, `to`, `round`, the echo count) are unsigned LEB128 varints of at most 8 bytes
 * (up to `Number.MAX_SAFE_INTEGER`), in their shortest form. `from` is one length byte
 * then its ASCII characters; `key` is a varint byte length then UTF-8. Nothing may follow
 * the last field. Version 2 added the heartbeat's round and echoes (session freshness
 * proofs) and the revoke's claim revision; version 3 binds an ack to the revoke it answers
 * (the revoke's nonce, echoed with the writer's incarnation `to`) and
 * added type 7 (`clr`, a namespace clear). A message of another
 * version is foreign (nodes of two versions do not share a cluster). A signed message
 * (`_auth.ts`) is this encoding with the type's high bit set and a tag after it. The encoding is canonical: each message has exactly one, so
 * `encodeMessage(decodeMessage(bytes))` gives `bytes` back whenever it decodes.
 *
 * @module
 */

import { type Echo, ECHOES_MAX, type Message, validateMessage } from "./core/messages.ts";

/** The first byte of every Warp message: `W`. */
export const WIRE_MAGIC = 0x57;

/** The version of the wire format written by {@linkcode encodeMessage}. */
export const WIRE_VERSION = 3;

/**
 * The largest message {@linkcode decodeMessage} accepts, in bytes. Every valid message
 * fits: the longest key (1024 UTF-16 units) takes at most 3072 bytes of UTF-8, and a
 * heartbeat's 256 echoes at most 81 bytes each.
 */
export const MESSAGE_BYTES_MAX = 24_576;

const TYPE_CODES = { inv: 1, drop: 2, hb: 3, revoke: 4, ack: 5, lrev: 6, clr: 7 } as const;
const VARINT_BYTES_MAX = 8;
const HEADER_BYTES = 3;
const ASCII_FAST_BYTES_MAX = 64;

const encoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF in a key instead of silently removing it.
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
/** Encoding goes through this buffer, then copies out the used part. */
const scratch = new Uint8Array(MESSAGE_BYTES_MAX);

/**
 * Encodes a message for the bus. Throws a `TypeError` for a message that
 * `validateMessage` rejects or whose key has a lone surrogate (UTF-8 cannot carry it).
 *
 * @example An invalidation is a few bytes plus its key
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeMessage } from "./wire.ts";
 *
 * const message = { t: "inv", from: "node-1", inc: 7, seq: 42, key: "user:1", version: 3 } as const;
 * const bytes = encodeMessage(message);
 * assert.equal(bytes.length, 20);
 * assert.deepEqual(decodeMessage(bytes), message);
 * ```
 */
export function encodeMessage(message: Message): Uint8Array {
  if (validateMessage(message) === undefined) {
    throw new TypeError(`Invalid message: ${safeStringify(message)}`);
  }
  const out = scratch;
  out[0] = WIRE_MAGIC;
  out[1] = WIRE_VERSION;
  out[2] = TYPE_CODES[message.t];
  let at = writeAscii(out, HEADER_BYTES, message.from);
  at = writeVarint(out, at, message.inc);
  switch (message.t) {
    case "inv":
      at = writeVarint(out, at, message.seq);
      at = writeVarint(out, at, message.version);
      at = writeKey(out, at, message.key);
      break;
    case "drop":
      at = writeVarint(out, at, message.seq);
      at = writeKey(out, at, message.key);
      break;
    case "hb":
      at = writeVarint(out, at, message.seq);
      at = writeVarint(out, at, message.round);
      at = writeVarint(out, at, message.echo.length);
      for (const [id, inc, round] of message.echo) {
        at = writeAscii(out, at, id);
        at = writeVarint(out, at, inc);
        at = writeVarint(out, at, round);
      }
      break;
    case "revoke":
      at = writeVarint(out, at, message.id);
      at = writeVarint(out, at, message.rev);
      at = writeVarint(out, at, message.nonce);
      at = writeKey(out, at, message.key);
      break;
    case "ack":
      at = writeVarint(out, at, message.id);
      at = writeVarint(out, at, message.to);
      at = writeVarint(out, at, message.nonce);
      at = writeKey(out, at, message.key);
      break;
    case "lrev":
      at = writeKey(out, at, message.lease); // ASCII: its UTF-8 is itself
      break;
    case "clr":
      at = writeVarint(out, at, message.seq);
      at = writeVarint(out, at, message.epoch);
      at = writeKey(out, at, message.ns);
      break;
  }
  return out.slice(0, at);
}

/**
 * Decodes a message from the bus. Never throws: returns `undefined` for anything that is
 * not exactly one valid version-3 Warp message — malformed, truncated, followed by extra
 * bytes, of another wire version, foreign, or over {@linkcode MESSAGE_BYTES_MAX}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeMessage, encodeMessage } from "./wire.ts";
 *
 * const hb = { t: "hb", from: "a", inc: 1, seq: 0, round: 1, echo: [["b", 2, 5]] } as const;
 * const bytes = encodeMessage(hb);
 * assert.deepEqual(decodeMessage(bytes), hb);
 * assert.equal(decodeMessage(bytes.subarray(0, 4)), undefined);
 * assert.equal(decodeMessage(new TextEncoder().encode('{"t":"hb"}')), undefined);
 * ```
 */
export function decodeMessage(bytes: Uint8Array): Message | undefined {
  if (!(bytes instanceof Uint8Array)) return undefined;
  if (bytes.length < HEADER_BYTES || bytes.length > MESSAGE_BYTES_MAX) return undefined;
  if (bytes[0] !== WIRE_MAGIC || bytes[1] !== WIRE_VERSION) return undefined;
  const reader = new Reader(bytes, HEADER_BYTES);
  const type = bytes[2];
  const from = reader.ascii();
  const inc = reader.varint();
  let message: Message;
  switch (type) {
    case TYPE_CODES.inv: {
      const seq = reader.varint();
      const version = reader.varint();
      message = { t: "inv", from, inc, seq, key: reader.key(), version };
      break;
    }
    case TYPE_CODES.drop: {
      const seq = reader.varint();
      message = { t: "drop", from, inc, seq, key: reader.key() };
      break;
    }
    case TYPE_CODES.hb: {
      const seq = reader.varint();
      const round = reader.varint();
      const count = reader.varint();
      if (count > ECHOES_MAX) return undefined;
      const echo: Echo[] = [];
      for (let i = 0; i < count && !reader.failed; i++) {
        echo.push([reader.ascii(), reader.varint(), reader.varint()]);
      }
      message = { t: "hb", from, inc, seq, round, echo };
      break;
    }
    case TYPE_CODES.revoke: {
      const id = reader.varint();
      const rev = reader.varint();
      const nonce = reader.varint();
      message = { t: "revoke", from, inc, id, rev, nonce, key: reader.key() };
      break;
    }
    case TYPE_CODES.ack: {
      const id = reader.varint();
      const to = reader.varint();
      const nonce = reader.varint();
      message = { t: "ack", from, inc, id, to, nonce, key: reader.key() };
      break;
    }
    case TYPE_CODES.lrev:
      message = { t: "lrev", from, inc, lease: reader.key() };
      break;
    case TYPE_CODES.clr: {
      const seq = reader.varint();
      const epoch = reader.varint();
      message = { t: "clr", from, inc, seq, epoch, ns: reader.key() };
      break;
    }
    default:
      return undefined;
  }
  if (reader.failed || reader.at !== bytes.length) return undefined;
  return validateMessage(message);
}

/**
 * Reads fields in order. After a bad field it sets `failed` and returns placeholder
 * values, so decoding runs to the end without exceptions and then gives up once.
 */
class Reader {
  failed = false;
  at: number;
  readonly #bytes: Uint8Array;

  constructor(bytes: Uint8Array, at: number) {
    this.#bytes = bytes;
    this.at = at;
  }

  varint(): number {
    const bytes = this.#bytes;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_BYTES_MAX && this.at < bytes.length; i++) {
      const byte = bytes[this.at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        // Shortest form only (no trailing zero groups), and no more than 53 bits.
        if ((byte === 0 && i > 0) || value > Number.MAX_SAFE_INTEGER) break;
        return value;
      }
      scale *= 0x80;
    }
    this.failed = true;
    return 0;
  }

  ascii(): string {
    const bytes = this.#bytes;
    const length = bytes[this.at++] ?? 0;
    if (length === 0 || this.at + length > bytes.length) {
      this.failed = true;
      return "";
    }
    // Any byte is read as one character; validateMessage then checks the alphabet.
    let text = "";
    for (const end = this.at + length; this.at < end; this.at++) {
      text += String.fromCharCode(bytes[this.at]!);
    }
    return text;
  }

  key(): string {
    const length = this.varint();
    if (this.failed || length === 0 || this.at + length > this.#bytes.length) {
      this.failed = true;
      return "";
    }
    const start = this.at;
    this.at += length;
    if (length <= ASCII_FAST_BYTES_MAX) {
      // Most keys are short ASCII: build them directly, avoiding the decoder's overhead.
      let text = "";
      for (let i = start; i < this.at; i++) {
        const byte = this.#bytes[i]!;
        if (byte >= 0x80) return this.#utf8(start);
        text += String.fromCharCode(byte);
      }
      return text;
    }
    return this.#utf8(start);
  }

  #utf8(start: number): string {
    try {
      return decoder.decode(this.#bytes.subarray(start, this.at));
    } catch {
      this.failed = true;
      return "";
    }
  }
}

function writeVarint(out: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    out[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  out[at++] = value;
  return at;
}

/** A node id: one length byte, then its ASCII characters. */
function writeAscii(out: Uint8Array, at: number, text: string): number {
  out[at++] = text.length;
  for (let i = 0; i < text.length; i++) out[at++] = text.charCodeAt(i);
  return at;
}

function writeKey(out: Uint8Array, at: number, key: string): number {
  // Most keys are ASCII: write them directly, avoiding the encoder's overhead.
  if (key.length < 0x80) {
    const start = at + 1;
    let i = 0;
    while (i < key.length) {
      const code = key.charCodeAt(i);
      if (code >= 0x80) break;
      out[start + i++] = code;
    }
    if (i === key.length) {
      out[at] = key.length;
      return start + key.length;
    }
  }
  if (!key.isWellFormed()) {
    throw new TypeError(`Invalid message: key has a lone surrogate: ${JSON.stringify(key)}`);
  }
  // Write the UTF-8 after room for the longest length prefix, then move it if shorter.
  const prefixMax = varintLength(key.length * 3);
  const { written } = encoder.encodeInto(key, out.subarray(at + prefixMax));
  const prefix = varintLength(written);
  if (prefix !== prefixMax) out.copyWithin(at + prefix, at + prefixMax, at + prefixMax + written);
  writeVarint(out, at, written);
  return at + prefix + written;
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    length++;
  }
  return length;
}

function safeStringify(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return String(value);
  }
}
