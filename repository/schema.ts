/**
 * Validation of what cutpoint reads back from a repository: cutpoint.json, cluster and replica-set manifests, batch
 * results and file-list entries. Readers must never trust a file: a corrupted one is reported with its path and the
 * first offending field (e.g. `files[1234].sha256`), never silently half-used.
 *
 * @module
 */
import { z } from 'zod';
import type { ClusterManifest, FileKind, ManifestFile, ReplicaSetManifest, RepositoryConfig } from '../common/manifest.ts';
import { validatePath } from './storage.ts';

const FILE_KINDS = ['data', 'journal', 'storage.bson'] as const satisfies readonly FileKind[];

const ts = z.object({ t: z.int().nonnegative(), i: z.int().nonnegative() });
const isoDate = z.iso.datetime({ offset: true });
const relPath = z
  .string()
  .min(1)
  .refine(
    (p) => {
      try {
        validatePath(p);
        return true;
      } catch {
        return false;
      }
    },
    { message: "must be a relative '/'-separated path without '.', '..', empty segments or NUL" },
  );

/** cutpoint.json. The format is checked separately, to say "unsupported format" rather than "invalid". */
export const repositoryConfigSchema = z.looseObject({ format: z.string().min(1), createdAt: isoDate });

/** `backups/<id>/manifest.json`. Unknown fields are kept (later versions may add some). */
export const clusterManifestSchema = z.looseObject({
  format: z.string().min(1),
  id: z.string().min(1),
  cluster: z.string(),
  status: z.enum(['running', 'complete', 'failed', 'cancelled']),
  startedAt: isoDate,
  finishedAt: isoDate.nullable(),
  commonTimestamp: ts.nullable(),
  balancerWasEnabled: z.boolean().nullable(),
  bytes: z.int().nonnegative(),
  replicaSets: z.array(z.looseObject({ name: z.string().min(1), configServer: z.boolean(), node: z.string().nullable() })),
  kind: z.enum(['full', 'base', 'incremental']).optional(),
  parent: z.string().min(1).nullable().optional(),
  bytesRead: z.int().nonnegative().optional(),
  error: z.looseObject({ code: z.string(), message: z.string() }).optional(),
});

const manifestFile = z.looseObject({
  path: relPath,
  size: z.int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits').optional(),
  kind: z.enum(FILE_KINDS),
  chunks: z.array(z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits')).optional(),
});

/** `backups/<id>/<rs>/manifest.json`. */
export const replicaSetManifestSchema = z.looseObject({
  format: z.string().min(1),
  name: z.string().min(1),
  node: z.string().min(1),
  backupId: z.string().min(1),
  dbpath: z.string().min(1),
  oplogStart: ts.nullable(),
  oplogEnd: ts.nullable(),
  checkpointTimestamp: ts.nullable(),
  extendedTo: ts.nullable(),
  startupOptions: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  incremental: z
    .looseObject({
      kind: z.enum(['base', 'incremental']),
      name: z.string().min(1),
      parent: z.string().min(1).nullable(),
      blockSizeMB: z.int().positive(),
      depth: z.int().nonnegative(),
      chainBreak: z.string().optional(),
      listedBytes: z.int().nonnegative().optional(),
    })
    .optional(),
  bytesRead: z.int().nonnegative().optional(),
  files: z.array(manifestFile),
});

/** `.work/batch-<n>.json`: the files one copy batch stored, each with its index in the file list. */
export const batchResultSchema = z.looseObject({
  files: z.array(manifestFile.extend({ index: z.int().nonnegative() })),
});

// Compile-time checks that the schemas produce the shared types.
const _config: (x: z.infer<typeof repositoryConfigSchema>) => RepositoryConfig = (x) => x;
const _cluster: (x: z.infer<typeof clusterManifestSchema>) => ClusterManifest = (x) => x;
const _rs: (x: z.infer<typeof replicaSetManifestSchema>) => ReplicaSetManifest = (x) => x;
const _file: (x: z.infer<typeof manifestFile>) => ManifestFile = (x) => x;
void [_config, _cluster, _rs, _file];

/** `a.b[3].c` for a zod issue path. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(the document)';
}

/** The first issues of a failed parse, as `field: problem; …`, and the first field. */
export function describeIssues(error: z.ZodError): { text: string; field: string } {
  const shown = error.issues.slice(0, 3).map((i) => `field ${fieldName(i.path)}: ${i.message}`);
  const more = error.issues.length > 3 ? `; and ${error.issues.length - 3} more` : '';
  return { text: shown.join('; ') + more, field: fieldName(error.issues[0]?.path ?? []) };
}

/** The kinds a file-list or manifest entry may have. */
export function isFileKind(kind: unknown): kind is FileKind {
  return (FILE_KINDS as readonly unknown[]).includes(kind);
}
