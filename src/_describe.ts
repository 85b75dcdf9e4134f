/**
 * Private: how Warp's runtimes and adapters name a bad argument in an error message. The
 * one helper lives in the core (`src/core/_describe.ts`), so the pure modules use it too.
 *
 * @module
 */

export { describe, describeError, describeValue } from "./core/_describe.ts";
