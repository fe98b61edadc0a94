import { describe, expect, it } from 'vitest';
import { codeForS3Error, s3EndpointOf } from './s3-storage.ts';

const sdkError = (name: string, status?: number, extra: Record<string, unknown> = {}) => Object.assign(new Error(name), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}), ...extra });

describe('S3 errors → registry codes (the real server is in test/s3-storage.test.ts)', () => {
  it('maps what S3 and the network say', () => {
    expect(codeForS3Error(sdkError('NoSuchKey', 404))).toBe('REPO_FILE_MISSING');
    expect(codeForS3Error(sdkError('NotFound', 404))).toBe('REPO_FILE_MISSING');
    expect(codeForS3Error(sdkError('NoSuchBucket', 404))).toBe('REPO_BUCKET_MISSING');
    expect(codeForS3Error(sdkError('InvalidAccessKeyId', 403))).toBe('REPO_AUTH_FAILED');
    expect(codeForS3Error(sdkError('Unknown', 403))).toBe('REPO_AUTH_FAILED'); // a HEAD has no body to name it
    expect(codeForS3Error(sdkError('PermanentRedirect', 301))).toBe('REPO_UNUSABLE'); // another region
    expect(codeForS3Error(sdkError('InvalidArgument', 400))).toBe('REPO_UNUSABLE');
    expect(codeForS3Error(sdkError('SlowDown', 503))).toBe('REPO_IO');
    expect(codeForS3Error(sdkError('InternalError', 500))).toBe('REPO_IO');
    expect(codeForS3Error(sdkError('ExistingObjectIsDirectory', 409))).toBe('REPO_IO'); // versitygw's put/delete race
    expect(codeForS3Error(sdkError('RequestTimeout', 408))).toBe('REPO_UNREACHABLE');
    expect(codeForS3Error(sdkError('Error', undefined, { code: 'ECONNREFUSED' }))).toBe('REPO_UNREACHABLE');
    expect(codeForS3Error(sdkError('TimeoutError'))).toBe('REPO_UNREACHABLE');
  });

  it('reads the endpoint and region from the standard AWS variables', () => {
    expect(s3EndpointOf({})).toEqual({ region: 'us-east-1' });
    expect(s3EndpointOf({ AWS_REGION: 'eu-west-1', AWS_ENDPOINT_URL: 'http://a:1', AWS_ENDPOINT_URL_S3: 'http://s3:2' })).toEqual({ region: 'eu-west-1', endpoint: 'http://s3:2' });
    expect(s3EndpointOf({ AWS_DEFAULT_REGION: 'ap-south-1', AWS_ENDPOINT_URL: 'http://a:1' })).toEqual({ region: 'ap-south-1', endpoint: 'http://a:1' });
  });
});
