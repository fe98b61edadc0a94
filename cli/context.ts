/** What every CLI verb gets: its logger and a way to print for humans (stdout), kept apart from logs (stderr). */
import type { Logger } from 'pino';

/** Passed to every verb's registration. */
export interface CliContext {
  /** The process-wide logger (created on first use, so a bad CUTPOINT_LOG_LEVEL fails inside the verb: exit 2). */
  log(): Logger;
  /** One line for the user on stdout. Verbs in `--json` mode print nothing but their JSON. */
  out(line: string): void;
  /** The process exit code when the verb ends without an error (e.g. 3 for a backup that ended cancelled). */
  setExit(code: number): void;
}
