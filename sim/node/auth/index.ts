/**
 * Authentication and authorization of the simulator (`--auth`), after mongod 7.0. The stable surface for other
 * parts of the simulator:
 *
 *   requirePrivilege(ctx: CommandContext, action: string, resource: Resource): void
 *
 * throws `13 Unauthorized` ("not authorized on <db> to execute command { … }", mongod's wording) unless the
 * connection's user holds `action` on `resource`; it does nothing on a node started without `--auth` (or while the
 * localhost exception applies: no user exists yet and the client is on loopback). Resources are MongoDB's:
 * `{cluster: true}`, a database `{db, collection: ''}` or a namespace `{db, collection}`. `$backupCursor` and
 * `$backupCursorExtend` need `requirePrivilege(ctx, 'fsync', {cluster: true})`; the command gate below already
 * checks that for any aggregate whose pipeline names either stage (before the stage's options are parsed, as
 * mongod's LiteParsedPipeline does), so the stage calling it again is harmless.
 *
 * The gate (`checkCommandAuth`, called for every command by the node and by the mongos): with `--auth`, every
 * command except hello/isMaster, buildInfo, ping, saslStart, saslContinue, logout, connectionStatus and
 * listCommands needs an authenticated user (`13 Command <name> requires authentication`); the commands of
 * {@link commandPrivileges} need their privileges (roles.ts). A command not in that table (getMore, killCursors,
 * the session commands, createBackup, …) needs only authentication and checks anything further itself.
 *
 * Users authenticate with SCRAM-SHA-256 or SCRAM-SHA-1 (scram.ts), through saslStart/saslContinue or the driver's
 * speculative authentication in its handshake `hello`; one user per connection, as in mongod 6.0+. A node started with
 * `--keyFile` also has the internal user `__system@local` (internal.ts), as which members in other processes
 * authenticate to each other.
 */
import type { Document } from 'mongodb';
import { Binary, Long, ObjectId, Timestamp, UUID } from 'mongodb';
import { CommandError, ErrorCodes, type ConnectionContext } from '../../wire/index.ts';
import type { CommandContext } from '../types.ts';
import type { SimNode } from '../types.ts';
import { InternalUserStore, internalUserOf } from './internal.ts';
import { rolesAllow, type Resource, type RoleName } from './roles.ts';
import type { ScramConversation } from './scram.ts';
import { EngineUserStore, type UserStore } from './users.ts';
import type { UserName } from './user-name.ts';

export type { Resource, RoleName } from './roles.ts';
export type { UserName } from './user-name.ts';
export type { UserStore } from './users.ts';

/** The cluster resource. */
export const CLUSTER: Resource = { cluster: true };

/** What the gate needs from a process: whether auth is on, and where its users are. */
export interface AuthHost {
  readonly authEnabled: boolean;
  readonly users: UserStore;
}

/**
 * A node's auth host: `--auth` (or `--keyFile`, which implies it, as in mongod) from its options, users in its own
 * `admin.system.users`, plus the internal user `__system@local` with a key file (internal.ts).
 */
export function authHostOf(node: SimNode): AuthHost {
  const users = new EngineUserStore(() => node);
  const internal = internalUserOf(node);
  return {
    authEnabled: node.options.auth === true || node.options.keyFile !== undefined,
    users: internal ? new InternalUserStore(users, internal) : users,
  };
}

/** Per-connection authentication state (in the connection's state bag). */
export interface AuthState {
  user?: UserName;
  conversation?: ScramConversation;
}

export function authState(conn: ConnectionContext): AuthState {
  const bag = conn.state as Record<string, unknown>;
  let s = bag.auth as AuthState | undefined;
  if (!s) {
    s = {};
    bag.auth = s;
  }
  return s;
}

/** The user this connection authenticated as, if any. */
export function authenticatedUser(conn: ConnectionContext): UserName | undefined {
  return authState(conn).user;
}

/** The roles of the connection's user, read afresh (a changed user document applies at once). */
export function rolesOf(host: AuthHost, conn: ConnectionContext): RoleName[] {
  const user = authenticatedUser(conn);
  if (!user) return [];
  return host.users.find(user)?.roles ?? [];
}

