/**
 * The tuning options of backups and restores (`BackupInput` in backup-types.ts, `RestoreInput` in restore-types.ts):
 * each one's default and bounds, defined once. The CLI (its help shows the defaults), the client API (it validates
 * before starting) and the workflows themselves (they resolve their input first, so a workflow started from the
 * Temporal UI or by hand with a bad option fails at once with BAD_USAGE naming it) all apply these. Workflow-safe.
 */
import { CutpointError } from './errors.ts';

/** One numeric option: its default, its bounds (inclusive), and why a bound is there when it is not obvious. */
export interface NumericOption {
  default: number;
  min: number;
  max?: number;
  integer?: boolean;
  /** Said in the error when the value is above `max`. */
  whyMax?: string;
  /** One line for help texts and docs. */
  doc: string;
}

/** The numeric options of {@link BackupInput}, with their defaults and bounds. */
export const BACKUP_OPTIONS = {
  bytesPerSec: { default: 0, min: 0, integer: true, doc: 'whole-backup copy rate, bytes per second (0 = unlimited)' },
  maxLagSecs: { default: 30, min: 0, integer: true, doc: 'lag ceiling for choosing a secondary, seconds' },
  keepAliveIntervalMs: {
    default: 60_000,
    min: 1_000,
    max: 300_000,
    integer: true,
    whyMax: 'well inside the 10-minute idle cursor limit of the server, cursorTimeoutMillis',
    doc: 'getMore interval of the backup cursor keep-alive, ms',
  },
  copyParallelism: { default: 4, min: 1, max: 64, integer: true, doc: 'copy activities running at once per replica set' },
  cursorReopens: { default: 2, min: 0, max: 100, integer: true, doc: 'times a replica set re-opens a lost backup cursor before CURSOR_LOST' },
  batchMaxFiles: { default: 500, min: 1, integer: true, doc: 'largest copy batch, files' },
  batchMaxBytes: { default: 256 * 1024 * 1024, min: 1, integer: true, doc: 'largest copy batch, bytes' },
  agentHeartbeatTimeoutMs: {
    default: 20_000,
    min: 5_000,
    integer: true,
    doc: "heartbeat timeout of the agent's long activities, ms (how soon a dead agent is noticed; agents beat every 2 s at most)",
  },
  agentTimeoutMs: {
    default: 120_000,
    min: 1_000,
    integer: true,
    doc: 'how long an agent may take to pick up work before the backup fails with WORKER_UNAVAILABLE, ms',
  },
  blockSizeMB: {
    default: 16,
    min: 1,
    max: 2048,
    integer: true,
    whyMax: "WiredTiger's largest incremental granularity, 2 GB",
    doc: 'incremental backups: the granularity of the changed ranges the server lists, MB (a chain keeps one)',
  },
  baseEvery: { default: 0, min: 0, integer: true, doc: 'incremental backups: a new base every this many backups of a chain (0 = only when the chain breaks)' },
} as const satisfies Record<string, NumericOption>;

export type BackupOptionName = keyof typeof BACKUP_OPTIONS;

/** Every option of a backup with its value: the given one, or the default. */
export type ResolvedBackupOptions = Record<BackupOptionName, number> & { ifBusy: 'fail' | 'wait'; incremental: boolean; base: boolean };

/** Checks one value against its option; returns the value or the default. Throws BAD_USAGE naming the option. */
export function resolveNumber(name: string, spec: NumericOption, value: unknown): number {
  if (value === undefined || value === null) return spec.default;
  const bad = (rule: string): never => {
    throw new CutpointError('BAD_USAGE', `${name} must be ${rule}, got ${JSON.stringify(value)}`, { option: name, value });
  };
  if (typeof value !== 'number' || !Number.isFinite(value)) return bad('a number');
  if (spec.integer && !Number.isInteger(value)) return bad('a whole number');
  if (value < spec.min) return bad(`at least ${spec.min}`);
  if (spec.max !== undefined && value > spec.max) return bad(`at most ${spec.max}${spec.whyMax ? ` (${spec.whyMax})` : ''}`);
  return value;
}

