/**
 * `openBackupCursor` refused by the server, as a user with the wrong server or the wrong user meets it: MongoDB
 * Community (no `$backupCursor`) fails with NO_BACKUP_CURSOR saying which servers have it; a user without the `fsync`
 * privilege fails with NOT_AUTHORIZED naming the privilege and the roles that grant it; a getMore on the cursor by
 * another user (an agent whose credentials changed) is NOT_AUTHORIZED for that reason, not a missing privilege. None
 * is retried, and none leaves a cursor. The same refusal end to end through the CLI (exit code, manifest): test/backup-bad-input.test.ts.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { startTestCluster } from '../../sim/testkit.ts';
import { fsRepository } from '../../repository/repository.ts';
import { tempDir } from '../../test/helpers/temp.ts';
import type { CredentialsRef } from '../../common/target.ts';
import { backupCursorActivities, type OpenedCursor } from './backup-cursor.ts';

let community: SimCluster;
let secured: SimCluster;

beforeAll(async () => {
  [community, secured] = await Promise.all([startTestCluster({ replsetOnly: true, members: 1, flavor: 'community' }), startTestCluster({ replsetOnly: true, members: 1, auth: true })]);
});
afterAll(async () => {
  await Promise.all([community?.stop(), secured?.stop()]);
});

const hostOf = (c: SimCluster) => (c.describe().shards[0] as { hosts: string[] }).hosts[0]!;
function open(c: SimCluster, credentials: CredentialsRef = { kind: 'none' }): Promise<OpenedCursor> {
  const host = hostOf(c);
  const acts = backupCursorActivities({ mongod: host, repository: (p) => fsRepository(p) });
  return new MockActivityEnvironment().run(acts.openBackupCursor, {
    target: { uri: `mongodb://${host}/?replicaSet=rs0`, credentials },
    backupId: 'b-refused',
    replicaSet: 'rs0',
    repo: tempDir('cutpoint-open-refused-'),
  }) as Promise<OpenedCursor>;
}
function credentialsOf(user: 'backup' | 'noFsync' | 'admin'): CredentialsRef {
  const u = (secured.describe().users as Record<string, { user: string; password: string }>)[user]!;
  const path = join(tempDir('cutpoint-open-refused-creds-'), 'creds.json');
  writeFileSync(path, JSON.stringify({ username: u.user, password: u.password }), { mode: 0o600 });
  return { kind: 'file', path };
}

describe('openBackupCursor refused', () => {
  it('MongoDB Community: NO_BACKUP_CURSOR, Percona Server for MongoDB or MongoDB Enterprise needed, not retried', async () => {
    await expect(open(community)).rejects.toMatchObject({
      type: 'NO_BACKUP_CURSOR',
      nonRetryable: true,
      message: expect.stringMatching(/Percona Server for MongoDB or MongoDB Enterprise/),
    });
  });

  it("a user without the 'fsync' privilege: NOT_AUTHORIZED naming the privilege; the backup user opens; another user's getMore: NOT_AUTHORIZED saying so", async () => {
    await expect(open(secured, credentialsOf('noFsync'))).rejects.toMatchObject({
      type: 'NOT_AUTHORIZED',
      nonRetryable: true,
      message: expect.stringMatching(/'fsync' privilege \(role hostManager or clusterAdmin\)/),
    });
    const host = hostOf(secured);
    const opened = await open(secured, credentialsOf('backup'));
    expect(opened.files).toBeGreaterThan(0);
    const acts = backupCursorActivities({ mongod: host, repository: (p) => fsRepository(p) });
    const ref = (credentials: CredentialsRef) => ({
      target: { uri: `mongodb://${host}/?replicaSet=rs0`, credentials },
      backupId: 'b-refused',
      replicaSet: 'rs0',
      cursorId: opened.cursorId,
      sessionId: opened.sessionId,
    });
    // The cursor's getMore by another user (here even the root user): 13, but not for a missing privilege.
    const refused = new MockActivityEnvironment().run(acts.proveBackupCursorAlive, ref(credentialsOf('admin')));
    await expect(refused).rejects.toMatchObject({ type: 'NOT_AUTHORIZED', message: expect.stringContaining('the backup cursor belongs to another user') });
    await expect(refused).rejects.toMatchObject({ message: expect.not.stringContaining('fsync') });
    await new MockActivityEnvironment().run(acts.proveBackupCursorAlive, ref(credentialsOf('backup')));
    await new MockActivityEnvironment().run(acts.closeBackupCursor, ref(credentialsOf('backup')));
  });
});
