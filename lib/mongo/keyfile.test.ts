import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { keyFileClientOptions, readKeyFile } from './keyfile.ts';

const dir = mkdtempSync(join(tmpdir(), 'cutpoint-keyfile-lib-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

describe('readKeyFile', () => {
  it('drops whitespace and returns the key', () => {
    expect(readKeyFile(file('ws', ' abc\tdef\r\nghi+/=\n'))).toBe('abcdefghi+/=');
  });

  it('refuses what mongod refuses, with its messages', () => {
    const open = file('open', 'abcdefgh', 0o604);
    expect(() => readKeyFile(open)).toThrow(`permissions on ${open} are too open`);
    expect(readKeyFile(open, { checkPermissions: false })).toBe('abcdefgh');
    expect(() => readKeyFile(join(dir, 'none'))).toThrow(`Error reading file ${join(dir, 'none')}: No such file or directory`);
    const bad = file('bad', 'abc-defg');
    expect(() => readKeyFile(bad)).toThrow(`invalid char in key file ${bad}: -`);
    const short = file('short', 'abc de\n');
    expect(() => readKeyFile(short)).toThrow(`security key in ${short} has length 5, must be between 6 and 1024 chars`);
    const long = file('long', 'a'.repeat(1025));
    expect(() => readKeyFile(long)).toThrow(`security key in ${long} has length 1025, must be between 6 and 1024 chars`);
  });

  it('keyFileClientOptions authenticate as __system on local with the key', () => {
    expect(keyFileClientOptions(file('k', 'abcdefgh\n'))).toEqual({
      auth: { username: '__system', password: 'abcdefgh' },
      authSource: 'local',
      authMechanism: 'SCRAM-SHA-256',
    });
  });
});
