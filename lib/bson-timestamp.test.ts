import { Timestamp } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { fromBsonTimestamp, toBsonTimestamp } from './bson-timestamp.ts';

describe('BSON timestamps', () => {
  it('round-trips {t, i} through a BSON Timestamp, the seconds high and the increment low', () => {
    const b = toBsonTimestamp({ t: 1_700_000_000, i: 4_294_967_295 });
    expect(b.high).toBe(1_700_000_000);
    expect(b.i).toBe(4_294_967_295);
    expect(fromBsonTimestamp(b)).toEqual({ t: 1_700_000_000, i: 4_294_967_295 });
    expect(fromBsonTimestamp(new Timestamp({ t: 0, i: 1 }))).toEqual({ t: 0, i: 1 });
  });

  it('is null for what is not a Timestamp', () => {
    expect(fromBsonTimestamp(undefined)).toBeNull();
    expect(fromBsonTimestamp({ t: 1, i: 1 })).toBeNull();
  });
});
