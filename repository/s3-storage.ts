/**
 * {@link S3Storage}: a repository in an S3 bucket (AWS S3 or any S3-compatible server), under a key prefix. A
 * repository path `p` is the object `<prefix>/p`. Configuration comes from the process environment only (the worker's,
 * never workflow input): `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (else the SDK's default credential chain),
 * `AWS_REGION` (default `us-east-1`), `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` for an S3-compatible server, which
 * then gets path-style addressing.
 *
 * How the Storage contract maps onto an object store (repository/README.md, "Object storage"):
 * - `writeFile` is one PutObject, atomic by S3's semantics: a reader sees the old object or the new one, whole.
 * - A {@link StorageWriter}'s pending file is a multipart upload holding the full parts written so far, plus, after a
 *   `sync` or `close`, the bytes past the last part in the hidden object `<path>.cutpoint-partial` (whose metadata
 *   names the upload and the offset it follows). `commit` completes the upload (or, for a file smaller than one part,
 *   puts it whole); `abort` aborts it. A resumed writer finds the upload (ListMultipartUploads, ListParts) and the
 *   tail; a resume point inside the uploaded parts, which S3 cannot read back, starts the file over.
 * - Memory: a writer holds at most `partSize` buffered bytes plus `partQueue` parts in flight.
 * - Directories are key prefixes. A file under a file is refused (as on a filesystem) by looking up the ancestors.
 * - Errors: 404 → `REPO_FILE_MISSING`; bad credentials or access denied → `REPO_AUTH_FAILED`; no bucket →
 *   `REPO_BUCKET_MISSING`; connection failures → `REPO_UNREACHABLE` naming the endpoint (retryable); 5xx and
 *   throttling, and versitygw's transient 409 ExistingObjectIsDirectory → `REPO_IO` (retryable); any other 4xx →
 *   `REPO_UNUSABLE`.
 *
 * @module
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { pool } from '../lib/pool.ts';
import { parseS3Location } from './s3-location.ts';
import {
  type CreateWriterOptions,
  isHiddenName,
  type OpenReadOptions,
  pendingName,
  type Storage,
  StorageError,
  type StorageErrorCode,
  type StorageOp,
  type StorageStat,
  type StorageWriter,
  validatePath,
  validatePrefix,
} from './storage.ts';

/** S3's smallest part (every part of a multipart upload but the last). */
export const S3_MIN_PART_BYTES = 5 * 1024 * 1024;
const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
const DEFAULT_PART_QUEUE = 2;
/** Parallel requests of a directory removal. */
const REMOVE_CONCURRENCY = 16;

/** Options of {@link S3Storage}. */
export interface S3StorageOptions {
  /** Where the AWS settings are read from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Bytes per multipart part (default 8 MiB, at least 5 MiB). Files up to one part are a single PutObject. */
  partSize?: number;
  /** Parts of one writer uploaded at once (default 2). */
  partQueue?: number;
  /** Attempts of one request inside the SDK (default 3); {@link RetryStorage} retries above it. */
  maxAttempts?: number;
  /** A client to use instead of one made from `env` (tests). */
  client?: S3Client;
}

