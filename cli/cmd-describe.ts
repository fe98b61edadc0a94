/**
 * `cutpoint describe <id>`: one backup with its replica sets, from the repository's manifests (api/catalogue.ts).
 * Temporal is asked only whether a `running` backup still runs, as in `list` (cmd-list.ts).
 */
import type { Command } from 'commander';
import { formatTs } from '../common/timestamp.ts';
import { formatBytes, formatDuration } from '../common/units.ts';
import { describeBackup } from '../api/catalogue.ts';
import { backupPitrWindow } from '../api/pitr.ts';
import type { CliContext } from './context.ts';
import { withOptionalTemporal } from './temporal-optional.ts';

export function registerDescribe(program: Command, ctx: CliContext): void {
  program
    .command('describe <id>')
    .description('one backup of a repository with its replica sets, from its manifests')
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--offline', 'do not ask Temporal whether a running backup still runs')
    .option('--json', 'print the description as JSON')
    .action(async (id: string, o: { repo: string; offline?: boolean; json?: boolean }) =>
      withOptionalTemporal(ctx, o.offline === true, async (client) => {
        const d = await describeBackup(o.repo, id, { client });
        const pitr = d.status === 'complete' ? await backupPitrWindow(o.repo, d.cluster, d.commonTimestamp) : null;
        if (o.json) {
          ctx.out(JSON.stringify({ ...d, pitr }));
          return;
        }
        const duration = d.durationSecs === null ? '—' : formatDuration(d.durationSecs * 1000, 'elapsed');
        ctx.out(`backup ${d.id} of ${d.cluster}: ${d.status}${d.kind !== 'full' ? ` (${d.kind}${d.parent ? ` of ${d.parent}` : ''})` : ''}`);
        ctx.out(`  started ${d.startedAt}, finished ${d.finishedAt ?? '—'} (${duration}), ${formatBytes(d.bytes)}`);
        if (d.commonTimestamp) ctx.out(`  common timestamp ${formatTs(d.commonTimestamp)}`);
        if (pitr) ctx.out(`  point-in-time: restorable to any time from ${formatTs(pitr.from)} to ${formatTs(pitr.to)} (captured oplog)`);
        if (d.balancerWasEnabled !== null) ctx.out(`  balancer was ${d.balancerWasEnabled ? 'enabled' : 'disabled'}`);
        if (d.error) ctx.out(`  error ${d.error.code}: ${d.error.message}`);
        const ts = (t: { t: number; i: number } | null) => (t ? formatTs(t) : '—');
        for (const r of d.replicaSets) {
          ctx.out(`  ${r.name}${r.configServer ? ' (config server)' : ''} from ${r.node ?? '—'}: ${r.files === null ? 'no manifest' : `${r.files} files, ${formatBytes(r.bytes ?? 0)}`}`);
          if (r.files !== null) ctx.out(`    oplog ${ts(r.oplogStart)} .. ${ts(r.oplogEnd)}, extended to ${ts(r.extendedTo)}`);
          const inc = r.incremental;
          if (inc) ctx.out(`    ${inc.kind}${inc.parent ? ` of ${inc.parent}` : ''}, chain depth ${inc.depth}, block size ${inc.blockSizeMB} MB${inc.chainBreak ? `; a base because ${inc.chainBreak}` : ''}`);
        }
      }),
    );
}
