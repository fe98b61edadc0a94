/**
 * Shapes shared by the restore and verify workflows, their activities, the CLI and the API: the target map of
 * `restore --to MAP.json` (docs/interfaces.md section 2), workflow inputs, the `progress` query and the summaries.
 * Workflow-safe (types and pure helpers).
 */
import type { BackupStatus } from './manifest.ts';
import type { CredentialsRef } from './target.ts';
import type { Ts } from './timestamp.ts';
import { parseStartupOverrides, type StartupOptionOverrides } from './startup-options.ts';

/** One member a replica set is restored to: where its mongod will listen, and its dbpath on that host. */
export interface RestoreMember {
  host: string;
  dbpath: string;
  /**
   * Overrides of the source's startup options for this member (common/startup-options.ts), e.g. the key file's path
   * on the new host: `{"security.keyFile": "/etc/mongo/key"}`; `null` leaves an option out.
   */
  options?: StartupOptionOverrides;
}

/** `--to MAP.json`: every replica set of the backup, by name, mapped to its new members. */
export type RestoreTargetMap = Record<string, RestoreMember[]>;

/** Input of `clusterRestore`. */
export interface RestoreInput {
  /** The backup to restore (a `complete` backup in `repo`); not with `at`. */
  backupId?: string;
  /**
   * A point-in-time restore's target (common/restore-at.ts: `t:i`, or an ISO-8601 time meaning the end of that
   * second); not with `backupId`: the base is the newest complete backup at or before it, and every replica set's
   * captured oplog is replayed to exactly that cluster time.
   */
  at?: string;
  /** Repository path as the workers see it. */
  repo: string;
  /** New members per replica set; every replica set of the backup must be mapped. */
  to: RestoreTargetMap;
  /** Restore into non-empty dbpaths: their data is kept aside until the restore succeeds, put back if it fails. */
  overwrite?: boolean;
  /**
   * How long an agent activity may wait for the target host's agent to pick it up, ms (default 120 000). A target
   * whose agent is not running fails the restore after this long, naming the agent's task queue.
   */
  agentTimeoutMs?: number;
  /** Point-in-time restores: oplog operations per applyOps command of the replay (common/options.ts). */
  replayBatchOps?: number;
}

/** Input of `verifyBackup`. */
export interface VerifyInput {
  backupId: string;
  repo: string;
}

/** Input of `seedMember`: one replica set's files placed for a new member, which then joins the running set. */
export interface SeedInput {
  backupId: string;
  repo: string;
  replicaSet: string;
  member: RestoreMember;
  /** The running replica set to join (a URI without credentials); absent: the member is started, not added. */
  join?: { uri: string; credentials?: CredentialsRef };
  overwrite?: boolean;
  agentTimeoutMs?: number;
  /** How long to wait for the new member to report SECONDARY, ms (default 120 000). */
  secondaryTimeoutMs?: number;
}

export type RestorePhase =
  | 'plan'
  | 'check'
  | 'verify'
  | 'place'
  | 'prepare'
  | 'recover'
  | 'replay'
  | 'reset'
  | 'start'
  | 'join'
  | 'commit'
  | 'rollback'
  | 'done';

/** One replica set in the `progress` query (docs/interfaces.md section 5 field names; `node` lists the targets). */
export interface RestoreReplicaSetProgress {
  name: string;
  node: string | null;
  phase: RestorePhase;
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

/** The `progress` query of restore and verify workflows (docs/interfaces.md section 5). */
export interface RestoreProgress {
  kind: 'restore' | 'verify';
  status: BackupStatus;
  phase: RestorePhase;
  bytesDone: number;
  bytesTotal: number;
  bytesPerSec: number;
  commonTimestamp?: Ts;
  replicaSets: RestoreReplicaSetProgress[];
}

/** A running mongod a restore left behind (the restored cluster): stop it with `shutdown` or by its pid. */
export interface StartedMember {
  host: string;
  dbpath: string;
  pid: number;
  port: number;
  /** `hello` of the member once started: PRIMARY, SECONDARY, … */
  state: string;
  /** Newest oplog entry after recovery (at or before the common timestamp). */
  oplogTop: Ts | null;
}

/** What `restore --json` prints and `clusterRestore` returns (or attaches to its failure). */
export interface RestoreSummary {
  id: string;
  backupId: string;
  cluster: string;
  status: 'complete' | 'failed' | 'cancelled';
  commonTimestamp: Ts | null;
  balancerWasEnabled: boolean | null;
  startedAt: string;
  finishedAt: string;
  bytes: number;
  replicaSets: Array<{ name: string; configServer: boolean; members: StartedMember[]; replayedEntries?: number }>;
  /** A point-in-time restore: its target cluster time (the base backup is `backupId`). */
  at?: Ts;
  error?: { code: string; message: string };
}

/** A file that failed verification: wrong SHA-256, wrong size, or missing. */
export interface BadFile {
  replicaSet: string;
  path: string;
  problem: string;
}

/** What `verify --json` prints and `verifyBackup` returns. */
export interface VerifySummary {
  id: string;
  backupId: string;
  status: 'complete' | 'failed' | 'cancelled';
  files: number;
  bytes: number;
  bad: BadFile[];
  error?: { code: string; message: string };
}

/**
 * Parses and checks a target map (untrusted JSON): an object of replica-set names to non-empty arrays of
 * `{host, dbpath, options?}`, every host given once across the map, every dbpath absolute, `options` naming only
 * startup options a restore carries. Errors name the offending entry.
 */
export function parseTargetMap(value: unknown): RestoreTargetMap {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error('the target map must be a JSON object {"<replica set>": [{"host": "h:port", "dbpath": "/dir"}, ...], ...}');
  }
  const out: RestoreTargetMap = {};
  const hosts = new Set<string>();
  const dbpaths = new Set<string>();
  for (const [rs, members] of Object.entries(value as Record<string, unknown>)) {
    if (!Array.isArray(members) || members.length === 0) throw new Error(`target map: "${rs}" must be a non-empty array of {"host", "dbpath"}`);
    out[rs] = members.map((m: unknown, i) => {
      const e = m as Partial<RestoreMember> | null;
      const where = `target map: ${rs}[${i}]`;
      if (!e || typeof e.host !== 'string' || !/^[A-Za-z0-9._\-[\]:]+:\d{1,5}$/.test(e.host)) throw new Error(`${where}.host must be "host:port", got ${JSON.stringify(e?.host)}`);
      if (typeof e.dbpath !== 'string' || !e.dbpath.startsWith('/')) throw new Error(`${where}.dbpath must be an absolute path, got ${JSON.stringify(e?.dbpath)}`);
      const host = e.host.toLowerCase();
      if (hosts.has(host)) throw new Error(`${where}: host ${host} is given twice`);
      // Two members on one machine cannot share a dbpath.
      const machinePath = `${host.slice(0, host.lastIndexOf(':'))}|${e.dbpath}`;
      if (dbpaths.has(machinePath)) throw new Error(`${where}: dbpath ${e.dbpath} is used twice on one host`);
      hosts.add(host);
      dbpaths.add(machinePath);
      return { host, dbpath: e.dbpath, ...(e.options !== undefined ? { options: parseStartupOverrides(e.options, where) } : {}) };
    });
  }
  return out;
}

/** `<rs>/<host1>,<host2>`: a replica set's connection string as config.shards and shardIdentity hold it. */
export function replicaSetConnectionString(name: string, hosts: string[]): string {
  return `${name}/${hosts.join(',')}`;
}
