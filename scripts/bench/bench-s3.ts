/**
 * `bench s3`: backup and restore throughput of a replica set of `size` bytes (the copy benchmark's mix) to a local S3
 * server (versitygw, posix backend, on the work directory's filesystem) against cutpoint's own backup and restore to a
 * local directory on the same filesystem, in the same run, alternating which goes first. Each run backs up into a new
 * repository of each kind (nothing deduplicated) and restores that backup into a new member. Both repositories use the
 * format's default zstd level (format v2 has no "off"); none is encrypted.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { NodeController } from '../../activities/agent/restore/node-controller.ts';
import type { RestoreSummary } from '../../common/restore-types.ts';
import { freePort } from '../../lib/ports.ts';
import { restoreResult, startRestore } from '../../api/restores.ts';
import { S3Storage } from '../../repository/s3-storage.ts';
import { MONGOD_BIN } from '../../sim/testkit.ts';
import { locateVersityGw, startVersityGw, type VersityGw } from '../s3/versitygw.ts';
import { runBackup } from './backup-run.ts';
import type { RestoreBenchOptions } from './bench-restore.ts';
import { loadMix } from './dataset.ts';
import { prepareCache } from './page-cache.ts';
import { journalFileSize, loadingProgress, median, MiB, printTable } from './report.ts';
import { membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri, type WorkerProcess } from './stack.ts';

/** Options of the S3 benchmark: those of the restore benchmark. */
export type S3BenchOptions = RestoreBenchOptions;

async function timedRestore(client: Client, backupId: string, repo: string, member: { host: string; dbpath: string }): Promise<number> {
  const t0 = process.hrtime.bigint();
  const { id } = await startRestore(client, { backupId, repo, to: { rs0: [member] } });
  const summary: RestoreSummary = await restoreResult(client, id);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (summary.status !== 'complete') throw new Error(`restore ${id} from ${repo} ended ${summary.status}: ${summary.error?.code} ${summary.error?.message}`);
  const { pid, port } = summary.replicaSets[0]!.members[0]!;
  await new NodeController(MONGOD_BIN).stop({ pid, port });
  rmSync(member.dbpath, { recursive: true, force: true });
  return seconds;
}

export async function benchS3(o: S3BenchOptions): Promise<Record<string, unknown>> {
  const cluster = await startQuietCluster(o.log, { replsetOnly: true, dir: join(o.dir, 'sim'), blockSize: 64 * 1024, logFileSize: journalFileSize(o.size) });
  // The workers (child processes) inherit the AWS environment that points at the local server.
  const keys = { accessKey: 'cutpoint-bench', secretKey: randomBytes(20).toString('hex') };
  let gw: VersityGw | undefined;
  const workers: WorkerProcess[] = [];
  const temporal = await startBenchTemporal(o.log, o.temporal);
  process.env.CUTPOINT_MONGOD_PATH = MONGOD_BIN;
  try {
    gw = await startVersityGw(await locateVersityGw(o.log), { dataDir: join(o.dir, 's3'), logDir: o.dir, ...keys }, o.log);
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: keys.accessKey, AWS_SECRET_ACCESS_KEY: keys.secretKey, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL: gw.endpoint });
    const loaded = loadMix(cluster.shards[0]!.primary()!, o.size, undefined, loadingProgress);
    process.stderr.write(`\rloaded ${loaded.documents} documents in ${loaded.collections} collections\n`);
    const [source] = membersOf(cluster);
    const targets = await Promise.all(Array.from({ length: 2 * o.runs }, async (_, i) => ({ host: `127.0.0.1:${await freePort()}`, dbpath: join(o.dir, `restored-${i}`) })));
    workers.push(await startOrchestrator(temporal), await startAgent(temporal, [source!, ...targets]));

    const runs: Array<Record<string, number | string>> = [];
    for (let i = 0; i < o.runs; i++) {
      const dirRepo = join(o.dir, `repo-${i}`);
      const s3Repo = `s3://bench-${i}-${randomBytes(4).toString('hex')}/repo`;
      await new S3Storage(s3Repo).createBucket();
      const order: Array<'dir' | 's3'> = i % 2 === 0 ? ['dir', 's3'] : ['s3', 'dir'];
      const r: Record<string, number | string> = { run: i + 1, first: order[0]! };
      for (const kind of order) {
        prepareCache(o.cache, [cluster.shards[0]!.primary()!.dbpath]);
        const backup = await runBackup(temporal.client, { uri: targetUri(cluster), repo: kind === 'dir' ? dirRepo : s3Repo });
        r[`${kind} backup s`] = backup.seconds;
        r[`${kind} backup MiB/s`] = backup.bytes / MiB / backup.seconds;
        r.bytes = backup.bytes;
        r[`${kind} restore s`] = await timedRestore(temporal.client, backup.id, kind === 'dir' ? dirRepo : s3Repo, targets[2 * i + (kind === 'dir' ? 0 : 1)]!);
        r[`${kind} restore MiB/s`] = backup.bytes / MiB / (r[`${kind} restore s`] as number);
      }
      r['backup ratio'] = (r['dir backup s'] as number) / (r['s3 backup s'] as number);
      r['restore ratio'] = (r['dir restore s'] as number) / (r['s3 restore s'] as number);
      runs.push(r);
      rmSync(dirRepo, { recursive: true, force: true });
      process.stderr.write(`run ${i + 1}: backup dir ${(r['dir backup s'] as number).toFixed(1)} s, s3 ${(r['s3 backup s'] as number).toFixed(1)} s; restore dir ${(r['dir restore s'] as number).toFixed(1)} s, s3 ${(r['s3 restore s'] as number).toFixed(1)} s\n`);
    }
    printTable(`s3: ${(o.size / MiB).toFixed(0)} MiB, local S3 (versitygw) against a local directory, cache ${o.cache}`, runs);
    const backupRatio = median(runs.map((r) => r['backup ratio'] as number));
    const restoreRatio = median(runs.map((r) => r['restore ratio'] as number));
    return {
      sizes: { requestedBytes: o.size, backupBytes: runs[0]?.bytes, loaded },
      cache: o.cache,
      runs,
      median: { backupRatio, restoreRatio },
      peakRssBytes: Object.fromEntries(workers.map((w) => [w.role, w.peakRss()])),
      target: { ratio: 0.8, met: backupRatio >= 0.8 && restoreRatio >= 0.8 },
    };
  } finally {
    for (const w of workers) await w.stop();
    await temporal.close();
    await gw?.stop();
    await cluster.stop();
  }
}
