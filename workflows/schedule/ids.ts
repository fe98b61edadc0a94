/**
 * The backup id of a scheduled run. Temporal names each run of a schedule `<action workflow id>-<RFC 3339 time>`,
 * and ':' is not allowed in a backup id (it is a directory name in the repository, on every filesystem), so the
 * id is the schedule name and the scheduled time in basic ISO 8601: `nightly-20261122T030000Z`. The same time gives
 * the same id, so a run retried or reset keeps its backup id. Pure: used by the workflow and the client.
 */

const SUFFIX = /-(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?Z$/;

/** `2026-11-22T03:00:00.123Z` → `20261122T030000Z`. */
export function basicUtc(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}

/**
 * The backup id of the run whose workflow id is `workflowId` (`<schedule>-<RFC 3339>`); a workflow started some
 * other way (by hand, from the UI) gets the schedule name and `startedAt`.
 */
export function scheduledBackupId(schedule: string, workflowId: string, startedAt: Date): string {
  const m = workflowId.startsWith(`${schedule}-`) ? SUFFIX.exec(workflowId) : null;
  if (m) return `${schedule}-${m[1]}${m[2]}${m[3]}T${m[4]}${m[5]}${m[6]}Z`;
  return `${schedule}-${basicUtc(startedAt)}`;
}
