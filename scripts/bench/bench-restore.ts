/**
 * `bench restore`: a full restore of a backup of `size` bytes (the copy benchmark's mix) into a new member, against
 * `cp -r` of the source member's dbpath (the files a restore writes) to a new dbpath on the same filesystem,
 * alternating which goes first, the page cache prepared the same way before each. The restore's phases show what is
 * cutpoint's (checking the targets, placing and checking the files) and what is the mongod's (recovery to the common
 * timestamp, restarts).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import { NodeController } from '../../activities/agent/restore/node-controller.ts';
import type { RestoreSummary } from '../../common/restore-types.ts';
import { freePort } from '../../lib/ports.ts';
import { MONGOD_BIN } from '../../sim/testkit.ts';
import { restoreResult, startRestore } from '../../api/restores.ts';
import { alternately } from './baseline.ts';
import { runBackup } from './backup-run.ts';
import { loadMix } from './dataset.ts';
import { summarizeProfiles } from './cpu-profile.ts';
import { eventCounts, fetchHistories, phaseSplit, RESTORE_PHASES } from './history.ts';
import { bytesUnder, type CacheMode } from './page-cache.ts';
import { GiB, journalFileSize, loadingProgress, median, MiB, printTable } from './report.ts';
import { membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri, type WorkerProcess } from './stack.ts';

/** Options of the restore benchmark. */
export interface RestoreBenchOptions {
  size: number;
  runs: number;
  cache: CacheMode;
  dir: string;
  log: Logger;
  /** A running Temporal server to use instead of starting one. */
  temporal?: { address: string; namespace: string };
  /** CPU-profile the restores' agent (`node --cpu-prof`) and keep its busiest functions in the result. */
  profile?: boolean;
}

/** Documents of `ns` on a restored member (the restore is checked, not only timed). */
async function countOn(host: string, ns: string): Promise<number> {
  const c = new MongoClient(`mongodb://${host}/?directConnection=true`, { serverSelectionTimeoutMS: 10_000 });
  try {
    const dot = ns.indexOf('.');
    return await c.db(ns.slice(0, dot)).collection(ns.slice(dot + 1)).countDocuments();
  } finally {
    await c.close();
  }
}

/** One restore of `rs` into `member`, timed by the client and split into phases from the histories. */
export async function runRestore(client: Client, backupId: string, repo: string, rs: string, member: { host: string; dbpath: string }) {
  const t0 = process.hrtime.bigint();
  const { id } = await startRestore(client, { backupId, repo, to: { [rs]: [member] } });
  const summary: RestoreSummary = await restoreResult(client, id);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (summary.status !== 'complete') throw new Error(`restore ${id} ended ${summary.status}: ${summary.error?.code} ${summary.error?.message}`);
  const histories = await fetchHistories(client, [id, ...summary.replicaSets.map((r) => `${id}.${r.name}`)]);
  return { id, seconds, summary, phases: phaseSplit(histories, id, RESTORE_PHASES, 'commit'), events: eventCounts(histories).total };
}

