import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers/temp.ts';
import { passwordFromEnvironment } from './password.ts';

describe('passwordFromEnvironment', () => {
  it('reads CUTPOINT_REPO_PASSWORD, or the first line of CUTPOINT_REPO_PASSWORD_FILE; refuses both, an empty or missing file', () => {
    const dir = tempDir('pw-');
    const file = join(dir, 'pw');
    writeFileSync(file, 'from the file\r\nsecond line\n');
    expect(passwordFromEnvironment({})).toBeUndefined();
    expect(passwordFromEnvironment({ CUTPOINT_REPO_PASSWORD: '' })).toBeUndefined();
    expect(passwordFromEnvironment({ CUTPOINT_REPO_PASSWORD: 'direct' })).toBe('direct');
    expect(passwordFromEnvironment({ CUTPOINT_REPO_PASSWORD_FILE: file })).toBe('from the file');
    expect(() => passwordFromEnvironment({ CUTPOINT_REPO_PASSWORD: 'x', CUTPOINT_REPO_PASSWORD_FILE: file })).toThrow(expect.objectContaining({ code: 'BAD_USAGE' }));
    writeFileSync(join(dir, 'empty'), '\n');
    expect(() => passwordFromEnvironment({ CUTPOINT_REPO_PASSWORD_FILE: join(dir, 'empty') })).toThrow(/is empty/);
    expect(() => passwordFromEnvironment({ CUTPOINT_REPO_PASSWORD_FILE: join(dir, 'none') })).toThrow(/ENOENT/);
  });
});
