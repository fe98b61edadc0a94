import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BSON, Long, MongoClient, MongoServerError } from 'mongodb';
import type { Document } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionContext } from './context.ts';
import { CommandError, ErrorCodes } from './errors.ts';
import { ExhaustReply } from './handler.ts';
import type { CommandHandler } from './handler.ts';
import { OpCode, OpMsgFlag, parseOpMsg, parseOpReply } from './protocol.ts';
import { WireServer } from './server.ts';
import { captureLogger } from '../log.ts';
import { TestHandler } from './test-handler.ts';
import { RawClient, bsonElementType, buildOpMsg, buildOpQuery, buildRaw } from './test-wire-client.ts';

/** What the handler saw of each request. */
interface Seen {
  readonly connectionId: number;
  readonly opCode: number;
  readonly commandName: string;
  readonly sequenceIds: readonly string[];
  readonly moreToCome: boolean;
  readonly command: Document;
}

const BIG_CURSOR_ID = Long.fromString('9007199254740993'); // 2^53 + 1: not representable as a JS number

const seen: Seen[] = [];
const logger = captureLogger();
const inner = new TestHandler({
  commands: {
    insert: (command) => {
      if (command.insert === 'notPrimary') throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary');
      return { n: (command.documents as unknown[]).length };
    },
    // A cursor whose id is a plain JS number: the wire layer must still send it as int64.
    find: (command, db) => ({
      cursor: { id: 77, ns: `${db}.${String(command.find)}`, firstBatch: [{ _id: 1 }, { _id: 2 }] },
    }),
    testCursor: (_command, db) => ({ cursor: { id: BIG_CURSOR_ID, ns: `${db}.c`, firstBatch: [{ _id: 'a' }] } }),
    getMore: (command, db) => {
      const id = command.getMore as Long;
      const ns = `${db}.${String(command.collection)}`;
      if (id.equals(77)) return { cursor: { id: 0, ns, nextBatch: [{ _id: 3 }] } };
      if (id.equals(BIG_CURSOR_ID)) return { cursor: { id: 0, ns, nextBatch: [{ _id: 'b' }] } };
      throw new CommandError(ErrorCodes.CursorNotFound, `cursor id ${id.toString()} not found`);
    },
    fail: (command) => {
      throw new CommandError(command.code as number, String(command.errmsg), {
        errorLabels: command.labels as string[] | undefined,
      });
    },
    boom: () => {
      throw new Error('kaboom');
    },
    slow: async () => {
      await sleep(100);
      return { slow: true };
    },
    hangUp: (_command, _db, ctx) => {
      ctx.close('hangUp command');
      return {};
    },
    huge: () => ({ data: 'x'.repeat(17 * 1024 * 1024) }),
    // Streams `n` replies (exhaust) when allowed; with `failAt`, the stream's step at that count throws instead.
    countdown: (command) => {
      const failAt = command.failAt as number | undefined;
      const step = (i: number): Document | ExhaustReply => {
        if (i === failAt) throw new CommandError(ErrorCodes.Interrupted, `stopped at ${i}`);
        return i > 1 ? new ExhaustReply({ remaining: i }, () => Promise.resolve(step(i - 1))) : { remaining: i };
      };
      return step(command.n as number);
    },
    // Streams forever, a reply per 20 ms, until the connection closes.
    ticker: (_command, _db, ctx) => {
      const tick = (i: number): ExhaustReply =>
        new ExhaustReply({ tick: i }, async () => {
          await sleep(20, undefined, { signal: ctx.signal }).catch(() => undefined);
          return tick(i + 1);
        });
      return tick(0);
    },
    notADocument: () => undefined as unknown as Document,
  },
});
const recorder: CommandHandler = {
  handle(db: string, command: Document, ctx: ConnectionContext) {
    const request = ctx.request;
    if (request !== undefined) {
      seen.push({
        connectionId: ctx.id,
        opCode: request.opCode,
        commandName: request.commandName,
        sequenceIds: request.sequenceIds,
        moreToCome: request.moreToCome,
        command,
      });
    }
    return inner.handle(db, command, ctx);
  },
};

