/**
 * A {@linkcode Coordinator} over NATS JetStream KV.
 *
 * @module
 */

import type { NatsConnection, NodeConnectionOptions } from "@nats-io/transport-node";
import {
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstreamManager,
} from "@nats-io/jetstream";
import { type KV, Kvm, KvWatchInclude } from "@nats-io/kv";
import { describe, describeError } from "../_describe.ts";
import { assert, WarpError } from "../core/errors.ts";
import { coordinatorKeyProblem } from "../coordinator.ts";
import type { Coordinator, CoordinatorCallOptions, CoordinatorEntry } from "../coordinator.ts";
import { escapeKvKey } from "./_kv_key.ts";
import { connectNats, natsServerProblem } from "./_connect.ts";

/** Called by {@linkcode NatsKvCoordinator.watch} with the new entry, or `undefined` on a delete. */
export type NatsKvWatchListener = (entry: CoordinatorEntry | undefined) => void;

/** Options of {@linkcode NatsKvCoordinator.create}. */
export interface NatsKvCoordinatorOptions {
  /**
   * The KV bucket (letters, digits, `-`, `_`). Created with history 1 if it does not exist,
   * bound as it is if it does.
   * @default {"warp"}
   */
  readonly bucket?: string;
  /**
   * Replicas of a bucket this call creates (1, 3 or 5; at most the cluster size). More than
   * 1 needs nats-server 2.9.21 or later (`COORDINATOR_UNAVAILABLE` before): older servers
   * do not decide a compare-and-set once on a replicated stream (nats-server #4320).
   * docs/deploy-nats.md has the settings a production cluster needs.
   * @default {1}
   */
  readonly replicas?: number;
  /**
   * How long one KV request may take before it fails with `COORDINATOR_UNAVAILABLE`.
   * Well below Warp's operation deadlines (5 s by default), so that an unreachable
   * coordinator fails a strong write fast and lets a strong read fall back to the store.
   * @default {1000}
   */
  readonly timeoutMs?: number;
  /**
   * The most watch listeners registered at once.
   * @default {10000}
   */
  readonly watchersMax?: number;
}

/**
 * Options of {@linkcode NatsKvCoordinator.connect}: nats.js connection options (`servers`,
 * `user`/`pass`, `token`, `authenticator`, `tls`, ...) passed through unchanged, plus the
 * coordinator's own.
 */
export type NatsKvCoordinatorConnectOptions = NodeConnectionOptions & NatsKvCoordinatorOptions;

const BUCKET_PATTERN = /^[-\w]{1,64}$/;
/** The shortest TTL JetStream accepts as a bucket's max age. */
const TTL_MIN_MS = 100;

/**
 * A {@linkcode Coordinator} over a NATS JetStream KV bucket: a real compare-and-set,
 * linearizable per key because every read and write goes to the stream's leader (the
 * bucket is used with `allow_direct: false`; direct gets may be served by a lagging
 * replica).
 *
 * - **Keys** are escaped into valid KV keys, injectively (`lock:a` becomes `lock=3Aa`;
 *   very long ones become a SHA-256). Keys are what the {@linkcode Coordinator} contract
 *   allows: non-empty, at most 4096 code units, well-formed Unicode (a lone surrogate
 *   would collide with U+FFFD) and without NUL.
 * - **Values** come back as plain `Uint8Array` copies (not Node `Buffer`s).
 * - **Revisions** are the bucket stream's sequence numbers: increasing over the whole
 *   bucket, so also per key, and never reused. A delete writes a tombstone (a new
 *   revision); {@linkcode NatsKvCoordinator.get} treats a tombstone as absent, and
 *   {@linkcode NatsKvCoordinator.create} succeeds on it.
 * - **Errors**: a create of an existing key, or an update/delete whose revision moved,
 *   rejects with a `WarpError` of code `CONTENDED`. Anything else (timeout, closed or
 *   reconnecting connection, no JetStream) rejects with `COORDINATOR_UNAVAILABLE`, with
 *   the client's error as `cause`. For a write, `COORDINATOR_UNAVAILABLE` does not prove
 *   the write did not happen: the request may have reached the server before the
 *   connection broke or the reply was lost. (A request made while disconnected is not
 *   sent late: nats.js clears its outbound buffer when it reconnects.) Read the key to
 *   learn the outcome.
 *
 * The coordinator does not own the connection: close it yourself after
 * {@linkcode NatsKvCoordinator.close}.
 *
 * @example Compare-and-set
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { connect } from "@nats-io/transport-node";
 * import { NatsKvCoordinator } from "./coordinator.ts";
 *
 * const nc = await connect({ servers: "127.0.0.1:4222" });
 * const coordinator = await NatsKvCoordinator.create(nc, { bucket: "warp_example" });
 * const revision = await coordinator.create("lock:orders", new Uint8Array([1]));
 * await coordinator.update("lock:orders", new Uint8Array([2]), revision);
 * await assert.rejects(coordinator.update("lock:orders", new Uint8Array([3]), revision), {
 *   name: "WarpError",
 *   code: "CONTENDED",
 * });
 * await coordinator.delete("lock:orders");
 * await coordinator.close();
 * await nc.close();
 * ```
 */
