/**
 * The topology activities against the simulator, where a backup meets bad input first: a URI where nothing answers
 * fails without retries (MONGO_UNREACHABLE, non-retryable, naming the host), and a replica set with no member to back
 * up fails with NO_ELIGIBLE_NODE saying why (a requested member lagging past the ceiling, or not a member at all).
 * The rules themselves: common/node-selection.test.ts; one bad input end to end: test/backup-bad-input.test.ts. A
 * config shard (MongoDB 8.0), listed by listShards as well, is found once, as the config server.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/ports.ts';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { startTestCluster } from '../../sim/testkit.ts';
import { topologyActivities, type Topology } from './topology.ts';

let cluster: SimCluster;
let uri: string;
let hosts: string[];

beforeAll(async () => {
  // The secondary applies the primary's oplog 2 s late.
  cluster = await startTestCluster({ replsetOnly: true, members: 2, lagMs: 2000 });
  ({ uri, hosts } = cluster.describe().shards[0] as { uri: string; hosts: string[] });
});
afterAll(async () => {
  await cluster?.stop();
});

const target = (u: string) => ({ uri: u, credentials: { kind: 'none' as const } });
const select = (o: { maxLagSecs: number; node?: string; pinned?: string }) =>
  new MockActivityEnvironment().run(topologyActivities.selectBackupNode, { target: target(uri), replicaSet: 'rs0', ...o }) as Promise<{ node: string; reason: string; pinnedRefused?: string }>;

describe('topology activities on bad input', () => {
  it('nothing answers at the URI: MONGO_UNREACHABLE naming the host, not retryable', async () => {
    const port = await freePort();
    await expect(new MockActivityEnvironment().run(topologyActivities.discoverTopology, { target: target(`mongodb://127.0.0.1:${port}/?replicaSet=rs0`) })).rejects.toMatchObject({
      type: 'MONGO_UNREACHABLE',
      nonRetryable: true,
      message: expect.stringMatching(new RegExp(`127\\.0\\.0\\.1:${port}.*no host answered`)),
    });
  });

  it('no member under the lag ceiling: NO_ELIGIBLE_NODE naming the member and its lag; a stranger is not a member', async () => {
    const [primary, secondary] = hosts as [string, string];
    await expect(select({ maxLagSecs: 0, node: secondary })).rejects.toMatchObject({
      type: 'NO_ELIGIBLE_NODE',
      nonRetryable: true,
      message: expect.stringMatching(new RegExp(`${secondary} was requested but is lagging [\\d.]+s \\(ceiling 0s\\)`)),
    });
    await expect(select({ maxLagSecs: 30, node: '127.0.0.1:1' })).rejects.toMatchObject({
      type: 'NO_ELIGIBLE_NODE',
      message: expect.stringContaining(`127.0.0.1:1 is not a member (members: ${primary}, ${secondary})`),
    });
    // The control: under a generous ceiling the lagging secondary is chosen.
    expect((await select({ maxLagSecs: 3600, node: secondary })).node).toBe(secondary);
  });
});

describe("an incremental chain's pinned member", () => {
  it('is chosen when it qualifies, even where another would rank first; when it does not, another is, with the reason', async () => {
    const [primary, secondary] = hosts as [string, string];
    // The primary is never the first choice, but the chain is pinned to it.
    expect(await select({ maxLagSecs: 3600, pinned: primary })).toEqual({ node: primary, reason: 'pinned by the incremental chain' });
    const gone = await select({ maxLagSecs: 3600, pinned: '127.0.0.1:1' });
    expect(gone).toMatchObject({ node: secondary, pinnedRefused: expect.stringContaining('127.0.0.1:1 is not a member') });
    const lagging = await select({ maxLagSecs: 0, pinned: secondary });
    expect(lagging).toMatchObject({ node: primary, pinnedRefused: expect.stringMatching(/lagging/) });
    // An explicit --node wins; the workflow then breaks the chain (it names another member).
    expect(await select({ maxLagSecs: 3600, node: secondary, pinned: primary })).toEqual({ node: secondary, reason: 'requested' });
  });
});

describe('a MongoDB 8.0 config shard', () => {
  let sharded: SimCluster | undefined;
  afterAll(async () => {
    await sharded?.stop();
  });

  it('is one replica set, the config server, though listShards lists it as shard "config" too', async () => {
    sharded = await startTestCluster({ shards: 1, members: 1, configShard: true });
    const t = (await new MockActivityEnvironment().run(topologyActivities.discoverTopology, { target: target(sharded.describe().mongos as string) })) as Topology;
    expect(t.kind).toBe('sharded');
    expect(t.replicaSets.map((r) => [r.name, r.configServer])).toEqual([
      ['cfg', true],
      ['shard0', false],
    ]);
  });
});
