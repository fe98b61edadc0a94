/**
 * MongoDB wire-protocol messages: decoding requests (OP_MSG, and OP_QUERY for the handshake) and encoding replies
 * (OP_MSG, and OP_REPLY to an OP_QUERY). Reference: the "MongoDB Wire Protocol" and "OP_MSG" specifications, and
 * mongod's `src/mongo/rpc/op_msg.cpp`.
 */
import { BSON, Int32, Double, Long } from 'mongodb';
import type { Document } from 'mongodb';
import { crc32c } from './crc32c.ts';
import { CommandError, ErrorCodes, LocationCodes } from './errors.ts';

/** Opcodes of the wire protocol. Only OP_MSG and OP_QUERY are accepted as requests. */
export const OpCode = {
  OP_REPLY: 1,
  OP_UPDATE: 2001,
  OP_INSERT: 2002,
  OP_QUERY: 2004,
  OP_GET_MORE: 2005,
  OP_DELETE: 2006,
  OP_KILL_CURSORS: 2007,
  OP_COMPRESSED: 2012,
  OP_MSG: 2013,
} as const;

/** OP_MSG flag bits. The low 16 bits are "required": a receiver must reject one it does not know. */
export const OpMsgFlag = {
  checksumPresent: 1 << 0,
  moreToCome: 1 << 1,
  exhaustAllowed: 1 << 16,
} as const;

/** Size of the standard message header (messageLength, requestID, responseTo, opCode). */
export const HEADER_SIZE = 16;
/** mongod's `maxMessageSizeBytes` (reported in `hello`): the largest message either side may send. */
export const MAX_MESSAGE_SIZE_BYTES = 48_000_000;
/** mongod's `maxBsonObjectSize` (reported in `hello`). */
export const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
/** mongod's BSONObjMaxInternalSize: a reply body may exceed the user limit by 16 KB of command overhead. */
export const MAX_REPLY_BODY_SIZE = MAX_BSON_OBJECT_SIZE + 16 * 1024;

/** OP_REPLY responseFlags bit that marks a failed legacy query. */
const OP_REPLY_QUERY_FAILURE = 1 << 1;

/** Commands mongod 7.0 still accepts over OP_QUERY (`checkAllowedOpQueryCommand`); anything else gets 352. */
const OP_QUERY_COMMANDS: ReadonlySet<string> = new Set([
  'hello',
  'isMaster',
  'ismaster',
  '_isSelf',
  'authenticate',
  'buildinfo',
  'buildInfo',
  'saslContinue',
  'saslStart',
]);

/**
 * How request documents are deserialized for handlers. `promoteLongs: false` keeps every int64 a `Long`, so cursor
 * ids and timestamps keep their type and exact value; Int32 and Double still become JS numbers, Binary (UUIDs
 * included) stays `Binary`, and regexes stay `BSONRegExp` (BSON allows flags that a JS RegExp rejects).
 */
export const REQUEST_BSON_OPTIONS = {
  promoteLongs: false,
  promoteValues: true,
  promoteBuffers: false,
  bsonRegExp: true,
} as const satisfies BSON.DeserializeOptions;

/** How reply documents are serialized: `undefined` fields are omitted, keys are not checked (`$clusterTime`). */
const REPLY_SERIALIZE_OPTIONS = { checkKeys: false, ignoreUndefined: true } as const satisfies BSON.SerializeOptions;

/** The standard header of every message. */
export interface MessageHeader {
  readonly messageLength: number;
  readonly requestId: number;
  readonly responseTo: number;
  readonly opCode: number;
}

/**
 * A request that could not be decoded. `fatal` ones (bad framing, unknown opcode, illegal flags, bad checksum: mongod's
 * ConnectionFatalMessageParseError category) close the connection; the others are answered with an error reply.
 */
export class MessageError extends CommandError {
  constructor(
    code: number,
    errmsg: string,
    /** Whether the connection must be closed instead of answered. */
    readonly fatal: boolean,
  ) {
    super(code, errmsg);
    this.name = 'MessageError';
  }
}

