/**
 * MongoDB connections for activities: the target's URI (no credentials) plus credentials resolved on this worker,
 * to the whole deployment or directly to one member. Connection errors become registry errors naming the host.
 */
import { MongoClient, MongoServerError, type MongoClientOptions } from 'mongodb';
import { CutpointError } from '../../common/errors.ts';
import { directUri, type MongoTarget } from '../../common/target.ts';
import { resolveCredentials } from './credentials.ts';

export interface ConnectOptions {
  /** Connect to this member only (directConnection). */
  host?: string;
  /** Server selection / connect timeout. */
  timeoutMs?: number;
}

function clientOptions(target: MongoTarget, timeoutMs: number): MongoClientOptions {
  const creds = resolveCredentials(target.credentials);
  return {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    appName: 'cutpoint',
    // cutpoint's own cursors are managed explicitly; the driver's retries would replay backup commands.
    retryReads: false,
    retryWrites: false,
    ...(creds ? { auth: { username: creds.username, password: creds.password } } : {}),
  };
}

/** Runs `fn` with a connected client and always closes it. */
export async function withClient<T>(target: MongoTarget, opts: ConnectOptions, fn: (client: MongoClient) => Promise<T>): Promise<T> {
  const uri = opts.host ? directUri(target.uri, opts.host) : target.uri;
  const client = new MongoClient(uri, clientOptions(target, opts.timeoutMs ?? 10_000));
  try {
    await client.connect();
  } catch (e) {
    await client.close().catch(() => undefined);
    throw connectionError(e, opts.host ?? target.uri);
  }
  try {
    return await fn(client);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** The servers of a server-selection failure, when the driver says (type `Unknown` = never answered). */
function selectionServers(e: unknown): Array<{ address: string; type: string; error?: string }> | undefined {
  const reason = (e as { reason?: { servers?: Map<string, { type?: string; error?: { message?: string } | null }> } }).reason;
  if (!(reason?.servers instanceof Map)) return undefined;
  return [...reason.servers].map(([address, d]) => ({ address, type: String(d.type), ...(d.error?.message ? { error: d.error.message } : {}) }));
}

/**
 * Maps driver connection failures to MONGO_UNREACHABLE / MONGO_AUTH_FAILED with the host in the message.
 *
 * When no host of the URI answered at all during the driver's whole server-selection timeout (it retries
 * throughout), the URI is wrong or the deployment is down: the error is not retried, so a bad URI fails in seconds
 * instead of minutes of activity retries. A deployment where some member answers (an election in progress, a
 * primary not yet known) stays retryable.
 */
export function connectionError(e: unknown, where: string): CutpointError {
  const err = e as Error & { code?: number };
  if (err instanceof MongoServerError && (err.code === 18 || err.code === 11)) {
    return new CutpointError('MONGO_AUTH_FAILED', `authentication to ${where} failed: ${err.message}`);
  }
  const servers = selectionServers(e);
  if (servers && servers.length > 0 && servers.every((s) => s.type === 'Unknown')) {
    const why = servers.map((s) => `${s.address}: ${s.error ?? 'no answer'}`).join('; ');
    return new CutpointError(
      'MONGO_UNREACHABLE',
      `cannot connect to ${where}: no host answered (${why}); check the URI and that the workers can reach it`,
      { hosts: servers.map((s) => s.address) },
      { cause: e, nonRetryable: true },
    );
  }
  return new CutpointError('MONGO_UNREACHABLE', `cannot connect to ${where}: ${err.message}`, undefined, { cause: e });
}
