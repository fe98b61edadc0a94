/**
 * Replication between processes: a replica set of the in-process cluster and a member running as its own
 * `sim/bin/mongod` process (as a restore or a seed starts one), added with replSetReconfig through the driver. The
 * member learns the config from the set's heartbeats, syncs from the primary's oplog over the wire and reports
 * SECONDARY; the primary sees it through heartbeats. A member whose oplog does not reach the primary's oldest entry
 * is too stale and goes RECOVERING instead.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Document, MongoClient, Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/ports.ts';
import type { SimCluster } from '../cluster/cluster.ts';
import { direct, eventually, runMongod, sleep, startTestCluster, stopMongod, type MongodProcess } from '../testkit.ts';
import { compareTs } from './clock.ts';
import { NO_SYNC_SOURCE_MESSAGE, TOO_STALE_MESSAGE } from './oplog-sync.ts';

let cluster: SimCluster;
/** A dbpath whose whole oplog is older than anything the cluster writes, and that holds no replica-set config. */
let staleDbpath: string;
const running: MongodProcess[] = [];

async function withClient<T>(host: string, fn: (c: MongoClient) => Promise<T>): Promise<T> {
  const c = direct(host);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** A member of rs0 on its own, with some writes; then its config removed (a standalone start), as a seed does. */
async function prepareStaleDbpath(): Promise<Timestamp> {
  const dir = mkdtempSync(join(tmpdir(), 'cutpoint-stale-member-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const alone = await runMongod(['--dbpath', dir, '--port', String(port), '--replSet', 'rs0']);
  await withClient(host, async (c) => {
    await c.db('admin').command({ replSetInitiate: {} });
    await eventually(async () => (await c.db('admin').command({ hello: 1 })).isWritablePrimary === true, 10_000, 'the lone member to be primary');
    await c.db('app').collection('things').insertMany([{ _id: 'old-1' as never }, { _id: 'old-2' as never }]);
  });
  expect(await stopMongod(alone)).toBe(0);
  const standalone = await runMongod(['--dbpath', dir, '--port', String(port)]);
  const top = await withClient(host, async (c) => {
    await c.db('local').collection('system.replset').deleteMany({});
    const [last] = await c.db('local').collection('oplog.rs').find({}, { sort: { ts: -1 }, limit: 1 }).toArray();
    return last!.ts as Timestamp;
  });
  expect(await stopMongod(standalone)).toBe(0);
  staleDbpath = dir;
  return top;
}

/** Adds `member` to rs0 with replSetReconfig on the primary, through the driver. */
async function addMember(primary: string, member: Document): Promise<void> {
  await withClient(primary, async (c) => {
    const admin = c.db('admin');
    const { config } = (await admin.command({ replSetGetConfig: 1 })) as { config: Document };
    const members = config.members as Document[];
    const _id = Math.max(...members.map((m) => Number(m._id))) + 1;
    await admin.command({ replSetReconfig: { ...config, version: Number(config.version) + 1, members: [...members, { _id, ...member }] } });
  });
}

async function memberOnPrimary(primary: string, host: string): Promise<Document | undefined> {
  return withClient(primary, async (c) => {
    const status = await c.db('admin').command({ replSetGetStatus: 1 });
    return (status.members as Document[]).find((m) => m.name === host);
  });
}

beforeAll(async () => {
  const staleTop = await prepareStaleDbpath();
  // The set's first oplog entry must be newer than the stale member's last one: a later second of the clock.
  while (Math.floor(Date.now() / 1000) <= staleTop.high) await sleep(50);
  cluster = await startTestCluster({ replsetOnly: true, members: 3 });
}, 120_000);

afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null) await stopMongod(p);
  await cluster?.stop();
});

