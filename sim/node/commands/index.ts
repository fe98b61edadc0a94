/** The command table: name → implementation. Names are matched as sent, then lower-cased (isMaster/ismaster). */
import * as admin from './admin.ts';
import * as backup from '../backup/index.ts';
import { aggregate } from './aggregate.ts';
import { applyOps } from './apply-ops.ts';
import { authCommands } from './auth.ts';
import type { CommandImpl } from '../types.ts';
import * as crud from './crud.ts';
import { replSetHeartbeat } from '../heartbeat.ts';
import { hello } from './hello.ts';
import * as repl from './repl.ts';
import { sessionCommands } from './sessions.ts';
import { abortTransaction, commitTransaction, prepareTransaction } from '../transactions.ts';

export const commandTable: Record<string, CommandImpl> = {
  hello,
  isMaster: hello,
  ismaster: hello,
  buildInfo: admin.buildInfo,
  buildinfo: admin.buildInfo,
  ping: admin.ping,
  getCmdLineOpts: admin.getCmdLineOpts,
  serverStatus: admin.serverStatus,
  getParameter: admin.getParameter,
  setParameter: admin.setParameter,
  shutdown: admin.shutdown,
  listDatabases: admin.listDatabases,
  // The backup state machine (../backup/): fsync lock, hot backup, fail points; the stages go through aggregate.
  fsync: backup.fsync,
  fsyncUnlock: backup.fsyncUnlock,
  createBackup: backup.createBackup,
  configureFailPoint: backup.configureFailPoint,
  // Sessions (sessions.ts) and authentication (auth.ts): startSession, refreshSessions, endSessions, killSessions,
  // killAllSessions; saslStart, saslContinue, logout, connectionStatus, createUser, usersInfo.
  ...sessionCommands,
  ...authCommands,
  find: crud.find,
  count: crud.count,
  getMore: crud.getMore,
  killCursors: crud.killCursors,
  insert: crud.insert,
  update: crud.update,
  delete: crud.del,
  listCollections: crud.listCollections,
  create: crud.create,
  drop: crud.drop,
  aggregate,
  replSetGetStatus: repl.replSetGetStatus,
  replSetGetConfig: repl.replSetGetConfig,
  replSetReconfig: repl.replSetReconfig,
  replSetInitiate: repl.replSetInitiate,
  replSetStepDown: repl.replSetStepDown,
  replSetStepUp: repl.replSetStepUp,
  appendOplogNote: repl.appendOplogNote,
  applyOps,
  commitTransaction,
  abortTransaction,
  prepareTransaction,
  // Between members of different processes (../heartbeat.ts): config delivery, state and optimes.
  replSetHeartbeat,
};
