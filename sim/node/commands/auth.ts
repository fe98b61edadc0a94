/**
 * Authentication and user commands: `saslStart` / `saslContinue` (SCRAM-SHA-256 and SCRAM-SHA-1), the driver's
 * speculative authentication and `saslSupportedMechs` in the handshake `hello`, `logout`, `connectionStatus`,
 * `createUser`, `usersInfo` (minimal). Written against an {@link AuthHost} so the mongos serves the same commands
 * with the config servers' users.
 */
import type { Document } from 'mongodb';
import { Binary } from 'mongodb';
import { CommandError, ErrorCodes, type ConnectionContext } from '../../wire/index.ts';
import {
  authenticatedUser,
  authHostOf,
  authState,
  isAuthorized,
  rolesOf,
  unauthorized,
  usingLocalhostBypass,
  type AuthHost,
} from '../auth/index.ts';
import { privilegeDocs } from '../auth/roles.ts';
import { authenticationFailed, MECHANISMS, parseClientFirst, ScramConversation, type Mechanism } from '../auth/scram.ts';
import { createUser as storeUser, parseRoles } from '../auth/users.ts';
import type { UserName } from '../auth/user-name.ts';
import type { CommandImpl } from '../types.ts';

function payloadBytes(v: unknown): Buffer {
  if (v instanceof Binary) return Buffer.from(v.buffer.subarray(0, v.position));
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return Buffer.from(v);
  throw new CommandError(ErrorCodes.TypeMismatch, "BSON field 'saslStart.payload' is the wrong type, expected type 'binData'");
}

/** Starts a SCRAM conversation on `db` (saslStart, or the `speculativeAuthenticate` of hello). */
export function saslStart(host: AuthHost, db: string, command: Document, conn: ConnectionContext): Document {
  const mechanism = command.mechanism;
  if (typeof mechanism !== 'string') throw new CommandError(ErrorCodes.IDLFailedToParse, "BSON field 'saslStart.mechanism' is missing but a required field");
  if (!MECHANISMS.includes(mechanism as Mechanism)) {
    throw new CommandError(334, `Received authentication for mechanism ${mechanism} which is not enabled`, { codeName: 'MechanismUnavailable' });
  }
  const state = authState(conn);
  state.conversation = undefined;
  const first = parseClientFirst(payloadBytes(command.payload));
  const name: UserName = { user: first.user, db };
  const doc = host.users.find(name);
  // mongod's first SCRAM step fails for an unknown user (UserNotFound, answered as 18 "Authentication failed.").
  if (!doc) throw authenticationFailed();
  const credential = doc.credentials[mechanism as Mechanism];
  if (!credential) {
    throw new CommandError(334, `Unable to use ${mechanism} based authentication for user without any ${mechanism} credentials registered`, { codeName: 'MechanismUnavailable' });
  }
  const options = command.options as Document | undefined;
  const conversation = new ScramConversation(
    mechanism as Mechanism,
    name,
    credential,
    first.bare,
    first.nonce,
    options?.skipEmptyExchange === true,
  );
  state.conversation = conversation;
  return { conversationId: 1, done: false, payload: new Binary(conversation.first()) };
}

/** Continues the connection's conversation; when it is done, the connection is authenticated as its user. */
export function saslContinue(command: Document, conn: ConnectionContext): Document {
  const state = authState(conn);
  const conversation = state.conversation;
  if (!conversation || Number(command.conversationId) !== 1) {
    throw new CommandError(ErrorCodes.ProtocolError, 'No SASL session state found');
  }
  let step: { payload: Buffer; done: boolean };
  try {
    step = conversation.next(payloadBytes(command.payload));
  } catch (e) {
    state.conversation = undefined;
    throw e;
  }
  if (step.done) {
    state.conversation = undefined;
    state.user = conversation.user;
  }
  return { conversationId: 1, done: step.done, payload: new Binary(step.payload) };
}

/** Fields the handshake `hello` gains: `saslSupportedMechs` for a named user, `speculativeAuthenticate`. */
export function helloAuthFields(host: AuthHost, command: Document, conn: ConnectionContext): Document {
  const out: Document = {};
  const mechs = command.saslSupportedMechs;
  if (typeof mechs === 'string') {
    const dot = mechs.indexOf('.');
    const doc = dot > 0 ? host.users.find({ db: mechs.slice(0, dot), user: mechs.slice(dot + 1) }) : undefined;
    if (doc) out.saslSupportedMechs = MECHANISMS.filter((m) => doc.credentials[m] !== undefined);
  }
  const spec = command.speculativeAuthenticate as Document | undefined;
  if (spec && typeof spec === 'object' && spec.saslStart !== undefined) {
    try {
      out.speculativeAuthenticate = saslStart(host, typeof spec.db === 'string' ? spec.db : 'admin', spec, conn);
    } catch {
      // mongod leaves the field out; the driver then runs saslStart itself and sees the real error.
    }
  }
  return out;
}

export function logout(conn: ConnectionContext): Document {
  const state = authState(conn);
  state.user = undefined;
  state.conversation = undefined;
  return {};
}

