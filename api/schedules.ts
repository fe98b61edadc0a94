/**
 * Periodic backups on Temporal Schedules: each schedule starts `scheduledBackup` (one backup, then retention over its
 * cluster), never two at once (overlap policy SKIP), and makes up a run missed while Temporal was down if the
 * catch-up window has not passed. What `cutpoint schedule …` calls.
 *
 * ```ts
 * await createSchedule(client, {
 *   name: 'nightly', every: '24h',
 *   backup: { uri: 'mongodb://mongos1:27017/', repo: '/backups' },
 *   retention: { keepDaily: 7, keepWeekly: 4 },
 * });
 * const s = await describeSchedule(client, 'nightly'); // next runs, recent backups and their outcome
 * ```
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleDescription } from '@temporalio/client';
import { msToNumber } from '@temporalio/common';
import type { BackupInput } from '../common/backup-types.ts';
import { CutpointError } from '../common/errors.ts';
import { hasKeepRule, validateRetentionPolicy, type RetentionPolicy } from '../common/retention.ts';
import { SCHEDULED_BACKUP_WORKFLOW, type ScheduledBackupInput } from '../common/schedule-types.ts';
import { CutpointCluster, CutpointKind } from '../common/search-attributes.ts';
import { ORCHESTRATOR_TASK_QUEUE } from '../common/task-queues.ts';
import { formatDuration } from '../common/units.ts';
import { scheduledBackupId } from '../workflows/schedule/ids.ts';
import { validateBackupInput } from './backups.ts';

/** Options of {@link createSchedule}. */
export interface CreateScheduleOptions {
  /** Schedule id and the prefix of its backups' ids: letters, digits, '.', '_', '-'. */
  name: string;
  /** The backup each run takes (`ifBusy` defaults to `'wait'`: a manual backup of the cluster delays the run). */
  backup: BackupInput;
  /** An interval: `6h`, `30m`, `90s` (at least 1 s). Exactly one of `every` and `cron`. */
  every?: string;
  /** A cron expression, UTC (`0 3 * * *`); Temporal's syntax, which also takes `@daily` etc. */
  cron?: string;
  /** Applied after every run; at least one keep rule. */
  retention: RetentionPolicy;
  /**
   * How late a run missed while Temporal was unavailable may still start (default: the interval, or 1 h for cron;
   * at least 10 s).
   */
  catchupWindow?: string;
  /** Create it paused. */
  paused?: boolean;
  note?: string;
}

