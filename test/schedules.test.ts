/**
 * Schedules and the one-backup-per-cluster rule, on the dev server and a simulated replica set:
 * - a second backup of a cluster fails with CLUSTER_BUSY naming the running one (nothing written for it), or with
 *   ifBusy 'wait' waits in phase `waiting` and runs once the first ends (here: is cancelled);
 * - a schedule created with the CLI every second takes backups that never overlap (the server skips the ticks that
 *   fall during a run), each followed by retention: once paused, the repository holds exactly the two newest
 *   complete backups (`--keep-last 2`); list / describe / pause / delete through the CLI;
 * - a scheduled run that meets a manual backup of the cluster waits for it (schedules default to ifBusy 'wait').
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ScheduledBackupResult } from '../common/schedule-types.ts';
import { backupProgress, backupResult, cancelBackup, startBackup } from '../api/backups.ts';
import { listBackups } from '../api/catalogue.ts';
import { createSchedule, deleteSchedule, describeSchedule, triggerSchedule, type ScheduleInfo } from '../api/schedules.ts';
import { eventually, sleep } from '../sim/testkit.ts';
import { openBackupCursors } from './helpers/backup-checks.ts';
import { runCli } from './helpers/cli.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
const uri = () => stack.cluster.describe().shards[0].uri as string;
const newRepo = () => tempDir('cutpoint-sched-repo-');
const suffix = Date.now().toString(36);
const schedules: string[] = [];

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 2, checkpointMs: 1000 });
});
afterAll(async () => {
  // A schedule left behind would keep starting runs in the tests that follow.
  for (const s of schedules) await deleteSchedule(stack.h.client, s).catch(() => undefined);
  await stack?.stop();
});

/** A backup's summary, failed and cancelled ones included. */
const outcome = (id: string) => backupResult(stack.h.client, id);

/** A backup slowed to 64 KiB/s: it stays in its copy until cancelled. */
async function slowBackup(repo: string): Promise<string> {
  const { id } = await startBackup(stack.h.client, { uri: uri(), repo, bytesPerSec: 64 * 1024, keepAliveIntervalMs: 1000 });
  await eventually(async () => (await backupProgress(stack.h.client, id)).phase === 'copy', 60_000, `${id} copying`);
  return id;
}

describe('one backup per cluster at a time', () => {
  it('a second backup fails naming the first, or waits for it with ifBusy wait', async () => {
    const repo = newRepo();
    const a = await slowBackup(repo);

    const { id: b } = await startBackup(stack.h.client, { uri: uri(), repo, ifBusy: 'fail' });
    const ob = await outcome(b);
    expect(ob.status).toBe('failed');
    expect(ob.error?.code).toBe('CLUSTER_BUSY');
    expect(ob.error?.message).toContain(a);
    expect(ob.error?.message).toContain('--if-busy wait');
    // Refused before anything was written or opened for it.
    expect(existsSync(join(repo, 'backups', b))).toBe(false);

    const { id: c } = await startBackup(stack.h.client, { uri: uri(), repo, ifBusy: 'wait', keepAliveIntervalMs: 1000 });
    await eventually(async () => (await backupProgress(stack.h.client, c)).phase === 'waiting', 30_000, `${c} waiting`);
    await sleep(3000);
    // Still waiting while the first copies: one cursor open, the first's.
    expect((await backupProgress(stack.h.client, c)).phase).toBe('waiting');
    expect((await backupProgress(stack.h.client, a)).status).toBe('running');
    expect(existsSync(join(repo, 'backups', c))).toBe(false);
    expect(await openBackupCursors(stack.cluster)).toHaveLength(1);

    await cancelBackup(stack.h.client, a, 'make way');
    expect((await outcome(a)).status).toBe('cancelled');
    const oc = await outcome(c);
    expect(oc.status).toBe('complete');
    expect(await openBackupCursors(stack.cluster)).toEqual([]);
  });
});