export class NatsKvCoordinator implements Coordinator {
  readonly #nc: NatsConnection;
  readonly #kv: KV;
  readonly #bucket: string;
  readonly #watchersMax: number;
  readonly #replicas: number;
  readonly #timeoutMs: number;
  /** The buckets of records with a TTL (`<bucket>-ttl<ms>`, max age = the TTL), by TTL. */
  readonly #ttlBuckets = new Map<number, Promise<KV>>();
  readonly #stops = new Set<() => void>();
  #connected = true;
  #ownsConnection = false;

  /**
   * Connects to NATS with its own connection (closed by {@linkcode NatsKvCoordinator.close})
   * and does what {@linkcode NatsKvCoordinator.create} does. The nats.js options pass
   * through unchanged: credentials as `user`/`pass` or `token`, or an `authenticator`
   * (`credsAuthenticator`, `nkeyAuthenticator`, `jwtAuthenticator`, ... re-exported by
   * `@warp/warp/nats`), `tls`; Warp's defaults reconnect forever. Rejects with the client's
   * error when no server can be reached, and as `create` does otherwise.
   *
   * @example
   * ```ts ignore
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const coordinator = await NatsKvCoordinator.connect({
   *   servers: "127.0.0.1:4222",
   *   user: "warp",
   *   pass: "secret",
   *   bucket: "warp_orders",
   * });
   * await coordinator.close(); // closes its connection too
   * ```
   */
  static async connect(options: NatsKvCoordinatorConnectOptions = {}): Promise<NatsKvCoordinator> {
    const { bucket, replicas, timeoutMs, watchersMax, ...natsOptions } = options;
    const nc = await connectNats(natsOptions);
    try {
      const coordinator = await NatsKvCoordinator.create(nc, {
        ...(bucket !== undefined && { bucket }),
        ...(replicas !== undefined && { replicas }),
        ...(timeoutMs !== undefined && { timeoutMs }),
        ...(watchersMax !== undefined && { watchersMax }),
      });
      coordinator.#ownsConnection = true;
      return coordinator;
    } catch (error) {
      await nc.close();
      throw error;
    }
  }

