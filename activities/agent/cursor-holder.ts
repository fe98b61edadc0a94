/**
 * Who holds a node's backup slot when `$backupCursor` answers 50886: one of our running backups (a replica-set
 * backup workflow whose progress names the node), or someone else (another tool, or a cursor left by a process that
 * died without recording its session). The server offers no owner for a backup cursor, so the answer comes from
 * Temporal: the running `replicaSetBackup` workflows, asked which node they back up.
 */
import type { Client } from '@temporalio/client';
import type { BackupProgress } from '../../common/backup-types.ts';

/** How long the whole lookup may take: it only improves an error message. */
const LOOKUP_MS = 5_000;

const SOMEONE_ELSE =
  'no running cutpoint backup in this Temporal namespace (another tool such as PBM, or a cursor left by a process that died: ' +
  'the server frees it when its session or cursor idle timeout expires, 30 or 10 minutes by default)';

/** Lists running replica-set backups (other than `self`) and asks each which node it backs up. */
async function lookup(client: Client, node: string, self: string): Promise<string | undefined> {
  const query = "WorkflowType = 'replicaSetBackup' AND ExecutionStatus = 'Running'";
  for await (const w of client.workflow.list({ query })) {
    if (w.workflowId === self) continue;
    const progress = await client.workflow
      .getHandle(w.workflowId)
      .query<BackupProgress>('progress')
      .catch(() => undefined);
    if (progress?.replicaSets.some((r) => r.node === node)) {
      const parent = w.workflowId.includes('.') ? w.workflowId.slice(0, w.workflowId.lastIndexOf('.')) : w.workflowId;
      return `cutpoint backup ${parent} (workflow ${w.workflowId}), which is running`;
    }
  }
  return undefined;
}

/**
 * A phrase naming the holder of `node`'s backup cursor, for BACKUP_CURSOR_BUSY: "cutpoint backup X (…), which is
 * running", or that no running backup of ours holds it. `self` is the asking workflow's id (never the answer).
 */
export async function describeCursorHolder(client: Client | undefined, node: string, self: string): Promise<string> {
  if (!client) return 'an unknown owner (this agent has no Temporal client to look for running backups)';
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), LOOKUP_MS)));
  try {
    const found = await Promise.race([lookup(client, node, self).catch(() => 'error' as const), timeout]);
    if (found === 'timeout' || found === 'error') return 'an unknown owner (Temporal could not be asked for running backups)';
    return found ?? SOMEONE_ELSE;
  } finally {
    clearTimeout(timer);
  }
}
