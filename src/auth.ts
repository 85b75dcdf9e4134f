/**
 * Authenticated bus messages: an optional cluster secret with which every node signs what
 * it publishes and checks what it receives, so that whoever can publish on the cluster's
 * prefix without the secret can forge nothing (see `docs/operations.md`, "Who can talk on
 * the bus").
 *
 * A signed message is its wire encoding (`wire.ts`) with the high bit of the type byte set,
 * followed by a tag: the first {@linkcode AUTH_TAG_BYTES} bytes of HMAC-SHA-256 under the
 * secret over the cluster's prefix, a zero byte, and those bytes (which hold the sender's
 * id and incarnation). The tag covers the prefix, so a message signed for one cluster is
 * refused by another sharing its secret.
 *
 * Rotation: `secrets` lists the secret that signs first, then older ones that are still
 * accepted. To rotate, give every node `[old, new]` (signs with old, accepts new), then
 * `[new, old]`, then `[new]`, each step once every node runs the previous one. To turn authentication on in a live
 * cluster, run every node with the secret and `acceptUnsigned: true`, then without it.
 *
 * Design: HMAC in the runtime layer (node:crypto, synchronous, so a message is checked
 * before it reaches the pure core, in arrival order) over the exact bytes. Rejected:
 * WebCrypto's `crypto.subtle` — asynchronous, it would reorder messages and add a promise
 * per message on the hot path; and signing the decoded fields instead of the bytes — a
 * second canonical encoding to keep in step with the wire format.
 *
 * What a tag does not stop: a replayed message (signed by a member, sent again). Warp's
 * messages are idempotent or bound to what they answer (an ack names its revoke's nonce,
 * which is new per write and holder), so a replay does no more than a duplicate.
 *
 * @module
 */

import { createHmac, timingSafeEqual } from "node:crypto";

/** Bytes of the tag after a signed message (HMAC-SHA-256 truncated to 128 bits, RFC 2104). */
export const AUTH_TAG_BYTES = 16;

/** The shortest secret accepted, in bytes. */
export const AUTH_SECRET_BYTES_MIN = 16;

/** The most secrets accepted at once (the one that signs and those still accepted). */
export const AUTH_SECRETS_MAX = 4;

const SIGNED_FLAG = 0x80;
const TYPE_AT = 2;
const HEADER_BYTES = 3;

/** A cluster's message authentication settings (`WarpOptions.auth`). */
export interface AuthOptions {
  /**
   * The cluster's secrets, each at least {@linkcode AUTH_SECRET_BYTES_MIN} bytes (a string
   * is taken as UTF-8): the first signs every message this node sends, and a message
   * signed with any of them is accepted. 1 to {@linkcode AUTH_SECRETS_MAX}.
   */
  readonly secrets: readonly (string | Uint8Array)[];
  /**
   * Accept unsigned messages too, counted in `unsignedMessages` (while a live cluster turns
   * authentication on). @default {false}
   */
  readonly acceptUnsigned?: boolean;
}

/** What {@linkcode MessageAuth.open} found. */
export type Opened =
  | { readonly ok: true; readonly bytes: Uint8Array; readonly signed: boolean }
  | { readonly ok: false; readonly why: "unsigned" | "bad-signature" };

/**
 * Signs and checks bus messages with a cluster's secrets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MessageAuth } from "./auth.ts";
 * import { decodeMessage, encodeMessage } from "./wire.ts";
 *
 * const auth = new MessageAuth({ secrets: ["a secret of sixteen bytes or more"] }, "warp");
 * const bytes = encodeMessage({ t: "drop", from: "a", inc: 1, seq: 1, key: "user:1" });
 * const signed = auth.seal(bytes);
 * const opened = auth.open(signed);
 * assert.ok(opened.ok);
 * assert.deepEqual(decodeMessage(opened.bytes), decodeMessage(bytes));
 * assert.deepEqual(auth.open(bytes), { ok: false, why: "unsigned" });
 * signed[5]! ^= 1; // one bit changed in the sender's id
 * assert.deepEqual(auth.open(signed), { ok: false, why: "bad-signature" });
 * ```
 */
export class MessageAuth {
  readonly #secrets: readonly Uint8Array[];
  readonly #context: Uint8Array;
  readonly #acceptUnsigned: boolean;

