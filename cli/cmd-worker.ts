/** `cutpoint worker`: the orchestrator worker on task queue `cutpoint`. */
import type { Command } from 'commander';
import { temporalTargetFromEnv } from '../lib/temporal-connection.ts';
import { createOrchestratorWorker } from '../workers/orchestrator.ts';
import type { CliContext } from './context.ts';
import { serveWorkers } from './serve.ts';
import { connectWorker } from '../workers/runtime.ts';

/** Adds the `worker` verb to `program`. */
export function registerWorker(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run the orchestrator worker (task queue "cutpoint"); Temporal from TEMPORAL_* variables')
    .option('--metrics <host:port>', `serve Prometheus metrics at http://<host:port>/metrics (default $CUTPOINT_METRICS_ADDRESS; none when unset)`)
    .action(async (o: { metrics?: string }) => {
      const log = ctx.log();
      const target = temporalTargetFromEnv();
      await serveWorkers(
        log,
        async () => {
          const connection = await connectWorker(target);
          try {
            const worker = await createOrchestratorWorker({ connection, namespace: target.namespace, log });
            return { workers: [worker], close: () => connection.close() };
          } catch (e) {
            await connection.close();
            throw e;
          }
        },
        (metrics) => log.info({ address: target.address, namespace: target.namespace, metrics }, 'orchestrator worker running'),
        { metrics: o.metrics },
      );
    });
}
