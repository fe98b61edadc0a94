/**
 * `extendBackupCursor` against the simulator, for what a real PSMDB needs of it (docs/psmdb-behaviour.md section 4):
 * - the extend's wait is never interrupted: with the node behind, a deadline or a cancel ends the activity on the
 *   client's side (NODE_BEHIND, or cancelled) while no extend is in flight, so a server of the early builds, where a
 *   failed extend wait is fatal (`simExtendWaitFailureFatal`), stays up;
 * - the extend's result is read to the end of its cursor: a busy node lists more journal files than one batch holds.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { type Document, type MongoClient, type Timestamp, UUID } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { direct, sleep, startTestCluster } from '../../sim/testkit.ts';
import { fsRepository } from '../../repository/repository.ts';
import { fromBsonTimestamp } from '../../lib/bson-timestamp.ts';
import { tempDir } from '../../test/helpers/temp.ts';
import { backupCursorActivities, type OpenedCursor } from './backup-cursor.ts';

type Extended = { added: number; files: number };

const LAG_MS = 3000;
let lagging: SimCluster;
let busy: SimCluster;

beforeAll(async () => {
  [lagging, busy] = await Promise.all([
    // The secondary applies the primary's oplog 3 s late.
    startTestCluster({ replsetOnly: true, members: 2, lagMs: LAG_MS }),
    // 4 KiB journal files: a few hundred writes fill more than a hundred of them.
    startTestCluster({ replsetOnly: true, members: 1, logFileSize: 4096 }),
  ]);
});
afterAll(async () => {
  await Promise.all([lagging?.stop(), busy?.stop()]);
});

/** The agent's cursor activities for `host`, and an input for them. */
function agentOf(host: string) {
  const acts = backupCursorActivities({ mongod: host, repository: (p) => fsRepository(p) });
  const input = { target: { uri: `mongodb://${host}/?replicaSet=rs0`, credentials: { kind: 'none' as const } }, backupId: `b-${host.replace(/\W/g, '-')}`, replicaSet: 'rs0', repo: tempDir('cutpoint-extend-') };
  return { acts, input };
}

async function run<T>(fn: (...args: never[]) => Promise<T>, arg: unknown, env = new MockActivityEnvironment()): Promise<T> {
  return (await env.run(fn as (a: unknown) => Promise<T>, arg)) as T;
}

async function command(client: MongoClient, cmd: Document): Promise<Document> {
  return client.db('admin').command(cmd);
}

/** A write on the primary; its timestamp. */
async function write(primary: MongoClient, doc: Document): Promise<Timestamp> {
  await primary.db('app').collection('extend').insertOne(doc);
  return (await command(primary, { hello: 1 })).lastWrite.opTime.ts as Timestamp;
}

describe('extendBackupCursor', () => {
  it('never interrupts the server: a node behind the target fails NODE_BEHIND or ends cancelled on the client side; an early build stays up', async () => {
    const [p, s] = lagging.shards[0]!.localNodes.map((n) => ({ address: n.address })) as [{ address: string }, { address: string }];
    const primary = direct(p.address);
    const secondary = direct(s.address);
    const { acts, input } = agentOf(s.address);
    try {
      const opened = await run<OpenedCursor>(acts.openBackupCursor, input);
      // As early PSMDB builds: a failed extend wait (maxTimeMS, the client gone) aborts mongod.
      await command(secondary, { configureFailPoint: 'simExtendWaitFailureFatal', mode: 'alwaysOn' });
      const extendTo = async (maxWaitMs: number) => ({ ...input, serverBackupId: opened.serverBackupId, to: fromBsonTimestamp(await write(primary, { at: Date.now() }))!, maxWaitMs });

      // A deadline shorter than the lag.
      await expect(run(acts.extendBackupCursor, await extendTo(500))).rejects.toMatchObject({
        type: 'NODE_BEHIND',
        message: expect.stringContaining(`${s.address}: its majority-committed point did not reach the common timestamp`),
      });
      await sleep(300);
      expect((await command(secondary, { hello: 1 })).secondary).toBe(true);

      // A cancel while the node is behind.
      const env = new MockActivityEnvironment();
      const cancelled = run(acts.extendBackupCursor, await extendTo(60_000), env).then(
        () => 'extended',
        (e: unknown) => e,
      );
      await sleep(500);
      env.cancel();
      expect(String(await cancelled)).toMatch(/cancel/i);
      await sleep(300);
      expect((await command(secondary, { hello: 1 })).secondary).toBe(true);

      // Given the time, the same node gets there and the extend lists its journal files.
      const done = await run<Extended>(acts.extendBackupCursor, await extendTo(30_000));
      expect(done.files).toBeGreaterThan(0);
      expect((await command(secondary, { serverStatus: 1 })).storageEngine.backupCursorOpen).toBe(true);
      await run(acts.closeBackupCursor, { ...input, cursorId: opened.cursorId, sessionId: opened.sessionId });
    } finally {
      await command(secondary, { configureFailPoint: 'simExtendWaitFailureFatal', mode: 'off' }).catch(() => undefined);
      await Promise.all([primary.close(), secondary.close()]);
    }
  });

  it('reads the result to the end of its cursor: more than one batch (101) of journal files', async () => {
    const host = busy.shards[0]!.localNodes[0]!.address;
    const client = direct(host);
    const { acts, input } = agentOf(host);
    try {
      const opened = await run<OpenedCursor>(acts.openBackupCursor, input);
      // About two writes per 4 KiB journal file.
      const pad = 'x'.repeat(1500);
      let last: Timestamp | undefined;
      for (let i = 0; i < 260; i++) last = await write(client, { i, pad });
      const r = await run<Extended>(acts.extendBackupCursor, { ...input, serverBackupId: opened.serverBackupId, to: fromBsonTimestamp(last!)!, maxWaitMs: 30_000 });
      expect(r.added).toBeGreaterThan(101);
      // The server's own answer, read to its end here: extends are cumulative, so this one lists the same files, and
      // the one it switched to.
      const listed = await client
        .db('admin')
        .aggregate([{ $backupCursorExtend: { backupId: new UUID(opened.serverBackupId), timestamp: last } }])
        .toArray();
      const entries = await fsRepository(input.repo).fileList(input.backupId, 'rs0').read(0, 100_000);
      const journal = new Set(entries.filter((e) => e.kind === 'journal').map((e) => e.path));
      const missing = listed.map((d) => String(d.filename)).map((f) => f.slice(f.lastIndexOf('/journal/') + 1)).filter((f) => !journal.has(f));
      expect(listed.length).toBeGreaterThan(101);
      expect(missing.length, missing.join(' ')).toBeLessThanOrEqual(1);
      await run(acts.closeBackupCursor, { ...input, cursorId: opened.cursorId, sessionId: opened.sessionId });
    } finally {
      await client.close();
    }
  });
});
