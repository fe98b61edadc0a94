/** `cutpoint worker`: the orchestrator worker on task queue `cutpoint`. */
import type { Command } from 'commander';
import { temporalTargetFromEnv } from '../../workers/connection.ts';
import { createOrchestratorWorker } from '../../workers/orchestrator.ts';
import { onShutdownSignal } from './signals.ts';
import { connectWorker } from './temporal.ts';
import type { CliContext } from './context.ts';

export function registerWorker(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run the orchestrator worker (task queue "cutpoint"); Temporal from TEMPORAL_* variables')
    .action(async () => {
      const log = ctx.log();
      const target = temporalTargetFromEnv();
      const connection = await connectWorker(target);
      try {
        const worker = await createOrchestratorWorker({ connection, namespace: target.namespace, log });
        const release = onShutdownSignal(() => worker.shutdown());
        log.info({ address: target.address, namespace: target.namespace }, 'orchestrator worker running');
        try {
          await worker.run();
        } finally {
          release();
        }
      } finally {
        await connection.close();
      }
    });
}
