/**
 * `cutpoint restore <backupId>`: restore a backup to new hosts, at its common timestamp; `cutpoint restore --at <time>`:
 * restore to a point in time (the newest backup at or before it, then the captured oplog replayed to it). `status <id>` (cmd-status.ts)
 * and `cancel <id>` (cmd-cancel.ts) work on restores too: the `progress` query and the `cancel` signal have the same
 * names.
 */
import type { Command } from 'commander';
import type { RestoreSummary } from '../common/restore-types.ts';
import { formatTs } from '../common/timestamp.ts';
import { restoreSource } from '../common/restore-at.ts';
import { readTargetMap, restoreResult, startRestore } from '../api/restores.ts';
import type { CliContext } from './context.ts';
import { followRestore } from './follow-restore.ts';
import { RESTORE_OPTIONS } from '../common/options.ts';
import { optionArg, withDefault } from './options.ts';
import { finishOperation, withTemporal } from './operation.ts';

function printRestore(ctx: CliContext, s: RestoreSummary): void {
  ctx.out(`restore ${s.id} of backup ${s.backupId} (${s.cluster}): ${s.status}`);
  if (s.at) ctx.out(`  at ${formatTs(s.at)} (base backup ${s.backupId} at ${s.commonTimestamp ? formatTs(s.commonTimestamp) : '?'})`);
  else if (s.commonTimestamp) ctx.out(`  at ${formatTs(s.commonTimestamp)}`);
  for (const r of s.replicaSets) {
    ctx.out(`  ${r.name}${r.configServer ? ' (config server)' : ''}${r.replayedEntries !== undefined ? `: ${r.replayedEntries} oplog entries replayed` : ''}`);
    for (const m of r.members) ctx.out(`    ${m.host} ${m.state} pid ${m.pid} dbpath ${m.dbpath}`);
  }
  if (s.error) ctx.out(`  error ${s.error.code}: ${s.error.message}`);
  else ctx.out('  the restored mongods keep running; stop each with db.shutdownServer() or kill <pid>');
}

export function registerRestore(program: Command, ctx: CliContext): void {
  program
    .command('restore [backupId]')
    .description('restore a backup (replica set or sharded cluster) to new hosts, at its common timestamp; or, with --at instead of a backup id, to a point in time')
    .requiredOption('--repo <dir>', 'repository directory (as the workers see it)')
    .requiredOption('--to <map.json>', 'JSON {"<replica set>": [{"host": "h:port", "dbpath": "/dir"}, ...]} for every replica set')
    .option('--at <time>', 'restore to a point in time: t:i (that cluster time exactly) or an ISO-8601 time with a zone (everything at or before the end of that second); the base is the newest complete backup at or before it')
    .option('--replay-batch-ops <n>', withDefault('oplog operations per applyOps command of a point-in-time replay', RESTORE_OPTIONS.replayBatchOps), optionArg('--replay-batch-ops', RESTORE_OPTIONS.replayBatchOps))
    .option('--overwrite', 'restore into non-empty dbpaths (their data is kept aside until the restore succeeds)')
    .option('--id <id>', 'restore id (default: restore-<UTC time>-<random>)')
    .option('--agent-timeout-ms <ms>', withDefault("how long a target host's agent may take to pick up a step (then WORKER_UNAVAILABLE)", RESTORE_OPTIONS.agentTimeoutMs), optionArg('--agent-timeout-ms', RESTORE_OPTIONS.agentTimeoutMs))
    .option('--wait', 'wait for the end, printing progress')
    .option('--json', 'print the summary as JSON (implies --wait)')
    .action(async (backupId: string | undefined, o: { repo: string; to: string; at?: string; replayBatchOps?: number; overwrite?: boolean; id?: string; agentTimeoutMs?: number; wait?: boolean; json?: boolean }) => {
      restoreSource({ ...(backupId !== undefined ? { backupId } : {}), ...(o.at !== undefined ? { at: o.at } : {}) });
      const to = readTargetMap(o.to);
      return withTemporal(async (client) => {
        const { id } = await startRestore(client, {
          ...(backupId !== undefined ? { backupId } : {}),
          ...(o.at !== undefined ? { at: o.at } : {}),
          ...(o.replayBatchOps ? { replayBatchOps: o.replayBatchOps } : {}),
          repo: o.repo,
          to,
          ...(o.overwrite ? { overwrite: true } : {}),
          ...(o.id ? { id: o.id } : {}),
          ...(o.agentTimeoutMs ? { agentTimeoutMs: o.agentTimeoutMs } : {}),
        });
        await finishOperation(ctx, {
          id,
          kind: 'restore',
          wait: o.wait === true,
          json: o.json === true,
          follow: () => followRestore(client, id),
          result: () => restoreResult(client, id),
          print: (s) => printRestore(ctx, s),
        });
      });
    });
}
