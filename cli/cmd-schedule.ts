/**
 * `cutpoint schedule create|list|describe|pause|unpause|trigger|delete`: periodic backups on Temporal Schedules,
 * each run followed by retention (api/schedules.ts).
 */
import type { Command } from 'commander';
import type { RetentionPolicy } from '../common/retention.ts';
import { createSchedule, deleteSchedule, describeSchedule, listSchedules, pauseSchedule, triggerSchedule, unpauseSchedule, type ScheduleInfo } from '../api/schedules.ts';
import { addBackupOptions, backupInputOf, type BackupFlags } from './cmd-backup.ts';
import { addKeepOptions, policyOf, type KeepFlags } from './cmd-prune.ts';
import type { CliContext } from './context.ts';
import { withTemporal } from './operation.ts';

function policyText(p: RetentionPolicy): string {
  const parts = Object.entries(p).map(([k, v]) => `${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} ${String(v)}`);
  return parts.join(', ') || 'none';
}

function printSchedule(ctx: CliContext, s: ScheduleInfo, full: boolean): void {
  ctx.out(`schedule ${s.name}: ${s.spec}, ${s.paused ? `PAUSED${s.note ? ` (${s.note})` : ''}` : 'active'}`);
  ctx.out(`  backs up ${s.cluster ? `${s.cluster} at ` : ''}${s.uri} to ${s.repo}; if busy: ${s.ifBusy}; ${s.incremental ? `incremental${s.incremental.baseEvery ? `, a base every ${s.incremental.baseEvery}` : ''}; ` : ''}keep: ${policyText(s.retention)}`);
  ctx.out(`  next: ${s.paused ? '— (paused)' : (s.nextRuns[0] ?? '—')}; runs taken ${s.actionsTaken}, skipped (overlap) ${s.skippedOverlap}, missed (catch-up window) ${s.missedCatchupWindow}`);
  if (s.running.length) ctx.out(`  running: ${s.running.join(', ')}`);
  if (!full) return;
  ctx.out(`  overlap ${s.overlap}, catch-up window ${Math.round(s.catchupWindowMs / 1000)}s; next runs: ${s.paused ? '—' : s.nextRuns.slice(0, 3).join(', ') || '—'}`);
  for (const r of s.recent) ctx.out(`  ${r.takenAt}  ${r.backupId}  ${r.status ?? ''}`);
}

export function registerSchedule(program: Command, ctx: CliContext): void {
  const schedule = program.command('schedule').description('periodic backups on Temporal Schedules, each followed by retention');

  addKeepOptions(
    addBackupOptions(schedule.command('create <name>').description('create a backup schedule (runs never overlap; a run is followed by retention)'), 'wait')
      .option('--every <interval>', 'an interval: 6h, 30m, 90s')
      .option('--cron <expr>', "a cron expression, UTC: '0 3 * * *'")
      .option('--catchup-window <duration>', 'how late a run missed while Temporal was down may still start (default: the interval; 1h for cron)'),
  )
    .option('--paused', 'create it paused')
    .option('--note <text>', 'a note shown with the schedule')
    .option('--json', 'print the schedule as JSON')
    .action(async (name: string, o: BackupFlags & KeepFlags & { every?: string; cron?: string; catchupWindow?: string; paused?: boolean; note?: string; json?: boolean }) =>
      withTemporal(async (client) => {
        const s = await createSchedule(client, {
          name,
          backup: backupInputOf(o),
          retention: policyOf(o),
          ...(o.every !== undefined ? { every: o.every } : {}),
          ...(o.cron !== undefined ? { cron: o.cron } : {}),
          ...(o.catchupWindow !== undefined ? { catchupWindow: o.catchupWindow } : {}),
          ...(o.paused ? { paused: true } : {}),
          ...(o.note ? { note: o.note } : {}),
        });
        if (o.json) ctx.out(JSON.stringify(s));
        else printSchedule(ctx, s, false);
      }),
    );

  schedule
    .command('list')
    .description('every cutpoint backup schedule')
    .option('--json', 'print {"schedules": [...]} as JSON')
    .action(async (o: { json?: boolean }) =>
      withTemporal(async (client) => {
        const all = await listSchedules(client);
        if (o.json) return ctx.out(JSON.stringify({ schedules: all }));
        if (all.length === 0) ctx.out('no backup schedules');
        for (const s of all) printSchedule(ctx, s, false);
      }),
    );

  schedule
    .command('describe <name>')
    .description('a schedule: spec, state, next runs, the recent backups and their outcome')
    .option('--json', 'print it as JSON')
    .action(async (name: string, o: { json?: boolean }) =>
      withTemporal(async (client) => {
        const s = await describeSchedule(client, name);
        if (o.json) ctx.out(JSON.stringify(s));
        else printSchedule(ctx, s, true);
      }),
    );

  schedule
    .command('pause <name>')
    .description('stop taking runs until unpaused (a run under way goes on)')
    .option('--note <text>', 'why (shown by describe and in the Temporal UI)')
    .action(async (name: string, o: { note?: string }) =>
      withTemporal(async (client) => {
        await pauseSchedule(client, name, o.note);
        ctx.out(`schedule ${name} paused`);
      }),
    );

  schedule
    .command('unpause <name>')
    .description('take runs again')
    .option('--note <text>', 'why')
    .action(async (name: string, o: { note?: string }) =>
      withTemporal(async (client) => {
        await unpauseSchedule(client, name, o.note);
        ctx.out(`schedule ${name} unpaused`);
      }),
    );

  schedule
    .command('trigger <name>')
    .description('take a run now (refused while one is under way)')
    .action(async (name: string) =>
      withTemporal(async (client) => {
        await triggerSchedule(client, name);
        ctx.out(`schedule ${name} triggered`);
      }),
    );

  schedule
    .command('delete <name>')
    .description('delete a schedule (its backups stay; a run under way goes on)')
    .action(async (name: string) =>
      withTemporal(async (client) => {
        const { running } = await deleteSchedule(client, name);
        ctx.out(`schedule ${name} deleted${running.length ? `; still running: ${running.join(', ')} (cutpoint cancel <id> to stop it)` : ''}`);
      }),
    );
}
