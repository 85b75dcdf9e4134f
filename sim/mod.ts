/**
 * Warp's deterministic simulator and consistency checkers, for fuzzing Warp (or your
 * configuration of it) and for checking histories recorded from any system.
 *
 * @example Run and check one seed
 * ```ts
 * import { runSeed } from "@warp/warp/sim";
 * const report = runSeed({ seed: 1, nodes: 3, safetyMs: 300, livenessMs: 300 });
 * console.log(report.violations.length); // 0
 * ```
 *
 * @module
 */

export { CANARIES, describeFault, SimCluster } from "./cluster.ts";
export type {
  CanaryName,
  HitCounts,
  ScriptedOp,
  SimOptions,
  SimPolicy,
  SimRun,
  SimStats,
  TraceEvent,
} from "./cluster.ts";
export { CALM, drawDriftPpm, drawFaults, drawMix, drawSchedule, FAULT_PRESETS } from "./faults.ts";
export type { CoordinatorFaultRates, Fault, FaultMix, FaultPreset } from "./faults.ts";
export { Prng } from "./prng.ts";
export { configProblems, userShape } from "./config.ts";
export type { ClusterShape, SimKey } from "./config.ts";
export { formatPath, FULL_PATH, parsePath, runSeed, shrinkSeed } from "./runner.ts";
export type { RunPath, SeedOptions, SeedReport } from "./runner.ts";
export { HISTORY_FORMAT } from "./history.ts";
export type {
  History,
  HistoryOp,
  KeyBounds,
  KeyInfo,
  L1Sample,
  LeaseHistory,
  LeaseOp,
  LeaseRecordLog,
  OpKind,
  Outcome,
  PropagationPhase,
  StoreLogEntry,
  TransactionRecord,
  TxnStep,
  UpdateHistory,
  UpdateOp,
  Violation,
} from "./history.ts";
export type { ClearOp } from "./history.ts";
export type { HealInstall, ValidatorHistory, ValidatorVerdictEntry } from "./history.ts";
export type {
  DropLogEntry,
  LoaderHistory,
  LoaderKeyInfo,
  LoaderOp,
  LoadLogEntry,
} from "./history.ts";
export type { LoaderCanary } from "./_loaders.ts";
export type { ForgerPower } from "./_forger.ts";
export * from "./checkers/mod.ts";
export { LOCK_CANARIES, LockSimCluster, runLockSeed } from "./lock_cluster.ts";
export type {
  LockCanaryName,
  LockFault,
  LockFaultMix,
  LockSeedReport,
  LockSimOptions,
  LockSimStats,
} from "./lock_cluster.ts";
export { checkLockHistory, LOCK_GUARANTEES, LOCK_HISTORY_FORMAT } from "./checkers/locks.ts";
export type {
  LockAcquireRecord,
  LockCheckResult,
  LockClaimRecord,
  LockGrantRecord,
  LockGuarantee,
  LockHistory,
  LockL3Params,
  LockL3Stats,
  LockMisuseRecord,
  LockWriteRecord,
} from "./checkers/locks.ts";
