/** `cutpoint seed <backupId>`: seed a new member of a running replica set from a backup (api/restores.ts). */
import type { Command } from 'commander';
import { seedResult, startSeed } from '../api/restores.ts';
import type { CliContext } from './context.ts';
import { followRestore } from './follow-restore.ts';
import { withTemporal } from './operation.ts';

export function registerSeed(program: Command, ctx: CliContext): void {
  program
    .command('seed <backupId>')
    .description('seed a new member of a running replica set from a backup, then add it to the set')
    .requiredOption('--repo <dir>', 'repository directory (as the workers see it)')
    .requiredOption('--replica-set <name>', 'the replica set of the backup to seed from')
    .requiredOption('--host <host:port>', 'the new member (its agent must run there)')
    .requiredOption('--dbpath <dir>', "the new member's dbpath")
    .option('--join <uri>', 'the running replica set to add it to (mongodb:// without credentials)')
    .option('--overwrite', 'seed into a non-empty dbpath (its data is kept aside until the seed succeeds)')
    .option('--json', 'print the summary as JSON')
    .action(async (backupId: string, o: { repo: string; replicaSet: string; host: string; dbpath: string; join?: string; overwrite?: boolean; json?: boolean }) =>
      withTemporal(async (client) => {
        const { id } = await startSeed(client, {
          backupId,
          repo: o.repo,
          replicaSet: o.replicaSet,
          member: { host: o.host, dbpath: o.dbpath },
          ...(o.join ? { join: { uri: o.join } } : {}),
          ...(o.overwrite ? { overwrite: true } : {}),
        });
        if (!o.json) await followRestore(client, id);
        const s = await seedResult(client, id);
        if (o.json) ctx.out(JSON.stringify(s));
        else ctx.out(`seeded ${s.member.host} (${s.replicaSet}) pid ${s.member.pid}: ${s.stateOnPrimary ?? s.member.state}`);
      }),
    );
}