/** The endpoint and region an S3 client would use for `env` (for messages and the client itself). */
export function s3EndpointOf(env: NodeJS.ProcessEnv): { endpoint?: string; region: string } {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  return { ...(endpoint ? { endpoint } : {}), region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1' };
}

/**
 * Clients by configuration: every activity opens its repository anew, and one client per endpoint, region and key
 * keeps its connections (keep-alive) for the next one instead of opening new ones each time.
 */
const clients = new Map<string, S3Client>();

/** An S3 client configured from the standard AWS environment (see the module comment), shared by equal configurations. */
export function s3ClientFromEnv(env: NodeJS.ProcessEnv = process.env, maxAttempts = 3): S3Client {
  const key = JSON.stringify([env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL, env.AWS_REGION, env.AWS_DEFAULT_REGION, env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN, maxAttempts]);
  let client = clients.get(key);
  if (!client) {
    client = newS3Client(env, maxAttempts);
    clients.set(key, client);
  }
  return client;
}

function newS3Client(env: NodeJS.ProcessEnv, maxAttempts: number): S3Client {
  const { endpoint, region } = s3EndpointOf(env);
  // The SDK warns once per process that its 2027 releases will need Node 22; cutpoint pins a release that runs on 20.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : undefined;
  return new S3Client({
    region,
    maxAttempts,
    ...(credentials ? { credentials } : {}),
    // S3-compatible servers: path-style addressing, and no default CRC32 checksums (several servers reject them).
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

interface S3ErrorLike {
  name?: string;
  code?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'TimeoutError', 'RequestTimeout']);
const AUTH = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken', 'Forbidden', 'CredentialsProviderError']);

/** The registry code of an S3 SDK error (see the module comment). */
export function codeForS3Error(err: unknown): StorageErrorCode {
  const e = (err ?? {}) as S3ErrorLike;
  const name = e.Code ?? e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'NoSuchBucket') return 'REPO_BUCKET_MISSING';
  if (AUTH.has(name) || status === 403 || status === 401) return 'REPO_AUTH_FAILED';
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return 'REPO_FILE_MISSING';
  if (NETWORK.has(name) || (e.code && NETWORK.has(e.code)) || (status === undefined && /ECONNREFUSED|ENOTFOUND|socket hang up|timed? ?out/i.test(e.message ?? ''))) {
    return 'REPO_UNREACHABLE';
  }
  // S3-compatible servers that keep objects as files (versitygw's posix backend) answer 409 ExistingObjectIsDirectory
  // to a put whose key's parent directory a concurrent delete of the last key under it was just removing: it goes away.
  if (name === 'ExistingObjectIsDirectory') return 'REPO_IO';
  // 301 (PermanentRedirect): the bucket is in another region than AWS_REGION; other 4xx: the request is refused.
  if (status === 301 || (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429)) return 'REPO_UNUSABLE';
  return 'REPO_IO';
}

/** A read of the bytes a pending upload holds in parts: S3 cannot serve them before the upload completes. */
function unreadablePending(path: string, location: string): StorageError {
  return new StorageError(
    'BAD_USAGE',
    `cannot read back the pending upload of '${path}' in repository ${location}: its uploaded parts are not readable before commit`,
    'openRead',
    path,
    location,
  );
}

/** A multipart upload that no committed writer finished: pending, or orphaned by a crash. */
export interface S3PendingUpload {
  /** The repository path it would become. */
  path: string;
  uploadId: string;
  initiated?: Date;
}

/** A {@link Storage} in an S3 bucket under a key prefix. */
export class S3Storage implements Storage {
  /** `s3://<bucket>/<prefix>` as given (never with credentials). */
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  readonly endpoint: string;
  readonly region: string;
  readonly #partSize: number;
  readonly #partQueue: number;
  /** Keys known not to be files (ancestors of files this storage wrote), so a write looks up each ancestor once. */
  readonly #dirs = new Set<string>();
  #bucketChecked: Promise<void> | undefined;

  constructor(location: string, options: S3StorageOptions = {}) {
    const { bucket, prefix } = parseS3Location(location);
    const env = options.env ?? process.env;
    this.location = location.replace(/\/$/, '');
    this.bucket = bucket;
    this.prefix = prefix;
    this.region = s3EndpointOf(env).region;
    this.endpoint = s3EndpointOf(env).endpoint ?? `AWS S3 (${this.region})`;
    this.client = options.client ?? s3ClientFromEnv(env, options.maxAttempts);
    this.#partSize = Math.max(S3_MIN_PART_BYTES, options.partSize ?? DEFAULT_PART_BYTES);
    this.#partQueue = Math.max(1, options.partQueue ?? DEFAULT_PART_QUEUE);
  }

  /** The object key of a repository path (or of the root: `''`). */
  key(path: string): string {
    if (path === '') return this.prefix;
    return this.prefix ? `${this.prefix}/${path}` : path;
  }

  /** The repository path of an object key under the prefix, or undefined when it is outside. */
  #pathOf(key: string): string | undefined {
    if (!this.prefix) return key;
    return key.startsWith(`${this.prefix}/`) ? key.slice(this.prefix.length + 1) : undefined;
  }

  /** The key prefix of everything beneath a directory path (`''`: the whole repository). */
  #dirKey(path: string): string {
    const k = this.key(path);
    return k === '' ? '' : `${k}/`;
  }

  /** Wraps an SDK failure as a {@link StorageError} naming the path, the repository and, for connection failures, the endpoint. */
  error(err: unknown, op: StorageOp, path: string): StorageError {
    if (err instanceof StorageError) return err;
    const code = codeForS3Error(err);
    const e = (err ?? {}) as S3ErrorLike;
    const sys = `${e.Code ?? e.name ?? 'Error'}${e.$metadata?.httpStatusCode ? ` (HTTP ${e.$metadata.httpStatusCode})` : ''}: ${e.message ?? String(err)}`;
    const where = path === '' ? `repository ${this.location}` : `'${path}' in repository ${this.location}`;
    const why: Record<StorageErrorCode, string> = {
      REPO_FILE_MISSING: 'no such object',
      REPO_AUTH_FAILED: `the object store at ${this.endpoint} rejected the credentials or denied access (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and the bucket's policy)`,
      REPO_BUCKET_MISSING: `the bucket '${this.bucket}' does not exist at ${this.endpoint}`,
      REPO_UNREACHABLE: `the object store endpoint ${this.endpoint} cannot be reached`,
      REPO_UNUSABLE: e.$metadata?.httpStatusCode === 301 ? `the bucket '${this.bucket}' is in another region than ${this.region} (set AWS_REGION)` : 'the object store refused the request',
      REPO_IO: `the object store at ${this.endpoint} failed`,
      DISK_FULL: 'the object store is full',
      BAD_USAGE: 'invalid request',
    };
    // The cause without the SDK's raw response (its socket, and the request's signed headers), which a log would dump.
    const cause = Object.assign(new Error(e.message ?? String(err)), { name: e.name ?? 'Error' }, e.code ? { code: e.code } : {}, e.Code ? { Code: e.Code } : {}, e.$metadata ? { $metadata: e.$metadata } : {});
    return new StorageError(code, `cannot ${op} ${where}: ${why[code]} (${sys})`, op, path, this.location, e.code ?? e.Code ?? e.name, { cause });
  }

  /** Checks once per storage that the bucket exists and the credentials work (HeadBucket); a transient failure is not remembered. */
  async #ready(op: StorageOp, path: string): Promise<void> {
    this.#bucketChecked ??= this.client.send(new HeadBucketCommand({ Bucket: this.bucket })).then(
      () => undefined,
      (err: unknown) => {
        this.#bucketChecked = undefined;
        const status = (err as S3ErrorLike).$metadata?.httpStatusCode;
        throw this.error(status === 404 ? Object.assign(new Error(`no bucket '${this.bucket}'`), { name: 'NoSuchBucket' }) : err, op, path);
      },
    );
    await this.#bucketChecked;
  }

  /** Runs one operation: the bucket check, then `fn`, its failures wrapped. */
  async #op<T>(op: StorageOp, path: string, fn: () => Promise<T>): Promise<T> {
    await this.#ready(op, path);
    try {
      return await fn();
    } catch (err) {
      throw this.error(err, op, path);
    }
  }

  /** Whether an object is at `key` (HeadObject; 404 → false). */
  async #headSize(key: string): Promise<number | undefined> {
    try {
      const r = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return r.ContentLength ?? 0;
    } catch (err) {
      if (codeForS3Error(err) === 'REPO_FILE_MISSING') return undefined;
      throw err;
    }
  }

  /** Refuses a file under a file (`REPO_UNUSABLE`, errno `ENOTDIR`), as a filesystem would. */
  async #checkPlace(path: string, op: StorageOp): Promise<void> {
    const segments = path.split('/');
    const ancestors = segments.slice(0, -1).map((_, i) => segments.slice(0, i + 1).join('/'));
    const unknown = ancestors.filter((a) => !this.#dirs.has(a));
    const found = await Promise.all(unknown.map(async (a) => ((await this.#headSize(this.key(a))) !== undefined ? a : undefined)));
    const file = found.find((a) => a !== undefined);
    if (file !== undefined) {
      throw new StorageError(
        'REPO_UNUSABLE',
        `cannot ${op === 'writeFile' ? 'write' : 'create'} '${path}' in repository ${this.location}: a component of the path is a regular file, not a directory ('${file}' is a file)`,
        op,
        path,
        this.location,
        'ENOTDIR',
      );
    }
    for (const a of unknown) this.#dirs.add(a);
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    validatePath(path, 'writeFile', this.location);
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data);
    await this.#op('writeFile', path, async () => {
      await this.#checkPlace(path, 'writeFile');
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(path), Body: body, ContentLength: body.length }));
      this.#dirs.delete(path);
    });
  }

  async createWriter(path: string, options: CreateWriterOptions = {}): Promise<StorageWriter> {
    validatePath(path, 'createWriter', this.location);
    const { resumeFrom } = options;
    if (resumeFrom !== undefined && !(Number.isSafeInteger(resumeFrom) && resumeFrom >= 0)) {
      throw new StorageError('BAD_USAGE', `resumeFrom must be a non-negative integer, got ${resumeFrom} (writing '${path}')`, 'createWriter', path, this.location);
    }
    return this.#op('createWriter', path, async () => {
      await this.#checkPlace(path, 'createWriter');
      const key = this.key(path);
      const uploads = await this.#uploadsOf(key, false);
      const tail = resumeFrom === undefined ? undefined : await this.#readTail(key);
      let keep: { uploadId: string; parts: Part[]; tail: Buffer } | undefined;
      if (resumeFrom !== undefined && resumeFrom > 0) {
        const uploadId = tail?.uploadId || uploads.sort((a, b) => (b.initiated?.getTime() ?? 0) - (a.initiated?.getTime() ?? 0))[0]?.uploadId || '';
        const parts = uploadId && uploads.some((u) => u.uploadId === uploadId) ? await this.#partsOf(key, uploadId) : [];
        const partsBytes = parts.reduce((n, p) => n + p.size, 0);
        const contiguous = parts.every((p, i) => p.number === i + 1);
        const tailBytes = tail && tail.offset === partsBytes && (tail.uploadId === '' || tail.uploadId === uploadId) ? tail.bytes : Buffer.alloc(0);
        if (contiguous && resumeFrom >= partsBytes && resumeFrom <= partsBytes + tailBytes.length) {
          keep = { uploadId: parts.length ? uploadId : '', parts, tail: tailBytes.subarray(0, resumeFrom - partsBytes) };
        }
      }
      // Every other upload of this path, and the tail unless kept, is discarded.
      await Promise.all(uploads.filter((u) => u.uploadId !== keep?.uploadId).map((u) => this.#abortUpload(key, u.uploadId)));
      if (!keep) await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: pendingName(key) }));
      return new S3Writer(this, path, this.#partSize, this.#partQueue, keep);
    });
  }

  async readFile(path: string): Promise<Buffer> {
    validatePath(path, 'readFile', this.location);
    return this.#op('readFile', path, async () => {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }));
      return Buffer.from(await r.Body!.transformToByteArray());
    });
  }

  async openRead(path: string, options: OpenReadOptions = {}): Promise<Readable> {
    validatePath(path, 'openRead', this.location);
    const start = options.start ?? 0;
    const end = options.end;
    return this.#op('openRead', path, async () => {
      if (end !== undefined && end <= start) {
        if ((await this.#headSize(this.key(path))) === undefined) throw Object.assign(new Error('no such object'), { name: 'NoSuchKey' });
        return Readable.from([]);
      }
      const range = start > 0 || end !== undefined ? `bytes=${start}-${end !== undefined ? end - 1 : ''}` : undefined;
      try {
        const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path), ...(range ? { Range: range } : {}) }));
        const body = r.Body as Readable;
        // A failure mid-stream is a storage error too.
        const out = new Readable({ read() {} });
        body.on('data', (c: Buffer) => {
          if (!out.push(c)) body.pause();
        });
        out._read = () => body.resume();
        body.on('end', () => out.push(null));
        body.on('error', (err) => out.destroy(this.error(err, 'openRead', path)));
        out._destroy = (err, cb) => {
          body.destroy();
          cb(err);
        };
        return out;
      } catch (err) {
        // A range starting at or past the end: nothing to read.
        if ((err as S3ErrorLike).$metadata?.httpStatusCode === 416) return Readable.from([]);
        throw err;
      }
    });
  }

  async stat(path: string): Promise<StorageStat | undefined> {
    validatePath(path, 'stat', this.location);
    return this.#op('stat', path, async () => {
      const size = await this.#headSize(this.key(path));
      return size === undefined ? undefined : { size };
    });
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== undefined;
  }

  /** Every key beneath `keyPrefix` (a raw ListObjectsV2 prefix), directory markers left out. */
  async #keys(keyPrefix: string, delimiter?: string): Promise<{ keys: string[]; dirs: string[] }> {
    const keys: string[] = [];
    const dirs: string[] = [];
    let token: string | undefined;
    do {
      const r = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: keyPrefix || undefined, ContinuationToken: token, ...(delimiter ? { Delimiter: delimiter } : {}) }),
      );
      for (const o of r.Contents ?? []) if (o.Key && !o.Key.endsWith('/')) keys.push(o.Key);
      for (const p of r.CommonPrefixes ?? []) if (p.Prefix) dirs.push(p.Prefix);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    return { keys, dirs };
  }

  async list(prefix: string): Promise<string[]> {
    validatePrefix(prefix, 'list', this.location);
    return this.#op('list', prefix, async () => {
      const { keys } = await this.#keys(this.#dirKey(prefix));
      const paths = keys.map((k) => this.#pathOf(k)).filter((p): p is string => p !== undefined && !p.split('/').some(isHiddenName));
      return paths.sort();
    });
  }

  async listChildren(prefix: string): Promise<string[]> {
    validatePrefix(prefix, 'listChildren', this.location);
    return this.#op('listChildren', prefix, async () => {
      const base = this.#dirKey(prefix);
      const { keys, dirs } = await this.#keys(base, '/');
      const names = [...keys, ...dirs.map((d) => d.slice(0, -1))].map((k) => k.slice(base.length)).filter((n) => n !== '' && !isHiddenName(n));
      return [...new Set(names)].sort();
    });
  }

  async remove(path: string): Promise<void> {
    validatePath(path, 'remove', this.location);
    await this.#op('remove', path, async () => {
      const key = this.key(path);
      // One listing finds the object, its pending tail and everything beneath it (and siblings sharing the prefix, left alone).
      const { keys } = await this.#keys(key);
      const mine = keys.filter((k) => k === key || k === pendingName(key) || k.startsWith(`${key}/`));
      const uploads = await this.#uploadsOf(key, true);
      await pool(uploads, REMOVE_CONCURRENCY, (u) => this.#abortUpload(this.key(u.path), u.uploadId));
      await pool(mine, REMOVE_CONCURRENCY, async (k) => {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: k }));
      });
      for (const d of [...this.#dirs]) if (d === path || d.startsWith(`${path}/`)) this.#dirs.delete(d);
    });
  }

  /**
   * The multipart uploads under way for the file `key` (or, with `tree`, also for every file beneath it): pending
   * writers, and uploads orphaned by crashed ones.
   */
  async #uploadsOf(key: string, tree: boolean): Promise<S3PendingUpload[]> {
    const out: S3PendingUpload[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const r = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: key || undefined, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      for (const u of r.Uploads ?? []) {
        if (!u.Key || !u.UploadId) continue;
        if (!(u.Key === key || key === '' || (tree && u.Key.startsWith(`${key}/`)))) continue;
        const path = this.#pathOf(u.Key);
        if (path !== undefined) out.push({ path, uploadId: u.UploadId, ...(u.Initiated ? { initiated: u.Initiated } : {}) });
      }
      keyMarker = r.IsTruncated ? r.NextKeyMarker : undefined;
      uploadIdMarker = r.IsTruncated ? r.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return out;
  }

  /** Every multipart upload under the repository that is not finished (`repo check` lists them; `prune` aborts them). */
  async pendingUploads(): Promise<S3PendingUpload[]> {
    return this.#op('list', '', () => this.#uploadsOf(this.prefix, true));
  }

  /** Aborts a multipart upload (and its pending tail); aborting one already gone succeeds. */
  async abortUpload(upload: S3PendingUpload): Promise<void> {
    await this.#op('abort', upload.path, async () => {
      await this.#abortUpload(this.key(upload.path), upload.uploadId);
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: pendingName(this.key(upload.path)) }));
    });
  }

  async #abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      if ((err as S3ErrorLike).name !== 'NoSuchUpload' && codeForS3Error(err) !== 'REPO_FILE_MISSING') throw err;
    }
  }

  async #partsOf(key: string, uploadId: string): Promise<Part[]> {
    const parts: Part[] = [];
    let marker: string | undefined;
    do {
      const r = await this.client.send(new ListPartsCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker }));
      for (const p of r.Parts ?? []) parts.push({ number: p.PartNumber!, etag: p.ETag!, size: p.Size ?? 0 });
      marker = r.IsTruncated ? r.NextPartNumberMarker : undefined;
    } while (marker);
    return parts.sort((a, b) => a.number - b.number);
  }

  /** The pending tail of `key` written by a writer's sync or close, or undefined. */
  async #readTail(key: string): Promise<{ uploadId: string; offset: number; bytes: Buffer } | undefined> {
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: pendingName(key) }));
      const bytes = Buffer.from(await r.Body!.transformToByteArray());
      const offset = Number(r.Metadata?.offset ?? 'NaN');
      if (!Number.isSafeInteger(offset)) return undefined;
      return { uploadId: r.Metadata?.['upload-id'] ?? '', offset, bytes };
    } catch (err) {
      if (codeForS3Error(err) === 'REPO_FILE_MISSING') return undefined;
      throw err;
    }
  }

  /** Creates the bucket (test setups and `docker compose`'s init; an existing bucket of ours is fine). */
  async createBucket(): Promise<void> {
    try {
      await this.client.send(new CreateBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      const name = (err as S3ErrorLike).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw this.error(err, 'writeFile', '');
    }
    this.#bucketChecked = undefined;
  }
}

