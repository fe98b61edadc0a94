/**
 * `cutpoint list` and `describe`: the catalogue, from the repository's manifests (api/catalogue.ts). Temporal
 * is asked only whether `running` backups still run; `--offline`, or a Temporal that cannot be reached, shows them as
 * `running?`. Also registers `prune` (cmd-prune.ts).
 */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { CutpointError } from '../common/errors.ts';
import { formatTs } from '../common/timestamp.ts';
import { temporalTargetFromEnv } from '../lib/temporal-connection.ts';
import { type CatalogueEntry, describeBackup, listBackups } from '../api/catalogue.ts';
import { registerPrune } from './cmd-prune.ts';
import type { CliContext } from './context.ts';
import { connectClient } from '../lib/temporal-connection.ts';

/**
 * Runs `fn` with a Temporal client, or with null when `offline` or when Temporal cannot be reached (a warning on
 * stderr): the catalogue does not need Temporal, it only refines `running`.
 */
export async function withOptionalTemporal<T>(ctx: CliContext, offline: boolean, fn: (client: Client | null) => Promise<T>): Promise<T> {
  if (offline) return fn(null);
  let connected: Awaited<ReturnType<typeof connectClient>> | undefined;
  try {
    connected = await connectClient(temporalTargetFromEnv());
  } catch (e) {
    if (!(e instanceof CutpointError && e.code === 'TEMPORAL_UNAVAILABLE')) throw e;
    ctx.log().warn({ err: e.message }, 'Temporal cannot be reached: running backups are shown as running? (not checked)');
    return fn(null);
  }
  try {
    return await fn(connected.client);
  } finally {
    await connected.connection.close();
  }
}

/** `1.5 GiB`, `12.0 KiB`, `0 B`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** `42s`, `3m05s`, `2h01m`. */
export function formatDuration(secs: number | null): string {
  if (secs === null) return '—';
  const s = Math.round(secs);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
}

function row(b: CatalogueEntry): string[] {
  return [b.id, b.cluster, b.status, b.commonTimestamp ? formatTs(b.commonTimestamp) : '—', formatBytes(b.bytes), formatDuration(b.durationSecs), b.startedAt];
}

export function registerCatalogue(program: Command, ctx: CliContext): void {
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
        if (o.json) {
          ctx.out(JSON.stringify(c));
          return;
        }
        if (c.backups.length === 0) ctx.out(`no backups${o.cluster !== undefined ? ` of cluster ${o.cluster}` : ''} in ${c.repo}`);
        else for (const line of table([['ID', 'CLUSTER', 'STATUS', 'COMMON TIMESTAMP', 'SIZE', 'DURATION', 'STARTED'], ...c.backups.map(row)])) ctx.out(line);
        for (const p of c.problems) ctx.out(`unreadable: ${p.id}: ${p.error}`);
      }),
    );

  program
    .command('describe <id>')
    .description('one backup of a repository with its replica sets, from its manifests')
    .requiredOption('--repo <dir>', 'repository directory')
    .option('--offline', 'do not ask Temporal whether a running backup still runs')
    .option('--json', 'print the description as JSON')
    .action(async (id: string, o: { repo: string; offline?: boolean; json?: boolean }) =>
      withOptionalTemporal(ctx, o.offline === true, async (client) => {
        const d = await describeBackup(o.repo, id, { client });
        if (o.json) {
          ctx.out(JSON.stringify(d));
          return;
        }
        ctx.out(`backup ${d.id} of ${d.cluster}: ${d.status}`);
        ctx.out(`  started ${d.startedAt}, finished ${d.finishedAt ?? '—'} (${formatDuration(d.durationSecs)}), ${formatBytes(d.bytes)}`);
        if (d.commonTimestamp) ctx.out(`  common timestamp ${formatTs(d.commonTimestamp)}`);
        if (d.balancerWasEnabled !== null) ctx.out(`  balancer was ${d.balancerWasEnabled ? 'enabled' : 'disabled'}`);
        if (d.error) ctx.out(`  error ${d.error.code}: ${d.error.message}`);
        const ts = (t: { t: number; i: number } | null) => (t ? formatTs(t) : '—');
        for (const r of d.replicaSets) {
          ctx.out(`  ${r.name}${r.configServer ? ' (config server)' : ''} from ${r.node ?? '—'}: ${r.files === null ? 'no manifest' : `${r.files} files, ${formatBytes(r.bytes ?? 0)}`}`);
          if (r.files !== null) ctx.out(`    oplog ${ts(r.oplogStart)} .. ${ts(r.oplogEnd)}, extended to ${ts(r.extendedTo)}`);
        }
      }),
    );

  registerPrune(program, ctx);
}
