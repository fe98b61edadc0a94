/**
 * A sharded cluster backed up to a real S3 server (versitygw) under the bank workload, restored from it and checked with
 * the oracle; the repository checked and pruned there; a backup cancelled mid-copy leaves only its manifest and no
 * unfinished upload. The workers get the S3 endpoint and credentials from their environment only: the secret key is in
 * no workflow history (payloads decoded) and no CLI output.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ClusterManifest } from '../common/manifest.ts';
import type { StartedMember } from '../common/restore-types.ts';
import { backupResult, cancelBackup, startBackup } from '../api/backups.ts';
import { restoreResult, startRestore } from '../api/restores.ts';
import { checkRepository } from '../repository/check.ts';
import { fsRepository } from '../repository/repository.ts';
import { S3Storage } from '../repository/s3-storage.ts';
import { eventually, sleep } from '../sim/testkit.ts';
import { createLogger } from '../lib/logger.ts';
import { locateVersityGw, startVersityGw } from '../scripts/s3/versitygw.ts';
import { openBackupCursors, pendingActivities } from './helpers/backup-checks.ts';
import { runCli } from './helpers/cli.ts';
import { expectShardsAtHistory, newMembers, startTargetAgents, stopMembers, toTimestamp, useSimMongod } from './helpers/restore-targets.ts';
import { freshS3Location, s3Env, s3Storage } from './helpers/s3.ts';
import { whereSecret } from './helpers/secrets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const started: StartedMember[] = [];
const agents: Array<{ stop(): Promise<void> }> = [];
const saved = { ...process.env };

beforeAll(async () => {
  // The in-process workers read the AWS environment, as `cutpoint worker` and `cutpoint agent` do.
  Object.assign(process.env, s3Env());
  useSimMongod();
  stack = await startSimStack({ shards: 2, members: 1, checkpointMs: 1000, bank: true });
});
afterAll(async () => {
  await stopMembers(started);
  for (const a of agents) await a.stop();
  await stack?.stop();
  for (const k of Object.keys(s3Env())) if (saved[k] === undefined) delete process.env[k];
});

describe('backup to and restore from S3 (versitygw)', () => {
  it('a sharded backup under the bank workload goes to a bucket and restores to one common timestamp that the oracle confirms', async () => {
    const repo = await freshS3Location('prod/cluster-a');
    const mongos = stack.cluster.describe().mongos as string;
    const backup = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri: mongos, repo, keepAliveIntervalMs: 1000 })).id);
    expect(backup.status, JSON.stringify(backup.error)).toBe('complete');
    const storage = s3Storage(repo);
    const cm = JSON.parse((await storage.readFile(`backups/${backup.id}/manifest.json`)).toString()) as ClusterManifest;
    expect(cm.status).toBe('complete');
    expect(cm.replicaSets.map((r) => r.name).sort()).toEqual(['cfg', 'shard0', 'shard1']);
    expect((await storage.list('data')).length).toBeGreaterThan(0);
    expect(await storage.pendingUploads()).toEqual([]);

    const [cfg, s0, s1] = await newMembers(3, 's3');
    agents.push(await startTargetAgents(stack.h, [cfg!, s0!, s1!]));
    const restoreId = (await startRestore(stack.h.client, { backupId: backup.id, repo, to: { cfg: [cfg!], shard0: [s0!], shard1: [s1!] } })).id;
    const summary = await restoreResult(stack.h.client, restoreId);
    started.push(...summary.replicaSets.flatMap((r) => r.members));
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    const ts = toTimestamp(summary.commonTimestamp!);
    await expectShardsAtHistory(
      stack.workload!.history,
      [
        { name: 'shard0', host: s0!.host },
        { name: 'shard1', host: s1!.host },
      ],
      ts,
    );

    // The CLI against the bucket: list, verify, repo check, prune; the secret in none of their output.
    const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace'), ...s3Env(), CUTPOINT_LOG_LEVEL: 'debug' };
    const list = await runCli(['list', '--repo', repo, '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toContain(backup.id);
    const verify = await runCli(['verify', backup.id, '--repo', repo], env);
    expect(verify.code, verify.stderr).toBe(0);
    const check = await runCli(['repo', 'check', '--repo', repo, '--read-data', '--json'], env);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ problems: [], garbage: [] });
    const prune = await runCli(['prune', '--repo', repo, '--keep-last', '1', '--json'], env);
    expect(prune.code, prune.stderr).toBe(0);
    const secret = s3Env().AWS_SECRET_ACCESS_KEY!;
    for (const r of [list, verify, check, prune]) expect(`${r.stdout}${r.stderr}`).not.toContain(secret);

    // Workflow input carries the location, never a credential.
    const histories = [];
    for (const id of [backup.id, restoreId]) histories.push(await stack.h.client.workflow.getHandle(id).fetchHistory());
    expect(whereSecret(histories, secret)).toEqual([]);
    expect(whereSecret(histories, repo).length).toBeGreaterThan(0); // the scan does look into the payloads
  });

  it('a backup cancelled mid-copy leaves only its manifest in the bucket and no unfinished upload', async () => {
    const repo = await freshS3Location();
    const { id } = await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo, keepAliveIntervalMs: 1000, bytesPerSec: 50_000, batchMaxFiles: 2 });
    await eventually(async () => (await pendingActivities(stack.h.client, `${id}.shard0`)).includes('copyBatch'), 60_000, 'the copy to run');
    await cancelBackup(stack.h.client, id, 'cancel during the copy');
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('cancelled');
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
    const storage = s3Storage(repo);
    expect(await storage.list(`backups/${id}`)).toEqual([`backups/${id}/manifest.json`]);
    expect(await storage.pendingUploads()).toEqual([]);
  });

  it('the S3 server killed and restarted mid-copy: the backup completes, no object missing, no upload left', async () => {
    // A server of its own, so that killing it disturbs no other test; the workers are pointed at it for this test.
    const log = createLogger('warn');
    const root = tempDir('cutpoint-s3-restart-');
    const gw = await startVersityGw(await locateVersityGw(log), { dataDir: join(root, 'data'), logDir: root, accessKey: s3Env().AWS_ACCESS_KEY_ID!, secretKey: s3Env().AWS_SECRET_ACCESS_KEY! }, log);
    const endpoint = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = gw.endpoint;
    try {
      const env = { ...s3Env(), AWS_ENDPOINT_URL: gw.endpoint };
      const repo = await freshS3Location('repo', env);
      const { id } = await startBackup(stack.h.client, { uri: stack.cluster.describe().mongos as string, repo, keepAliveIntervalMs: 1000, bytesPerSec: 300_000, batchMaxFiles: 2 });
      await eventually(async () => (await pendingActivities(stack.h.client, `${id}.shard0`)).includes('copyBatch'), 60_000, 'the copy to run');
      await gw.kill();
      await sleep(3000);
      await gw.restart();
      const summary = await backupResult(stack.h.client, id);
      expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
      const report = await checkRepository(fsRepository(repo), { readData: true });
      expect(report.problems).toEqual([]);
      expect(report.garbage.filter((g) => g.kind === 'pending-upload')).toEqual([]);
      expect(report.checked.backups).toBe(1);
      expect(await new S3Storage(repo, { env }).pendingUploads()).toEqual([]);
    } finally {
      process.env.AWS_ENDPOINT_URL = endpoint;
      await gw.stop();
    }
  });
});
