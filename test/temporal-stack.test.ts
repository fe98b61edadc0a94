/**
 * The foundation on a real Temporal server: workers of both roles run a real workflow with activities, search
 * attributes are registered, and the history of that run replays against today's workflow code.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEARCH_ATTRIBUTES } from '../common/search-attributes.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import { createAgentWorkers } from '../workers/agent.ts';
import { workflowBundle } from '../workers/bundle.ts';
import { createLogger } from '../lib/logger.ts';
import { createOrchestratorWorker } from '../workers/orchestrator.ts';
import { runWorkers, type RunningWorkers } from '../workers/run-workers.ts';
import { healthCheck } from '../workflows/health-check.ts';
import { recordHistories } from './helpers/record-histories.ts';
import { connectHarness, type TemporalHarness } from './helpers/temporal.ts';

const log = createLogger('warn');
let h: TemporalHarness;
let workers: RunningWorkers | undefined;

beforeAll(async () => {
  h = await connectHarness();
  workers = runWorkers(
    [
      await createOrchestratorWorker({ connection: h.native, namespace: h.namespace, log }),
      ...(await createAgentWorkers({
        connection: h.native,
        namespace: h.namespace,
        targets: [{ mongod: '127.0.0.1:27101' }, { mongod: 'LOCALHOST:27102' }],
        log,
      })),
    ],
    { log, close: () => h.close() },
  );
});

afterAll(async () => {
  workers?.shutdown();
  await workers?.done;
});

describe('Temporal dev server provisioned by the project', () => {
  it('has every cutpoint search attribute registered', async () => {
    const res = await h.client.connection.operatorService.listSearchAttributes({ namespace: h.namespace });
    for (const key of SEARCH_ATTRIBUTES) {
      expect(res.customAttributes?.[key.name], key.name).toBeDefined();
    }
  });

  it('runs healthCheck: the orchestrator and each agent queue execute their activity', async () => {
    const workflowId = `test-health-${Date.now()}`;
    const report = await h.client.workflow.execute(healthCheck, {
      taskQueue: ORCHESTRATOR_TASK_QUEUE,
      workflowId,
      args: [{ agents: ['127.0.0.1:27101', 'localhost:27102'] }],
      workflowExecutionTimeout: '1 minute',
    });
    expect(report.orchestrator).toMatchObject({ role: 'orchestrator', taskQueue: 'cutpoint', pid: process.pid });
    expect(report.agents.map((a) => [a.role, a.taskQueue, a.mongod])).toEqual([
      ['agent', 'cutpoint-agent:127.0.0.1:27101', '127.0.0.1:27101'],
      ['agent', 'cutpoint-agent:localhost:27102', 'localhost:27102'],
    ]);

    // The history of this very run replays deterministically against the current workflow code.
    const history = await h.client.workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle(log) }, history, workflowId);

    // CUTPOINT_RECORD_HISTORIES=1 refreshes the committed fixture that the offline replay test reads.
    await recordHistories(h.client, 'health-check', [workflowId]);
  });

  it('fails a health check whose agent is not running, quickly and by name', async () => {
    const started = Date.now();
    const err = await h.client.workflow
      .execute(healthCheck, {
        taskQueue: ORCHESTRATOR_TASK_QUEUE,
        workflowId: `test-health-missing-${Date.now()}`,
        args: [{ agents: ['127.0.0.1:1'], timeout: '3 seconds' }],
        workflowExecutionTimeout: '1 minute',
      })
      .catch((e: unknown) => e as Error);
    // Quickly: the 3-second activity timeout, not the workflow's minute.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    // By name: the failure names the agent's task queue; the activity's timeout stays as its cause.
    const failure = (err as WorkflowFailedError).cause;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).type).toBe('WORKER_UNAVAILABLE');
    expect(failure?.message).toMatch(/agent of mongod 127\.0\.0\.1:1 did not answer on task queue cutpoint-agent:127\.0\.0\.1:1/);
    const activityFailure = failure?.cause as ActivityFailure | undefined;
    expect(activityFailure).toBeInstanceOf(ActivityFailure);
    expect(activityFailure?.message).toMatch(/activity task timed out/i);
  });
});
