/**
 * The `$backupCursor` options of an incremental backup and what the server says about a chain
 * (docs/psmdb-behaviour.md section 5): a base opens with `incrementalBackup` and a name after the node's history is
 * cleared (`disableIncrementalBackup`, which takes effect when its cursor closes); an incremental names the chain's
 * last name as its source. A node that no longer knows that name answers `2: No such file or directory` (code 8).
 */
import type { ClientSession, Document, MongoClient } from 'mongodb';
import { Long, MongoServerError } from 'mongodb';

/** The `$backupCursor` stage of an incremental open. */
export function incrementalStage(o: { name: string; blockSizeMB: number; source?: string }): Document {
  return { incrementalBackup: true, thisBackupName: o.name, blockSize: o.blockSizeMB, ...(o.source !== undefined ? { srcBackupName: o.source } : {}) };
}

/** The server's reason when `e` says the source name is unknown on this node, else undefined. */
export function unknownSource(e: unknown): string | undefined {
  if (!(e instanceof MongoServerError)) return undefined;
  return Number(e.code) === 8 && /No such file or directory/.test(e.message) ? `error ${e.code}: ${e.message}` : undefined;
}

/**
 * Forgets the node's incremental history (WiredTiger `incremental=(force_stop=true)`): opens and closes a
 * `disableIncrementalBackup` cursor in `session`. A base starts from it, so an old granularity or a stale name of
 * an earlier chain cannot get in the way.
 */
export async function clearIncrementalHistory(client: MongoClient, session: ClientSession): Promise<void> {
  const admin = client.db('admin');
  const r = await admin.command({ aggregate: 1, pipeline: [{ $backupCursor: { disableIncrementalBackup: true } }], cursor: {} }, { session });
  const id = (r.cursor as { id: Long | number }).id;
  await admin.command({ killCursors: '$cmd.aggregate', cursors: [typeof id === 'number' ? Long.fromNumber(id) : id] }, { session });
}
