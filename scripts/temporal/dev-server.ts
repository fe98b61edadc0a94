/**
 * Starts `temporal server start-dev` for tests, the demo (`cutpoint up`) and local use.
 *
 * Free ports are chosen per start (7233/8233 are tried first when asked, for `npm start`), cutpoint's search
 * attributes are registered at start-up, and the server is stopped with its parent: a shell watchdog kills it when
 * the Node process that started it disappears, so a SIGKILLed test run leaves no server behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import { searchAttributeFlags, SEARCH_ATTRIBUTES } from '../../common/search-attributes.ts';
import {
  buildTemporalCli,
  cliVersion,
  findTemporalCli,
  haveGo,
  TEMPORAL_CLI_VERSION,
  TemporalCliUnavailableError,
  type LocatedCli,
} from './cli-locator.ts';
import { cacheDir } from './paths.ts';

export interface DevServerOptions {
  /** Bind address; 127.0.0.1 keeps the server off the network. */
  ip?: string;
  /** Frontend gRPC port; 0 or absent = a free port. */
  port?: number;
  /** Web UI port; 0 or absent = a free port. */
  uiPort?: number;
  /** Try 7233/8233 first and fall back to free ports when taken (interactive `cutpoint up`). */
  preferDefaultPorts?: boolean;
  headless?: boolean;
  /** SQLite file so that history survives restarts; in memory when absent. */
  dbFilename?: string;
  namespace?: string;
  /** Directory for the server's own log file. */
  logDir: string;
  /** How long to wait for the frontend to answer. */
  readyTimeoutMs?: number;
}

/** A running dev server. */
export interface DevServer {
  address: string;
  namespace: string;
  /** The Web UI base URL, or undefined when headless. */
  uiUrl?: string;
  /** Where the binary came from (for logs and the closing note). */
  source: LocatedCli['source'] | 'download';
  cliPath?: string;
  logFile?: string;
  stop(): Promise<void>;
}

/** Resolves a free TCP port on `ip` (the kernel picks one; a race with another binder is retried by the caller). */
export async function freePort(ip = '127.0.0.1', preferred?: number): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen({ host: ip, port, exclusive: true }, () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
  if (preferred) {
    try {
      return await tryListen(preferred);
    } catch {
      // taken: fall through to an ephemeral port
    }
  }
  return tryListen(0);
}

/** Waits until the frontend answers GetSystemInfo, failing early if the process exits. */
async function waitReady(address: string, child: ChildProcess | undefined, timeoutMs: number, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) break;
    try {
      const conn = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await conn.workflowService.getSystemInfo({});
        return;
      } finally {
        await conn.close();
      }
    } catch (e) {
      lastError = e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  const tail = logFile ? readTail(logFile) : '';
  const why = child && child.exitCode !== null ? `exited with code ${child.exitCode}` : `did not answer within ${timeoutMs} ms`;
  throw new Error(`Temporal dev server at ${address} ${why}: ${String(lastError ?? '')}${tail ? `\nserver log (${logFile}):\n${tail}` : ''}`);
}

function readTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Locates the CLI (building it when needed) and starts the dev server. Without a CLI and without Go, falls back to
 * @temporalio/testing's download; when that fails too, the error says what to install.
 */
export async function startDevServer(
  opts: DevServerOptions,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
  download: (opts: DevServerOptions, log: Logger, env: NodeJS.ProcessEnv) => Promise<DevServer> = startDownloadedServer,
): Promise<DevServer> {
  let cli = findTemporalCli(env);
  if (!cli && haveGo(env)) cli = await buildTemporalCli(log, env);
  if (!cli) {
    try {
      return await download(opts, log, env);
    } catch (e) {
      throw new TemporalCliUnavailableError(
        `No Temporal server could be provisioned. Tried TEMPORAL_CLI_PATH, a 'temporal' on PATH, the cache ` +
          `(${join(cacheDir(env), 'temporal-cli')}), building with Go (no 'go' on PATH) and the SDK download (${String(e)}).\n` +
          `Install one of: the Temporal CLI (put 'temporal' on PATH or set TEMPORAL_CLI_PATH), or Go >= 1.25 so cutpoint ` +
          `can build v${TEMPORAL_CLI_VERSION} itself; or point TEMPORAL_ADDRESS at a running Temporal service.`,
      );
    }
  }
  return startCliServer(cli, opts, log);
}

