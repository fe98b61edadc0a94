/**
 * `cutpoint export <id> --repo R --replica-set N (--out DIR | --tar FILE | --tar -)`: one replica set of a complete
 * backup as a plain dbpath (api/export.ts), read from the repository alone (no Temporal connection). With `--tar -`
 * the archive is stdout and the summary goes to stderr.
 */
import type { Command } from 'commander';
import { formatBytes } from '../common/units.ts';
import { exportBackup } from '../api/export.ts';
import type { CliContext } from './context.ts';

export function registerExport(program: Command, ctx: CliContext): void {
  program
    .command('export <id>')
    .description('write one replica set of a complete backup as a plain dbpath (every chunk checked): into a directory, or as a tar file or stream')
    .requiredOption('--repo <dir>', 'repository directory')
    .requiredOption('--replica-set <name>', 'the replica set to export')
    .option('--out <dir>', 'write the dbpath into this directory (created if missing; must be empty)')
    .option('--tar <file>', "write a tar archive to this file, or to stdout with '-'")
    .option('--force', 'write into a non-empty directory, or over an existing tar file')
    .action(async (id: string, o: { repo: string; replicaSet: string; out?: string; tar?: string; force?: boolean }) => {
      const toStdout = o.tar === '-';
      const s = await exportBackup(o.repo, id, {
        replicaSet: o.replicaSet,
        ...(o.out !== undefined ? { out: o.out } : {}),
        ...(o.tar !== undefined ? { tar: toStdout ? process.stdout : o.tar } : {}),
        ...(o.force ? { force: true } : {}),
      });
      const line = `exported ${s.replicaSet} of backup ${s.backupId} (${s.cluster}): ${s.files} files, ${formatBytes(s.bytes)}${toStdout ? '' : ` to ${o.out ?? o.tar}`}`;
      if (toStdout) process.stderr.write(line + '\n');
      else ctx.out(line);
    });
}