/** The backup's options, checked and with their defaults filled in. */
export function resolveBackupOptions(
  input: Partial<Record<BackupOptionName, unknown>> & { ifBusy?: unknown; incremental?: unknown; base?: unknown },
): ResolvedBackupOptions {
  const out = {} as Record<BackupOptionName, number>;
  for (const [name, spec] of Object.entries(BACKUP_OPTIONS) as Array<[BackupOptionName, NumericOption]>) out[name] = resolveNumber(name, spec, input[name]);
  const ifBusy = input.ifBusy ?? 'fail';
  if (ifBusy !== 'fail' && ifBusy !== 'wait') throw new CutpointError('BAD_USAGE', `ifBusy must be 'fail' or 'wait', got ${JSON.stringify(ifBusy)}`, { option: 'ifBusy', value: ifBusy });
  const flag = (name: 'incremental' | 'base'): boolean => {
    const v = input[name] ?? false;
    if (typeof v !== 'boolean') throw new CutpointError('BAD_USAGE', `${name} must be true or false, got ${JSON.stringify(v)}`, { option: name, value: v });
    return v;
  };
  // A base starts a chain: it is an incremental backup's first link.
  const base = flag('base');
  const incremental = flag('incremental') || base;
  if (!incremental && (input.blockSizeMB !== undefined || input.baseEvery !== undefined)) {
    const option = input.blockSizeMB !== undefined ? 'blockSizeMB' : 'baseEvery';
    throw new CutpointError('BAD_USAGE', `${option} applies to incremental backups only: add incremental (CLI: --incremental)`, { option });
  }
  return { ...out, ifBusy, incremental, base };
}

/** The numeric options of `RestoreInput` (shared with backups where they mean the same). */
export const RESTORE_OPTIONS = {
  agentTimeoutMs: { ...BACKUP_OPTIONS.agentTimeoutMs, doc: 'how long an agent may take to pick up a step before the restore fails with WORKER_UNAVAILABLE, ms' },
  replayBatchOps: { default: 1_000, min: 1, max: 100_000, integer: true, doc: 'point-in-time restores: oplog operations per applyOps command of the replay (each batch is a checkpoint)' },
} as const satisfies Record<string, NumericOption>;

/** The numeric options of continuous oplog capture (`PitrInput` in pitr-types.ts). */
export const PITR_OPTIONS = {
  sealEveryMs: { default: 1_000, min: 100, max: 600_000, integer: true, doc: 'how often each replica set seals the oplog it tailed into the repository, ms' },
  leaseMs: {
    default: 60_000,
    min: 1_000,
    max: 3_600_000,
    integer: true,
    doc: 'how long one capture activity runs before it returns and the workflow starts the next (its lag shows in the UI then), ms',
  },
  leasesPerRun: { default: 100, min: 2, max: 1_000, integer: true, doc: 'capture activities per replica set per workflow run before continue-as-new (keeps the history bounded)' },
  maxLagSecs: BACKUP_OPTIONS.maxLagSecs,
  agentTimeoutMs: {
    ...BACKUP_OPTIONS.agentTimeoutMs,
    default: 15_000,
    doc: "how long a chosen member's agent may take to pick up a capture before another member is tried, ms (the capture waits that long)",
  },
  agentHeartbeatTimeoutMs: BACKUP_OPTIONS.agentHeartbeatTimeoutMs,
} as const satisfies Record<string, NumericOption>;

export type PitrOptionName = keyof typeof PITR_OPTIONS;

/** The capture's options, checked and with their defaults filled in. Throws BAD_USAGE naming a bad one. */
export function resolvePitrOptions(input: Partial<Record<PitrOptionName, unknown>>): Record<PitrOptionName, number> {
  const out = {} as Record<PitrOptionName, number>;
  for (const [name, spec] of Object.entries(PITR_OPTIONS) as Array<[PitrOptionName, NumericOption]>) out[name] = resolveNumber(name, spec, input[name]);
  return out;
}