async function startCliServer(cli: LocatedCli, opts: DevServerOptions, log: Logger): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  mkdirSync(opts.logDir, { recursive: true });
  const logFile = join(opts.logDir, `temporal-server-${process.pid}-${Date.now()}.log`);

  for (let attempt = 1; ; attempt++) {
    const port = opts.port || (await freePort(ip, opts.preferDefaultPorts ? 7233 : undefined));
    const uiPort = opts.headless ? undefined : opts.uiPort || (await freePort(ip, opts.preferDefaultPorts ? 8233 : undefined));
    const args = [
      'server', 'start-dev',
      '--ip', ip,
      '--port', String(port),
      '--namespace', namespace,
      '--log-level', 'warn',
      // Updates (setThrottle) must be on; the search attribute cache refresh makes new attributes visible at once.
      '--dynamic-config-value', 'frontend.enableUpdateWorkflowExecution=true',
      '--dynamic-config-value', 'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
      '--dynamic-config-value', 'system.forceSearchAttributesCacheRefreshOnRead=true',
      ...searchAttributeFlags().flatMap((f) => ['--search-attribute', f]),
      ...(opts.dbFilename ? ['--db-filename', opts.dbFilename] : []),
      ...(uiPort ? ['--ui-port', String(uiPort), '--ui-ip', ip] : ['--headless']),
    ];
    const out = openSync(logFile, 'a');
    // The watchdog shell ends the server when our process is gone, however it died (SIGKILL included).
    const watchdog = 'srv="$1"; shift; "$srv" "$@" & child=$!; ' +
      `trap 'kill $child 2>/dev/null; wait $child; exit' TERM INT; ` +
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; ` +
      'kill $child 2>/dev/null; wait $child';
    const child = spawn('/bin/sh', ['-c', watchdog, 'cutpoint-temporal', cli.path, ...args], {
      stdio: ['ignore', out, out],
      detached: false,
    });
    closeSync(out);
    const address = `${ip}:${port}`;
    log.info({ address, ui: uiPort ? `http://${ip}:${uiPort}` : null, cli: cli.path, source: cli.source, logFile }, 'starting Temporal dev server');
    try {
      await waitReady(address, child, opts.readyTimeoutMs ?? 60_000, logFile);
    } catch (e) {
      child.kill('SIGTERM');
      const portTaken = /address already in use/i.test(readTail(logFile, 50));
      if (portTaken && attempt < 3 && !opts.port) {
        log.warn({ address }, 'port taken between choosing and binding; retrying on other ports');
        continue;
      }
      throw e;
    }
    let stopped: Promise<void> | undefined;
    return {
      address,
      namespace,
      uiUrl: uiPort ? `http://${ip}:${uiPort}` : undefined,
      source: cli.source,
      cliPath: cli.path,
      logFile,
      stop() {
        stopped ??= new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          child.once('exit', () => {
            clearTimeout(killer);
            resolve();
          });
          child.kill('SIGTERM');
        });
        return stopped;
      },
    };
  }
}

/** Machines with internet and no Go: let the SDK download its pinned CLI into our cache. */
async function startDownloadedServer(opts: DevServerOptions, log: Logger, env: NodeJS.ProcessEnv): Promise<DevServer> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const downloadDir = join(cacheDir(env), 'temporal-download');
  log.warn({ downloadDir }, 'no temporal CLI and no Go toolchain: trying the SDK download of the Temporal CLI');
  const ip = opts.ip ?? '127.0.0.1';
  const uiPort = opts.headless ? undefined : opts.uiPort || (await freePort(ip, opts.preferDefaultPorts ? 8233 : undefined));
  const testEnv = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download', downloadDir },
      ip,
      port: opts.port || (await freePort(ip, opts.preferDefaultPorts ? 7233 : undefined)),
      namespace: opts.namespace ?? 'default',
      dbFilename: opts.dbFilename,
      ui: !opts.headless,
      uiPort,
      searchAttributes: [...SEARCH_ATTRIBUTES],
    },
  });
  return {
    address: testEnv.address,
    namespace: opts.namespace ?? 'default',
    uiUrl: uiPort ? `http://${ip}:${uiPort}` : undefined,
    source: 'download',
    stop: () => testEnv.teardown(),
  };
}

export { cliVersion };
