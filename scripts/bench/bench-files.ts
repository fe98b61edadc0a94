/**
 * `bench files`: a replica set of many small files (1k, 10k, 100k): backup time, Temporal history events and the
 * peak memory of the worker processes (fresh processes for each count). The file list lives in the repository, so
 * the histories must not grow with it.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { runBackup } from './backup-run.ts';
import { loadSmallFiles } from './dataset.ts';
import { MiB, printTable } from './report.ts';
import { membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri, type WorkerProcess } from './stack.ts';

/** Options of the files benchmark. */
export interface FilesBenchOptions {
  files: number[];
  dir: string;
  log: Logger;
  /** A running Temporal server to use instead of starting one. */
  temporal?: { address: string; namespace: string };
}

/** Exponent k of events ∝ files^k between the smallest and the largest case (1 = linear, 0 = constant). */
export function growthExponent(points: Array<{ files: number; events: number }>): number | null {
  const s = [...points].sort((a, b) => a.files - b.files);
  const a = s[0];
  const b = s[s.length - 1];
  if (!a || !b || a.files === b.files) return null;
  return Math.log(b.events / a.events) / Math.log(b.files / a.files);
}

export async function benchFiles(o: FilesBenchOptions): Promise<Record<string, unknown>> {
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const cases: Array<{ files: number; events: number } & Record<string, unknown>> = [];
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const n of o.files) {
      const cluster = await startQuietCluster(o.log, { replsetOnly: true, dir: join(o.dir, `sim-${n}`) });
      const workers: WorkerProcess[] = [];
      try {
        const t0 = Date.now();
        loadSmallFiles(cluster.shards[0]!.primary()!, n);
        process.stderr.write(`${n} files loaded in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
        const [member] = membersOf(cluster);
        workers.push(await startOrchestrator(temporal), await startAgent(temporal, [member!]));
        const r = await runBackup(temporal.client, { uri: targetUri(cluster), repo: join(o.dir, `repo-${n}`) });
        const [orch, agent] = workers.map((w) => w.peakRss());
        cases.push({ files: n, backupFiles: r.files, seconds: r.seconds, phases: r.phases, events: r.events.total, largestHistory: r.events.largest, perWorkflow: r.events.perWorkflow, orchestratorPeakRssBytes: orch, agentPeakRssBytes: agent });
        rows.push({ files: r.files, 'backup s': r.seconds, 'files/s': r.files / r.seconds, events: r.events.total, 'largest history': r.events.largest, 'orchestrator MiB': (orch ?? NaN) / MiB, 'agent MiB': (agent ?? NaN) / MiB });
        process.stderr.write(`${n} files: ${r.seconds.toFixed(1)} s, ${r.events.total} events\n`);
      } finally {
        for (const w of workers) await w.stop();
        await cluster.stop();
      }
    }
    printTable('files: replica set of small files (one backup each, fresh worker processes)', rows);
    const k = growthExponent(cases);
    return { cases, eventsGrowthExponent: k, target: { sublinear: k !== null && k < 1 } };
  } finally {
    await temporal.close();
  }
}
