/** `cutpoint verify <backupId>`: re-hash every file of a backup against its manifests (api/restores.ts). */
import type { Command } from 'commander';
import type { VerifySummary } from '../common/restore-types.ts';
import { startVerify, verifyResult } from '../api/restores.ts';
import type { CliContext } from './context.ts';
import { followRestore } from './follow-restore.ts';
import { finishOperation, withTemporal } from './operation.ts';

const MiB = 1024 * 1024;

function printVerify(ctx: CliContext, s: VerifySummary): void {
  ctx.out(`verify of backup ${s.backupId}: ${s.status}, ${s.files} files, ${(s.bytes / MiB).toFixed(1)} MiB`);
  for (const b of s.bad) ctx.out(`  BAD ${b.replicaSet}/${b.path}: ${b.problem}`);
  if (s.error && !s.bad.length) ctx.out(`  error ${s.error.code}: ${s.error.message}`);
}

export function registerVerify(program: Command, ctx: CliContext): void {
  program
    .command('verify <backupId>')
    .description('re-hash every file of a backup against its manifests; non-zero exit naming every bad file')
    .requiredOption('--repo <dir>', 'repository directory (as the workers see it)')
    .option('--json', 'print the summary as JSON')
    .action(async (backupId: string, o: { repo: string; json?: boolean }) =>
      withTemporal(async (client) => {
        const { id } = await startVerify(client, { backupId, repo: o.repo });
        await finishOperation(ctx, {
          id,
          kind: 'verify',
          wait: true,
          json: o.json === true,
          follow: () => followRestore(client, id),
          result: () => verifyResult(client, id),
          print: (s) => printVerify(ctx, s),
        });
      }),
    );
}
