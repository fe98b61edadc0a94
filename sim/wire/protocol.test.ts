import { BSON, Double, Int32, Long } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.ts';
import { FrameReader } from './frame-reader.ts';
import {
  MAX_MESSAGE_SIZE_BYTES,
  MessageError,
  OpCode,
  OpMsgFlag,
  decodeRequest,
  encodeOpMsg,
  encodeOpReply,
  normalizeReply,
  parseOpMsg,
  parseOpReply,
  serializeReplyBody,
} from './protocol.ts';
import { bsonElementType, buildOpMsg, buildOpQuery, buildRaw } from './test-wire-client.ts';

/** Decodes and expects a MessageError with this code and fatality. */
function expectMessageError(frame: Buffer, code: number, fatal: boolean): MessageError {
  try {
    decodeRequest(frame);
  } catch (error) {
    expect(error).toBeInstanceOf(MessageError);
    const e = error as MessageError;
    expect({ code: e.code, fatal: e.fatal }).toEqual({ code, fatal });
    return e;
  }
  throw new Error('expected a MessageError');
}

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });
});

describe('FrameReader', () => {
  const messages = [
    buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }], { requestId: 1 }),
    buildOpMsg(
      [
        { kind: 0, doc: { insert: 'c', $db: 'test' } },
        { kind: 1, id: 'documents', docs: [{ a: 1 }, { b: 'x'.repeat(300) }] },
      ],
      { requestId: 2 },
    ),
    buildOpQuery('admin.$cmd', { isMaster: 1 }, 3),
  ];
  const stream = Buffer.concat(messages);

  it('reassembles messages split at every possible point', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const reader = new FrameReader();
      const frames = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
      // Buffer.equals rather than toEqual: hundreds of cuts, and toEqual on buffers is slow.
      const same = frames.length === messages.length && frames.every((f, i) => f.equals(messages[i] as Buffer));
      expect(same, `cut at ${cut}`).toBe(true);
      expect(reader.pendingBytes).toBe(0);
    }
  });

  it('reassembles a stream fed one byte at a time', () => {
    const reader = new FrameReader();
    const frames: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) frames.push(...reader.push(stream.subarray(i, i + 1)));
    expect(frames.map((f) => Buffer.from(f))).toEqual(messages);
  });

  it('rejects a length above maxMessageSizeBytes or below the header size as fatal', () => {
    for (const length of [MAX_MESSAGE_SIZE_BYTES + 1, 15, -1]) {
      const header = Buffer.alloc(16);
      header.writeInt32LE(length, 0);
      expect(() => new FrameReader().push(header)).toThrow(MessageError);
      try {
        new FrameReader().push(header);
      } catch (error) {
        expect((error as MessageError).fatal).toBe(true);
      }
    }
    // Exactly the maximum is accepted (and waited for).
    const header = Buffer.alloc(16);
    header.writeInt32LE(MAX_MESSAGE_SIZE_BYTES, 0);
    expect(new FrameReader().push(header)).toEqual([]);
  });
});

describe('decodeRequest: OP_MSG', () => {
  it('merges a kind-1 document sequence into the command under its identifier', () => {
    const request = decodeRequest(
      buildOpMsg(
        [
          { kind: 0, doc: { insert: 'coll', ordered: true, $db: 'test' } },
          { kind: 1, id: 'documents', docs: [{ _id: 1 }, { _id: 2 }] },
        ],
        { requestId: 7, flags: OpMsgFlag.exhaustAllowed },
      ),
    );
    expect(request.opCode).toBe(OpCode.OP_MSG);
    expect(request.db).toBe('test');
    expect(request.commandName).toBe('insert');
    expect(request.command).toEqual({
      insert: 'coll',
      ordered: true,
      $db: 'test',
      documents: [{ _id: 1 }, { _id: 2 }],
    });
    expect(request.sequenceIds).toEqual(['documents']);
    expect(request.header.requestId).toBe(7);
    expect(request.exhaustAllowed).toBe(true);
    expect(request.moreToCome).toBe(false);
  });

  it('keeps int64 values as Long', () => {
    const request = decodeRequest(
      buildOpMsg([{ kind: 0, doc: { getMore: Long.fromNumber(5), collection: 'c', $db: 'test' } }]),
    );
    expect(Long.isLong(request.command.getMore)).toBe(true);
  });

  it('reports moreToCome', () => {
    const request = decodeRequest(
      buildOpMsg([{ kind: 0, doc: { insert: 'c', $db: 'test' } }], { flags: OpMsgFlag.moreToCome }),
    );
    expect(request.moreToCome).toBe(true);
  });

  it('verifies a checksum when one is present', () => {
    const sections = [{ kind: 0 as const, doc: { ping: 1, $db: 'admin' } }];
    expect(decodeRequest(buildOpMsg(sections, { checksum: 'valid' })).commandName).toBe('ping');
    expectMessageError(buildOpMsg(sections, { checksum: 'corrupt' }), 288, true);
  });

  it('rejects unknown required flag bits as fatal (IllegalOpMsgFlag)', () => {
    expectMessageError(buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }], { flags: 1 << 2 }), 223, true);
    // Unknown optional bits (high 16) are ignored.
    const optional = buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }], { flags: 1 << 20 });
    expect(decodeRequest(optional).commandName).toBe('ping');
  });

  it('answers structural errors with mongod codes, without dropping the connection', () => {
    const body = { kind: 0 as const, doc: { insert: 'c', $db: 'test' } };
    expectMessageError(buildOpMsg([body, body]), 40430, false);
    expectMessageError(
      buildOpMsg([body, { kind: 1, id: 'documents', docs: [] }, { kind: 1, id: 'documents', docs: [] }]),
      40431,
      false,
    );
    expectMessageError(
      buildOpMsg([
        { kind: 0, doc: { insert: 'c', documents: [], $db: 'test' } },
        { kind: 1, id: 'documents', docs: [] },
      ]),
      40433,
      false,
    );
    expectMessageError(buildOpMsg([{ kind: 1, id: 'documents', docs: [] }]), 40587, false);
    expectMessageError(buildOpMsg([{ kind: 0, doc: { ping: 1 } }]), 40571, false);
    const unknownKind = buildOpMsg([body]);
    unknownKind[20] = 7;
    expectMessageError(unknownKind, 40432, false);
    const badBson = buildOpMsg([body]);
    badBson.writeInt32LE(9999, 21); // body length runs past the message
    expectMessageError(badBson, 22, false);
  });

  it('limits document sequences to two, fatally (TooManyDocumentSequences)', () => {
    expectMessageError(
      buildOpMsg([
        { kind: 0, doc: { x: 1, $db: 'test' } },
        { kind: 1, id: 'a', docs: [] },
        { kind: 1, id: 'b', docs: [] },
        { kind: 1, id: 'c', docs: [] },
      ]),
      233,
      true,
    );
  });
});

