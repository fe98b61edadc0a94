/**
 * One real Temporal dev server per test run, provisioned exactly as `cutpoint up` provisions it (TEMPORAL_CLI_PATH,
 * PATH, cache, Go build, SDK download), and one real S3 server (versitygw on loopback, built from the Go module proxy
 * into the cache on a fresh machine). No server means a failed run, never skipped tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startDevServer, type DevServer } from '../scripts/temporal/dev-server.ts';
import { createLogger } from '../lib/logger.ts';
import { locateVersityGw, startVersityGw, type VersityGw } from '../scripts/s3/versitygw.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    temporalUiUrl: string;
    /** The S3 server's endpoint and root credentials (test/helpers/s3.ts). */
    s3Endpoint: string;
    s3AccessKey: string;
    s3SecretKey: string;
  }
}

let server: DevServer | undefined;
let s3: VersityGw | undefined;
let s3Root: string | undefined;

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

  const s3Started = Date.now();
  const root = (s3Root = mkdtempSync(join(tmpdir(), 'cutpoint-test-s3-')));
  const keys = { accessKey: 'cutpoint-test', secretKey: randomBytes(20).toString('hex') };
  s3 = await startVersityGw(await locateVersityGw(log), { dataDir: join(root, 'data'), logDir: root, ...keys }, log);
  process.stderr.write(`[global-setup] versitygw ${s3.endpoint} in ${((Date.now() - s3Started) / 1000).toFixed(1)} s; log ${s3.logFile}\n`);
  project.provide('s3Endpoint', s3.endpoint);
  project.provide('s3AccessKey', keys.accessKey);
  project.provide('s3SecretKey', keys.secretKey);
}

export async function teardown(): Promise<void> {
  await Promise.all([server?.stop(), s3?.stop()]);
  if (s3Root) rmSync(s3Root, { recursive: true, force: true });
}
