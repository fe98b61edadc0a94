/** Entry point of the `cutpoint` executable (bin/cutpoint.js loads it through tsx). */
import { run } from './program.ts';

process.exitCode = await run(process.argv);