interface Part {
  number: number;
  etag: string;
  size: number;
}

/** The writer of {@link S3Storage}: buffered full parts to a multipart upload; see the module comment. */
class S3Writer implements StorageWriter {
  readonly #s: S3Storage;
  readonly #key: string;
  #uploadId: string;
  readonly #parts: Part[];
  #partsBytes: number;
  #buffer: Buffer[] = [];
  #buffered = 0;
  readonly #inflight = new Set<Promise<void>>();
  #failure: unknown;
  #tailWritten: boolean;
  #state: 'open' | 'committed' | 'aborted' | 'closed' = 'open';

  constructor(
    storage: S3Storage,
    readonly path: string,
    readonly partSize: number,
    readonly partQueue: number,
    resumed?: { uploadId: string; parts: Part[]; tail: Buffer },
  ) {
    this.#s = storage;
    this.#key = storage.key(path);
    this.#uploadId = resumed?.uploadId ?? '';
    this.#parts = resumed?.parts ?? [];
    this.#partsBytes = this.#parts.reduce((n, p) => n + p.size, 0);
    this.#tailWritten = resumed !== undefined;
    if (resumed?.tail.length) {
      this.#buffer.push(Buffer.from(resumed.tail));
      this.#buffered = resumed.tail.length;
    }
  }

