/**
 * Offline replay of committed workflow histories (JSON, as `temporal workflow show -o json` writes them).
 *
 * Two things fail here: a workflow change that breaks determinism for the committed histories (a sharded backup, one
 * whose shard re-opened a lost cursor, a health check; recorded by test/helpers/record-histories.ts), and a dependency
 * tree with duplicate protobufjs copies, which makes `historyFromJSON` throw "type must be a Type" (npm
 * hoists protobufjs 7 from @grpc/proto-loader and nests a separate 8.x under each @temporalio package; the direct
 * protobufjs ^8 dependency in package.json makes 8.x hoist and dedupe).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../workers/bundle.ts';
import { createLogger } from '../lib/logger.ts';

const dir = fileURLToPath(new URL('../test/fixtures/histories/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('committed histories replay', () => {
  it('has fixtures to replay', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  it.each(files)('%s', async (file) => {
    const history = JSON.parse(readFileSync(dir + file, 'utf8')) as object;
    const bundle = await workflowBundle(createLogger('warn'));
    // `<label>--<workflow id>.json`: the workflow id matters to workflows that derive ids from it (a backup's children).
    const workflowId = file.replace(/\.json$/, '').split('--').pop();
    await expect(Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId)).resolves.toBeUndefined();
  });
});
