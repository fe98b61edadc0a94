/** What every CLI verb gets: its logger and a way to print for humans (stdout), kept apart from logs (stderr). */
import type { Logger } from 'pino';

export interface CliContext {
  log(): Logger;
  /** One line for the user on stdout. Verbs in `--json` mode print nothing but their JSON. */
  out(line: string): void;
}
