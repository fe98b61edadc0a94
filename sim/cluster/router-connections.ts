/**
 * The router process's connections out (remote-router.ts): one driver MongoClient per replica set, the config server
 * and each shard, keyed by the connection string `<rs>/<host>,...` that `--configdb` and `config.shards` give, and the
 * translation of the driver's failures into the errors a mongos answers with.
 */
import { MongoClient, MongoNetworkError, MongoServerError, MongoServerSelectionError, type MongoClientOptions, type ReadPreferenceMode } from 'mongodb';
import { keyFileClientOptions } from '../../lib/mongo/keyfile.ts';
import { CommandError, ErrorCodes } from '../wire/index.ts';

/** mongos's own default of `defaultFindReplicaSetHostTimeoutMS`: how long a command waits for a suitable member. */
export const DEFAULT_FIND_HOST_TIMEOUT_MS = 20_000;

/** What the router's outgoing connections depend on (sim/mongos.ts fills it from the command line). */
export interface RouterClientSettings {
  /** `defaultFindReplicaSetHostTimeoutMS`: a command fails with FailedToSatisfyReadPreference after this long. */
  readonly findHostTimeoutMs: number;
  /** `--keyFile`: the cluster's shared key for internal authentication (see {@link routerClientOptions}). */
  readonly keyFile?: string;
}

/**
 * The options of every MongoClient the router opens: the one place they are built.
 *
 * Internal authentication: a mongos started with `--keyFile` authenticates to the config servers and the shards as
 * `__system` with the key as password (lib/mongo/keyfile.ts), as the members authenticate to each other.
 */
export function routerClientOptions(settings: RouterClientSettings): MongoClientOptions {
  return {
    appName: 'sim-mongos',
    serverSelectionTimeoutMS: settings.findHostTimeoutMs,
    connectTimeoutMS: Math.min(settings.findHostTimeoutMs, 10_000),
    // Every operation names its own read preference; this one only lets `connect()` succeed with any member up.
    readPreference: 'nearest',
    // Documents pass through with their types: int64 stays Long and regexes BSONRegExp, as the simulator's nodes
    // decode requests (REQUEST_BSON_OPTIONS in sim/wire/protocol.ts).
    promoteLongs: false,
    promoteBuffers: false,
    bsonRegExp: true,
    ignoreUndefined: true,
    ...(settings.keyFile ? keyFileClientOptions(settings.keyFile) : {}),
  };
}

/** A replica-set connection string `<rs>/<host>,...` taken apart; anything else is mongos's BadValue. */
export function parseReplicaSetConnection(conn: string): { name: string; hosts: string[] } {
  const slash = conn.indexOf('/');
  const hosts = conn.slice(slash + 1).split(',').filter(Boolean);
  if (slash <= 0 || hosts.length === 0) throw new CommandError(ErrorCodes.BadValue, `configdb supports only replica set connection string: '${conn}'`);
  return { name: conn.slice(0, slash), hosts };
}

/** A driver failure as mongos reports it: the server's own error passed through, an unreachable set as 133. */
export function routedError(e: unknown, setName: string, mode: ReadPreferenceMode): unknown {
  if (e instanceof CommandError) return e;
  if (e instanceof MongoServerSelectionError) {
    return new CommandError(ErrorCodes.FailedToSatisfyReadPreference, `Could not find host matching read preference { mode: "${mode}" } for set ${setName}`, { cause: e });
  }
  if (e instanceof MongoServerError) {
    const code = typeof e.code === 'number' ? e.code : ErrorCodes.UnknownError;
    return new CommandError(code, e.errmsg ?? e.message, { ...(e.codeName ? { codeName: e.codeName } : {}), cause: e });
  }
  if (e instanceof MongoNetworkError) return new CommandError(ErrorCodes.HostUnreachable, `${setName}: ${e.message}`, { cause: e });
  return e;
}

/** The router's clients, one per replica set, opened on first use and closed together. */
export class RouterConnections {
  private readonly clients = new Map<string, MongoClient>();
  private closed = false;

  constructor(private readonly settings: RouterClientSettings) {}

  /** Runs `fn` with the client of the replica set `conn` (`<rs>/<host>,...`); driver failures become mongos's errors. */
  async run<T>(conn: string, mode: ReadPreferenceMode, fn: (client: MongoClient) => Promise<T>): Promise<T> {
    const { name } = parseReplicaSetConnection(conn);
    try {
      const client = this.client(conn);
      // Connected first, so that every caller of a set that cannot be reached gets the server selection failure
      // (several operations racing the driver's automatic connect get "Topology is closed" instead).
      await client.connect();
      return await fn(client);
    } catch (e) {
      throw routedError(e, name, mode);
    }
  }

  private client(conn: string): MongoClient {
    if (this.closed) throw new CommandError(ErrorCodes.ShutdownInProgress, 'The server is in quiesce mode and will shut down');
    let c = this.clients.get(conn);
    if (!c) {
      const { name, hosts } = parseReplicaSetConnection(conn);
      c = new MongoClient(`mongodb://${hosts.join(',')}/?replicaSet=${encodeURIComponent(name)}`, routerClientOptions(this.settings));
      this.clients.set(conn, c);
    }
    return c;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.allSettled(all.map((c) => c.close()));
  }
}
