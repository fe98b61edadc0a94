/**
 * workers/bundle.ts: the workflow bundle is built by webpack in a child process, so the worker's own memory does not
 * carry webpack's (test/cli-foundation.test.ts: a worker forced to exit while bundling leaves no bundler behind).
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const bundleModule = pathToFileURL(new URL('./bundle.ts', import.meta.url).pathname).href;

/** Runs `source` (an ES module) in a new Node process with tsx; resolves with its stdout. */
function runFresh(source: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', tsx, '--input-type=module', '-e', source], { timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

describe('workflowBundle', () => {
  it("bundles the workflows in a child process: the calling process's peak resident set grows by far less than webpack's 160 MiB", async () => {
    const out = await runFresh(`
      import { readFileSync } from 'node:fs';
      import pino from 'pino';
      import { workflowBundle } from ${JSON.stringify(bundleModule)};
      const hwm = () => Number(readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\\s+(\\d+)/)[1]) * 1024;
      const before = hwm();
      const bundle = await workflowBundle(pino({ level: 'silent' }));
      console.log(JSON.stringify({ grew: hwm() - before, registers: ['clusterBackup', 'replicaSetBackup', 'clusterRestore'].every((w) => bundle.code.includes(w)) }));
    `);
    const { grew, registers } = JSON.parse(out.trim().split('\n').pop()!) as { grew: number; registers: boolean };
    expect(registers).toBe(true);
    // Bundled in this process, the peak grew by about 160 MiB (128 → 290 MiB).
    expect(grew).toBeLessThan(48 * 1024 * 1024);
  }, 150_000);
});
