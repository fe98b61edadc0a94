/**
 * Option parsing of `$backupCursor` and `$backupCursorExtend` exactly as PSMDB's `createFromBson` does it
 * (docs/psmdb-behaviour.md sections 1.1 and 4.3): fields checked in the order sent, so the first bad field wins; BSON
 * types checked exactly (an int32 `blockSize` only, so the command must be read with its original types: see
 * {@link typedCommand}).
 */
import type { Document } from 'mongodb';
import { BSON, Binary, Long, Timestamp, UUID } from 'mongodb';
import { CommandError, ErrorCodes, type ConnectionContext } from '../../wire/index.ts';

/** `StorageEngine::BackupOptions`. */
export interface BackupOptions {
  disableIncrementalBackup: boolean;
  incrementalBackup: boolean;
  /** MB (WiredTiger's `granularity=<n>MB`); echoed in the metadata as an int32. */
  blockSize: number;
  thisBackupName?: string;
  srcBackupName?: string;
}

export interface ExtendOptions {
  backupId: UUID;
  timestamp: Timestamp;
}

const TYPED = { promoteValues: false, promoteLongs: false, promoteBuffers: false, bsonRegExp: true } as const;

/**
 * The command with BSON types kept (Int32, Double, Long… as wrapper objects), re-read from the request's bytes. The
 * wire layer promotes Int32 and Double alike to JS numbers; `blockSize` must tell them apart.
 */
export function typedCommand(command: Document, conn: ConnectionContext): Document {
  const request = conn.request;
  if (request?.rawBody && request.command === command) return BSON.deserialize(request.rawBody, TYPED);
  return command;
}

/** mongod's `typeName(BSONType)` for a value deserialized with {@link typedCommand}'s options. */
export function bsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return 'string';
  if (typeof value === 'boolean') return 'bool';
  // Only reached for a command without its bytes (a test calling in directly): numbers as the driver would send them.
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 2 ** 31 ? 'int' : 'double';
  if (typeof value === 'bigint') return 'long';
  if (value instanceof Date) return 'date';
  if (Array.isArray(value)) return 'array';
  const bsontype = (value as { _bsontype?: string })._bsontype;
  switch (bsontype) {
    case 'Double':
      return 'double';
    case 'Int32':
      return 'int';
    case 'Long':
      return 'long';
    case 'Timestamp':
      return 'timestamp';
    case 'Decimal128':
      return 'decimal';
    case 'Binary':
      return 'binData';
    case 'ObjectId':
      return 'objectId';
    case 'BSONRegExp':
      return 'regex';
    case 'Code':
      return (value as { scope?: unknown }).scope ? 'javascriptWithScope' : 'javascript';
    case 'BSONSymbol':
      return 'symbol';
    case 'MinKey':
      return 'minKey';
    case 'MaxKey':
      return 'maxKey';
    case 'DBPointer':
      return 'dbPointer';
    default:
      return 'object';
  }
}

function isObject(value: unknown): value is Document {
  return bsonTypeName(value) === 'object';
}

function int32Of(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 2 ** 31 ? value : undefined;
  if ((value as { _bsontype?: string } | null)?._bsontype === 'Int32') return (value as { value: number }).value;
  return undefined;
}

const CURSOR = '$backupCursor';
const EXTEND = '$backupCursorExtend';

function typeMismatch(stage: string, field: string, expected: string, value: unknown): CommandError {
  return new CommandError(
    ErrorCodes.TypeMismatch,
    `The '${field}' parameter of the ${stage} stage must be ${expected} value, but found: ${bsonTypeName(value)}`,
  );
}

function notAnObject(stage: string, spec: unknown): CommandError {
  return new CommandError(ErrorCodes.FailedToParse, `${stage} parameters must be specified in an object, but found: ${bsonTypeName(spec)}`);
}

/** `DocumentSourceBackupCursor::createFromBson`. */
export function parseBackupCursorSpec(spec: unknown): BackupOptions {
  if (!isObject(spec)) throw notAnObject(CURSOR, spec);
  const options: BackupOptions = { disableIncrementalBackup: false, incrementalBackup: false, blockSize: 16 };
  for (const [field, value] of Object.entries(spec)) {
    switch (field) {
      case 'disableIncrementalBackup':
      case 'incrementalBackup':
        if (typeof value !== 'boolean') throw typeMismatch(CURSOR, field, 'a boolean', value);
        options[field] = value;
        break;
      case 'blockSize': {
        const n = int32Of(value);
        if (n === undefined) throw typeMismatch(CURSOR, field, 'an integer', value);
        options.blockSize = n;
        break;
      }
      case 'thisBackupName':
      case 'srcBackupName':
        if (typeof value !== 'string') throw typeMismatch(CURSOR, field, 'a string', value);
        options[field] = value;
        break;
      default:
        throw new CommandError(ErrorCodes.FailedToParse, `Unrecognized option '${field}' in ${CURSOR} stage`);
    }
  }
  if (options.incrementalBackup && options.disableIncrementalBackup) {
    throw new CommandError(
      ErrorCodes.InvalidOptions,
      "'incrementalBackup' and 'disableIncrementalBackup' parameters are mutually exclusive. Cannot enable both",
    );
  }
  if (!options.incrementalBackup && (options.thisBackupName !== undefined || options.srcBackupName !== undefined)) {
    throw new CommandError(
      ErrorCodes.InvalidOptions,
      "'thisBackupName' and 'srcBackupName' parameters are only allowed when 'incrementalBackup' is true",
    );
  }
  return options;
}

/** `BSONElement::timestamp()`: a Timestamp as is; a Date's raw 64 bits read as one. */
function timestampOf(value: unknown): Timestamp {
  if (value instanceof Date) {
    const bits = Long.fromNumber(value.getTime());
    return new Timestamp({ t: bits.getHighBitsUnsigned(), i: bits.getLowBitsUnsigned() });
  }
  return value as Timestamp;
}

/** `DocumentSourceBackupCursorExtend::createFromBson`. */
export function parseExtendSpec(spec: unknown): ExtendOptions {
  if (!isObject(spec)) throw notAnObject(EXTEND, spec);
  let backupId: UUID | undefined;
  let timestamp: Timestamp | undefined;
  for (const [field, value] of Object.entries(spec)) {
    if (field === 'backupId') {
      const bin = value as Binary;
      if (bsonTypeName(value) !== 'binData' || bin.sub_type !== Binary.SUBTYPE_UUID) {
        throw typeMismatch(EXTEND, field, 'a UUID', value);
      }
      // The missing space before "stage" is PSMDB's own (document_source_backup_cursor_extend.cpp).
      if (bin.length() !== 16) {
        throw new CommandError(ErrorCodes.TypeMismatch, `The 'backupId' parameter of the ${EXTEND}stage failed to parse as UUID`);
      }
      backupId = new UUID(bin.value());
    } else if (field === 'timestamp') {
      const type = bsonTypeName(value);
      if (type !== 'timestamp' && type !== 'date') throw typeMismatch(EXTEND, field, 'a Timestamp', value);
      timestamp = timestampOf(value);
    } else {
      throw new CommandError(ErrorCodes.FailedToParse, `Unrecognized option '${field}' in ${EXTEND} stage`);
    }
  }
  if (!backupId) throw new CommandError(ErrorCodes.InvalidOptions, 'Required parameter missing: backupId');
  if (!timestamp) throw new CommandError(ErrorCodes.InvalidOptions, 'Required parameter missing: timestamp');
  return { backupId, timestamp };
}
