/**
 * Session commands (sessions.ts has the model): `startSession`, `refreshSessions`, `endSessions` (cursors go at the
 * next refresh), `killSessions` (cursors go at once; another user's session needs its `uid` and killAnySession),
 * `killAllSessions` (killAnySession; `[]` = every session, or `[{user, db}]`).
 */
import type { Document } from 'mongodb';
import { UUID } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import { authenticatedUser } from '../auth/index.ts';
import { sessionUid } from '../auth/user-name.ts';
import type { LogicalSessionId } from '../session-cache.ts';
import { makeSessionId, parseSessionDoc, sessionTimeoutMs } from '../sessions.ts';
import type { CommandContext, CommandImpl } from '../types.ts';

/** mongod refuses more than this many sessions in one endSessions / killSessions / refreshSessions. */
const MAX_SESSIONS = 10_000;

function sessionList(ctx: CommandContext, allowSpoof: readonly string[] = []): LogicalSessionId[] {
  const list: unknown = ctx.command[ctx.name];
  if (!Array.isArray(list)) {
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field '${ctx.name}' is the wrong type, expected type 'array'`);
  }
  if (list.length > MAX_SESSIONS) throw new CommandError(ErrorCodes.BadValue, `${ctx.name} has too many sessions (${list.length} > ${MAX_SESSIONS})`);
  return list.map((v: unknown, i) => makeSessionId(ctx, parseSessionDoc(v, `${ctx.name}.${i}`), allowSpoof));
}

export const startSession: CommandImpl = (ctx) => {
  const id = new UUID();
  const lsid = makeSessionId(ctx, { id: id.toHexString(false) });
  ctx.node.sessions.vivify(lsid, authenticatedUser(ctx.conn));
  return { id: { id }, timeoutMinutes: Math.max(1, Math.ceil(sessionTimeoutMs(ctx.node.params) / 60_000)) };
};

export const refreshSessions: CommandImpl = (ctx) => {
  const user = authenticatedUser(ctx.conn);
  for (const s of sessionList(ctx)) ctx.node.sessions.vivify(s, user);
  return {};
};

export const endSessions: CommandImpl = (ctx) => {
  ctx.node.sessions.end(sessionList(ctx));
  return {};
};

export const killSessions: CommandImpl = (ctx) => {
  const lsids = sessionList(ctx, ['killAnySession']);
  const sessions = ctx.node.sessions;
  if (lsids.length === 0) {
    // mongod's makeSessionFilterForAuthenticatedUsers: every session of the logged-in user (none without auth).
    const user = authenticatedUser(ctx.conn);
    if (user) {
      const uid = sessionUid(user).toString('base64');
      sessions.killCursors((s) => s.uid === uid);
    }
    return {};
  }
  const wanted = new Set(lsids.map((s) => `${s.id}|${s.uid}`));
  sessions.killCursors((s) => wanted.has(`${s.id}|${s.uid}`));
  return {};
};

export const killAllSessions: CommandImpl = (ctx) => {
  const users: unknown = ctx.command.killAllSessions;
  if (!Array.isArray(users)) throw new CommandError(ErrorCodes.TypeMismatch, "BSON field 'killAllSessions' is the wrong type, expected type 'array'");
  if (users.length === 0) {
    ctx.node.sessions.killCursors(() => true);
    return {};
  }
  const uids = new Set(
    users.map((u: unknown) => {
      const d = u as Document;
      if (!d || typeof d.user !== 'string' || typeof d.db !== 'string') {
        throw new CommandError(ErrorCodes.IDLFailedToParse, "BSON field 'KillAllSessionsUser.user' is missing but a required field");
      }
      return sessionUid({ user: d.user, db: d.db }).toString('base64');
    }),
  );
  ctx.node.sessions.killCursors((s) => uids.has(s.uid));
  return {};
};

export const sessionCommands: Record<string, CommandImpl> = {
  startSession,
  refreshSessions,
  endSessions,
  killSessions,
  killAllSessions,
};
