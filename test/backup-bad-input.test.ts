/**
 * Bad input end to end, through the CLI as a user meets it: a backup of a server without `$backupCursor` (MongoDB
 * Community) ends with a clear error naming the problem, the exit code of the error registry (docs/interfaces.md
 * section 2: 2 for input the user must fix), within seconds, with only the failed manifest left and no cursor.
 *
 * Every other kind of bad input and failure is checked where it arises: the activities against the simulator
 * (activities/orchestrator/topology.test.ts: unreachable URI, no eligible member; activities/agent/open-refused.test.ts:
 * Community, a user without `fsync`; open-busy.test.ts: a cursor someone else holds), the workflows with stand-in
 * activities (test/backup-phases.test.ts: unusable repository, disk full, cluster busy, no agent, bad options started
 * from the Temporal UI), and the exit codes of the registry (common/errors.test.ts, cli/program.test.ts).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BackupSummary } from '../common/backup-types.ts';
import { expectEndedWithoutData, openBackupCursors } from './helpers/backup-checks.ts';
import { runCli } from './helpers/cli.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let community: SimStack;

beforeAll(async () => {
  community = await startSimStack({ replsetOnly: true, members: 1, flavor: 'community' });
});
afterAll(async () => {
  await community?.stop();
});

describe('bad input', () => {
  it('a server without $backupCursor (MongoDB Community): NO_BACKUP_CURSOR, PSMDB or Enterprise needed, exit 2', async () => {
    const dir = tempDir('cutpoint-bad-input-repo-');
    const started = Date.now();
    const env = { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') };
    const uri = community.cluster.describe().shards[0].uri as string;
    const r = await runCli(['backup', '--json', '--keep-alive-ms', '1000', '--uri', uri, '--repo', dir], env);
    expect(r.code, r.stderr).toBe(2);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as BackupSummary;
    expect(summary.status).toBe('failed');
    expect(summary.error?.code).toBe('NO_BACKUP_CURSOR');
    expect(summary.error?.message).toMatch(/Percona Server for MongoDB or MongoDB Enterprise/);
    // Not retried: seconds, not the minutes of five attempts with back-off.
    expect(Date.now() - started).toBeLessThan(30_000);
    expectEndedWithoutData(dir, summary.id, 'failed');
    expect(await openBackupCursors(community.cluster)).toEqual([]);
  });
});
