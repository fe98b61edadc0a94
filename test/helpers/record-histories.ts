/**
 * Refreshes the committed workflow histories that workflows/replay.test.ts replays offline. With
 * `CUTPOINT_RECORD_HISTORIES=1`, a test that ran a workflow calls {@link recordHistories} with the workflow ids to keep;
 * otherwise it does nothing. It replaces the label's earlier files. Files are `<label>--<workflow id>.json` (the replay needs the id: a backup's children
 * derive theirs from it).
 */
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';

const DIR = new URL('../fixtures/histories/', import.meta.url);

export const recording = process.env.CUTPOINT_RECORD_HISTORIES === '1';

/** Writes the histories of `workflowIds` as replay fixtures under `label` (only when recording). */
export async function recordHistories(client: Client, label: string, workflowIds: string[]): Promise<void> {
  if (!recording) return;
  // The label's earlier recordings go: a label holds one run's histories.
  for (const f of readdirSync(DIR)) if (f === `${label}.json` || f.startsWith(`${label}--`)) rmSync(new URL(f, DIR));
  for (const id of workflowIds) {
    const history = await client.workflow.getHandle(id).fetchHistory();
    writeFileSync(new URL(`${label}--${id}.json`, DIR), `${historyToJSON(history)}\n`);
  }
}
