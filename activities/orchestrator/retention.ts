/**
 * The retention activity: the prune of repository/prune.ts (the same code `cutpoint prune` runs) inside the
 * orchestrator worker, with the worker's Temporal client so that `running` manifests are checked against their
 * workflows.
 */
import { heartbeat } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { RetentionInput, RetentionSummary } from '../../common/schedule-types.ts';
import { workflowRunning } from '../../lib/temporal-connection.ts';
import { openRepository } from '../../repository/catalogue.ts';
import { prune } from '../../repository/prune.ts';

export function retentionActivities(client: Client | undefined) {
  return {
    /** Applies the keep policy (takes the repository's prune lock unless `dryRun`). */
    async applyRetention(input: RetentionInput): Promise<RetentionSummary> {
      heartbeat();
      return prune(await openRepository(input.repo), {
        policy: input.policy,
        running: client ? (id) => workflowRunning(client, id) : null,
        dryRun: input.dryRun === true,
        // The retention workflow waits (tries again every minute for up to an hour) while backups hold the repository.
        ifLocked: 'fail',
        ...(input.cluster !== undefined ? { cluster: input.cluster } : {}),
      });
    },
  };
}

export type RetentionActivities = ReturnType<typeof retentionActivities>;