  get bytesWritten(): number {
    return this.#partsBytes + this.#inflightBytes + this.#buffered;
  }

  #inflightBytes = 0;

  #check(op: StorageOp): void {
    if (this.#state !== 'open') {
      throw new StorageError('BAD_USAGE', `the writer of '${this.path}' in repository ${this.#s.location} is ${this.#state}: cannot ${op}`, op, this.path, this.#s.location);
    }
    if (this.#failure) throw this.#s.error(this.#failure, op, this.path);
  }

  async #send<T>(op: StorageOp, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.#s.error(err, op, this.path);
    }
  }

  /** Takes `n` bytes off the front of the buffer. */
  #take(n: number): Buffer {
    const all = this.#buffer.length === 1 ? this.#buffer[0]! : Buffer.concat(this.#buffer);
    this.#buffer = n < all.length ? [all.subarray(n)] : [];
    this.#buffered = all.length - n;
    return all.subarray(0, n);
  }

  async #startUpload(): Promise<void> {
    if (this.#uploadId) return;
    const r = await this.#s.client.send(new CreateMultipartUploadCommand({ Bucket: this.#s.bucket, Key: this.#key }));
    this.#uploadId = r.UploadId!;
  }

  /** Uploads the next full part in the background, at most `partQueue` at once. */
  async #uploadPart(body: Buffer): Promise<void> {
    while (this.#inflight.size >= this.partQueue) await Promise.race(this.#inflight);
    if (this.#failure) throw this.#s.error(this.#failure, 'write', this.path);
    await this.#startUpload();
    const part: Part = { number: this.#parts.length + 1, etag: '', size: body.length };
    this.#parts.push(part);
    this.#inflightBytes += body.length;
    const p = this.#s.client
      .send(new UploadPartCommand({ Bucket: this.#s.bucket, Key: this.#key, UploadId: this.#uploadId, PartNumber: part.number, Body: body, ContentLength: body.length }))
      .then(
        (r) => {
          part.etag = r.ETag!;
          this.#partsBytes += body.length;
        },
        (err: unknown) => {
          this.#failure ??= err;
        },
      )
      .finally(() => {
        this.#inflightBytes -= body.length;
        this.#inflight.delete(p);
      });
    this.#inflight.add(p);
  }

  /** Waits for every part under way; the first failure is thrown. */
  async #drain(op: StorageOp): Promise<void> {
    await Promise.all([...this.#inflight]);
    if (this.#failure) throw this.#s.error(this.#failure, op, this.path);
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.#check('write');
    this.#buffer.push(Buffer.from(chunk));
    this.#buffered += chunk.length;
    await this.#send('write', async () => {
      while (this.#buffered >= this.partSize) await this.#uploadPart(this.#take(this.partSize));
    });
  }

  /** Uploads the parts under way and stores the bytes past them as the pending tail object. */
  async sync(): Promise<void> {
    this.#check('sync');
    await this.#drain('sync');
    await this.#writeTail('sync');
  }

  async #writeTail(op: StorageOp): Promise<void> {
    const body = this.#buffer.length === 1 ? this.#buffer[0]! : Buffer.concat(this.#buffer);
    await this.#send(op, () =>
      this.#s.client.send(
        new PutObjectCommand({
          Bucket: this.#s.bucket,
          Key: pendingName(this.#key),
          Body: body,
          ContentLength: body.length,
          Metadata: { 'upload-id': this.#uploadId, offset: String(this.#partsBytes) },
        }),
      ),
    );
    this.#tailWritten = true;
  }

  async commit(): Promise<void> {
    this.#check('commit');
    await this.#drain('commit');
    await this.#send('commit', async () => {
      const rest = this.#take(this.#buffered);
      if (this.#parts.length === 0) {
        if (this.#uploadId) await this.#s.client.send(new AbortMultipartUploadCommand({ Bucket: this.#s.bucket, Key: this.#key, UploadId: this.#uploadId }));
        await this.#s.client.send(new PutObjectCommand({ Bucket: this.#s.bucket, Key: this.#key, Body: rest, ContentLength: rest.length }));
      } else {
        if (rest.length > 0) {
          await this.#uploadPart(rest);
          await this.#drain('commit');
        }
        await this.#s.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.#s.bucket,
            Key: this.#key,
            UploadId: this.#uploadId,
            MultipartUpload: { Parts: this.#parts.map((p) => ({ PartNumber: p.number, ETag: p.etag })) },
          }),
        );
      }
      this.#state = 'committed';
      if (this.#tailWritten) await this.#s.client.send(new DeleteObjectCommand({ Bucket: this.#s.bucket, Key: pendingName(this.#key) }));
    });
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'aborted') return;
    this.#state = 'aborted';
    await Promise.allSettled([...this.#inflight]);
    this.#buffer = [];
    this.#buffered = 0;
    await this.#send('abort', async () => {
      if (this.#uploadId) {
        try {
          await this.#s.client.send(new AbortMultipartUploadCommand({ Bucket: this.#s.bucket, Key: this.#key, UploadId: this.#uploadId }));
        } catch (err) {
          if ((err as S3ErrorLike).name !== 'NoSuchUpload' && codeForS3Error(err) !== 'REPO_FILE_MISSING') throw err;
        }
      }
      if (this.#tailWritten) await this.#s.client.send(new DeleteObjectCommand({ Bucket: this.#s.bucket, Key: pendingName(this.#key) }));
    });
  }

  /** Keeps the pending upload and stores the bytes past its parts as the tail, for a later resume. */
  async close(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'closed';
    await Promise.allSettled([...this.#inflight]);
    if (this.#failure) return; // the parts are in an unknown state: a resume finds what the store holds
    await this.#writeTail('sync');
    this.#buffer = [];
    this.#buffered = 0;
  }

  async openRead(): Promise<Readable> {
    if (this.#parts.length > 0) throw unreadablePending(this.path, this.#s.location);
    return Readable.from(this.#buffered ? [Buffer.concat(this.#buffer)] : []);
  }
}
