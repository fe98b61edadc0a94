/**
 * `cutpoint restore`, `verify` and `seed`: restore a backup to new hosts, re-hash a backup, seed a new member of a
 * running replica set. `status <id>` and `cancel <id>` (cmd-backup.ts) work on restores too: the `progress` query and
 * the `cancel` signal have the same names.
 */
import type { Command } from 'commander';
import type { Client } from '@temporalio/client';
import type { RestoreSummary, VerifySummary } from '../common/restore-types.ts';
import { CutpointError } from '../common/errors.ts';
import { formatTs } from '../common/timestamp.ts';
import { readTargetMap, restoreResult, seedResult, startRestore, startSeed, startVerify, verifyResult, watchRestore } from '../api/restores.ts';
import type { CliContext } from './context.ts';
import { finishOperation, withTemporal } from './operation.ts';

function msArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1000) throw new CutpointError('BAD_USAGE', `${name} must be an integer >= 1000 (ms), got '${value}'`);
    return n;
  };
}

const MiB = 1024 * 1024;

/** One progress line on stderr every few seconds, and at every phase change. */
async function follow(client: Client, id: string): Promise<void> {
  let last = '';
  let lastAt = 0;
  for await (const p of watchRestore(client, id, 1000)) {
    const line = `${id}: ${p.status} ${p.phase} ${(p.bytesDone / MiB).toFixed(1)}/${(p.bytesTotal / MiB).toFixed(1)} MiB ${p.replicaSets.map((r) => `${r.name}:${r.phase}`).join(' ')}`;
    if (line !== last && (Date.now() - lastAt > 3000 || p.phase !== last.split(' ')[2] || p.status !== 'running')) {
      process.stderr.write(line + '\n');
      last = line;
      lastAt = Date.now();
    }
  }
}

function printRestore(ctx: CliContext, s: RestoreSummary): void {
  ctx.out(`restore ${s.id} of backup ${s.backupId} (${s.cluster}): ${s.status}`);
  if (s.commonTimestamp) ctx.out(`  at ${formatTs(s.commonTimestamp)}`);
  for (const r of s.replicaSets) {
    ctx.out(`  ${r.name}${r.configServer ? ' (config server)' : ''}`);
    for (const m of r.members) ctx.out(`    ${m.host} ${m.state} pid ${m.pid} dbpath ${m.dbpath}`);
  }
  if (s.error) ctx.out(`  error ${s.error.code}: ${s.error.message}`);
  else ctx.out('  the restored mongods keep running; stop each with db.shutdownServer() or kill <pid>');
}

function printVerify(ctx: CliContext, s: VerifySummary): void {
  ctx.out(`verify of backup ${s.backupId}: ${s.status}, ${s.files} files, ${(s.bytes / MiB).toFixed(1)} MiB`);
  for (const b of s.bad) ctx.out(`  BAD ${b.replicaSet}/${b.path}: ${b.problem}`);
  if (s.error && !s.bad.length) ctx.out(`  error ${s.error.code}: ${s.error.message}`);
}

export function registerRestore(program: Command, ctx: CliContext): void {
  program
    .command('restore <backupId>')
    .description('restore a backup (replica set or sharded cluster) to new hosts, at its common timestamp')
    .requiredOption('--repo <dir>', 'repository directory (as the workers see it)')
    .requiredOption('--to <map.json>', 'JSON {"<replica set>": [{"host": "h:port", "dbpath": "/dir"}, ...]} for every replica set')
    .option('--overwrite', 'restore into non-empty dbpaths (their data is kept aside until the restore succeeds)')
    .option('--id <id>', 'restore id (default: restore-<UTC time>-<random>)')
    .option('--agent-timeout-ms <ms>', "how long to wait for a target host's agent", msArg('--agent-timeout-ms'))
    .option('--wait', 'wait for the end, printing progress')
    .option('--json', 'print the summary as JSON (implies --wait)')
    .action(async (backupId: string, o: { repo: string; to: string; overwrite?: boolean; id?: string; agentTimeoutMs?: number; wait?: boolean; json?: boolean }) => {
      const to = readTargetMap(o.to);
      return withTemporal(async (client) => {
        const { id } = await startRestore(client, {
          backupId,
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
          follow: () => follow(client, id),
          result: () => restoreResult(client, id),
          print: (s) => printRestore(ctx, s),
        });
      });
    });

  program
    .command('verify <backupId>')
    .description('re-hash every file of a backup against its manifests; non-zero exit naming every bad file')
    .requiredOption('--repo <dir>', 'repository directory (as the workers see it)')
    .option('--json', 'print the summary as JSON')
    .action(async (backupId: string, o: { repo: string; json?: boolean }) =>
      withTemporal(async (client) => {
        const { id } = await startVerify(client, { backupId, repo: o.repo });
        await finishOperation(ctx, {
          id,
          kind: 'verify',
          wait: true,
          json: o.json === true,
          follow: () => follow(client, id),
          result: () => verifyResult(client, id),
          print: (s) => printVerify(ctx, s),
        });
      }),
    );

  program
    .command('seed <backupId>')
    .description('seed a new member of a running replica set from a backup, then add it to the set')
    .requiredOption('--repo <dir>', 'repository directory (as the workers see it)')
    .requiredOption('--replica-set <name>', 'the replica set of the backup to seed from')
    .requiredOption('--host <host:port>', 'the new member (its agent must run there)')
    .requiredOption('--dbpath <dir>', "the new member's dbpath")
    .option('--join <uri>', 'the running replica set to add it to (mongodb:// without credentials)')
    .option('--overwrite', 'seed into a non-empty dbpath (its data is kept aside until the seed succeeds)')
    .option('--json', 'print the summary as JSON')
    .action(async (backupId: string, o: { repo: string; replicaSet: string; host: string; dbpath: string; join?: string; overwrite?: boolean; json?: boolean }) =>
      withTemporal(async (client) => {
        const { id } = await startSeed(client, {
          backupId,
          repo: o.repo,
          replicaSet: o.replicaSet,
          member: { host: o.host, dbpath: o.dbpath },
          ...(o.join ? { join: { uri: o.join } } : {}),
          ...(o.overwrite ? { overwrite: true } : {}),
        });
        if (!o.json) await follow(client, id);
        const s = await seedResult(client, id);
        if (o.json) ctx.out(JSON.stringify(s));
        else ctx.out(`seeded ${s.member.host} (${s.replicaSet}) pid ${s.member.pid}: ${s.stateOnPrimary ?? s.member.state}`);
      }),
    );
}
