/**
 * `seedMember`: a new secondary seeded from a backup instead of an initial sync (TokuMX "Creating New Replicas",
 * MongoDB's "add a member from a data-file copy"). One replica set's files are placed for the new member, recovered
 * to the replica set's own consistent point (prepare + recover, as a restore), its replica-set config emptied (it
 * gets the set's config when it is added), started with `--replSet`, added to the running set (replSetReconfig on its
 * primary, priority 0 and no vote while it catches up), and the set's primary must then report it SECONDARY. It
 * catches up from the primary's oplog, which must still reach back to the backup's timestamp.
 */
import { CancellationScope, isCancellation, log, proxyActivities, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { RestoreControlActivities } from '../../activities/orchestrator/restore-control.ts';
import { nonRetryableCodes } from '../../common/errors.ts';
import type { RestorePhase, RestoreProgress, SeedInput, StartedMember } from '../../common/restore-types.ts';
import { CutpointCluster, CutpointKind, CutpointPhase, CutpointStatus } from '../../common/search-attributes.ts';
import { failureInfo, failWith } from '../common/outcome.ts';
import { RESTORE_OPTIONS, resolveNumber } from '../../common/options.ts';
import { agentSteps } from './agent-steps.ts';
import { restoreProgressQuery } from '../../common/messages.ts';
import { checkTargets, verifyAll } from './preflight.ts';
import { applyStartupOverrides } from '../../common/startup-options.ts';

const control = proxyActivities<RestoreControlActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

/** What {@link seedMember} returns: the new member, running, and the state the primary reports for it. */
export interface SeedSummary {
  id: string;
  backupId: string;
  replicaSet: string;
  member: StartedMember;
  /** As the set's primary reports it (replSetGetStatus); SECONDARY on success. */
  stateOnPrimary: string | null;
}

export async function seedMember(input: SeedInput): Promise<SeedSummary> {
  const id = workflowInfo().workflowId;
  const agentTimeoutMs = resolveNumber('agentTimeoutMs', RESTORE_OPTIONS.agentTimeoutMs, input.agentTimeoutMs);
  const m = input.member;
  let phase = 'plan' as RestorePhase;
  let status: RestoreProgress['status'] = 'running';
  const enter = (p: RestorePhase) => {
    phase = p;
    upsertSearchAttributes([{ key: CutpointPhase, value: p }, { key: CutpointStatus, value: status }]);
  };
  setHandler(restoreProgressQuery, () => ({ kind: 'restore', status, phase, bytesDone: 0, bytesTotal: 0, bytesPerSec: 0, replicaSets: [{ name: input.replicaSet, node: m.host, phase, filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 }] }));
  upsertSearchAttributes([{ key: CutpointKind, value: 'restore' }, { key: CutpointStatus, value: 'running' }]);

  const steps = agentSteps(m.host, agentTimeoutMs);
  const base = { restoreId: id, dbpath: m.dbpath };
  let touched = false;
  try {
    const plan = await control.loadRestorePlan({ repo: input.repo, backupId: input.backupId, to: { [input.replicaSet]: [m] }, only: input.replicaSet });
    const rs = plan.replicaSets[0]!;
    // The source's startup options, with the new member's overrides: every mongod this seed starts gets them.
    const member = { ...base, startupOptions: applyStartupOverrides(rs.startupOptions, m.options) };
    upsertSearchAttributes([{ key: CutpointCluster, value: plan.cluster }]);
    enter('check');
    await checkTargets(id, [m], input.overwrite === true, agentTimeoutMs);
    enter('verify');
    await verifyAll(input.repo, input.backupId, [rs], () => undefined);
    touched = true;
    enter('place');
    await steps.placeRestoreFiles({ ...member, repo: input.repo, backupId: input.backupId, replicaSet: rs.name, overwrite: input.overwrite === true });
    const to = rs.extendedTo ?? plan.commonTimestamp;
    enter('prepare');
    await steps.prepareRestoredNode({ ...member, truncateAfter: to, sharded: plan.sharded });
    enter('recover');
    const { oplogTop } = await steps.recoverRestoredNode({ ...member, truncateAfter: to, sharded: plan.sharded });
    enter('reset');
    // No config of its own: a member being added learns the set's config from the set (its primary's heartbeats).
    await steps.resetRestoredMetadata({ ...member, replicaSet: rs.name, members: null, configServer: rs.configServer, sharded: plan.sharded });
    enter('start');
    const clusterRole = plan.sharded ? (rs.configServer ? 'configsvr' : 'shardsvr') : undefined;
    const started = await steps.startRestoredNode({ ...member, replicaSet: rs.name, ...(clusterRole ? { clusterRole } : {}) });
    await steps.commitRestoreTarget(base);
    let stateOnPrimary: string | null = null;
    if (input.join) {
      enter('join');
      const target = { uri: input.join.uri, credentials: input.join.credentials ?? { kind: 'env' as const } };
      await control.addReplicaSetMember({ target, host: m.host, replicaSet: rs.name });
      const deadline = Date.now() + (input.secondaryTimeoutMs ?? 120_000);
      for (;;) {
        stateOnPrimary = (await control.memberStateOf({ target, host: m.host })).state;
        if (stateOnPrimary === 'SECONDARY') break;
        if (Date.now() > deadline) {
          throw failWith({
            code: 'MONGO_UNREACHABLE',
            message: `the seeded member ${m.host} is running (pid ${started.pid}) and was added to ${rs.name}, but the primary reports it ${stateOnPrimary}, not SECONDARY, after ${input.secondaryTimeoutMs ?? 120_000} ms`,
          });
        }
        await sleep('2 seconds');
      }
    }
    status = 'complete';
    enter('done');
    return { id, backupId: input.backupId, replicaSet: rs.name, member: { host: m.host, dbpath: m.dbpath, pid: started.pid, port: started.port, state: started.state, oplogTop }, stateOnPrimary };
  } catch (e) {
    status = isCancellation(e) ? 'cancelled' : 'failed';
    // Before the member joined, undo everything; once added, its mongod stays so the operator can look at it.
    if (touched && phase !== 'join') {
      await CancellationScope.nonCancellable(() => steps.rollbackRestoreTarget(base)).catch((r: unknown) => log.warn('rollback failed', { error: String(r) }));
    }
    enter('done');
    if (isCancellation(e)) throw e;
    throw failWith(failureInfo(e));
  }
}
