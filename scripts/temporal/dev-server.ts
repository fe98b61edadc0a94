/**
 * Starts `temporal server start-dev` for tests, the demo (`cutpoint up`) and local use.
 *
 * Free ports are chosen per start (7233/8233 are tried first when asked, for `npm start`), cutpoint's search
 * attributes are registered at start-up, and the server is stopped with its parent: a shell watchdog kills it when
 * the Node process that started it disappears, so a SIGKILLed test run leaves no server behind. The watchdog and the
 * server run in their own process group, so a Ctrl-C in the terminal reaches only cutpoint, which drains its workers
 * before it stops the server.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import type { Logger } from 'pino';
import { searchAttributeFlags, SEARCH_ATTRIBUTES } from '../../common/search-attributes.ts';
import {
  buildTemporalCli,
  findTemporalCli,
  haveGo,
  TEMPORAL_CLI_VERSION,
  TemporalCliUnavailableError,
  type LocatedCli,
} from './cli-locator.ts';
import { cacheDir } from './paths.ts';
import { freePort } from '../../lib/ports.ts';
import { sleep } from '../../lib/process.ts';

export { freePort };

/** Options of {@link startDevServer}. */
export interface DevServerOptions {
  /** Bind address; 127.0.0.1 keeps the server off the network. */
  ip?: string;
  /** Frontend gRPC port; 0 or absent = a free port. */
  port?: number;
  /** Web UI port; 0 or absent = a free port. */
  uiPort?: number;
  /** Try 7233/8233 first and fall back to free ports when taken (interactive `cutpoint up`). */
  preferDefaultPorts?: boolean;
  /** No Web UI. */
  headless?: boolean;
  /** SQLite file so that history survives restarts; in memory when absent. */
  dbFilename?: string;
  namespace?: string;
  /** Directory for the server's own log file. */
  logDir: string;
  /** How long to wait for the frontend to answer. */
  readyTimeoutMs?: number;
  /** Aborts start-up (a Ctrl-C while the server comes up): the server is stopped and startDevServer rejects. */
  signal?: AbortSignal;
}

/** A running dev server. */
export interface DevServer {
  /** Frontend `host:port`. */
  address: string;
  namespace: string;
  /** The Web UI base URL, or undefined when headless. */
  uiUrl?: string;
  /** Where the binary came from (for logs and the closing note). */
  source: LocatedCli['source'] | 'download';
  cliPath?: string;
  /** The server's own log (CLI-started servers). */
  logFile?: string;
  /** Stops the server (SIGTERM to its process group, SIGKILL after 10 s); idempotent. */
  stop(): Promise<void>;
}

/** How a child process ended: an exit code, or the signal that killed it (then `code` is null). */
interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const describeExit = (exit: Exit) => (exit.code !== null ? `exited with code ${exit.code}` : `was killed by ${exit.signal}`);


/**
 * Waits until the frontend answers GetSystemInfo, failing as soon as the process exits (`exited`, created when it
 * was spawned, settles then) or `signal` aborts.
 */
async function waitReady(
  address: string,
  exited: Promise<Exit>,
  timeoutMs: number,
  logFile?: string,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exit: Exit | undefined;
  void exited.then((e) => (exit = e));
  let lastError: unknown;
  while (Date.now() < deadline && !exit) {
    signal?.throwIfAborted();
    const answered = (async () => {
      const conn = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await conn.workflowService.getSystemInfo({});
        return true;
      } finally {
        await conn.close();
      }
    })();
    answered.catch(() => undefined); // may lose the race below; its failure is read there when it wins
    try {
      // A server that exits must fail start-up at once, not after this attempt's connect timeout.
      if (await Promise.race([answered, exited.then(() => false)])) return;
    } catch (e) {
      lastError = e;
      await Promise.race([sleep(250), exited]);
    }
  }
  signal?.throwIfAborted();
  const tail = logFile ? readTail(logFile) : '';
  const why = exit ? describeExit(exit) : `did not answer within ${timeoutMs} ms`;
  // The last connection error is the cause (printed as such by the CLI), the server's own log tail is the message.
  throw new Error(`Temporal dev server at ${address} ${why}${tail ? `\nserver log (${logFile}):\n${tail}` : ''}`, {
    cause: lastError,
  });
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
          `(${join(cacheDir(env), 'temporal-cli')}), building with Go (no 'go' on PATH) and the SDK download (failed; ` +
          `see the cause below).\n` +
          `Install one of: the Temporal CLI (put 'temporal' on PATH or set TEMPORAL_CLI_PATH), or Go >= 1.25 so cutpoint ` +
          `can build v${TEMPORAL_CLI_VERSION} itself; or point TEMPORAL_ADDRESS at a running Temporal service.`,
        { cause: e },
      );
    }
  }
  return startCliServer(cli, opts, log);
}

