/**
 * Seeding a new member from a backup (`seedMember`, `cutpoint seed`): one replica set's files placed for a new
 * member through its agent, recovered to the replica set's consistent point, its own replica-set config emptied so it
 * takes the set's, and started with `--replSet`: left running to be added to the set, or (`join`) added to it.
 *
 * The join runs replSetReconfig on the running set's primary. The mongod the node controller spawns is another process
 * than the simulated set, which reaches it as mongod does: its heartbeats deliver the config, the new member pulls the
 * primary's oplog from the backup timestamp on over the wire, and the primary reports it SECONDARY. The test then
 * compares the member with the primary at one timestamp after it caught up, while the bank workload keeps writing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../lib/process.ts';
import type { StartedMember } from '../common/restore-types.ts';
import { backupResult, startBackup } from '../api/backups.ts';
import { seedResult, startSeed } from '../api/restores.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import type { Timestamp } from 'mongodb';
import { compareTs } from '../sim/node/clock.ts';
import { eventually } from '../sim/testkit.ts';
import { connect, helloOf, lastRealOplogTs, newMembers, readAccounts, readAccountsAt, startTargetAgents, stopMembers, toTimestamp, useSimMongod } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
let repo: string;
let backup: Awaited<ReturnType<typeof backupResult>>;
const started: StartedMember[] = [];
const agents: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  useSimMongod();
  stack = await startSimStack({ replsetOnly: true, members: 3, checkpointMs: 1000, bank: true });
  repo = tempDir('cutpoint-repo-seed-');
  const uri = stack.cluster.describe().shards[0].uri as string;
  backup = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri, repo, keepAliveIntervalMs: 1000 })).id);
});
afterAll(async () => {
  await stopMembers(started);
  for (const a of agents) await a.stop();
  await stack?.stop();
});

describe('seeding a new member from a backup', () => {
  it('places and recovers the files at the backup timestamp and starts the member waiting for the set config', async () => {
    expect(backup.status).toBe('complete');

    const [member] = await newMembers(1, 'seed');
    agents.push(await startTargetAgents(stack.h, [member!]));
    const { id } = await startSeed(stack.h.client, { backupId: backup.id, repo, replicaSet: 'rs0', member: member! });
    const s = await seedResult(stack.h.client, id);
    started.push(s.member);
    expect(pidAlive(s.member.pid)).toBe(true);
    expect(s.member.oplogTop).toEqual(backup.commonTimestamp);

    // It runs with --replSet rs0 but holds no config of its own: it waits to be added (not a primary of its own).
    const hello = await helloOf(member!.host);
    expect(hello.isWritablePrimary).toBe(false);
    const c = connect(member!.host);
    try {
      expect(await c.db('local').collection('system.replset').countDocuments()).toBe(0);
    } finally {
      await c.close();
    }
    // Its data and oplog are the replica set's at the backup timestamp: what a secondary catches up from.
    expect(await lastRealOplogTs(member!.host)).toEqual(backup.commonTimestamp);
    const verdict = new Oracle(stack.workload!.history).verify([{ name: 'rs0', accounts: await readAccounts(member!.host) }], toTimestamp(backup.commonTimestamp!));
    expect(verdict.mismatches).toEqual([]);
  });

  it('joins the running set: the primary reports it SECONDARY and it holds what the set wrote after the backup', async () => {
    expect(backup.status).toBe('complete');
    const rs = stack.cluster.shards[0]!;
    const uri = stack.cluster.describe().shards[0].uri as string;
    const [member] = await newMembers(1, 'seed-join');
    agents.push(await startTargetAgents(stack.h, [member!]));
    const { id } = await startSeed(stack.h.client, { backupId: backup.id, repo, replicaSet: 'rs0', member: member!, join: { uri } });
    const s = await seedResult(stack.h.client, id);
    started.push(s.member);
    expect(s.stateOnPrimary).toBe('SECONDARY');
    expect(s.member.oplogTop).toEqual(backup.commonTimestamp);
    expect(rs.config.members.find((m) => m.host === member!.host)).toMatchObject({ priority: 0, votes: 0 });

    // The member itself, through the driver: a secondary of rs0 that knows the set (priority 0: a passive).
    const hello = await helloOf(member!.host);
    expect(hello).toMatchObject({ setName: 'rs0', secondary: true, isWritablePrimary: false, primary: rs.primary()!.address });
    expect([...(hello.hosts as string[])].sort()).toEqual(rs.localNodes.map((n) => n.address).sort());
    expect(hello.passives).toEqual([member!.host]);

    // A timestamp of the primary's, after the join and long after the backup (the workload keeps transferring).
    const backupTs = toTimestamp(backup.commonTimestamp!);
    const at = rs.applied(rs.primary()!);
    expect(compareTs(at, backupTs)).toBeGreaterThan(0);
    await eventually(
      async () => compareTs((await helloOf(member!.host)).lastWrite.opTime.ts as Timestamp, at) >= 0,
      30_000,
      'the seeded member to catch up with the primary',
    );
    // At that timestamp the member and the primary hold the same accounts, history's, not the backup's.
    const onMember = await readAccountsAt(member!.host, at);
    expect(Object.fromEntries(onMember)).toEqual(Object.fromEntries(await readAccountsAt(rs.primary()!.address, at)));
    const history = stack.workload!.history;
    expect(new Oracle(history).verify([{ name: 'rs0', accounts: onMember }], at).mismatches).toEqual([]);
    expect(Object.fromEntries(onMember)).not.toEqual(Object.fromEntries(history.stateAt('rs0', backupTs)));
    // Its oplog now goes past the backup timestamp with the set's writes.
    expect(compareTs(toTimestamp((await lastRealOplogTs(member!.host))!), backupTs)).toBeGreaterThan(0);
  });
});
