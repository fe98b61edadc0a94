/**
 * `cutpoint pitr start|status|stop`: continuous oplog capture of a cluster (docs/interfaces.md section 8), one
 * `pitr-<cluster>` workflow per cluster, through the client API (api/pitr.ts).
 */
import type { Command } from 'commander';
import { pitrClusters, pitrCluster, pitrStatus, startPitr, stopPitr } from '../api/pitr.ts';
import { durationMs } from '../api/schedules.ts';
import { CutpointError } from '../common/errors.ts';
import { PITR_OPTIONS as O } from '../common/options.ts';
import type { PitrStatus } from '../common/pitr-types.ts';
import { formatTs } from '../common/timestamp.ts';
import type { CliContext } from './context.ts';
import { withTemporal } from './operation.ts';
import { optionArg, withDefault } from './options.ts';

function printStatus(ctx: CliContext, s: PitrStatus): void {
  ctx.out(`pitr of ${s.cluster}: ${s.status}`);
  ctx.out(`  restorable from ${s.restorableFrom ? formatTs(s.restorableFrom) : '— (no complete backup the capture covers)'} to ${s.restorableTo ? formatTs(s.restorableTo) : '—'}`);
  for (const r of s.replicaSets) ctx.out(`  ${r.name}: captured to ${r.capturedTo ? formatTs(r.capturedTo) : '—'}${r.lagSecs !== null ? `, lag ${r.lagSecs}s` : ''}`);
  for (const g of s.gaps) ctx.out(`  GAP in ${g.replicaSet}: the oplog after ${formatTs(g.from)} and before ${formatTs(g.to)} was lost before it was captured`);
}

export function registerPitr(program: Command, ctx: CliContext): void {
  const pitr = program.command('pitr').description('continuous oplog capture for point-in-time recovery');

  pitr
    .command('start')
    .description('start capturing the oplog of every replica set of a cluster into the repository (workflow pitr-<cluster>)')
    .requiredOption('--uri <uri>', 'mongodb:// connection string of the replica set or mongos, without credentials')
    .requiredOption('--repo <dir>', 'repository directory (as the workers see it)')
    .option('--cluster <name>', 'cluster label (default: the replicaSet of the URI; required for a mongos URI)')
    .option('--seal-every <duration>', `how often each replica set seals what it captured, e.g. 1s or 500ms (default ${O.sealEveryMs.default / 1000}s)`)
    .option('--lease-ms <ms>', withDefault('how long one capture activity runs before the next starts', O.leaseMs), optionArg('--lease-ms', O.leaseMs))
    .option('--max-lag <seconds>', withDefault('lag ceiling when choosing a secondary', O.maxLagSecs), optionArg('--max-lag', O.maxLagSecs))
    .option('--credentials-file <path>', 'JSON {"username","password"} the workers read (default: their CUTPOINT_MONGO_USERNAME/_PASSWORD)')
    .option('--json', 'print {id, cluster} as JSON')
    .action(async (o: { uri: string; repo: string; cluster?: string; sealEvery?: string; leaseMs?: number; maxLag?: number; credentialsFile?: string; json?: boolean }) =>
      withTemporal(async (client) => {
        const started = await startPitr(client, {
          uri: o.uri,
          repo: o.repo,
          ...(o.cluster ? { cluster: o.cluster } : {}),
          ...(o.sealEvery !== undefined ? { sealEveryMs: durationMs('--seal-every', o.sealEvery) } : {}),
          ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
          ...(o.maxLag !== undefined ? { maxLagSecs: o.maxLag } : {}),
          ...(o.credentialsFile ? { credentials: { kind: 'file' as const, path: o.credentialsFile } } : {}),
        });
        if (o.json) ctx.out(JSON.stringify(started));
        else ctx.out(`capturing the oplog of ${started.cluster} (workflow ${started.id})`);
      }),
    );

  pitr
    .command('status')
    .description('where the capture of each replica set stands, the restorable window and the gaps')
    .option('--cluster <name>', 'this cluster (default: every captured cluster)')
    .option('--repo <dir>', "read the window from this repository path (default: the workflow's, as the workers see it)")
    .option('--json', 'print the status as JSON (docs/interfaces.md section 8)')
    .action(async (o: { cluster?: string; repo?: string; json?: boolean }) =>
      withTemporal(async (client) => {
        const clusters = o.cluster ? [pitrCluster({ uri: '', cluster: o.cluster })] : await pitrClusters(client);
        if (!clusters.length) throw new CutpointError('BAD_USAGE', "no capture is known to Temporal: start one with 'cutpoint pitr start'");
        const statuses: PitrStatus[] = [];
        for (const c of clusters) statuses.push(await pitrStatus(client, c, o.repo ? { repo: o.repo } : {}));
        if (o.json) ctx.out(JSON.stringify(statuses.length === 1 ? statuses[0] : statuses));
        else for (const s of statuses) printStatus(ctx, s);
      }),
    );

  pitr
    .command('stop')
    .description('stop the capture of a cluster (what was read is sealed first)')
    .option('--cluster <name>', 'this cluster (default: the only captured one)')
    .action(async (o: { cluster?: string }) =>
      withTemporal(async (client) => {
        let cluster = o.cluster;
        if (!cluster) {
          const all = await pitrClusters(client);
          if (all.length !== 1) throw new CutpointError('BAD_USAGE', `give --cluster: ${all.length ? `captured clusters: ${all.join(', ')}` : 'no capture is known to Temporal'}`);
          cluster = all[0]!;
        }
        await stopPitr(client, cluster);
        ctx.out(`capture of ${cluster} stopped`);
      }),
    );
}
