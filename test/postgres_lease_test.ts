/**
 * Leases over PostgreSQL alone (`PostgresTransport`, `PostgresCoordinator`, the store): the
 * tests of `test/_lease_tests.ts` (G1, G2, G3). Lease records expire by the database's
 * clock.
 *
 * @module
 */

import { testLeasesAcrossProcesses } from "./_lease_tests.ts";

testLeasesAcrossProcesses({ bus: "postgres", coordinator: "postgres" }, "PostgreSQL");
