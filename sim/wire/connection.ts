import { once } from 'node:events';
import type { Socket } from 'node:net';
import { BSON, Double } from 'mongodb';
import type { Document } from 'mongodb';
import type { ConnectionContext } from './context.ts';
import { CommandError, ErrorCodes, NOT_PRIMARY_CODES, errorReply, errorReplyFor } from './errors.ts';
import { FrameReader } from './frame-reader.ts';
import { ExhaustReply } from './handler.ts';
import type { CommandHandler } from './handler.ts';
import type { LogSink } from '../log.ts';
import {
  MAX_REPLY_BODY_SIZE,
  MessageError,
  OpCode,
  OpMsgFlag,
  decodeRequest,
  encodeOpMsg,
  encodeOpReply,
  readHeader,
  serializeReplyBody,
} from './protocol.ts';
import type { WireRequest } from './protocol.ts';

/** What a connection needs from its server. */
export interface ConnectionOptions<S extends object> {
  readonly handler: CommandHandler<S>;
  readonly logger: LogSink;
  readonly maxMessageSizeBytes: number;
  /** Allocates the requestID of an outgoing reply. */
  readonly nextRequestId: () => number;
}

/**
 * Serves one socket: reassembles frames, runs their commands one at a time through the handler, writes the replies.
 * It never throws out of a socket event: a malformed message is answered with an error or drops this connection only.
 */
