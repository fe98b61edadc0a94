/**
 * A control activity's last step: a signal to the backup's parent workflow, sent by the agent itself once the step has
 * done its work (the repository opened, the cursor open, the cursor proven alive), so that the parent hears of it as
 * the activity completes, without a workflow task of the child in between. A retry of the activity signals again;
 * the parent's handlers take a repeated signal as the same news (workflows/backup/cluster-backup.ts).
 */
import type { Client } from '@temporalio/client';

/** Who to tell and what: a signal name and its argument (the activity may add fields it learnt, e.g. `oplogEnd`). */
export interface TellWorkflow {
  workflowId: string;
  signal: string;
  arg: Record<string, unknown>;
}

/** Sends `tell` (nothing when absent), with `learnt` added to its argument. */
export async function tellWorkflow(temporal: Client | undefined, tell: TellWorkflow | undefined, learnt: Record<string, unknown> = {}): Promise<void> {
  if (!tell) return;
  if (!temporal) throw new Error(`this agent has no Temporal client to signal ${tell.workflowId} with`);
  await temporal.workflow.getHandle(tell.workflowId).signal(tell.signal, { ...tell.arg, ...learnt });
}
