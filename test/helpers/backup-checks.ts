/**
 * Checks shared by the backup fault tests: open backup cursors on every node, what a failed or cancelled backup left
 * in the repository, the stored files against their manifest, and facts read from a workflow's history.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { expect } from 'vitest';
import type { ClusterManifest, ReplicaSetManifest } from '../../common/manifest.ts';
import type { SimCluster } from '../../sim/cluster/cluster.ts';
import { direct } from '../../sim/testkit.ts';
import { fsRepository } from '../../repository/repository.ts';

/** Nodes of `cluster` whose serverStatus says a backup cursor is open. */
export async function openBackupCursors(cluster: SimCluster): Promise<string[]> {
  const open: string[] = [];
  for (const rs of cluster.replicaSets) {
    for (const node of rs.localNodes) {
      const c = direct(node.address);
      try {
        const s = await c.db('admin').command({ serverStatus: 1 });
        if (s.storageEngine.backupCursorOpen) open.push(node.address);
      } finally {
        await c.close();
      }
    }
  }
  return open;
}

/** Files (not directories) under `dir`, relative, sorted; [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

export const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/**
 * A failed or cancelled backup: its manifest says so, and only manifests are left (data and work files removed).
 * `manifests` lists the ones expected: the cluster manifest, plus the replica-set manifests written before the end
 * (the repository keeps every manifest of a failed or cancelled backup, see Repository.removeBackupData).
 */
export function expectEndedWithoutData(repo: string, id: string, status: 'failed' | 'cancelled', manifests = ['manifest.json']): ClusterManifest {
  const cm = readJson<ClusterManifest>(join(repo, 'backups', id, 'manifest.json'));
  expect(cm.status).toBe(status);
  expect(filesUnder(join(repo, 'backups', id))).toEqual(manifests);
  return cm;
}

/**
 * A complete backup: every stored file, rebuilt from the repository (its chunks, each checked against its id), has its
 * manifest's size, and its SHA-256 where the manifest keeps one. Returns the replica-set manifest.
 */
export async function expectCompleteAndIntact(repo: string, id: string, rs = 'rs0'): Promise<ReplicaSetManifest> {
  expect(readJson<ClusterManifest>(join(repo, 'backups', id, 'manifest.json')).status).toBe('complete');
  const rm = readJson<ReplicaSetManifest>(join(repo, 'backups', id, rs, 'manifest.json'));
  expect(rm.files.length).toBeGreaterThan(0);
  const r = fsRepository(repo);
  for (const f of rm.files) {
    const hash = createHash('sha256');
    let size = 0;
    for await (const b of await r.openStoredFile(id, rs, f)) {
      hash.update(b);
      size += b.length;
    }
    expect(size, f.path).toBe(f.size);
    if (f.sha256 !== undefined) expect(hash.digest('hex'), f.path).toBe(f.sha256);
  }
  return rm;
}

/** One activity of a workflow's history: its type, the attempts it started, and its result when it completed. */
export interface ActivityRecord {
  type: string;
  attempts: number[];
  result?: unknown;
}

/** The activities of workflow `id`, in the order they were scheduled. */
export async function activitiesOf(client: Client, id: string): Promise<ActivityRecord[]> {
  const history = await client.workflow.getHandle(id).fetchHistory();
  const converter = client.options.loadedDataConverter.payloadConverter;
  const byEvent = new Map<string, ActivityRecord>();
  const records: ActivityRecord[] = [];
  for (const e of history.events ?? []) {
    const eventId = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) {
      const r: ActivityRecord = { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', attempts: [] };
      byEvent.set(eventId, r);
      records.push(r);
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) byEvent.get(String(started.scheduledEventId))?.attempts.push(started.attempt ?? 1);
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) {
      const r = byEvent.get(String(completed.scheduledEventId));
      const payload = completed.result?.payloads?.[0];
      if (r && payload) r.result = converter.fromPayload(payload);
    }
  }
  return records;
}

/** The activity types pending in workflow `id` right now. */
export async function pendingActivities(client: Client, id: string): Promise<string[]> {
  const d = await client.workflow
    .getHandle(id)
    .describe()
    .catch(() => undefined);
  return (d?.raw.pendingActivities ?? []).map((a) => a.activityType?.name ?? '?');
}
