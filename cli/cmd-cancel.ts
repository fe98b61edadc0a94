/** `cutpoint cancel <id>`: cancel a backup (or a restore: its `cancel` signal has the same name). */
import type { Command } from 'commander';
import { cancelBackup } from '../api/backups.ts';
import type { CliContext } from './context.ts';
import { withTemporal } from './operation.ts';

export function registerCancel(program: Command, ctx: CliContext): void {
  program
    .command('cancel <id>')
    .description('cancel a backup: its cursors are closed and it ends cancelled')
    .option('--reason <text>', 'recorded in the manifest')
    .action(async (id: string, o: { reason?: string }) =>
      withTemporal(async (client) => {
        await cancelBackup(client, id, o.reason);
        ctx.out(`cancel requested for ${id}`);
      }),
    );
}
