/**
 * Where a process finds the repository password: its own environment, never workflow input. `CUTPOINT_REPO_PASSWORD`
 * holds it; `CUTPOINT_REPO_PASSWORD_FILE` names a file whose first line is it (restic's convention). Both set is
 * refused, as ambiguous. The CLI's `--password-file F` sets `CUTPOINT_REPO_PASSWORD_FILE` for its own process.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { CutpointError } from '../../common/errors.ts';

/** Gives the password, or `undefined` when the process has none. */
export type PasswordSource = () => string | undefined;

/** The environment variables, in the one table of docs (docs/env-table.test.ts). */
export const PASSWORD_ENV = 'CUTPOINT_REPO_PASSWORD';
export const PASSWORD_FILE_ENV = 'CUTPOINT_REPO_PASSWORD_FILE';

/** The password from `env` (read at each call, so a CLI option set after start-up counts). */
export function passwordFromEnvironment(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const direct = env.CUTPOINT_REPO_PASSWORD;
  const file = env.CUTPOINT_REPO_PASSWORD_FILE;
  if (direct !== undefined && direct !== '' && file) {
    throw new CutpointError('BAD_USAGE', `both ${PASSWORD_ENV} and ${PASSWORD_FILE_ENV} are set: set one`);
  }
  if (file) return readPasswordFile(file);
  return direct === '' ? undefined : direct;
}

/** The first line of `path` (without its line end); an empty or unreadable file is `BAD_USAGE` naming it. */
export function readPasswordFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CutpointError('BAD_USAGE', `cannot read the repository password file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const line = text.split(/\r?\n/, 1)[0] ?? '';
  if (!line) throw new CutpointError('BAD_USAGE', `the repository password file ${path} is empty`);
  return line;
}