describe('schedules', () => {
  it('takes non-overlapping incremental backups every second (a base every two), each followed by retention, and keeps the newest two', async () => {
    const name = `every-second-${suffix}`;
    schedules.push(name);
    const repo = newRepo();
    const created = await runCli(['schedule', 'create', name, '--uri', uri(), '--repo', repo, '--every', '1s', '--keep-last', '2', '--keep-alive-ms', '1000', '--incremental', '--block-size-mb', '1', '--base-every', '2', '--json'], env());
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const info = JSON.parse(created.stdout.trim()) as ScheduleInfo;
    expect(info).toMatchObject({ name, spec: 'every 1s', paused: false, repo, ifBusy: 'wait', incremental: { baseEvery: 2 }, retention: { keepLast: 2 }, overlap: 'SKIP' });

    // Three finished runs: at least one more than retention keeps.
    const finished = (await eventually(
      async () => {
        const d = await describeSchedule(stack.h.client, name);
        const done = d.recent.filter((r) => r.status === 'completed');
        return done.length >= 3 ? d : undefined;
      },
      120_000,
      'three scheduled runs completed',
    ))!;
    expect((await runCli(['schedule', 'pause', name, '--note', 'test over'], env())).code).toBe(0);
    const paused = (await eventually(
      async () => {
        const d = await describeSchedule(stack.h.client, name);
        return d.running.length === 0 ? d : undefined;
      },
      60_000,
      'the last run to end',
    ))!;
    expect(paused.paused).toBe(true);
    expect(paused.note).toBe('test over');
    // Runs last longer than the interval: the server skipped ticks instead of overlapping.
    expect(paused.skippedOverlap).toBeGreaterThan(0);

    // Never two runs at once.
    const runs = await Promise.all(
      paused.recent.map(async (r) => {
        const d = await stack.h.client.workflow.getHandle(r.workflowId).describe();
        return { id: r.backupId, start: d.startTime.getTime(), close: d.closeTime?.getTime() ?? Infinity, status: d.status.name };
      }),
    );
    runs.sort((x, y) => x.start - y.start);
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.start).toBeGreaterThanOrEqual(runs[i - 1]!.close);

    // Each run: its backup (id from the schedule name and time), then retention over the cluster.
    const completed = paused.recent.filter((r) => r.status === 'completed');
    expect(completed.length).toBeGreaterThanOrEqual(finished.recent.filter((r) => r.status === 'completed').length);
    const kinds: Array<{ id: string; kind: string; parent: string | null }> = [];
    for (const r of completed) {
      expect(r.backupId).toMatch(new RegExp(`^${name}-\\d{8}T\\d{6}Z$`));
      const res = await stack.h.client.workflow.getHandle(r.workflowId).result() as ScheduledBackupResult;
      expect(res.backup.id).toBe(r.backupId);
      expect(res.backup.status).toBe('complete');
      expect(res.retention?.clusters.map((c) => c.cluster)).toEqual(['rs0']);
      kinds.push({ id: res.backup.id, kind: res.backup.kind, parent: res.backup.parent });
    }
    // The chain: a base, then an incremental of it, then (a base every two) a base again.
    kinds.sort((x, y) => x.id.localeCompare(y.id));
    const incrementals = kinds.filter((k) => k.kind === 'incremental');
    expect(incrementals.length).toBeGreaterThan(0);
    for (const k of kinds) expect(['base', 'incremental']).toContain(k.kind);
    kinds.forEach((k, i) => {
      if (k.kind === 'incremental' && i > 0) expect(k.parent).toBe(kinds[i - 1]!.id);
      if (i > 0 && kinds[i - 1]!.kind === 'incremental') expect(k.kind, 'a base every two').toBe('base');
    });
    // What retention leaves: exactly the two newest complete backups, nothing else.
    const catalogue = await listBackups(repo, { client: stack.h.client });
    const newestTwo = completed.map((r) => r.backupId).sort().slice(-2);
    expect(catalogue.backups.map((b) => `${b.id}:${b.status}`).sort()).toEqual(newestTwo.map((id) => `${id}:complete`));
    expect(catalogue.problems).toEqual([]);

    // The CLI's list and describe.
    const listed = await runCli(['schedule', 'list', '--json'], env());
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { schedules: ScheduleInfo[] }).schedules.map((s) => s.name)).toContain(name);
    const described = await runCli(['schedule', 'describe', name], env());
    expect(described.code).toBe(0);
    expect(described.stdout).toContain(`schedule ${name}: every 1s, PAUSED (test over)`);
    expect(described.stdout).toContain(`${newestTwo[1]}  completed`);

    const deleted = await runCli(['schedule', 'delete', name], env());
    expect(deleted.code).toBe(0);
    const gone = await runCli(['schedule', 'describe', name], env());
    expect(gone.code).toBe(2);
    expect(gone.stderr).toContain(`no schedule '${name}'`);
  });

  it('a scheduled run waits for a manual backup of the same cluster, then runs', async () => {
    const name = `hourly-${suffix}`;
    schedules.push(name);
    const repo = newRepo();
    await createSchedule(stack.h.client, { name, every: '1h', backup: { uri: uri(), repo, keepAliveIntervalMs: 1000 }, retention: { keepLast: 5 }, paused: true });
    const manual = await slowBackup(repo);
    await triggerSchedule(stack.h.client, name);
    const running = (await eventually(async () => (await describeSchedule(stack.h.client, name)).running[0], 30_000, 'the triggered run'))!;
    await eventually(async () => (await backupProgress(stack.h.client, running).catch(() => undefined))?.phase === 'waiting', 30_000, `${running} waiting`);
    // A second trigger while it runs is refused (the schedule would drop it silently).
    await expect(triggerSchedule(stack.h.client, name)).rejects.toMatchObject({ code: 'CLUSTER_BUSY' });

    await cancelBackup(stack.h.client, manual, 'make way for the schedule');
    const d = (await eventually(
      async () => {
        const x = await describeSchedule(stack.h.client, name);
        return x.running.length === 0 && x.recent.length === 1 ? x : undefined;
      },
      60_000,
      'the scheduled run to end',
    ))!;
    expect(d.recent[0]!.status).toBe('completed');
    expect((await outcome(running)).status).toBe('complete');
    // Retention cleaned nothing it should keep: the cancelled manual backup is recent (kept for inspection).
    const catalogue = await listBackups(repo, { client: stack.h.client });
    expect(catalogue.backups.map((b) => `${b.id}:${b.status}`).sort()).toEqual([`${manual}:cancelled`, `${running}:complete`].sort());
  });

  it('refuses bad schedules naming the problem', async () => {
    const base = { backup: { uri: uri(), repo: newRepo() }, retention: { keepLast: 1 } };
    await expect(createSchedule(stack.h.client, { ...base, name: `cron-${suffix}`, cron: 'not a cron' })).rejects.toMatchObject({ code: 'BAD_USAGE', message: expect.stringMatching(/--cron: .*fields/) });
    const noKeep = await runCli(['schedule', 'create', `nokeep-${suffix}`, '--uri', uri(), '--repo', newRepo(), '--every', '1h'], env());
    expect(noKeep.code).toBe(2);
    expect(noKeep.stderr).toContain('give at least one keep rule');
  });
});
