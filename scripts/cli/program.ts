/**
 * The `cutpoint` command line. Verbs and exit codes are fixed in interfaces.md section 2; each verb lives in
 * cmd-<verb>.ts. Errors end here: registry codes map to exit codes, everything is printed without credentials.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { CutpointError, EXIT, exitCodeFor } from '../../common/errors.ts';
import { redactString } from '../../common/redact.ts';
import { log as rootLog } from '../../workers/logger.ts';
import { registerAgent } from './cmd-agent.ts';
import { registerUp } from './cmd-up.ts';
import { registerWorker } from './cmd-worker.ts';
import type { CliContext } from './context.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Builds the program; exported for tests that parse argument vectors without running a process. */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('cutpoint')
    .description('hot, cluster-consistent physical backups of MongoDB, orchestrated by Temporal')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerWorker(program, ctx);
  registerAgent(program, ctx);
  registerUp(program, ctx);
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

/** Runs the CLI on `argv` and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const ctx: CliContext = { log: rootLog, out: (line) => process.stdout.write(line + '\n') };
  try {
    await buildProgram(ctx).parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end through here with exit code 0; usage errors are exit 2 (interfaces.md).
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof CutpointError) {
      process.stderr.write(`cutpoint: ${e.code}: ${redactString(e.message)}\n`);
      return exitCodeFor(e.code);
    }
    process.stderr.write(`cutpoint: ${redactString(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`);
    return EXIT.failure;
  }
}

