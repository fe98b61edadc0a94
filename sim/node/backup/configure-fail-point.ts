/**
 * `configureFailPoint`, mongod's own test command, sets the fail points of fail-points.ts:
 * `{configureFailPoint: <name>, mode: 'alwaysOn' | 'off' | {times: n} | {skip: n}, data?}` on `admin`; the reply is
 * `{count: <times the point was entered before>}`. A real mongod registers that command only with
 * `enableTestCommands`; the simulator always does.
 */
import type { Document } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { CommandImpl } from '../types.ts';
import { isFailPoint } from './fail-points.ts';

/** `configureFailPoint` (admin only). */
export const configureFailPoint: CommandImpl = ({ node, db, command }) => {
  if (db !== 'admin') throw new CommandError(ErrorCodes.Unauthorized, 'configureFailPoint may only be run against the admin database.');
  const name = command.configureFailPoint;
  if (typeof name !== 'string') throw new CommandError(ErrorCodes.TypeMismatch, "'configureFailPoint' must be a string");
  // mongod answers an unknown name with a plain errmsg, as its errmsg-style commands do.
  if (!isFailPoint(name)) return { ok: 0, errmsg: `${name} not found` };
  if (!('mode' in command)) throw new CommandError(ErrorCodes.BadValue, "'mode' is missing");
  const count = node.backup!.failPoints.configure(name, command.mode, (command.data as Document | undefined) ?? {});
  return { count };
};
