/** Entry point of the `cutpoint` executable (bin/cutpoint.js loads it through tsx). */
import { run } from './program.ts';
import { finalExitCode } from './signals.ts';

const code = await run(process.argv);
// A failed graceful shutdown may already have set a non-zero exit code: keep it.
process.exitCode = finalExitCode(code, process.exitCode);
