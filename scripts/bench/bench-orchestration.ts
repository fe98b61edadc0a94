/**
 * `bench orchestration`: what cutpoint adds on top of the bytes. End-to-end backups of a nearly empty sharded
 * cluster with 1, 4 and 16 shards (one member each, one agent process serving every mongod), split by phase, with
 * the Temporal history events each backup costs, in all and per replica set. The target: 16 shards under 5 s, and
 * each shard from 4 to 16 at most 150 ms more. The load average before and after each case is recorded: the machine
 * may be shared. The CPU time of each process taking part is recorded per run; with `profile`, each case gets an
 * orchestrator and an agent of its own, CPU-profiled over the whole case (start-up, the warm-up backup and the runs).
 */
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { runBackup, type BackupRun } from './backup-run.ts';
import { median, printTable } from './report.ts';
import { summarizeProfiles } from './cpu-profile.ts';
import { cpuSecondsOf, devServerPid, membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri, type WorkerProcess } from './stack.ts';

/** Options of the orchestration benchmark. */
export interface OrchestrationBenchOptions {
  shards: number[];
  runs: number;
  dir: string;
  log: Logger;
  /** CPU-profile the orchestrator and the agent of each case (`node --cpu-prof`); their busiest functions go into the result. */
  profile?: boolean;
  /** A running Temporal server to use instead of starting one. */
  temporal?: { address: string; namespace: string };
}

/** Median of each phase over runs. */
export function medianPhases(runs: BackupRun[]): Record<string, number> {
  const names = Object.keys(runs[0]?.phases ?? {});
  return Object.fromEntries(names.map((n) => [n, median(runs.map((r) => r.phases[n] ?? 0))]));
}

/** The processes whose CPU {@link benchOrchestration} samples, in the order it samples them. */
const CPU_PROCESSES = ['simulator', 'orchestrator', 'agent', 'temporalServer'] as const;

export async function benchOrchestration(o: OrchestrationBenchOptions): Promise<Record<string, unknown>> {
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const profileArgs = (n: number, role: string) => (o.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(o.dir, `profile-${n}`, role)}`] : []);
  // Profiled, each case has an orchestrator of its own (a profile is written when its process exits).
  let orchestrator = await startOrchestrator(temporal, {}, profileArgs(o.shards[0] ?? 0, 'orchestrator'));
  const cases: Array<Record<string, unknown>> = [];
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const n of o.shards) {
      const cluster = await startQuietCluster(o.log, { shards: n, dir: join(o.dir, `sim-${n}`) });
      let agent: WorkerProcess | undefined;
      try {
        if (o.profile && n !== o.shards[0]) orchestrator = await startOrchestrator(temporal, {}, profileArgs(n, 'orchestrator'));
        agent = await startAgent(temporal, membersOf(cluster), {}, profileArgs(n, 'agent'));
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
        const byProcess: number[][] = [];
        for (let i = 0; i < o.runs; i++) {
          const before = cpu();
          const run = await runBackup(temporal.client, { uri, repo });
          const each = cpu().map((v, k) => (v ?? 0) - (before[k] ?? 0));
          busy.push(each.reduce((sum, v) => sum + v, 0) / run.seconds);
          byProcess.push(each);
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
          // CPU seconds of each process over a run (medians): where a run's time goes when it waits on the CPUs.
          cpuSeconds: Object.fromEntries(CPU_PROCESSES.map((name, k) => [name, median(byProcess.map((p) => p[k]!))])),
        });
        rows.push({ shards: n, 'replica sets': n + 1, 'total s': seconds, ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [`${k} s`, v])), events, 'events per replica set': perReplicaSet, 'largest history': largest, files: runs[0]!.files, 'cores busy': median(busy), ...Object.fromEntries(CPU_PROCESSES.map((name, k) => [`${name} cpu s`, median(byProcess.map((p) => p[k]!))])) });
        process.stderr.write(`${n} shards: ${seconds.toFixed(2)} s, ${events} events\n`);
      } finally {
        await agent?.stop();
        if (o.profile) await orchestrator.stop();
        await cluster.stop();
      }
      if (o.profile) {
        const last = cases[cases.length - 1];
        if (last?.shards === n) last.profile = { orchestrator: summarizeProfiles(join(o.dir, `profile-${n}`, 'orchestrator')), agent: summarizeProfiles(join(o.dir, `profile-${n}`, 'agent')) };
      }
    }
    printTable(`orchestration: nearly empty cluster, members 1, median of ${o.runs} runs`, rows);
    const one = cases.find((c) => c.shards === 1)?.seconds as number | undefined;
    const four = cases.find((c) => c.shards === 4)?.seconds as number | undefined;
    const sixteen = cases.find((c) => c.shards === 16)?.seconds as number | undefined;
    return {
      runsPerCase: o.runs,
      cases,
      ...(o.profile ? {} : { orchestratorPeakRssBytes: orchestrator.peakRss() }),
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
    if (!o.profile) await orchestrator.stop();
    await temporal.close();
  }
}
