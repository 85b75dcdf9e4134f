/**
 * Warp keeps the in-memory caches of many instances of a service consistent with each
 * other and with their primary store, with a consistency mode chosen per key:
 *
 * - `strong-local`: this node only, no network on write;
 * - `eventual-distributed`: writes are local, invalidations spread, and no read lags a
 *   completed write by more than `maxStalenessMs`, whatever the bus loses;
 * - `strong-distributed`: a write completes only when no node can serve the old value.
 *
 * The guarantees are stated in `docs/guarantees.md` and checked by the simulator
 * (`deno task sim`).
 *
 * @example Three nodes in one process
 * ```ts
 * import { InProcessBus, MemoryCoordinator, MemoryStore, Warp } from "@warp/warp";
 * const store = new MemoryStore();
 * const bus = new InProcessBus();
 * const coordinator = new MemoryCoordinator();
 * const nodes = [1, 2, 3].map(() => new Warp({ store, coordinator, transport: bus.connect() }));
 * for (const node of nodes) node.register("user:*", { mode: "strong-distributed" });
 * await nodes[0]!.set("user:1", { name: "Ada" });
 * console.log(await nodes[2]!.get("user:1")); // { name: "Ada" }
 * await Promise.all(nodes.map((node) => node.close()));
 * ```
 *
 * @module
 */

export { VALUE_BYTES_LIMIT, VALUE_BYTES_MAX_DEFAULT, Warp } from "./src/warp.ts";
export type {
  GrantLeaseOptions,
  Loader,
  LoaderContext,
  ReadResult,
  SetOptions,
  WarpKeyOptions,
  WarpOptions,
  WarpReadOptions,
  WarpStats,
} from "./src/warp.ts";
export type { LoadMany, LoadManyContext, ManyResult } from "./src/_batch.ts";
export type { AuditOptions, AuditReport } from "./src/_audit.ts";
export type {
  ValidatorMode,
  ValidatorOptions,
  ValidatorReport,
  ValidatorVerdict,
} from "./src/core/_validator.ts";
export { WarpNamespace } from "./src/_namespace.ts";
export type { CompareAndSetResult, Merge, UpdateOptions } from "./src/_update.ts";
export type { TransactionResult, TransactionStep } from "./src/_transaction.ts";
export { UPDATE_ABORT } from "./src/core/update.ts";
export type { Reducer, UpdateContext, UpdateLimits, UpdateResult } from "./src/core/update.ts";
export { merges } from "./src/merges.ts";
export { InvariantError, WarpError } from "./src/core/errors.ts";
export type { WarpErrorCode } from "./src/core/errors.ts";
export type {
  ConsistencyMode,
  KeyOptions,
  KeyPolicy,
  ReadOptions,
  ReadSettings,
  ValueOrigin,
} from "./src/core/registry.ts";
export type { WarpConfig } from "./src/config.ts";
export { CONFIG_OPTIONS } from "./src/config.ts";
export type { Codec } from "./src/codec.ts";
export { bytesCodec, JSON_DEPTH_MAX, jsonCodec, textCodec } from "./src/codec.ts";
export { structuredCodec } from "./src/structured_codec.ts";
export { isKey, KEY_LENGTH_MAX } from "./src/core/messages.ts";
export type {
  Store,
  StoreKeyPage,
  StoreListOptions,
  StoreRecord,
  StoreTransactionStep,
  StoreWriteOptions,
} from "./src/store.ts";
export { STORE_GET_MANY_MAX } from "./src/store.ts";
export { MemoryStore } from "./src/store/memory.ts";
export type { MemoryStoreCounts, MemoryStoreOptions } from "./src/store/memory.ts";
export type { Coordinator, CoordinatorCallOptions, CoordinatorEntry } from "./src/coordinator.ts";
export { COORDINATOR_KEY_LENGTH_MAX } from "./src/coordinator.ts";
export { MemoryCoordinator } from "./src/coordinator/memory.ts";
export type {
  CoordinatorWatchListener,
  MemoryCoordinatorOptions,
} from "./src/coordinator/memory.ts";
export type { Transport, TransportStatus, Unsubscribe } from "./src/transport.ts";
export { InProcessBus, InProcessTransport } from "./src/transport/in_process.ts";
export type {
  InProcessBusCounts,
  InProcessConnectOptions,
  InProcessFilter,
} from "./src/transport/in_process.ts";
export { decodeMessage, encodeMessage, MESSAGE_BYTES_MAX } from "./src/wire.ts";
export {
  AUTH_SECRET_BYTES_MIN,
  AUTH_SECRETS_MAX,
  AUTH_TAG_BYTES,
  MessageAuth,
} from "./src/auth.ts";
export type { AuthOptions, Opened } from "./src/auth.ts";
export { Fence, Locks } from "./src/locks.ts";
export { EVENT_LOG_LEVELS, WARP_EVENT_TYPES } from "./src/observe.ts";
export type {
  FlushEvent,
  FlushReason,
  GapEvent,
  LoaderErrorEvent,
  Logger,
  NodeFailedEvent,
  ReadEvent,
  RefreshEvent,
  SessionLostEvent,
  TimeoutEvent,
  ValidatorEvent,
  WarpEvent,
  WarpEventOf,
  WarpEventType,
  WarpListener,
} from "./src/observe.ts";
export { DURATION_BUCKETS_S, noopMetrics, WARP_METRICS } from "./src/metrics.ts";
export type {
  CompareAndSetCounts,
  MessageType,
  MetricDefinition,
  MetricsCounterName,
  MetricsSource,
  MetricsStats,
  OperationName,
  ValidatorCheckResult,
  ValidatorKeyCount,
  WarpMetrics,
} from "./src/metrics.ts";
export type { LockHandle, LockOptions, LocksOptions } from "./src/locks.ts";
