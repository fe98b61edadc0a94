/**
 * The embedded stack behind `cutpoint up`: a Temporal dev server (unless TEMPORAL_ADDRESS points elsewhere), the
 * orchestrator worker and agent workers, all in this process, stopped together.
 */
import { join } from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createAgentWorkers, type AgentTarget } from '../workers/agent.ts';
import { temporalTargetFromEnv, type TemporalTarget } from '../workers/connection.ts';
import { createOrchestratorWorker } from '../workers/orchestrator.ts';
import { connectClient, connectWorker } from './cli/temporal.ts';
import { startDevServer, type DevServer } from './temporal/dev-server.ts';
import { stateDir } from './temporal/paths.ts';

export interface StackOptions {
  log: Logger;
  agents?: AgentTarget[];
  /** Use this server instead of TEMPORAL_ADDRESS or an embedded one. */
  target?: TemporalTarget;
  /** Embedded server only: keep history in SQLite under the state dir (survives restarts). */
  persist?: boolean;
}

export interface Stack {
  target: TemporalTarget;
  /** Present when this stack started its own dev server. */
  server?: DevServer;
  client: Client;
  workers: Worker[];
  /** Settles when every worker stopped; rejects if one crashed. */
  running: Promise<void>;
  stop(): Promise<void>;
}

/** Starts the stack; on any failure whatever was started is stopped again. */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const { log } = opts;
  const cleanups: Array<() => Promise<void>> = [];
  const undo = async () => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => log.warn({ err: e }, 'cleanup failed'));
  };
  try {
    let server: DevServer | undefined;
    let target = opts.target;
    if (!target) {
      const env = temporalTargetFromEnv();
      if (env.fromEnv) target = env;
    }
    if (!target) {
      const state = stateDir();
      server = await startDevServer(
        {
          preferDefaultPorts: true,
          dbFilename: opts.persist ? join(state, 'temporal-dev.sqlite') : undefined,
          logDir: join(state, 'logs'),
        },
        log,
      );
      cleanups.push(() => server!.stop());
      target = { address: server.address, namespace: server.namespace };
    }
    const nativeConnection: NativeConnection = await connectWorker(target);
    cleanups.push(() => nativeConnection.close());
    const { client, connection }: { client: Client; connection: Connection } = await connectClient(target);
    cleanups.push(() => connection.close());

    const workers = [
      await createOrchestratorWorker({ connection: nativeConnection, namespace: target.namespace, log }),
      ...(await createAgentWorkers({ connection: nativeConnection, namespace: target.namespace, targets: opts.agents ?? [] })),
    ];
    const running = Promise.all(workers.map((w) => w.run())).then(() => undefined);
    // Observe crashes even before anyone awaits `running`.
    running.catch((e: unknown) => log.error({ err: e }, 'a worker stopped with an error'));

    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= (async () => {
        for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
        await running.catch(() => undefined);
        await undo();
      })();
      return stopping;
    };
    return { target, server, client, workers, running, stop };
  } catch (e) {
    await undo();
    throw e;
  }
}
