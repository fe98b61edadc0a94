/**
 * Seeding a new member from a backup (`seedMember`, `cutpoint seed`): one replica set's files placed for a new
 * member through its agent, recovered to the replica set's consistent point, its own replica-set config emptied so it
 * takes the set's, and started with `--replSet`, left running to be added to the set.
 *
 * The join itself (replSetReconfig on the running set's primary, then SECONDARY) is not exercised here: the
 * simulator replicates only between members in one process, and a member in another process — as every mongod the
 * node controller spawns is — is reported "(not reachable/healthy)" by the set and never receives its config.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../activities/restore/node-controller.ts';
import type { StartedMember } from '../common/restore-types.ts';
import { backupResult, startBackup } from '../scripts/api/backups.ts';
import { seedResult, startSeed } from '../scripts/api/restores.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import { connect, helloOf, lastRealOplogTs, newMembers, readAccounts, startTargetAgents, stopMembers, toTimestamp, useSimMongod } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';

let stack: SimStack;
const started: StartedMember[] = [];
const agents: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  useSimMongod();
  stack = await startSimStack({ replsetOnly: true, members: 3, checkpointMs: 1000, bank: true });
});
afterAll(async () => {
  await stopMembers(started);
  for (const a of agents) await a.stop();
  await stack?.stop();
});

describe('seeding a new member from a backup', () => {
  it('places and recovers the files at the backup timestamp and starts the member waiting for the set config', async () => {
    const repo = mkdtempSync(join(tmpdir(), 'cutpoint-repo-seed-'));
    const uri = stack.cluster.describe().shards[0].uri as string;
    const backup = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri, repo, keepAliveIntervalMs: 1000 })).id);
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
});
