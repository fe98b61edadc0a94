/**
 * One measured backup: started through the API as a user's code starts it, waited for, then costed from its
 * workflow histories (phases, events).
 */
import type { Client } from '@temporalio/client';
import type { BackupSummary } from '../../common/backup-types.ts';
import { backupProgress, backupResult, startBackup, type StartBackupOptions } from '../../api/backups.ts';
import { activitySpan, BACKUP_PHASES, eventCounts, fetchHistories, phaseSplit, timeline } from './history.ts';

/** A finished backup's figures. */
export interface BackupRun {
  id: string;
  seconds: number;
  bytes: number;
  files: number;
  phases: Record<string, number>;
  events: ReturnType<typeof eventCounts>;
  /**
   * Per replica set, the seconds of its child's copy: from its first copyBatch scheduled to its last completed (null
   * when it copied nothing in a copyBatch).
   */
  copySeconds: Record<string, number | null>;
  /** What the backup returned. */
  summary: BackupSummary;
  /** (seconds since start, bytes copied) every `sampleMs`, when sampled. */
  samples: Array<[number, number]>;
}

/** Runs a backup to the end; fails unless it completes. */
export async function runBackup(client: Client, opts: StartBackupOptions, sampleMs = 0): Promise<BackupRun> {
  const t0 = process.hrtime.bigint();
  const since = () => Number(process.hrtime.bigint() - t0) / 1e9;
  const { id } = await startBackup(client, opts);
  const samples: Array<[number, number]> = [];
  let sampling = sampleMs > 0;
  const sampler = (async () => {
    while (sampling) {
      const p = await backupProgress(client, id, { inFlight: true }).catch(() => undefined);
      // In-flight bytes come from heartbeats and can dip for a moment (backupProgress): keep the high-water mark.
      if (p) samples.push([since(), Math.max(p.bytesDone, samples[samples.length - 1]?.[1] ?? 0)]);
      await new Promise((r) => setTimeout(r, sampleMs));
    }
  })();
  let summary: BackupSummary;
  try {
    summary = await backupResult(client, id);
  } finally {
    sampling = false;
    await sampler;
  }
  const seconds = since();
  if (summary.status !== 'complete') throw new Error(`backup ${id} ended ${summary.status}: ${summary.error?.code} ${summary.error?.message}`);
  const ids = [id, ...summary.replicaSets.map((r) => `${id}.${r.name}`)];
  const histories = await fetchHistories(client, ids);
  // CUTPOINT_BENCH_TIMELINE=1: every event of the run on stderr, to see where the time goes.
  if (process.env.CUTPOINT_BENCH_TIMELINE) process.stderr.write(`${timeline(histories, id).join('\n')}\n`);
  return {
    id,
    seconds,
    bytes: summary.bytes,
    files: summary.replicaSets.reduce((s, r) => s + r.files, 0),
    phases: phaseSplit(histories, id, BACKUP_PHASES, 'commit'),
    events: eventCounts(histories),
    copySeconds: Object.fromEntries(summary.replicaSets.map((r) => [r.name, activitySpan(histories.get(`${id}.${r.name}`) ?? [], 'copyBatch')])),
    summary,
    samples,
  };
}