  /**
   * Checks `options` (a `TypeError` or `RangeError` naming what is wrong) and keeps the
   * secrets; `context` is the cluster's prefix.
   */
  constructor(options: AuthOptions, context: string) {
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Invalid auth, expected an object: ${typeof options}`);
    }
    const { secrets, acceptUnsigned = false } = options;
    if (!Array.isArray(secrets) || secrets.length < 1 || secrets.length > AUTH_SECRETS_MAX) {
      throw new TypeError(`auth.secrets must be an array of 1 to ${AUTH_SECRETS_MAX} secrets`);
    }
    this.#secrets = secrets.map((secret, i) => {
      const bytes = typeof secret === "string"
        ? new TextEncoder().encode(secret)
        : secret instanceof Uint8Array
        ? new Uint8Array(secret) // a copy (a Buffer's slice() would be a view)
        : undefined;
      if (bytes === undefined) {
        throw new TypeError(`auth.secrets[${i}] must be a string or a Uint8Array`);
      }
      if (bytes.length < AUTH_SECRET_BYTES_MIN) {
        throw new RangeError(
          `auth.secrets[${i}] must be at least ${AUTH_SECRET_BYTES_MIN} bytes: ${bytes.length}`,
        );
      }
      return bytes;
    });
    if (typeof acceptUnsigned !== "boolean") {
      throw new TypeError(`auth.acceptUnsigned must be a boolean: ${typeof acceptUnsigned}`);
    }
    this.#acceptUnsigned = acceptUnsigned;
    this.#context = new TextEncoder().encode(`${context}\u0000`);
  }

  /** Whether unsigned messages are accepted (`acceptUnsigned`). */
  get acceptsUnsigned(): boolean {
    return this.#acceptUnsigned;
  }

  /** A signed copy of the encoded message `bytes`, with the first secret. */
  seal(bytes: Uint8Array): Uint8Array {
    const out = new Uint8Array(bytes.length + AUTH_TAG_BYTES);
    out.set(bytes);
    out[TYPE_AT]! |= SIGNED_FLAG;
    out.set(this.#tag(this.#secrets[0]!, out.subarray(0, bytes.length)), bytes.length);
    return out;
  }

  /**
   * Checks a message from the bus: a signed one whose tag matches one of the secrets gives
   * its encoded bytes back (the flag cleared, for `decodeMessage`); an unsigned one is
   * refused unless `acceptUnsigned`. Never throws.
   */
  open(bytes: Uint8Array): Opened {
    if (!isSigned(bytes)) {
      return this.#acceptUnsigned
        ? { ok: true, bytes, signed: false }
        : { ok: false, why: "unsigned" };
    }
    const body = bytes.subarray(0, bytes.length - AUTH_TAG_BYTES);
    const tag = bytes.subarray(bytes.length - AUTH_TAG_BYTES);
    for (const secret of this.#secrets) {
      if (timingSafeEqual(this.#tag(secret, body), tag)) {
        return { ok: true, bytes: unflagged(body), signed: true };
      }
    }
    return { ok: false, why: "bad-signature" };
  }

  #tag(secret: Uint8Array, body: Uint8Array): Uint8Array {
    const hmac = createHmac("sha256", secret);
    hmac.update(this.#context);
    hmac.update(body);
    return hmac.digest().subarray(0, AUTH_TAG_BYTES);
  }
}

/**
 * The encoded message inside a signed one, unchecked (for a node without secrets, which
 * cannot check a tag and accepts what it would accept unsigned); an unsigned message as is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MessageAuth, unsealUnchecked } from "./auth.ts";
 * import { encodeMessage } from "./wire.ts";
 *
 * const bytes = encodeMessage({ t: "drop", from: "a", inc: 1, seq: 1, key: "k" });
 * const signed = new MessageAuth({ secrets: ["0123456789abcdef"] }, "warp").seal(bytes);
 * assert.deepEqual(unsealUnchecked(signed), bytes);
 * assert.equal(unsealUnchecked(bytes), bytes);
 * ```
 */
export function unsealUnchecked(bytes: Uint8Array): Uint8Array {
  return isSigned(bytes) ? unflagged(bytes.subarray(0, bytes.length - AUTH_TAG_BYTES)) : bytes;
}

function isSigned(bytes: Uint8Array): boolean {
  return bytes instanceof Uint8Array && bytes.length >= HEADER_BYTES + AUTH_TAG_BYTES &&
    (bytes[TYPE_AT]! & SIGNED_FLAG) !== 0;
}

function unflagged(body: Uint8Array): Uint8Array {
  // A copy: the caller's bytes stay as they came (a Buffer's slice() would be a view).
  const out = new Uint8Array(body);
  out[TYPE_AT]! &= ~SIGNED_FLAG;
  return out;
}
