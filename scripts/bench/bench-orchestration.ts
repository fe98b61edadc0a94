/**
 * `bench orchestration`: what cutpoint adds on top of the bytes. End-to-end backups of a nearly empty sharded
 * cluster with 1, 4 and 16 shards (one member each, one agent process serving every mongod), split by phase, with
 * the Temporal history events each backup costs, in all and per replica set. The target: 16 shards under 5 s, and
 * each shard from 4 to 16 at most 150 ms more. The load average before and after each case is recorded: the machine
 * may be shared.
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { runBackup, type BackupRun } from './backup-run.ts';
import { median, printTable } from './report.ts';
import { cpuSecondsOf, devServerPid, membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri, type WorkerProcess } from './stack.ts';

/** Options of the orchestration benchmark. */
export interface OrchestrationBenchOptions {
  shards: number[];
  runs: number;
  dir: string;
  log: Logger;
  /** A running Temporal server to use instead of starting one. */
  temporal?: { address: string; namespace: string };
}

/** Median of each phase over runs. */
export function medianPhases(runs: BackupRun[]): Record<string, number> {
  const names = Object.keys(runs[0]?.phases ?? {});
  return Object.fromEntries(names.map((n) => [n, median(runs.map((r) => r.phases[n] ?? 0))]));
}

export async function benchOrchestration(o: OrchestrationBenchOptions): Promise<Record<string, unknown>> {
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const orchestrator = await startOrchestrator(temporal);
  const cases: Array<Record<string, unknown>> = [];
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const n of o.shards) {
      const cluster = await startQuietCluster(o.log, { shards: n, dir: join(o.dir, `sim-${n}`) });
      let agent: WorkerProcess | undefined;
      try {
        agent = await startAgent(temporal, membersOf(cluster));
        const uri = targetUri(cluster);
        const repo = join(o.dir, `repo-${n}`);
        // A first backup warms the workers (workflow bundle, connections); it is not counted.
        await runBackup(temporal.client, { uri, repo });
        const runs: BackupRun[] = [];
        const loadBefore = loadavg()[0]!;
        // CPU of everything on the machine that takes part: is the run waiting on something, or on the CPUs?
        const serverPid = devServerPid(temporal.server.address);
        const cpu = () => [cpuSecondsOf('self'), orchestrator.cpuSeconds(), agent!.cpuSeconds(), cpuSecondsOf(serverPid)];
        const busy: number[] = [];
        for (let i = 0; i < o.runs; i++) {
          const before = cpu();
          const run = await runBackup(temporal.client, { uri, repo });
          const used = cpu().reduce((sum: number, v, k) => sum + (v ?? 0) - (before[k] ?? 0), 0);
          busy.push(used / run.seconds);
          runs.push(run);
        }
        const phases = medianPhases(runs);
        const seconds = median(runs.map((r) => r.seconds));
        const events = median(runs.map((r) => r.events.total));
        const largest = median(runs.map((r) => r.events.largest));
        const perReplicaSet = events / (n + 1);
        cases.push({
          shards: n,
          replicaSets: n + 1,
          seconds,
          phases,
          events,
          largestHistory: largest,
          eventsPerReplicaSet: perReplicaSet,
          // One-minute load average before and after the measured runs.
          loadAverage: [loadBefore, loadavg()[0]!],
          files: runs[0]!.files,
          bytes: runs[0]!.bytes,
          runs: runs.map((r) => ({ seconds: r.seconds, phases: r.phases, events: r.events.total })),
          agentPeakRssBytes: agent.peakRss(),
          // CPU seconds per second of backup, over the simulator, the workers and the Temporal server.
          coresBusy: median(busy),
        });
        rows.push({ shards: n, 'replica sets': n + 1, 'total s': seconds, ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [`${k} s`, v])), events, 'events per replica set': perReplicaSet, 'largest history': largest, files: runs[0]!.files, 'cores busy': median(busy) });
        process.stderr.write(`${n} shards: ${seconds.toFixed(2)} s, ${events} events\n`);
      } finally {
        await agent?.stop();
        await cluster.stop();
      }
    }
    printTable(`orchestration: nearly empty cluster, members 1, median of ${o.runs} runs`, rows);
    const one = cases.find((c) => c.shards === 1)?.seconds as number | undefined;
    const four = cases.find((c) => c.shards === 4)?.seconds as number | undefined;
    const sixteen = cases.find((c) => c.shards === 16)?.seconds as number | undefined;
    return {
      runsPerCase: o.runs,
      cases,
      orchestratorPeakRssBytes: orchestrator.peakRss(),
      target:
        sixteen === undefined
          ? null
          : {
              sixteenShardSeconds: sixteen,
              overSingleShard: one === undefined ? null : sixteen - one,
              under5s: sixteen < 5,
              // Seconds each shard from 4 to 16 adds (target: at most 0.150).
              perShardFrom4: four === undefined ? null : (sixteen - four) / 12,
            },
    };
  } finally {
    await orchestrator.stop();
    await temporal.close();
  }
}
