/**
 * The `cutpoint` command line. Verbs and exit codes are fixed in docs/interfaces.md section 2; each verb lives in
 * cmd-<verb>.ts (`schedule` with its subcommands in cmd-schedule.ts), and the other files of cli/ are helpers the verbs
 * share. Errors end here: registry codes map to exit codes, everything is printed without credentials.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { CutpointError, EXIT, exitCodeFor, isErrorCode } from '../common/errors.ts';
import { redactString } from '../common/redact.ts';
import { log as rootLog } from '../lib/logger.ts';
import { registerAgent } from './cmd-agent.ts';
import { registerBackup } from './cmd-backup.ts';
import { registerCancel } from './cmd-cancel.ts';
import { registerDescribe } from './cmd-describe.ts';
import { registerExport } from './cmd-export.ts';
import { registerList } from './cmd-list.ts';
import { registerPitr } from './cmd-pitr.ts';
import { registerPrune } from './cmd-prune.ts';
import { registerRepo } from './cmd-repo.ts';
import { registerRestore } from './cmd-restore.ts';
import { registerSchedule } from './cmd-schedule.ts';
import { registerSeed } from './cmd-seed.ts';
import { registerStatus } from './cmd-status.ts';
import { registerThrottle } from './cmd-throttle.ts';
import { registerUp } from './cmd-up.ts';
import { registerVerify } from './cmd-verify.ts';
import { registerWorker } from './cmd-worker.ts';
import type { CliContext } from './context.ts';
import { passwordFileOption } from './password-file.ts';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** Builds the program; exported for tests that parse argument vectors without running a process. */
export function buildProgram(ctx: CliContext): Command {
  // exitOverride and showHelpAfterError are set before the verbs are added: commander copies them into each
  // subcommand (copyInheritedSettings), so usage errors of a verb also end as a CommanderError in run().
  const program = new Command('cutpoint')
    .description('hot, cluster-consistent physical backups of MongoDB, orchestrated by Temporal')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerWorker(program, ctx);
  registerAgent(program, ctx);
  registerUp(program, ctx);
  registerBackup(program, ctx);
  registerStatus(program, ctx);
  registerCancel(program, ctx);
  registerThrottle(program, ctx);
  registerRestore(program, ctx);
  registerVerify(program, ctx);
  registerSeed(program, ctx);
  registerList(program, ctx);
  registerDescribe(program, ctx);
  registerPrune(program, ctx);
  registerSchedule(program, ctx);
  registerRepo(program, ctx);
  registerExport(program, ctx);
  registerPitr(program, ctx);
  // The verbs that read the repository in this process (the others go through the workers, with their password).
  for (const name of ['list', 'describe', 'prune', 'export']) passwordFileOption(program.commands.find((c) => c.name() === name)!);
  return program;
}

/** `name: message` lines of an error's cause chain (and an AggregateError's errors), redacted, for printing. */
export function causeLines(error: unknown, depth = 0): string[] {
  if (!(error instanceof Error) || depth > 8) return [];
  const lines: string[] = [];
  const errors = (error as { errors?: unknown }).errors;
  if (Array.isArray(errors)) {
    for (const e of errors) {
      if (e instanceof Error) lines.push(`  - ${redactString(`${e.name}: ${e.message}`)}`, ...causeLines(e, depth + 1));
    }
  }
  const cause = error.cause;
  if (cause !== undefined) {
    const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    lines.push(`  caused by ${redactString(text)}`, ...causeLines(cause, depth + 1));
  }
  return lines;
}

/** The first registry code in an error or its cause chain (a CutpointError, or an ApplicationFailure's type). */
function registryCode(error: unknown): string | undefined {
  for (let e = error, i = 0; e instanceof Error && i < 10; e = e.cause, i++) {
    if (e instanceof CutpointError) return e.code;
    const type = (e as { type?: unknown }).type;
    if (isErrorCode(type)) return type;
  }
  return undefined;
}

/** Prints a failed command's error (redacted, with its cause chain) through `write` and returns the exit code. */
export function reportError(e: unknown, write: (text: string) => void): number {
  if (e instanceof CommanderError) {
    // --help and --version end through here with exit code 0; usage errors are exit 2 (docs/interfaces.md
    // section 2). Commander has printed its message already.
    return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  const causes = causeLines(e);
  const tail = causes.length > 0 ? `\n${causes.join('\n')}` : '';
  if (e instanceof CutpointError) {
    write(`cutpoint: ${e.code}: ${redactString(e.message)}${tail}\n`);
    return exitCodeFor(e.code);
  }
  const code = registryCode(e);
  if (code) {
    // A workflow that failed with a registry code: the message and chain say what, the code says how to exit.
    write(`cutpoint: ${code}: ${redactString(e instanceof Error ? `${e.name}: ${e.message}` : String(e))}${tail}\n`);
    return exitCodeFor(code);
  }
  write(`cutpoint: ${redactString(e instanceof Error ? (e.stack ?? e.message) : String(e))}${tail}\n`);
  return EXIT.failure;
}

/** Runs the CLI on `argv` and returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  let exitCode: number = EXIT.ok;
  const ctx: CliContext = {
    log: rootLog,
    out: (line) => process.stdout.write(line + '\n'),
    setExit: (code) => {
      exitCode = code;
    },
  };
  try {
    await buildProgram(ctx).parseAsync(argv);
    return exitCode;
  } catch (e) {
    return reportError(e, (text) => process.stderr.write(text));
  }
}
