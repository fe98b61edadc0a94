/** Replica-set commands: status, config, reconfig, initiate, step-down and step-up. */
import type { Document } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { CommandImpl } from '../types.ts';

function needRs(ctx: Parameters<CommandImpl>[0]) {
  const rs = ctx.node.rs;
  if (!rs) {
    if (ctx.node.options.replSet) throw new CommandError(ErrorCodes.NotYetInitialized, 'no replset config has been received');
    throw new CommandError(76, 'not running with --replSet', { codeName: 'NoReplicationEnabled' });
  }
  return rs;
}

export const replSetGetStatus: CommandImpl = (ctx) => needRs(ctx).status(ctx.node);

export const replSetGetConfig: CommandImpl = (ctx) => {
  const rs = needRs(ctx);
  return { config: { ...rs.config, ...(rs.config.configsvr ? {} : {}) } };
};

export const replSetReconfig: CommandImpl = (ctx) => {
  const rs = needRs(ctx);
  if (ctx.node.state !== 'PRIMARY' && ctx.command.force !== true) throw new CommandError(ErrorCodes.NotWritablePrimary, 'replSetReconfig should only be run on a writable PRIMARY');
  rs.reconfig(ctx.command.replSetReconfig as Document, ctx.command.force === true);
  return {};
};

/** A number of seconds as mongod reads it from a command field (`fallback` when absent or not a number). */
function secs(value: unknown, fallback: number): number {
  const n = typeof value === 'number' ? value : value !== null && typeof value === 'object' && 'toNumber' in value ? (value as { toNumber(): number }).toNumber() : NaN;
  return Number.isFinite(n) ? n : fallback;
}

/**
 * `replSetStepDown: <stepDownSecs>` with `secondaryCatchUpPeriodSecs` (default 10) and `force` (mongod's
 * CmdReplSetStepDown): a non-number period means 60 s; the period must not be shorter than the catch-up period.
 */
export const replSetStepDown: CommandImpl = async (ctx) => {
  const rs = needRs(ctx);
  const stepDownSecs = secs(ctx.command.replSetStepDown, 60) || 60;
  const catchUpSecs = secs(ctx.command.secondaryCatchUpPeriodSecs, 10);
  if (catchUpSecs < 0) throw new CommandError(ErrorCodes.BadValue, 'secondaryCatchUpPeriodSecs must be a non-negative number');
  if (stepDownSecs < catchUpSecs) throw new CommandError(ErrorCodes.BadValue, 'stepdown period must be longer than secondaryCatchUpPeriodSecs');
  await rs.stepDown(ctx.node, { stepDownSecs, catchUpSecs, force: ctx.command.force === true });
  return {};
};

/** `replSetStepUp`: this secondary runs for election at once (CommandFailed when it cannot win); OK on the primary. */
export const replSetStepUp: CommandImpl = (ctx) => {
  needRs(ctx).stepUp(ctx.node);
  return {};
};

export const replSetInitiate: CommandImpl = async (ctx) => {
  if (!ctx.node.options.replSet) throw new CommandError(76, 'This node was not started with replication enabled.', { codeName: 'NoReplicationEnabled' });
  if (ctx.node.rs) throw new CommandError(23, 'already initialized', { codeName: 'AlreadyInitialized' });
  if (!ctx.node.initiate) throw new CommandError(ErrorCodes.CommandNotSupported, 'replSetInitiate is not available on this node');
  await ctx.node.initiate(ctx.command.replSetInitiate as Document | undefined);
  return {};
};

/**
 * `appendOplogNote` on a replica-set primary: one no-op oplog entry (`op: 'n'`) carrying `data`, as the periodic
 * no-op writer writes them. Privilege `appendOplogNote` on the cluster (`backup`, `clusterManager`). A secondary
 * refuses it (NotWritablePrimary), a standalone too (NoReplicationEnabled).
 */
export const appendOplogNote: CommandImpl = (ctx) => {
  const rs = needRs(ctx);
  const data = ctx.command.data;
  if (data === undefined) throw new CommandError(40414, "BSON field 'appendOplogNote.data' is missing but a required field", { codeName: 'IDLFailedToParse' });
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new CommandError(ErrorCodes.TypeMismatch, "BSON field 'appendOplogNote.data' is the wrong type, expected type 'object'");
  rs.write(ctx.node, [{ op: 'n', ns: '', o: data as Document }]);
  return {};
};
