/**
 * A format v1 repository (test/fixtures/repo-v1: a backup of a one-member replica set under the bank workload,
 * written by cutpoint before format v2, with the workload's history at its common timestamp beside it) stays usable:
 * `cutpoint list` shows it, `cutpoint verify` checks it clean, a restore rebuilds exactly that history; a new backup
 * into it is refused with REPO_UNUSABLE saying to start a v2 repository, and nothing is written to it.
 */
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupResult, startBackup } from '../api/backups.ts';
import { restoreResult, startRestore } from '../api/restores.ts';
import type { StartedMember } from '../common/restore-types.ts';
import { runCli } from './helpers/cli.ts';
import { newMembers, readAccounts, startTargetAgents, stopMembers, useSimMongod } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'repo-v1');
const expected = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'repo-v1.expected.json'), 'utf8')) as {
  backupId: string;
  commonTimestamp: { t: number; i: number };
  accounts: Record<string, number>;
};

let stack: SimStack;
let repo: string;
const started: StartedMember[] = [];
const agents: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  useSimMongod();
  stack = await startSimStack({ replsetOnly: true, members: 1 });
  repo = tempDir('cutpoint-repo-v1-');
  cpSync(FIXTURE, repo, { recursive: true });
});
afterAll(async () => {
  await stopMembers(started);
  for (const a of agents) await a.stop();
  await stack?.stop();
});

/** Every file under `dir`, relative, sorted. */
const filesOf = (dir: string) => (readdirSync(dir, { recursive: true, withFileTypes: true }) as Array<{ isFile(): boolean; parentPath: string; name: string }>).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();

describe('a v1 repository', () => {
  it('is listed, verifies clean and restores to its history; a new backup into it is refused and writes nothing', async () => {
    const env = { TEMPORAL_ADDRESS: stack.h.address, TEMPORAL_NAMESPACE: stack.h.namespace };
    const before = filesOf(repo);

    const list = await runCli(['list', '--repo', repo, '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout.trim().split('\n').at(-1)!) as { backups: Array<{ id: string; status: string; commonTimestamp: unknown }>; problems: unknown[] };
    expect(listed.problems).toEqual([]);
    expect(listed.backups).toMatchObject([{ id: expected.backupId, status: 'complete', commonTimestamp: expected.commonTimestamp }]);

    const verify = await runCli(['verify', expected.backupId, '--repo', repo, '--json'], env);
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout.trim().split('\n').at(-1)!)).toMatchObject({ status: 'complete', bad: [] });

    const [target] = await newMembers(1, 'v1-target');
    agents.push(await startTargetAgents(stack.h, [target!]));
    const summary = await restoreResult(stack.h.client, (await startRestore(stack.h.client, { backupId: expected.backupId, repo, to: { rs0: [target!] } })).id);
    started.push(...summary.replicaSets.flatMap((r) => r.members));
    expect(summary.status, JSON.stringify(summary.error)).toBe('complete');
    expect(summary.commonTimestamp).toEqual(expected.commonTimestamp);
    expect(Object.fromEntries(await readAccounts(target!.host))).toEqual(expected.accounts);

    const uri = stack.cluster.describe().shards[0].uri as string;
    const refused = await backupResult(stack.h.client, (await startBackup(stack.h.client, { uri, repo })).id);
    expect(refused.status).toBe('failed');
    expect(refused.error?.code).toBe('REPO_UNUSABLE');
    expect(refused.error?.message).toContain(`${repo} is a cutpoint/v1 repository`);
    expect(refused.error?.message).toContain('Start a v2 repository in a new, empty location (--repo)');
    expect(filesOf(repo)).toEqual(before);
  });
});
