import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { pseudoRandomBytes } from '../v2/testing.ts';
import { HEADER_BYTES, ObjectCipher, plainSize, SEGMENT_BYTES, storedSize, TAG_BYTES } from './object-cipher.ts';

const cipher = new ObjectCipher(randomBytes(32));
const SIZES = [0, 1, 100, SEGMENT_BYTES - 1, SEGMENT_BYTES, SEGMENT_BYTES + 1, 3 * SEGMENT_BYTES, 3 * SEGMENT_BYTES + 17];

function reader(stored: Buffer) {
  return async (from: number, to: number | undefined) => stored.subarray(from, to);
}

describe('ObjectCipher', () => {
  it('round-trips every size, whole and streamed in odd pieces, with sizes that map both ways', () => {
    for (const n of SIZES) {
      const plain = pseudoRandomBytes(n, n + 1);
      const stored = cipher.seal('data/ab/x', plain);
      expect(stored.length).toBe(storedSize(n));
      expect(plainSize(stored.length)).toBe(n);
      expect(cipher.open('data/ab/x', stored, 'repo/data/ab/x').equals(plain)).toBe(true);
      const s = cipher.sealer('data/ab/x');
      const parts: Buffer[] = [];
      for (let at = 0; at < n; at += 7777) parts.push(...s.push(plain.subarray(at, at + 7777)));
      parts.push(s.finish());
      expect(cipher.open('data/ab/x', Buffer.concat(parts), 'o').equals(plain)).toBe(true);
    }
    expect(plainSize(HEADER_BYTES + TAG_BYTES - 1)).toBeUndefined();
    expect(plainSize(HEADER_BYTES + SEGMENT_BYTES + TAG_BYTES + TAG_BYTES)).toBeUndefined();
  });

  it('reads any byte range by decrypting only its segments', async () => {
    const n = 3 * SEGMENT_BYTES + 17;
    const plain = pseudoRandomBytes(n, 9);
    const stored = cipher.seal('p', plain);
    const header = stored.subarray(0, HEADER_BYTES);
    for (const [a, b] of [
      [0, 1],
      [5, SEGMENT_BYTES],
      [SEGMENT_BYTES - 3, SEGMENT_BYTES + 3],
      [2 * SEGMENT_BYTES, n],
      [n - 1, n],
      [100, undefined],
      [n, undefined],
    ] as Array<[number, number | undefined]>) {
      const got = await cipher.openRange('p', header, a, b, reader(stored), 'o');
      expect(got.equals(plain.subarray(a, b))).toBe(true);
    }
    // An object of exactly whole segments: its last one is found sealed as the last.
    const whole = pseudoRandomBytes(2 * SEGMENT_BYTES, 3);
    const s2 = cipher.seal('q', whole);
    expect((await cipher.openRange('q', s2.subarray(0, HEADER_BYTES), SEGMENT_BYTES + 1, 2 * SEGMENT_BYTES, reader(s2), 'o')).equals(whole.subarray(SEGMENT_BYTES + 1))).toBe(true);
  });

  it('fails authentication, naming the object, for any changed byte, another path, another key or a truncation', async () => {
    const plain = pseudoRandomBytes(2 * SEGMENT_BYTES + 10, 4);
    const stored = cipher.seal('index/abc.json', plain);
    for (const at of [0, 7, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + SEGMENT_BYTES + 5, stored.length - 1]) {
      const bad = Buffer.from(stored);
      bad[at]! ^= 0x01;
      expect(() => cipher.open('index/abc.json', bad, 'R/index/abc.json')).toThrow(expect.objectContaining({ code: 'OBJECT_AUTH_FAILED', message: expect.stringContaining('R/index/abc.json') }));
    }
    expect(() => cipher.open('index/abd.json', stored, 'moved')).toThrow(expect.objectContaining({ code: 'OBJECT_AUTH_FAILED' }));
    expect(() => new ObjectCipher(randomBytes(32)).open('index/abc.json', stored, 'k')).toThrow(expect.objectContaining({ code: 'OBJECT_AUTH_FAILED' }));
    // Cut after the first full segment: the object looks whole-sized but its last segment was not sealed as last.
    const cut = stored.subarray(0, HEADER_BYTES + SEGMENT_BYTES + TAG_BYTES);
    expect(() => cipher.open('index/abc.json', cut, 'cut')).toThrow(expect.objectContaining({ code: 'OBJECT_AUTH_FAILED' }));
    await expect(cipher.openRange('index/abc.json', cut.subarray(0, HEADER_BYTES), 10, undefined, reader(cut), 'cut')).rejects.toMatchObject({ code: 'OBJECT_AUTH_FAILED' });
    const flipped = Buffer.from(stored);
    flipped[HEADER_BYTES + 3]! ^= 0x80;
    await expect(cipher.openRange('index/abc.json', flipped.subarray(0, HEADER_BYTES), 0, 10, reader(flipped), 'R/x')).rejects.toMatchObject({ code: 'OBJECT_AUTH_FAILED', message: expect.stringContaining('R/x') });
  });

  it('seals the same plaintext differently each time (a random salt per object)', () => {
    const a = cipher.seal('p', Buffer.from('same'));
    const b = cipher.seal('p', Buffer.from('same'));
    expect(a.equals(b)).toBe(false);
  });
});
