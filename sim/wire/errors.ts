import { Double } from 'mongodb';
import type { Document } from 'mongodb';

/**
 * MongoDB error codes the simulator raises, by name, as in mongodb/mongo `src/mongo/base/error_codes.yml`.
 *
 * Only named codes belong here. A code that mongod raises with a bare number (`uassert(50886, ...)`) has no name and
 * is reported as `Location<code>`; put it in {@link LocationCodes} or use the number directly.
 */
export const ErrorCodes = {
  InternalError: 1,
  BadValue: 2,
  NoSuchKey: 4,
  HostUnreachable: 6,
  UnknownError: 8,
  FailedToParse: 9,
  UserNotFound: 11,
  Unauthorized: 13,
  TypeMismatch: 14,
  Overflow: 15,
  ProtocolError: 17,
  AuthenticationFailed: 18,
  IllegalOperation: 20,
  InvalidBSON: 22,
  NamespaceNotFound: 26,
  IndexNotFound: 27,
  RoleNotFound: 31,
  CursorNotFound: 43,
  NamespaceExists: 48,
  MaxTimeMSExpired: 50,
  CommandNotFound: 59,
  WriteConcernTimeout: 64,
  ShardNotFound: 70,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  NodeNotFound: 74,
  NoReplicationEnabled: 76,
  UnknownReplWriteConcern: 79,
  ShutdownInProgress: 91,
  InvalidReplicaSetConfig: 93,
  NotYetInitialized: 94,
  NotSecondary: 95,
  OperationFailed: 96,
  UnsatisfiableWriteConcern: 100,
  NewReplicaSetConfigurationIncompatible: 103,
  WriteConflict: 112,
  CommandNotSupported: 115,
  ConflictingOperationInProgress: 117,
  NotAReplicaSet: 123,
  CommandFailed: 125,
  FailedToSatisfyReadPreference: 133,
  CappedPositionLost: 136,
  CursorInUse: 143,
  CommandNotSupportedOnView: 166,
  QueryPlanKilled: 175,
  PrimarySteppedDown: 189,
  NetworkInterfaceExceededTimeLimit: 202,
  NoSuchSession: 206,
  KeyNotFound: 211,
  IllegalOpMsgFlag: 223,
  TooManyDocumentSequences: 233,
  CursorKilled: 237,
  NoSuchTransaction: 251,
  ExceededTimeLimit: 262,
  OperationNotSupportedInTransaction: 263,
  CannotBackup: 268,
  ClientDisconnect: 279,
  ChecksumMismatch: 288,
  ObjectIsBusy: 314,
  UnsupportedOpQueryCommand: 352,
  NotWritablePrimary: 10107,
  BSONObjectTooLarge: 10334,
  DuplicateKey: 11000,
  InterruptedAtShutdown: 11600,
  Interrupted: 11601,
  InterruptedDueToReplStateChange: 11602,
  NotPrimaryNoSecondaryOk: 13435,
  NotPrimaryOrSecondary: 13436,
  IDLDuplicateField: 40413,
  IDLFailedToParse: 40414,
  IDLUnknownField: 40415,
  BackupCursorOpenConflictWithCheckpoint: 50915,
} as const;

/** A name of {@link ErrorCodes}. */
export type ErrorCodeName = keyof typeof ErrorCodes;

/**
 * Unnamed codes (reported as `Location<code>`) that the wire layer raises itself, named here only for readability.
 * The values are mongod's `uassert` ids in `src/mongo/rpc/op_msg.cpp` and `op_msg_request.cpp`.
 */
export const LocationCodes = {
  MultipleBodySections: 40430,
  DuplicateDocumentSequence: 40431,
  UnknownSectionKind: 40432,
  DuplicateFieldBodyAndSequence: 40433,
  MissingDbArgument: 40571,
  MissingBody: 40587,
} as const;

const namesByCode: ReadonlyMap<number, string> = new Map(
  Object.entries(ErrorCodes).map(([name, code]) => [code, name] as const),
);

