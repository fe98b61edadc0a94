/**
 * The retention keep policy: which backups of one cluster to keep and which to remove, with the reasons. The rules
 * are restic `forget` / borg `prune`'s grandfather-father-son rules over the **complete** backups, ordered newest first
 * by `finishedAt` (else `startedAt`), periods in UTC:
 *
 * - `keepLast: n` keeps the n newest;
 * - `keepHourly/Daily/Weekly/Monthly: n` keep, for each of the n newest hours/days/ISO weeks/months that hold a
 *   backup, the newest backup in that period.
 *
 * A backup kept by several rules lists every reason. Safety rules on top: the newest complete backup is never
 * removed; a running backup is never removed unless the caller knows it is stale (its workflow no longer runs) and it
 * started more than `cleanAfterHours` ago; failed and cancelled backups are removed once older than
 * `cleanAfterHours` (default 24), kept before that (for inspection).
 *
 * Pure and workflow-safe (no Node built-ins, no clock: `now` is an argument).
 */
import type { BackupStatus } from './manifest.ts';

/** How many backups each rule keeps; absent or 0 = the rule keeps none. */
export interface RetentionPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  /** Failed, cancelled and stale running backups older than this are removed (default 24). */
  cleanAfterHours?: number;
}

export const DEFAULT_CLEAN_AFTER_HOURS = 24;

/** What the policy needs to know about one backup (from its cluster manifest). */
export interface RetentionBackup {
  id: string;
  status: BackupStatus;
  startedAt: string;
  finishedAt: string | null;
  /**
   * For a `running` backup: `true` when its workflow is known not to run any more, `false` when it runs, absent when
   * unknown (no Temporal): an unknown one is kept.
   */
  stale?: boolean;
}

/** One backup's verdict. */
export interface RetentionDecision {
  id: string;
  status: BackupStatus;
  /** `finishedAt`, else `startedAt`: the time the rules order by. */
  time: string;
  reasons: string[];
}

export interface RetentionPlan {
  /** Newest first. */
  keep: RetentionDecision[];
  /** Newest first. */
  remove: RetentionDecision[];
}

const RULES = [
  ['keepLast', 'last'],
  ['keepHourly', 'hourly'],
  ['keepDaily', 'daily'],
  ['keepWeekly', 'weekly'],
  ['keepMonthly', 'monthly'],
] as const;

type Rule = (typeof RULES)[number][1];

/** Checks a policy, naming the bad field. */
export function validateRetentionPolicy(policy: RetentionPolicy): void {
  for (const [field] of RULES) {
    const v = policy[field];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new Error(`${field} must be a non-negative integer, got ${String(v)}`);
  }
  const c = policy.cleanAfterHours;
  if (c !== undefined && (!Number.isFinite(c) || c < 0)) throw new Error(`cleanAfterHours must be a non-negative number, got ${String(c)}`);
}

/** Whether the policy has any keep rule (a policy without one keeps only the newest complete backup). */
export function hasKeepRule(policy: RetentionPolicy): boolean {
  return RULES.some(([field]) => (policy[field] ?? 0) > 0);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** ISO 8601 week of a UTC date: `YYYY-Www` (the year is the week's, which can differ from the date's). */
export function isoWeek(d: Date): string {
  const day = (d.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - day + 3));
  const year = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000));
  return `${year}-W${pad(week)}`;
}

/** The period of a rule that a time falls in (the label shown in the reason). */
export function periodOf(rule: Exclude<Rule, 'last'>, d: Date): string {
  const ymd = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  switch (rule) {
    case 'hourly':
      return `${ymd}T${pad(d.getUTCHours())}`;
    case 'daily':
      return ymd;
    case 'weekly':
      return isoWeek(d);
    case 'monthly':
      return ymd.slice(0, 7);
  }
}

function timeOf(b: RetentionBackup): { time: string; ms: number } {
  const time = b.finishedAt ?? b.startedAt;
  const ms = Date.parse(time);
  if (!Number.isFinite(ms)) throw new Error(`backup ${b.id} has an invalid time '${time}'`);
  return { time, ms };
}

/**
 * Applies `policy` to the backups of one cluster at `now`. Throws (naming the field) for an invalid policy or time.
 */
export function planRetention(backups: readonly RetentionBackup[], policy: RetentionPolicy, now: Date): RetentionPlan {
  validateRetentionPolicy(policy);
  const cleanAfterMs = (policy.cleanAfterHours ?? DEFAULT_CLEAN_AFTER_HOURS) * 3_600_000;
  const cleanAfter = `${policy.cleanAfterHours ?? DEFAULT_CLEAN_AFTER_HOURS}h`;
  const items = backups
    .map((b) => ({ b, ...timeOf(b), started: Date.parse(b.startedAt), reasons: [] as string[], keep: false }))
    // Newest first; equal times: the greater id first (ids sort by their start time), so the order is total.
    .sort((x, y) => y.ms - x.ms || (x.b.id < y.b.id ? 1 : x.b.id > y.b.id ? -1 : 0));

  const complete = items.filter((x) => x.b.status === 'complete');
  for (const [field, rule] of RULES) {
    const n = policy[field] ?? 0;
    let kept = 0;
    let lastPeriod: string | undefined;
    for (const x of complete) {
      if (kept >= n) break;
      if (rule === 'last') {
        x.reasons.push(`last ${kept + 1}/${n}`);
        x.keep = true;
        kept++;
        continue;
      }
      const period = periodOf(rule, new Date(x.ms));
      if (period === lastPeriod) continue; // an older backup of a period already kept
      lastPeriod = period;
      x.reasons.push(`${rule} ${period}`);
      x.keep = true;
      kept++;
    }
  }
  if (complete[0]) {
    complete[0].reasons.push('newest complete backup');
    complete[0].keep = true;
  }
  for (const x of complete) if (!x.keep) x.reasons.push('complete, kept by no rule');

  for (const x of items) {
    const age = now.getTime() - (x.b.status === 'running' ? x.started : x.ms);
    const old = age > cleanAfterMs;
    switch (x.b.status) {
      case 'complete':
        break;
      case 'running':
        if (x.b.stale === true) {
          x.keep = !old;
          x.reasons.push(old ? `stale running backup (its workflow no longer runs), started more than ${cleanAfter} ago` : `stale running backup, started less than ${cleanAfter} ago`);
        } else {
          x.keep = true;
          x.reasons.push(x.b.stale === false ? 'running' : 'running? (workflow state unknown)');
        }
        break;
      case 'failed':
      case 'cancelled':
        x.keep = !old;
        x.reasons.push(old ? `${x.b.status} more than ${cleanAfter} ago` : `${x.b.status} less than ${cleanAfter} ago`);
        break;
    }
  }
  const decision = (x: (typeof items)[number]): RetentionDecision => ({ id: x.b.id, status: x.b.status, time: x.time, reasons: x.reasons });
  return { keep: items.filter((x) => x.keep).map(decision), remove: items.filter((x) => !x.keep).map(decision) };
}
