import { describe, expect, it } from 'vitest';
import { formatDuration, validateScheduleOptions, type CreateScheduleOptions } from './schedules.ts';

const ok: CreateScheduleOptions = { name: 'nightly', every: '6h', backup: { uri: 'mongodb://db1:27017/?replicaSet=rs0', repo: '/backups' }, retention: { keepDaily: 7 } };

describe('validateScheduleOptions', () => {
  it('accepts an interval or a cron expression, and defaults the catch-up window to the interval (1h for cron)', () => {
    expect(validateScheduleOptions(ok)).toEqual({ everyMs: 6 * 3_600_000, catchupMs: 6 * 3_600_000 });
    expect(validateScheduleOptions({ ...ok, every: '2s' })).toEqual({ everyMs: 2000, catchupMs: 10_000 });
    const { every: _every, ...cronOnly } = ok;
    expect(validateScheduleOptions({ ...cronOnly, cron: '0 3 * * *' })).toEqual({ catchupMs: 3_600_000 });
    expect(validateScheduleOptions({ ...ok, catchupWindow: '15m' }).catchupMs).toBe(900_000);
  });

  it.each<[string, Partial<CreateScheduleOptions>, RegExp]>([
    ['a name that cannot prefix a backup id', { name: 'my schedule' }, /schedule name 'my schedule' must be/],
    ['a name with a colon', { name: 'a:b' }, /schedule name 'a:b'/],
    ['both every and cron', { cron: '0 3 * * *' }, /exactly one of --every .* and --cron/],
    ['neither every nor cron', { every: undefined }, /exactly one of --every/],
    ['an interval that is not a duration', { every: 'often' }, /--every must be a duration like 6h, 30m or 90s, got 'often'/],
    ['an interval under a second', { every: '500ms' }, /--every must be at least 1s/],
    ['no keep rule', { retention: {} }, /give at least one keep rule/],
    ['a negative keep rule', { retention: { keepLast: -1 } }, /keepLast/],
    ['a catch-up window under 10 s', { catchupWindow: '5s' }, /--catchup-window must be at least 10s/],
    ['credentials in the URI', { backup: { uri: 'mongodb://u:secret@db1:27017/', repo: '/b' } }, /credentials|password/i],
    ['no repository', { backup: { uri: 'mongodb://db1:27017/', repo: '' } }, /repository path is required/],
  ])('refuses %s', (_what, change, message) => {
    let err: unknown;
    try {
      validateScheduleOptions({ ...ok, ...change } as CreateScheduleOptions);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'BAD_USAGE', message: expect.stringMatching(message) });
  });
});

describe('formatDuration', () => {
  it.each([
    [86_400_000, '1d'],
    [6 * 3_600_000, '6h'],
    [90_000, '90s'],
    [1_800_000, '30m'],
    [1500, '1500ms'],
  ])('%d ms → %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});
