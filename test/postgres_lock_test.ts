/**
 * Locks across real processes over `PostgresCoordinator` on the shared PostgreSQL: the tests
 * of `test/_lock_tests.ts` (L1, L2, L3 with a fenced counter in PostgreSQL).
 *
 * @module
 */

import { testLocksAcrossProcesses } from "./_lock_tests.ts";

testLocksAcrossProcesses("postgres", "PostgreSQL");
