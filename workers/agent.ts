/**
 * Agent workers: one Worker per mongod, each on `cutpoint-agent:<host:port>`, with no workflows. One process may
 * serve several mongods of a host (architecture.md, "Processes"), as one pbm-agent serves one mongod.
 */
import type { NativeConnection} from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { describeWorkerActivity } from '../activities/describe-worker.ts';
import { agentTaskQueue, normalizeHostPort } from '../common/task-queues.ts';
import { installRuntime } from './runtime.ts';

export interface AgentTarget {
  /** host:port of the mongod this agent serves, as the replica set knows it. */
  mongod: string;
  /** Its dbpath when the agent cannot ask the mongod (getCmdLineOpts) for it. */
  dbpath?: string;
}

export interface AgentOptions {
  connection: NativeConnection;
  namespace: string;
  targets: AgentTarget[];
}

/** Creates (does not run) one Worker per mongod. Duplicate mongods are an input error. */
export async function createAgentWorkers(opts: AgentOptions): Promise<Worker[]> {
  installRuntime();
  const seen = new Set<string>();
  const workers: Worker[] = [];
  for (const t of opts.targets) {
    const mongod = normalizeHostPort(t.mongod);
    if (seen.has(mongod)) throw new Error(`--mongod ${mongod} given twice`);
    seen.add(mongod);
    workers.push(
      await Worker.create({
        connection: opts.connection,
        namespace: opts.namespace,
        taskQueue: agentTaskQueue(mongod),
        activities: { describeWorker: describeWorkerActivity('agent', mongod) },
        shutdownGraceTime: '20 seconds',
      }),
    );
  }
  return workers;
}
