/**
 * The embedded stack behind `cutpoint up`: a Temporal dev server (unless TEMPORAL_ADDRESS points elsewhere), the
 * orchestrator worker and agent workers, all in this process, stopped together.
 */
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { Logger } from 'pino';
import { createAgentWorkers, type AgentTarget } from '../../workers/agent.ts';
import { temporalTargetFromEnv, type TemporalTarget } from '../../lib/temporal-connection.ts';
import { createOrchestratorWorker } from '../../workers/orchestrator.ts';
import { disposeWorkers, runWorkers } from '../../workers/run-workers.ts';
import { connectClient } from '../../lib/temporal-connection.ts';
import { connectWorker } from '../../workers/runtime.ts';
import { startDevServer, type DevServer } from '../temporal/dev-server.ts';
import { stateDir } from '../temporal/paths.ts';

/** Options of {@link startStack}. */
export interface StackOptions {
  log: Logger;
  /** Validated agent targets to serve in this process. */
  agents?: AgentTarget[];
  /** Use this server instead of TEMPORAL_ADDRESS or an embedded one. */
  target?: TemporalTarget;
  /** Embedded server only: keep history in SQLite under the state dir (survives restarts). */
  persist?: boolean;
  /** Aborts start-up (a Ctrl-C while the server comes up or the workflows are bundled): startStack cleans up and rejects. */
  signal?: AbortSignal;
}

/** A running stack. */
export interface Stack {
  target: TemporalTarget;
  /** Present when this stack started its own dev server. */
  server?: DevServer;
  client: Client;
  workers: Worker[];
  /**
   * Settles when every worker stopped and everything was closed; rejects with the first worker's error (the other
   * workers are then shut down and everything is closed before it rejects).
   */
  running: Promise<void>;
  /** Drains the workers, then closes the connections and stops the dev server. Idempotent. */
  stop(): Promise<void>;
}

/** Starts the stack; on any failure (or an abort through `signal`) whatever was started is stopped again. */
export async function startStack(opts: StackOptions): Promise<Stack> {
  const { log, signal } = opts;
  const cleanups: Array<() => Promise<void>> = [];
  const undo = async () => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => log.warn({ err: e }, 'cleanup failed'));
  };
  try {
    let server: DevServer | undefined;
    let target = opts.target;
    if (!target) {
      const env = temporalTargetFromEnv();
      if (env.fromEnv) {
        target = env;
        log.info({ address: target.address, namespace: target.namespace }, 'TEMPORAL_ADDRESS is set: using that Temporal service, starting no dev server');
      }
    }
    if (!target) {
      const state = stateDir();
      server = await startDevServer(
        {
          preferDefaultPorts: true,
          dbFilename: opts.persist ? join(state, 'temporal-dev.sqlite') : undefined,
          logDir: join(state, 'logs'),
          signal,
        },
        log,
      );
      cleanups.push(() => server!.stop());
      target = { address: server.address, namespace: server.namespace };
    }
    signal?.throwIfAborted();
    const nativeConnection = await connectWorker(target);
    cleanups.push(() => nativeConnection.close());
    const { client, connection } = await connectClient(target);
    cleanups.push(() => connection.close());
    signal?.throwIfAborted();

    const workers: Worker[] = [];
    try {
      workers.push(await createOrchestratorWorker({ connection: nativeConnection, namespace: target.namespace, log }));
      signal?.throwIfAborted();
      workers.push(...(await createAgentWorkers({ connection: nativeConnection, namespace: target.namespace, targets: opts.agents ?? [], log })));
      signal?.throwIfAborted();
    } catch (e) {
      // Created workers hold the connection: release them before `undo` closes it.
      await disposeWorkers(workers, log);
      throw e;
    }

    // From here the workers own the clean-up: it runs once they all stopped (or one failed and the others drained).
    const run = runWorkers(workers, { log, close: undo });
    const running = run.done;
    running.catch(() => undefined); // runWorkers logs a worker's failure; callers await `running` for the error
    const stop = async () => {
      run.shutdown();
      await running;
    };
    return { target, server, client, workers, running, stop };
  } catch (e) {
    await undo();
    throw e;
  }
}
