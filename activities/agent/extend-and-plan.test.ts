/**
 * extendAndPlanCopy: each half gets its own part of the input, the results come back together, and a cancel that
 * lands while the extend runs lets the extend finish and plans nothing (no batch of a backup being removed).
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import type { CopyBatch } from '../../common/backup-types.ts';
import { extendAndPlanActivities, type ExtendAndPlanInput } from './extend-and-plan.ts';

const input: ExtendAndPlanInput = {
  target: { uri: 'mongodb://h:1/?replicaSet=rs0', credentials: { kind: 'env' } },
  backupId: 'b1',
  replicaSet: 'rs0',
  repo: '/repo',
  serverBackupId: 'srv',
  to: { t: 10, i: 2 },
  maxWaitMs: 1000,
  dbpath: '/db',
  maxFiles: 5,
  maxBytes: 1 << 20,
  journalOnlyBefore: 3,
  firstBatchNo: 4,
};
const batches: CopyBatch[] = [{ no: 4, from: 3, to: 5, bytes: 10 }];

describe('extendAndPlanCopy', () => {
  it('extends with the extend options, plans with the plan options, returns both', async () => {
    const calls: Array<[string, unknown]> = [];
    const acts = extendAndPlanActivities(
      { extendBackupCursor: async (i) => (calls.push(['extend', i]), { added: 1, files: 5 }) },
      { planCopyBatches: async (i) => (calls.push(['plan', i]), { batches, listed: 5 }) },
    );
    const r = await new MockActivityEnvironment().run(acts.extendAndPlanCopy, input);
    expect(r).toEqual({ added: 1, files: 5, batches, listed: 5 });
    const cursor = { target: input.target, backupId: 'b1', replicaSet: 'rs0', repo: '/repo' };
    expect(calls).toEqual([
      ['extend', { ...cursor, serverBackupId: 'srv', to: { t: 10, i: 2 }, maxWaitMs: 1000 }],
      ['plan', { ...cursor, dbpath: '/db', maxFiles: 5, maxBytes: 1 << 20, journalOnlyBefore: 3, firstBatchNo: 4 }],
    ]);
  });

  it('a cancel during the extend: the extend finishes, nothing is planned, the activity ends cancelled', async () => {
    const env = new MockActivityEnvironment();
    const calls: string[] = [];
    const acts = extendAndPlanActivities(
      {
        extendBackupCursor: async () => {
          env.cancel();
          calls.push('extend');
          return { added: 0, files: 5 };
        },
      },
      { planCopyBatches: async () => (calls.push('plan'), { batches, listed: 5 }) },
    );
    await expect(env.run(acts.extendAndPlanCopy, input)).rejects.toThrow();
    expect(calls).toEqual(['extend']);
  });
});