let server: WireServer;
let client: MongoClient;
let port: number;

beforeAll(async () => {
  server = new WireServer({ handler: recorder, logger });
  ({ port } = await server.listen());
  client = new MongoClient(`mongodb://127.0.0.1:${port}/?directConnection=true`, { maxPoolSize: 1 });
  await client.connect();
});

afterAll(async () => {
  await client.close();
  await server.close();
});

describe('WireServer with the mongodb driver', () => {
  it('binds an ephemeral port and reports it', () => {
    expect(port).toBeGreaterThan(0);
    expect(server.port).toBe(port);
    expect(server.address).toBe(`127.0.0.1:${port}`);
  });

  it('does the handshake over OP_QUERY on admin.$cmd, then switches to OP_MSG', async () => {
    await client.db('admin').command({ ping: 1 });
    const byConnection = new Map<number, Seen[]>();
    for (const s of seen) byConnection.set(s.connectionId, [...(byConnection.get(s.connectionId) ?? []), s]);
    // Monitor and pool connections: each starts with one legacy hello over OP_QUERY.
    expect(byConnection.size).toBeGreaterThanOrEqual(2);
    for (const requests of byConnection.values()) {
      expect(requests[0]).toMatchObject({ opCode: OpCode.OP_QUERY, commandName: 'ismaster' });
      expect(requests.slice(1).every((r) => r.opCode === OpCode.OP_MSG)).toBe(true);
    }
    expect(seen.find((s) => s.commandName === 'ping')?.opCode).toBe(OpCode.OP_MSG);
  });

  it('merges insertMany documents sent as a kind-1 section', async () => {
    const docs = [{ _id: 1, a: 'x' }, { _id: 2, a: 'y' }, { _id: 3, a: 'z' }];
    const result = await client.db('test').collection<{ _id: number; a: string }>('c').insertMany(docs);
    expect(result.insertedCount).toBe(3);
    const insert = seen.findLast((s) => s.commandName === 'insert');
    expect(insert?.sequenceIds).toEqual(['documents']);
    expect(insert?.command.documents).toEqual(docs);
    expect(insert?.command.$db).toBe('test');
  });

  it('surfaces CommandError as MongoServerError with code and codeName', async () => {
    const db = client.db('test');
    const cases = [
      { code: 26, codeName: 'NamespaceNotFound' },
      { code: 50915, codeName: 'BackupCursorOpenConflictWithCheckpoint' },
      { code: 40324, codeName: 'Location40324' },
    ];
    for (const { code, codeName } of cases) {
      const error = await db.command({ fail: 1, code, errmsg: `failed ${code}` }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MongoServerError);
      expect(error).toMatchObject({ code, codeName, errmsg: `failed ${code}` });
    }
    const labelled = await db
      .command({ fail: 1, code: 251, errmsg: 'no txn', labels: ['TransientTransactionError'] })
      .catch((e: unknown) => e as MongoServerError);
    expect(labelled.hasErrorLabel('TransientTransactionError')).toBe(true);
    const unknown = await db.command({ noSuchCommand: 1 }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({
      code: 59,
      codeName: 'CommandNotFound',
      errmsg: "no such command: 'noSuchCommand'",
    });
  });

  it('answers any other thrown error with 8 UnknownError and logs it', async () => {
    const error = await client.db('test').command({ boom: 1 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 8, codeName: 'UnknownError', errmsg: 'kaboom' });
    expect(logger.lines.some((l) => l.level === 'error' && String(l.fields.err).includes('kaboom'))).toBe(true);
    // The connection survives.
    expect(await client.db('admin').command({ ping: 1 })).toEqual({ ok: 1 });
  });

  it('round-trips an int64 cursor id through db.command and getMore exactly', async () => {
    const db = client.db('test');
    const first = await db.command({ testCursor: 1 }, { promoteLongs: false });
    const id = (first.cursor as { id: Long }).id;
    expect(Long.isLong(id) && id.equals(BIG_CURSOR_ID)).toBe(true);
    const more = await db.command({ getMore: id, collection: 'c' }, { promoteLongs: false });
    expect(more.cursor).toMatchObject({ nextBatch: [{ _id: 'b' }] });
    expect((more.cursor as { id: Long }).id.isZero()).toBe(true);
    const getMore = seen.findLast((s) => s.commandName === 'getMore');
    expect(Long.isLong(getMore?.command.getMore)).toBe(true);
  });

  it('sends a numeric cursor id as int64, so the driver cursor works (find + getMore)', async () => {
    const docs = await client.db('test').collection('c').find({}, { batchSize: 2 }).toArray();
    expect(docs).toEqual([{ _id: 1 }, { _id: 2 }, { _id: 3 }]);
    // And on the wire: request a find over a raw socket and read the type byte of cursor.id.
    const raw = await RawClient.connect(port);
    raw.send(buildOpMsg([{ kind: 0, doc: { find: 'c', $db: 'test' } }], { requestId: 5 }));
    const reply = parseOpMsg(await raw.next());
    expect(reply.header.responseTo).toBe(5);
    expect(bsonElementType(BSON.serialize(reply.body), ['cursor', 'id'])).toBe(0x12);
    raw.close();
  });

  it('appends ok: 1 as a double when the handler leaves it out', async () => {
    const raw = await RawClient.connect(port);
    raw.send(buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }]));
    const frame = await raw.next();
    const body = frame.subarray(21); // header(16) + flags(4) + section kind(1)
    expect(bsonElementType(body, ['ok'])).toBe(0x01);
    raw.close();
  });

  it('handles moreToCome requests without replying', async () => {
    // Through the driver: w:0 writes go out with moreToCome.
    await client
      .db('test')
      .collection<{ _id: string }>('c')
      .insertOne({ _id: 'w0' }, { writeConcern: { w: 0 } });
    await expect.poll(() => seen.findLast((s) => s.commandName === 'insert')?.moreToCome).toBe(true);
    expect(await client.db('admin').command({ ping: 1 })).toEqual({ ok: 1 });

    // On the wire: the first reply after a moreToCome request answers the request after it.
    const raw = await RawClient.connect(port);
    raw.send(
      Buffer.concat([
        buildOpMsg([{ kind: 0, doc: { insert: 'c', documents: [{}], $db: 'test' } }], {
          requestId: 1,
          flags: OpMsgFlag.moreToCome,
        }),
        buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }], { requestId: 2 }),
      ]),
    );
    expect(parseOpMsg(await raw.next()).header.responseTo).toBe(2);
    raw.close();
  });

  it('closes the connection when a fire-and-forget write fails with a not-primary error, as mongod does', async () => {
    const raw = await RawClient.connect(port);
    raw.send(
      buildOpMsg([{ kind: 0, doc: { insert: 'notPrimary', documents: [{}], $db: 'test' } }], {
        flags: OpMsgFlag.moreToCome,
      }),
    );
    await raw.closed;
  });

  it('processes one connection’s requests in order, even when sent back to back', async () => {
    const raw = await RawClient.connect(port);
    raw.send(
      Buffer.concat([
        buildOpMsg([{ kind: 0, doc: { slow: 1, $db: 'admin' } }], { requestId: 1 }),
        buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }], { requestId: 2 }),
      ]),
    );
    const first = parseOpMsg(await raw.next());
    const second = parseOpMsg(await raw.next());
    expect([first.header.responseTo, second.header.responseTo]).toEqual([1, 2]);
    expect(first.body).toMatchObject({ slow: true });
    raw.close();
  });

  it('answers a non-handshake OP_QUERY with OP_REPLY 352 and keeps the connection', async () => {
    const raw = await RawClient.connect(port);
    raw.send(buildOpQuery('test.$cmd', { find: 'c' }, 9));
    const reply = parseOpReply(await raw.next());
    expect(reply.header).toMatchObject({ opCode: OpCode.OP_REPLY, responseTo: 9 });
    expect(reply.documents[0]).toMatchObject({ ok: 0, code: 352, codeName: 'UnsupportedOpQueryCommand' });
    raw.send(buildOpQuery('admin.$cmd', { isMaster: 1 }, 10));
    expect(parseOpReply(await raw.next()).documents[0]).toMatchObject({ ismaster: true, ok: 1 });
    raw.close();
  });

  it('answers a structurally invalid OP_MSG with an error and keeps the connection', async () => {
    const raw = await RawClient.connect(port);
    raw.send(buildOpMsg([{ kind: 0, doc: { ping: 1 } }], { requestId: 3 })); // no $db
    expect(parseOpMsg(await raw.next()).body).toMatchObject({ ok: 0, code: 40571, codeName: 'Location40571' });
    raw.send(buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }], { requestId: 4 }));
    expect(parseOpMsg(await raw.next()).body).toMatchObject({ ok: 1 });
    raw.close();
  });

  it('drops only the offending connection on a malformed frame, and logs why', async () => {
    const badLength = Buffer.alloc(16);
    badLength.writeInt32LE(5, 0);
    const tooBig = Buffer.alloc(16);
    tooBig.writeInt32LE(48_000_001, 0);
    const cases: Array<[Buffer, RegExp]> = [
      [badLength, /msgLen 5 is invalid/],
      [tooBig, /msgLen 48000001 is invalid/],
      [buildRaw(OpCode.OP_COMPRESSED, Buffer.alloc(9)), /OP_COMPRESSED/],
      [buildRaw(OpCode.OP_INSERT, Buffer.alloc(8)), /unsupported opcode 2002/],
      [buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }], { flags: 1 << 3 }), /illegal flags/],
      [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /is invalid/],
    ];
    for (const [bytes, reason] of cases) {
      const raw = await RawClient.connect(port);
      raw.send(bytes);
      await raw.closed;
      expect(logger.lines.some((l) => l.level === 'warn' && reason.test(String(l.fields.reason)))).toBe(true);
    }
    expect(await client.db('admin').command({ ping: 1 })).toEqual({ ok: 1 });
  });

  it('refuses a reply larger than the BSON limit with 10334 BSONObjectTooLarge', async () => {
    const error = await client.db('test').command({ huge: 1 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 10334, codeName: 'BSONObjectTooLarge' });
  });

  it('lets a handler close its connection (ctx.close), without a reply', async () => {
    const raw = await RawClient.connect(port);
    raw.send(buildOpMsg([{ kind: 0, doc: { hangUp: 1, $db: 'admin' } }]));
    await raw.closed;
    await expect(raw.next(100)).rejects.toThrow(/closed/);
  });
});

