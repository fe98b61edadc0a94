/**
 * `bench memory`: the peak resident memory of the worker processes as the data grows. For each size, a fresh
 * simulated member is filled with the copy benchmark's mix, then a fresh orchestrator and agent take a backup of it
 * and restore it into a new member; each process's peak RSS (`VmHWM`) is read after the backup and after the restore.
 * The workers are new for every size, so each peak belongs to one size.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { NodeController } from '../../activities/agent/restore/node-controller.ts';
import { freePort } from '../../lib/ports.ts';
import { MONGOD_BIN } from '../../sim/testkit.ts';
import { runBackup } from './backup-run.ts';
import { runRestore } from './bench-restore.ts';
import { loadMix } from './dataset.ts';
import { bytesUnder, prepareCache, type CacheMode } from './page-cache.ts';
import { journalFileSize, loadingProgress, MiB, printTable } from './report.ts';
import { membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri, type WorkerProcess } from './stack.ts';

/** Options of the memory benchmark. */
export interface MemoryBenchOptions {
  sizes: number[];
  cache: CacheMode;
  dir: string;
  log: Logger;
  temporal?: { address: string; namespace: string };
}

/** The bound each worker's peak must stay under, and the growth allowed from the smallest size to the largest. */
export const MEMORY_TARGET = { peakBytes: 512 * MiB, growth: 0.1 };

/** One size: a backup and a restore by fresh workers, and their peaks. */
interface MemoryCase {
  requestedBytes: number;
  dbpathBytes: number;
  backupBytes: number;
  backupFiles: number;
  backupSeconds: number;
  restoreSeconds: number;
  /** Peak RSS after the backup, bytes. */
  afterBackup: { orchestrator: number | null; agent: number | null };
  /** Peak RSS over the backup and the restore, bytes. */
  peak: { orchestrator: number | null; agent: number | null };
}

async function oneSize(o: MemoryBenchOptions, i: number, size: number): Promise<MemoryCase> {
  const dir = join(o.dir, `size-${i}`);
  const cluster = await startQuietCluster(o.log, { replsetOnly: true, dir: join(dir, 'sim'), blockSize: 64 * 1024, logFileSize: journalFileSize(size) });
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const workers: WorkerProcess[] = [];
  let sourceStopped = false;
  try {
    loadMix(cluster.shards[0]!.primary()!, size, undefined, loadingProgress);
    const [source] = membersOf(cluster);
    const target = { host: `127.0.0.1:${await freePort()}`, dbpath: join(dir, 'restored') };
    const orchestrator = await startOrchestrator(temporal);
    const agent = await startAgent(temporal, [source!, target]);
    workers.push(orchestrator, agent);
    const repo = join(dir, 'repo');
    prepareCache(o.cache, [source!.dbpath]);
    const backup = await runBackup(temporal.client, { uri: targetUri(cluster), repo });
    const afterBackup = { orchestrator: orchestrator.peakRss(), agent: agent.peakRss() };
    await cluster.stop();
    sourceStopped = true;
    const dbpathBytes = bytesUnder(source!.dbpath);
    prepareCache(o.cache, [repo]);
    const restore = await runRestore(temporal.client, backup.id, repo, 'rs0', target);
    const peak = { orchestrator: orchestrator.peakRss(), agent: agent.peakRss() };
    const { pid, port } = restore.summary.replicaSets[0]!.members[0]!;
    await new NodeController(MONGOD_BIN).stop({ pid, port });
    const c: MemoryCase = { requestedBytes: size, dbpathBytes, backupBytes: backup.bytes, backupFiles: backup.files, backupSeconds: backup.seconds, restoreSeconds: restore.seconds, afterBackup, peak };
    process.stderr.write(`${(size / MiB).toFixed(0)} MiB: orchestrator ${mib(peak.orchestrator)} MiB, agent ${mib(peak.agent)} MiB\n`);
    return c;
  } finally {
    for (const w of workers) await w.stop();
    await temporal.close();
    if (!sourceStopped) await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const mib = (b: number | null) => (b === null ? '–' : (b / MiB).toFixed(0));

/** Growth of a peak from the first case to the last, as a share of the first; null when a peak is unknown. */
function growth(cases: MemoryCase[], role: 'orchestrator' | 'agent'): number | null {
  const a = cases[0]?.peak[role];
  const b = cases[cases.length - 1]?.peak[role];
  return a === null || a === undefined || b === null || b === undefined ? null : (b - a) / a;
}

export async function benchMemory(o: MemoryBenchOptions): Promise<Record<string, unknown>> {
  // The agent's node controller starts the simulator's mongod on the new member.
  process.env.CUTPOINT_MONGOD_PATH = MONGOD_BIN;
  const sizes = [...o.sizes].sort((a, b) => a - b);
  const cases: MemoryCase[] = [];
  for (const [i, size] of sizes.entries()) cases.push(await oneSize(o, i, size));
  printTable(
    `memory: peak RSS of the workers, cache ${o.cache}`,
    cases.map((c) => ({
      'dbpath MiB': c.dbpathBytes / MiB,
      files: c.backupFiles,
      'backup s': c.backupSeconds,
      'restore s': c.restoreSeconds,
      'orchestrator MiB': Number(mib(c.peak.orchestrator)),
      'agent MiB': Number(mib(c.peak.agent)),
    })),
  );
  const largest = (role: 'orchestrator' | 'agent') => Math.max(...cases.map((c) => c.peak[role] ?? Infinity));
  const g = { orchestrator: growth(cases, 'orchestrator'), agent: growth(cases, 'agent') };
  return {
    sizes: { requestedBytes: sizes },
    cache: o.cache,
    cases,
    growth: g,
    target: {
      ...MEMORY_TARGET,
      met: (['orchestrator', 'agent'] as const).every((r) => largest(r) <= MEMORY_TARGET.peakBytes && g[r] !== null && g[r] < MEMORY_TARGET.growth),
    },
  };
}