/** A decoded command request, whichever opcode carried it. */
export interface WireRequest {
  readonly header: MessageHeader;
  /** `OpCode.OP_MSG` or `OpCode.OP_QUERY`: the reply uses OP_MSG or OP_REPLY accordingly. */
  readonly opCode: typeof OpCode.OP_MSG | typeof OpCode.OP_QUERY;
  /** Database the command runs against: OP_MSG's `$db`, or the `<db>` of OP_QUERY's `<db>.$cmd`. */
  readonly db: string;
  /** The command, with OP_MSG document sequences merged in under their identifiers. */
  readonly command: Document;
  /** The command name (first key of {@link command}). */
  readonly commandName: string;
  /** OP_MSG flag bits as received (0 for OP_QUERY). */
  readonly flags: number;
  /** The client expects no reply (OP_MSG moreToCome, e.g. `w: 0` writes). */
  readonly moreToCome: boolean;
  /** The client accepts a stream of replies (OP_MSG exhaustAllowed). */
  readonly exhaustAllowed: boolean;
  /** Identifiers of the OP_MSG kind-1 sections that were merged into {@link command}. */
  readonly sequenceIds: readonly string[];
  /**
   * The OP_MSG body's BSON bytes as received (absent for OP_QUERY). {@link command} promotes Int32 and Double alike
   * to JS numbers; a handler that must tell them apart (`$backupCursor`'s int32-only `blockSize`) re-reads these.
   */
  readonly rawBody?: Buffer;
}

/** An OP_MSG as sections, before any request-level interpretation. Used for requests and, in tests, replies. */
export interface ParsedOpMsg {
  readonly header: MessageHeader;
  readonly flags: number;
  readonly body: Document;
  readonly sequences: ReadonlyMap<string, Document[]>;
  /** The body section's BSON bytes (a copy). */
  readonly rawBody?: Buffer;
}

/** Reads the header of a complete frame (at least {@link HEADER_SIZE} bytes, as {@link FrameReader} guarantees). */
export function readHeader(frame: Buffer): MessageHeader {
  return {
    messageLength: frame.readInt32LE(0),
    requestId: frame.readInt32LE(4),
    responseTo: frame.readInt32LE(8),
    opCode: frame.readInt32LE(12),
  };
}

/**
 * Decodes one complete request frame.
 * @throws MessageError when the message is not a request the simulator accepts; see {@link MessageError.fatal}.
 */
export function decodeRequest(frame: Buffer, options: BSON.DeserializeOptions = REQUEST_BSON_OPTIONS): WireRequest {
  const header = readHeader(frame);
  switch (header.opCode) {
    case OpCode.OP_MSG:
      return requestFromOpMsg(parseOpMsg(frame, options));
    case OpCode.OP_QUERY:
      return decodeOpQuery(frame, header, options);
    case OpCode.OP_COMPRESSED:
      throw new MessageError(
        ErrorCodes.ProtocolError,
        'OP_COMPRESSED is not supported: the simulator never offers compression in hello',
        true,
      );
    default:
      throw new MessageError(ErrorCodes.ProtocolError, `unsupported opcode ${header.opCode}`, true);
  }
}

