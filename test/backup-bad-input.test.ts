/**
 * Bad input, through the CLI as a user meets it: each ends with a clear error naming the problem, the exit code of
 * the error registry (docs/interfaces.md section 2: 2 for input the user must fix, 1 for failures), within seconds, and
 * nothing marked complete.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import type { Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FaultyStorage } from '../repository/faulty-storage.ts';
import { FsStorage } from '../repository/fs-storage.ts';
import { fsRepository, Repository } from '../repository/repository.ts';
import type { BackupSummary } from '../common/backup-types.ts';
import type { ClusterManifest } from '../common/manifest.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import { backupResult, cancelBackup, startBackup } from '../api/backups.ts';
import { freePort } from '../scripts/temporal/dev-server.ts';
import { direct, eventually } from '../sim/testkit.ts';
import { expectEndedWithoutData, openBackupCursors, pendingActivities, readJson } from './helpers/backup-checks.ts';
import { runCli } from './helpers/cli.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

/** The main cluster (PSMDB, 2 members, lagging secondary); a Community one; one with authentication. */
let stack: SimStack;
let community: SimStack;
let secured: SimStack;
/** A replica set whose member has no agent running. */
let agentless: SimStack;
const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
const repo = () => tempDir('cutpoint-bad-input-repo-');
const rsOf = (s: SimStack) => s.cluster.describe().shards[0] as { uri: string; hosts: string[] };
/** A repository whose data-file writes fail with ENOSPC (the disk fills up during the copy). */
let fullDisk: string;

