/**
 * The oplog rolled past a stopped capture: when capture starts again, the gap is reported loudly (the workflow's
 * search attributes and state, `pitr status --json`, `list --json`) and capture goes on from the oldest entry it can
 * read.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pitrStatus, startPitr, stopPitr } from '../api/pitr.ts';
import { pitrStateQuery } from '../common/messages.ts';
import type { PitrState, PitrStatus } from '../common/pitr-types.ts';
import { CutpointGaps, CutpointStatus } from '../common/search-attributes.ts';
import { compareTs, type Ts } from '../common/timestamp.ts';
import { direct, eventually } from '../sim/testkit.ts';
import { runCli } from './helpers/cli.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });

beforeAll(async () => {
  // 16 KiB of oplog, checkpoints every 100 ms: a few hundred padded inserts roll it over.
  stack = await startSimStack({ replsetOnly: true, members: 1, oplogSizeMB: 1 / 64, checkpointMs: 100 });
});
afterAll(async () => {
  await stack?.stop();
});

describe('a gap in the captured oplog', () => {
  it('is reported by status, search attributes and list when the oplog rolled past a stopped capture', async () => {
    const repo = tempDir('cutpoint-pitr-gap-');
    const rs = stack.cluster.shards[0]!;
    const uri = stack.cluster.describe().shards[0].uri as string;
    const client = direct(rs.primary()!.address);
    try {
      const t = client.db('app').collection<{ _id: number; pad?: string }>('t');
      await t.insertOne({ _id: 0 });
      const options = { uri, repo, sealEveryMs: 300, leaseMs: 1500, agentHeartbeatTimeoutMs: 5000 };
      const { cluster } = await startPitr(stack.h.client, options);
      expect(cluster).toBe('rs0');
      const handle = stack.h.client.workflow.getHandle(`pitr-${cluster}`);
      const sealed = (await eventually(async () => ((await handle.query(pitrStateQuery)) as PitrState).replicaSets[0]?.capturedTo, 30_000, 'a first seal')) as Ts;
      await stopPitr(stack.h.client, cluster);
      const stopped = await pitrStatus(stack.h.client, cluster);
      expect(stopped).toMatchObject({ status: 'stopped', gaps: [] });
      const capturedTo = stopped.replicaSets[0]!.capturedTo!;
      expect(compareTs(capturedTo, sealed)).toBeGreaterThanOrEqual(0);

      // While nothing captures, the oplog rolls past the last sealed entry.
      const pad = 'x'.repeat(500);
      let next = 1;
      await eventually(async () => {
        await t.insertMany(Array.from({ length: 20 }, () => ({ _id: next++, pad })));
        const oldest = (await client.db('local').collection('oplog.rs').find({}).limit(1).toArray())[0]!.ts as Ts;
        return compareTs({ t: oldest.t, i: oldest.i }, capturedTo) > 0;
      }, 20_000, 'the oplog to roll over');

      await startPitr(stack.h.client, options);
      const status = (await eventually(async () => {
        const s = await pitrStatus(stack.h.client, cluster);
        return s.gaps.length ? s : undefined;
      }, 30_000, 'the gap in the status'))!;
      expect(status.status).toBe('running');
      expect(status.gaps).toHaveLength(1);
      expect(status.gaps[0]).toMatchObject({ replicaSet: 'rs0', from: capturedTo });
      expect(compareTs(status.gaps[0]!.to, capturedTo)).toBeGreaterThan(0);
      // The capture went on after the gap.
      await eventually(async () => compareTs((await pitrStatus(stack.h.client, cluster)).restorableTo!, status.gaps[0]!.to) >= 0, 30_000, 'capture past the gap');
      // Loud: the workflow's state and search attributes, the CLI's status and list.
      await eventually(async () => (await handle.describe()).typedSearchAttributes.get(CutpointGaps) === 1, 30_000, 'CutpointGaps = 1');
      expect((await handle.describe()).typedSearchAttributes.get(CutpointStatus)).toBe('gap');
      expect(((await handle.query(pitrStateQuery)) as PitrState).replicaSets[0]!.gaps).toEqual(status.gaps);
      const cliStatus = await runCli(['pitr', 'status', '--cluster', cluster, '--json'], env());
      expect(cliStatus.code, cliStatus.stderr).toBe(0);
      expect((JSON.parse(cliStatus.stdout) as PitrStatus).gaps).toEqual(status.gaps);
      const list = await runCli(['list', '--repo', repo, '--json', '--offline'], env());
      expect(list.code, list.stderr).toBe(0);
      const listed = JSON.parse(list.stdout) as { pitr: Array<{ cluster: string; from: Ts | null; to: Ts | null; gaps: unknown[] }> };
      expect(listed.pitr).toHaveLength(1);
      expect(listed.pitr[0]).toMatchObject({ cluster: 'rs0', from: null, gaps: status.gaps });
      await stopPitr(stack.h.client, cluster);
    } finally {
      await client.close();
    }
  });
});
