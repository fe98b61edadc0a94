/**
 * `cutpoint list`: the catalogue, from the repository's manifests (api/catalogue.ts). Temporal is asked only whether
 * `running` backups still run; `--offline`, or a Temporal that cannot be reached, shows them as `running?`.
 */
import type { Command } from 'commander';
import { formatTs } from '../common/timestamp.ts';
import { formatBytes, formatDuration } from '../common/units.ts';
import { type CatalogueEntry, listBackups } from '../api/catalogue.ts';
import { listPitrWindows } from '../api/pitr.ts';
import type { CliContext } from './context.ts';
import { withOptionalTemporal } from './temporal-optional.ts';

/** Rows padded to their columns' widths (the last column is not padded). */
function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
}

function row(b: CatalogueEntry): string[] {
  const duration = b.durationSecs === null ? '—' : formatDuration(b.durationSecs * 1000, 'elapsed');
  return [b.id, b.cluster, b.status, b.kind, b.commonTimestamp ? formatTs(b.commonTimestamp) : '—', formatBytes(b.bytes), duration, b.startedAt];
}

export function registerList(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .description("the backups of a repository, from its manifests (running ones checked against Temporal)")
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--cluster <name>', 'only this cluster')
    .option('--offline', 'do not ask Temporal whether running backups still run (shown as running?)')
    .option('--json', 'print the catalogue as JSON')
    .action(async (o: { repo: string; cluster?: string; offline?: boolean; json?: boolean }) =>
      withOptionalTemporal(ctx, o.offline === true, async (client) => {
        const c = await listBackups(o.repo, { client, ...(o.cluster !== undefined ? { cluster: o.cluster } : {}) });
        const pitr = await listPitrWindows(o.repo, o.cluster);
        if (o.json) {
          ctx.out(JSON.stringify({ ...c, pitr }));
          return;
        }
        if (c.backups.length === 0) ctx.out(`no backups${o.cluster !== undefined ? ` of cluster ${o.cluster}` : ''} in ${c.repo}`);
        else for (const line of table([['ID', 'CLUSTER', 'STATUS', 'KIND', 'COMMON TIMESTAMP', 'SIZE', 'DURATION', 'STARTED'], ...c.backups.map(row)])) ctx.out(line);
        for (const p of c.problems) ctx.out(`unreadable: ${p.id}: ${p.error}`);
        for (const w of pitr) {
          const window = w.from && w.to ? `restorable to any time from ${formatTs(w.from)} to ${formatTs(w.to)}` : `oplog captured to ${w.to ? formatTs(w.to) : '—'}, no complete backup it covers yet`;
          ctx.out(`point-in-time ${w.cluster}: ${window}`);
          for (const g of w.gaps) ctx.out(`  GAP in ${g.replicaSet}: oplog after ${formatTs(g.from)} and before ${formatTs(g.to)} was lost before it was captured`);
        }
      }),
    );
}
