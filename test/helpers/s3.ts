/**
 * The run's S3 server (versitygw, started by test/global-setup.ts) as tests use it: the AWS environment a worker or a
 * CLI child gets, and a fresh bucket per test so tests never see each other's objects.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { S3Storage, type S3StorageOptions } from '../../repository/s3-storage.ts';

/** The standard AWS variables that point at the run's S3 server (what `cutpoint` reads). */
export function s3Env(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: inject('s3AccessKey'),
    AWS_SECRET_ACCESS_KEY: inject('s3SecretKey'),
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: inject('s3Endpoint'),
  };
}

/** A new bucket on the run's server (or the one `env` names); returns `s3://<bucket>/<prefix>`. */
export async function freshS3Location(prefix = 'repo', env: NodeJS.ProcessEnv = s3Env()): Promise<string> {
  const location = `s3://cutpoint-${randomBytes(6).toString('hex')}/${prefix}`;
  await new S3Storage(location, { env }).createBucket();
  return location;
}

/** An {@link S3Storage} at `location` on the run's server. */
export function s3Storage(location: string, options: Omit<S3StorageOptions, 'env'> = {}): S3Storage {
  return new S3Storage(location, { env: s3Env(), ...options });
}
