/**
 * The workflow bundle: webpack runs once per process (about a second or two), then every Worker reuses the code.
 */
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Logger } from 'pino';
import { PinoTemporalLogger } from '../lib/logger.ts';

/** Absolute path of workflows/index.ts (TypeScript source: webpack compiles it with swc). */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

let cached: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Bundles workflows/ once per process. */
export function workflowBundle(log: Logger): Promise<WorkflowBundleWithSourceMap> {
  cached ??= bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    logger: new PinoTemporalLogger(log.child({ component: 'bundler' })),
  });
  return cached;
}
