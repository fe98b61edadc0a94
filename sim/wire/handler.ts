import type { Document } from 'mongodb';
import type { ConnectionContext, ConnectionState } from './context.ts';

/**
 * What produces the next reply of an exhaust stream. It typically waits (for a topology change, new data, a timeout
 * or the connection's `signal`) and then returns the next reply: another {@link ExhaustReply} to keep streaming, or a
 * plain document to end the stream. A throw ends the stream with that error's reply.
 */
export type ExhaustNext = () => Promise<Document | ExhaustReply>;

/**
 * A reply that asks to be followed by more replies without further requests: mongod's "exhaust" mode, used by the
 * driver's streaming server monitoring (awaitable `hello`) and by exhaust cursors.
 *
 * It streams only when the request carried OP_MSG's `exhaustAllowed` flag and {@link reply} is not an error; then the
 * server sends {@link reply} with the `moreToCome` flag, awaits {@link next}, and repeats until `next` yields a plain
 * document (sent without `moreToCome`) or the connection closes. Otherwise {@link reply} is sent as an ordinary reply
 * and {@link next} is never called. While a stream runs, the connection handles no other request, as in mongod.
 *
 * Awaitable `hello` must use it. Driver 7.x streams whenever `hello` carries `topologyVersion`; it answers a plain
 * (non-moreToCome) reply to its exhaustAllowed `hello` with "Server ended moreToCome unexpectedly", marks the server
 * Unknown and clears the pool, on every heartbeat (see hello-stream.test.ts). A node that cannot stream must leave
 * `topologyVersion` out of `hello`, which makes the driver poll instead.
 */
export class ExhaustReply {
  /**
   * @param reply - the reply to send now
   * @param next - produces the following reply; mongod re-runs the same command (for `hello`: with the
   *   `topologyVersion` it just sent), which `() => handler.handle(db, nextCommand, ctx)` reproduces
   */
  constructor(
    readonly reply: Document,
    readonly next: ExhaustNext,
  ) {}
}

/**
 * Executes commands for a {@link WireServer}. One call per request, in request order per connection (a call finishes,
 * reply sent, before the next request of the same connection is handled); different connections run concurrently.
 *
 * The reply gets `ok: 1` appended when it has no `ok`. Throw {@link CommandError} for a MongoDB error reply; any other
 * throw is a simulator bug, answered with `8 UnknownError` and logged. A `cursor.id` that is a JS number is sent as
 * int64 (see `normalizeReply` in protocol.ts).
 */
export interface CommandHandler<S extends object = ConnectionState> {
  /**
   * @param db - the database the command targets (`$db`)
   * @param command - the command document; OP_MSG document sequences are merged in as arrays, `$db` and other
   *   generic arguments (`lsid`, `$clusterTime`, `$readPreference`) are left in place; int64 values are `Long`
   * @param ctx - the connection the request came on
   */
  handle(db: string, command: Document, ctx: ConnectionContext<S>): Promise<Document | ExhaustReply>;
}
