/**
 * Keys of an encrypted repository (docs/repository-format.md section 16), as restic and kopia do it: one random
 * master key per repository, stored only wrapped, once per password, in `keys/<id>.json` key files. A key file
 * holds scrypt's parameters and salt and the master key sealed (AES-256-GCM) under the key scrypt derives from the
 * password. Any one password opens the repository; adding, removing or changing a password rewrites key files only,
 * never data. From the master key, HKDF derives the data key (objects, `object-cipher.ts`) and the chunk-id key
 * (HMAC-SHA-256 chunk ids, so names reveal nothing).
 *
 * @module
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, randomBytes, scrypt } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { z } from 'zod';
import { CutpointError } from '../../common/errors.ts';
import type { ChunkHasher } from '../v2/chunk-id.ts';
import { type Storage, StorageError } from '../storage.ts';
import { ObjectCipher } from './object-cipher.ts';

/** The directory of key files. */
export const KEYS_DIR = 'keys';
const KEY_FILE = /^([0-9a-f]{64})\.json$/;
const WRAP_AAD = Buffer.from('cutpoint master key v1', 'ascii');

/** scrypt cost of new key files: N = 2^15, r = 8, p = 1 (restic's and kopia's order of magnitude: ~32 MiB, ~0.1 s). */
export const DEFAULT_SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;
export type ScryptParams = { N: number; r: number; p: number };

const b64 = z.string().regex(/^[A-Za-z0-9+/]+=*$/);
/** A key file, `keys/<id>.json`; its id is the SHA-256 of its bytes (so a key file names itself, as a pack does). */
export const keyFileSchema = z.looseObject({
  format: z.literal('cutpoint/key-v1'),
  createdAt: z.iso.datetime({ offset: true }),
  host: z.string(),
  user: z.string(),
  kdf: z.looseObject({ type: z.literal('scrypt'), N: z.int().min(2), r: z.int().positive(), p: z.int().positive(), salt: b64 }),
  cipher: z.literal('aes-256-gcm'),
  nonce: b64,
  /** The 32-byte master key sealed under the password's key, then the 16-byte tag. */
  masterKey: b64,
});
export type KeyFile = z.infer<typeof keyFileSchema>;

/** Master keys this process unlocked, by location and (a keyed hash of) password. */
const unlocked = new Map<string, { master: Buffer; keyId: string }>();
const CACHE_SALT = randomBytes(32);

/** A key file as listed. */
export interface KeyInfo {
  id: string;
  path: string;
  createdAt: string;
  host: string;
  user: string;
}

/** What an unlocked repository holds in memory: the derived keys, never written anywhere. */
export class RepositoryKeys {
  readonly objects: ObjectCipher;
  readonly chunkHasher: ChunkHasher;
  /** The key file that opened the repository. */
  readonly keyId: string;
  readonly #master: Buffer;

  constructor(master: Buffer, keyId: string) {
    this.#master = master;
    this.keyId = keyId;
    this.objects = new ObjectCipher(derive(master, 'cutpoint data key'));
    const idKey = derive(master, 'cutpoint chunk id key');
    this.chunkHasher = async (plain) => createHmac('sha256', idKey).update(plain).digest('hex');
  }

  /**
   * A check value of the master key (HMAC-SHA-256 of a fixed text under it, 32 hex digits), recorded in
   * cutpoint.json: a key file belongs to the repository when its master key gives this value.
   */
  get keyCheck(): string {
    return keyCheckOf(this.#master);
  }

  /** The master key, for wrapping under another password (key add, passwd). */
  masterKey(): Buffer {
    return this.#master;
  }
}

function keyCheckOf(master: Buffer): string {
  return createHmac('sha256', master).update('cutpoint key check').digest('hex').slice(0, 32);
}

function derive(master: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), Buffer.from(info, 'ascii'), 32));
}

