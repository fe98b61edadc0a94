/**
 * `pitrCapture` (id `pitr-<cluster>`, CutpointKind `pitr`): continuous oplog capture of a cluster, every replica set
 * (config server included) at once, until the `stop` signal. Its phases:
 *
 * 1. {@link resolveOptions}: every option checked and defaulted;
 * 2. {@link discoverReplicaSets}: the replica sets (through a mongos: the config server and every shard);
 * 3. {@link captureReplicaSet}, one loop per replica set: choose a member ({@link chooseMember}: a healthy
 *    secondary by preference), run a capture activity on its agent for one lease (activities/agent/oplog-capture.ts:
 *    it resumes from the last sealed point, whichever member sealed it), record where it got to and its lag, and
 *    start the next; a capture that fails (its agent killed, its member stepped down or gone) is followed by one on
 *    another member when there is one;
 * 4. {@link continueOrStop}: once a replica set has had `leasesPerRun` leases (or when Temporal suggests it) every
 *    capture is cancelled (each seals what it read) and the run continues as new with its state, so the history
 *    stays bounded at any uptime; after `stop` it completes. A replica set none of whose leases completed in the run
 *    passes its member on to be avoided: a dead agent is not waited on again.
 *
 * The capture lag of each replica set shows as the current details and the `CutpointLagSecs` search attribute (the
 * largest), recorded gaps as `CutpointGaps` and `CutpointStatus` `gap`. Both stay seconds old during a lease: each
 * capture signals `progress` after a seal, at most every few seconds (activities/agent/oplog-capture.ts); the current
 * details cost no history event, and the search attributes are upserted only when a value changed. Deterministic:
 * types and pure helpers only.
 */
import { ActivityCancellationType } from '@temporalio/common';
import {
  CancellationScope,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { oplogCaptureActivities } from '../../activities/agent/oplog-capture.ts';
import type { PitrActivities } from '../../activities/orchestrator/pitr.ts';
import type { TopologyActivities } from '../../activities/orchestrator/topology.ts';
import { CutpointError, nonRetryableCodes } from '../../common/errors.ts';
import { pitrProgressSignal, pitrStateQuery, pitrStopSignal } from '../../common/messages.ts';
import { resolvePitrOptions, type PitrOptionName } from '../../common/options.ts';
import type { CaptureState, PitrInput } from '../../common/pitr-types.ts';
import { CutpointCluster, CutpointGaps, CutpointKind, CutpointLagSecs, CutpointPhase, CutpointStatus } from '../../common/search-attributes.ts';
import type { MongoTarget } from '../../common/target.ts';
import { compareTs, formatTs } from '../../common/timestamp.ts';
import { agentActivities } from '../common/agent-activities.ts';
import { failureInfo, failWith } from '../common/outcome.ts';

type CaptureActivities = ReturnType<typeof oplogCaptureActivities>;

const control = proxyActivities<TopologyActivities & PitrActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: nonRetryableCodes() },
});

/**
 * Failures of the set-up, which no other member and no wait mends: they fail the workflow. Any other failure (the
 * member or its agent gone, a timeout, the repository briefly unavailable) is followed by a capture on another member.
 */
const FATAL = new Set([
  'BAD_USAGE',
  'MONGO_AUTH_FAILED',
  'NOT_AUTHORIZED',
  'NOT_SUPPORTED',
  'REPO_UNUSABLE',
  'REPO_AUTH_FAILED',
  'REPO_BUCKET_MISSING',
  'REPO_CORRUPT',
  'REPO_PASSWORD_MISSING',
  'REPO_PASSWORD_WRONG',
  'OBJECT_AUTH_FAILED',
]);
/** Pause before a capture is started again after one failed, doubled after each failure in a row up to the maximum. */
const RETRY_PAUSE_MS = 1_000;
const RETRY_PAUSE_MAX_MS = 30_000;

interface Run {
  input: PitrInput;
  options: Record<PitrOptionName, number>;
  target: MongoTarget;
  states: Map<string, CaptureState>;
  /** How workers reach each replica set (its members, with the options of the URI given). */
  targets: Map<string, MongoTarget>;
  /** Per replica set, the members to pass over at the next choice (passed on by continue-as-new). */
  avoid: Map<string, string[]>;
  stopping: boolean;
  /** This run ends for continue-as-new: the captures were cancelled (each sealed what it read) to start the next run. */
  continuing: boolean;
  /** The scope of the captures: cancelled by `stop`. */
  scope: CancellationScope;
  /** The search attributes last upserted by {@link publish}, as `key=value` strings: unchanged ones are not upserted again. */
  published: Set<string>;
}

