/**
 * The life cycle shared by `cutpoint worker` and `cutpoint agent`: the metrics endpoint, start-up, run until a signal,
 * drain, close.
 */
import type { Logger } from 'pino';
import { runWorkers, type RunnableWorker } from '../workers/run-workers.ts';
import { shutdownRequest } from './signals.ts';
import { metricsAddress, startMetricsEndpoint } from '../workers/metrics-endpoint.ts';

/** What a verb's start-up produced: its workers and how to close what they share. */
export interface StartedWorkers {
  workers: RunnableWorker[];
  /** Closes the connection; called once every worker stopped. */
  close: () => Promise<void>;
}

/**
 * Registers the signal handlers, then runs `start` (connect, bundle, create workers: the slow part), then runs the
 * workers until SIGINT/SIGTERM. A signal during start-up lets the step under way finish, releases what was created
 * and returns normally (exit 0); a signal later drains the workers. A worker failure stops the others and rejects.
 */
export async function serveWorkers(
  log: Logger,
  start: () => Promise<StartedWorkers>,
  onRunning: (metricsUrl?: string) => void,
  opts: { metrics?: string } = {},
): Promise<void> {
  // `--metrics` (or CUTPOINT_METRICS_ADDRESS): bound before anything connects, so a taken address fails at once.
  const address = metricsAddress(opts.metrics);
  const metrics = address ? await startMetricsEndpoint(address) : undefined;
  try {
    await serve(log, start, () => onRunning(metrics?.url));
  } finally {
    await metrics?.close();
  }
}

async function serve(log: Logger, start: () => Promise<StartedWorkers>, onRunning: () => void): Promise<void> {
  const shutdown = shutdownRequest();
  const { signal } = shutdown;
  try {
    let started: StartedWorkers;
    try {
      started = await start();
    } catch (e) {
      if (!signal.aborted) throw e;
      log.info({ err: e }, 'start-up interrupted by a signal');
      return;
    }
    const run = runWorkers(started.workers, { log, close: started.close });
    const onAbort = () => run.shutdown();
    if (signal.aborted) {
      log.info('start-up interrupted by a signal; releasing the workers');
      run.shutdown();
    } else {
      signal.addEventListener('abort', onAbort, { once: true });
      onRunning();
    }
    try {
      await run.done;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  } finally {
    shutdown.release();
  }
}
