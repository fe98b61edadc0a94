/**
 * The file list stays out of workflow history (docs/architecture.md, "The path of a backup"): a replica set of 20,000 files backs up with
 * a workflow history that does not grow with the number of files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaSetManifest } from '../common/manifest.ts';
import { backupResult, startBackup } from '../api/backups.ts';
import { ensureCollection } from '../sim/node/writes.ts';
import { eventually } from '../sim/testkit.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;

/** Every payload's data in a history, decoded as text (JSON payloads are stored as bytes, invisible to a plain dump). */
function decodedPayloads(node: unknown, out: string[] = []): string {
  if (node instanceof Uint8Array) out.push(new TextDecoder().decode(node));
  else if (Array.isArray(node)) for (const v of node) decodedPayloads(v, out);
  else if (node && typeof node === 'object') for (const v of Object.values(node)) decodedPayloads(v, out);
  return out.join('\n');
}
const COLLECTIONS = Number(process.env.CUTPOINT_TEST_MANY_COLLECTIONS ?? 10_000);

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 1, checkpointMs: 600_000 });
  const rs = stack.cluster.shards[0]!;
  const primary = rs.primary()!;
  for (let i = 0; i < COLLECTIONS; i++) ensureCollection(primary, `many.c${i}`);
  await eventually(() => primary.engine.stableTimestamp?.equals(rs.applied(primary)), 60_000, 'the stable timestamp to reach the last write');
  primary.engine.checkpoint();
}, 600_000);
afterAll(async () => {
  await stack?.stop();
});

describe('a replica set of 20,000 files', () => {
  it('backs up every file while the workflow histories stay small', async () => {
    const dir = tempDir('cutpoint-many-');
    const uri = stack.cluster.describe().shards[0].uri as string;
    const { id } = await startBackup(stack.h.client, { uri, repo: dir, keepAliveIntervalMs: 5000, batchMaxFiles: 2000 });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('complete');
    const rm = JSON.parse(readFileSync(join(dir, 'backups', id, 'rs0', 'manifest.json'), 'utf8')) as ReplicaSetManifest;
    const dataFiles = rm.files.filter((f) => /^(collection|index)-/.test(f.path));
    expect(dataFiles.length).toBeGreaterThanOrEqual(2 * COLLECTIONS);
    for (const wid of [id, `${id}.rs0`]) {
      const history = await stack.h.client.workflow.getHandle(wid).fetchHistory();
      const events = history.events ?? [];
      const text = JSON.stringify(history);
      const payloads = decodedPayloads(history);
      // Positive control: the decoding sees what is meant to be there (the repository path is in the input).
      expect(payloads, wid).toContain(dir);
      // 2,000-file batches: the histories grow with the number of batches (10), never with the files.
      expect(events.length, wid).toBeLessThan(400);
      expect(text.length, wid).toBeLessThan(256 * 1024);
      // No file name reaches the history, in any payload (the list lives in the repository's work files).
      expect(payloads, wid).not.toMatch(/collection-\d|index-\d/);
    }
  }, 900_000);
});
