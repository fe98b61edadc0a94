/**
 * What a benchmark runs against: its own Temporal dev server, a simulated cluster in this process, and cutpoint's
 * workers as separate processes (`cutpoint worker`, `cutpoint agent`), as an operator runs them — so that their peak
 * memory is their own and the copy does not share an event loop with the simulator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client, Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import { agentTaskQueue, ORCHESTRATOR_TASK_QUEUE } from '../../common/task-queues.ts';
import { SimCluster, type ClusterOptions } from '../../sim/cluster/cluster.ts';
import { connectClient } from '../../lib/temporal-connection.ts';
import { sleep } from '../../lib/process.ts';
import { startDevServer, type DevServer } from '../temporal/dev-server.ts';

const CUTPOINT_BIN = fileURLToPath(new URL('../../bin/cutpoint.js', import.meta.url));

/** A worker process of the benchmark and its peak resident memory (VmHWM), read before it is stopped. */
export interface WorkerProcess {
  role: 'orchestrator' | 'agent';
  child: ChildProcess;
  /** Peak resident set size so far, bytes (Linux `/proc/<pid>/status` VmHWM); null where unavailable. */
  peakRss(): number | null;
  /** CPU time used so far (user + system), seconds; null where unavailable. */
  cpuSeconds(): number | null;
  stop(): Promise<void>;
}

/** The Temporal side of a benchmark: a dev server of its own (or one given) and a client. */
export interface BenchTemporal {
  server: Pick<DevServer, 'address' | 'namespace' | 'stop'>;
  client: Client;
  connection: Connection;
  close(): Promise<void>;
}

/**
 * Starts a dev server (provisioned as `cutpoint up` does) and connects a client; or, given `existing` (the smoke
 * test's server), uses that one and leaves it running.
 */
export async function startBenchTemporal(log: Logger, existing?: { address: string; namespace: string }): Promise<BenchTemporal> {
  const server = existing
    ? { ...existing, stop: async () => undefined }
    : await startDevServer({ logDir: mkdtempSync(join(tmpdir(), 'cutpoint-bench-temporal-')), headless: true }, log);
  const { client, connection } = await connectClient({ address: server.address, namespace: server.namespace });
  return {
    server,
    client,
    connection,
    async close() {
      await connection.close();
      await server.stop();
    },
  };
}

/** Peak RSS of a live process from /proc, bytes. */
export function peakRssOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux). */
const USER_HZ = 100;

/**
 * CPU seconds from `/proc/<pid>/stat`: the process's own user + system time, or (`children`) that of its children
 * it has waited for (how a `cp` run from this process is accounted).
 */
export function cpuSecondsOf(pid: number | 'self' | undefined, children = false): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), numbered from 3 (state).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    const [user, system] = children ? [f[13]!, f[14]!] : [f[11]!, f[12]!];
    return (user + system) / USER_HZ;
  } catch {
    return null;
  }
}

/** The pid of the process listening as `temporal server start-dev --port <port>` (the dev server), if found. */
export function devServerPid(address: string): number | undefined {
  const port = address.split(':').pop();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      // The watchdog shell that started it has the same arguments (scripts/temporal/dev-server.ts): not that one.
      if (args[0] !== '/bin/sh' && args.includes('start-dev') && args.includes(String(port))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** Waits until `queue` has a poller of `type` (the worker process is connected and polling). */
async function waitForPoller(t: BenchTemporal, queue: string, type: 'workflow' | 'activity', child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the worker process for ${queue} exited with ${child.exitCode} before polling`);
    const r = await t.client.workflowService.describeTaskQueue({
      namespace: t.server.namespace,
      taskQueue: { name: queue },
      taskQueueType: type === 'workflow' ? 1 : 2,
    });
    if ((r.pollers?.length ?? 0) > 0) return;
    if (Date.now() > deadline) throw new Error(`no poller on ${queue} after 120 s`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/**
 * Starts `cutpoint <args>` against the benchmark's server; resolves when its task queue(s) have pollers. `nodeArgs`
 * go to node itself (`--cpu-prof`).
 */
async function startWorkerProcess(t: BenchTemporal, role: WorkerProcess['role'], args: string[], queues: Array<[string, 'workflow' | 'activity']>, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [...nodeArgs, CUTPOINT_BIN, ...args], {
    env: { ...process.env, ...env, TEMPORAL_ADDRESS: t.server.address, TEMPORAL_NAMESPACE: t.server.namespace, CUTPOINT_LOG_LEVEL: process.env.CUTPOINT_LOG_LEVEL ?? 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  const proc: WorkerProcess = {
    role,
    child,
    peakRss: () => peakRssOf(child.pid),
    cpuSeconds: () => cpuSecondsOf(child.pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
  try {
    for (const [q, type] of queues) await waitForPoller(t, q, type, child);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return proc;
}

/** The orchestrator worker process (`cutpoint worker`); `env` adds to its environment (a repository password), `nodeArgs` to node's. */
export function startOrchestrator(t: BenchTemporal, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<WorkerProcess> {
  return startWorkerProcess(t, 'orchestrator', ['worker'], [[ORCHESTRATOR_TASK_QUEUE, 'workflow']], env, nodeArgs);
}

/** One agent process (`cutpoint agent`) serving every given mongod; `env` adds to its environment, `nodeArgs` to node's. */
export function startAgent(t: BenchTemporal, members: Array<{ host: string; dbpath?: string }>, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<WorkerProcess> {
  const args = ['agent', ...members.flatMap((m) => ['--mongod', m.host])];
  if (members.every((m) => m.dbpath)) args.push(...members.flatMap((m) => ['--dbpath', m.dbpath!]));
  return startWorkerProcess(t, 'agent', args, members.map((m) => [agentTaskQueue(m.host), 'activity'] as [string, 'activity']), env, nodeArgs);
}

/** The hosts and dbpaths of every member of a simulated cluster. */
export function membersOf(cluster: SimCluster): Array<{ host: string; dbpath: string }> {
  const d = cluster.describe() as { configRS: { members: Array<{ host: string; dbpath: string }> } | null; shards: Array<{ members: Array<{ host: string; dbpath: string }> }> };
  return [...(d.configRS?.members ?? []), ...d.shards.flatMap((s) => s.members)];
}

/** The URI a backup targets: the mongos of a sharded cluster, else the replica set. */
export function targetUri(cluster: SimCluster): string {
  const d = cluster.describe() as { mongos: string | null; shards: Array<{ uri: string }> };
  return d.mongos ?? d.shards[0]!.uri;
}

/**
 * A quiet simulated cluster for measuring: one member per replica set, no periodic checkpoints during the run; each
 * member takes one stable checkpoint at the start (a backup cursor is only kept on a stable one, so a backup measured
 * here never waits for the first periodic checkpoint).
 */
export async function startQuietCluster(log: Logger, options: Partial<ClusterOptions> = {}): Promise<SimCluster> {
  const cluster = await SimCluster.start({ members: 1, checkpointMs: 3_600_000, noopMs: 10_000, log, ...options });
  for (const rs of cluster.replicaSets) {
    for (const node of rs.localNodes) {
      const deadline = Date.now() + 30_000;
      while (node.engine.checkpoint().timestamp === null) {
        if (Date.now() > deadline) throw new Error(`${node.address}: no stable timestamp 30 s after start`);
        await sleep(100);
      }
    }
  }
  return cluster;
}
