/**
 * An agent process SIGKILLed mid-copy while it writes to a real S3 server (versitygw), under the bank workload: the
 * restarted agent finishes the backup, which is intact and recovers to exactly the workload's history at its common
 * timestamp; `repo check --read-data` finds nothing damaged, and after `prune` no multipart upload is left. The
 * workers are separate processes that log at `debug` with the S3 credentials in their environment: the secret key is
 * in none of their output, no workflow history, and no CLI output.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { backupProgress, backupResult, startBackup } from '../api/backups.ts';
import type { ReplicaSetManifest } from '../common/manifest.ts';
import { toBsonTimestamp } from '../lib/bson-timestamp.ts';
import { fsRepository } from '../repository/repository.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import { eventually, sleep } from '../sim/testkit.ts';
import { openBackupCursors } from './helpers/backup-checks.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { materialize, recoverBankAt } from './helpers/recover.ts';
import { freshS3Location, s3Env, s3Storage } from './helpers/s3.ts';
import { whereSecret } from './helpers/secrets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';

let stack: SimStack;
const processes: Array<ReturnType<typeof startCli>> = [];
const saved = { ...process.env };
const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace'), ...s3Env(), CUTPOINT_LOG_LEVEL: 'debug' });
const hosts = () => stack.cluster.describe().shards[0].hosts as string[];

function spawnWorker(kind: 'agent' | 'worker'): ReturnType<typeof startCli> {
  const p = startCli(kind === 'agent' ? ['agent', ...hosts().flatMap((h) => ['--mongod', h])] : ['worker'], env());
  processes.push(p);
  return p;
}

beforeAll(async () => {
  // This process reads the bucket too (the checks below), through the same environment.
  Object.assign(process.env, s3Env());
  stack = await startSimStack({ replsetOnly: true, members: 2, checkpointMs: 1000, logFileSize: 2 * 1024 * 1024, orchestrator: false, agents: false, bank: true });
});
afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await stack?.stop();
  for (const k of Object.keys(s3Env())) if (saved[k] === undefined) delete process.env[k];
});

describe('crash of an agent writing to S3', () => {
  it('agent SIGKILLed mid-copy: the backup completes intact, nothing is left behind, no credential leaks', async () => {
    spawnWorker('worker');
    const agent = spawnWorker('agent');
    const repo = await freshS3Location();
    const { id } = await startBackup(stack.h.client, { uri: stack.cluster.describe().shards[0].uri as string, repo, bytesPerSec: 600_000, keepAliveIntervalMs: 1000, batchMaxFiles: 2 });
    await eventually(async () => {
      const p = await backupProgress(stack.h.client, id, { inFlight: true }).catch(() => undefined);
      return p !== undefined && p.phase === 'copy' && p.bytesDone > 0 && p.bytesDone < p.bytesTotal / 2;
    }, 90_000, 'the copy to be under way');
    agent.child.kill('SIGKILL');
    expect((await agent.done).signal).toBe('SIGKILL');
    await sleep(2000);
    spawnWorker('agent');
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    expect(await openBackupCursors(stack.cluster)).toEqual([]);

    // Intact: rebuilt from the bucket and recovered, it is the workload's history at the common timestamp.
    const storage = s3Storage(repo);
    const rm = JSON.parse((await storage.readFile(`backups/${id}/rs0/manifest.json`)).toString()) as ReplicaSetManifest;
    const accounts = await recoverBankAt(await materialize(repo, id, rm), summary.commonTimestamp!);
    expect(new Oracle(stack.workload!.history).verify([{ name: 'rs0', accounts }], toBsonTimestamp(summary.commonTimestamp!)).mismatches).toEqual([]);
    expect((await fsRepository(repo).storage.list('data')).length).toBeGreaterThan(0);

    const check = await runCli(['repo', 'check', '--repo', repo, '--read-data', '--json'], env());
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ problems: [] });
    const prune = await runCli(['prune', '--repo', repo, '--keep-last', '1', '--json'], env());
    expect(prune.code, prune.stderr).toBe(0);
    expect(await storage.pendingUploads()).toEqual([]);

    // The secret key: in no worker output (debug logs), no CLI output, no history.
    const secret = s3Env().AWS_SECRET_ACCESS_KEY!;
    const outputs = [...processes.map((p) => p.output()), check, prune];
    expect(outputs.map((o) => o.stdout + o.stderr).join('').length).toBeGreaterThan(1000); // they did log
    for (const o of outputs) expect(`${o.stdout}${o.stderr}`).not.toContain(secret);
    const histories = [];
    for (const wf of [id, `${id}.rs0`]) histories.push(await stack.h.client.workflow.getHandle(wf).fetchHistory());
    expect(whereSecret(histories, secret)).toEqual([]);
    expect(whereSecret(histories, repo).length).toBeGreaterThan(0);
  });
});
