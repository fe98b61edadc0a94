/**
 * `cutpoint list / describe / prune` as a user runs them, on a repository written through the Repository API:
 * complete backups of two clusters at different times, a failed, a cancelled, a stale running backup (no workflow)
 * and a running one whose workflow really runs (started on a task queue no worker polls). Shows the catalogue with
 * and without Temporal, the dry run, a prune that leaves exactly what the policy keeps, and the repository lock.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { fsRepository } from '../repository/repository.ts';
import type { BackupStatus, ClusterManifest } from '../common/manifest.ts';
import { acquireLock, lockPath } from '../repository/lock.ts';
import { FsStorage } from '../repository/fs-storage.ts';
import { runCli } from './helpers/cli.ts';
import { connectHarness, type TemporalHarness } from './helpers/temporal.ts';
import { tempDir } from './helpers/temp.ts';

const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
const dir = tempDir('cutpoint-catalogue-');
const RUNNING_ID = `cat-running-${Date.now()}`;
let t: TemporalHarness;

async function addBackup(id: string, cluster: string, status: BackupStatus, startedAt: string, finishedAt: string | null): Promise<void> {
  const repo = fsRepository(dir);
  const rsNames = cluster === 'shardA' ? ['cfg', 'shard0'] : [cluster];
  const m: ClusterManifest = {
    format: 'cutpoint/v1',
    id,
    cluster,
    status: 'running',
    startedAt,
    finishedAt: null,
    commonTimestamp: null,
    balancerWasEnabled: cluster === 'shardA' ? true : null,
    bytes: 0,
    replicaSets: rsNames.map((name) => ({ name, configServer: name === 'cfg', node: '127.0.0.1:27017' })),
  };
  await repo.writeClusterManifest(m);
  if (status === 'running') return;
  const t0 = Math.floor(Date.parse(startedAt) / 1000);
  for (const name of rsNames) {
    await repo.storage.writeFile(repo.dataFilePath(id, name, 'collection-0-1.wt'), 'x'.repeat(4096));
    await repo.storage.writeFile(repo.dataFilePath(id, name, 'journal/WiredTigerLog.0000000001'), 'j'.repeat(100));
    if (status === 'complete') {
      await repo.writeReplicaSetManifest(id, {
        format: 'cutpoint/v1',
        name,
        node: '127.0.0.1:27017',
        backupId: '7d3c4a1e-0000-4000-8000-000000000001',
        dbpath: `/data/${name}`,
        oplogStart: { t: t0 - 10, i: 1 },
        oplogEnd: { t: t0, i: 2 },
        checkpointTimestamp: { t: t0 - 5, i: 1 },
        extendedTo: { t: t0 + 1, i: 1 },
        files: [
          { path: 'collection-0-1.wt', size: 4096, sha256: 'a'.repeat(64), kind: 'data' },
          { path: 'journal/WiredTigerLog.0000000001', size: 100, sha256: 'b'.repeat(64), kind: 'journal' },
        ],
      });
    }
  }
  await repo.writeClusterManifest({
    ...m,
    status,
    finishedAt,
    commonTimestamp: status === 'complete' ? { t: t0 + 1, i: 1 } : null,
    bytes: rsNames.length * 4196,
    ...(status === 'complete' ? {} : { error: { code: status === 'failed' ? 'CURSOR_LOST' : 'CANCELLED', message: status } }),
  });
}

beforeAll(async () => {
  t = await connectHarness();
  await fsRepository(dir).init();
  await addBackup('c1', 'rs0', 'complete', '2026-03-01T06:00:00.000Z', '2026-03-01T06:01:30.000Z');
  await addBackup('c2', 'rs0', 'complete', '2026-03-02T06:00:00.000Z', '2026-03-02T06:02:00.000Z');
  await addBackup('c3', 'rs0', 'complete', '2026-03-02T07:00:00.000Z', '2026-03-02T07:00:45.000Z');
  await addBackup('c4', 'rs0', 'complete', '2026-03-03T06:00:00.000Z', '2026-03-03T06:05:00.000Z');
  await addBackup('f1', 'rs0', 'failed', '2026-03-03T08:00:00.000Z', '2026-03-03T08:00:10.000Z');
  await addBackup('x1', 'rs0', 'cancelled', '2026-03-03T09:00:00.000Z', '2026-03-03T09:00:10.000Z');
  await addBackup('s1', 'rs0', 'running', '2026-03-03T10:00:00.000Z', null);
  await addBackup(RUNNING_ID, 'rs0', 'running', '2026-03-03T11:00:00.000Z', null);
  await addBackup('o1', 'shardA', 'complete', '2026-02-01T06:00:00.000Z', '2026-02-01T06:10:00.000Z');
  // A workflow that runs (nobody polls its task queue): the manifest of RUNNING_ID is not stale.
  await t.client.workflow.start('clusterBackup', { taskQueue: `nobody-${Date.now()}`, workflowId: RUNNING_ID, args: [{}] });
});

afterAll(async () => {
  await t?.client.workflow
    .getHandle(RUNNING_ID)
    .terminate('test done')
    .catch(() => undefined);
  await t?.close();
});

interface Entry {
  id: string;
  cluster: string;
  status: string;
  commonTimestamp: unknown;
  bytes: number;
  durationSecs: number | null;
}
const statuses = (backups: Entry[]) => Object.fromEntries(backups.map((b) => [b.id, b.status]));

describe('cutpoint list / describe', () => {
  it('list --json: every backup oldest first, running manifests checked against Temporal (stale vs running)', async () => {
    const r = await runCli(['list', '--repo', dir, '--json'], env());
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const c = JSON.parse(r.stdout) as { backups: Entry[]; problems: unknown[]; temporal: string };
    expect(c.temporal).toBe('checked');
    expect(c.problems).toEqual([]);
    expect(c.backups.map((b) => b.id)).toEqual(['o1', 'c1', 'c2', 'c3', 'c4', 'f1', 'x1', 's1', RUNNING_ID]);
    expect(statuses(c.backups)).toEqual({ o1: 'complete', c1: 'complete', c2: 'complete', c3: 'complete', c4: 'complete', f1: 'failed', x1: 'cancelled', s1: 'stale', [RUNNING_ID]: 'running' });
    expect(c.backups.find((b) => b.id === 'c1')).toMatchObject({ cluster: 'rs0', bytes: 4196, durationSecs: 90, commonTimestamp: { t: expect.any(Number), i: 1 } });
    expect(c.backups.find((b) => b.id === 's1')).toMatchObject({ durationSecs: null, commonTimestamp: null });
  });

  it('list --offline (or without Temporal) says running?; --cluster filters; text is a table', async () => {
    const off = await runCli(['list', '--repo', dir, '--json', '--offline', '--cluster', 'rs0']);
    expect(off.code, off.stderr).toBe(0);
    const c = JSON.parse(off.stdout) as { backups: Entry[]; temporal: string };
    expect(c.temporal).toBe('offline');
    expect(c.backups.map((b) => b.id)).not.toContain('o1');
    expect(statuses(c.backups)).toMatchObject({ s1: 'running?', [RUNNING_ID]: 'running?' });
    // An unreachable Temporal falls back to the same, with a warning on stderr.
    const down = await runCli(['list', '--repo', dir, '--cluster', 'shardA'], { TEMPORAL_ADDRESS: '127.0.0.1:1', CUTPOINT_LOG_LEVEL: 'warn' });
    expect(down.code, down.stderr).toBe(0);
    const lines = down.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+CLUSTER\s+STATUS\s+KIND\s+COMMON TIMESTAMP\s+SIZE\s+DURATION\s+STARTED$/);
    expect(lines[1]).toMatch(/^o1\s+shardA\s+complete\s+full\s+Timestamp\(\d+, 1\)\s+8\.2 KiB\s+10m00s\s+2026-02-01T06:00:00\.000Z$/);
    expect(lines).toHaveLength(2);
  });

  it('describe --json adds the replica sets from their manifests; an unknown id is BACKUP_NOT_FOUND (exit 2)', async () => {
    const r = await runCli(['describe', 'o1', '--repo', dir, '--json'], env());
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(d).toMatchObject({ id: 'o1', cluster: 'shardA', status: 'complete', balancerWasEnabled: true, bytes: 8392, durationSecs: 600 });
    const t0 = Date.parse('2026-02-01T06:00:00.000Z') / 1000;
    expect(d.replicaSets).toEqual([
      { name: 'cfg', configServer: true, node: '127.0.0.1:27017', files: 2, bytes: 4196, oplogStart: { t: t0 - 10, i: 1 }, oplogEnd: { t: t0, i: 2 }, checkpointTimestamp: { t: t0 - 5, i: 1 }, extendedTo: { t: t0 + 1, i: 1 } },
      { name: 'shard0', configServer: false, node: '127.0.0.1:27017', files: 2, bytes: 4196, oplogStart: { t: t0 - 10, i: 1 }, oplogEnd: { t: t0, i: 2 }, checkpointTimestamp: { t: t0 - 5, i: 1 }, extendedTo: { t: t0 + 1, i: 1 } },
    ]);
    const failed = await runCli(['describe', 'f1', '--repo', dir], env());
    expect(failed.stdout).toContain('backup f1 of rs0: failed');
    expect(failed.stdout).toContain('error CURSOR_LOST: failed');
    expect(failed.stdout).toContain('rs0 from 127.0.0.1:27017: no manifest');
    const missing = await runCli(['describe', 'nope', '--repo', dir, '--offline']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('BACKUP_NOT_FOUND');
  });
});

describe('cutpoint prune', () => {
  const args = ['prune', '--repo', dir, '--cluster', 'rs0', '--keep-daily', '2', '--json'];
  const KEEP = ['c4', 'c3', RUNNING_ID];
  const REMOVE = ['c1', 'c2', 'f1', 'x1', 's1'];

  it('--dry-run lists what would go and why, and removes nothing', async () => {
    const r = await runCli([...args, '--dry-run'], env());
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout) as { dryRun: boolean; removed: string[]; clusters: Array<{ cluster: string; keep: Array<{ id: string; reasons: string[] }>; remove: Array<{ id: string; reasons: string[] }> }> };
    expect(p.dryRun).toBe(true);
    expect(p.removed).toEqual([]);
    expect(p.clusters).toHaveLength(1);
    const [c] = p.clusters;
    expect(c!.keep.map((x) => x.id).sort()).toEqual([...KEEP].sort());
    expect(c!.remove.map((x) => x.id).sort()).toEqual([...REMOVE].sort());
    const why = Object.fromEntries([...c!.keep, ...c!.remove].map((x) => [x.id, x.reasons.join('; ')]));
    expect(why).toMatchObject({
      c4: 'daily 2026-03-03; newest complete backup',
      c3: 'daily 2026-03-02',
      c2: 'complete, kept by no rule',
      f1: 'failed more than 24h ago',
      s1: expect.stringContaining('stale running backup'),
      [RUNNING_ID]: 'running',
    });
    expect(readdirSync(join(dir, 'backups')).sort()).toEqual([...KEEP, ...REMOVE, 'o1'].sort());
    const text = await runCli(['prune', '--repo', dir, '--cluster', 'rs0', '--keep-daily', '2', '--dry-run'], env());
    expect(text.stdout).toContain('cluster rs0: keep 3, would remove 5');
    expect(text.stdout).toMatch(/would remove c2 \(complete, 2026-03-02T06:02:00\.000Z\): complete, kept by no rule/);
  });

  it('refuses bad policies with exit 2', async () => {
    const none = await runCli(['prune', '--repo', dir, '--dry-run', '--offline']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('at least one keep rule');
    const neg = await runCli(['prune', '--repo', dir, '--keep-last', '-1', '--offline']);
    expect(neg.code).toBe(2);
  });

  it('one prune per repository: a held lock refuses with --if-locked fail (REPO_LOCKED, naming host and pid); a dead holder is taken over; by default a prune waits', async () => {
    const release = await acquireLock(new FsStorage(dir), 'prune');
    const refused = await runCli([...args, '--if-locked', 'fail'], env());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('REPO_LOCKED');
    expect(refused.stderr).toContain(`pid ${process.pid}`);
    await release();
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
    // A lock left by a process that is gone (a crashed prune) is stale.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    await new FsStorage(dir).writeFile(lockPath('prune', 'x'), JSON.stringify({ name: 'prune', host: hostname(), pid: dead, time: new Date().toISOString(), token: 'x' }));
    // The empty directory a removal that crashed after its cluster manifest leaves behind is finished too.
    await mkdir(join(dir, 'backups', 'leftover'));
    const r = await runCli(args, env());
    expect(r.code, r.stderr).toBe(0);
    const p = JSON.parse(r.stdout) as { removed: string[] };
    expect(p.removed.sort()).toEqual([...REMOVE].sort());
    // Exactly what the policy keeps is left, the other cluster untouched, and the lock released.
    expect(readdirSync(join(dir, 'backups')).sort()).toEqual([...KEEP, 'o1'].sort());
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
    const list = JSON.parse((await runCli(['list', '--repo', dir, '--json'], env())).stdout) as { backups: Entry[] };
    expect(list.backups.map((b) => b.id)).toEqual(['o1', 'c3', 'c4', RUNNING_ID]);
    // A second prune with the same policy finds nothing more to remove.
    const again = JSON.parse((await runCli(args, env())).stdout) as { removed: string[] };
    expect(again.removed).toEqual([]);
    // By default (--if-locked wait) a prune waits while the lock is held (here a backup's shared one), then runs.
    const backup = await acquireLock(new FsStorage(dir), 'backup', { kind: 'shared' });
    let done = false;
    const waiting = runCli(args, env()).then((r) => ((done = true), r));
    await new Promise((r) => setTimeout(r, 2500));
    expect(done).toBe(false);
    await backup();
    const waited = await waiting;
    expect(waited.code, waited.stderr).toBe(0);
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
  });
});
