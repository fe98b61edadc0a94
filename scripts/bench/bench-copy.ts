/**
 * `bench copy`: a full backup of a replica set whose dbpath holds `size` bytes in a realistic mix of file sizes,
 * against `cp -r` of the same dbpath to the same filesystem, alternating which goes first, the page cache prepared
 * the same way before each; then how closely a throttle is held. With `profile`, the agent of the unthrottled runs
 * is CPU-profiled, and the throttled run gets an agent of its own.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { FsStorage } from '../../repository/fs-storage.ts';
import { Repository } from '../../repository/repository.ts';
import { alternately } from './baseline.ts';
import { runBackup, type BackupRun } from './backup-run.ts';
import { loadMix } from './dataset.ts';
import { bytesUnder, filesUnder, prepareCache, type CacheMode } from './page-cache.ts';
import { GiB, journalFileSize, loadingProgress, median, MiB, printTable } from './report.ts';
import { summarizeProfiles } from './cpu-profile.ts';
import { membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri } from './stack.ts';

/** Options of the copy benchmark. */
export interface CopyBenchOptions {
  size: number;
  runs: number;
  cache: CacheMode;
  /** Throttle to test, bytes/s; 0 = half the measured unthrottled rate. */
  throttle: number;
  dir: string;
  /** CPU-profile the agent over the unthrottled runs (`node --cpu-prof`) and keep its busiest functions in the result. */
  profile?: boolean;
  log: Logger;
  /** A running Temporal server to use instead of starting one. */
  temporal?: { address: string; namespace: string };
}

/** Throttle accuracy from progress samples: the rate over the middle 80 % of the bytes, and 5-second windows. */
export function throttleHold(samples: Array<[number, number]>, total: number, limit: number) {
  const inside = samples.filter(([, b]) => b >= total * 0.1 && b <= total * 0.9);
  const first = inside[0];
  const last = inside[inside.length - 1];
  const steady = first && last && last[0] > first[0] ? (last[1] - first[1]) / (last[0] - first[0]) : NaN;
  const windows: number[] = [];
  for (let i = 0, j = 0; i < inside.length; i++) {
    while (j < inside.length && inside[j]![0] - inside[i]![0] < 5) j++;
    if (j < inside.length) windows.push((inside[j]![1] - inside[i]![1]) / (inside[j]![0] - inside[i]![0]));
  }
  return {
    limitMiBps: limit / MiB,
    steadyMiBps: steady / MiB,
    steadyError: steady / limit - 1,
    window5sMinMiBps: windows.length ? Math.min(...windows) / MiB : NaN,
    window5sMaxMiBps: windows.length ? Math.max(...windows) / MiB : NaN,
  };
}

/** CPU seconds per GiB moved (NaN when unknown). */
function perGiB(cpuSeconds: number | null, bytes: number): number {
  return cpuSeconds === null ? NaN : cpuSeconds / (bytes / GiB);
}