function isLoopback(conn: ConnectionContext): boolean {
  const host = conn.remoteAddress.replace(/:\d+$/, '');
  return host === '127.0.0.1' || host === '::1' || host === '[::1]' || host === '::ffff:127.0.0.1' || host === 'localhost';
}

/**
 * mongod's localhost exception: with auth on and no user at all, a loopback client is not checked (so that it can
 * create the first user). It ends as soon as a user exists.
 */
export function usingLocalhostBypass(host: AuthHost, conn: ConnectionContext): boolean {
  return host.authEnabled && !authenticatedUser(conn) && isLoopback(conn) && host.users.list().length === 0;
}

/** Whether checks apply at all to this connection. */
function checksApply(host: AuthHost, conn: ConnectionContext): boolean {
  return host.authEnabled && !usingLocalhostBypass(host, conn);
}

/** Whether the connection's user holds `action` on `resource` (always true when checks do not apply). */
export function isAuthorized(host: AuthHost, conn: ConnectionContext, action: string, resource: Resource): boolean {
  if (!checksApply(host, conn)) return true;
  return rolesAllow(rolesOf(host, conn), action, resource);
}

/** mongod's reply to an authorization failure of a command. */
export function unauthorized(db: string, command: Document): CommandError {
  return new CommandError(ErrorCodes.Unauthorized, `not authorized on ${db} to execute command ${shellString(command)}`);
}

/**
 * The privilege check other parts of the simulator call (e.g. `$backupCursor`: `requirePrivilege(ctx, 'fsync',
 * CLUSTER)`). Throws 13 Unauthorized; a no-op without `--auth`.
 */
export function requirePrivilege(ctx: CommandContext, action: string, resource: Resource): void {
  const host = authHostOf(ctx.node);
  if (!checksApply(host, ctx.conn)) return;
  if (!authenticatedUser(ctx.conn)) {
    throw new CommandError(ErrorCodes.Unauthorized, `Command ${ctx.name} requires authentication`);
  }
  if (!rolesAllow(rolesOf(host, ctx.conn), action, resource)) throw unauthorized(ctx.db, ctx.command);
}

/** Commands mongod runs for a client that has not authenticated (`requiresAuth() == false`). */
export const NO_AUTH_COMMANDS: ReadonlySet<string> = new Set([
  'hello', 'isMaster', 'ismaster', 'buildInfo', 'buildinfo', 'ping', 'saslStart', 'saslContinue', 'authenticate',
  'logout', 'connectionStatus', 'listCommands', 'getnonce',
]);

const BACKUP_STAGES = new Set(['$backupCursor', '$backupCursorExtend']);

function collectionOf(command: Document, name: string): string | undefined {
  const v = command[name];
  return typeof v === 'string' ? v : undefined;
}

/**
 * The privileges a command needs, as mongod's `checkAuthForOperation` of each command asks for them; undefined:
 * authentication alone (the command checks anything further itself).
 */