/** Parses an OP_MSG frame into its sections, enforcing mongod's structural rules. */
export function parseOpMsg(frame: Buffer, options: BSON.DeserializeOptions = REQUEST_BSON_OPTIONS): ParsedOpMsg {
  const header = readHeader(frame);
  if (frame.length < HEADER_SIZE + 4) {
    throw new MessageError(ErrorCodes.ProtocolError, 'OP_MSG too short to hold its flags', true);
  }
  const flags = frame.readUInt32LE(HEADER_SIZE);
  const known = OpMsgFlag.checksumPresent | OpMsgFlag.moreToCome;
  if ((flags & 0xffff & ~known) !== 0) {
    throw new MessageError(
      ErrorCodes.IllegalOpMsgFlag,
      `Message contains illegal flags value: 0b${(flags >>> 0).toString(2).padStart(32, '0')}`,
      true,
    );
  }
  let end = frame.length;
  if (flags & OpMsgFlag.checksumPresent) {
    end -= 4;
    if (end < HEADER_SIZE + 4) {
      throw new MessageError(ErrorCodes.ProtocolError, 'OP_MSG too short for a checksum', true);
    }
    if (frame.readUInt32LE(end) !== crc32c(frame.subarray(0, end))) {
      throw new MessageError(ErrorCodes.ChecksumMismatch, 'OP_MSG checksum does not match contents', true);
    }
  }

  let body: Document | undefined;
  let rawBody: Buffer | undefined;
  const sequences = new Map<string, Document[]>();
  let pos = HEADER_SIZE + 4;
  while (pos < end) {
    const kind = frame[pos];
    pos += 1;
    if (kind === 0) {
      if (body !== undefined) {
        throw new MessageError(LocationCodes.MultipleBodySections, 'Multiple body sections in message', false);
      }
      const size = bsonSizeAt(frame, pos, end);
      body = deserializeAt(frame, pos, size, options);
      rawBody = Buffer.from(frame.subarray(pos, pos + size));
      pos += size;
    } else if (kind === 1) {
      if (sequences.size >= 2) {
        throw new MessageError(ErrorCodes.TooManyDocumentSequences, 'Too many document sequences in OP_MSG', true);
      }
      if (pos + 4 > end) throw invalidBson('document sequence size runs past the end of the message');
      const sectionSize = frame.readInt32LE(pos);
      const sectionEnd = pos + sectionSize;
      if (sectionSize < 5 || sectionEnd > end) throw invalidBson(`invalid document sequence size ${sectionSize}`);
      const nul = frame.indexOf(0, pos + 4);
      if (nul < 0 || nul >= sectionEnd) throw invalidBson('document sequence identifier is not terminated');
      const id = frame.toString('utf8', pos + 4, nul);
      if (sequences.has(id)) {
        throw new MessageError(LocationCodes.DuplicateDocumentSequence, `Duplicate document sequence: ${id}`, false);
      }
      const docs: Document[] = [];
      let p = nul + 1;
      while (p < sectionEnd) {
        const size = bsonSizeAt(frame, p, sectionEnd);
        docs.push(deserializeAt(frame, p, size, options));
        p += size;
      }
      sequences.set(id, docs);
      pos = sectionEnd;
    } else {
      throw new MessageError(LocationCodes.UnknownSectionKind, `Unknown section kind ${kind ?? -1}`, false);
    }
  }
  if (body === undefined) throw new MessageError(LocationCodes.MissingBody, 'OP_MSG messages must have a body', false);
  for (const id of sequences.keys()) {
    if (Object.hasOwn(body, id)) {
      throw new MessageError(
        LocationCodes.DuplicateFieldBodyAndSequence,
        `Duplicate field between body and document sequence ${id}`,
        false,
      );
    }
  }
  return { header, flags, body, sequences, rawBody };
}

function requestFromOpMsg(msg: ParsedOpMsg): WireRequest {
  const db: unknown = msg.body.$db;
  if (db === undefined) {
    throw new MessageError(LocationCodes.MissingDbArgument, 'OP_MSG requests require a $db argument', false);
  }
  if (typeof db !== 'string') {
    const message = `"$db" had the wrong type. Expected string, found ${typeof db}`;
    throw new MessageError(ErrorCodes.TypeMismatch, message, false);
  }
  // The server treats a document sequence exactly like an array field of the body (OP_MSG spec), so handlers see one
  // command whichever way the driver chose to send it.
  const command: Document = { ...msg.body };
  for (const [id, docs] of msg.sequences) command[id] = docs;
  return {
    header: msg.header,
    opCode: OpCode.OP_MSG,
    db,
    command,
    commandName: firstKey(command),
    flags: msg.flags,
    moreToCome: (msg.flags & OpMsgFlag.moreToCome) !== 0,
    exhaustAllowed: (msg.flags & OpMsgFlag.exhaustAllowed) !== 0,
    sequenceIds: [...msg.sequences.keys()],
    rawBody: msg.rawBody,
  };
}

