import { Long, ObjectId } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { idKey, tsFromKey, tsKey } from './keys.ts';
import { VersionedTable } from './mvcc.ts';

describe('VersionedTable', () => {
  it('reads the newest version by commit order whose timestamp is at or before the read point', () => {
    const t = new VersionedTable();
    t.write('k', { v: 1 }, 10n);
    t.write('k', { v: 2 }, 20n);
    t.write('k', { v: 3 }, 15n); // committed last with an older timestamp: newest by commit order wins
    expect(t.read('k', 9n)).toBeUndefined();
    expect(t.read('k', 10n)).toEqual({ v: 1 });
    expect(t.read('k', 17n)).toEqual({ v: 3 });
    expect(t.read('k', 25n)).toEqual({ v: 3 });
    t.write('k', { v: 4 }, null); // untimestamped: visible at every read point
    expect(t.read('k', 1n)).toEqual({ v: 4 });
    t.write('k', null, 30n);
    expect(t.read('k', 29n)).toEqual({ v: 4 });
    expect(t.read('k', undefined)).toBeUndefined();
  });

  it('scans in key order within a range and prunes history no reader at or after oldest can see', () => {
    const t = new VersionedTable();
    for (const k of ['c', 'a', 'b', 'e', 'd']) t.write(k, { k }, 1n);
    t.write('b', { k: 'b2' }, 5n);
    t.write('d', null, 5n);
    expect([...t.scan(undefined, 'b', 'e')].map(([k]) => k)).toEqual(['b', 'c']);
    expect([...t.scan(4n)].map(([k]) => k)).toEqual(['a', 'b', 'c', 'd', 'e']);
    t.prune(5n);
    expect(t.read('b', 5n)).toEqual({ k: 'b2' });
    expect(t.keyCount).toBe(4); // 'd' was deleted at or before oldest: gone entirely
    expect(t.hasVersionAfter('b', 4n)).toBe(true);
    expect(t.hasVersionAfter('b', 5n)).toBe(false);
  });

  it('removes keys after a point physically (oplog truncation)', () => {
    const t = new VersionedTable();
    for (let i = 1n; i <= 5n; i++) t.write(tsKey(i), { i: Number(i) }, i);
    expect(t.removeAfter(tsKey(3n))).toEqual([tsKey(4n), tsKey(5n)]);
    expect([...t.scan(undefined)].map(([k]) => tsFromKey(k))).toEqual([1n, 2n, 3n]);
  });
});

describe('keys', () => {
  it('orders timestamps and numbers numerically and keeps distinct values distinct', () => {
    expect(tsKey(1n << 32n) > tsKey((1n << 32n) - 1n)).toBe(true);
    const nums = [-1e300, -5, -0.5, 0, 0.25, 1, 2, 10, 1e20];
    const keys = nums.map(idKey);
    expect([...keys].sort()).toEqual(keys);
    expect(idKey(-0)).toBe(idKey(0));
    expect(idKey(Long.fromNumber(7))).toBe(idKey(7));
    expect(idKey(Long.fromString('9007199254740993'))).not.toBe(idKey(Long.fromString('9007199254740992')));
    const oid = new ObjectId();
    expect(idKey(oid)).toBe(idKey(new ObjectId(oid.toHexString())));
    expect(idKey({ a: 1 })).not.toBe(idKey({ a: 1.5 }));
    expect(idKey('1')).not.toBe(idKey(1));
  });
});
