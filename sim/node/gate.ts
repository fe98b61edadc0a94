/**
 * What a node runs around every command, in mongod's order: the auth gate (auth/index.ts), the session of the
 * command (parsed, validated, vivified), getMore's session binding and killCursors' ownership check before the
 * command; after it, the handshake `hello`'s auth fields and the binding of a newly opened cursor to the command's
 * session and user.
 */
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import {
  authenticatedUser,
  authHostOf,
  checkCommandAuth,
  isAuthorized,
  NO_AUTH_COMMANDS,
  unauthorized,
  usingLocalhostBypass,
} from './auth/index.ts';
import { displayName } from './auth/user-name.ts';
import { helloAuthFields } from './commands/auth.ts';
import type { CommandContext } from './types.ts';
import type { LogicalSessionId } from './session-cache.ts';
import { bindOpenedCursor, checkGetMore, makeSessionId, parseLsid } from './sessions.ts';
import { enterTransaction } from './transactions.ts';

/** Commands that do not run in the session they name (mongod: `attachLogicalSessionsToOpCtx() == false`). */
const SESSION_COMMANDS = new Set(['startSession', 'refreshSessions', 'endSessions', 'killSessions', 'killAllSessions', 'killAllSessionsByPattern']);
const HELLO = new Set(['hello', 'isMaster', 'ismaster']);

/** Before the command runs: throws the error mongod would answer before running it. */
export function beforeCommand(ctx: CommandContext): void {
  const { node, name, db, command, conn } = ctx;
  const host = authHostOf(node);
  checkCommandAuth(host, name, db, command, conn, { backupStages: node.flavor === 'psmdb' && node.backup !== undefined });
  // mongod's initializeOperationSessionInfo: the lsid is always parsed; it is ignored for an unauthenticated client
  // under auth (no uid to give it) and for the session commands (they do not run in the session they name).
  const parsed = parseLsid(command);
  const unauthenticated = host.authEnabled && !authenticatedUser(conn);
  if (parsed && !unauthenticated && !SESSION_COMMANDS.has(name)) {
    const session = makeSessionId(ctx, parsed);
    node.sessions.vivify(session, authenticatedUser(conn));
    // A running operation keeps its session alive (mongod's refresh counts the sessions of running ops as active),
    // e.g. a $backupCursorExtend waiting for the commit point.
    node.sessions.enter(session);
    running.set(ctx, session);
  }
  if (NO_AUTH_COMMANDS.has(name)) return;
  // The transaction the command runs in (transactions.ts), checked before it runs.
  enterTransaction(ctx, running.get(ctx));
  if (name === 'getMore' && Long.isLong(command.getMore)) {
    let cursor;
    try {
      cursor = node.cursors.get(command.getMore);
    } catch {
      return; // the command answers 43 CursorNotFound
    }
    checkGetMore(ctx, cursor);
  }
  if (name === 'killCursors' && host.authEnabled && !usingLocalhostBypass(host, conn) && Array.isArray(command.cursors)) {
    // mongod's checkAuthForKillCursors: your own cursors, or killAnyCursor on the cursor's namespace.
    const me = authenticatedUser(conn);
    for (const id of command.cursors as unknown[]) {
      if (!Long.isLong(id)) continue;
      let cursor;
      try {
        cursor = node.cursors.get(id);
      } catch {
        continue;
      }
      if (cursor.user === (me ? displayName(me) : undefined)) continue;
      const dot = cursor.ns.indexOf('.');
      const coll = cursor.ns.slice(dot + 1);
      const target = coll.startsWith('$cmd.listCollections') ? { db: cursor.ns.slice(0, dot), collection: '' } : { db: cursor.ns.slice(0, dot), collection: coll };
      if (!isAuthorized(host, conn, 'killAnyCursor', target)) throw unauthorized(db, command);
    }
  }
}

const running = new WeakMap<CommandContext, LogicalSessionId>();

/** When the command has finished, successfully or not. */
export function commandDone(ctx: CommandContext): void {
  const session = running.get(ctx);
  if (session) ctx.node.sessions.leave(session);
  running.delete(ctx);
}

/** After the command succeeded: returns the reply to send. */
export function afterCommand(ctx: CommandContext, reply: Document): Document {
  if (HELLO.has(ctx.name)) {
    const extra = helloAuthFields(authHostOf(ctx.node), ctx.command, ctx.conn);
    return Object.keys(extra).length ? { ...reply, ...extra } : reply;
  }
  bindOpenedCursor(ctx, reply);
  return reply;
}