  /**
   * Creates the bucket if it does not exist (history 1), or binds to it, and returns a
   * coordinator on it. First checks the server: a nats-server older than 2.9.0, one with
   * JetStream disabled, or an account without JetStream rejects with
   * `COORDINATOR_UNAVAILABLE` and a message naming what is missing; so does a JetStream
   * that cannot be reached.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const nc = await connect({ servers: "127.0.0.1:4222" });
   * const coordinator = await NatsKvCoordinator.create(nc, { bucket: "warp", replicas: 1 });
   * await coordinator.close();
   * await nc.close();
   * ```
   */
  static async create(
    nc: NatsConnection,
    options: NatsKvCoordinatorOptions = {},
  ): Promise<NatsKvCoordinator> {
    const { bucket = "warp", replicas = 1, timeoutMs = 1000, watchersMax = 10_000 } = options;
    if (nc === null || typeof nc !== "object" || typeof nc.publish !== "function") {
      throw new TypeError(`Invalid connection: ${describe(nc)}`);
    }
    if (typeof bucket !== "string" || !BUCKET_PATTERN.test(bucket)) {
      throw new TypeError(`Invalid bucket: ${describe(bucket)}`);
    }
    if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > 5) {
      throw new RangeError(`Invalid replicas: ${describe(replicas)}`);
    }
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
      throw new RangeError(`Invalid timeoutMs: ${describe(timeoutMs)}`);
    }
    if (!Number.isSafeInteger(watchersMax) || watchersMax < 1) {
      throw new RangeError(`Invalid watchersMax: ${describe(watchersMax)}`);
    }
    await checkServer(nc, timeoutMs, replicas);
    let kv: KV;
    try {
      const kvm = new Kvm(jetstream(nc, { timeout: timeoutMs }));
      kv = await kvm.create(bucket, {
        history: 1,
        replicas,
        timeout: timeoutMs,
        allow_direct: false,
      });
    } catch (error) {
      throw new WarpError(
        "COORDINATOR_UNAVAILABLE",
        `Coordinator could not open bucket: ${describe(bucket)}`,
        { cause: error },
      );
    }
    return new NatsKvCoordinator(nc, kv, bucket, watchersMax, replicas, timeoutMs);
  }

  private constructor(
    nc: NatsConnection,
    kv: KV,
    bucket: string,
    watchersMax: number,
    replicas: number,
    timeoutMs: number,
  ) {
    this.#nc = nc;
    this.#kv = kv;
    this.#bucket = bucket;
    this.#watchersMax = watchersMax;
    this.#replicas = replicas;
    this.#timeoutMs = timeoutMs;
    void this.#watchStatus();
  }

  /**
   * The bucket of a call: the main one, or for a TTL the bucket `<bucket>-ttl<ms>` whose
   * max age is that TTL — NATS 2.9 has no per-key TTL, but it does expire a bucket's
   * messages by age, within a few milliseconds. Created on first use; one that exists
   * with another max age is refused rather than trusted.
   */
  #bucketOf(options: CoordinatorCallOptions | undefined): KV | Promise<KV> {
    const ttlMs = options?.ttlMs;
    if (ttlMs === undefined) return this.#kv;
    if (!Number.isSafeInteger(ttlMs) || ttlMs < TTL_MIN_MS) {
      throw new RangeError(
        `Invalid ttlMs, expected an integer of at least ${TTL_MIN_MS}: ${ttlMs}`,
      );
    }
    let bucket = this.#ttlBuckets.get(ttlMs);
    if (bucket === undefined) {
      const name = `${this.#bucket}-ttl${ttlMs}`;
      bucket = (async () => {
        try {
          const kvm = new Kvm(jetstream(this.#nc, { timeout: this.#timeoutMs }));
          const kv = await kvm.create(name, {
            history: 1,
            replicas: this.#replicas,
            timeout: this.#timeoutMs,
            allow_direct: false,
            ttl: ttlMs,
          });
          const status = await kv.status();
          if (status.ttl !== ttlMs) {
            throw new Error(`bucket ${name} exists with max age ${status.ttl} ms, not ${ttlMs}`);
          }
          return kv;
        } catch (error) {
          this.#ttlBuckets.delete(ttlMs); // try again on the next call
          throw new WarpError(
            "COORDINATOR_UNAVAILABLE",
            `Coordinator could not open bucket: ${name}`,
            { cause: error },
          );
        }
      })();
      this.#ttlBuckets.set(ttlMs, bucket);
    }
    return bucket;
  }

  /**
   * Follows the connection's status: while the client knows it is disconnected, calls
   * fail at once with COORDINATOR_UNAVAILABLE instead of waiting out `timeoutMs`, so a
   * strong write fails fast (S4) and a strong read falls back to the store at once.
   */
  async #watchStatus(): Promise<void> {
    try {
      for await (const status of this.#nc.status()) {
        if (status.type === "disconnect" || status.type === "close") this.#connected = false;
        else if (status.type === "reconnect") this.#connected = true;
      }
    } catch {
      // The status iterator ends with the connection.
    }
  }

  #checkConnected(operation: string, key: string): void {
    if (!this.#connected || this.#nc.isClosed()) {
      throw new WarpError(
        "COORDINATOR_UNAVAILABLE",
        `NATS connection is down, coordinator ${operation} failed fast: ${key}`,
      );
    }
  }

  /** The KV bucket's name. */
  get bucket(): string {
    return this.#bucket;
  }

  /**
   * Reads a key: its value and revision, or `undefined` if it is absent or deleted.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const nc = await connect();
   * const coordinator = await NatsKvCoordinator.create(nc);
   * console.log(await coordinator.get("missing")); // undefined
   * await coordinator.close();
   * await nc.close();
   * ```
   */
  async get(
    key: string,
    options?: CoordinatorCallOptions,
  ): Promise<CoordinatorEntry | undefined> {
    const kvKey = await this.#kvKey(key);
    this.#checkConnected("get", key);
    const kv = await this.#bucketOf(options);
    try {
      const entry = await kv.get(kvKey);
      if (entry === null || entry.operation !== "PUT") return undefined;
      return { value: new Uint8Array(entry.value), revision: entry.revision };
    } catch (error) {
      throw toWarpError(error, "get", key);
    }
  }

  /**
   * Creates a key that must be absent (never written, or deleted) and returns its
   * revision; rejects with `CONTENDED` if the key exists.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const nc = await connect();
   * const coordinator = await NatsKvCoordinator.create(nc);
   * const revision = await coordinator.create("lease:1", new Uint8Array([1]));
   * await coordinator.delete("lease:1", revision);
   * await coordinator.close();
   * await nc.close();
   * ```
   */
  async create(key: string, value: Uint8Array, options?: CoordinatorCallOptions): Promise<number> {
    const kvKey = await this.#kvKey(key);
    this.#validateValue(value);
    this.#checkConnected("create", key);
    const kv = await this.#bucketOf(options);
    try {
      return checkRevision(await kv.create(kvKey, value));
    } catch (error) {
      throw toWarpError(error, "create", key);
    }
  }

  /**
   * Replaces a key whose revision is `revision` and returns the new revision; rejects
   * with `CONTENDED` if the key's revision moved or it was deleted.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const nc = await connect();
   * const coordinator = await NatsKvCoordinator.create(nc);
   * const first = await coordinator.create("k", new Uint8Array([1]));
   * const second = await coordinator.update("k", new Uint8Array([2]), first);
   * await coordinator.delete("k", second);
   * await coordinator.close();
   * await nc.close();
   * ```
   */
  async update(
    key: string,
    value: Uint8Array,
    revision: number,
    options?: CoordinatorCallOptions,
  ): Promise<number> {
    const kvKey = await this.#kvKey(key);
    this.#validateValue(value);
    validateRevision(revision);
    this.#checkConnected("update", key);
    const kv = await this.#bucketOf(options);
    try {
      return checkRevision(await kv.update(kvKey, value, revision));
    } catch (error) {
      throw toWarpError(error, "update", key, revision);
    }
  }

  /**
   * Deletes a key, leaving a tombstone. Without `revision` it always succeeds (also for an
   * absent key); with one, it rejects with `CONTENDED` if the key's revision moved or it
   * is absent.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const nc = await connect();
   * const coordinator = await NatsKvCoordinator.create(nc);
   * await coordinator.delete("never-written");
   * await coordinator.close();
   * await nc.close();
   * ```
   */
  async delete(key: string, revision?: number): Promise<void> {
    const kvKey = await this.#kvKey(key);
    if (revision !== undefined) validateRevision(revision);
    try {
      this.#checkConnected("delete", key);
      await this.#kv.delete(kvKey, revision === undefined ? {} : { previousSeq: revision });
    } catch (error) {
      throw toWarpError(error, "delete", key, revision);
    }
  }

  /**
   * Calls `listener` after every later write of `key`: with the new entry, or `undefined`
   * when the key is deleted or purged. It is not called with the current entry: it
   * resolves once the watch is in place, and every write after that is reported, in
   * revision order. To wait for a change without missing one, watch first, then `get`.
   * A listener that throws is not stopped. Resolves to a function that stops the calls.
   *
   * While the connection is down nothing is reported; the client re-creates the watch on
   * reconnect, so writes made meanwhile may be reported late or (if superseded) not at
   * all. Callers that must not miss a release should also poll with `get`.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const nc = await connect();
   * const coordinator = await NatsKvCoordinator.create(nc);
   * const stop = await coordinator.watch("lock:orders", (entry) => {
   *   if (entry === undefined) console.log("released");
   * });
   * stop();
   * await coordinator.close();
   * await nc.close();
   * ```
   */
  async watch(key: string, listener: NatsKvWatchListener): Promise<() => void> {
    const kvKey = await this.#kvKey(key);
    if (typeof listener !== "function") {
      throw new TypeError(`Invalid listener: ${describe(listener)}`);
    }
    if (this.#stops.size >= this.#watchersMax) {
      throw new RangeError(`Too many watchers: ${this.#watchersMax}`);
    }
    let iterator: Awaited<ReturnType<KV["watch"]>>;
    try {
      iterator = await this.#kv.watch({ key: kvKey, include: KvWatchInclude.UpdatesOnly });
    } catch (error) {
      throw toWarpError(error, "watch", key);
    }
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      this.#stops.delete(stop);
      iterator.stop();
    };
    this.#stops.add(stop);
    (async () => {
      try {
        for await (const entry of iterator) {
          if (stopped) break;
          try {
            listener(
              entry.operation === "PUT"
                ? { value: new Uint8Array(entry.value), revision: entry.revision }
                : undefined,
            );
          } catch {
            // A listener's bug must not end the watch.
          }
        }
      } catch {
        // The iterator ends with the connection.
      } finally {
        this.#stops.delete(stop);
      }
    })();
    return stop;
  }

  /**
   * Stops every watch. A connection you passed to `create` stays open, and later calls
   * still work; one that {@linkcode NatsKvCoordinator.connect} opened is closed.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const nc = await connect();
   * const coordinator = await NatsKvCoordinator.create(nc);
   * await coordinator.close();
   * await nc.close();
   * ```
   */
  async close(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
    if (this.#ownsConnection && !this.#nc.isClosed()) await this.#nc.close();
  }

  /**
   * Deletes the whole bucket and everything in it, and its TTL buckets
   * (`<bucket>-ttl<ms>`, lease records), for tests and teardown.
   *
   * @example
   * ```ts ignore
   * import { connect } from "@nats-io/transport-node";
   * import { NatsKvCoordinator } from "./coordinator.ts";
   * const nc = await connect();
   * const coordinator = await NatsKvCoordinator.create(nc, { bucket: "warp_scratch" });
   * await coordinator.destroy();
   * await nc.close();
   * ```
   */
  async destroy(): Promise<void> {
    for (const stop of [...this.#stops]) stop();
    try {
      await this.#kv.destroy();
      const jsm = await jetstreamManager(this.#nc, { timeout: this.#timeoutMs });
      const ttlStream = new RegExp(`^KV_${this.#bucket}-ttl\\d+$`);
      for await (const name of jsm.streams.names()) {
        if (ttlStream.test(name)) await jsm.streams.delete(name);
      }
      this.#ttlBuckets.clear();
    } catch (error) {
      throw toWarpError(error, "destroy bucket", this.#bucket);
    } finally {
      await this.close();
    }
  }

  async #kvKey(key: string): Promise<string> {
    const problem = coordinatorKeyProblem(key);
    if (problem !== undefined) throw new TypeError(`Invalid key, ${problem}: ${describe(key)}`);
    return await escapeKvKey(key);
  }

  #validateValue(value: unknown): asserts value is Uint8Array {
    if (!(value instanceof Uint8Array)) {
      throw new TypeError(`Invalid value: expected a Uint8Array, got ${describe(value)}`);
    }
    const max = this.#nc.info?.max_payload;
    if (max !== undefined && value.length > max) {
      throw new RangeError(`Value too large (max ${max} bytes): ${value.length}`);
    }
  }
}

/**
 * Rejects with `COORDINATOR_UNAVAILABLE`, naming what is missing, unless the server can host
 * the coordinator: its version and JetStream from its INFO, then the account's JetStream by
 * asking for the account's JetStream information.
 */
async function checkServer(
  nc: NatsConnection,
  timeoutMs: number,
  replicas: number,
): Promise<void> {
  const where = `nats-server at ${nc.getServer()}`;
  const problem = natsServerProblem(nc.info, replicas);
  if (problem !== undefined) throw new WarpError("COORDINATOR_UNAVAILABLE", `${problem}: ${where}`);
  try {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    await jsm.getAccountInfo();
  } catch (error) {
    const disabled = error instanceof JetStreamApiError ||
      /not enabled|no responders/i.test(String((error as Error)?.message));
    throw new WarpError(
      "COORDINATOR_UNAVAILABLE",
      disabled
        ? `Coordinator needs JetStream for this connection's account, which has none (${
          describeError(error)
        }): ${where}`
        : `Coordinator could not reach JetStream (${describeError(error)}): ${where}`,
      { cause: error },
    );
  }
}

function validateRevision(revision: unknown): asserts revision is number {
  if (typeof revision !== "number" || !Number.isSafeInteger(revision) || revision < 1) {
    throw new RangeError(`Invalid revision: ${describe(revision)}`);
  }
}

function checkRevision(revision: number): number {
  assert(
    Number.isSafeInteger(revision) && revision >= 1,
    `NATS KV returned an invalid revision: ${revision}`,
  );
  return revision;
}

function toWarpError(error: unknown, action: string, key: string, revision?: number): WarpError {
  if (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  ) {
    const message = revision === undefined
      ? `Key already exists: ${describe(key)}`
      : `Revision moved on key ${describe(key)}: expected ${revision}`;
    return new WarpError("CONTENDED", message, { cause: error });
  }
  const reason = describeError(error);
  return new WarpError(
    "COORDINATOR_UNAVAILABLE",
    `Coordinator failed to ${action} (${reason}): ${describe(key)}`,
    { cause: error },
  );
}