function decodeOpQuery(frame: Buffer, header: MessageHeader, options: BSON.DeserializeOptions): WireRequest {
  // flags(4) fullCollectionName(cstring) numberToSkip(4) numberToReturn(4) query(doc) [returnFieldsSelector(doc)]
  const nameStart = HEADER_SIZE + 4;
  const nul = frame.indexOf(0, nameStart);
  if (nameStart > frame.length || nul < 0) throw invalidBson('OP_QUERY collection name is not terminated');
  const ns = frame.toString('utf8', nameStart, nul);
  const queryStart = nul + 1 + 8;
  const size = bsonSizeAt(frame, queryStart, frame.length);
  let query = deserializeAt(frame, queryStart, size, options);

  const dot = ns.indexOf('.');
  const db = dot < 0 ? ns : ns.slice(0, dot);
  if (dot < 0 || ns.slice(dot + 1) !== '$cmd') {
    throw new MessageError(
      ErrorCodes.UnsupportedOpQueryCommand,
      `Unsupported OP_QUERY on namespace ${ns}: only <db>.$cmd is accepted, for the handshake`,
      false,
    );
  }
  // Legacy read-preference wrapping: {$query: {...command}, $readPreference: {...}}.
  if (firstKey(query) === '$query' && typeof query.$query === 'object' && query.$query !== null) {
    const { $query, $readPreference } = query as { $query: Document; $readPreference?: unknown };
    query = $readPreference === undefined ? { ...$query } : { ...$query, $readPreference };
  }
  const commandName = firstKey(query);
  if (!OP_QUERY_COMMANDS.has(commandName)) {
    throw new MessageError(
      ErrorCodes.UnsupportedOpQueryCommand,
      `Unsupported OP_QUERY command: ${commandName}. The client driver may require an upgrade. ` +
        'For more details see https://dochub.mongodb.org/core/legacy-opcode-removal',
      false,
    );
  }
  return {
    header,
    opCode: OpCode.OP_QUERY,
    db,
    command: query,
    commandName,
    flags: 0,
    moreToCome: false,
    exhaustAllowed: false,
    sequenceIds: [],
  };
}

/**
 * Makes a reply safe for the wire. A cursor id must be an int64 (the driver reads `cursor.id` as int64 only and fails
 * with `BSON element "id" is missing` otherwise), but a JS number would be serialized as int32 or double. So a numeric
 * `cursor.id` (number, bigint, Int32, Double) is **coerced** to `Long` rather than rejected: the intent is unambiguous,
 * and a real mongod always sends int64 here. A non-integral id is a handler bug and throws. Returns a copy when it
 * changes anything; the handler's document is never mutated.
 */
export function normalizeReply(reply: Document): Document {
  const cursor: unknown = reply.cursor;
  if (typeof cursor !== 'object' || cursor === null || !('id' in cursor)) return reply;
  const id: unknown = cursor.id;
  if (Long.isLong(id)) return reply;
  let long: Long;
  if (typeof id === 'bigint') {
    long = Long.fromBigInt(id);
  } else if (typeof id === 'number' || id instanceof Int32 || id instanceof Double) {
    const n = id.valueOf();
    if (!Number.isSafeInteger(n)) throw new Error(`cursor.id must be an integer, got ${n}`);
    long = Long.fromNumber(n);
  } else {
    return reply;
  }
  return { ...reply, cursor: { ...cursor, id: long } };
}