export function commandPrivileges(name: string, db: string, command: Document): Array<[string, Resource]> | undefined {
  const nsRes = (): Resource => {
    const c = collectionOf(command, name);
    return c === undefined ? { db, collection: '' } : { db, collection: c };
  };
  switch (name) {
    case 'find':
    case 'count':
    case 'distinct':
      return [['find', nsRes()]];
    case 'aggregate': {
      const pipeline = Array.isArray(command.pipeline) ? (command.pipeline as Document[]) : [];
      const stages = pipeline.map((s) => (s && typeof s === 'object' ? (Object.keys(s)[0] ?? '') : ''));
      if (stages.some((s) => BACKUP_STAGES.has(s))) return [['fsync', CLUSTER]];
      return [['find', nsRes()]];
    }
    case 'insert':
      return [['insert', nsRes()]];
    case 'update':
      return [['update', nsRes()]];
    case 'delete':
      return [['remove', nsRes()]];
    case 'create':
      return [['createCollection', nsRes()]];
    case 'drop':
      return [['dropCollection', nsRes()]];
    case 'listCollections':
      return [['listCollections', { db, collection: '' }]];
    case 'getCmdLineOpts':
    case 'serverStatus':
    case 'getParameter':
    case 'setParameter':
    case 'shutdown':
    case 'replSetGetStatus':
    case 'replSetGetConfig':
    case 'listShards':
    case 'fsync':
    case 'appendOplogNote':
    case 'applyOps':
      return [[name, CLUSTER]];
    case 'replSetReconfig':
    case 'replSetInitiate':
      return [['replSetConfigure', CLUSTER]];
    case 'replSetStepDown':
    case 'replSetStepUp':
      return [['replSetStateChange', CLUSTER]];
    case 'replSetHeartbeat':
      // Members authenticate to each other as __system with the key file (internal.ts); no built-in role but
      // __system has the internal action, so a member without the right key cannot heartbeat an --auth member.
      return [['internal', CLUSTER]];
    case 'fsyncUnlock':
      return [['unlock', CLUSTER]];
    case 'killAllSessions':
    case 'killAllSessionsByPattern':
      return [['killAnySession', CLUSTER]];
    case 'createUser': {
      const roles = Array.isArray(command.roles) ? (command.roles as unknown[]) : [];
      const grants: Array<[string, Resource]> = roles.map((r) => {
        const roleDb = typeof r === 'object' && r !== null && typeof (r as Document).db === 'string' ? ((r as Document).db as string) : db;
        return ['grantRole', { db: roleDb, collection: '' }];
      });
      return [['createUser', { db, collection: '' }], ...grants];
    }
    case 'balancerStart':
    case 'balancerStop':
      return [['update', { db: 'config', collection: 'settings' }]];
    case 'balancerStatus':
      return [['find', { db: 'config', collection: 'settings' }]];
    default:
      return undefined;
  }
}

/**
 * The command gate: 13 for an unauthenticated client (`Command <name> requires authentication`) or a missing
 * privilege (`not authorized on <db> to execute command …`). Nothing without `--auth`.
 */
export function checkCommandAuth(host: AuthHost, name: string, db: string, command: Document, conn: ConnectionContext, options: { backupStages?: boolean } = {}): void {
  if (NO_AUTH_COMMANDS.has(name) || !checksApply(host, conn)) return;
  if (!authenticatedUser(conn)) throw new CommandError(ErrorCodes.Unauthorized, `Command ${name} requires authentication`);
  let needed = commandPrivileges(name, db, command);
  // Where the backup stages do not exist (community flavour, mongos) the pipeline fails to parse (40324) first.
  if (name === 'aggregate' && options.backupStages === false && needed?.[0]?.[0] === 'fsync') needed = [];
  if (!needed) return;
  const roles = rolesOf(host, conn);
  for (const [action, resource] of needed) if (!rolesAllow(roles, action, resource)) throw unauthorized(db, command);
}

/** A value as mongod's `BSONObj::toString()` prints it (the shell-like form of its error messages). */
export function shellString(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(v);
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Long.isLong(v)) return v.toString();
  if (v instanceof Timestamp) return `Timestamp(${v.high}, ${v.low})`;
  if (v instanceof ObjectId) return `ObjectId('${v.toHexString()}')`;
  if (v instanceof Date) return `new Date(${v.getTime()})`;
  if (v instanceof UUID || (v instanceof Binary && v.sub_type === Binary.SUBTYPE_UUID && v.position === 16)) {
    return `UUID("${new UUID(Buffer.from((v as Binary).buffer.subarray(0, 16))).toHexString(true)}")`;
  }
  if (v instanceof Binary) return `BinData(${v.sub_type}, ${Buffer.from(v.buffer.subarray(0, v.position)).toString('hex').toUpperCase()})`;
  if (Array.isArray(v)) return v.length === 0 ? '[]' : `[ ${v.map(shellString).join(', ')} ]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as Document);
    return entries.length === 0 ? '{}' : `{ ${entries.map(([k, x]) => `${k}: ${shellString(x)}`).join(', ')} }`;
  }
  return String(v);
}
