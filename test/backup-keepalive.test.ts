/**
 * A backup cursor that dies behind our back — its session expired between keep-alives, or killed by an operator
 * (killCursors, killSessions) — fails the backup with CURSOR_LOST: never a `complete` manifest over a copy whose
 * checkpoint was unpinned (checkpoints every 200 ms here reuse its blocks at once).
 */
import { Long, UUID } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenedCursor } from '../activities/agent/backup-cursor.ts';
import { sessionWithId } from '../activities/agent/backup-session.ts';
import { backupProgress, backupResult, startBackup } from '../api/backups.ts';
import { direct, eventually } from '../sim/testkit.ts';
import { activitiesOf, expectEndedWithoutData, openBackupCursors } from './helpers/backup-checks.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const SESSION_TIMEOUT_MS = 3000;
const repo = () => tempDir('cutpoint-keepalive-repo-');
const uri = () => stack.cluster.describe().shards[0].uri as string;

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 2, checkpointMs: 200, sessionTimeoutMs: SESSION_TIMEOUT_MS, sessionRefreshMs: 250 });
});
afterAll(async () => {
  await stack?.stop();
});

/** Starts a slow backup and waits for its copy to be under way; returns its id and the cursor it opened. */
async function copying(dir: string, keepAliveIntervalMs: number): Promise<{ id: string; cursor: OpenedCursor }> {
  // No re-open after a lost cursor (cursorReopens 0): the loss itself must end the backup, loudly.
  const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, bytesPerSec: 40_000, keepAliveIntervalMs, batchMaxFiles: 1, cursorReopens: 0 });
  await eventually(async () => {
    const p = await backupProgress(stack.h.client, id, { inFlight: true });
    return p.phase === 'copy' && p.bytesDone > 0;
  }, 60_000, 'the copy to start');
  const open = (await activitiesOf(stack.h.client, `${id}.rs0`)).find((a) => a.type === 'openBackupCursor');
  return { id, cursor: open!.result as OpenedCursor };
}

async function expectCursorLost(dir: string, id: string): Promise<void> {
  const summary = await backupResult(stack.h.client, id);
  expect(summary.status).toBe('failed');
  expect(summary.error?.code).toBe('CURSOR_LOST');
  expect(summary.error?.message).toMatch(/backup cursor on 127\.0\.0\.1:\d+ lost/);
  const cm = expectEndedWithoutData(dir, id, 'failed');
  expect(cm.error?.code).toBe('CURSOR_LOST');
  expect(await openBackupCursors(stack.cluster)).toEqual([]);
}

describe('keep-alive failure', () => {
  it('a keep-alive interval inside the session timeout keeps the cursor through a long copy', async () => {
    const dir = repo();
    const { id } = await startBackup(stack.h.client, { uri: uri(), repo: dir, bytesPerSec: 100_000, keepAliveIntervalMs: 1000 });
    const summary = await backupResult(stack.h.client, id);
    // The control for the next test: same cluster, same timeouts, only the interval differs.
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    expect(Date.parse(summary.finishedAt) - Date.parse(summary.startedAt)).toBeGreaterThan(2 * SESSION_TIMEOUT_MS);
  });

  it('the session expires between getMores: CURSOR_LOST, no complete manifest', async () => {
    const dir = repo();
    // getMore every 8 s, the session dies after 3 s idle.
    const { id } = await copying(dir, 8000);
    await expectCursorLost(dir, id);
  });

  it('killSessions on the cursor session: CURSOR_LOST', async () => {
    const dir = repo();
    const { id, cursor } = await copying(dir, 1000);
    const c = direct(cursor.node);
    try {
      await c.db('admin').command({ killSessions: [{ id: new UUID(cursor.sessionId) }] });
    } finally {
      await c.close();
    }
    await expectCursorLost(dir, id);
  });

  it('killCursors on the backup cursor: CURSOR_LOST', async () => {
    const dir = repo();
    const { id, cursor } = await copying(dir, 1000);
    const c = direct(cursor.node);
    try {
      const r = await c.db('admin').command({ killCursors: '$cmd.aggregate', cursors: [Long.fromString(cursor.cursorId)] }, { session: sessionWithId(c, cursor.sessionId) });
      expect(r.cursorsKilled).toHaveLength(1);
    } finally {
      await c.close();
    }
    await expectCursorLost(dir, id);
  });
});
