/**
 * Server parameters: mongod's that matter to backups and restores (docs/psmdb-behaviour.md sections 3 and 7), and
 * the simulator's own, prefixed `sim` (docs/simulator.md). Startup values come from `--setParameter name=value`;
 * `getParameter`/`setParameter` read and change them at run time where mongod allows it.
 */
import { CommandError, ErrorCodes } from '../wire/index.ts';

interface ParameterSpec {
  type: 'bool' | 'int';
  default: boolean | number;
  /** mongod refuses to change these at run time. */
  startupOnly?: boolean;
}

export const PARAMETERS: Record<string, ParameterSpec> = {
  cursorTimeoutMillis: { type: 'int', default: 600_000 },
  enableTimeoutOfInactiveSessionCursors: { type: 'bool', default: false },
  recoverFromOplogAsStandalone: { type: 'bool', default: false, startupOnly: true },
  takeUnstableCheckpointOnShutdown: { type: 'bool', default: false, startupOnly: true },
  disableLogicalSessionCacheRefresh: { type: 'bool', default: false, startupOnly: true },
  /** mongod's maintenance switch: a shard or config server member started without its role (restore steps). */
  skipShardingConfigurationChecks: { type: 'bool', default: false, startupOnly: true },
  localLogicalSessionTimeoutMinutes: { type: 'int', default: 30, startupOnly: true },
  /** How often the logical session cache refreshes: reaps ended and expired sessions' cursors (mongod: 5 min). */
  logicalSessionRefreshMillis: { type: 'int', default: 300_000, startupOnly: true },
  /** Idle life of a logical session in ms, overriding localLogicalSessionTimeoutMinutes when > 0 (--session-timeout-ms). */
  simLogicalSessionTimeoutMs: { type: 'int', default: 0 },
  /** Checkpoint interval (WiredTiger's default is 60 s). */
  simCheckpointIntervalMs: { type: 'int', default: 60_000 },
  /** Delay before the first checkpoint, to stagger nodes. */
  simCheckpointOffsetMs: { type: 'int', default: 0, startupOnly: true },
  /** How far this member's applied oplog trails the primary's. */
  simReplicationLagMs: { type: 'int', default: 0 },
  /** Periodic no-op writer interval of a primary (PSMDB: 10 s). */
  simNoopIntervalMs: { type: 'int', default: 10_000 },
  /** Preallocated journal file size (PSMDB: 100 MiB). */
  simLogFileSize: { type: 'int', default: 1024 * 1024, startupOnly: true },
  /** fsync data and journal files; off survives a killed process but not a power loss (faster tests). */
  simFsync: { type: 'bool', default: true, startupOnly: true },
  /** Block size of new data files. */
  simBlockSize: { type: 'int', default: 4096, startupOnly: true },
};

function parseValue(name: string, spec: ParameterSpec, raw: unknown): boolean | number {
  if (spec.type === 'bool') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1' || raw === 1) return true;
    if (raw === 'false' || raw === '0' || raw === 0) return false;
    throw new CommandError(ErrorCodes.BadValue, `Invalid value for parameter ${name}: ${String(raw)} is not a boolean`);
  }
  const n = typeof raw === 'string' ? Number(raw.trim()) : Number(raw as number);
  if (!Number.isInteger(n) || (typeof raw === 'string' && raw.trim() === '')) {
    throw new CommandError(ErrorCodes.BadValue, `Invalid value for parameter ${name}: ${String(raw)} is not an integer`);
  }
  return n;
}

/** Parses `--setParameter` values; an unknown name fails startup, as in mongod. */
export function parseStartupParameters(given: Record<string, unknown>): Map<string, boolean | number> {
  const out = new Map<string, boolean | number>();
  for (const [name, raw] of Object.entries(given)) {
    const spec = PARAMETERS[name];
    if (!spec) throw new CommandError(ErrorCodes.BadValue, `Unknown --setParameter '${name}'`);
    out.set(name, parseValue(name, spec, raw));
  }
  return out;
}

/** The live parameter values of one node. */
export class RuntimeParameters {
  private readonly values = new Map<string, boolean | number>();

  constructor(startup: Map<string, boolean | number>) {
    for (const [name, spec] of Object.entries(PARAMETERS)) this.values.set(name, startup.get(name) ?? spec.default);
  }

  get(name: keyof typeof PARAMETERS): boolean | number {
    const v = this.values.get(name);
    if (v === undefined) throw new Error(`sim bug: unknown parameter ${name}`);
    return v;
  }

  /** `getParameter`: one name, several, or `'*'` for all. */
  read(names: string[] | '*'): Record<string, boolean | number> {
    const out: Record<string, boolean | number> = {};
    const list = names === '*' ? [...this.values.keys()] : names;
    for (const n of list) {
      const v = this.values.get(n);
      if (v === undefined) throw new CommandError(ErrorCodes.InvalidOptions, `no option found to get`);
      out[n] = v;
    }
    return out;
  }

  /** `setParameter` at run time; returns the previous value. */
  set(name: string, raw: unknown): boolean | number {
    const spec = PARAMETERS[name];
    if (!spec) throw new CommandError(ErrorCodes.InvalidOptions, `attempted to set unrecognized parameter [${name}], use help:true to see options`);
    if (spec.startupOnly) throw new CommandError(ErrorCodes.BadValue, `not allowed to change [${name}] at runtime`);
    const was = this.values.get(name)!;
    this.values.set(name, parseValue(name, spec, raw));
    return was;
  }
}