export async function pitrCapture(input: PitrInput): Promise<{ cluster: string; status: 'stopped'; replicaSets: CaptureState[] }> {
  const r = startRun(input, resolveOptions(input));
  const replicaSets = await discoverReplicaSets(r);
  publish(r);
  try {
    await r.scope.run(() => Promise.all(replicaSets.map((rs) => captureReplicaSet(r, rs))));
  } catch (e) {
    if (!((r.stopping || r.continuing) && isCancellation(e))) {
      upsertSearchAttributes([{ key: CutpointStatus, value: 'failed' }]);
      throw e;
    }
  }
  return continueOrStop(r);
}

/** Phase 1: the options checked against their bounds; a bad one fails the workflow with BAD_USAGE at once. */
function resolveOptions(input: PitrInput): Record<PitrOptionName, number> {
  if (typeof input?.uri !== 'string' || !input.uri) throw new CutpointError('BAD_USAGE', 'uri is required: the connection string of a replica set member or a mongos', { option: 'uri' });
  if (typeof input.repo !== 'string' || !input.repo) throw new CutpointError('BAD_USAGE', 'repo is required: the repository path as the workers see it', { option: 'repo' });
  if (typeof input.cluster !== 'string' || !input.cluster) throw new CutpointError('BAD_USAGE', 'cluster is required: the name the captured oplog is stored under', { option: 'cluster' });
  return resolvePitrOptions(input);
}

function startRun(input: PitrInput, options: Record<PitrOptionName, number>): Run {
  const r: Run = {
    input,
    options,
    target: { uri: input.uri, credentials: input.credentials ?? { kind: 'env' } },
    states: new Map((input.state ?? []).map((s) => [s.replicaSet, s])),
    targets: new Map(),
    avoid: new Map(Object.entries(input.avoid ?? {})),
    stopping: false,
    continuing: false,
    scope: new CancellationScope(),
    published: new Set(),
  };
  setHandler(pitrStateQuery, () => ({ cluster: input.cluster, repo: input.repo, replicaSets: [...r.states.values()] }), { description: 'Where each replica set\'s capture stands: capturedTo, lagSecs, node, gaps' });
  setHandler(
    pitrStopSignal,
    () => {
      r.stopping = true;
      r.scope.cancel();
    },
    { description: 'Stop the capture: what was read is sealed, then the workflow completes' },
  );
  setHandler(
    pitrProgressSignal,
    (p) => {
      const state = r.states.get(p.replicaSet);
      // A late signal of a capture that was superseded (or of the previous run) never moves the state back, and one
      // from a member whose capture failed does not make the next lease go back to it.
      if (!state || (state.capturedTo && compareTs(p.capturedTo, state.capturedTo) < 0) || r.avoid.get(p.replicaSet)?.includes(p.node)) return;
      state.capturedTo = p.capturedTo;
      state.lagSecs = p.lagSecs;
      state.node = p.node;
      publish(r);
    },
    { description: 'A capture sealed the oplog to capturedTo (sent by the capture activities, every few seconds)' },
  );
  upsertSearchAttributes([
    { key: CutpointKind, value: 'pitr' },
    { key: CutpointCluster, value: input.cluster },
    { key: CutpointStatus, value: 'running' },
    { key: CutpointPhase, value: 'capture' },
  ]);
  return r;
}

/** Phase 2: the replica sets to capture, config server included. */
async function discoverReplicaSets(r: Run): Promise<string[]> {
  const topology = await control.discoverTopology({ target: r.target });
  const names = topology.replicaSets.map((rs) => rs.name);
  for (const rs of topology.replicaSets) r.targets.set(rs.name, { uri: rs.uri, credentials: r.target.credentials });
  for (const name of names) if (!r.states.has(name)) r.states.set(name, { replicaSet: name, capturedTo: null, lagSecs: 0, node: null, gaps: [] });
  return names;
}

