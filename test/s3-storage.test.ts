import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkRepository } from '../repository/check.ts';
import { abortPendingUploads, pendingUploads } from '../repository/pending-uploads.ts';
import { prune } from '../repository/prune.ts';
import { Repository } from '../repository/repository.ts';
import { RetryStorage } from '../repository/retry-storage.ts';
import { S3_MIN_PART_BYTES, S3Storage } from '../repository/s3-storage.ts';
import { expectBytes, readAll, storageConformance, storageErrorOf } from '../repository/storage.conformance.ts';
import { backup } from '../repository/testing.ts';
import { runCli } from './helpers/cli.ts';
import { freshS3Location, s3Env, s3Storage } from './helpers/s3.ts';

// The storage conformance suite against a real S3 server (versitygw), one bucket per test.
storageConformance('S3Storage (versitygw)', async () => s3Storage(await freshS3Location()));
storageConformance('RetryStorage(S3Storage) at a bucket root', async () => new RetryStorage(s3Storage((await freshS3Location()).replace(/\/repo$/, ''))));

const MiB = 1024 * 1024;

describe('S3Storage: multipart uploads', () => {
  it('a large file goes up in parts, invisible until commit; abort leaves no upload', async () => {
    const s = s3Storage(await freshS3Location(), { partSize: S3_MIN_PART_BYTES });
    const data = randomBytes(12 * MiB + 123);
    const w = await s.createWriter('data/big');
    for (let off = 0; off < data.length; off += MiB) await w.write(data.subarray(off, off + MiB));
    expect(w.bytesWritten).toBe(data.length);
    expect(await s.exists('data/big')).toBe(false);
    expect((await s.pendingUploads()).map((u) => u.path)).toEqual(['data/big']);
    await w.commit();
    expectBytes(await s.readFile('data/big'), data);
    expectBytes(await readAll(await s.openRead('data/big', { start: 5 * MiB - 7, end: 10 * MiB + 3 })), data.subarray(5 * MiB - 7, 10 * MiB + 3));
    expect(await s.pendingUploads()).toEqual([]);
    expect(await s.list('')).toEqual(['data/big']);

    const a = await s.createWriter('data/aborted');
    await a.write(randomBytes(11 * MiB));
    expect((await s.pendingUploads()).length).toBe(1);
    await a.abort();
    expect(await s.pendingUploads()).toEqual([]);
    expect(await s.list('')).toEqual(['data/big']);
  });

  it('resume: after the uploaded parts a writer continues the upload; inside them it starts over', async () => {
    const s = s3Storage(await freshS3Location(), { partSize: S3_MIN_PART_BYTES });
    const data = randomBytes(13 * MiB);
    const w1 = await s.createWriter('r/f');
    await w1.write(data.subarray(0, 6 * MiB)); // one part of 5 MiB, 1 MiB buffered
    await w1.sync();
    await w1.close();
    const w2 = await s.createWriter('r/f', { resumeFrom: 5 * MiB + 1000 });
    expect(w2.bytesWritten).toBe(5 * MiB + 1000);
    await w2.write(data.subarray(5 * MiB + 1000));
    await w2.commit();
    expectBytes(await s.readFile('r/f'), data);
    expect(await s.pendingUploads()).toEqual([]);

    const w3 = await s.createWriter('r/g');
    await w3.write(data.subarray(0, 11 * MiB));
    await w3.close();
    const w4 = await s.createWriter('r/g', { resumeFrom: 3 * MiB }); // inside part 1: S3 cannot read it back
    expect(w4.bytesWritten).toBe(0);
    expect(await s.pendingUploads()).toEqual([]); // the old upload was aborted
    await w4.write(data.subarray(0, 100));
    await w4.commit();
    expectBytes(await s.readFile('r/g'), data.subarray(0, 100));
    expect(await s.list('r')).toEqual(['r/f', 'r/g']);
  });

  it('removing a directory aborts the uploads beneath it; prune and abortPendingUploads abort orphans; repo check lists them', async () => {
    const location = await freshS3Location();
    const s = s3Storage(location, { partSize: S3_MIN_PART_BYTES });
    const w = await s.createWriter('backups/x/rs0/files/a');
    await w.write(randomBytes(6 * MiB));
    await w.close();
    expect((await s.pendingUploads()).length).toBe(1);
    await s.remove('backups/x');
    expect(await s.pendingUploads()).toEqual([]);

    // A repository with one backup and an upload a crashed writer left.
    const repo = new Repository(new RetryStorage(s));
    await repo.init();
    await backup(repo, 'b1', { 'collection-1.wt': [randomBytes(1000)] });
    const orphan = await s.createWriter('data/00/orphan');
    await orphan.write(randomBytes(6 * MiB));
    await orphan.close(); // the process "dies" here
    const report = await checkRepository(repo);
    expect(report.garbage.filter((g) => g.kind === 'pending-upload').map((g) => g.object)).toEqual(['data/00/orphan']);
    expect(report.problems).toEqual([]);
    const result = await prune(repo, { policy: { keepLast: 1 } });
    expect(result.abortedUploads).toEqual(['data/00/orphan']);
    expect(await pendingUploads(repo.storage)).toEqual([]);
    expect((await checkRepository(repo)).garbage).toEqual([]);
    expect(await abortPendingUploads(repo.storage)).toEqual([]);
  });

  it('an encrypted repository on S3: no readable byte in the bucket, read back with the password, an orphaned upload of a sealed object aborted by prune', async () => {
    const location = await freshS3Location();
    const s = s3Storage(location, { partSize: S3_MIN_PART_BYTES });
    const secret = Buffer.from('{"name":"Alice Secretname"}'.repeat(4000));
    const repo = new Repository(new RetryStorage(s), { password: () => 'correct horse', scrypt: { N: 1024, r: 8, p: 1 } });
    await repo.init(new Date(), { encrypt: true });
    await backup(repo, 'b1', { 'collection-7-secretcoll.wt': [secret] });
    for (const path of await s.list('')) {
      if (path === 'cutpoint.json' || path.startsWith('keys/')) continue;
      const bytes = await s.readFile(path);
      for (const needle of ['Secretname', 'secretcoll']) expect(bytes.includes(needle), `${path} holds ${needle}`).toBe(false);
    }
    const rm = (await repo.readReplicaSetManifest('b1', 'rs0'))!;
    const parts: Buffer[] = [];
    for await (const b of await repo.openStoredFile('b1', 'rs0', rm.files[0]!)) parts.push(b);
    expect(Buffer.concat(parts).equals(secret)).toBe(true);
    await expect(new Repository(s, { password: () => 'battery staple', scrypt: { N: 1024, r: 8, p: 1 } }).open()).rejects.toMatchObject({ code: 'REPO_PASSWORD_WRONG' });

    // A sealed object's multipart upload a crashed writer left: listed by check, aborted by prune, under the encrypting layer.
    const orphan = await repo.storage.createWriter('data/00/orphan');
    await orphan.write(randomBytes(6 * MiB));
    await orphan.close();
    expect((await checkRepository(repo, { readData: true })).garbage.map((g) => [g.kind, g.object])).toEqual([['pending-upload', 'data/00/orphan']]);
    expect((await prune(repo, { policy: { keepLast: 1 } })).abortedUploads).toEqual(['data/00/orphan']);
    expect(await s.pendingUploads()).toEqual([]);
    expect((await checkRepository(repo, { readData: true })).problems).toEqual([]);
  });
});