function scryptKey(password: string, salt: Buffer, p: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, 32, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A new key file wrapping `master` under `password`. Returns its id and bytes. */
export async function wrapMasterKey(master: Buffer, password: string, params: ScryptParams = DEFAULT_SCRYPT, now = new Date()): Promise<{ id: string; bytes: Buffer }> {
  const salt = randomBytes(32);
  const nonce = randomBytes(12);
  const kek = await scryptKey(password, salt, params);
  const c = createCipheriv('aes-256-gcm', kek, nonce);
  c.setAAD(WRAP_AAD);
  const sealed = Buffer.concat([c.update(master), c.final(), c.getAuthTag()]);
  let user = '';
  try {
    user = userInfo().username;
  } catch {
    // no user name (container without passwd entry)
  }
  const file: KeyFile = {
    format: 'cutpoint/key-v1',
    createdAt: now.toISOString(),
    host: hostname(),
    user,
    kdf: { type: 'scrypt', N: params.N, r: params.r, p: params.p, salt: salt.toString('base64') },
    cipher: 'aes-256-gcm',
    nonce: nonce.toString('base64'),
    masterKey: sealed.toString('base64'),
  };
  const bytes = Buffer.from(`${JSON.stringify(file, null, 2)}\n`, 'utf8');
  return { id: createHash('sha256').update(bytes).digest('hex'), bytes };
}

/** The master key, when `password` opens the key file; `undefined` when it does not. */
async function unwrap(file: KeyFile, password: string): Promise<Buffer | undefined> {
  const kek = await scryptKey(password, Buffer.from(file.kdf.salt, 'base64'), file.kdf);
  const sealed = Buffer.from(file.masterKey, 'base64');
  if (sealed.length !== 32 + 16) return undefined;
  const d = createDecipheriv('aes-256-gcm', kek, Buffer.from(file.nonce, 'base64'));
  d.setAAD(WRAP_AAD);
  d.setAuthTag(sealed.subarray(32));
  try {
    return Buffer.concat([d.update(sealed.subarray(0, 32)), d.final()]);
  } catch {
    return undefined;
  }
}

/** Path of key file `id`. */
export function keyPath(id: string): string {
  return `${KEYS_DIR}/${id}.json`;
}

/** Every key file of the repository (id, path, parsed file). Invalid ones are `REPO_CORRUPT` naming the file. */
export async function readKeyFiles(storage: Storage): Promise<Array<{ id: string; path: string; file: KeyFile }>> {
  const out: Array<{ id: string; path: string; file: KeyFile }> = [];
  for (const name of await storage.listChildren(KEYS_DIR)) {
    const id = KEY_FILE.exec(name)?.[1];
    if (!id) continue;
    const path = keyPath(id);
    let raw: Buffer;
    try {
      raw = await storage.readFile(path);
    } catch (err) {
      if (err instanceof StorageError && err.code === 'REPO_FILE_MISSING') continue; // removed meanwhile
      throw err;
    }
    let parsed: ReturnType<typeof keyFileSchema.safeParse>;
    try {
      parsed = keyFileSchema.safeParse(JSON.parse(raw.toString('utf8')));
    } catch {
      parsed = keyFileSchema.safeParse(undefined);
    }
    if (!parsed.success) throw new CutpointError('REPO_CORRUPT', `key file ${storage.location}/${path} is not a valid cutpoint key file`, { file: path });
    out.push({ id, path, file: parsed.data });
  }
  return out;
}

/** The key files as listed (no password needed). */
export async function listKeys(storage: Storage): Promise<KeyInfo[]> {
  return (await readKeyFiles(storage)).map(({ id, path, file }) => ({ id, path, createdAt: file.createdAt, host: file.host, user: file.user }));
}

/**
 * Opens the repository's master key with `password`, trying every key file (as restic does) whose master key matches
 * `keyCheck` (cutpoint.json's `encryption.keyCheck`). No password:
 * `REPO_PASSWORD_MISSING`; no key file: `REPO_FILE_MISSING`; none opens: `REPO_PASSWORD_WRONG`.
 */
export async function unlock(storage: Storage, password: string | undefined, keyCheck?: string): Promise<RepositoryKeys> {
  if (password === undefined) {
    throw new CutpointError(
      'REPO_PASSWORD_MISSING',
      `repository ${storage.location} is encrypted and no password was given: set CUTPOINT_REPO_PASSWORD or CUTPOINT_REPO_PASSWORD_FILE (or --password-file)`,
      { location: storage.location },
    );
  }
  const keys = await readKeyFiles(storage);
  if (keys.length === 0) {
    throw new CutpointError(
      'REPO_FILE_MISSING',
      `repository ${storage.location} is encrypted but holds no key file under ${KEYS_DIR}/: without one, its data cannot be decrypted`,
      { location: storage.location },
    );
  }
  // A worker opens the repository in every activity: scrypt runs once per process, location and password, for as
  // long as the key file it opened stays.
  const cacheKey = `${storage.location}\0${createHmac('sha256', CACHE_SALT).update(password).digest('hex')}`;
  const cached = unlocked.get(cacheKey);
  const belongs = (master: Buffer) => keyCheck === undefined || keyCheckOf(master) === keyCheck;
  if (cached && belongs(cached.master) && keys.some((k) => k.id === cached.keyId)) return new RepositoryKeys(cached.master, cached.keyId);
  for (const k of keys) {
    const master = await unwrap(k.file, password);
    // A key file of another master key (a concurrent first write that lost the race) opens nothing here.
    if (master && belongs(master)) {
      if (unlocked.size >= 64) unlocked.clear();
      unlocked.set(cacheKey, { master, keyId: k.id });
      return new RepositoryKeys(master, k.id);
    }
  }
  throw new CutpointError(
    'REPO_PASSWORD_WRONG',
    `the password opens none of the ${keys.length} key file(s) of repository ${storage.location}: wrong password (CUTPOINT_REPO_PASSWORD, CUTPOINT_REPO_PASSWORD_FILE or --password-file)`,
    { location: storage.location, keys: keys.length },
  );
}

/** A new master key, wrapped under `password` as the repository's first key file (written). */
export async function createMasterKey(storage: Storage, password: string, params?: ScryptParams): Promise<RepositoryKeys> {
  const master = randomBytes(32);
  const id = await addKey(storage, master, password, params);
  return new RepositoryKeys(master, id);
}

/** Writes a key file wrapping `master` under `password`; returns its id. */
export async function addKey(storage: Storage, master: Buffer, password: string, params?: ScryptParams): Promise<string> {
  const { id, bytes } = await wrapMasterKey(master, password, params);
  await storage.writeFile(keyPath(id), bytes);
  return id;
}

/**
 * Removes key file `id` (a unique prefix of it is enough). Refused (`BAD_USAGE`) when it is the last key file, or
 * the one `current` opened the repository with (use `key passwd` to replace that one).
 */
export async function removeKey(storage: Storage, id: string, current: string): Promise<string> {
  const keys = await readKeyFiles(storage);
  const matches = keys.filter((k) => k.id.startsWith(id));
  if (matches.length !== 1 || !id) {
    throw new CutpointError('BAD_USAGE', `${matches.length ? 'several' : 'no'} key file(s) of repository ${storage.location} match '${id}' (see: cutpoint repo key list)`);
  }
  const target = matches[0]!;
  if (keys.length === 1) throw new CutpointError('BAD_USAGE', `refusing to remove the last key of repository ${storage.location}: without a key nothing in it can ever be read again`);
  if (target.id === current) {
    throw new CutpointError('BAD_USAGE', `refusing to remove key ${target.id.slice(0, 8)}, the one this password opened: remove it with another key's password, or use 'cutpoint repo key passwd'`);
  }
  await storage.remove(target.path);
  return target.id;
}
