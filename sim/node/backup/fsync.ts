/**
 * `fsync` (with `lock: true`, the fsync lock) and `fsyncUnlock`, through the backup hooks' single slot
 * (docs/psmdb-behaviour.md section 4.1: 50884, 50885, 29097, 50888).
 *
 * The lock takes a checkpoint (`flushAllFiles`) and then holds a full WiredTiger backup (the checkpoint pinned, log
 * removal suspended) until `fsyncUnlock`. It does not block writes: the simulator's writes are synchronous and cannot
 * wait for a lock.
 */
import { Long } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { CommandContext, CommandImpl } from '../types.ts';

function adminOnly({ db, name }: CommandContext): void {
  if (db !== 'admin') throw new CommandError(ErrorCodes.Unauthorized, `${name} may only be run against the admin database.`);
}

export const fsync: CommandImpl = async (ctx) => {
  adminOnly(ctx);
  const { node, command } = ctx;
  node.engine.checkpoint();
  if (!command.lock) return { numFiles: 1 };
  await node.backup!.fsyncLock();
  return {
    info: 'now locked against writes, use db.fsyncUnlock() to unlock',
    lockCount: Long.ONE,
    seeAlso: 'http://dochub.mongodb.org/core/fsynccommand',
  };
};

export const fsyncUnlock: CommandImpl = async (ctx) => {
  adminOnly(ctx);
  await ctx.node.backup!.fsyncUnlock();
  return { info: 'fsyncUnlock completed', lockCount: Long.ZERO };
};
