/** MongoDB server errors of the backup-cursor protocol, mapped to cutpoint's registry codes. */
import { MongoServerError } from 'mongodb';
import { CutpointError } from '../../common/errors.ts';

/** Server codes a backup cursor open may be retried on (PBM retries both). */
export const RETRYABLE_OPEN_CODES = new Set([50915, 50917]);

/** Codes meaning the cursor (or its session) is gone. */
export const CURSOR_GONE_CODES = new Set([43, 50736, 50737, 50738, 29094, 50886]);

/** Translates a server error during a backup-cursor step into a registry error naming the node. */
export function cursorError(e: unknown, node: string, step: string): Error {
  if (!(e instanceof MongoServerError)) return e as Error;
  const code = Number(e.code);
  if (code === 40324 || code === 50956) {
    return new CutpointError(
      'NO_BACKUP_CURSOR',
      `${node} does not support $backupCursor (${e.message}): physical backups need Percona Server for MongoDB or MongoDB Enterprise`,
    );
  }
  if (code === 13 && (step === 'open' || step === 'extend')) {
    return new CutpointError(
      'NOT_AUTHORIZED',
      `${node}: ${step} was refused (${e.message}); the backup user needs the 'fsync' privilege (role hostManager or clusterAdmin)`,
    );
  }
  if (code === 13) {
    // A getMore refused: not a missing privilege (the open had it) but a cursor that belongs to another user or
    // session than the one asking (docs/psmdb-behaviour.md section 3, session binding of getMore).
    return new CutpointError(
      'NOT_AUTHORIZED',
      `${node}: ${step} was refused (${e.message}); the backup cursor belongs to another user than the one this agent authenticates as: ` +
        "its MongoDB credentials changed since the cursor was opened (give every agent of a member the backup's credentials)",
    );
  }
  if (code === 50886 && step === 'open') {
    return new CutpointError('BACKUP_CURSOR_BUSY', `${node}: another backup cursor is open (${e.message})`);
  }
  if (CURSOR_GONE_CODES.has(code)) return new CutpointError('CURSOR_LOST', `${node}: the backup cursor is gone during ${step} (${code}: ${e.message})`);
  return e;
}
