/** `cutpoint throttle <id> <rate>`: change the copy rate of a running backup. */
import type { Command } from 'commander';
import { formatRate } from '../common/units.ts';
import { setBackupThrottle } from '../api/backups.ts';
import type { CliContext } from './context.ts';
import { rateArg } from './options.ts';
import { withTemporal } from './operation.ts';

export function registerThrottle(program: Command, ctx: CliContext): void {
  program
    .command('throttle <id> <rate>')
    .description('change the copy rate of a running backup, e.g. 50MB (per second); 0 = unlimited')
    .action(async (id: string, rate: string) => {
      const bytesPerSec = rateArg(rate); // a bad rate is refused before connecting
      return withTemporal(async (client) => {
        const r = await setBackupThrottle(client, id, bytesPerSec);
        ctx.out(`${id}: throttle now ${formatRate(r.bytesPerSec)}`);
      });
    });
}
