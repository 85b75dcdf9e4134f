/**
 * Private helpers the runtimes share: the timer that wakes a core at its next deadline,
 * a deadline on a promise, and the errors a failed or late I/O call becomes.
 *
 * @module
 */

import { WarpError } from "./core/errors.ts";
import { describeError } from "./_describe.ts";

/**
 * The longest delay `setTimeout` honours; a longer one fires at once. A deadline further
 * away wakes the core early, which is harmless: a wake before any deadline is a no-op.
 */
export const TIMER_DELAY_MAX_MS = 2 ** 31 - 1;

/**
 * Wakes a core at its next deadline. While a caller waits on an operation the timer keeps
 * the process alive (a write may be waiting out a lease); otherwise it does not, so an idle
 * node never holds a script open.
 */
export class WakeTimer {
  readonly #clock: () => number;
  readonly #wake: () => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #atMs = Infinity;
  #refd = false;

  /** Creates a timer that calls `wake` at deadlines read on `clock`. */
  constructor(clock: () => number, wake: () => void) {
    this.#clock = clock;
    this.#wake = wake;
  }

  /** Arms the timer for `deadlineMs` unless an earlier wake is armed the same way. */
  schedule(deadlineMs: number, keepAlive: boolean): void {
    if (deadlineMs >= this.#atMs && keepAlive === this.#refd) return;
    this.cancel();
    this.#atMs = deadlineMs;
    this.#refd = keepAlive;
    if (deadlineMs === Infinity) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#atMs = Infinity;
      this.#wake();
    }, Math.min(TIMER_DELAY_MAX_MS, Math.max(0, deadlineMs - this.#clock())));
    if (!keepAlive) unrefTimer(this.#timer);
  }

  /** Disarms the timer. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#atMs = Infinity;
  }
}

/**
 * Calls `call` (one store, coordinator or bus call) and rejects with `onTimeout()` if its
 * promise has not settled within `ms`. The one choke point of the runtimes' I/O: a call
 * that throws instead of rejecting (an adapter's synchronous argument check) rejects
 * here too, so it can never escape into a core step and strand an operation.
 */
export function withTimeout<R>(
  call: () => Promise<R>,
  ms: number,
  onTimeout: () => Error,
): Promise<R> {
  let promise: Promise<R>;
  try {
    promise = call();
  } catch (error) {
    return Promise.reject(error);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Lets the process exit while `timer` is armed (Deno and Node alike). */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  const deno = (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno;
  if (deno !== undefined && typeof timer === "number") deno.unrefTimer(timer);
  else (timer as unknown as { unref?: () => void }).unref?.();
}

/** A failed I/O call as the caller sees it: a `WarpError` (kept) or one of `code`. */
export function asWarpError(
  error: unknown,
  code: "STORE_ERROR" | "COORDINATOR_UNAVAILABLE",
  what: string,
): WarpError {
  if (error instanceof WarpError) return error;
  return new WarpError(code, `${what}: ${describeError(error)}`, {
    cause: error,
  });
}

/** The error of an I/O call past its deadline: `TIMEOUT`, naming the call. */
export function timeoutAfter(ms: number, what: string): () => Error {
  return () => new WarpError("TIMEOUT", `${what} took longer than ${ms} ms`);
}
