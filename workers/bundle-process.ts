/**
 * Bundles the workflows with webpack and writes the bundle (`{ code, sourceMap }`) as JSON to a file:
 * `node --import tsx workers/bundle-process.ts <workflows/index.ts> <out.json>`. workers/bundle.ts runs it so that
 * webpack's memory is not the worker's. Warnings and errors go to stderr.
 */
import { writeFile } from 'node:fs/promises';
// The bundler alone: the package's index also loads the native core bridge, a second of start-up this process does not need.
import { bundleWorkflowCode } from '@temporalio/worker/lib/workflow/bundler.js';
import { createLogger, PinoTemporalLogger } from '../lib/logger.ts';

const [workflowsPath, out] = process.argv.slice(2);
if (!workflowsPath || !out) {
  process.stderr.write('usage: bundle-process.ts <workflows/index.ts> <out.json>\n');
  process.exit(2);
}
const bundle = await bundleWorkflowCode({ workflowsPath, logger: new PinoTemporalLogger(createLogger('warn').child({ component: 'bundler' })) });
await writeFile(out, JSON.stringify({ code: bundle.code, sourceMap: bundle.sourceMap }));