export async function benchRestore(o: RestoreBenchOptions): Promise<Record<string, unknown>> {
  const cluster = await startQuietCluster(o.log, { replsetOnly: true, dir: join(o.dir, 'sim'), blockSize: 64 * 1024, logFileSize: journalFileSize(o.size) });
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const workers: WorkerProcess[] = [];
  let sourceStopped = false;
  // The agent's node controller starts the simulator's mongod on the new member.
  process.env.CUTPOINT_MONGOD_PATH = MONGOD_BIN;
  try {
    const loaded = loadMix(cluster.shards[0]!.primary()!, o.size, undefined, loadingProgress);
    process.stderr.write(`\rloaded ${loaded.documents} documents in ${loaded.collections} collections\n`);
    const [source] = membersOf(cluster);
    const targets = await Promise.all(Array.from({ length: o.runs }, async (_, i) => ({ host: `127.0.0.1:${await freePort()}`, dbpath: join(o.dir, `restored-${i}`) })));
    const backupAgent = await startAgent(temporal, [source!]);
    workers.push(await startOrchestrator(temporal), backupAgent);
    const repo = join(o.dir, 'repo');
    const backup = await runBackup(temporal.client, { uri: targetUri(cluster), repo });
    // The source goes away: only the restored members and the repository use the machine while measuring. The
    // restores get an agent of their own, so its memory, CPU and profile are the restores' alone.
    await cluster.stop();
    sourceStopped = true;
    await backupAgent.stop();
    const profileDir = join(o.dir, 'agent-profile');
    const agent = await startAgent(temporal, targets, {}, o.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []);
    workers.push(agent);
    const rsName = 'rs0';
    // The baseline copies the source's dbpath: the files a restore writes, as a plain copy writes them (the
    // repository holds them as compressed chunks in packs).
    const sourceDir = source!.dbpath;
    const sourceBytes = bytesUnder(sourceDir);
    const backupBytes = backup.bytes;

    const runs: Array<{ run: number; first: string; cpSeconds: number; restoreSeconds: number; phases: Record<string, number>; events: number; documents: number; agentCpuSecondsPerGiB: number | null }> = [];
    for (let i = 0; i < o.runs; i++) {
      const target = targets[i]!;
      const cpDst = join(o.dir, `cp-${i}`);
      const { first, cp, result: r } = await alternately(i, o.cache, sourceDir, cpDst, async () => {
        const cpu0 = agent.cpuSeconds();
        const run = await runRestore(temporal.client, backup.id, repo, rsName, target);
        const cpu1 = agent.cpuSeconds();
        const agentCpuSecondsPerGiB = cpu0 === null || cpu1 === null ? null : (cpu1 - cpu0) / (backupBytes / GiB);
        const { pid, port } = run.summary.replicaSets[0]!.members[0]!;
        const documents = await countOn(target.host, loaded.largest.ns);
        if (documents !== loaded.largest.documents) throw new Error(`restored ${loaded.largest.ns} holds ${documents} documents, the backup ${loaded.largest.documents}`);
        await new NodeController(MONGOD_BIN).stop({ pid, port });
        rmSync(target.dbpath, { recursive: true, force: true });
        return { ...run, documents, agentCpuSecondsPerGiB };
      });
      const cpSeconds = cp.seconds;
      runs.push({ run: i + 1, first, cpSeconds, restoreSeconds: r.seconds, phases: r.phases, events: r.events, documents: r.documents, agentCpuSecondsPerGiB: r.agentCpuSecondsPerGiB });
      process.stderr.write(`run ${i + 1}: cp -r ${cpSeconds.toFixed(1)} s, restore ${r.seconds.toFixed(1)} s\n`);
    }
    const rows = runs.map((r) => ({
      run: r.run,
      first: r.first,
      'cp -r s': r.cpSeconds,
      'restore s': r.restoreSeconds,
      ratio: r.cpSeconds / r.restoreSeconds,
      ...Object.fromEntries(Object.entries(r.phases).map(([k, v]) => [`${k} s`, v])),
      'place ratio': r.cpSeconds / (r.phases.place ?? NaN),
    }));
    printTable(`restore: ${(backupBytes / MiB).toFixed(0)} MiB backup, cp -r of ${(sourceBytes / MiB).toFixed(0)} MiB, cache ${o.cache}`, rows);
    const cpS = median(runs.map((r) => r.cpSeconds));
    const restoreS = median(runs.map((r) => r.restoreSeconds));
    const placeS = median(runs.map((r) => r.phases.place ?? NaN));
    const peakRssBytes = { orchestrator: workers[0]!.peakRss(), agent: agent.peakRss() };
    // The profile is written when the process exits.
    if (o.profile) await agent.stop();
    return {
      sizes: { requestedBytes: o.size, backupBytes, backupFiles: backup.files, sourceBytes, loaded },
      cache: o.cache,
      runs,
      median: {
        cpSeconds: cpS,
        restoreSeconds: restoreS,
        placeSeconds: placeS,
        ratio: cpS / restoreS,
        placeRatio: cpS / placeS,
        placeMiBps: backupBytes / MiB / placeS,
        cpMiBps: sourceBytes / MiB / cpS,
        agentCpuSecondsPerGiB: runs.every((r) => r.agentCpuSecondsPerGiB !== null) ? median(runs.map((r) => r.agentCpuSecondsPerGiB!)) : null,
      },
      peakRssBytes,
      ...(o.profile ? { agentProfile: summarizeProfiles(profileDir) } : {}),
      target: { ratio: 0.9, met: cpS / restoreS >= 0.9, placeMet: cpS / placeS >= 0.9 },
    };
  } finally {
    for (const w of workers) await w.stop();
    await temporal.close();
    if (!sourceStopped) await cluster.stop();
  }
}