/** A schedule as `schedule list/describe` show it. */
export interface ScheduleInfo {
  name: string;
  /** `every 6h`, or `cron 0 3 * * *`. */
  spec: string;
  paused: boolean;
  note?: string;
  uri: string;
  repo: string;
  cluster?: string;
  ifBusy: 'fail' | 'wait';
  /** The runs are incremental backups (a base every `baseEvery` of a chain; 0 = only when it breaks). */
  incremental?: { baseEvery: number };
  retention: RetentionPolicy;
  overlap: string;
  catchupWindowMs: number;
  nextRuns: string[];
  actionsTaken: number;
  skippedOverlap: number;
  missedCatchupWindow: number;
  /** Backup ids of the runs under way (complete only when the recent runs' statuses were asked for). */
  running: string[];
  /** The latest runs, oldest first (up to Temporal's 10); `status` is the run's (describe only). */
  recent: Array<{ backupId: string; workflowId: string; scheduledAt: string; takenAt: string; status?: string }>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const usage = (message: string) => new CutpointError('BAD_USAGE', message);

/** A duration such as `6h`, `30m`, `90s` or `500ms` in ms; BAD_USAGE naming `what` otherwise. */
export function durationMs(what: string, value: string): number {
  let n: number;
  try {
    n = msToNumber(value as Parameters<typeof msToNumber>[0]);
  } catch {
    n = NaN;
  }
  if (!Number.isFinite(n) || n <= 0) throw usage(`${what} must be a duration like 6h, 30m or 90s, got '${value}'`);
  return n;
}

/** `21600000` → `6h` (common/units.ts); exported here as part of the client API. */
export { formatDuration };

/** Checks a schedule's options, naming the problem; returns the interval (ms) and catch-up window (ms). */
export function validateScheduleOptions(o: CreateScheduleOptions): { everyMs?: number; catchupMs: number } {
  if (!NAME.test(o.name)) throw usage(`schedule name '${o.name}' must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (it prefixes backup ids)`);
  validateBackupInput(o.backup);
  if ((o.every === undefined) === (o.cron === undefined)) throw usage('give exactly one of --every (an interval such as 6h) and --cron (a cron expression)');
  const everyMs = o.every !== undefined ? durationMs('--every', o.every) : undefined;
  if (everyMs !== undefined && everyMs < 1000) throw usage(`--every must be at least 1s, got '${o.every}'`);
  if (o.cron !== undefined && o.cron.trim().split(/\s+/).length < 1) throw usage('--cron must not be empty');
  try {
    validateRetentionPolicy(o.retention);
  } catch (e) {
    throw usage((e as Error).message);
  }
  if (!hasKeepRule(o.retention)) {
    throw usage('a schedule runs retention after every backup: give at least one keep rule (--keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly)');
  }
  const catchupMs = o.catchupWindow !== undefined ? durationMs('--catchup-window', o.catchupWindow) : Math.max(10_000, everyMs ?? 3_600_000);
  if (catchupMs < 10_000) throw usage(`--catchup-window must be at least 10s (Temporal's minimum), got '${o.catchupWindow}'`);
  return { ...(everyMs !== undefined ? { everyMs } : {}), catchupMs };
}

/** Turns the server's refusals into errors that name the problem. */
async function temporalCall<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ScheduleNotFoundError) throw usage(`no schedule '${name}'`);
    if (e instanceof ScheduleAlreadyRunning) throw usage(`schedule '${name}' already exists (delete it first, or choose another name)`);
    // The client checks a cron string's shape itself (a TypeError naming the problem).
    if (e instanceof TypeError && /cron/i.test(e.message)) throw usage(`--cron: ${e.message}`);
    const grpc = e as { code?: number; details?: string; message?: string };
    // INVALID_ARGUMENT: e.g. a cron expression the server cannot parse.
    if (grpc.code === 3) throw usage(`Temporal refused schedule '${name}': ${grpc.details ?? grpc.message}`);
    throw e;
  }
}

/** Creates a backup schedule. */
export async function createSchedule(client: Client, o: CreateScheduleOptions): Promise<ScheduleInfo> {
  const { everyMs, catchupMs } = validateScheduleOptions(o);
  const input: ScheduledBackupInput = { schedule: o.name, backup: { ...o.backup, ifBusy: o.backup.ifBusy ?? 'wait' }, retention: o.retention };
  await temporalCall(o.name, () =>
    client.schedule.create({
      scheduleId: o.name,
      spec: everyMs !== undefined ? { intervals: [{ every: everyMs }] } : { cronExpressions: [o.cron!] },
      action: {
        type: 'startWorkflow',
        workflowType: SCHEDULED_BACKUP_WORKFLOW,
        workflowId: o.name,
        taskQueue: ORCHESTRATOR_TASK_QUEUE,
        args: [input],
        typedSearchAttributes: [
          { key: CutpointKind, value: 'scheduled-backup' },
          ...(o.backup.cluster ? [{ key: CutpointCluster, value: o.backup.cluster }] : []),
        ],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: catchupMs },
      state: { paused: o.paused === true, ...(o.note ? { note: o.note } : {}) },
      // The server turns a cron string into calendar specs; the memo keeps what the user wrote, for describe.
      memo: { cutpoint: 'backup-schedule', spec: everyMs !== undefined ? `every ${formatDuration(everyMs)}` : `cron ${o.cron!}` },
    }),
  );
  return describeSchedule(client, o.name, { statuses: false });
}