describe('exhaust replies', () => {
  const countdown = (n: number, flags: number, extra: Document = {}): Buffer =>
    buildOpMsg([{ kind: 0, doc: { countdown: 1, n, ...extra, $db: 'admin' } }], { requestId: 100, flags });

  it('streams with moreToCome when the request allows exhaust, chaining responseTo', async () => {
    const raw = await RawClient.connect(port);
    raw.send(countdown(3, OpMsgFlag.exhaustAllowed));
    const replies = [parseOpMsg(await raw.next()), parseOpMsg(await raw.next()), parseOpMsg(await raw.next())];
    expect(replies.map((r) => r.body.remaining)).toEqual([3, 2, 1]);
    expect(replies.map((r) => (r.flags & OpMsgFlag.moreToCome) !== 0)).toEqual([true, true, false]);
    expect(replies[0]?.header.responseTo).toBe(100);
    expect(replies[1]?.header.responseTo).toBe(replies[0]?.header.requestId);
    expect(replies[2]?.header.responseTo).toBe(replies[1]?.header.requestId);
    // The stream is over: the connection takes requests again.
    raw.send(buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }], { requestId: 101 }));
    expect(parseOpMsg(await raw.next()).header.responseTo).toBe(101);
    raw.close();
  });

  it('sends a single ordinary reply when the request does not allow exhaust', async () => {
    const raw = await RawClient.connect(port);
    raw.send(countdown(3, 0));
    const reply = parseOpMsg(await raw.next());
    expect(reply.body).toMatchObject({ remaining: 3, ok: 1 });
    expect(reply.flags & OpMsgFlag.moreToCome).toBe(0);
    await expect(raw.next(150)).rejects.toThrow(/timed out/);
    raw.close();
  });

  it('ends the stream with an error reply when a step throws', async () => {
    const raw = await RawClient.connect(port);
    raw.send(countdown(3, OpMsgFlag.exhaustAllowed, { failAt: 2 }));
    expect(parseOpMsg(await raw.next()).flags & OpMsgFlag.moreToCome).toBe(OpMsgFlag.moreToCome);
    const last = parseOpMsg(await raw.next());
    expect(last.flags & OpMsgFlag.moreToCome).toBe(0);
    expect(last.body).toMatchObject({ ok: 0, code: 11601, codeName: 'Interrupted', errmsg: 'stopped at 2' });
    raw.close();
  });

  it('stops an endless stream when the client goes away, aborting its wait', async () => {
    const raw = await RawClient.connect(port);
    raw.send(buildOpMsg([{ kind: 0, doc: { ticker: 1, $db: 'admin' } }], { flags: OpMsgFlag.exhaustAllowed }));
    await raw.next();
    await raw.next();
    const ctx = [...server.connections].find((c) => c.request?.commandName === 'ticker');
    expect(ctx).toBeDefined();
    raw.close();
    await ctx?.closed;
    expect(ctx?.signal.aborted).toBe(true);
  });

  it('answers a handler that returns no document with UnknownError', async () => {
    const error = await client.db('admin').command({ notADocument: 1 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 8, codeName: 'UnknownError' });
  });
});

