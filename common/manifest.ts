/**
 * Repository layout v1 and manifest shapes (docs/interfaces.md section 4). Invariant: the cluster manifest's switch to
 * `complete`, written after every replica-set manifest is durable, is the only commit point of a backup.
 * Workflow-safe (types and pure helpers).
 */
import type { BackupKind, IncrementalRecord } from './incremental.ts';
import type { StartupOptions } from './startup-options.ts';
import type { Ts } from './timestamp.ts';

/**
 * The `format` of cutpoint.json and of every manifest that new backups are written in: v2, content-addressed chunks in
 * packs (docs/repository-format.md).
 */
export const REPOSITORY_FORMAT = 'cutpoint/v2';
/** Format v1 (docs/interfaces.md section 4): a full copy of every file per backup. Read, never written. */
export const REPOSITORY_FORMAT_V1 = 'cutpoint/v1';
/** The formats this cutpoint reads. */
export const READABLE_FORMATS: readonly string[] = [REPOSITORY_FORMAT_V1, REPOSITORY_FORMAT];

export type BackupStatus = 'running' | 'complete' | 'failed' | 'cancelled';

/** `<repo>/cutpoint.json`. */
export interface RepositoryConfig {
  format: string;
  createdAt: string;
  /** Present when the repository is encrypted (docs/repository-format.md section 16). */
  encryption?: { type: string; keyCheck?: string };
}

/** `<repo>/backups/<id>/manifest.json`. */
export interface ClusterManifest {
  format: string;
  id: string;
  cluster: string;
  status: BackupStatus;
  startedAt: string;
  finishedAt: string | null;
  commonTimestamp: Ts | null;
  balancerWasEnabled: boolean | null;
  bytes: number;
  replicaSets: Array<{ name: string; configServer: boolean; node: string | null }>;
  /**
   * `full`, `base` or `incremental` (common/incremental.ts). Written `base` when the backup starts if an incremental
   * was asked for (so a later backup knows this one may have changed the nodes' incremental history), final at the end.
   * Absent = full.
   */
  kind?: BackupKind;
  /** The previous backup of the chain (an incremental's). */
  parent?: string | null;
  /** Bytes read from the dbpaths. */
  bytesRead?: number;
  error?: { code: string; message: string };
}

export type FileKind = 'data' | 'journal' | 'storage.bson';

/**
 * One copied file: `path` relative to the dbpath, `size` its bytes, `sha256` the hash of all of them (format v1, and
 * v2 backups written before the chunk ids became the only hash). A v2 file written now has no `sha256`: its chunks,
 * each checked against its id when read, and its size are its integrity (docs/repository-format.md section 9).
 */
export interface ManifestFile {
  path: string;
  size: number;
  sha256?: string;
  kind: FileKind;
  /** v2: the ids of the file's chunks, in file order (their plaintexts concatenated are the file). */
  chunks?: string[];
}

/** `<repo>/backups/<id>/<rs>/manifest.json`. */
export interface ReplicaSetManifest {
  format: string;
  name: string;
  node: string;
  /** The server's backup UUID (`metadata.backupId`), as a string. */
  backupId: string;
  dbpath: string;
  oplogStart: Ts | null;
  oplogEnd: Ts | null;
  checkpointTimestamp: Ts | null;
  extendedTo: Ts | null;
  /**
   * The backed-up node's startup options a restore repeats (common/startup-options.ts), by configuration-file name;
   * never a secret's value. Absent in backups taken before cutpoint recorded them: restored with mongod's defaults.
   */
  startupOptions?: StartupOptions;
  /** The incremental cursor the files were copied under (common/incremental.ts); absent for a full backup. */
  incremental?: IncrementalRecord;
  /** Bytes read from the dbpath (v2 backups). */
  bytesRead?: number;
  files: ManifestFile[];
}

/** Repository-relative paths of layout v1 (always '/'-separated). */
export const layout = {
  config: () => 'cutpoint.json',
  backupDir: (id: string) => `backups/${id}`,
  clusterManifest: (id: string) => `backups/${id}/manifest.json`,
  replicaSetDir: (id: string, rs: string) => `backups/${id}/${rs}`,
  replicaSetManifest: (id: string, rs: string) => `backups/${id}/${rs}/manifest.json`,
  /** Where a data file of the dbpath is stored: `relPath` is relative to the dbpath. */
  file: (id: string, rs: string, relPath: string) => `backups/${id}/${rs}/files/${relPath}`,
  /**
   * Work files of a running backup, beside the layout (not part of it): the server's file list and per-batch copy
   * results. Keeping them in the repository keeps the file list out of workflow history.
   */
  work: (id: string, rs: string, name: string) => `backups/${id}/${rs}/.work/${name}`,
} as const;

/** Backup ids become directory names and workflow ids: a conservative alphabet. */
export function validateBackupId(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) {
    throw new Error(`backup id '${id}' must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }
  return id;
}