/** Serializes a reply body (after {@link normalizeReply}). */
export function serializeReplyBody(reply: Document): Buffer {
  const bytes = BSON.serialize(normalizeReply(reply), REPLY_SERIALIZE_OPTIONS);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Addressing of a reply message. */
export interface ReplyAddress {
  /** requestID of the reply itself. */
  readonly requestId: number;
  /** requestID of the message it answers. */
  readonly responseTo: number;
}

/** Encodes an OP_MSG reply with one body section. `moreToCome` tells the client that more replies follow (exhaust). */
export function encodeOpMsg(body: Buffer, address: ReplyAddress, moreToCome = false): Buffer {
  const length = HEADER_SIZE + 4 + 1 + body.length;
  const out = Buffer.allocUnsafe(length);
  writeHeader(out, length, address, OpCode.OP_MSG);
  out.writeUInt32LE(moreToCome ? OpMsgFlag.moreToCome : 0, HEADER_SIZE);
  out[HEADER_SIZE + 4] = 0;
  body.copy(out, HEADER_SIZE + 5);
  return out;
}

/**
 * Encodes an OP_REPLY with one document, the answer to an OP_QUERY command. `queryFailure` sets the legacy
 * QueryFailure flag, which mongod uses only for failures before the command runs (see {@link MessageError}).
 */
export function encodeOpReply(body: Buffer, address: ReplyAddress, queryFailure = false): Buffer {
  // responseFlags(4) cursorID(8) startingFrom(4) numberReturned(4)
  const length = HEADER_SIZE + 20 + body.length;
  const out = Buffer.allocUnsafe(length);
  writeHeader(out, length, address, OpCode.OP_REPLY);
  out.writeInt32LE(queryFailure ? OP_REPLY_QUERY_FAILURE : 0, HEADER_SIZE);
  out.writeBigInt64LE(0n, HEADER_SIZE + 4);
  out.writeInt32LE(0, HEADER_SIZE + 12);
  out.writeInt32LE(1, HEADER_SIZE + 16);
  body.copy(out, HEADER_SIZE + 20);
  return out;
}

/** Decoded OP_REPLY (for tests and tools: the simulator only sends them). */
export interface ParsedOpReply {
  readonly header: MessageHeader;
  readonly responseFlags: number;
  readonly cursorId: Long;
  readonly documents: Document[];
}

/** Parses an OP_REPLY frame. */
export function parseOpReply(frame: Buffer, options: BSON.DeserializeOptions = REQUEST_BSON_OPTIONS): ParsedOpReply {
  const header = readHeader(frame);
  const numberReturned = frame.readInt32LE(HEADER_SIZE + 16);
  const documents: Document[] = [];
  let pos = HEADER_SIZE + 20;
  for (let i = 0; i < numberReturned; i++) {
    const size = bsonSizeAt(frame, pos, frame.length);
    documents.push(deserializeAt(frame, pos, size, options));
    pos += size;
  }
  return {
    header,
    responseFlags: frame.readInt32LE(HEADER_SIZE),
    cursorId: new Long(frame.readInt32LE(HEADER_SIZE + 4), frame.readInt32LE(HEADER_SIZE + 8)),
    documents,
  };
}

function writeHeader(out: Buffer, length: number, address: ReplyAddress, opCode: number): void {
  out.writeInt32LE(length, 0);
  out.writeInt32LE(address.requestId, 4);
  out.writeInt32LE(address.responseTo, 8);
  out.writeInt32LE(opCode, 12);
}

/** First key of a command document: its name. */
export function firstKey(doc: Document): string {
  for (const key in doc) return key;
  return '';
}

function invalidBson(message: string): MessageError {
  return new MessageError(ErrorCodes.InvalidBSON, message, false);
}

/** Size of the BSON document at `pos`, checked against `end`. */
function bsonSizeAt(frame: Buffer, pos: number, end: number): number {
  if (pos + 4 > end) throw invalidBson('BSON document runs past the end of the message');
  const size = frame.readInt32LE(pos);
  if (size < 5 || pos + size > end) throw invalidBson(`invalid BSON document size ${size}`);
  return size;
}

function deserializeAt(frame: Buffer, pos: number, size: number, options: BSON.DeserializeOptions): Document {
  try {
    return BSON.deserialize(frame.subarray(pos, pos + size), options);
  } catch (error) {
    throw invalidBson(`invalid BSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}