describe('S3Storage: bad credentials, missing bucket, endpoint down', () => {
  it('wrong secret key: REPO_AUTH_FAILED naming the endpoint; a missing bucket: REPO_BUCKET_MISSING naming it', async () => {
    const location = await freshS3Location();
    const bad = new S3Storage(location, { env: { ...s3Env(), AWS_SECRET_ACCESS_KEY: 'wrong' } });
    const err = await storageErrorOf(bad.readFile('cutpoint.json'));
    expect(err.code).toBe('REPO_AUTH_FAILED');
    expect(err.message).toContain(s3Env().AWS_ENDPOINT_URL!);
    expect(err.message).not.toContain(s3Env().AWS_SECRET_ACCESS_KEY!);
    // The cause keeps the S3 code and status, not the raw response with the request's signed headers.
    expect(err.cause).toMatchObject({ $metadata: { httpStatusCode: 403 } });
    expect((err.cause as { $response?: unknown }).$response).toBeUndefined();
    expect(JSON.stringify(err.cause)).not.toMatch(/Signature=|Credential=/);
    const missing = s3Storage('s3://no-such-bucket-here/repo');
    const m = await storageErrorOf(missing.writeFile('cutpoint.json', '{}'));
    expect(m.code).toBe('REPO_BUCKET_MISSING');
    expect(m.message).toContain("bucket 'no-such-bucket-here'");
  });

  it('the CLI: wrong credentials and a missing bucket exit 2 with their codes; another scheme:// is refused', async () => {
    const location = await freshS3Location();
    const secret = s3Env().AWS_SECRET_ACCESS_KEY!;
    const wrong = await runCli(['list', '--offline', '--repo', location], { ...s3Env(), AWS_SECRET_ACCESS_KEY: `${secret}x` });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('REPO_AUTH_FAILED');
    expect(wrong.stderr).not.toContain(secret);
    const missing = await runCli(['list', '--offline', '--repo', 's3://no-such-bucket-here/repo'], s3Env());
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('REPO_BUCKET_MISSING');
    const other = await runCli(['list', '--offline', '--repo', 'gs://bucket/repo'], s3Env());
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("'gs://' is not a storage cutpoint knows");
  });

  it('an endpoint that is down: REPO_UNREACHABLE naming it, retried by RetryStorage before it fails', async () => {
    const env = { ...s3Env(), AWS_ENDPOINT_URL: 'http://127.0.0.1:9' }; // discard port: nothing listens
    const retries: string[] = [];
    const s = new RetryStorage(new S3Storage('s3://bucket/repo', { env, maxAttempts: 1 }), { retries: 2, baseDelayMs: 10, onRetry: (i) => retries.push(i.error.code) });
    const err = await storageErrorOf(s.stat('cutpoint.json'));
    expect(err.code).toBe('REPO_UNREACHABLE');
    expect(err.message).toContain('http://127.0.0.1:9');
    expect(retries).toEqual(['REPO_UNREACHABLE', 'REPO_UNREACHABLE']);
  });
});