describe('WireServer lifecycle', () => {
  it('destroyAll() resets every connection but keeps listening', async () => {
    const local = new WireServer({ handler: new TestHandler(), logger: captureLogger() });
    const { port: localPort } = await local.listen();
    const a = await RawClient.connect(localPort);
    const b = await RawClient.connect(localPort);
    await expect.poll(() => local.connections.size).toBe(2);
    const contexts = [...local.connections];
    local.destroyAll();
    await Promise.all([a.closed, b.closed, ...contexts.map((c) => c.closed)]);
    expect(contexts.every((c) => c.isClosed && c.signal.aborted)).toBe(true);
    const c = await RawClient.connect(localPort);
    c.send(buildOpMsg([{ kind: 0, doc: { ping: 1, $db: 'admin' } }]));
    expect(parseOpMsg(await c.next()).body).toMatchObject({ ok: 1 });
    c.close();
    await local.close();
  });

  it('close() drops connections, aborts in-flight commands and releases the port', async () => {
    const handler = new TestHandler();
    const local = new WireServer({ handler, logger: captureLogger() });
    const { port: localPort } = await local.listen();
    const localClient = new MongoClient(`mongodb://127.0.0.1:${localPort}/?directConnection=true`, {
      serverSelectionTimeoutMS: 500,
    });
    await localClient.connect();
    expect(await localClient.db('admin').command({ ping: 1 })).toEqual({ ok: 1 });
    // The streaming monitor holds an awaitable hello open: close() must not wait for it.
    await local.close();
    expect(local.connections.size).toBe(0);
    await expect(localClient.db('admin').command({ ping: 1 })).rejects.toThrow();
    await localClient.close();
    // The port is free again.
    const probe = createServer();
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen(localPort, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });
});
