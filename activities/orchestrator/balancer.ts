/**
 * The balancer around a sharded backup: stopped before the cursors open, so that no chunk migration is in flight at
 * the common timestamp (a restored cluster would otherwise start mid-migration, with orphaned documents and a pending
 * range deletion), and put back to what it was on every path: success, failure, cancel, worker crash.
 *
 * The prior state is written to the `running` cluster manifest before the balancer is touched, so a retry after a
 * crash between "read the state" and "stop it" still knows the truth (a second read would see it stopped).
 */
import { log } from '@temporalio/activity';
import type { MongoTarget } from '../../common/target.ts';
import { withClient } from '../../lib/mongo/client.ts';
import { fsRepository, type Repository } from '../../repository/repository.ts';

export interface BalancerActivityContext {
  repository: (repo: string) => Repository;
}

export function balancerActivities(ctx: BalancerActivityContext = { repository: (repo) => fsRepository(repo) }) {
  return {
    /**
     * Records whether the balancer was enabled (in the cluster manifest, once), then stops it and waits for any
     * round in progress to end. Returns the recorded prior state.
     */
    async stopBalancer(input: { target: MongoTarget; repo: string; backupId: string }): Promise<{ wasEnabled: boolean }> {
      const repo = ctx.repository(input.repo);
      return withClient(input.target, {}, async (client) => {
        const admin = client.db('admin');
        const manifest = await repo.readClusterManifest(input.backupId);
        if (!manifest) throw new Error(`backup ${input.backupId} has no manifest in ${input.repo}`);
        let wasEnabled = manifest.balancerWasEnabled;
        if (wasEnabled === null) {
          const status = await admin.command({ balancerStatus: 1 });
          wasEnabled = status.mode !== 'off';
          await repo.writeClusterManifest({ ...manifest, balancerWasEnabled: wasEnabled });
        }
        // balancerStop waits for a round in progress to finish (maxTimeMS bounds the wait).
        if (wasEnabled) await admin.command({ balancerStop: 1, maxTimeMS: 5 * 60_000 });
        log.info(wasEnabled ? 'balancer stopped' : 'balancer was already off', { wasEnabled });
        return { wasEnabled };
      });
    },

    /**
     * Puts the balancer back on if the manifest records it was on before the backup (read from there, so a stop that
     * failed half-way is undone too). Idempotent.
     */
    async restoreBalancer(input: { target: MongoTarget; repo: string; backupId: string }): Promise<{ started: boolean }> {
      const manifest = await ctx.repository(input.repo).readClusterManifest(input.backupId);
      if (manifest?.balancerWasEnabled !== true) return { started: false };
      await withClient(input.target, {}, async (client) => {
        await client.db('admin').command({ balancerStart: 1, maxTimeMS: 60_000 });
      });
      log.info('balancer restarted');
      return { started: true };
    },
  };
}

export type BalancerActivities = ReturnType<typeof balancerActivities>;