describe('decodeRequest: OP_QUERY and other opcodes', () => {
  it('accepts the handshake on <db>.$cmd and unwraps $query', () => {
    const plain = decodeRequest(buildOpQuery('admin.$cmd', { isMaster: 1, helloOk: true }));
    expect(plain).toMatchObject({ opCode: OpCode.OP_QUERY, db: 'admin', commandName: 'isMaster', moreToCome: false });
    const wrapped = decodeRequest(
      buildOpQuery('admin.$cmd', { $query: { hello: 1 }, $readPreference: { mode: 'secondaryPreferred' } }),
    );
    expect(wrapped.command).toEqual({ hello: 1, $readPreference: { mode: 'secondaryPreferred' } });
    expect(wrapped.commandName).toBe('hello');
  });

  it('refuses other OP_QUERY commands and namespaces as mongod 7.0 does (352, answered)', () => {
    const error = expectMessageError(buildOpQuery('test.$cmd', { find: 'c' }), 352, false);
    expect(error.message).toMatch(/^Unsupported OP_QUERY command: find\./);
    expect(error.codeName).toBe('UnsupportedOpQueryCommand');
    expectMessageError(buildOpQuery('test.coll', { a: 1 }), 352, false);
  });

  it('refuses OP_COMPRESSED and legacy opcodes fatally', () => {
    expectMessageError(buildRaw(OpCode.OP_COMPRESSED, Buffer.alloc(9)), 17, true);
    expectMessageError(buildRaw(OpCode.OP_INSERT, Buffer.alloc(8)), 17, true);
    expectMessageError(buildRaw(4242, Buffer.alloc(0)), 17, true);
  });
});

describe('reply encoding', () => {
  const address = { requestId: 11, responseTo: 7 };

  it('sends a Long cursor id as int64 (0x12)', () => {
    const id = Long.fromString('1234567890123');
    const body = serializeReplyBody({ cursor: { id, ns: 'a.b', firstBatch: [] }, ok: 1 });
    expect(bsonElementType(body, ['cursor', 'id'])).toBe(0x12);
  });

  it('coerces a numeric cursor id to int64 where plain BSON would send int32', () => {
    // Without the coercion, a JS number goes out as int32, which the driver cannot read as a cursor id.
    expect(bsonElementType(BSON.serialize({ cursor: { id: 0 } }), ['cursor', 'id'])).toBe(0x10);
    for (const id of [0, 42, 2 ** 40, 7n, new Int32(3), new Double(9)]) {
      const body = serializeReplyBody({ cursor: { id, firstBatch: [] } });
      expect(bsonElementType(body, ['cursor', 'id'])).toBe(0x12);
      const decoded = BSON.deserialize(body, { promoteLongs: false }) as { cursor: { id: Long } };
      expect(decoded.cursor.id.toString()).toBe(String(id.valueOf()));
    }
  });

  it('rejects a non-integral cursor id and leaves the handler document untouched', () => {
    expect(() => normalizeReply({ cursor: { id: 1.5 } })).toThrow(/integer/);
    const reply = { cursor: { id: 5, firstBatch: [] } };
    normalizeReply(reply);
    expect(reply.cursor.id).toBe(5);
  });

  it('encodes OP_MSG replies with and without moreToCome', () => {
    const body = serializeReplyBody({ isWritablePrimary: true, ok: 1 });
    for (const moreToCome of [false, true]) {
      const parsed = parseOpMsg(encodeOpMsg(body, address, moreToCome));
      expect(parsed.header).toMatchObject({ opCode: OpCode.OP_MSG, requestId: 11, responseTo: 7 });
      expect((parsed.flags & OpMsgFlag.moreToCome) !== 0).toBe(moreToCome);
      expect(parsed.body).toEqual({ isWritablePrimary: true, ok: 1 });
    }
  });

  it('encodes OP_REPLY with one document and cursor id 0', () => {
    const parsed = parseOpReply(encodeOpReply(serializeReplyBody({ ismaster: true, ok: 1 }), address));
    expect(parsed.header).toMatchObject({ opCode: OpCode.OP_REPLY, requestId: 11, responseTo: 7 });
    expect(parsed.responseFlags).toBe(0);
    expect(parsed.cursorId.isZero()).toBe(true);
    expect(parsed.documents).toEqual([{ ismaster: true, ok: 1 }]);
  });

  it('omits undefined fields', () => {
    const body = serializeReplyBody({ a: 1, b: undefined });
    expect(BSON.deserialize(body)).toEqual({ a: 1 });
  });
});
