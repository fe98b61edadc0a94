/**
 * The restore's reset step empties a shard's routing caches (`config.cache.*`) and `config.system.sessions` against a
 * simulated shard member whose deletes fail through mongod's `failCommand` fail point: a delete that fails is retried,
 * and one that keeps failing fails the step with RESTORE_STEP_FAILED naming the collection, instead of leaving the
 * source cluster's routing in place. The end-to-end reset: test/restore-sharded.test.ts.
 */
import type { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../../../sim/cluster/cluster.ts';
import { direct, startTestCluster } from '../../../sim/testkit.ts';
import { emptyRoutingCaches } from './member-steps.ts';

let cluster: SimCluster;
let client: MongoClient;
let host: string;

beforeAll(async () => {
  cluster = await startTestCluster({ shards: 1, members: 1 });
  host = cluster.shards[0]!.primary()!.address;
  client = direct(host);
});
afterAll(async () => {
  await client?.close();
  await cluster?.stop();
});

const failDeletes = (times: number) =>
  client.db('admin').command({ configureFailPoint: 'failCommand', mode: { times }, data: { failCommands: ['delete'], namespace: 'config.cache.collections', errorCode: 112 } });
const counts = async () => {
  const config = client.db('config');
  const names = (await config.listCollections({}, { nameOnly: true }).toArray()).map((c) => c.name).filter((n) => n.startsWith('cache.') || n === 'system.sessions');
  return Object.fromEntries(await Promise.all(names.sort().map(async (n) => [n, await config.collection(n).countDocuments()] as const)));
};

describe('emptying the routing caches', () => {
  it('a delete that fails twice is retried; one that keeps failing fails the step naming the collection', async () => {
    const before = await counts();
    expect(before['cache.collections']).toBeGreaterThan(0);

    await failDeletes(3);
    await expect(emptyRoutingCaches(client, host)).rejects.toMatchObject({
      type: 'RESTORE_STEP_FAILED',
      message: expect.stringMatching(new RegExp(`^${host}: emptying config\\.cache\\.collections failed 3 times \\(Failing command via 'failCommand' failpoint\\)`)),
    });
    // Nothing after the failing collection was touched; the failing one still holds its documents.
    expect((await counts())['cache.collections']).toBe(before['cache.collections']);

    await failDeletes(2);
    await emptyRoutingCaches(client, host);
    const after = await counts();
    expect(Object.keys(after)).toEqual(Object.keys(before));
    expect(Object.values(after)).toEqual(Object.values(after).map(() => 0));
  });
});
