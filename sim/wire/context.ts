import type { WireRequest } from './protocol.ts';

/** Default per-connection state bag: whatever the command layer wants to remember about a connection. */
export type ConnectionState = Record<string, unknown>;

/**
 * One client connection as the command layer sees it. Created by {@link WireServer} on accept; lives until the socket
 * closes, whoever closes it.
 */
export class ConnectionContext<S extends object = ConnectionState> {
  /** The request being handled (the one that started the stream, during an exhaust stream). */
  request: WireRequest | undefined;

  private readonly abort = new AbortController();
  private readonly closedPromise: Promise<void>;
  private resolveClosed!: () => void;

  /**
   * @param id - connection number, unique per server and increasing from 1; `hello` reports it as `connectionId`
   * @param remoteAddress - the client's `host:port`
   * @param state - per-connection state bag (e.g. the authenticated user, SCRAM conversation, client metadata)
   * @param dropConnection - closes the underlying socket; supplied by the server
   */
  constructor(
    readonly id: number,
    readonly remoteAddress: string,
    readonly state: S,
    private readonly dropConnection: (reason: string) => void,
  ) {
    this.closedPromise = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
  }

  /** Aborted when the connection closes: pass it to anything a command waits on (awaitable hello, blocking waits). */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Resolves when the connection has closed. Never rejects. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Whether the connection has closed. */
  get isClosed(): boolean {
    return this.abort.signal.aborted;
  }

  /**
   * Closes the connection from the server side, as mongod does on `shutdown` or when a stepdown kills connections.
   * The reply being handled, if any, is not sent.
   */
  close(reason: string): void {
    this.dropConnection(reason);
  }

  /** @internal Called by the server once the socket has closed. */
  markClosed(): void {
    if (this.abort.signal.aborted) return;
    this.abort.abort(new Error(`connection ${this.id} closed`));
    this.resolveClosed();
  }
}
