/**
 * The restoring agent is a separate `cutpoint agent` process, SIGKILLed in the middle of the restore sequence and
 * started again: the restore resumes from the member's recorded state (a temporary mongod the dead agent left running
 * is shut down cleanly first) and ends with exactly one mongod on the dbpath, at the common timestamp.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../lib/process.ts';
import type { StartedMember } from '../common/restore-types.ts';
import { backupResult, startBackup } from '../api/backups.ts';
import { restoreProgress, restoreResult, startRestore } from '../api/restores.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import { eventually, MONGOD_BIN, sleep } from '../sim/testkit.ts';
import { startCli } from './helpers/cli.ts';
import { lastRealOplogTs, memberState, newMembers, readAccounts, stopMembers, toTimestamp } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const started: StartedMember[] = [];
const agents: Array<ReturnType<typeof startCli>> = [];

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 3, checkpointMs: 1000, bank: true });
});
afterAll(async () => {
  for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
  await stopMembers(started);
  await stack?.stop();
});

/** Pids of every process whose command line names this dbpath (the mongods on it). */
function mongodsOn(dbpath: string): number[] {
  const ps = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return ps
    .split('\n')
    .filter((l) => l.includes(`--dbpath ${dbpath} `))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

describe('restore with a killed agent', () => {
  it('resumes after the agent is SIGKILLed between steps and restarted', async () => {
    const repo = tempDir('cutpoint-repo-');
    const uri = stack.cluster.describe().shards[0].uri as string;
    const backup = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri, repo, keepAliveIntervalMs: 1000 })).id);
    expect(backup.status).toBe('complete');

    const [member] = await newMembers(1);
    const env = { TEMPORAL_ADDRESS: stack.h.address, TEMPORAL_NAMESPACE: stack.h.namespace, CUTPOINT_MONGOD_PATH: MONGOD_BIN };
    const agent = () => {
      const a = startCli(['agent', '--mongod', member!.host], env);
      agents.push(a);
      return a;
    };
    const first = agent();
    const { id } = await startRestore(stack.h.client, { backupId: backup.id, repo, to: { rs0: [member!] } });

    // Kill the agent in the prepare step, once its temporary standalone mongod runs: between placing the files
    // and recovering, with a mongod the dead agent leaves behind.
    await eventually(async () => (await restoreProgress(stack.h.client, `${id}.rs0`).catch(() => undefined))?.phase === 'prepare', 120_000, 'the prepare step');
    await eventually(() => memberState(member!.dbpath)?.temp !== undefined, 60_000, 'the temporary mongod of the prepare step');
    first.child.kill('SIGKILL');
    await first.done;
    const atKill = memberState(member!.dbpath)!;
    expect(atKill.placed).toBeDefined();
    expect(atKill.recovered).toBeUndefined();
    const leftover = (atKill.temp as { pid: number }).pid;
    expect(pidAlive(leftover)).toBe(true);

    await sleep(2000);
    agent();
    const summary = await restoreResult(stack.h.client, id);
    started.push(...summary.replicaSets.flatMap((r) => r.members));
    expect(summary.error).toBeUndefined();
    expect(summary.status).toBe('complete');

    const m = summary.replicaSets[0]!.members[0]!;
    expect(pidAlive(m.pid)).toBe(true);
    // Exactly one mongod runs on the dbpath: the restored member; every temporary one was shut down.
    expect(mongodsOn(member!.dbpath)).toEqual([m.pid]);
    expect(m.pid).not.toBe(leftover);
    expect(pidAlive(leftover)).toBe(false);
    const state = memberState(member!.dbpath)!;
    expect(state.temp).toBeUndefined();
    expect(state.started).toEqual({ pid: m.pid, port: m.port });

    const common = summary.commonTimestamp!;
    expect(await lastRealOplogTs(member!.host)).toEqual(common);
    const verdict = new Oracle(stack.workload!.history).verify([{ name: 'rs0', accounts: await readAccounts(member!.host) }], toTimestamp(common));
    expect(verdict.mismatches).toEqual([]);
  });
});
