/**
 * Offline replay of committed workflow histories (JSON, as `temporal workflow show -o json` writes them).
 *
 * Two things fail here: a workflow change that breaks determinism for histories already in the wild (the backup
 * fixtures were recorded before and after the patches of cluster-backup.ts and replica-set-backup.ts, so both paths
 * of each `patched()` replay), and a
 * dependency tree with duplicate protobufjs copies, which makes `historyFromJSON` throw "type must be a Type"
 * (temporal-notes.md section 3; fixed by the direct protobufjs ^8 dependency in package.json).
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