export function connectionStatus(host: AuthHost, command: Document, conn: ConnectionContext): Document {
  const user = authenticatedUser(conn);
  const roles = rolesOf(host, conn);
  return {
    authInfo: {
      authenticatedUsers: user ? [{ user: user.user, db: user.db }] : [],
      authenticatedUserRoles: roles.map((r) => ({ role: r.role, db: r.db })),
      ...(command.showPrivileges === true ? { authenticatedUserPrivileges: privilegeDocs(roles) } : {}),
    },
  };
}

export function createUser(host: AuthHost, db: string, command: Document): Document {
  const user = command.createUser;
  if (typeof user !== 'string' || user === '') throw new CommandError(ErrorCodes.BadValue, 'User document needs \'user\' field to be a non-empty string');
  if (db === '$external') throw new CommandError(ErrorCodes.BadValue, 'The simulator has no $external users');
  const pwd = command.pwd;
  if (typeof pwd !== 'string') {
    throw new CommandError(ErrorCodes.BadValue, "Must provide a 'pwd' field for all user documents, except those with '$external' as the user's source db");
  }
  if (pwd === '') throw new CommandError(ErrorCodes.BadValue, 'Password cannot be empty');
  if (command.roles === undefined) throw new CommandError(ErrorCodes.IDLFailedToParse, "BSON field 'createUser.roles' is missing but a required field");
  const roles = parseRoles(command.roles, db);
  let mechanisms: Mechanism[] | undefined;
  if (command.mechanisms !== undefined) {
    if (!Array.isArray(command.mechanisms) || command.mechanisms.length === 0) {
      throw new CommandError(ErrorCodes.BadValue, 'mechanisms field must not be empty');
    }
    mechanisms = (command.mechanisms as unknown[]).map((m) => {
      if (!MECHANISMS.includes(m as Mechanism)) throw new CommandError(ErrorCodes.BadValue, `Unknown auth mechanism '${String(m)}'`);
      return m as Mechanism;
    });
  }
  storeUser(host.users, { user, db }, pwd, roles, mechanisms, command.customData as Document | undefined);
  return {};
}

/** `usersInfo`: one name, `{user, db}`, a list of them, or `1` (every user of the database). */
export function usersInfo(host: AuthHost, db: string, command: Document, conn: ConnectionContext): Document {
  const arg: unknown = command.usersInfo;
  const me = authenticatedUser(conn);
  const toName = (v: unknown): UserName => {
    if (typeof v === 'string') return { user: v, db };
    if (v && typeof v === 'object' && typeof (v as Document).user === 'string' && typeof (v as Document).db === 'string') {
      return { user: (v as Document).user as string, db: (v as Document).db as string };
    }
    throw new CommandError(ErrorCodes.BadValue, 'User name must be either a string or an object with user and db fields');
  };
  const checksOn = host.authEnabled && !usingLocalhostBypass(host, conn);
  const mayView = (targetDb: string) => !checksOn || isAuthorized(host, conn, 'viewUser', { db: targetDb, collection: '' });
  let docs;
  if (arg === 1 || arg === true || (typeof arg === 'number' && arg === 1)) {
    if (!mayView(db)) throw unauthorized(db, command);
    docs = host.users.list(db);
  } else {
    const names = (Array.isArray(arg) ? arg : [arg]).map(toName);
    for (const n of names) {
      const self = me !== undefined && me.user === n.user && me.db === n.db;
      if (!self && !mayView(n.db)) throw unauthorized(db, command);
    }
    docs = names.map((n) => host.users.find(n)).filter((d) => d !== undefined);
  }
  return {
    users: docs.map((d) => ({
      _id: d._id,
      userId: d.userId,
      user: d.user,
      db: d.db,
      ...(d.customData ? { customData: d.customData } : {}),
      roles: d.roles.map((r) => ({ role: r.role, db: r.db })),
      ...(command.showCredentials === true ? { credentials: d.credentials } : {}),
      mechanisms: MECHANISMS.filter((m) => d.credentials[m] !== undefined),
    })),
  };
}

/** The same commands for any process (the mongos calls it); undefined when `name` is not one of them. */
export function runAuthCommand(host: AuthHost, name: string, db: string, command: Document, conn: ConnectionContext): Document | undefined {
  switch (name) {
    case 'saslStart':
      return saslStart(host, db, command, conn);
    case 'saslContinue':
      return saslContinue(command, conn);
    case 'logout':
      return logout(conn);
    case 'connectionStatus':
      return connectionStatus(host, command, conn);
    case 'createUser':
      return createUser(host, db, command);
    case 'usersInfo':
      return usersInfo(host, db, command, conn);
    default:
      return undefined;
  }
}

const onNode =
  (name: string): CommandImpl =>
  (ctx) =>
    runAuthCommand(authHostOf(ctx.node), name, ctx.db, ctx.command, ctx.conn)!;

/** Entries of the node's command table. */
export const authCommands: Record<string, CommandImpl> = Object.fromEntries(
  ['saslStart', 'saslContinue', 'logout', 'connectionStatus', 'createUser', 'usersInfo'].map((n) => [n, onNode(n)]),
);
