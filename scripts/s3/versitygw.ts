/**
 * versitygw (Versity S3 Gateway, Apache-2.0): the real S3 server the tests and the benchmark store repositories in.
 * Located (`CUTPOINT_VERSITYGW_PATH`, else the per-user cache) or built from the Go module proxy into the cache the way
 * the Temporal CLI is (scripts/go-install.ts), and started on loopback with its posix backend on a directory: each
 * subdirectory is a bucket, each object a file. A watchdog shell (scripts/temporal/dev-server.ts) stops it when the
 * Node process that started it dies.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { freePort } from '../../lib/ports.ts';
import { sleep } from '../../lib/process.ts';
import { cachedToolPath, goInstall, haveGo, isExecutable, type GoTool } from '../go-install.ts';
import { killGroup, watchdogScript } from '../temporal/dev-server.ts';

/** The release the project builds and tests against. */
export const VERSITYGW_VERSION = '1.8.0';

/** Raised when no versitygw can be found or built; the message says what to install. */
export class VersityGwUnavailableError extends Error {
  override name = 'VersityGwUnavailableError';
}

/** How scripts/go-install.ts builds it: cached as `versitygw/<version>/versitygw`. */
export const VERSITYGW: GoTool = {
  label: 'versitygw',
  pkg: 'github.com/versity/versitygw/cmd/versitygw',
  version: VERSITYGW_VERSION,
  binary: 'versitygw',
  cacheName: 'versitygw',
  unavailable: (message, options) => new VersityGwUnavailableError(message, options),
};

/** `CUTPOINT_VERSITYGW_PATH`, else the cached build, else a `go install` into the cache (minutes, once). */
export async function locateVersityGw(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const explicit = env.CUTPOINT_VERSITYGW_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) throw new VersityGwUnavailableError(`CUTPOINT_VERSITYGW_PATH=${explicit} is not an executable file`);
    return explicit;
  }
  const cached = cachedToolPath(VERSITYGW, env);
  if (isExecutable(cached)) return cached;
  if (!haveGo(env)) {
    throw new VersityGwUnavailableError(
      `the S3 tests need versitygw ${VERSITYGW_VERSION}: it is not in the cache (${cached}) and there is no 'go' on PATH to build it with. ` +
        `Install Go (cutpoint then runs 'go install ${VERSITYGW.pkg}@v${VERSITYGW_VERSION}' into that cache once), or set ` +
        'CUTPOINT_VERSITYGW_PATH to a versitygw executable.',
    );
  }
  return (await goInstall(VERSITYGW, log, env)).path;
}

/** Options of {@link startVersityGw}. */
export interface VersityGwOptions {
  /** The posix backend's root: one subdirectory per bucket. */
  dataDir: string;
  /** Root credentials of the gateway. */
  accessKey: string;
  secretKey: string;
  /** Bind address (default 127.0.0.1) and port (default: a free one; a restart reuses its port). */
  ip?: string;
  port?: number;
  /** Directory of the gateway's own log file (default `dataDir/..`). */
  logDir?: string;
  readyTimeoutMs?: number;
}

/** A running versitygw. */
export interface VersityGw {
  /** `http://<ip>:<port>`: what AWS_ENDPOINT_URL is set to. */
  endpoint: string;
  port: number;
  logFile: string;
  /** The gateway's pid (for a kill mid-upload). */
  pid(): number | undefined;
  /** Stops it (SIGTERM, then SIGKILL). Idempotent. */
  stop(): Promise<void>;
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory (after {@link kill} or {@link stop}). */
  restart(): Promise<void>;
}

/** Starts versitygw's posix backend on `dataDir`, and waits until it answers HTTP. */
export async function startVersityGw(binary: string, opts: VersityGwOptions, log: Logger): Promise<VersityGw> {
  const ip = opts.ip ?? '127.0.0.1';
  const port = opts.port || (await freePort(ip));
  const endpoint = `http://${ip}:${port}`;
  mkdirSync(opts.dataDir, { recursive: true });
  const logDir = opts.logDir ?? join(opts.dataDir, '..');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `versitygw-${process.pid}-${port}.log`);
  let child: ReturnType<typeof spawn> | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async () => {
    const out = openSync(logFile, 'a');
    const c = spawn('/bin/sh', ['-c', watchdogScript(process.pid), 'cutpoint-versitygw', binary, '--port', `${ip}:${port}`, '--keep-alive', '--quiet', 'posix', opts.dataDir], {
      stdio: ['ignore', out, out],
      detached: true,
      // The root credentials by environment, so they never show in `ps`.
      env: { ...process.env, ROOT_ACCESS_KEY: opts.accessKey, ROOT_SECRET_KEY: opts.secretKey },
    });
    closeSync(out);
    child = c;
    let gone = false;
    exited = new Promise<void>((resolve) => {
      c.once('exit', () => {
        gone = true;
        resolve();
      });
      c.once('error', () => {
        gone = true;
        resolve();
      });
    });
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    for (;;) {
      if (gone) throw new VersityGwUnavailableError(`versitygw exited at start-up; its log ${logFile} ends:\n${tail(logFile)}`);
      try {
        await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(1000) });
        return; // any HTTP answer (an auth error) means it serves
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        killGroup(c.pid, 'SIGKILL');
        throw new VersityGwUnavailableError(`versitygw did not answer on ${endpoint} within ${opts.readyTimeoutMs ?? 30_000} ms; its log ${logFile} ends:\n${tail(logFile)}`);
      }
      await sleep(100);
    }
  };
  const halt = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    killGroup(c.pid, signal);
    const killer = setTimeout(() => killGroup(c.pid, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  };

  log.info({ endpoint, binary, dataDir: opts.dataDir, logFile }, 'starting versitygw');
  await launch();
  return {
    endpoint,
    port,
    logFile,
    // The watchdog shell leads the group; the gateway is its child. Its pid is not needed to kill the group.
    pid: () => child?.pid,
    stop: () => halt('SIGTERM'),
    kill: () => halt('SIGKILL'),
    restart: async () => {
      await halt('SIGTERM');
      await launch();
    },
  };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}