describe('a member in another process', () => {
  it('joins by replSetReconfig, learns the config from heartbeats, reports SECONDARY and replicates', async () => {
    const rs = cluster.shards[0]!;
    const primary = rs.primary()!;
    // Its files: a hot backup of a secondary (createBackup), so its oplog overlaps the primary's. The set may be a
    // moment old, its oplog still empty: the secondary first applies a write, or the copy would need an initial sync.
    const secondary = rs.localNodes.find((n) => n !== primary)!;
    await withClient(primary.address, (c) => c.db('app').collection('things').insertOne({ _id: 'before-join' as never }));
    const before = rs.applied(primary);
    await eventually(() => compareTs(rs.applied(secondary), before) >= 0, 10_000, 'the secondary to apply a write');
    const dbpath = mkdtempSync(join(tmpdir(), 'cutpoint-remote-member-'));
    await withClient(secondary.address, (c) => c.db('admin').command({ createBackup: 1, backupDir: dbpath }));
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const member = await runMongod(['--dbpath', dbpath, '--port', String(port), '--replSet', 'rs0']);
    running.push(member);
    // Started with --replSet and no config of its own (the copied one does not name it): it waits.
    expect((await withClient(host, (c) => c.db('admin').command({ hello: 1 }))).secondary).toBe(false);

    await addMember(primary.address, { host });
    const hello = (await eventually(
      async () => {
        const h = await withClient(host, (c) => c.db('admin').command({ hello: 1 }));
        // SECONDARY can come a heartbeat before the primary is known (as on mongod): wait for both.
        return h.secondary === true && h.primary !== undefined ? h : undefined;
      },
      20_000,
      'the new member to report SECONDARY and its primary',
    ))!;
    expect(hello.setName).toBe('rs0');
    expect(hello.isWritablePrimary).toBe(false);
    expect(hello.primary).toBe(primary.address);
    expect([...(hello.hosts as string[])].sort()).toEqual([...rs.config.members.map((m) => m.host)].sort());
    expect(hello.hosts).toContain(host);
    // It stored the config it was sent, as replSetInitiate stores one.
    const stored = await withClient(host, (c) => c.db('local').collection('system.replset').find().toArray());
    expect(stored).toHaveLength(1);
    expect((stored[0]!.members as Document[]).map((m) => m.host)).toContain(host);

    // Writes made after the join reach it.
    await withClient(primary.address, (c) => c.db('app').collection('things').insertOne({ _id: 'after-join' as never, n: 1 }));
    const written = rs.applied(primary);
    await eventually(
      async () => (await withClient(host, (c) => c.db('app').collection('things').findOne({ _id: 'after-join' as never }))) !== null,
      10_000,
      'the write to replicate',
    );
    // The primary sees it healthy, SECONDARY, with an optime at or after that write (heartbeats, every 2 s).
    const seen = (await eventually(
      async () => {
        const m = await memberOnPrimary(primary.address, host);
        return m?.stateStr === 'SECONDARY' && compareTs(m.optime.ts as Timestamp, written) >= 0 ? m : undefined;
      },
      10_000,
      'the primary to see the member SECONDARY and caught up',
    ))!;
    expect(seen.health).toBe(1);
    // Its replSetGetStatus names the primary's members as healthy, learned the same way.
    const own = await withClient(host, (c) => c.db('admin').command({ replSetGetStatus: 1 }));
    expect(own.myState).toBe(2);
    expect((own.members as Document[]).find((m) => m.name === primary.address)?.stateStr).toBe('PRIMARY');

    // A later reconfig reaches it the same way (its config version is older than the primary's heartbeat says).
    await withClient(primary.address, async (c) => {
      const admin = c.db('admin');
      const { config } = (await admin.command({ replSetGetConfig: 1 })) as { config: Document };
      const members = (config.members as Document[]).map((m) => (m.host === host ? { ...m, priority: 0 } : m));
      await admin.command({ replSetReconfig: { ...config, version: Number(config.version) + 1, members } });
    });
    const newer = (await eventually(
      async () => {
        const h = await withClient(host, (c) => c.db('admin').command({ hello: 1 }));
        return h.setVersion === rs.config.version ? h : undefined;
      },
      10_000,
      'the member to learn the newer config',
    ))!;
    expect(newer.passives).toEqual([host]);
    expect(newer.secondary).toBe(true);

    // It stops cleanly (its heartbeats and fetcher end with it); the set then reports it unreachable.
    expect(await stopMongod(member)).toBe(0);
    const down = (await eventually(
      async () => {
        const m = await memberOnPrimary(primary.address, host);
        return m?.health === 0 ? m : undefined;
      },
      10_000,
      'the primary to see the member down',
    ))!;
    expect(down.stateStr).toBe('(not reachable/healthy)');
  });

  it('goes STARTUP2, never SECONDARY, when it has no oplog (it would need an initial sync)', async () => {
    const primary = cluster.shards[0]!.primary()!;
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const member = await runMongod(['--dbpath', mkdtempSync(join(tmpdir(), 'cutpoint-empty-member-')), '--port', String(port), '--replSet', 'rs0']);
    running.push(member);
    await addMember(primary.address, { host, priority: 0, votes: 0 });
    const seen = (await eventually(
      async () => {
        const m = await memberOnPrimary(primary.address, host);
        return m?.stateStr === 'STARTUP2' ? m : undefined;
      },
      15_000,
      'the primary to see the empty member STARTUP2',
    ))!;
    expect(seen.health).toBe(1);
    expect((await withClient(host, (c) => c.db('admin').command({ hello: 1 }))).secondary).toBe(false);
    // Its state on taking the config (mongod's log id 21358) was STARTUP2 already, not SECONDARY for a moment.
    const transitions = member
      .output()
      .split('\n')
      .filter((l) => l.includes('"id":21358'))
      .map((l) => (JSON.parse(l) as { attr: { newState: string } }).attr.newState);
    expect(transitions).toEqual(['STARTUP2']);
    expect(member.output()).toContain('needs an initial sync');
    expect(await stopMongod(member)).toBe(0);
  });

  it('goes RECOVERING, too stale, when its oplog ends before the primary oldest entry', async () => {
    const rs = cluster.shards[0]!;
    const primary = rs.primary()!;
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const member = await runMongod(['--dbpath', staleDbpath, '--port', String(port), '--replSet', 'rs0']);
    running.push(member);
    await addMember(primary.address, { host, priority: 0, votes: 0 });
    const seen = (await eventually(
      async () => {
        const m = await memberOnPrimary(primary.address, host);
        return m?.stateStr === 'RECOVERING' ? m : undefined;
      },
      15_000,
      'the primary to see the stale member RECOVERING',
    ))!;
    expect(seen.health).toBe(1);
    const hello = await withClient(host, (c) => c.db('admin').command({ hello: 1 }));
    expect(hello).toMatchObject({ setName: 'rs0', secondary: false, isWritablePrimary: false });
    const own = await withClient(host, (c) => c.db('admin').command({ replSetGetStatus: 1 }));
    expect(own.myState).toBe(3);
    expect((own.members as Document[]).find((m) => m.self)?.infoMessage).toBe(NO_SYNC_SOURCE_MESSAGE);
    expect(member.output()).toContain(TOO_STALE_MESSAGE);
    // It did not apply anything of the set's history on top of its own.
    await expect(withClient(host, (c) => c.db('app').collection('things').findOne({ _id: 'after-join' as never }))).rejects.toMatchObject({ code: 13436 });
    expect(await stopMongod(member)).toBe(0);
  });
});
