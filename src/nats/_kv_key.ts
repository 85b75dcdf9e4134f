/**
 * Private: how {@linkcode NatsKvCoordinator} turns an arbitrary Warp key into a valid
 * NATS KV key (characters `[-/_=.A-Za-z0-9]`, no leading, trailing or doubled `.`).
 *
 * @module
 */

/** Escaped keys longer than this are replaced by a hash, to stay far below NATS's 4 KiB control line. */
export const KV_KEY_LENGTH_MAX = 512;

const encoder = new TextEncoder();

/**
 * Escapes `key` (a non-empty, well-formed string) into a NATS KV key, injectively:
 *
 * - `A-Z a-z 0-9 - _ /` stay as they are, and so does a `.` that is neither first, last,
 *   nor next to another `.` (so `lock.orders` stays readable);
 * - every other UTF-8 byte becomes `=XX` (two upper-case hex digits), `=` itself included;
 * - if the result is longer than {@linkcode KV_KEY_LENGTH_MAX}, the key becomes `=H`
 *   followed by the base64url SHA-256 of its UTF-8 bytes. Escaping never produces `=H`
 *   (`H` is not a hex digit), so the two forms cannot collide.
 *
 * @example
 * ```ts
 * import { escapeKvKey } from "./_kv_key.ts";
 * console.log(await escapeKvKey("lock:orders.42")); // "lock=3Aorders.42"
 * ```
 */
export async function escapeKvKey(key: string): Promise<string> {
  const bytes = encoder.encode(key);
  let escaped = "";
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (isPlain(byte) || (byte === DOT && isInnerDot(bytes, i))) {
      escaped += String.fromCharCode(byte);
    } else {
      escaped += "=" + byte.toString(16).toUpperCase().padStart(2, "0");
    }
    if (escaped.length > KV_KEY_LENGTH_MAX) return await hashKey(bytes);
  }
  return escaped;
}

/**
 * Reverses {@linkcode escapeKvKey}; `undefined` for a hashed key (which cannot be
 * reversed) or a string that escaping never produces.
 *
 * @example
 * ```ts
 * import { unescapeKvKey } from "./_kv_key.ts";
 * console.log(unescapeKvKey("lock=3Aorders.42")); // "lock:orders.42"
 * ```
 */
export function unescapeKvKey(escaped: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    const char = escaped.charCodeAt(i);
    if (char !== EQUALS) {
      bytes.push(char);
      continue;
    }
    const hex = escaped.slice(i + 1, i + 3);
    if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
    bytes.push(parseInt(hex, 16));
    i += 2;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}

const DOT = 0x2e;
const EQUALS = 0x3d;

function isPlain(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || // 0-9
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x2d || byte === 0x5f || byte === 0x2f; // - _ /
}

function isInnerDot(bytes: Uint8Array, i: number): boolean {
  return i > 0 && i < bytes.length - 1 && bytes[i - 1] !== DOT && bytes[i + 1] !== DOT;
}

async function hashKey(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const base64 = btoa(String.fromCharCode(...digest));
  return "=H" + base64.replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
