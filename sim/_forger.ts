/**
 * Private: a forger on the simulated bus. It sends well-formed messages full of lies while
 * faults are on: acks for revokes it learned of (a forged ack that arrives before the
 * holder took the revoke in lets a strong write complete while the holder still serves
 * the old value: S1, S2), heartbeats from ids outside the membership and from members
 * at made-up incarnations, numbered broadcasts from fresh ids (first-word flushes), and
 * invalidations and heartbeats carrying absurd numbers (2^53 − 1).
 *
 * What it can do depends on its power:
 * - `snooping`: it reads every message (a subscription to the whole prefix), nonces
 *   included, so its acks are exact; it lacks the cluster secret, so the nodes, which
 *   authenticate, drop everything it sends. A canary gives it the secret.
 * - `blind`: it can publish but not read (NATS permissions allow exactly that); the
 *   cluster runs without a secret. The simulator still tells it each revoke's writer,
 *   incarnation, id and key — the attacker guessed those, small sequential
 *   numbers — but not the nonce, which it draws. A canary turns the nonce check off.
 *
 * Authentication itself is modelled, not computed: a forged message is tagged signed or
 * not, and a node that authenticates drops an unsigned one (what `MessageAuth.open` does
 * with a tag it cannot match; `test/auth_test.ts` checks the real HMAC).
 *
 * Design: the forger is a fault source with its own stream, outside the nodes, so a run
 * without it draws exactly as before. Rejected: a forging node among the cluster's nodes —
 * it would take part in sessions and holder records, and its lies would be mixed with
 * protocol steps the checkers attribute to real nodes.
 *
 * @module
 */

import type { Message, RevokeMessage } from "../src/core/messages.ts";
import type { Prng } from "./prng.ts";
import type { Timeline } from "./_timeline.ts";

/** What a forger can do (see the module's doc). */
export type ForgerPower = "snooping" | "blind";

/** How often the forger sends a burst of lies, ms. */
const BURST_EVERY_MS = 10;
/** Fresh ids per burst that claim to have broadcast before (first-word flushes). */
const FRESH_IDS_PER_BURST = 4;
/** How soon a forged ack lands after the revoke it answers was sent, ms. */
const ACK_DELAY_MS = 0.01;
const ABSURD = Number.MAX_SAFE_INTEGER;

/** What the forger needs of the cluster. */
export interface ForgerHost {
  /** How many nodes there are. */
  readonly nodes: number;
  /** The id of node `index`. */
  id(index: number): string;
  /** The node's current incarnation. */
  incarnation(index: number): number;
  /** Keys the workload uses. */
  readonly keys: readonly string[];
  /** Hands `message` to node `to` (which drops it if it authenticates and it is unsigned). */
  deliver(to: number, message: Message, signed: boolean): void;
}

/** Counts of what the forger sent. */
export interface ForgeryCounts {
  sent: number;
  acks: number;
}

/** A forger on the bus of one run. */
export class Forger {
  readonly counts: ForgeryCounts = { sent: 0, acks: 0 };
  readonly #timeline: Timeline;
  readonly #prng: Prng;
  readonly #host: ForgerHost;
  readonly #power: ForgerPower;
  readonly #signed: boolean;
  #fresh = 0;

  /** A forger of `power`, with the cluster secret if `signed`, drawing from `prng`. */
  constructor(
    timeline: Timeline,
    prng: Prng,
    host: ForgerHost,
    power: ForgerPower,
    signed: boolean,
  ) {
    this.#timeline = timeline;
    this.#prng = prng;
    this.#host = host;
    this.#power = power;
    this.#signed = signed;
  }

  /** Starts the bursts; they stop when the faults do. */
  start(): void {
    const burst = () => {
      if (!this.#timeline.faultsOn) return;
      this.#burst();
      this.#timeline.at(this.#timeline.now + BURST_EVERY_MS, burst);
    };
    this.#timeline.at(this.#timeline.now + BURST_EVERY_MS, burst);
  }

  /** Sees a message a node sent to node `to` (a snooping forger reads it; a blind one is told the revoke's ids). */
  observe(from: number, to: number, message: Message): void {
    if (message.t !== "revoke" || !this.#timeline.faultsOn) return;
    const ack = this.#ackFor(message, to);
    this.#timeline.at(this.#timeline.now + ACK_DELAY_MS, () => {
      this.counts.acks++;
      this.#send(from, ack);
    });
  }

  #ackFor(revoke: RevokeMessage, holder: number): Message {
    const nonce = this.#power === "snooping"
      ? revoke.nonce
      : this.#prng.int(0, 0xffff_ffff) * 0x1_0000 + this.#prng.int(0, 0xffff);
    return {
      t: "ack",
      from: this.#host.id(holder),
      inc: this.#host.incarnation(holder),
      id: revoke.id,
      key: revoke.key,
      to: revoke.inc,
      nonce,
    };
  }

  #burst(): void {
    const host = this.#host;
    const prng = this.#prng;
    const n = host.nodes;
    const target = prng.int(0, n - 1);
    const member = prng.int(0, n - 1);
    const key = host.keys[prng.int(0, host.keys.length - 1)]!;
    // A member's id at an incarnation it never had, claiming broadcasts we never saw.
    this.#send(target, {
      t: "hb",
      from: host.id(member),
      inc: 999_999,
      seq: 50,
      round: 1,
      echo: [],
    });
    for (let i = 0; i < FRESH_IDS_PER_BURST; i++) {
      const from = `forged-${this.#fresh++}`;
      this.#send(target, { t: "hb", from, inc: 1, seq: 50, round: 1, echo: [] });
      this.#send(target, { t: "drop", from, inc: 1, seq: 50, key });
    }
    // Absurd numbers: a version no store made, a sequence and round no node reached.
    this.#send(target, { t: "inv", from: "forged", inc: 1, seq: 1, key, version: ABSURD });
    const real = host.id(member);
    const inc = host.incarnation(member);
    this.#send(target, { t: "hb", from: real, inc, seq: ABSURD, round: ABSURD, echo: [] });
  }

  #send(to: number, message: Message): void {
    this.counts.sent++;
    this.#host.deliver(to, message, this.#signed);
  }
}
