import { storageConformance } from '../repository/storage.conformance.ts';
import { RetryStorage } from '../repository/retry-storage.ts';
import { freshS3Location, s3Storage } from './helpers/s3.ts';

// The storage conformance suite against a real S3 server (versitygw), one bucket per test.
storageConformance('S3Storage (versitygw)', async () => s3Storage(await freshS3Location()));
storageConformance('RetryStorage(S3Storage) at a bucket root', async () => new RetryStorage(s3Storage((await freshS3Location()).replace(/\/repo$/, ''))));

