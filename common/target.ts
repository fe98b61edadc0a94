/**
 * How a workflow names the cluster to back up: a connection string without credentials, plus a reference to where
 * the workers find the credentials. Workflow input is shown in clear in history and the UI, so a password must never
 * be in it (docs/interfaces.md section 5). Workflow-safe.
 */

/**
 * Where workers read MongoDB credentials: environment variables `<prefix>_USERNAME` / `<prefix>_PASSWORD`
 * (default prefix CUTPOINT_MONGO), a JSON file `{"username", "password"}`, or none.
 */
export type CredentialsRef = { kind: 'env'; prefix?: string } | { kind: 'file'; path: string } | { kind: 'none' };

/** A MongoDB deployment as workflows see it. */
export interface MongoTarget {
  /** `mongodb://host:port,.../?options` without userinfo. */
  uri: string;
  credentials: CredentialsRef;
}

/** Parsed parts of a `mongodb://` URI (mongodb+srv is not supported: agents need the member list). */
export interface ParsedUri {
  hosts: string[];
  database: string | undefined;
  /** Query options as given, in order. */
  options: Array<[string, string]>;
  hasUserinfo: boolean;
}

/** Parses a `mongodb://` connection string; errors name the problem (they reach the user as BAD_USAGE). */
export function parseMongoUri(uri: string): ParsedUri {
  const m = /^mongodb:\/\/(?:([^@/]*)@)?([^/?#@]+)(?:\/([^?#]*))?(?:\?([^#]*))?$/.exec(uri.trim());
  if (!m) {
    if (uri.startsWith('mongodb+srv://')) throw new Error('mongodb+srv:// URIs are not supported: give the members, mongodb://host1:port,host2:port/...');
    throw new Error(`'${uri.replace(/\/\/[^@/]*@/, '//***@')}' is not a mongodb:// connection string`);
  }
  const hosts = m[2]!.split(',').map((h) => (h.includes(':') ? h : `${h}:27017`));
  for (const h of hosts) if (!/^[A-Za-z0-9._\-[\]:]+:\d+$/.test(h)) throw new Error(`'${h}' in the URI is not host:port`);
  const options: Array<[string, string]> = [];
  for (const pair of (m[4] ?? '').split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    options.push(eq < 0 ? [pair, ''] : [decodeURIComponent(pair.slice(0, eq)), decodeURIComponent(pair.slice(eq + 1))]);
  }
  return { hosts, database: m[3] || undefined, options, hasUserinfo: m[1] !== undefined };
}

const CREDENTIAL_OPTIONS = new Set(['password', 'authmechanismproperties', 'tlscertificatekeyfilepassword']);

/**
 * Checks that a URI carries no secret. A user name alone would be harmless, but the password belongs with it, so
 * any userinfo is refused with a message saying where credentials go instead.
 */
export function assertNoCredentials(uri: string): void {
  const p = parseMongoUri(uri);
  const secretOption = p.options.find(([k]) => CREDENTIAL_OPTIONS.has(k.toLowerCase()));
  if (p.hasUserinfo || secretOption) {
    throw new Error(
      'the connection string must not contain credentials (workflow input is visible in Temporal history and UI); ' +
        'remove them from --uri and give them to the workers as CUTPOINT_MONGO_USERNAME / CUTPOINT_MONGO_PASSWORD ' +
        '(or a credentials file, --credentials-file)',
    );
  }
}

/** A URI for one member with the original options (TLS, authSource...) but a direct connection. */
export function directUri(uri: string, host: string): string {
  const p = parseMongoUri(uri);
  const keep = p.options.filter(([k]) => !['replicaset', 'directconnection', 'readpreference'].includes(k.toLowerCase()));
  const query = [...keep, ['directConnection', 'true'], ['readPreference', 'primaryPreferred']]
    .map(([k, v]) => `${encodeURIComponent(k!)}=${encodeURIComponent(v!)}`)
    .join('&');
  return `mongodb://${host}/${p.database ?? ''}?${query}`;
}

/**
 * The URI of one replica set of a sharded cluster, found through mongos: its members, the options of the URI the
 * user gave (TLS, authSource...) and `replicaSet=<name>`. Credentials stay a reference, as for the mongos URI.
 */
export function replicaSetUri(uri: string, name: string, hosts: string[]): string {
  const p = parseMongoUri(uri);
  const keep = p.options.filter(([k]) => !['replicaset', 'directconnection'].includes(k.toLowerCase()));
  const query = [...keep, ['replicaSet', name]].map(([k, v]) => `${encodeURIComponent(k!)}=${encodeURIComponent(v!)}`).join('&');
  return `mongodb://${hosts.join(',')}/${p.database ?? ''}?${query}`;
}

/** Parses a shard connection string as `listShards` / `getShardMap` give it: `<rs>/<host:port>,...`. */
export function parseShardHost(conn: string): { name: string; hosts: string[] } {
  const slash = conn.indexOf('/');
  const name = conn.slice(0, slash);
  const hosts = conn.slice(slash + 1).split(',').filter(Boolean);
  if (slash <= 0 || hosts.length === 0) throw new Error(`'${conn}' is not a replica-set connection string (<name>/<host:port>,...)`);
  return { name, hosts };
}
