/**
 * Runs a set of Workers as one unit, for `cutpoint worker`, `cutpoint agent` and the embedded stack: they start
 * together, stop together, and the connection they share is closed only once every one of them has stopped.
 */
import type { Worker } from '@temporalio/worker';
import type { Logger } from 'pino';

/** The part of a Worker this module uses (a structural type, so tests can stand in fakes). */
export type RunnableWorker = Pick<Worker, 'run' | 'shutdown' | 'getState'>;

/** Workers started by {@link runWorkers}. */
export interface RunningWorkers {
  /**
   * Settles once every worker has stopped and `close` has run. Rejects with the first worker's error (the original
   * error, after the others were shut down and the connection closed), or with the error of `close`.
   */
  readonly done: Promise<void>;
  /** Asks every worker that is still RUNNING to drain (in-flight activities get their shutdown grace time). */
  shutdown(): void;
}

/** Options of {@link runWorkers}. */
export interface RunWorkersOptions {
  log: Logger;
  /** Runs after every worker stopped, whatever happened: closes the connection(s) the workers used. */
  close?: () => Promise<void>;
}

/**
 * Starts every worker. The first one to fail makes all others shut down; `done` then waits for all of them
 * (allSettled), runs `close`, and rethrows that first error.
 */
export function runWorkers(workers: readonly RunnableWorker[], opts: RunWorkersOptions): RunningWorkers {
  const { log } = opts;
  let failure: { error: unknown } | undefined;
  const shutdown = () => {
    for (const w of workers) {
      if (w.getState() !== 'RUNNING') continue;
      try {
        w.shutdown();
      } catch (e) {
        log.warn({ err: e }, 'worker shutdown failed');
      }
    }
  };
  const runs = workers.map((w) =>
    w.run().catch((e: unknown) => {
      if (!failure) {
        failure = { error: e };
        log.error({ err: e }, 'a worker failed; stopping the others');
        shutdown();
      }
      throw e;
    }),
  );
  const done = (async () => {
    await Promise.allSettled(runs);
    try {
      await opts.close?.();
    } catch (e) {
      if (!failure) throw e;
      log.warn({ err: e }, 'closing the connection after a worker failure failed');
    }
    if (failure) throw failure.error;
  })();
  return { done, shutdown };
}

/**
 * Releases workers that were created but must not serve (start-up was interrupted, or a later step failed): each
 * one is started and shut down at once, which is the SDK's only way to free a Worker's hold on its connection.
 */
export async function disposeWorkers(workers: readonly RunnableWorker[], log: Logger): Promise<void> {
  const run = runWorkers(
    workers.filter((w) => w.getState() === 'INITIALIZED'),
    { log },
  );
  run.shutdown();
  await run.done.catch((e: unknown) => log.warn({ err: e }, 'disposing an unused worker failed'));
}
