/**
 * `cutpoint status <id>`: live progress of a running backup from its `progress` query. Restores and verifies answer a
 * query of the same name and shape (common/restore-types.ts), so it works on them too.
 */
import type { Command } from 'commander';
import type { BackupProgress } from '../common/backup-types.ts';
import { formatTs } from '../common/timestamp.ts';
import { formatRate } from '../common/units.ts';
import { backupProgress } from '../api/backups.ts';
import type { CliContext } from './context.ts';
import { withTemporal } from './operation.ts';

const MiB = 1024 * 1024;

function printProgress(ctx: CliContext, id: string, p: BackupProgress): void {
  const pct = p.bytesTotal ? ((100 * p.bytesDone) / p.bytesTotal).toFixed(1) : '0.0';
  ctx.out(`${id}: ${p.status}, phase ${p.phase}, ${(p.bytesDone / MiB).toFixed(1)}/${(p.bytesTotal / MiB).toFixed(1)} MiB (${pct}%), throttle ${formatRate(p.bytesPerSec)}`);
  if (p.commonTimestamp) ctx.out(`  common timestamp ${formatTs(p.commonTimestamp)}`);
  for (const r of p.replicaSets) ctx.out(`  ${r.name} on ${r.node ?? '—'}: ${r.phase}, files ${r.filesDone}/${r.filesTotal}, ${(r.bytesDone / MiB).toFixed(1)}/${(r.bytesTotal / MiB).toFixed(1)} MiB`);
}

export function registerStatus(program: Command, ctx: CliContext): void {
  program
    .command('status <id>')
    .description("live progress of a running backup (its 'progress' query)")
    .option('--json', 'print the progress as JSON')
    .action(async (id: string, o: { json?: boolean }) =>
      withTemporal(async (client) => {
        const p = await backupProgress(client, id, { inFlight: true });
        if (o.json) ctx.out(JSON.stringify(p));
        else printProgress(ctx, id, p);
      }),
    );
}
