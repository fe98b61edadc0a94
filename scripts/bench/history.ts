/**
 * What a run cost in Temporal terms, read from the workflow histories the server kept: events per workflow and the
 * wall-clock split into phases. A phase ends when the last activity of its kind completes anywhere in the run (the
 * critical path across replica sets), so the phases add up to the end-to-end time.
 */
import type { Client } from '@temporalio/client';

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

/** The histories of one run: the parent and its children, by workflow id. */
export type RunHistories = Map<string, HistoryEvent[]>;

/** Fetches the histories of the given workflows. */
export async function fetchHistories(client: Client, workflowIds: string[]): Promise<RunHistories> {
  const out: RunHistories = new Map();
  for (const id of workflowIds) out.set(id, (await client.workflow.getHandle(id).fetchHistory()).events ?? []);
  return out;
}

/** Epoch milliseconds of an event. */
export function eventMs(e: HistoryEvent): number {
  const t = e.eventTime;
  if (!t) return NaN;
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

/** Completion time of every activity of each type, over all histories. */
export function activityCompletions(histories: RunHistories): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const events of histories.values()) {
    const typeOf = new Map<string, string>();
    for (const e of events) {
      const sched = e.activityTaskScheduledEventAttributes;
      if (sched) typeOf.set(String(e.eventId), sched.activityType?.name ?? '?');
      const done = e.activityTaskCompletedEventAttributes;
      if (done) {
        const type = typeOf.get(String(done.scheduledEventId)) ?? '?';
        out.set(type, [...(out.get(type) ?? []), eventMs(e)]);
      }
    }
  }
  return out;
}

/**
 * Seconds from the first scheduling of an activity of `type` to the last completion of one, in one workflow's
 * history (a replica-set child's copyBatch activities: its copy phase); null when none completed there.
 */
export function activitySpan(events: HistoryEvent[], type: string): number | null {
  const ours = new Set<string>();
  let first = Infinity;
  let last = -Infinity;
  for (const e of events) {
    const sched = e.activityTaskScheduledEventAttributes;
    if (sched?.activityType?.name === type) {
      ours.add(String(e.eventId));
      first = Math.min(first, eventMs(e));
    }
    const done = e.activityTaskCompletedEventAttributes;
    if (done && ours.has(String(done.scheduledEventId))) last = Math.max(last, eventMs(e));
  }
  return last >= first ? (last - first) / 1000 : null;
}

/** Events per workflow, their total and the largest history. */
export function eventCounts(histories: RunHistories): { total: number; largest: number; perWorkflow: Record<string, number> } {
  const perWorkflow = Object.fromEntries([...histories].map(([id, events]) => [id, events.length]));
  const counts = Object.values(perWorkflow);
  return { total: counts.reduce((a, b) => a + b, 0), largest: Math.max(0, ...counts), perWorkflow };
}

/** A phase: its name and the activity types whose last completion ends it (the last phase ends with the parent). */
export interface PhaseSpec {
  name: string;
  endsWith: string[];
}

/**
 * Seconds per phase, from the parent's first event to its last. A phase whose activities never ran ends where the
 * previous one did (0 s).
 */
export function phaseSplit(histories: RunHistories, parentId: string, phases: PhaseSpec[], lastPhase: string): Record<string, number> {
  const parent = histories.get(parentId);
  if (!parent?.length) throw new Error(`no history for ${parentId}`);
  const start = eventMs(parent[0]!);
  const end = eventMs(parent[parent.length - 1]!);
  const done = activityCompletions(histories);
  const out: Record<string, number> = {};
  let prev = start;
  for (const p of phases) {
    const last = Math.max(prev, ...p.endsWith.flatMap((t) => done.get(t) ?? []));
    out[p.name] = (last - prev) / 1000;
    prev = last;
  }
  out[lastPhase] = (Math.max(prev, end) - prev) / 1000;
  return out;
}

/** The phases of a backup: open-all barrier, extend, copy, close, commit. */
export const BACKUP_PHASES: PhaseSpec[] = [
  { name: 'open', endsWith: ['openBackupCursor'] },
  // The extend and the plan are one activity (extendAndPlanCopy); extendBackupCursor in results of older commits.
  { name: 'extend', endsWith: ['extendBackupCursor', 'extendAndPlanCopy'] },
  { name: 'copy', endsWith: ['copyBatch', 'planCopyBatches'] },
  { name: 'close', endsWith: ['closeBackupCursor'] },
];

/** The phases of a restore: check the backup, place the files, the mongod steps (recovery to the timestamp). */
export const RESTORE_PHASES: PhaseSpec[] = [
  // The plan, the targets' inspection and, for an `overwrite` restore, the repository's verification.
  { name: 'check', endsWith: ['verifyReplicaSetFiles', 'inspectRestoreTarget', 'loadRestorePlan'] },
  { name: 'place', endsWith: ['placeRestoreFiles'] },
  { name: 'recover', endsWith: ['prepareRestoredNode', 'recoverRestoredNode', 'resetRestoredMetadata', 'startRestoredNode', 'checkRestoredReplicaSet'] },
];

/** A readable timeline of a run (seconds from the parent's start, workflow, event, activity), for `--timeline`. */
export function timeline(histories: RunHistories, parentId: string): string[] {
  const start = eventMs(histories.get(parentId)?.[0] ?? {});
  const lines: Array<[number, string]> = [];
  for (const [id, events] of histories) {
    const typeOf = new Map<string, string>();
    for (const e of events) {
      const sched = e.activityTaskScheduledEventAttributes;
      if (sched) typeOf.set(String(e.eventId), sched.activityType?.name ?? '?');
      const ref = e.activityTaskStartedEventAttributes?.scheduledEventId ?? e.activityTaskCompletedEventAttributes?.scheduledEventId ??
        e.activityTaskFailedEventAttributes?.scheduledEventId ?? e.activityTaskCanceledEventAttributes?.scheduledEventId ?? e.activityTaskCancelRequestedEventAttributes?.scheduledEventId;
      const what = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k]) ?? '?';
      const act = sched ? typeOf.get(String(e.eventId)) : ref !== undefined && ref !== null ? typeOf.get(String(ref)) : undefined;
      lines.push([eventMs(e), `${id.slice(parentId.length) || '(parent)'} ${what.replace(/EventAttributes$/, '')}${act ? ` ${act}` : ''}`]);
    }
  }
  return lines.sort((a, b) => a[0] - b[0]).map(([t, s]) => `${((t - start) / 1000).toFixed(3).padStart(8)}  ${s}`);
}
