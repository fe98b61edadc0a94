/**
 * Logical sessions of one node, after mongod 7.0's LogicalSessionCache: every command's `lsid` is parsed and
 * "vivified" (its record created or its last use refreshed); a session is `{id: UUID, uid: SHA-256 of "user@db"}`
 * (of "" without auth), so the same UUID sent by two users is two sessions.
 *
 * - Cursors remember the session they were opened in (`lsid`/`uid`/`user` on the cursor, filled in by the node
 *   for every command that opens one, see {@link bindOpenedCursor}), and getMore enforces the binding
 *   ({@link checkGetMore}): without auth 50736 / 50737 / 50738; with auth mongod's pinCursor check answers first,
 *   13 "Cursor session id (…) is not the same as the operation context's session id (…)", then 13 "cursor id N was
 *   not created by the authenticated user" for another user's session-less cursor.
 * - `endSessions` marks sessions ended; their cursors are killed at the next refresh, as mongod's
 *   `LogicalSessionCacheImpl::_refresh` does. `killSessions` kills the sessions' cursors at once.
 * - The refresh (every `logicalSessionRefreshMillis`, mongod's 5 min unless the launcher shortens it; none with
 *   `disableLogicalSessionCacheRefresh`) also kills the cursors of sessions idle longer than the session timeout
 *   (`localLogicalSessionTimeoutMinutes`, or the sim-only `simLogicalSessionTimeoutMs` when non-zero): mongod's TTL
 *   on `config.system.sessions` followed by the refresh's reap, collapsed into one step. A cursor's effective idle
 *   life is therefore between the timeout and the timeout plus one refresh interval. An operation running in a
 *   session (e.g. a waiting `$backupCursorExtend`) keeps it alive, and its end counts as a use.
 */
import type { Document } from 'mongodb';
import { Binary, type Long } from 'mongodb';
import { CommandError, ErrorCodes } from '../wire/index.ts';
import { authenticatedUser, authHostOf, isAuthorized, CLUSTER } from './auth/index.ts';
import { displayName, sessionUid } from './auth/user-name.ts';
import type { CursorManager } from './cursors.ts';
import { cursorSession, type LogicalSessionId } from './session-cache.ts';
import type { CommandContext } from './types.ts';

type Cursor = ReturnType<CursorManager['get']>;

function dashed(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A session as mongod prints it in messages: `<uuid> - <uid base64> -  - ` (txnNumber and txnUUID empty). */
export function describeSession(s: LogicalSessionId): string {
  return `${dashed(s.id)} - ${s.uid} -  - `;
}

function bsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Binary) return 'binData';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'double';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'object') return 'object';
  return typeof v;
}

const BINARY_SUBTYPE_NAMES: Record<number, string> = { 0: 'general', 1: 'function', 2: 'binary', 3: 'uuid_old', 4: 'UUID', 5: 'MD5', 6: 'encrypt', 7: 'column', 8: 'sensitive', 128: 'user' };

/** Parses `lsid: {id: UUID, uid?: BinData}` with mongod's (IDL) errors; undefined when absent. */
export function parseLsid(command: Document): { id: string; uid?: Buffer } | undefined {
  return command.lsid === undefined ? undefined : parseSessionDoc(command.lsid, 'OperationSessionInfo.lsid');
}

