/** `cutpoint up`: the embedded stack (what `npm start` runs). */
import type { Command } from 'commander';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import { healthCheck } from '../workflows/health-check.ts';
import { join } from 'node:path';
import { EXIT, exitCodeFor } from '../common/errors.ts';
import { formatTs } from '../common/timestamp.ts';
import { backupResult, cancelBackup, startBackup } from '../api/backups.ts';
import { discoverLocalMembers, startDemoCluster, type DemoCluster } from '../scripts/demo/cluster.ts';
import { startStack, type Stack } from '../scripts/demo/stack.ts';
import { stateDir } from '../scripts/temporal/paths.ts';
import type { CliContext } from './context.ts';
import type { AgentTarget } from '../workers/agent.ts';
import { shutdownRequest, untilAborted } from './signals.ts';
import { metricsAddress, startMetricsEndpoint } from '../workers/metrics-endpoint.ts';

/** Adds the `up` verb to `program`. */
export function registerUp(program: Command, ctx: CliContext): void {
  program
    .command('up')
    .description('start the embedded stack: a Temporal dev server (unless TEMPORAL_ADDRESS is set) and the workers')
    .option('--once', 'exit when the backup ends, instead of staying up until Ctrl-C')
    .option('--uri <uri>', 'back up this replica set or sharded cluster (a mongos) instead of the simulated cluster; its members on this host get an agent here')
    .option('--repo <dir>', 'repository for the backup (default: repo-v2/ under the state directory)')
    .option('--json', 'print the backup summary as JSON on stdout, nothing else there (implies --once)')
    .option('--no-backup', 'only bring the stack up')
    .option('--metrics <host:port>', `serve Prometheus metrics at http://<host:port>/metrics (default $CUTPOINT_METRICS_ADDRESS; none when unset)`)
    .action(async (opts: { once?: boolean; uri?: string; repo?: string; json?: boolean; backup: boolean; metrics?: string }) => {
      const log = ctx.log();
      if (opts.json) opts.once = true;
      // With --json, stdout carries only the summary: the human lines go to stderr.
      const say = opts.json ? (line: string) => process.stderr.write(line + '\n') : ctx.out;
      const address = metricsAddress(opts.metrics);
      // Bound first: a taken address fails at once (exit 2), before a dev server or a cluster starts.
      const metrics = address ? await startMetricsEndpoint(address) : undefined;
      // Registered before the slow start-up (a dev server, perhaps a Go build, bundling): Ctrl-C ends it cleanly.
      const shutdown = shutdownRequest();
      const { signal } = shutdown;
      try {
        let stack: Stack;
        let demo: DemoCluster | undefined;
        let agents: AgentTarget[];
        try {
          demo = opts.uri ? undefined : await startDemoCluster(log, stateDir());
          agents = demo?.members ?? (await discoverLocalMembers(opts.uri!));
          if (opts.uri) say(`${agents.length} member(s) of ${opts.uri} on this host get an agent here${agents.length ? `: ${agents.map((a) => a.mongod).join(', ')}` : ' (run `cutpoint agent` beside the others)'}`);
          stack = await startStack({ log, persist: !opts.once, signal, agents });
        } catch (e) {
          await demo?.stop();
          if (!signal.aborted) throw e;
          log.info({ err: e }, 'start-up interrupted by a signal');
          return;
        }
        try {
          const handle = await stack.client.workflow.start(healthCheck, {
            taskQueue: ORCHESTRATOR_TASK_QUEUE,
            workflowId: `cutpoint-health-${Date.now()}`,
            args: [{ agents: agents.map((a) => a.mongod) }],
            workflowExecutionTimeout: '2 minutes',
          });
          const workersGone = stack.running.then(() => {
            throw new Error('the workers stopped during the health check');
          });
          const report = await untilAborted(Promise.race([handle.result(), workersGone]), signal);
          if (!report) {
            await handle.terminate('cutpoint up was stopped during its health check').catch(() => undefined);
            return;
          }
          const ui = stack.server?.uiUrl;
          say(`cutpoint is up. Temporal ${stack.target.address} (namespace ${stack.target.namespace})`);
          say(ui ? `Temporal UI: ${ui}` : 'Temporal UI: served by your Temporal deployment (TEMPORAL_ADDRESS is set)');
          if (metrics) say(`Prometheus metrics: ${metrics.url}`);
          say(`orchestrator worker pid ${report.orchestrator.pid} on task queue ${report.orchestrator.taskQueue}; ${report.agents.length} agent(s)`);
          if (demo) say(`simulated sharded cluster ${demo.uri} (2 shards and a config server, 3 members each) with the bank workload (dbpaths under ${demo.dir})`);
          if (opts.backup) {
            const repo = opts.repo ?? join(stateDir(), 'repo-v2');
            const { id } = await startBackup(stack.client, { uri: opts.uri ?? demo!.uri, repo, keepAliveIntervalMs: 5000 });
            say(`backup ${id} started into ${repo}${ui ? ` (${ui}/namespaces/${stack.target.namespace}/workflows/${id})` : ''}`);
            const summary = await untilAborted(backupResult(stack.client, id), signal);
            if (!summary) {
              await cancelBackup(stack.client, id, 'cutpoint up was stopped').catch(() => undefined);
              await backupResult(stack.client, id).catch(() => undefined);
              return;
            }
            if (opts.json) ctx.out(JSON.stringify(summary));
            else say(`backup ${id}: ${summary.status}, ${summary.bytes} bytes${summary.commonTimestamp ? `, common timestamp ${formatTs(summary.commonTimestamp)}` : ''}`);
            if (summary.status !== 'complete') ctx.setExit(summary.status === 'cancelled' ? EXIT.cancelled : exitCodeFor(summary.error?.code));
          }
          if (opts.once) return;
          say('Press Ctrl-C to stop.');
          await untilAborted(stack.running, signal);
        } finally {
          await stack.stop();
          await demo?.stop();
        }
      } finally {
        shutdown.release();
        await metrics?.close();
      }
    });
}
