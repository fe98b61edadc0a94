/** Replica-set commands: status, config, reconfig, initiate. */
import type { Document } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { CommandImpl } from './context.ts';

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

export const replSetInitiate: CommandImpl = async (ctx) => {
  if (!ctx.node.options.replSet) throw new CommandError(76, 'This node was not started with replication enabled.', { codeName: 'NoReplicationEnabled' });
  if (ctx.node.rs) throw new CommandError(23, 'already initialized', { codeName: 'AlreadyInitialized' });
  if (!ctx.node.initiate) throw new CommandError(ErrorCodes.CommandNotSupported, 'replSetInitiate is not available on this node');
  await ctx.node.initiate(ctx.command.replSetInitiate as Document | undefined);
  return {};
};