/** Parses one `{id: UUID, uid?}` document (an lsid, or an element of endSessions / killSessions). */
export function parseSessionDoc(value: unknown, field: string): { id: string; uid?: Buffer } {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Binary) {
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field '${field}' is the wrong type '${bsonTypeName(value)}', expected type 'object'`);
  }
  const id = (value as Document).id as unknown;
  if (id === undefined) throw new CommandError(ErrorCodes.IDLFailedToParse, `BSON field '${field}.id' is missing but a required field`);
  if (!(id instanceof Binary)) {
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field '${field}.id' is the wrong type '${bsonTypeName(id)}', expected type 'binData'`);
  }
  if (id.sub_type !== Binary.SUBTYPE_UUID) {
    const sub = BINARY_SUBTYPE_NAMES[id.sub_type] ?? String(id.sub_type);
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field '${field}.id' is the wrong binData type '${sub}', expected type 'UUID'`);
  }
  if (id.position !== 16) throw new CommandError(207, 'uuid must be a 16-byte binary field with UUID (4) subtype', { codeName: 'InvalidUUID' });
  const uid = (value as Document).uid as unknown;
  return {
    id: Buffer.from(id.buffer.subarray(0, 16)).toString('hex'),
    ...(uid instanceof Binary ? { uid: Buffer.from(uid.buffer.subarray(0, uid.position)) } : {}),
  };
}

/** The idle life of a session on a node: `simLogicalSessionTimeoutMs` when set, else the minutes parameter. */
export function sessionTimeoutMs(params: { get(name: 'simLogicalSessionTimeoutMs' | 'localLogicalSessionTimeoutMinutes'): boolean | number }): number {
  const ms = params.get('simLogicalSessionTimeoutMs') as number;
  return ms > 0 ? ms : (params.get('localLogicalSessionTimeoutMinutes') as number) * 60_000;
}

/**
 * The full session id of a parsed lsid for the connection's user (mongod's `makeLogicalSessionId`): the uid is the
 * user's digest; a client-supplied uid must be that digest unless the user may spoof it (`allowSpoof`, e.g.
 * killAnySession for killSessions, or impersonate), else 13.
 */
export function makeSessionId(ctx: CommandContext, from: { id: string; uid?: Buffer }, allowSpoof: readonly string[] = []): LogicalSessionId {
  const user = authenticatedUser(ctx.conn);
  const own = sessionUid(user);
  if (from.uid !== undefined && !from.uid.equals(own)) {
    const host = authHostOf(ctx.node);
    const allowed = [...allowSpoof, 'impersonate'].some((a) => isAuthorized(host, ctx.conn, a, CLUSTER));
    if (!allowed) throw new CommandError(ErrorCodes.Unauthorized, 'Unauthorized to set user digest in LogicalSessionId');
    return { id: from.id, uid: from.uid.toString('base64') };
  }
  return { id: from.id, uid: own.toString('base64') };
}

/** The session a command runs in, if it carries an lsid. */
export function sessionOf(ctx: CommandContext): LogicalSessionId | undefined {
  const parsed = parseLsid(ctx.command);
  return parsed ? makeSessionId(ctx, parsed) : undefined;
}

function sameSession(a: LogicalSessionId | undefined, b: LogicalSessionId | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.id === b.id && a.uid === b.uid);
}

/**
 * The session binding of getMore (docs/psmdb-behaviour.md section 3), in mongod's order: pinCursor's session check
 * when auth is on (13), validateLSID (50736 / 50737 / 50738), the cursor's owner (13), the namespace (13).
 */
export function checkGetMore(ctx: CommandContext, cursor: Cursor): void {
  const host = authHostOf(ctx.node);
  const user = authenticatedUser(ctx.conn);
  const op = sessionOf(ctx);
  const cur = cursorSession(cursor);
  const id = cursor.id.toString();
  if (host.authEnabled && user && !sameSession(cur, op) && !isAuthorized(host, ctx.conn, 'impersonate', CLUSTER)) {
    throw new CommandError(
      ErrorCodes.Unauthorized,
      `Cursor session id (${cur ? describeSession(cur) : 'none'}) is not the same as the operation context's session id (${op ? describeSession(op) : 'none'})`,
    );
  }
  if (op && !cur) throw new CommandError(50736, `Cannot run getMore on cursor ${id}, which was not created in a session, in session ${describeSession(op)}`);
  if (cur && !op) throw new CommandError(50737, `Cannot run getMore on cursor ${id}, which was created in session ${describeSession(cur)}, without an lsid`);
  if (cur && op && !sameSession(cur, op)) {
    throw new CommandError(50738, `Cannot run getMore on cursor ${id}, which was created in session ${describeSession(cur)}, in session ${describeSession(op)}`);
  }
  if (host.authEnabled && (cursor.user ?? undefined) !== (user ? displayName(user) : undefined)) {
    throw new CommandError(ErrorCodes.Unauthorized, `cursor id ${id} was not created by the authenticated user`);
  }
  const collection = ctx.command.collection;
  if (typeof collection === 'string') {
    const ns = `${ctx.db}.${collection}`;
    if (ns !== cursor.ns) {
      throw new CommandError(ErrorCodes.Unauthorized, `Requested getMore on namespace '${ns}', but cursor belongs to a different namespace ${cursor.ns}`);
    }
  }
}

/** Binds a cursor a command just opened to the command's session and user (mongod's ClientCursor does). */
export function bindOpenedCursor(ctx: CommandContext, reply: Document): void {
  const c = reply.cursor as Document | undefined;
  if (!c || !Array.isArray(c.firstBatch) || c.id === undefined) return;
  let cursor: Cursor;
  try {
    cursor = ctx.node.cursors.get(c.id as Long);
  } catch {
    return; // exhausted (id 0) or already gone
  }
  const s = sessionOf(ctx);
  const user = authenticatedUser(ctx.conn);
  cursor.lsid = s?.id;
  cursor.uid = s?.uid;
  cursor.user = user ? displayName(user) : undefined;
}
