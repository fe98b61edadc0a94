import { createHmac, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BSON, Binary } from 'mongodb';
import { Files, VERSION_TEXT, writeAtomic } from './dbfiles.ts';
import { StorageCodes, StorageError } from './errors.ts';

/**
 * PSMDB's data-at-rest encryption (`--enableEncryption --encryptionKeyFile <f> [--encryptionCipherMode <m>]`), as far
 * as a restore can get it wrong. PSMDB encrypts every database with a key of its own, keeps those keys in a second
 * WiredTiger database in `<dbpath>/key.db/`, and encrypts that one with the master key read from the key file (or a
 * Vault / KMIP server). The simulator encrypts no bytes; what it keeps is the part a restore must carry over:
 *
 * - `key.db/` exists exactly when the dbpath is encrypted. It holds `key.wt` (the simulator's content: an HMAC of the
 *   master key, standing for "this master key decrypts the key database", and the cipher mode the data files were
 *   written with) and `WiredTiger`. A backup cursor lists them first (pin.ts), as PSMDB lists the key database's files.
 * - Starting an encrypted dbpath without `--enableEncryption`: WiredTiger finds data written through the `percona`
 *   encryptor and no such encryptor (fassert 28561, exit 14).
 * - With another master key: PSMDB's key database does not open (`EncryptionKeyDB: WiredTiger metadata corruption
 *   detected or an invalid encryption key is used`, log 29055, fatal 29056, exit 14).
 * - With another cipher mode: the data files do not decrypt (exit 14; the simulator's wording).
 * - An existing unencrypted dbpath with `--enableEncryption`: refused (PSMDB enables encryption only on an empty
 *   dbpath; the simulator's wording).
 * - A fresh dbpath with `--enableEncryption`: `key.db/` is created.
 *
 * The master key file is read as PSMDB's `ReadKeyFile` reads it (encryption/key_operations.cpp, key.cpp,
 * secret_string.cpp): the owner alone may read it, and its first whitespace-delimited word is the 32-byte key,
 * base64-encoded (44 characters) or raw.
 */

export type CipherMode = 'AES256-CBC' | 'AES256-GCM';
export const CIPHER_MODES: readonly CipherMode[] = ['AES256-CBC', 'AES256-GCM'];
/** PSMDB's default `encryptionCipherMode`. */
export const DEFAULT_CIPHER_MODE: CipherMode = 'AES256-CBC';

/** What the storage engine needs to open an encrypted dbpath. */
export interface EncryptionOptions {
  /** `--encryptionKeyFile`: the master key. */
  readonly keyFile: string;
  /** `--encryptionCipherMode` (AES256-CBC when absent). */
  readonly cipherMode?: CipherMode;
}

const KEY_LENGTH = 32;
const KEYS_FILE = 'key.wt';
/** What the HMAC in `key.db/key.wt` is computed over. */
const CHECK_TEXT = 'cutpoint simulator: PSMDB key database';

const READ_FAILED = 'reading the master key from the encryption key file failed: ';

function strerror(e: NodeJS.ErrnoException): string {
  return e.code === 'ENOENT' ? 'No such file or directory' : e.code === 'EACCES' ? 'Permission denied' : e.message;
}

/** PSMDB's master key from an encryption key file, or its error (exit 100, as an exception in `initAndListen`). */
export function readMasterKey(file: string): Buffer {
  const fail = (why: string) => new StorageError(StorageCodes.BadValue, READ_FAILED + why);
  let stats: fs.Stats;
  try {
    stats = fs.statSync(file);
  } catch (e) {
    throw fail(`cannot read stats of the encryption key file: ${file}: ${strerror(e as NodeJS.ErrnoException)}`);
  }
  if (process.platform !== 'win32' && (stats.mode & 0o077) !== 0) throw fail(`permissions on ${file} are too open`);
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    throw fail(`cannot open specified encryption key file: ${file}`);
  }
  // `f >> data`: the first whitespace-delimited word.
  const word = text.split(/[\t\n\v\f\r ]+/).find((w) => w !== '') ?? '';
  if (word.length === 44 && /^[A-Za-z0-9+/]{43}=$/.test(word)) return Buffer.from(word, 'base64');
  if (word.length === KEY_LENGTH) return Buffer.from(word, 'latin1');
  throw fail(`invalid data for an encryption key: it must be a byte string of legth ${KEY_LENGTH} in either raw or base64-encoded form`);
}

