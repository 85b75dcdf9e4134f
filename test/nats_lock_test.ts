/**
 * Locks across real processes over the shared NATS JetStream KV: the tests of
 * `test/_lock_tests.ts` (L1, L2, L3 with a fenced counter in PostgreSQL).
 *
 * @module
 */

import { testLocksAcrossProcesses } from "./_lock_tests.ts";

testLocksAcrossProcesses("nats", "NATS");
