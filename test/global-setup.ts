/**
 * One real Temporal dev server per test run, provisioned exactly as `cutpoint up` provisions it (TEMPORAL_CLI_PATH,
 * PATH, cache, Go build, SDK download). No server means a failed run, never skipped tests.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDevServer, type DevServer } from '../scripts/temporal/dev-server.ts';
import { createLogger } from '../lib/logger.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    temporalUiUrl: string;
  }
}

let server: DevServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  const log = createLogger(process.env.CUTPOINT_LOG_LEVEL ? undefined : 'warn');
  const started = Date.now();
  server = await startDevServer({ logDir: mkdtempSync(join(tmpdir(), 'cutpoint-test-temporal-')) }, log);
  process.stderr.write(
    `[global-setup] Temporal dev server ${server.address} (UI ${server.uiUrl}) from ${server.source} ` +
      `${server.cliPath ?? ''} in ${((Date.now() - started) / 1000).toFixed(1)} s; log ${server.logFile ?? '-'}\n`,
  );
  project.provide('temporalAddress', server.address);
  project.provide('temporalNamespace', server.namespace);
  project.provide('temporalUiUrl', server.uiUrl ?? '');
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
