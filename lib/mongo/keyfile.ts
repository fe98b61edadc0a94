/**
 * MongoDB key files (`--keyFile`): the shared secret of internal authentication. Members of a replica set or sharded
 * cluster started with the same key file authenticate to each other as the internal user `__system` (database
 * `local`), with SCRAM, using the file's contents as the password. A client that holds the key file (a restore's
 * node controller, which must reach the nodes it starts with the source's `--keyFile`) authenticates the same way:
 * {@link keyFileClientOptions}.
 *
 * How mongod reads the file (`readSecurityFile` and `setUpSecurityKey` of mongod's src/mongo/db/auth): the file must
 * exist and, on POSIX, be readable by its owner only (group and others: no permission at all; a file owned by root
 * may also be group-readable); every whitespace character is dropped; what remains must be base64 characters
 * (`A-Z a-z 0-9 + / =`) and 6 to 1024 of them. That string is the password: SCRAM-SHA-1 digests it as
 * `md5("__system:mongo:<key>")`, as for any user, and SCRAM-SHA-256 uses it as is (SASLprep of base64 is a no-op).
 * The simulator reads a key file the same way (sim/node/auth/internal.ts). mongod 4.4+ also accepts a YAML list of
 * keys (key rotation); that form is not supported here.
 */
import { readFileSync, statSync } from 'node:fs';
import type { MongoClientOptions } from 'mongodb';

/** The internal user of a key-file cluster: `__system` on `local`. */
export const INTERNAL_USER = { user: '__system', db: 'local' } as const;

/** mongod's key length bounds (characters after whitespace is removed). */
export const KEY_MIN_LENGTH = 6;
export const KEY_MAX_LENGTH = 1024;

/** A key file mongod would refuse, with mongod's message and status code. */
export class KeyFileError extends Error {
  constructor(
    message: string,
    /** mongod's status: 30 InvalidPath (missing file, permissions), 12 UnsupportedFormat (a bad character), 2 BadValue (length). */
    readonly code: number,
    readonly codeName: string,
  ) {
    super(message);
    this.name = 'KeyFileError';
  }
}

/** `strerror` of the usual errno values, as mongod prints them. */
function strerror(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT':
      return 'No such file or directory';
    case 'EACCES':
      return 'Permission denied';
    case 'ENOTDIR':
      return 'Not a directory';
    case 'EISDIR':
      return 'Is a directory';
    default:
      return e.message;
  }
}

/**
 * Reads a key file as mongod does and returns the key (whitespace removed). Throws {@link KeyFileError} with mongod's
 * message: `Error reading file <f>: No such file or directory`, `permissions on <f> are too open`, `invalid char in key
 * file <f>: <c>`, `security key in <f> has length <n>, must be between 6 and 1024 chars`. `checkPermissions: false`
 * skips the POSIX mode check (a client need not be as strict as the server).
 */
export function readKeyFile(file: string, opts: { checkPermissions?: boolean } = {}): string {
  let stats;
  try {
    stats = statSync(file);
  } catch (e) {
    throw new KeyFileError(`Error reading file ${file}: ${strerror(e as NodeJS.ErrnoException)}`, 30, 'InvalidPath');
  }
  if ((opts.checkPermissions ?? true) && process.platform !== 'win32') {
    // Must be X00 (X >= 4); a root-owned file may also be readable by its group.
    const prohibited = stats.uid === 0 ? 0o037 : 0o077;
    if ((stats.mode & prohibited) !== 0) throw new KeyFileError(`permissions on ${file} are too open`, 30, 'InvalidPath');
  }
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (e) {
    throw new KeyFileError(`error opening file: ${file}: ${strerror(e as NodeJS.ErrnoException)}`, 30, 'InvalidPath');
  }
  let key = '';
  for (const byte of raw) {
    // Whitespace: \t \n \v \f \r and space.
    if ((byte >= 0x09 && byte <= 0x0d) || byte === 0x20) continue;
    const c = String.fromCharCode(byte);
    if (!/[A-Za-z0-9+/=]/.test(c)) throw new KeyFileError(`invalid char in key file ${file}: ${c}`, 12, 'UnsupportedFormat');
    key += c;
  }
  if (key.length < KEY_MIN_LENGTH || key.length > KEY_MAX_LENGTH) {
    throw new KeyFileError(
      `security key in ${file} has length ${key.length}, must be between ${KEY_MIN_LENGTH} and ${KEY_MAX_LENGTH} chars`,
      2,
      'BadValue',
    );
  }
  return key;
}

/** Driver options that authenticate as `__system` with a key (already read with {@link readKeyFile}). */
export function internalAuthOptions(key: string): MongoClientOptions {
  return {
    auth: { username: INTERNAL_USER.user, password: key },
    authSource: INTERNAL_USER.db,
    // What a 4.0+ member uses for internal authentication.
    authMechanism: 'SCRAM-SHA-256',
  };
}

/**
 * Driver options that authenticate as the internal user `__system` with the key in `keyFile`, as a member of a
 * key-file cluster does: merge them into a `MongoClient`'s options to reach a node started with `--keyFile` without
 * any user of its own (e.g. a restored node before its users are back, or with the localhost exception closed).
 * Throws {@link KeyFileError} for a file mongod would refuse (the permission check included).
 */
export function keyFileClientOptions(keyFile: string): MongoClientOptions {
  return internalAuthOptions(readKeyFile(keyFile));
}
