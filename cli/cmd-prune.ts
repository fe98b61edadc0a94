/** `cutpoint prune`: the retention policy of common/retention.ts applied to a repository (api/prune.ts). */
import type { Command } from 'commander';
import type { RetentionDecision, RetentionPolicy } from '../common/retention.ts';
import { prune } from '../api/prune.ts';
import { CutpointError } from '../common/errors.ts';
import type { CliContext } from './context.ts';
import { intArg, numberArg } from './options.ts';
import { withOptionalTemporal } from './temporal-optional.ts';

/** The keep-rule flags, shared by `prune` and `schedule create`: commander names them as the policy's fields. */
export type KeepFlags = RetentionPolicy;

interface PruneFlags extends RetentionPolicy {
  repo: string;
  cluster?: string;
  dryRun?: boolean;
  offline?: boolean;
  json?: boolean;
  ifLocked?: 'wait' | 'fail';
}

/** Adds the {@link KeepFlags} options to a command. */
export function addKeepOptions(cmd: Command): Command {
  return cmd
    .option('--keep-last <n>', 'keep the n newest complete backups', intArg('--keep-last', 0))
    .option('--keep-hourly <n>', 'keep the newest backup of each of the n newest hours (UTC)', intArg('--keep-hourly', 0))
    .option('--keep-daily <n>', 'keep the newest backup of each of the n newest days (UTC)', intArg('--keep-daily', 0))
    .option('--keep-weekly <n>', 'keep the newest backup of each of the n newest ISO weeks', intArg('--keep-weekly', 0))
    .option('--keep-monthly <n>', 'keep the newest backup of each of the n newest months (UTC)', intArg('--keep-monthly', 0))
    .option('--clean-after-hours <h>', 'remove failed, cancelled and stale running backups older than this (default 24)', numberArg('--clean-after-hours', 0));
}

/** The retention policy the {@link KeepFlags} describe. */
export function policyOf(o: KeepFlags): RetentionPolicy {
  return {
    ...(o.keepLast !== undefined ? { keepLast: o.keepLast } : {}),
    ...(o.keepHourly !== undefined ? { keepHourly: o.keepHourly } : {}),
    ...(o.keepDaily !== undefined ? { keepDaily: o.keepDaily } : {}),
    ...(o.keepWeekly !== undefined ? { keepWeekly: o.keepWeekly } : {}),
    ...(o.keepMonthly !== undefined ? { keepMonthly: o.keepMonthly } : {}),
    ...(o.cleanAfterHours !== undefined ? { cleanAfterHours: o.cleanAfterHours } : {}),
  };
}

function ifLockedArg(v: string): 'wait' | 'fail' {
  if (v !== 'wait' && v !== 'fail') throw new CutpointError('BAD_USAGE', `--if-locked is wait or fail, not ${JSON.stringify(v)}`);
  return v;
}

export function registerPrune(program: Command, ctx: CliContext): void {
  addKeepOptions(
    program
      .command('prune')
      .description('remove the backups the keep policy does not keep (restic forget / borg prune rules, per cluster)')
      .requiredOption('--repo <dir>', 'repository directory')
      .option('--cluster <name>', 'only this cluster (default: every cluster, each by itself)'),
  )
    .option('--dry-run', 'list what would be removed and why; remove nothing')
    .option('--offline', 'do not ask Temporal whether running backups still run (then none is removed)')
    .option('--json', 'print the plan and what was removed as JSON')
    .option('--if-locked <mode>', 'when backups (or another prune) hold the repository: wait (for up to an hour) or fail at once', ifLockedArg, 'wait')
    .action(async (o: PruneFlags) =>
      withOptionalTemporal(ctx, o.offline === true, async (client) => {
        const policy = policyOf(o);
        let told = false;
        const r = await prune({
          repo: o.repo,
          policy,
          client,
          dryRun: o.dryRun === true,
          ifLocked: o.ifLocked ?? 'wait',
          onLockWait: (e) => {
            // Logged (stderr), so that --json output stays JSON.
            if (!told) ctx.log().info({ holder: e.message }, 'waiting for the repository lock');
            told = true;
          },
          ...(o.cluster !== undefined ? { cluster: o.cluster } : {}),
        });
        if (o.json) {
          ctx.out(JSON.stringify(r));
          return;
        }
        const line = (verb: string, x: RetentionDecision) => ctx.out(`  ${verb} ${x.id} (${x.status}, ${x.time}): ${x.reasons.join('; ')}`);
        if (r.clusters.length === 0) ctx.out(`no backups${o.cluster !== undefined ? ` of cluster ${o.cluster}` : ''} in ${r.repo}`);
        for (const c of r.clusters) {
          ctx.out(`cluster ${c.cluster}: keep ${c.keep.length}, ${r.dryRun ? 'would remove' : 'remove'} ${c.remove.length}`);
          for (const x of c.keep) line('keep  ', x);
          for (const x of c.remove) line(r.dryRun ? 'would remove' : 'remove', x);
        }
        if (!r.dryRun) ctx.out(`removed ${r.removed.length} backup${r.removed.length === 1 ? '' : 's'}`);
        if (r.abortedUploads?.length) ctx.out(`aborted ${r.abortedUploads.length} unfinished multipart upload${r.abortedUploads.length === 1 ? '' : 's'}`);
      }),
    );
}
