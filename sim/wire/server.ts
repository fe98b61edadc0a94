import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { Connection } from './connection.ts';
import { ConnectionContext } from './context.ts';
import type { ConnectionState } from './context.ts';
import type { CommandHandler } from './handler.ts';
import { simLogger, type LogSink } from '../log.ts';
import { MAX_MESSAGE_SIZE_BYTES } from './protocol.ts';

/** Options of a {@link WireServer}. */
export interface WireServerOptions<S extends object = ConnectionState> {
  /** Executes the commands. */
  readonly handler: CommandHandler<S>;
  /** Interface to bind; default `127.0.0.1`. */
  readonly host?: string;
  /** Port to bind; default 0, an ephemeral port (read it from {@link WireServer.port} after `listen`). */
  readonly port?: number;
  /** Creates the state bag of a new connection; default `{}` (so give one whenever `S` has required fields). */
  readonly createState?: (connectionId: number) => S;
  /** Default: the simulator's logger (sim/log.ts), named `sim-wire`. */
  readonly logger?: LogSink;
  /** Largest accepted message; default 48,000,000 as mongod. */
  readonly maxMessageSizeBytes?: number;
}

/**
 * A TCP listener speaking the MongoDB wire protocol to real drivers, with the commands delegated to a
 * {@link CommandHandler}. One per simulated node.
 *
 * Lifecycle: `listen()` once; `close()` to stop (a later `listen()` on the same instance is not supported: make a new
 * server, e.g. for a restarted node). A crash is `destroyAll()` (RST on every connection) followed by `close()`.
 */
export class WireServer<S extends object = ConnectionState> {
  private readonly server: Server;
  private readonly live = new Map<ConnectionContext<S>, Connection<S>>();
  private readonly logger: LogSink;
  private nextConnectionId = 1;
  private requestIdCounter = 0;
  private bound: AddressInfo | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: WireServerOptions<S>) {
    this.logger = options.logger ?? simLogger('sim-wire');
    this.server = createServer((socket) => this.accept(socket));
    // After listen() succeeds, a listener error is not actionable by the caller; log it instead of crashing.
    this.server.on('error', (error) => this.logger.error({ err: error.message }, 'listener error'));
  }

  /** Starts listening. Resolves with the bound address once the port is open; rejects if it cannot bind. */
  async listen(): Promise<{ host: string; port: number }> {
    if (this.bound !== undefined) throw new Error('WireServer is already listening');
    if (this.closing !== undefined) throw new Error('WireServer is closed; create a new one');
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen({ host, port: this.options.port ?? 0 }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.bound = this.server.address() as AddressInfo;
    this.logger.info({ host, port: this.bound.port }, 'wire server listening');
    return { host, port: this.bound.port };
  }

  /** The bound port (the ephemeral one when port 0 was asked for). Throws before `listen()`. */
  get port(): number {
    if (this.bound === undefined) throw new Error('WireServer is not listening');
    return this.bound.port;
  }

  /** `host:port` as it appears in a connection string or in `hello.hosts`. */
  get address(): string {
    return `${this.options.host ?? '127.0.0.1'}:${this.port}`;
  }

  /** Open connections. */
  get connections(): ReadonlySet<ConnectionContext<S>> {
    return new Set(this.live.keys());
  }

  /**
   * Stops listening and closes every connection. In-flight commands are abandoned (their contexts' `signal`s fire) and
   * their replies are not sent. Resolves when the port is released and every connection has closed. Idempotent.
   */
  close(): Promise<void> {
    if (this.closing === undefined) {
      const listenerClosed = new Promise<void>((resolve) => {
        if (!this.server.listening) resolve();
        else this.server.close(() => resolve());
      });
      const contexts = [...this.live.keys()];
      for (const connection of this.live.values()) connection.drop('server closing', { level: 'debug' });
      this.closing = Promise.all([listenerClosed, ...contexts.map((ctx) => ctx.closed)]).then(() =>
        this.logger.info({ port: this.bound?.port }, 'wire server closed'),
      );
    }
    return this.closing;
  }

  /**
   * Hard-drops every open connection with a TCP reset and abandons in-flight commands, as a crashing process would;
   * the listener stays open (call {@link close} too to make the port refuse connections).
   */
  destroyAll(): void {
    for (const connection of this.live.values()) {
      connection.drop('connections destroyed (simulated crash)', { reset: true, level: 'debug' });
    }
  }

  private accept(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    const id = this.nextConnectionId++;
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const state = this.options.createState?.(id) ?? ({} as S);
    const ctx: ConnectionContext<S> = new ConnectionContext<S>(id, remote, state, (reason) =>
      this.live.get(ctx)?.drop(reason, { level: 'debug' }),
    );
    const connection = new Connection(socket, ctx, {
      handler: this.options.handler,
      logger: this.logger,
      maxMessageSizeBytes: this.options.maxMessageSizeBytes ?? MAX_MESSAGE_SIZE_BYTES,
      nextRequestId: () => (this.requestIdCounter = (this.requestIdCounter + 1) | 0),
    });
    this.live.set(ctx, connection);
    socket.once('close', () => this.live.delete(ctx));
    this.logger.debug({ connectionId: id, remote }, 'connection accepted');
  }
}
