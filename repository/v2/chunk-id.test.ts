import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { assertChunkId, isChunkId, nodeSha256Hasher, sha256Hasher, subtleSha256Hasher } from './chunk-id.ts';
import { pseudoRandomBytes } from './testing.ts';

describe('chunk ids', () => {
  it('every hasher gives the SHA-256 of the plaintext in lower-case hex', async () => {
    for (const data of [Buffer.alloc(0), Buffer.from('abc'), pseudoRandomBytes(1 << 20, 2)]) {
      const expected = createHash('sha256').update(data).digest('hex');
      for (const hasher of [sha256Hasher, subtleSha256Hasher, nodeSha256Hasher]) expect(await hasher(data)).toBe(expected);
    }
    expect(await sha256Hasher(Buffer.from('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('are 64 lower-case hex digits', () => {
    expect(isChunkId('ab'.repeat(32))).toBe(true);
    expect(isChunkId('AB'.repeat(32))).toBe(false);
    expect(isChunkId('ab'.repeat(31))).toBe(false);
    expect(isChunkId(42)).toBe(false);
    expect(() => assertChunkId('../etc/passwd')).toThrow(/invalid chunk id/);
  });
});
