/**
 * Private: a node's link to its cluster's bus. It subscribes to the cluster's broadcast
 * subject and the node's own direct one, opens what arrives (the signature when the
 * cluster has a secret, then the wire format) and hands each valid message on; it encodes
 * and signs what the node publishes. It counts what it drops (malformed, unsigned, bad
 * signatures) and, with metrics, times how long the node's own `inv` and `drop` take to
 * come back from the bus.
 *
 * Design: the bus side of the driver in one place, so the driver only sees decoded,
 * authenticated messages and publishes messages, never bytes. Rejected: checking
 * signatures and decoding in the core, which must stay free of I/O and keys, and where a
 * forged message would already have reached the protocol.
 *
 * @module
 */

import type { Message } from "./core/messages.ts";
import type { Transport, Unsubscribe } from "./transport.ts";
import { decodeMessage, encodeMessage } from "./wire.ts";
import { type MessageAuth, unsealUnchecked } from "./auth.ts";
import { clusterSubjects } from "./_subjects.ts";
import type { RuntimeCounters, WarpMetrics } from "./metrics.ts";

/** Own invalidations remembered for timing their echo (the oldest is forgotten). */
const PUBLISHED_MAX = 1024;

/** What a {@linkcode BusLink} joins and reports to. */
export interface BusLinkOptions {
  readonly nodeId: string;
  /** The cluster's subject prefix. */
  readonly prefix: string;
  readonly transport: Transport | undefined;
  readonly auth: MessageAuth | undefined;
  readonly metrics: WarpMetrics | undefined;
  readonly clock: () => number;
  readonly counters: RuntimeCounters;
  /** The node's incarnation: an echo of an earlier one is not timed. */
  readonly incarnation: () => number;
  /** Takes each valid message from the bus (the driver steps the core with it). */
  readonly onMessage: (message: Message) => void;
}

/** The messages a {@linkcode BusLink} dropped, for `stats`. */
export interface BusDrops {
  readonly malformed: number;
  readonly unsigned: number;
  readonly badSignatures: number;
}

/** A node's bus: subscriptions, opening and sealing of messages, their counts. */
export class BusLink {
  readonly #nodeId: string;
  readonly #transport: Transport | undefined;
  readonly #auth: MessageAuth | undefined;
  readonly #metrics: WarpMetrics | undefined;
  readonly #clock: () => number;
  readonly #counters: RuntimeCounters;
  readonly #incarnation: () => number;
  readonly #onMessage: (message: Message) => void;
  readonly #allSubject: string;
  readonly #nodeSubjectPrefix: string;
  readonly #directSubject: string;
  readonly #unsubscribes: Unsubscribe[] = [];
  #malformed = 0;
  #unsigned = 0;
  #badSignatures = 0;
  /** With metrics: when this node published each of its recent `inv`/`drop`, by seq. */
  readonly #published = new Map<number, number>();

  /** A link that subscribes to nothing until {@linkcode BusLink.join}. */
  constructor(options: BusLinkOptions) {
    this.#nodeId = options.nodeId;
    this.#transport = options.transport;
    this.#auth = options.auth;
    this.#metrics = options.metrics;
    this.#clock = options.clock;
    this.#counters = options.counters;
    this.#incarnation = options.incarnation;
    this.#onMessage = options.onMessage;
    const subjects = clusterSubjects(options.prefix);
    this.#allSubject = subjects.broadcast;
    this.#nodeSubjectPrefix = subjects.direct("");
    this.#directSubject = subjects.direct(options.nodeId);
  }

  /** Subscribes to the cluster's subjects, both or neither (a throw unsubscribes). */
  join(): void {
    const transport = this.#transport;
    if (transport === undefined) return;
    const onData = (data: Uint8Array) => this.#onData(data);
    try {
      this.#unsubscribes.push(transport.subscribe(this.#allSubject, onData));
      this.#unsubscribes.push(transport.subscribe(this.#directSubject, onData));
    } catch (error) {
      for (const unsubscribe of this.#unsubscribes) unsubscribe(); // no half-joined node
      throw error;
    }
  }

  /** Ends the subscriptions. */
  leave(): void {
    for (const unsubscribe of this.#unsubscribes) unsubscribe();
  }

  /** Publishes `message` to every node of the cluster. */
  broadcast(message: Message): void {
    this.#counters.sent(message.t);
    if (this.#metrics !== undefined) this.#publishing(message);
    this.#transport?.publish(this.#allSubject, this.#busBytes(message));
  }

  /** Publishes `message` to node `to` alone. */
  send(to: string, message: Message): void {
    this.#counters.sent(message.t);
    this.#transport?.publish(this.#nodeSubjectPrefix + to, this.#busBytes(message));
  }

  /** The messages dropped so far. */
  drops(): BusDrops {
    return {
      malformed: this.#malformed,
      unsigned: this.#unsigned,
      badSignatures: this.#badSignatures,
    };
  }

  #onData(data: Uint8Array): void {
    let bytes = data;
    if (this.#auth === undefined) {
      bytes = unsealUnchecked(data);
    } else {
      const opened = this.#auth.open(data);
      if (!opened.ok) {
        if (opened.why === "unsigned") this.#unsigned++;
        else this.#badSignatures++;
        return;
      }
      if (!opened.signed) this.#unsigned++;
      bytes = opened.bytes;
    }
    const message = decodeMessage(bytes);
    if (message === undefined) {
      this.#malformed++;
      return;
    }
    this.#counters.received(message.t);
    if (this.#metrics !== undefined) this.#echoHeard(message, this.#metrics);
    this.#onMessage(message);
  }

  /** A message's bytes for the bus: encoded, and signed when the cluster has a secret. */
  #busBytes(message: Message): Uint8Array {
    const bytes = encodeMessage(message);
    return this.#auth === undefined ? bytes : this.#auth.seal(bytes);
  }

  /** Notes when an own `inv` or `drop` is published, to time its echo (at most 1024 kept). */
  #publishing(message: Message): void {
    if (message.t !== "inv" && message.t !== "drop") return;
    const published = this.#published;
    if (published.size >= PUBLISHED_MAX) published.delete(published.keys().next().value!);
    published.set(message.seq, this.#clock());
  }

  /** An own `inv` or `drop` came back from the bus: reports how long after publishing. */
  #echoHeard(message: Message, metrics: WarpMetrics): void {
    if (message.t !== "inv" && message.t !== "drop") return;
    if (message.from !== this.#nodeId || message.inc !== this.#incarnation()) return;
    const publishedMs = this.#published.get(message.seq);
    if (publishedMs === undefined) return;
    this.#published.delete(message.seq);
    const seconds = (this.#clock() - publishedMs) / 1000;
    try {
      metrics.recordInvalidationEcho(this.#nodeId, message.t, seconds);
    } catch {
      // a metrics adapter that throws must not break the bus path
    }
  }
}
