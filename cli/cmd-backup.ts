/**
 * `cutpoint backup`: start a backup, and with --wait follow it to its end. Built on the programmatic API
 * (api/backups.ts), as any other client would be. Its options are shared with `schedule create` (cmd-schedule.ts).
 */
import { Presets, SingleBar } from 'cli-progress';
import { Option, type Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { BackupInput, BackupSummary } from '../common/backup-types.ts';
import { formatRate } from '../common/units.ts';
import { formatTs } from '../common/timestamp.ts';
import { backupResult, startBackup, watchBackup } from '../api/backups.ts';
import type { CliContext } from './context.ts';
import { BACKUP_OPTIONS as O } from '../common/options.ts';
import { optionArg, rateArg, withDefault } from './options.ts';
import { finishOperation, withTemporal } from './operation.ts';

const MiB = 1024 * 1024;

/** Draws progress until the backup ends: a bar on a terminal, a line every few seconds otherwise (stderr). */
async function follow(client: Client, id: string): Promise<void> {
  const tty = process.stderr.isTTY;
  const bar = tty
    ? new SingleBar(
        { format: ' {phase} |{bar}| {percentage}% {doneMiB}/{totalMiB} MiB {rate} ', stream: process.stderr, hideCursor: true },
        Presets.shades_classic,
      )
    : undefined;
  let started = false;
  let lastLine = 0;
  for await (const p of watchBackup(client, id, tty ? 500 : 1000)) {
    const fields = { phase: p.phase.padEnd(8), doneMiB: (p.bytesDone / MiB).toFixed(1), totalMiB: (p.bytesTotal / MiB).toFixed(1), rate: formatRate(p.bytesPerSec) };
    if (bar) {
      if (!started) bar.start(Math.max(1, p.bytesTotal), p.bytesDone, fields);
      started = true;
      bar.setTotal(Math.max(1, p.bytesTotal));
      bar.update(p.bytesDone, fields);
    } else if (Date.now() - lastLine > 5000 || p.status !== 'running') {
      lastLine = Date.now();
      process.stderr.write(`${id}: ${p.status} ${p.phase} ${fields.doneMiB}/${fields.totalMiB} MiB\n`);
    }
  }
  bar?.stop();
}

function printSummary(ctx: CliContext, s: BackupSummary): void {
  ctx.out(`backup ${s.id} of ${s.cluster}: ${s.status}${s.kind !== 'full' ? ` (${s.kind}${s.parent ? ` of ${s.parent}` : ''})` : ''}`);
  if (s.commonTimestamp) ctx.out(`  common timestamp ${formatTs(s.commonTimestamp)}`);
  for (const r of s.replicaSets) {
    const read = r.kind === 'incremental' ? `, read ${(r.bytesRead / MiB).toFixed(1)} MiB` : '';
    ctx.out(`  ${r.name}${r.configServer ? ' (config server)' : ''} from ${r.node ?? '—'}: ${r.files} files, ${(r.bytes / MiB).toFixed(1)} MiB${r.kind !== 'full' ? ` ${r.kind}` : ''}${read}`);
    if (r.chainBreak) ctx.out(`    a base: ${r.chainBreak}`);
  }
  if (s.error) ctx.out(`  error ${s.error.code}: ${s.error.message}`);
}

/** The flags that describe a backup, shared by `backup` and `schedule create`. */
export interface BackupFlags {
  uri: string;
  repo: string;
  cluster?: string;
  rate?: number;
  node?: string;
  maxLag?: number;
  parallel?: number;
  keepAliveMs?: number;
  agentTimeoutMs?: number;
  ifBusy?: 'fail' | 'wait';
  credentialsFile?: string;
  incremental?: boolean;
  base?: boolean;
  blockSizeMb?: number;
  baseEvery?: number;
}

/** Adds the {@link BackupFlags} options to a command; `ifBusyDefault` is what the help text says the default is. */
export function addBackupOptions(cmd: Command, ifBusyDefault: 'fail' | 'wait'): Command {
  return cmd
    .requiredOption('--uri <uri>', 'mongodb:// connection string of the replica set or mongos, without credentials')
    .requiredOption('--repo <dir>', 'repository directory (as the workers see it)')
    .option('--cluster <name>', 'cluster label (default: the replica set name)')
    .option('--rate <rate>', 'copy rate for the whole backup, e.g. 50MB (per second); 0 = unlimited', rateArg)
    .option('--node <host:port>', 'back up this member instead of choosing one')
    .option('--max-lag <seconds>', withDefault('lag ceiling when choosing a secondary', O.maxLagSecs), optionArg('--max-lag', O.maxLagSecs))
    .option('--parallel <n>', withDefault('copy activities at once per replica set', O.copyParallelism), optionArg('--parallel', O.copyParallelism))
    .option('--keep-alive-ms <ms>', withDefault('getMore interval keeping the backup cursor alive', O.keepAliveIntervalMs), optionArg('--keep-alive-ms', O.keepAliveIntervalMs))
    .option('--agent-timeout-ms <ms>', withDefault("how long a chosen member's agent may take to pick up work (then WORKER_UNAVAILABLE)", O.agentTimeoutMs), optionArg('--agent-timeout-ms', O.agentTimeoutMs))
    .addOption(
      new Option('--if-busy <what>', `when another backup of the cluster runs, or another backup cursor holds the chosen node: 'fail' or 'wait' for it (default ${ifBusyDefault})`).choices(['fail', 'wait']),
    )
    .option('--credentials-file <path>', 'JSON {"username","password"} the workers read (default: their CUTPOINT_MONGO_USERNAME/_PASSWORD)')
    .option('--incremental', "read only what changed since the cluster's previous backup (each replica set continues its chain, or takes a base and says why)")
    .option('--base', 'start a new incremental chain: a base on every replica set (implies --incremental)')
    .option('--block-size-mb <n>', withDefault('incremental: granularity of the changed ranges, MB', O.blockSizeMB), optionArg('--block-size-mb', O.blockSizeMB))
    .option('--base-every <n>', withDefault('incremental: a new base every n backups of a chain (0 = only when it breaks)', O.baseEvery), optionArg('--base-every', O.baseEvery));
}

/** The backup input the {@link BackupFlags} describe. */
export function backupInputOf(o: BackupFlags): BackupInput {
  return {
    uri: o.uri,
    repo: o.repo,
    ...(o.cluster ? { cluster: o.cluster } : {}),
    ...(o.rate !== undefined ? { bytesPerSec: o.rate } : {}),
    ...(o.node ? { node: o.node } : {}),
    ...(o.maxLag !== undefined ? { maxLagSecs: o.maxLag } : {}),
    ...(o.parallel !== undefined ? { copyParallelism: o.parallel } : {}),
    ...(o.keepAliveMs !== undefined ? { keepAliveIntervalMs: o.keepAliveMs } : {}),
    ...(o.agentTimeoutMs !== undefined ? { agentTimeoutMs: o.agentTimeoutMs } : {}),
    ...(o.ifBusy ? { ifBusy: o.ifBusy } : {}),
    ...(o.credentialsFile ? { credentials: { kind: 'file', path: o.credentialsFile } } : {}),
    ...(o.incremental ? { incremental: true } : {}),
    ...(o.base ? { base: true } : {}),
    ...(o.blockSizeMb !== undefined ? { blockSizeMB: o.blockSizeMb } : {}),
    ...(o.baseEvery !== undefined ? { baseEvery: o.baseEvery } : {}),
  };
}

export function registerBackup(program: Command, ctx: CliContext): void {
  addBackupOptions(program.command('backup').description('start a hot physical backup of a replica set or a sharded cluster'), 'fail')
    .option('--id <id>', 'backup id (default: backup-<UTC time>-<random>)')
    .option('--wait', 'wait for the end, drawing progress')
    .addOption(new Option('--json', 'print the summary as JSON (implies --wait)'))
    .action(async (o: BackupFlags & { id?: string; wait?: boolean; json?: boolean }) => {
      return withTemporal(async (client) => {
        const { id } = await startBackup(client, { ...backupInputOf(o), ...(o.id ? { id: o.id } : {}) });
        await finishOperation(ctx, {
          id,
          kind: 'backup',
          wait: o.wait === true,
          json: o.json === true,
          follow: () => follow(client, id),
          result: () => backupResult(client, id),
          print: (summary) => printSummary(ctx, summary),
        });
      });
    });
}
