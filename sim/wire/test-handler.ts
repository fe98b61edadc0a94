/**
 * A minimal standalone-mongod command handler for wire-layer tests, and the pattern for the real one: awaitable
 * `hello` with streaming (exhaust) replies, `ping`, `buildInfo`, `endSessions`, and `59 CommandNotFound` for the rest.
 */
import type { Long, ObjectId } from 'mongodb';
import type { Document } from 'mongodb';
import type { ConnectionContext } from './context.ts';
import { CommandError, ErrorCodes } from './errors.ts';
import { ExhaustReply } from './handler.ts';
import { TopologyVersion } from './topology.ts';
import type { CommandHandler } from './handler.ts';
import { MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE_BYTES, firstKey } from './protocol.ts';

/** A test command: gets the command, its database and connection; returns the reply. */
export type TestCommand = (command: Document, db: string, ctx: ConnectionContext) => Document | Promise<Document>;

/** Options of {@link TestHandler}. */
export interface TestHandlerOptions {
  /**
   * How an awaitable `hello` (one with `topologyVersion` and `maxAwaitTimeMS`) is answered:
   * - `stream` (default, as mongod): wait for a topology change or `maxAwaitTimeMS`, reply, and keep streaming;
   * - `wait`: wait the same way but send a single ordinary reply (no exhaust);
   * - `none`: omit `topologyVersion` from `hello`, which makes the driver poll instead of stream.
   */
  readonly awaitableHello?: 'stream' | 'wait' | 'none';
  /** Extra commands by name; they override the built-in ones. */
  readonly commands?: Readonly<Record<string, TestCommand>>;
}

/** The `hello` names mongod accepts; `isMaster`/`ismaster` also answer with the legacy `ismaster` field. */
const HELLO_NAMES = new Set(['hello', 'isMaster', 'ismaster']);

/**
 * Minimal standalone mongod (7.0 wire version) for tests. Counts every command it receives, by name, in {@link counts}.
 */
export class TestHandler implements CommandHandler {
  /** Commands received so far, by name (exhaust continuations are not requests and are not counted). */
  readonly counts = new Map<string, number>();
  private readonly topology = new TopologyVersion();

  constructor(private readonly options: TestHandlerOptions = {}) {}

  /** This node's current `topologyVersion`. */
  get topologyVersion(): { processId: ObjectId; counter: Long } {
    return this.topology.current;
  }

  /** Simulates a topology change: bumps the counter and completes every pending awaitable `hello`. */
  changeTopology(): void {
    this.topology.change();
  }

  /** Total commands received with one of these names. */
  count(...names: string[]): number {
    return names.reduce((sum, name) => sum + (this.counts.get(name) ?? 0), 0);
  }

  async handle(db: string, command: Document, ctx: ConnectionContext): Promise<Document | ExhaustReply> {
    const name = firstKey(command);
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    const custom = this.options.commands?.[name];
    if (custom !== undefined) return custom(command, db, ctx);
    if (HELLO_NAMES.has(name)) return this.hello(name, command, ctx);
    switch (name) {
      case 'ping':
        return {};
      case 'buildInfo':
      case 'buildinfo':
        return { version: '7.0.14', versionArray: [7, 0, 14, 0], maxBsonObjectSize: MAX_BSON_OBJECT_SIZE };
      case 'endSessions':
        return {};
      default:
        throw new CommandError(ErrorCodes.CommandNotFound, `no such command: '${name}'`);
    }
  }

  private async hello(name: string, command: Document, ctx: ConnectionContext): Promise<Document | ExhaustReply> {
    const mode = this.options.awaitableHello ?? 'stream';
    if (mode === 'none') return this.helloReply(name, command, ctx);
    const reply = await this.topology.hello(command, ctx, () => this.helloReply(name, command, ctx));
    // 'wait': held like a streaming hello, then answered once without moreToCome.
    return mode === 'wait' && reply instanceof ExhaustReply ? reply.reply : reply;
  }

  private helloReply(name: string, command: Document, ctx: ConnectionContext): Document {
    const legacy = name !== 'hello';
    return {
      ...(legacy ? { ismaster: true } : { isWritablePrimary: true }),
      maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
      maxMessageSizeBytes: MAX_MESSAGE_SIZE_BYTES,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: ctx.id,
      minWireVersion: 0,
      maxWireVersion: 21,
      readOnly: false,
      // mongod echoes helloOk to clients that asked, so they switch from isMaster to hello.
      ...(command.helloOk === true ? { helloOk: true } : {}),
    };
  }
}
