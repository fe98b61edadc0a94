/**
 * `--password-file F` on the verbs that read a repository themselves (list, describe, prune, export, repo …): the same as
 * `CUTPOINT_REPO_PASSWORD_FILE=F` for this process (repository/encryption/password.ts), which it sets, dropping
 * `CUTPOINT_REPO_PASSWORD` so the option wins over the environment.
 */
import { type Command, Option } from 'commander';

/** Adds `--password-file <file>` to `cmd`; its value is applied before the verb's action runs. */
export function passwordFileOption(cmd: Command): Command {
  return cmd
    .addOption(new Option('--password-file <file>', 'file whose first line is the repository password (else CUTPOINT_REPO_PASSWORD / CUTPOINT_REPO_PASSWORD_FILE)'))
    .hook('preAction', (_, action) => {
      const file = action.opts<{ passwordFile?: string }>().passwordFile;
      if (file === undefined) return;
      delete process.env.CUTPOINT_REPO_PASSWORD;
      process.env.CUTPOINT_REPO_PASSWORD_FILE = file;
    });
}