beforeAll(async () => {
  fullDisk = repo();
  stack = await startSimStack({
    replsetOnly: true,
    members: 2,
    checkpointMs: 1000,
    lagMs: 2000,
    repository: (path) =>
      path === fullDisk ? new Repository(new FaultyStorage(new FsStorage(path), { rules: [{ ops: ['write'], path: /\/files\//, errno: 'ENOSPC' }] })) : fsRepository(path),
  });
  // Agents only: the first stack's orchestrator serves every backup.
  community = await startSimStack({ replsetOnly: true, members: 1, flavor: 'community', orchestrator: false });
  secured = await startSimStack({ replsetOnly: true, members: 1, auth: true, orchestrator: false });
  agentless = await startSimStack({ replsetOnly: true, members: 1, orchestrator: false, agents: false });
});
afterAll(async () => {
  await agentless?.stop();
  await secured?.stop();
  await community?.stop();
  await stack?.stop();
});

/** `cutpoint backup ... --json`: exit code, the summary (when one was printed) and stderr. */
async function backupCli(args: string[]): Promise<{ code: number | null; summary?: BackupSummary; stderr: string; ms: number }> {
  const started = Date.now();
  const r = await runCli(['backup', '--json', '--keep-alive-ms', '1000', ...args], env());
  const last = r.stdout.trim().split('\n').at(-1);
  return { code: r.code, stderr: r.stderr, ms: Date.now() - started, ...(last ? { summary: JSON.parse(last) as BackupSummary } : {}) };
}

describe('bad input', () => {
  it('an unreachable URI fails within seconds (not minutes of retries): MONGO_UNREACHABLE naming the host, exit 1', async () => {
    const port = await freePort();
    const r = await backupCli(['--uri', `mongodb://127.0.0.1:${port}/?replicaSet=rs0`, '--repo', repo()]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.summary?.status).toBe('failed');
    expect(r.summary?.error?.code).toBe('MONGO_UNREACHABLE');
    expect(r.summary?.error?.message).toContain(`127.0.0.1:${port}`);
    expect(r.summary?.error?.message).toMatch(/no host answered/);
    // One server-selection timeout (10 s) and start-up, not five attempts with back-off.
    expect(r.ms).toBeLessThan(30_000);
  });

  it('a server without $backupCursor (MongoDB Community): NO_BACKUP_CURSOR, PSMDB or Enterprise needed, exit 2', async () => {
    const dir = repo();
    const r = await backupCli(['--uri', rsOf(community).uri, '--repo', dir]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.summary?.error?.code).toBe('NO_BACKUP_CURSOR');
    expect(r.summary?.error?.message).toMatch(/Percona Server for MongoDB or MongoDB Enterprise/);
    expectEndedWithoutData(dir, r.summary!.id, 'failed');
  });

  it("a user without the 'fsync' privilege: NOT_AUTHORIZED naming the privilege and roles, exit 2", async () => {
    const dir = repo();
    const users = secured.cluster.describe().users as Record<string, { user: string; password: string }>;
    const creds = join(dir, '..', `creds-${Date.now()}.json`);
    writeFileSync(creds, JSON.stringify({ username: users.noFsync!.user, password: users.noFsync!.password }));
    const r = await backupCli(['--uri', rsOf(secured).uri, '--repo', dir, '--credentials-file', creds]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.summary?.error?.code).toBe('NOT_AUTHORIZED');
    expect(r.summary?.error?.message).toMatch(/'fsync' privilege \(role hostManager or clusterAdmin\)/);
    expect(r.stderr + r.summary?.error?.message).not.toContain(users.noFsync!.password);
    expectEndedWithoutData(dir, r.summary!.id, 'failed');
    // The control: the launcher's backup user, same cluster, same path, succeeds.
    writeFileSync(creds, JSON.stringify({ username: users.backup!.user, password: users.backup!.password }));
    const ok = await backupCli(['--uri', rsOf(secured).uri, '--repo', repo(), '--credentials-file', creds]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('a node whose backup cursor someone else holds: BACKUP_CURSOR_BUSY, not one of our backups, exit 1', async () => {
    const node = rsOf(stack).hosts[1]!;
    const c = direct(node);
    try {
      const held = await c.db('admin').command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} });
      try {
        const dir = repo();
        const r = await backupCli(['--uri', rsOf(stack).uri, '--repo', dir, '--node', node, '--max-lag', '3600']);
        expect(r.code, r.stderr).toBe(1);
        expect(r.summary?.error?.code).toBe('BACKUP_CURSOR_BUSY');
        expect(r.summary?.error?.message).toContain(node);
        expect(r.summary?.error?.message).toMatch(/no running cutpoint backup/);
        expect(r.summary?.error?.message).toMatch(/--if-busy wait/);
        expectEndedWithoutData(dir, r.summary!.id, 'failed');
      } finally {
        await c.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [held.cursor.id] });
      }
    } finally {
      await c.close();
    }
  });

  it('a second backup of a cluster one of ours is backing up: CLUSTER_BUSY naming it, before any cursor', async () => {
    const node = rsOf(stack).hosts[1]!;
    const first = await startBackup(stack.h.client, { uri: rsOf(stack).uri, repo: repo(), node, maxLagSecs: 3600, bytesPerSec: 20_000, keepAliveIntervalMs: 1000 });
    try {
      await eventually(async () => (await pendingActivities(stack.h.client, `${first.id}.rs0`)).includes('copyBatch'), 60_000, 'the first backup to copy');
      const r = await backupCli(['--uri', rsOf(stack).uri, '--repo', repo(), '--node', node, '--max-lag', '3600']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.summary?.error?.code).toBe('CLUSTER_BUSY');
      expect(r.summary?.error?.message).toContain(`backup ${first.id}`);
      expect(await openBackupCursors(stack.cluster)).toHaveLength(1);
    } finally {
      await cancelBackup(stack.h.client, first.id, 'test done');
      expect((await backupResult(stack.h.client, first.id)).status).toBe('cancelled');
    }
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
  });

  it('no eligible node under the lag ceiling: NO_ELIGIBLE_NODE saying why, exit 1', async () => {
    const [primary, secondary] = rsOf(stack).hosts as [string, string];
    const lagging = await backupCli(['--uri', rsOf(stack).uri, '--repo', repo(), '--node', secondary, '--max-lag', '0']);
    expect(lagging.code, lagging.stderr).toBe(1);
    expect(lagging.summary?.error?.code).toBe('NO_ELIGIBLE_NODE');
    expect(lagging.summary?.error?.message).toMatch(new RegExp(`${secondary} was requested but is lagging [\\d.]+s \\(ceiling 0s\\)`));
    const stranger = await backupCli(['--uri', rsOf(stack).uri, '--repo', repo(), '--node', '127.0.0.1:1']);
    expect(stranger.code, stranger.stderr).toBe(1);
    expect(stranger.summary?.error?.message).toContain(`127.0.0.1:1 is not a member (members: ${primary}, ${secondary})`);
  });

  it('a repository path under a regular file: REPO_UNUSABLE naming it, exit 2, before any cursor opens', async () => {
    const file = join(repo(), 'a-file');
    writeFileSync(file, 'not a directory');
    const id = `bad-repo-${Date.now()}`;
    const r = await backupCli(['--uri', rsOf(stack).uri, '--repo', join(file, 'repo'), '--id', id]);
    expect(r.code, r.stderr).toBe(2);
    // The summary's error, or (when not even the failed manifest could be written there) the CLI's error line.
    const text = r.summary?.error ? `${r.summary.error.code}: ${r.summary.error.message}` : r.stderr;
    expect(text).toMatch(/REPO_UNUSABLE/);
    expect(text).toContain(file);
    expect(text).toMatch(/regular file, not a directory/);
    // No replica-set workflow was started: no cursor was ever opened.
    await expect(stack.h.client.workflow.getHandle(`${id}.rs0`).describe()).rejects.toThrow(/not found/i);
  });

  it('disk full during the copy: DISK_FULL saying the disk is full, not retried, exit 1, no cursor left', async () => {
    const r = await backupCli(['--uri', rsOf(stack).uri, '--repo', fullDisk]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.summary?.error?.code).toBe('DISK_FULL');
    expect(r.summary?.error?.message).toMatch(/the disk is full/);
    const cm = readJson<ClusterManifest>(join(fullDisk, 'backups', r.summary!.id, 'manifest.json'));
    expect(cm.status).toBe('failed');
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
    // Not retried: every copy attempt that hit the full disk was its first.
    const history = await stack.h.client.workflow.getHandle(`${r.summary!.id}.rs0`).fetchHistory();
    const attempts = (history.events ?? []).flatMap((e: Document) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt as number] : []));
    expect(Math.max(...attempts)).toBe(1);
  });

  it('a backup started the way the Temporal UI starts it, with a bad option: BAD_USAGE naming the option, nothing written', async () => {
    const dir = repo();
    for (const [option, value, rule] of [
      ['copyParallelism', 0, 'at least 1'],
      ['keepAliveIntervalMs', 900_000, 'at most 300000 (well inside the 10-minute idle cursor limit of the server'],
      ['bytesPerSec', 'fast', 'a number'],
    ] as const) {
      const id = `bad-option-${option}-${Date.now()}`;
      const handle = await stack.h.client.workflow.start('clusterBackup', {
        taskQueue: ORCHESTRATOR_TASK_QUEUE,
        workflowId: id,
        args: [{ uri: rsOf(stack).uri, repo: dir, [option]: value }],
      });
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e as WorkflowFailedError,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = err!.cause as ApplicationFailure;
      expect(cause.type).toBe('BAD_USAGE');
      expect(cause.message).toContain(`${option} must be ${rule}`);
    }
    // Failed before discovering anything: no manifest, no child, no cursor.
    expect(existsSync(join(dir, 'backups'))).toBe(false);
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
  });

  it('a chosen member without a running agent: WORKER_UNAVAILABLE naming it and the command to start, not a hang', async () => {
    const dir = repo();
    const host = rsOf(agentless).hosts[0]!;
    const { id } = await startBackup(stack.h.client, { uri: rsOf(agentless).uri, repo: dir, agentTimeoutMs: 3000 });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('failed');
    expect(summary.error?.code).toBe('WORKER_UNAVAILABLE');
    expect(summary.error?.message).toContain(`the agent of backup source ${host} did not pick up 'openBackupCursor' within 3000 ms`);
    expect(summary.error?.message).toContain(`cutpoint agent --mongod ${host}`);
    expectEndedWithoutData(dir, id, 'failed');
  });
});