export async function benchCopy(o: CopyBenchOptions): Promise<Record<string, unknown>> {
  const cluster = await startQuietCluster(o.log, {
    replsetOnly: true,
    dir: join(o.dir, 'sim'),
    // Large blocks keep the simulator's checkpoint metadata small at GiB sizes; PSMDB's 100 MiB journal files
    // (smaller for small runs).
    blockSize: 64 * 1024,
    logFileSize: journalFileSize(o.size),
  });
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const workers = [];
  try {
    const primary = cluster.shards[0]!.primary()!;
    const t0 = Date.now();
    const loaded = loadMix(primary, o.size, undefined, loadingProgress);
    process.stderr.write(`\rloaded ${loaded.documents} documents in ${loaded.collections} collections in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    const [member] = membersOf(cluster);
    const dbpath = member!.dbpath;
    const dbpathBytes = bytesUnder(dbpath);
    const dbpathFiles = filesUnder(dbpath).length;
    const profileDir = join(o.dir, 'agent-profile');
    let agent = await startAgent(temporal, [member!], {}, o.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
    workers.push(await startOrchestrator(temporal), agent);
    const uri = targetUri(cluster);

    type Measured = BackupRun & { agentCpuSeconds: number | null };
    const runs: Array<{ run: number; first: string; cpSeconds: number; cpCpuSeconds: number | null; backup: Measured; plain: Measured }> = [];
    /** One backup into a new repository (`plain`: created with `compression: none` first), with the agent's CPU. */
    const measure = async (repo: string, plain: boolean): Promise<Measured> => {
      if (plain) await new Repository(new FsStorage(repo)).init(new Date(), { compression: 'none' });
      const cpu0 = agent.cpuSeconds();
      const r = await runBackup(temporal.client, { uri, repo });
      const cpu1 = agent.cpuSeconds();
      rmSync(repo, { recursive: true, force: true });
      return { ...r, agentCpuSeconds: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0 };
    };
    for (let i = 0; i < o.runs; i++) {
      const cpDst = join(o.dir, `cp-${i}`);
      // Both of cutpoint's backups on the same side of `cp -r` in each run, which alternates; their own order too.
      const { first, cp: c, result } = await alternately(i, o.cache, dbpath, cpDst, async () => {
        const one = await measure(join(o.dir, `repo-${i}-a`), i % 2 === 1);
        prepareCache(o.cache, [dbpath]);
        const two = await measure(join(o.dir, `repo-${i}-b`), i % 2 === 0);
        return i % 2 === 0 ? { backup: one, plain: two } : { backup: two, plain: one };
      });
      const cpSeconds = c.seconds;
      runs.push({ run: i + 1, first, cpSeconds, cpCpuSeconds: c.cpuSeconds, ...result });
      process.stderr.write(`run ${i + 1}: cp -r ${cpSeconds.toFixed(1)} s, backup ${result.backup.seconds.toFixed(1)} s, plain backup ${result.plain.seconds.toFixed(1)} s\n`);
    }
    const rows = runs.map((r) => ({
      run: r.run,
      first: r.first,
      'cp -r s': r.cpSeconds,
      'cp -r MiB/s': dbpathBytes / MiB / r.cpSeconds,
      'backup s': r.backup.seconds,
      'backup MiB/s': r.backup.bytes / MiB / r.backup.seconds,
      'copy phase s': r.backup.phases.copy ?? 0,
      ratio: r.backup.bytes / r.backup.seconds / (dbpathBytes / r.cpSeconds),
      'plain s': r.plain.seconds,
      'plain ratio': r.plain.bytes / r.plain.seconds / (dbpathBytes / r.cpSeconds),
      'cp CPU s/GiB': perGiB(r.cpCpuSeconds, dbpathBytes),
      'agent CPU s/GiB': perGiB(r.backup.agentCpuSeconds, r.backup.bytes),
    }));
    printTable(`copy: ${(dbpathBytes / MiB).toFixed(0)} MiB in ${dbpathFiles} files, cache ${o.cache}`, rows);
    const cpRate = median(runs.map((r) => dbpathBytes / r.cpSeconds));
    const backupRate = median(runs.map((r) => r.backup.bytes / r.backup.seconds));
    const copyPhaseRate = median(runs.map((r) => r.backup.bytes / (r.backup.phases.copy ?? NaN)));
    const plainRate = median(runs.map((r) => r.plain.bytes / r.plain.seconds));

    // The profile is written when the process exits: the throttled run gets a new agent.
    let profiledPeakRss: number | null = null;
    if (o.profile) {
      profiledPeakRss = agent.peakRss();
      await agent.stop();
      workers.splice(workers.indexOf(agent), 1);
      agent = await startAgent(temporal, [member!]);
      workers.push(agent);
    }
    // Throttle: a limit well under what this machine reaches, held by the copy for the middle of the run.
    const limit = o.throttle > 0 ? o.throttle : Math.max(MiB, Math.round(backupRate / 2 / MiB) * MiB);
    prepareCache(o.cache, [dbpath]);
    const throttled = await runBackup(temporal.client, { uri, repo: join(o.dir, 'repo-throttled'), bytesPerSec: limit }, 1000);
    rmSync(join(o.dir, 'repo-throttled'), { recursive: true, force: true });
    const hold = { ...throttleHold(throttled.samples, throttled.bytes, limit), copyPhaseMiBps: throttled.bytes / MiB / (throttled.phases.copy ?? NaN) };
    printTable('throttle', [{ 'limit MiB/s': hold.limitMiBps, 'copy phase MiB/s': hold.copyPhaseMiBps, 'held MiB/s': hold.steadyMiBps, 'error %': hold.steadyError * 100, '5 s min': hold.window5sMinMiBps, '5 s max': hold.window5sMaxMiBps, 'backup s': throttled.seconds }]);
    const peakRss = Object.fromEntries(workers.map((w) => [w.role, w.role === 'agent' && profiledPeakRss !== null ? Math.max(profiledPeakRss, w.peakRss() ?? 0) : w.peakRss()]));
    return {
      sizes: { requestedBytes: o.size, dbpathBytes, dbpathFiles, backupBytes: runs[0]!.backup.bytes, backupFiles: runs[0]!.backup.files, loaded },
      cache: o.cache,
      runs: runs.map((r) => ({
        run: r.run,
        first: r.first,
        cpSeconds: r.cpSeconds,
        cpCpuSecondsPerGiB: perGiB(r.cpCpuSeconds, dbpathBytes),
        backupSeconds: r.backup.seconds,
        agentCpuSecondsPerGiB: perGiB(r.backup.agentCpuSeconds, r.backup.bytes),
        phases: r.backup.phases,
        events: r.backup.events.total,
        plain: { seconds: r.plain.seconds, agentCpuSecondsPerGiB: perGiB(r.plain.agentCpuSeconds, r.plain.bytes), phases: r.plain.phases, storedBytes: r.plain.summary.bytesStored },
        storedBytes: r.backup.summary.bytesStored,
      })),
      median: { cpMiBps: cpRate / MiB, backupMiBps: backupRate / MiB, copyPhaseMiBps: copyPhaseRate / MiB, ratio: backupRate / cpRate, plainMiBps: plainRate / MiB, plainRatio: plainRate / cpRate },
      throttle: hold,
      peakRssBytes: peakRss,
      ...(o.profile ? { agentProfile: summarizeProfiles(profileDir) } : {}),
      // The target is the plain path's (no compression, no encryption); the zstd backup is reported beside it.
      target: { ratio: 0.95, met: plainRate / cpRate >= 0.95 },
    };
  } finally {
    for (const w of workers) await w.stop();
    await temporal.close();
    await cluster.stop();
  }
}