function check(masterKey: Buffer): Buffer {
  return createHmac('sha256', masterKey).update(CHECK_TEXT).digest();
}

/** True when the dbpath has a key database (it is encrypted). */
export function isEncrypted(dbpath: string): boolean {
  return fs.existsSync(path.join(dbpath, Files.keyDb, KEYS_FILE));
}

/** The key database's files a backup must copy, relative to the dbpath, in the order a backup cursor lists them. */
export function keyDbFiles(dbpath: string): string[] {
  return [KEYS_FILE, Files.version].map((n) => `${Files.keyDb}/${n}`).filter((rel) => fs.existsSync(path.join(dbpath, rel)));
}

/**
 * Opens (or, on a fresh dbpath, creates) the key database as PSMDB's WiredTigerKVEngine does before it opens the data
 * files. `hasData`: the dbpath already holds a WiredTiger database. Throws {@link StorageError} when the node must
 * not start.
 */
export function openKeyDb(dbpath: string, encryption: EncryptionOptions | undefined, hasData: boolean, fsync: boolean): void {
  const dir = path.join(dbpath, Files.keyDb);
  const keysPath = path.join(dir, KEYS_FILE);
  if (!encryption) {
    if (fs.existsSync(keysPath)) {
      throw new StorageError(
        StorageCodes.WiredTigerOpenFailed,
        "Failed to start up WiredTiger under any compatibility version. This may be due to an unsupported upgrade or downgrade. " +
          "WiredTiger error: unknown encryptor 'percona': Invalid argument " +
          `(simulator: ${dir} holds the keys of an encrypted dbpath; start it with --enableEncryption and its --encryptionKeyFile)`,
        { exitCode: 14 },
      );
    }
    return;
  }
  const masterKey = readMasterKey(encryption.keyFile);
  const cipherMode = encryption.cipherMode ?? DEFAULT_CIPHER_MODE;
  if (!fs.existsSync(keysPath)) {
    if (hasData) {
      throw new StorageError(
        StorageCodes.InvalidOptions,
        `--enableEncryption on a dbpath whose data is not encrypted (there is no ${Files.keyDb} in ${dbpath}): ` +
          'encryption at rest can only be enabled on an empty dbpath (simulator: PSMDB cannot read these files as encrypted ones)',
      );
    }
    fs.mkdirSync(dir, { recursive: true });
    const doc = { check: new Binary(check(masterKey)), cipherMode };
    writeAtomic(dir, KEYS_FILE, BSON.serialize(doc), undefined, fsync);
    writeAtomic(dir, Files.version, VERSION_TEXT, undefined, fsync);
    return;
  }
  let doc: { check?: Binary; cipherMode?: string };
  try {
    doc = BSON.deserialize(fs.readFileSync(keysPath)) as typeof doc;
  } catch (e) {
    throw new StorageError(StorageCodes.DataCorruptionDetected, `error opening keys DB at '${dir}': ${(e as Error).message}`, { exitCode: 14 });
  }
  const stored = doc.check ? Buffer.from(doc.check.buffer) : Buffer.alloc(0);
  const expected = check(masterKey);
  if (stored.length !== expected.length || !timingSafeEqual(stored, expected)) {
    throw new StorageError(
      StorageCodes.EncryptionKeyDbOpenFailed,
      'EncryptionKeyDB: WiredTiger metadata corruption detected or an invalid encryption key is used ' +
        `(simulator: ${encryption.keyFile} is not the master key ${dir} was encrypted with)`,
      { exitCode: 14 },
    );
  }
  if (doc.cipherMode !== cipherMode) {
    throw new StorageError(
      StorageCodes.WiredTigerOpenFailed,
      `the data files were encrypted with ${String(doc.cipherMode)} and cannot be decrypted with --encryptionCipherMode ${cipherMode} ` +
        '(simulator: PSMDB fails reading them; the cipher mode of an encrypted dbpath cannot change)',
      { exitCode: 14 },
    );
  }
}
