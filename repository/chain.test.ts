/**
 * chooseParent: every reason a replica set's chain breaks (a base with the reason), and the continuation otherwise,
 * pinned to the member and name of the previous backup. (The server's own refusal of a forgotten name is the agent's:
 * activities/agent/incremental-open.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import type { IncrementalRecord } from '../common/incremental.ts';
import { chooseParent, type ChainTip } from './chain.ts';

const opts = { forceBase: false, blockSizeMB: 16, baseEvery: 0 };
const record = (o: Partial<IncrementalRecord> = {}): IncrementalRecord => ({ kind: 'incremental', name: 'b1.rs0.abcd.1', parent: 'b0', blockSizeMB: 16, depth: 2, ...o });
const tip = (o: Partial<ChainTip> = {}): ChainTip => ({ id: 'b1', status: 'complete', replicaSet: { node: 'h1:27017', incremental: record() }, ...o });

describe('chooseParent', () => {
  it('continues from a complete previous backup of the chain, pinned to its member and name', () => {
    expect(chooseParent(tip(), 'rs0', opts)).toEqual({ parent: { backupId: 'b1', name: 'b1.rs0.abcd.1', node: 'h1:27017', depth: 3, blockSizeMB: 16 } });
  });
  it.each([
    ['a base asked for', tip(), { forceBase: true }, /a new base was asked for/],
    ['no earlier incremental backup', undefined, {}, /no earlier incremental backup/],
    ['the previous backup failed', tip({ status: 'failed' }), {}, /b1, is failed/],
    ['the previous backup still running (a crashed workflow)', tip({ status: 'running' }), {}, /is running/],
    ['the replica set is new (topology change)', tip({ replicaSet: undefined }), {}, /not in the previous backup b1 \(the topology changed\)/],
    ['the previous backup was full on this replica set', tip({ replicaSet: { node: 'h1:27017' } }), {}, /took no incremental cursor/],
    ['the block size changed', tip(), { blockSizeMB: 4 }, /block size changed from 16 MB to 4 MB/],
    ['a base every 3', tip(), { baseEvery: 3 }, /a base every 3 backups: b1 was backup 3 of its chain/],
  ] as const)('%s: a base, with the reason', (_, t, o, reason) => {
    const d = chooseParent(t, 'rs0', { ...opts, ...o });
    expect(d.parent).toBeNull();
    expect(d.chainBreak).toMatch(reason);
  });
  it('a base every 4 lets the third backup of a chain continue', () => {
    expect(chooseParent(tip({ replicaSet: { node: 'h1:27017', incremental: record({ depth: 1 }) } }), 'rs0', { ...opts, baseEvery: 4 }).parent?.depth).toBe(2);
  });
});