/** Phase 3, per replica set: leases of capture, one after the other, on a member chosen before each. */
async function captureReplicaSet(r: Run, rs: string): Promise<void> {
  const state = r.states.get(rs)!;
  let failures = 0;
  let leases = 0;
  /** Whether a lease of this replica set completed in this run. */
  let completed = false;
  if (state.node && r.avoid.get(rs)?.includes(state.node)) state.node = null;
  for (;;) {
    if (r.stopping || r.continuing) return;
    if (leases >= r.options.leasesPerRun || workflowInfo().continueAsNewSuggested) {
      // Every replica set's capture ends now (each seals what it read), so the next run starts them all at once.
      r.continuing = true;
      r.scope.cancel();
      return;
    }
    leases++;
    // A capture stays on its member while it works; it moves after a failure, away from the member that failed.
    let node: string | undefined = state.node ?? undefined;
    try {
      node ??= await chooseMember(r, rs, r.avoid.get(rs) ?? []);
      const agent = agentActivities<CaptureActivities>(node, 'oplog capture member', r.options.agentTimeoutMs, {
        startToCloseTimeout: r.options.leaseMs + 10 * 60_000,
        heartbeatTimeout: r.options.agentHeartbeatTimeoutMs,
        // The workflow chooses the next member itself: an attempt is never retried on the same one.
        retry: { maximumAttempts: 1 },
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
      });
      const result = await agent.captureOplog({ target: r.targets.get(rs)!, repo: r.input.repo, cluster: r.input.cluster, replicaSet: rs, sealEveryMs: r.options.sealEveryMs, leaseMs: r.options.leaseMs });
      state.capturedTo = result.capturedTo ?? state.capturedTo;
      state.lagSecs = result.lagSecs;
      state.node = result.node;
      if (result.gap) {
        state.gaps.push({ replicaSet: rs, ...result.gap });
        log.warn('oplog gap recorded', { replicaSet: rs, from: formatTs(result.gap.from), to: formatTs(result.gap.to) });
      }
      r.avoid.delete(rs);
      failures = 0;
      completed = true;
    } catch (e) {
      if (isCancellation(e) && (r.stopping || r.continuing)) {
        // Ended for the next run before any lease here completed: its member (or agent) may be gone, and the
        // next run must not wait on it again.
        if (!completed && node) {
          r.avoid.set(rs, [node]);
          state.node = null;
        }
        throw e;
      }
      const info = failureInfo(e);
      if (FATAL.has(info.code)) throw failWith(info);
      log.warn('capture failed; trying another member', { replicaSet: rs, node, code: info.code, error: info.message });
      state.node = null;
      if (node) r.avoid.set(rs, [node]);
      await sleep(Math.min(RETRY_PAUSE_MAX_MS, RETRY_PAUSE_MS * 2 ** failures++));
    }
    publish(r);
  }
}

/** The member to capture on: a healthy secondary by preference, not one whose capture just failed while another qualifies. */
async function chooseMember(r: Run, rs: string, avoid: string[]): Promise<string> {
  const { node } = await control.selectCaptureNode({ target: r.targets.get(rs)!, replicaSet: rs, maxLagSecs: r.options.maxLagSecs, avoid });
  return node;
}

/** Shows every replica set's capture: the current details (a table) and the search attributes (largest lag, gaps). */
function publish(r: Run, status?: string): void {
  const states = [...r.states.values()];
  const gaps = states.reduce((n, s) => n + s.gaps.length, 0);
  const rows = states.map((s) => `| ${s.replicaSet} | ${s.node ?? '—'} | ${s.capturedTo ? formatTs(s.capturedTo) : '—'} | ${s.lagSecs} | ${s.gaps.length} |`);
  setCurrentDetails(
    [`**cutpoint pitr** of **${r.input.cluster}** to \`${r.input.repo}\`${r.stopping ? ' (stopping)' : ''}`, '', '| replica set | member | captured to | lag (s) | gaps |', '|---|---|---|---|---|', ...rows].join('\n'),
  );
  const lag = Math.round(Math.max(0, ...states.map((s) => s.lagSecs)));
  const values = { lag: `lag=${lag}`, gaps: `gaps=${gaps}`, status: `status=${status ?? (gaps ? 'gap' : 'running')}` };
  if (Object.values(values).every((v) => r.published.has(v))) return;
  r.published = new Set(Object.values(values));
  upsertSearchAttributes([
    { key: CutpointLagSecs, value: lag },
    { key: CutpointGaps, value: gaps },
    { key: CutpointStatus, value: status ?? (gaps ? 'gap' : 'running') },
  ]);
}

/** Phase 4: stopped, the workflow completes; otherwise the next run continues with this one's state. */
async function continueOrStop(r: Run): Promise<{ cluster: string; status: 'stopped'; replicaSets: CaptureState[] }> {
  const replicaSets = [...r.states.values()];
  if (r.stopping) {
    upsertSearchAttributes([{ key: CutpointPhase, value: 'done' }]);
    publish(r, 'stopped');
    return { cluster: r.input.cluster, status: 'stopped', replicaSets };
  }
  return continueAsNew<typeof pitrCapture>({ ...r.input, state: replicaSets, avoid: Object.fromEntries(r.avoid) });
}