/**
 * The `codeName` mongod reports for `code`: the name from {@link ErrorCodes}, otherwise `Location<code>` (mongod's
 * name for an assertion id that is not in `error_codes.yml`).
 */
export function codeNameFor(code: number): string {
  return namesByCode.get(code) ?? `Location${code}`;
}

/** Options of a {@link CommandError} beyond its code and message. */
export interface CommandErrorOptions {
  /** Overrides the name from {@link codeNameFor}, e.g. `Location50915` to mimic an older build. */
  readonly codeName?: string;
  /** `errorLabels` of the reply, e.g. `['RetryableWriteError']` or `['TransientTransactionError']`. */
  readonly errorLabels?: readonly string[];
  /** Extra reply fields after `codeName`, as mongod's ErrorExtraInfo adds (e.g. `{topologyVersion}`). */
  readonly extra?: Document;
  /** The underlying error, for logs only; it never reaches the wire. */
  readonly cause?: unknown;
}

/**
 * A command failure with a MongoDB error code. A {@link CommandHandler} throws it; the wire layer turns it into the
 * reply `{ok: 0, errmsg, code, codeName, ...extra, errorLabels?}`, which the driver raises as `MongoServerError`.
 */
export class CommandError extends Error {
  /** The numeric MongoDB error code. */
  readonly code: number;
  /** The name mongod reports with {@link code}. */
  readonly codeName: string;
  /** `errorLabels` of the reply; empty means the field is omitted. */
  readonly errorLabels: readonly string[];
  /** Extra reply fields. */
  readonly extra: Document;

  /**
   * @param code - MongoDB error code; use {@link ErrorCodes} for named ones
   * @param errmsg - the `errmsg` of the reply, worded as mongod words it where it matters
   */
  constructor(code: number, errmsg: string, options: CommandErrorOptions = {}) {
    super(errmsg, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CommandError';
    this.code = code;
    this.codeName = options.codeName ?? codeNameFor(code);
    this.errorLabels = options.errorLabels ?? [];
    this.extra = options.extra ?? {};
  }

  /** The error reply document, with fields in mongod's order. */
  toReply(): Document {
    return errorReply(this.code, this.message, {
      codeName: this.codeName,
      errorLabels: this.errorLabels,
      extra: this.extra,
    });
  }
}

/**
 * Builds an error reply `{ok: 0, errmsg, code, codeName, ...extra, errorLabels?}`. `ok` is a BSON double, as mongod
 * sends it.
 */
export function errorReply(code: number, errmsg: string, options: Omit<CommandErrorOptions, 'cause'> = {}): Document {
  const reply: Document = {
    ok: new Double(0),
    errmsg,
    code,
    codeName: options.codeName ?? codeNameFor(code),
    ...options.extra,
  };
  if (options.errorLabels !== undefined && options.errorLabels.length > 0) {
    reply.errorLabels = [...options.errorLabels];
  }
  return reply;
}

/**
 * The error reply for anything a handler threw: a {@link CommandError} keeps its code; anything else is a simulator
 * bug and becomes `8 UnknownError` carrying the message, so the driver sees a server error instead of a dead socket.
 */
export function errorReplyFor(error: unknown): Document {
  if (error instanceof CommandError) return error.toReply();
  const message = error instanceof Error ? error.message : String(error);
  return errorReply(ErrorCodes.UnknownError, message);
}

/**
 * Codes in mongod's NotPrimaryError category. After a fire-and-forget (moreToCome) request fails with one of them,
 * mongod closes the connection, because the client cannot learn of the failure any other way.
 */
export const NOT_PRIMARY_CODES: ReadonlySet<number> = new Set([
  ErrorCodes.PrimarySteppedDown,
  ErrorCodes.NotWritablePrimary,
  ErrorCodes.InterruptedDueToReplStateChange,
  ErrorCodes.NotPrimaryNoSecondaryOk,
  ErrorCodes.NotPrimaryOrSecondary,
]);
