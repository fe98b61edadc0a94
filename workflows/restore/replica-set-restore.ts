/**
 * `replicaSetRestore`: one replica set of a restore, a child of `clusterRestore`. Every member of the target runs
 * the same steps, each step on all members at once and each on the member's own agent: place the files → prepare
 * (truncate point) → recover (oplog applied up to it) → replay (point-in-time restores: the captured oplog applied
 * up to the target) → reset metadata (new config; shard map or identity) → start
 * as a replica set. Then the set must elect one primary. Rolling back is the parent's job: a replica set that did
 * its part is still undone when another fails.
 */
import { CancellationScope, getExternalWorkflowHandle, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { RestoreControlActivities } from '../../activities/orchestrator/restore-control.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import type { RestoreMember, RestorePhase, RestoreReplicaSetProgress, StartedMember } from '../../common/restore-types.ts';
import { CutpointPhase } from '../../common/search-attributes.ts';
import { settleAll } from '../../common/settle-all.ts';
import type { Ts } from '../../common/timestamp.ts';
import { agentSteps } from './agent-steps.ts';
import { restoreProgressQuery, restoreReplicaSetProgressSignal } from '../../common/messages.ts';
import { applyStartupOverrides, type StartupOptions } from '../../common/startup-options.ts';

/** Input of {@link replicaSetRestore}. */
export interface ReplicaSetRestoreInput {
  parentId: string;
  restoreId: string;
  backupId: string;
  repo: string;
  replicaSet: string;
  configServer: boolean;
  /** A sharded backup: shard metadata is rewritten and standalone starts skip the sharding checks. */
  sharded: boolean;
  members: RestoreMember[];
  /** The source's startup options (each member's overrides apply on top): every mongod of the restore gets them. */
  startupOptions?: StartupOptions;
  files: number;
  bytes: number;
  /** The common timestamp: oplogTruncateAfterPoint of every member. */
  truncateAfter: Ts;
  overwrite: boolean;
  agentTimeoutMs: number;
  /** Config server: each shard's new hosts. */
  shardHosts?: Record<string, string[]>;
  /** Shard: the config server's new connection string. */
  configConnectionString?: string;
  /** Config server: the balancer state recorded by the backup. */
  balancerEnabled?: boolean | null;
  /** A point-in-time restore: the captured oplog of `cluster` replayed from `from` (the base) to exactly `to`. */
  replay?: { cluster: string; from: Ts; to: Ts; batchOps: number };
}

/** What {@link replicaSetRestore} returns: the running members. */
export interface ReplicaSetRestoreResult {
  name: string;
  members: StartedMember[];
  /** A point-in-time restore: oplog entries replayed (by each member). */
  replayedEntries?: number;
}

const control = proxyActivities<RestoreControlActivities>({
  startToCloseTimeout: '1 minute',
  // A fresh replica set takes a moment to elect its primary: retried for about two minutes.
  retry: { initialInterval: '1 second', backoffCoefficient: 1.5, maximumInterval: '5 seconds', maximumAttempts: 30, nonRetryableErrorTypes: nonRetryableCodes() },
});

export async function replicaSetRestore(input: ReplicaSetRestoreInput): Promise<ReplicaSetRestoreResult> {
  const progress: RestoreReplicaSetProgress = {
    name: input.replicaSet,
    node: input.members.map((m) => m.host).join(','),
    phase: 'place',
    filesDone: 0,
    filesTotal: input.files * input.members.length,
    bytesDone: 0,
    bytesTotal: input.bytes * input.members.length,
  };
  const parent = getExternalWorkflowHandle(input.parentId);
  setHandler(restoreProgressQuery, () => ({
    kind: 'restore',
    status: 'running',
    phase: progress.phase,
    bytesDone: progress.bytesDone,
    bytesTotal: progress.bytesTotal,
    bytesPerSec: 0,
    commonTimestamp: input.truncateAfter,
    replicaSets: [progress],
  }), { description: 'Live progress of this replica set' });
  const report = async (phase: RestorePhase) => {
    progress.phase = phase;
    upsertSearchAttributes([{ key: CutpointPhase, value: phase }]);
    await parent.signal(restoreReplicaSetProgressSignal, { ...progress });
  };
  // A step on every member at once. The steps wait for their cancellation to complete (agent-steps.ts), and so does
  // this: when one fails the others are cancelled, and the child ends only once every step has, so the parent never
  // rolls a target back while a step still runs there.
  const each = <T>(fn: (m: RestoreMember, steps: ReturnType<typeof agentSteps>) => Promise<T>) => {
    const scope = new CancellationScope();
    return scope.run(() =>
      settleAll(
        input.members.map((m) => () => fn(m, agentSteps(m.host, input.agentTimeoutMs))),
        () => scope.cancel(),
      ),
    );
  };
  const base = (m: RestoreMember) => ({ restoreId: input.restoreId, dbpath: m.dbpath, startupOptions: applyStartupOverrides(input.startupOptions ?? {}, m.options) });
  const hosts = input.members.map((m) => m.host);

  await report('place');
  await each(async (m, s) => {
    const placed = await s.placeRestoreFiles({ ...base(m), repo: input.repo, backupId: input.backupId, replicaSet: input.replicaSet, overwrite: input.overwrite });
    progress.filesDone += placed.files;
    progress.bytesDone += placed.bytes;
  });

  await report('prepare');
  await each((m, s) => s.prepareRestoredNode({ ...base(m), truncateAfter: input.truncateAfter, sharded: input.sharded }));

  await report('recover');
  const recovered = await each((m, s) => s.recoverRestoredNode({ ...base(m), truncateAfter: input.truncateAfter, sharded: input.sharded }));

  let replayedEntries: number | undefined;
  if (input.replay) {
    const replay = input.replay;
    await report('replay');
    const replayed = await each((m, s) => s.replayRestoredOplog({ ...base(m), repo: input.repo, replicaSet: input.replicaSet, sharded: input.sharded, ...replay }));
    replayedEntries = replayed[0]?.entries ?? 0;
  }

  await report('reset');
  await each((m, s) =>
    s.resetRestoredMetadata({
      ...base(m),
      replicaSet: input.replicaSet,
      members: hosts,
      configServer: input.configServer,
      sharded: input.sharded,
      ...(input.shardHosts ? { shardHosts: input.shardHosts } : {}),
      ...(input.configConnectionString ? { configConnectionString: input.configConnectionString } : {}),
      ...(input.balancerEnabled !== undefined ? { balancerEnabled: input.balancerEnabled } : {}),
    }),
  );

  await report('start');
  const clusterRole = input.sharded ? (input.configServer ? 'configsvr' : 'shardsvr') : undefined;
  const started = await each((m, s) => s.startRestoredNode({ ...base(m), replicaSet: input.replicaSet, ...(clusterRole ? { clusterRole } : {}) }));
  const states = await control.checkRestoredReplicaSet({ replicaSet: input.replicaSet, hosts });

  await report('done');
  return {
    name: input.replicaSet,
    ...(replayedEntries !== undefined ? { replayedEntries } : {}),
    members: input.members.map((m, i) => ({
      host: m.host,
      dbpath: m.dbpath,
      pid: started[i]!.pid,
      port: started[i]!.port,
      state: states[m.host] ?? started[i]!.state,
      oplogTop: recovered[i]!.oplogTop,
    })),
  };
}