function infoOf(d: ScheduleDescription): ScheduleInfo {
  if (d.action.type !== 'startWorkflow' || d.action.workflowType !== SCHEDULED_BACKUP_WORKFLOW) throw usage(`schedule '${d.scheduleId}' is not a cutpoint backup schedule`);
  const input = d.action.args?.[0] as ScheduledBackupInput;
  const every = d.spec.intervals?.[0]?.every;
  const written = (d.memo as { spec?: unknown } | undefined)?.spec;
  const spec = typeof written === 'string' ? written : every !== undefined ? `every ${formatDuration(Number(every))}` : JSON.stringify(d.spec);
  const idOf = (workflowId: string, at: Date) => scheduledBackupId(d.scheduleId, workflowId, at);
  return {
    name: d.scheduleId,
    spec,
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    uri: input.backup.uri,
    repo: input.backup.repo,
    ...(input.backup.cluster ? { cluster: input.backup.cluster } : {}),
    ifBusy: input.backup.ifBusy ?? 'wait',
    ...(input.backup.incremental || input.backup.base ? { incremental: { baseEvery: input.backup.baseEvery ?? 0 } } : {}),
    retention: input.retention,
    overlap: String(d.policies.overlap),
    catchupWindowMs: d.policies.catchupWindow,
    nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
    missedCatchupWindow: d.info.numActionsMissedCatchupWindow,
    running: d.info.runningActions.map((a) => {
      const r = d.info.recentActions.find((x) => x.action.workflow.workflowId === a.workflow.workflowId);
      return idOf(a.workflow.workflowId, r?.takenAt ?? new Date());
    }),
    recent: d.info.recentActions.map((r) => ({
      backupId: idOf(r.action.workflow.workflowId, r.takenAt),
      workflowId: r.action.workflow.workflowId,
      scheduledAt: r.scheduledAt.toISOString(),
      takenAt: r.takenAt.toISOString(),
    })),
  };
}

/** One schedule; with `statuses` (default) each recent run's workflow status too. */
export async function describeSchedule(client: Client, name: string, options: { statuses?: boolean } = {}): Promise<ScheduleInfo> {
  const d = await temporalCall(name, () => client.schedule.getHandle(name).describe());
  const info = infoOf(d);
  if (options.statuses !== false) {
    await Promise.all(
      info.recent.map(async (r) => {
        const s = await client.workflow
          .getHandle(r.workflowId)
          .describe()
          .then((x) => x.status.name.toLowerCase())
          .catch(() => 'unknown');
        r.status = s;
      }),
    );
    // The server's list of running actions is not filled in by every server version (the dev server's stays
    // empty): the runs' own statuses are the truth.
    for (const r of info.recent) if (r.status === 'running' && !info.running.includes(r.backupId)) info.running.push(r.backupId);
  }
  return info;
}

/** Every cutpoint backup schedule of the namespace, by name. */
export async function listSchedules(client: Client): Promise<ScheduleInfo[]> {
  const names: string[] = [];
  for await (const s of client.schedule.list()) {
    if (s.action?.type === 'startWorkflow' && s.action.workflowType === SCHEDULED_BACKUP_WORKFLOW) names.push(s.scheduleId);
  }
  const out: ScheduleInfo[] = [];
  for (const n of names.sort()) {
    // Deleted between the listing and here: leave it out.
    const d = await describeSchedule(client, n).catch(() => undefined);
    if (d) out.push(d);
  }
  return out;
}

export async function pauseSchedule(client: Client, name: string, note?: string): Promise<void> {
  await temporalCall(name, () => client.schedule.getHandle(name).pause(note ?? 'paused by cutpoint schedule pause'));
}

export async function unpauseSchedule(client: Client, name: string, note?: string): Promise<void> {
  await temporalCall(name, () => client.schedule.getHandle(name).unpause(note ?? 'unpaused by cutpoint schedule unpause'));
}

/**
 * Starts a run now. A run already under way would make Temporal drop the trigger silently (overlap SKIP), so that
 * case is an error naming the running backup.
 */
export async function triggerSchedule(client: Client, name: string): Promise<void> {
  const info = await describeSchedule(client, name);
  if (info.running.length) throw new CutpointError('CLUSTER_BUSY', `schedule '${name}' is running backup ${info.running.join(', ')} now: a trigger would be skipped (overlap policy skip); wait for it or cancel it`);
  await temporalCall(name, () => client.schedule.getHandle(name).trigger());
}

/** Deletes the schedule; a run under way goes on (cancel it with `cutpoint cancel <backup id>`). Returns those runs. */
export async function deleteSchedule(client: Client, name: string): Promise<{ running: string[] }> {
  const info = await describeSchedule(client, name);
  await temporalCall(name, () => client.schedule.getHandle(name).delete());
  return { running: info.running };
}
