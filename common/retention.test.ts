import { describe, expect, it } from 'vitest';
import type { BackupStatus } from './manifest.ts';
import { isoWeek, periodOf, planRetention, type RetentionBackup, type RetentionPolicy } from './retention.ts';

const NOW = new Date('2026-03-10T12:00:00.000Z');

function b(id: string, finishedAt: string, status: BackupStatus = 'complete', over: Partial<RetentionBackup> = {}): RetentionBackup {
  return { id, status, startedAt: finishedAt, finishedAt: status === 'running' ? null : finishedAt, ...over };
}

const ids = (xs: Array<{ id: string }>) => xs.map((x) => x.id);

describe('planRetention', () => {
  const cases: Array<{ name: string; backups: RetentionBackup[]; policy: RetentionPolicy; keep: string[]; now?: Date }> = [
    {
      name: 'keepLast keeps the n newest, whatever their order in the input',
      backups: [b('a', '2026-03-01T00:00:00Z'), b('c', '2026-03-03T00:00:00Z'), b('b', '2026-03-02T00:00:00Z'), b('d', '2026-03-04T00:00:00Z')],
      policy: { keepLast: 2 },
      keep: ['d', 'c'],
    },
    {
      name: 'keepDaily: one per day, the newest of each day (ties in a period)',
      backups: [
        b('d1-early', '2026-03-01T01:00:00Z'),
        b('d1-late', '2026-03-01T23:59:59Z'),
        b('d2-a', '2026-03-02T10:00:00Z'),
        b('d2-b', '2026-03-02T10:00:00Z'), // same instant: the greater id wins
        b('d3', '2026-03-03T00:00:00Z'),
      ],
      policy: { keepDaily: 3 },
      keep: ['d3', 'd2-b', 'd1-late'],
    },
    {
      name: 'fewer backups than slots: all complete ones are kept',
      backups: [b('x', '2026-03-01T00:00:00Z'), b('y', '2026-03-05T00:00:00Z')],
      policy: { keepLast: 10, keepDaily: 30, keepMonthly: 12 },
      keep: ['y', 'x'],
    },
    {
      name: 'period boundaries are UTC: 23:59:59.999 and 00:00:00.000 are different days and hours',
      backups: [b('before', '2026-03-01T23:59:59.999Z'), b('after', '2026-03-02T00:00:00.000Z'), b('older', '2026-03-01T12:00:00Z')],
      policy: { keepDaily: 2 },
      keep: ['after', 'before'],
    },
    {
      name: 'hourly: the boundary at hh:00:00 starts a new hour',
      backups: [b('h1', '2026-03-01T10:59:59Z'), b('h2', '2026-03-01T11:00:00Z'), b('h2b', '2026-03-01T11:30:00Z')],
      policy: { keepHourly: 2 },
      keep: ['h2b', 'h1'],
    },
    {
      name: 'weekly uses ISO weeks (Monday start) and monthly calendar months',
      backups: [
        b('sun', '2026-03-08T23:00:00Z'), // ISO week 10
        b('mon', '2026-03-09T01:00:00Z'), // ISO week 11
        b('feb', '2026-02-27T00:00:00Z'),
        b('jan', '2026-01-15T00:00:00Z'),
      ],
      policy: { keepWeekly: 2, keepMonthly: 3 },
      keep: ['mon', 'sun', 'feb', 'jan'],
    },
    {
      name: 'a policy keeping nothing still keeps the newest complete backup',
      backups: [b('old', '2026-01-01T00:00:00Z'), b('new', '2026-03-01T00:00:00Z'), b('fail', '2026-03-09T00:00:00Z', 'failed')],
      policy: {},
      keep: ['new'],
    },
    {
      name: 'a newer failed backup does not count as newest: the newest complete one is kept',
      backups: [b('ok', '2026-02-01T00:00:00Z'), b('f', '2026-03-01T00:00:00Z', 'failed')],
      policy: { keepLast: 0 },
      keep: ['ok'],
    },
    {
      name: 'running backups are never removed unless stale and old; failed/cancelled removed only after cleanAfterHours',
      backups: [
        b('ok', '2026-03-01T00:00:00Z'),
        b('run', '2026-03-01T00:00:00Z', 'running', { stale: false }),
        b('run-unknown', '2026-03-01T00:00:00Z', 'running'),
        b('stale-old', '2026-03-01T00:00:00Z', 'running', { stale: true }),
        b('stale-young', '2026-03-10T11:00:00Z', 'running', { stale: true }),
        b('failed-young', '2026-03-10T00:00:00Z', 'failed'),
        b('cancelled-old', '2026-03-08T00:00:00Z', 'cancelled'),
      ],
      policy: { keepLast: 1 },
      keep: ['stale-young', 'failed-young', 'run-unknown', 'run', 'ok'],
    },
    {
      name: 'cleanAfterHours 0 removes every failed backup at once',
      backups: [b('ok', '2026-03-01T00:00:00Z'), b('f', '2026-03-10T11:59:00Z', 'failed')],
      policy: { keepLast: 1, cleanAfterHours: 0 },
      keep: ['ok'],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const plan = planRetention(c.backups, c.policy, c.now ?? NOW);
      expect(ids(plan.keep)).toEqual(c.keep);
      expect(ids(plan.remove).sort()).toEqual(ids(c.backups).filter((id) => !c.keep.includes(id)).sort());
    });
  }

  it('grandfather-father-son over 40 daily backups lists every reason of a backup kept by several rules', () => {
    const backups = Array.from({ length: 40 }, (_, i) => b(`d${String(i).padStart(2, '0')}`, new Date(Date.UTC(2026, 0, 31 + i, 6)).toISOString()));
    // d00 = 2026-01-31 (Sat) … d36 = 2026-03-08 (Sun) … d39 = 2026-03-11 (Wed)
    const plan = planRetention(backups, { keepLast: 2, keepDaily: 3, keepWeekly: 2, keepMonthly: 3 }, new Date('2026-03-12T00:00:00Z'));
    expect(ids(plan.keep)).toEqual(['d39', 'd38', 'd37', 'd36', 'd28', 'd00']);
    const reasons = Object.fromEntries(plan.keep.map((k) => [k.id, k.reasons]));
    expect(reasons.d39).toEqual(['last 1/2', 'daily 2026-03-11', 'weekly 2026-W11', 'monthly 2026-03', 'newest complete backup']);
    expect(reasons.d38).toEqual(['last 2/2', 'daily 2026-03-10']);
    expect(reasons.d37).toEqual(['daily 2026-03-09']);
    expect(reasons.d36).toEqual(['weekly 2026-W10']);
    expect(reasons.d28).toEqual(['monthly 2026-02']); // Feb 28
    expect(reasons.d00).toEqual(['monthly 2026-01']);
    expect(plan.remove).toHaveLength(34);
    expect(plan.remove[0]).toMatchObject({ id: 'd35', reasons: ['complete, kept by no rule'] });
  });

  it('sorts by finishedAt when set, startedAt otherwise', () => {
    const plan = planRetention(
      [
        { id: 'long', status: 'complete', startedAt: '2026-03-01T00:00:00Z', finishedAt: '2026-03-03T00:00:00Z' },
        { id: 'short', status: 'complete', startedAt: '2026-03-02T00:00:00Z', finishedAt: '2026-03-02T01:00:00Z' },
      ],
      { keepLast: 1 },
      NOW,
    );
    expect(ids(plan.keep)).toEqual(['long']);
  });

  it('says why running and failed backups are kept or removed', () => {
    const plan = planRetention(
      [b('ok', '2026-03-01T00:00:00Z'), b('s', '2026-03-01T00:00:00Z', 'running', { stale: true }), b('u', '2026-03-01T00:00:00Z', 'running')],
      { keepLast: 1 },
      NOW,
    );
    expect(plan.remove).toEqual([{ id: 's', status: 'running', time: '2026-03-01T00:00:00Z', reasons: [expect.stringContaining('stale running backup')] }]);
    expect(plan.keep.find((k) => k.id === 'u')!.reasons).toEqual(['running? (workflow state unknown)']);
  });

  it('refuses an invalid policy or time, naming it', () => {
    expect(() => planRetention([], { keepDaily: -1 }, NOW)).toThrow(/keepDaily must be a non-negative integer/);
    expect(() => planRetention([], { keepLast: 1.5 }, NOW)).toThrow(/keepLast/);
    expect(() => planRetention([b('x', 'yesterday')], { keepLast: 1 }, NOW)).toThrow(/backup x has an invalid time 'yesterday'/);
  });

  it('an empty catalogue gives an empty plan', () => {
    expect(planRetention([], { keepLast: 3 }, NOW)).toEqual({ keep: [], remove: [] });
  });
});

describe('periods', () => {
  it.each([
    ['2026-01-01T00:00:00Z', '2026-W01'], // Thursday
    ['2027-01-01T00:00:00Z', '2026-W53'], // Friday: still the last week of 2026
    ['2024-12-30T00:00:00Z', '2025-W01'], // Monday of week 1 of 2025
    ['2026-03-08T23:59:59Z', '2026-W10'],
    ['2026-03-09T00:00:00Z', '2026-W11'],
  ])('isoWeek(%s) = %s', (iso, week) => {
    expect(isoWeek(new Date(iso))).toBe(week);
  });

  it('labels hourly, daily and monthly periods in UTC', () => {
    const d = new Date('2026-03-09T05:06:07Z');
    expect([periodOf('hourly', d), periodOf('daily', d), periodOf('monthly', d)]).toEqual(['2026-03-09T05', '2026-03-09', '2026-03']);
  });
});
