/** `cutpoint up`: the embedded stack (what `npm start` runs). */
import type { Command } from 'commander';
import { healthCheck } from '../../workflows/health-check.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../../common/task-queues.ts';
import { startStack } from '../stack.ts';
import { onShutdownSignal } from './signals.ts';
import type { CliContext } from './context.ts';

export function registerUp(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('start the embedded stack: a Temporal dev server (unless TEMPORAL_ADDRESS is set) and the workers')
    .option('--once', 'exit once the stack is up and checked, instead of staying up until Ctrl-C')
    .action(async (opts: { once?: boolean }) => {
      const log = ctx.log();
      const stack = await startStack({ log, persist: !opts.once });
      const release = onShutdownSignal(() => stack.stop());
      try {
        const report = await stack.client.workflow.execute(healthCheck, {
          taskQueue: ORCHESTRATOR_TASK_QUEUE,
          workflowId: `cutpoint-health-${Date.now()}`,
          args: [{ agents: [] }],
          workflowExecutionTimeout: '2 minutes',
        });
        const ui = stack.server?.uiUrl;
        ctx.out(`cutpoint is up. Temporal ${stack.target.address} (namespace ${stack.target.namespace})`);
        ctx.out(ui ? `Temporal UI: ${ui}` : 'Temporal UI: served by your Temporal deployment (TEMPORAL_ADDRESS is set)');
        ctx.out(`orchestrator worker pid ${report.orchestrator.pid} on task queue ${report.orchestrator.taskQueue}`);
        if (opts.once) {
          await stack.stop();
          return;
        }
        ctx.out('Press Ctrl-C to stop.');
        await stack.running;
      } finally {
        release();
        await stack.stop();
      }
    });
}