export class Connection<S extends object> {
  private readonly reader: FrameReader;
  // Requests of one connection are handled strictly in order: each waits for the previous one's reply to be written.
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Socket,
    readonly ctx: ConnectionContext<S>,
    private readonly options: ConnectionOptions<S>,
  ) {
    this.reader = new FrameReader(options.maxMessageSizeBytes);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.log('debug', { err: error.message }, 'socket error'));
    socket.on('close', () => {
      ctx.markClosed();
      this.log('debug', {}, 'connection closed');
    });
  }

  /**
   * Closes the connection, logging why: at `warn` when the client misbehaved (the default), at `debug` for a deliberate
   * close. `reset` sends a TCP RST instead of a FIN, as a crashed process would.
   */
  drop(reason: string, options: { reset?: boolean; level?: 'warn' | 'debug' } = {}): void {
    if (this.socket.destroyed) return;
    this.log(options.level ?? 'warn', { reason }, 'closing connection');
    const reset = options.reset ?? false;
    if (reset) this.socket.resetAndDestroy();
    else this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.reader.push(chunk);
    } catch (error) {
      this.drop(error instanceof Error ? error.message : String(error));
      return;
    }
    for (const frame of frames) {
      this.queue = this.queue
        .then(() => this.process(frame))
        .catch((error: unknown) => {
          // process() handles every expected failure; reaching here is a wire-layer bug.
          this.log('error', { err: error instanceof Error ? error.stack : String(error) }, 'wire layer failure');
          this.drop('internal error in the wire layer');
        });
    }
  }

  private async process(frame: Buffer): Promise<void> {
    if (this.ctx.isClosed) return;
    let request: WireRequest;
    try {
      request = decodeRequest(frame);
    } catch (error) {
      await this.rejectMessage(frame, error);
      return;
    }

    this.ctx.request = request;
    const result = await this.run(() => this.options.handler.handle(request.db, request.command, this.ctx), request);
    if (this.ctx.isClosed) return;

    if (request.moreToCome) {
      // Fire-and-forget: the client reads no reply. mongod closes the connection when such a request failed because the
      // node is not primary, since that is the only way the client can find out.
      const reply = result instanceof ExhaustReply ? result.reply : result;
      const code: unknown = reply.code;
      if (!isOk(reply) && typeof code === 'number' && NOT_PRIMARY_CODES.has(code)) {
        const reason = `fire-and-forget ${request.commandName} failed with ${String(code)} on a non-primary`;
        this.drop(reason, { level: 'debug' });
      }
      return;
    }

    // Exhaust: keep sending while the handler hands back ExhaustReply and the client allowed it (see ExhaustReply).
    let current: Document | ExhaustReply = result;
    let responseTo = request.header.requestId;
    for (;;) {
      const exhaust = current instanceof ExhaustReply ? current : undefined;
      const reply: Document = exhaust?.reply ?? (current as Document);
      const wantsStream = exhaust !== undefined && request.exhaustAllowed && request.opCode === OpCode.OP_MSG;
      const sent = await this.send(request, reply, responseTo, wantsStream && isOk(reply));
      if (exhaust === undefined || !sent.streaming || this.ctx.isClosed) return;
      responseTo = sent.requestId;
      current = await this.run(exhaust.next, request);
      if (this.ctx.isClosed) return;
    }
  }

  /** Runs a handler step; a throw becomes an error reply. */
  private async run(
    step: () => Promise<Document | ExhaustReply>,
    request: WireRequest,
  ): Promise<Document | ExhaustReply> {
    try {
      const result = await step();
      if (typeof result !== 'object' || result === null || Array.isArray(result)) {
        const what = Array.isArray(result) ? 'an array' : String(result);
        throw new Error(`handler returned ${what} instead of a document`);
      }
      return result;
    } catch (error) {
      if (this.ctx.isClosed) return errorReplyFor(error); // not sent; the wait was most likely aborted by the close
      if (error instanceof CommandError) {
        this.log('debug', { command: request.commandName, code: error.code, errmsg: error.message }, 'command failed');
      } else {
        this.log(
          'error',
          { command: request.commandName, err: error instanceof Error ? error.stack : String(error) },
          'command handler threw a non-CommandError; replying UnknownError',
        );
      }
      return errorReplyFor(error);
    }
  }

  /** Answers an undecodable message with an error, or drops the connection when mongod would. */
  private async rejectMessage(frame: Buffer, error: unknown): Promise<void> {
    if (!(error instanceof MessageError) || error.fatal) {
      this.drop(`malformed message: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const header = readHeader(frame);
    const moreToCome =
      header.opCode === OpCode.OP_MSG && frame.length >= 20 && (frame.readUInt32LE(16) & OpMsgFlag.moreToCome) !== 0;
    this.log('debug', { code: error.code, errmsg: error.message }, 'invalid message');
    if (moreToCome) return;
    const reply = error.toReply();
    const body = serializeReplyBody(reply);
    const address = { requestId: this.options.nextRequestId(), responseTo: header.requestId };
    await this.write(header.opCode === OpCode.OP_QUERY ? encodeOpReply(body, address) : encodeOpMsg(body, address));
  }

  /** Serializes and writes one reply. Returns its requestID and whether it went out with moreToCome. */
  private async send(
    request: WireRequest,
    reply: Document,
    responseTo: number,
    streaming: boolean,
  ): Promise<{ requestId: number; streaming: boolean }> {
    let body: Buffer | undefined;
    let size: number;
    try {
      body = serializeReplyBody(withOk(reply));
      size = body.length;
    } catch (error) {
      // js-bson cannot serialize past its 17 MB buffer, so an oversized reply surfaces here: measure it to tell apart.
      size = measure(reply);
      if (size <= MAX_REPLY_BODY_SIZE) {
        this.log('error', { command: request.commandName, err: String(error) }, 'reply could not be serialized');
        body = serializeReplyBody(errorReplyFor(error));
        streaming = false;
      }
    }
    if (body === undefined || size > MAX_REPLY_BODY_SIZE) {
      // mongod's check of a reply against BSONObjMaxInternalSize.
      body = serializeReplyBody(
        errorReply(
          ErrorCodes.BSONObjectTooLarge,
          `BSONObj size: ${size} (0x${size.toString(16).toUpperCase()}) is invalid. ` +
            `Size must be between 0 and ${MAX_REPLY_BODY_SIZE}(16MB)`,
        ),
      );
      streaming = false;
    }
    const address = { requestId: this.options.nextRequestId(), responseTo };
    const message =
      request.opCode === OpCode.OP_QUERY ? encodeOpReply(body, address) : encodeOpMsg(body, address, streaming);
    await this.write(message);
    return { requestId: address.requestId, streaming };
  }

  private async write(message: Buffer): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return;
    if (this.socket.write(message)) return;
    // Wait for the kernel buffer to drain so a slow client cannot make us buffer replies without bound.
    // A close aborts the wait (the promise then rejects, which is fine: there is nobody left to write to).
    await once(this.socket, 'drain', { signal: this.ctx.signal }).catch(() => undefined);
  }

  private log(level: keyof LogSink, fields: object, message: string): void {
    this.options.logger[level]({ connectionId: this.ctx.id, remote: this.ctx.remoteAddress, ...fields }, message);
  }
}

/** BSON size of a document, or 0 when even measuring fails (e.g. a cyclic object). */
function measure(doc: Document): number {
  try {
    return BSON.calculateObjectSize(doc, { ignoreUndefined: true });
  } catch {
    return 0;
  }
}

/** Whether a reply is a success: `ok` absent (added later as 1) or non-zero, whatever its numeric BSON type. */
function isOk(reply: Document): boolean {
  return !('ok' in reply) || Number(reply.ok) !== 0;
}

/** The reply with `ok: 1` (a double, as mongod sends it) appended when the handler left it out. */
function withOk(reply: Document): Document {
  return 'ok' in reply ? reply : { ...reply, ok: new Double(1) };
}
