/** Parsing of `restore --at` and the choice between a backup id and a point in time (common/restore-at.ts). */
import { describe, expect, it } from 'vitest';
import { parseRestoreAt, restoreSource } from './restore-at.ts';

describe('restore --at', () => {
  it('t:i is that cluster time exactly; an ISO time is the end of its second', () => {
    expect(parseRestoreAt('1796661635:12')).toEqual({ t: 1796661635, i: 12 });
    expect(parseRestoreAt('2026-12-07T16:40:35Z')).toEqual({ t: Date.UTC(2026, 11, 7, 16, 40, 35) / 1000, i: 4294967295 });
    expect(parseRestoreAt('2026-12-07T17:40:35+01:00')).toEqual(parseRestoreAt('2026-12-07T16:40:35Z'));
  });

  it('refuses what is not a time, a zone-less or fractional ISO time, and out-of-range parts, with BAD_USAGE', () => {
    for (const bad of ['yesterday', '2026-12-07T16:40:35', '2026-12-07T16:40:35.5Z', '2026-13-07T16:40:35Z', '0:1', '1:4294967296', '4294967296:0', '12']) {
      expect(() => parseRestoreAt(bad), bad).toThrow(expect.objectContaining({ code: 'BAD_USAGE', message: expect.stringContaining('--at') }));
    }
  });

  it('takes a backup id or a time, exactly one', () => {
    expect(restoreSource({ backupId: 'b1' })).toEqual({ backupId: 'b1' });
    expect(restoreSource({ at: '5:1' })).toEqual({ at: { t: 5, i: 1 } });
    expect(() => restoreSource({ backupId: 'b1', at: '5:1' })).toThrow(expect.objectContaining({ code: 'BAD_USAGE', message: expect.stringContaining('not both') }));
    expect(() => restoreSource({})).toThrow(expect.objectContaining({ code: 'BAD_USAGE' }));
  });
});
