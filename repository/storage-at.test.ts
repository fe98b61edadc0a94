import { describe, expect, it } from 'vitest';
import { CutpointError } from '../common/errors.ts';
import { FsStorage } from './fs-storage.ts';
import { parseS3Location } from './s3-location.ts';
import { S3Storage } from './s3-storage.ts';
import { storageAt } from './storage-at.ts';

function usageError(fn: () => unknown): CutpointError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CutpointError);
    expect((err as CutpointError).code).toBe('BAD_USAGE');
    return err as CutpointError;
  }
  throw new Error('expected BAD_USAGE');
}

describe('storageAt: --repo locations', () => {
  it('a directory is an FsStorage, s3:// an S3Storage', () => {
    expect(storageAt('/tmp/some/repo')).toBeInstanceOf(FsStorage);
    expect(storageAt('relative/repo')).toBeInstanceOf(FsStorage);
    const s3 = storageAt('s3://my-bucket/backups/prod/', { s3: { env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:1' } } });
    expect(s3).toBeInstanceOf(S3Storage);
    expect(s3.location).toBe('s3://my-bucket/backups/prod');
    expect((s3 as S3Storage).key('cutpoint.json')).toBe('backups/prod/cutpoint.json');
  });

  it('refuses every other scheme:// instead of making a local directory named after it', () => {
    for (const loc of ['gs://bucket/x', 'file:///tmp/x', 'https://example.com/repo', 'azure://c/p']) {
      const err = usageError(() => storageAt(loc));
      expect(err.message).toContain(JSON.stringify(loc));
      expect(err.message).toContain('s3://<bucket>/<prefix>');
    }
  });

  it('parses s3://<bucket>/<prefix> and refuses bad buckets and prefixes', () => {
    expect(parseS3Location('s3://b12/a/b/')).toEqual({ bucket: 'b12', prefix: 'a/b' });
    expect(parseS3Location('s3://bucket')).toEqual({ bucket: 'bucket', prefix: '' });
    expect(parseS3Location('S3://bucket/p')).toEqual({ bucket: 'bucket', prefix: 'p' });
    for (const loc of ['s3://', 's3://Upper/x', 's3://a/x', 's3://bucket/a//b', 's3://bucket/../up', 's3://under_score/x']) {
      expect(usageError(() => parseS3Location(loc)).message).toContain(JSON.stringify(loc));
    }
  });
});
