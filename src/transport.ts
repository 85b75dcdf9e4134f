/**
 * The message bus between Warp nodes: at-most-once publish/subscribe on subjects.
 * Implementations: `InProcessBus` (nodes in one process), and the NATS, PostgreSQL
 * (`LISTEN`/`NOTIFY`) and Redis (publish/subscribe) transports.
 *
 * Warp uses two subjects per cluster: `<prefix>.all` (every node subscribes) and
 * `<prefix>.node.<nodeId>` (one node). Delivery may lose, duplicate or reorder messages;
 * the protocol is built for that. A publisher receives its own broadcasts.
 *
 * @module
 */

/** Ends a subscription. */
export type Unsubscribe = () => void;

/** Connection state changes a transport reports. */
export type TransportStatus = "connected" | "disconnected";

/** An at-most-once publish/subscribe bus. */
export interface Transport {
  /** Sends `data` to every subscriber of `subject`. Never throws for a lost message. */
  publish(subject: string, data: Uint8Array): void;
  /** Calls `handler` for each message on `subject` until unsubscribed. */
  subscribe(subject: string, handler: (data: Uint8Array) => void): Unsubscribe;
  /** Registers a listener for connection changes; optional. */
  onStatus?(listener: (status: TransportStatus) => void): void;
  /** Closes the transport. */
  close(): Promise<void>;
}
