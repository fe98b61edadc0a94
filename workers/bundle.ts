/**
 * The workflow bundle: webpack runs once per process (about three seconds), then every Worker reuses the code.
 *
 * webpack runs in a child process of its own (workers/bundle-process.ts), not in the worker's: in the worker's it
 * raised the resident set by about 160 MiB for the process's whole life (peak 128 → 290 MiB, measured by bundling
 * alone), which a long-running orchestrator kept; the child's memory is returned when it exits.
 */
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { Logger } from 'pino';

/** Absolute path of workflows/index.ts (TypeScript source: webpack compiles it with swc). */
export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** The script that bundles, run as `node --import tsx workers/bundle-process.ts <workflows> <out.json>`. */
const BUNDLER_PATH = fileURLToPath(new URL('./bundle-process.ts', import.meta.url));

let cached: Promise<WorkflowBundleWithSourceMap> | undefined;

/** Bundles workflows/ once per process. */
export function workflowBundle(log: Logger): Promise<WorkflowBundleWithSourceMap> {
  cached ??= bundleInChild(log);
  return cached;
}

async function bundleInChild(log: Logger): Promise<WorkflowBundleWithSourceMap> {
  const dir = await mkdtemp(join(tmpdir(), 'cutpoint-bundle-'));
  const out = join(dir, 'bundle.json');
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  let stderr = '';
  const child = execFile(process.execPath, ['--import', tsx, BUNDLER_PATH, WORKFLOWS_PATH, out], { maxBuffer: 16 * 1024 * 1024 }, (_err, _stdout, errText) => {
    stderr = errText;
  });
  // A worker that exits during start-up (a signal) leaves neither the bundler nor its directory behind.
  const abandon = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', abandon);
  log.info({ component: 'bundler', pid: child.pid, dir }, 'bundling the workflows in a child process');
  try {
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    if (exit.code !== 0) {
      throw new Error(`bundling the workflows (${WORKFLOWS_PATH}) failed: the bundler ${exit.code === null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`}\n${stderr.trim()}`);
    }
    if (stderr.trim()) log.debug({ component: 'bundler', output: stderr.trim() }, 'workflow bundler output');
    return JSON.parse(await readFile(out, 'utf8')) as WorkflowBundleWithSourceMap;
  } finally {
    process.off('exit', abandon);
    await rm(dir, { recursive: true, force: true });
  }
}