/**
 * The watchdog shell: runs the server (`$1 $2...`) in the background and waits for it, exiting with its status. A
 * guard subshell ends the server (SIGTERM, SIGKILL 10 s later) when the Node process `parentPid` is gone, however
 * it died (SIGKILL included); SIGTERM/SIGINT to the shell are passed on to the server.
 */
export function watchdogScript(parentPid: number): string {
  return [
    'srv="$1"; shift',
    '"$srv" "$@" & child=$!',
    `( while kill -0 ${parentPid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; ` +
      'kill -TERM $child 2>/dev/null; sleep 10; kill -KILL $child 2>/dev/null ) & guard=$!',
    "trap 'kill -TERM $child 2>/dev/null' TERM INT HUP",
    // `wait` returns early when a trapped signal arrives: wait again until the server is really gone.
    'while :; do wait $child; code=$?; kill -0 $child 2>/dev/null || break; done',
    'kill $guard 2>/dev/null',
    'exit $code',
  ].join('\n');
}

/** Sends `signal` to the process group led by `pid` (the watchdog, the server and the guard). */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

async function startCliServer(cli: LocatedCli, opts: DevServerOptions, log: Logger): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  mkdirSync(opts.logDir, { recursive: true });
  const logBase = join(opts.logDir, `temporal-server-${process.pid}-${Date.now()}`);

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
    // A fresh log file per attempt: the port-taken check below must read only this attempt's output.
    const logFile = attempt === 1 ? `${logBase}.log` : `${logBase}-attempt${attempt}.log`;
    const out = openSync(logFile, 'a');
    const child = spawn('/bin/sh', ['-c', watchdogScript(process.pid), 'cutpoint-temporal', cli.path, ...args], {
      stdio: ['ignore', out, out],
      // Its own process group: a terminal's Ctrl-C must not kill the server before cutpoint's workers have drained.
      detached: true,
    });
    closeSync(out);
    const exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: child.exitCode, signal: child.signalCode }));
    });
    let stopped: Promise<void> | undefined;
    const stop = () => {
      stopped ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        killGroup(child.pid, 'SIGTERM');
        const killer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
      })();
      return stopped;
    };
    const address = `${ip}:${port}`;
    log.info({ address, ui: uiPort ? `http://${ip}:${uiPort}` : null, cli: cli.path, source: cli.source, logFile }, 'starting Temporal dev server');
    try {
      await waitReady(address, exited, opts.readyTimeoutMs ?? 60_000, logFile, opts.signal);
    } catch (e) {
      await stop();
      const portTaken = /address already in use/i.test(readTail(logFile, 50));
      if (portTaken && attempt < 3 && !opts.port && !opts.signal?.aborted) {
        log.warn({ address }, 'port taken between choosing and binding; retrying on other ports');
        continue;
      }
      throw e;
    }
    return {
      address,
      namespace,
      uiUrl: uiPort ? `http://${ip}:${uiPort}` : undefined,
      source: cli.source,
      cliPath: cli.path,
      logFile,
      stop,
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

