/**
 * `signalWorkflows`: one signal to several workflows (a backup's children), sent by the orchestrator through its
 * Temporal client. The parent runs it as a local activity: one marker in its history and no workflow task per
 * delivered signal, where signalling each child from the workflow costs two events per child and the tasks their
 * deliveries wake. A retry signals again; the children's handlers take a repeated signal as the same news
 * (workflows/backup/replica-set-backup.ts). A workflow that has already closed is skipped: the parent learns how it
 * ended from its result.
 */
import { log } from '@temporalio/activity';
import { type Client, WorkflowNotFoundError } from '@temporalio/client';

export function signalWorkflowActivities(client: Client | undefined) {
  return {
    async signalWorkflows(input: { workflowIds: string[]; signal: string; arg?: unknown }): Promise<void> {
      if (!client) throw new Error(`no Temporal client to signal ${input.signal} with`);
      const args = input.arg === undefined ? [] : [input.arg];
      await Promise.all(
        input.workflowIds.map(async (id) => {
          try {
            await client.workflow.getHandle(id).signal(input.signal, ...args);
          } catch (e) {
            if (!(e instanceof WorkflowNotFoundError)) throw e;
            log.info('not signalled: the workflow has closed', { workflowId: id, signal: input.signal });
          }
        }),
      );
    },
  };
}

export type SignalWorkflowActivities = ReturnType<typeof signalWorkflowActivities>;
