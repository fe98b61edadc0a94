import { describe, expect, it } from 'vitest';
import { validateBackupInput } from './backups.ts';

describe('--repo locations checked before a backup starts', () => {
  it('refuses another scheme:// and a malformed s3:// location with BAD_USAGE; accepts a directory and s3://', () => {
    const uri = 'mongodb://db1:27017/?replicaSet=rs0';
    expect(() => validateBackupInput({ uri, repo: '/backups' })).not.toThrow();
    expect(() => validateBackupInput({ uri, repo: 's3://acme-backups/prod' })).not.toThrow();
    expect(() => validateBackupInput({ uri, repo: 'gs://acme/prod' })).toThrow(expect.objectContaining({ code: 'BAD_USAGE', message: expect.stringContaining("'gs://'") }));
    expect(() => validateBackupInput({ uri, repo: 's3://Acme/prod' })).toThrow(expect.objectContaining({ code: 'BAD_USAGE', message: expect.stringContaining('bucket name') }));
  });
});
