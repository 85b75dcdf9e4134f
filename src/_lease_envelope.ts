/**
 * How a value attached to leases is stored: the lease ids travel in the stored bytes, so
 * that any node (and any store) keeps them with the value.
 *
 * ```text
 * "\0WarpLs1" (8 bytes) | count (1 byte, 0–16) | per lease: length (1 byte) + ASCII id | value
 * ```
 *
 * A value with no lease is stored as its codec bytes alone — unless those bytes happen to
 * start with the 8-byte marker, in which case they are wrapped with a count of 0. So every
 * stored value reads back unambiguously.
 *
 * @module
 */

import { isLeaseId, LEASES_PER_KEY_MAX } from "./core/leases.ts";

const MARKER = new Uint8Array([0x00, 0x57, 0x61, 0x72, 0x70, 0x4c, 0x73, 0x31]); // \0WarpLs1

function startsWithMarker(bytes: Uint8Array): boolean {
  if (bytes.length < MARKER.length) return false;
  for (let i = 0; i < MARKER.length; i++) if (bytes[i] !== MARKER[i]) return false;
  return true;
}

/**
 * The stored bytes of `value` attached to `leases` (valid ids, checked by the caller).
 *
 * @example
 * ```ts
 * import { openEnvelope, sealEnvelope } from "./_lease_envelope.ts";
 * const bytes = sealEnvelope(new Uint8Array([1, 2]), ["u0.abcdefgh"]);
 * console.log(openEnvelope(bytes)?.leases); // ["u0.abcdefgh"]
 * ```
 */
export function sealEnvelope(value: Uint8Array, leases: readonly string[]): Uint8Array {
  if (leases.length === 0 && !startsWithMarker(value)) return value;
  let size = MARKER.length + 1 + value.length;
  for (const id of leases) size += 1 + id.length;
  const out = new Uint8Array(size);
  out.set(MARKER, 0);
  let at = MARKER.length;
  out[at++] = leases.length;
  for (const id of leases) {
    out[at++] = id.length;
    for (let i = 0; i < id.length; i++) out[at++] = id.charCodeAt(i);
  }
  out.set(value, at);
  return out;
}

/**
 * Splits stored bytes into the value and its leases; `undefined` if they start with the
 * marker but are not a well-formed envelope (corrupt data).
 *
 * @example
 * ```ts
 * import { openEnvelope } from "./_lease_envelope.ts";
 * console.log(openEnvelope(new Uint8Array([7]))); // { value: Uint8Array(1) [ 7 ], leases: [] }
 * ```
 */
export function openEnvelope(
  bytes: Uint8Array,
): { value: Uint8Array; leases: string[] } | undefined {
  if (!startsWithMarker(bytes)) return { value: bytes, leases: [] };
  let at = MARKER.length;
  const count = bytes[at++];
  if (count === undefined || count > LEASES_PER_KEY_MAX) return undefined;
  const leases: string[] = [];
  for (let n = 0; n < count; n++) {
    const length = bytes[at++];
    if (length === undefined || at + length > bytes.length) return undefined;
    const id = String.fromCharCode(...bytes.subarray(at, at + length));
    if (!isLeaseId(id) || leases.includes(id)) return undefined;
    leases.push(id);
    at += length;
  }
  return { value: bytes.subarray(at), leases };
}
