/**
 * {@link NodeController}: starts and stops `mongod` processes for a restore, exactly as an operator would: the
 * executable from a configured path (a PSMDB binary in production, the simulator's `sim/bin/mongod` in tests) with
 * mongod's own flags, then talks to it over the wire with the `mongodb` driver. There is no in-process shortcut, so
 * the restore sequence is the same for a real server and for the simulator.
 *
 * Processes are started detached (their own process group, output to a log file), so they survive the agent that
 * started them: the final mongods are the restored cluster, and a restarted agent finds the temporary ones by the
 * pid and port it recorded (see `restore-state.ts`) and stops them before it repeats a step.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { MongoClient, MongoServerError, type Document } from 'mongodb';
import { CutpointError } from '../../../common/errors.ts';
import { pidAlive, sleep } from '../../../lib/process.ts';

/** The mongod executable: `CUTPOINT_MONGOD_PATH`, else `mongod` on PATH (like PBM's `mongodLocation`). */
export function mongodPathFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.CUTPOINT_MONGOD_PATH?.trim() || 'mongod';
}

/** How to start one mongod: the flags a real mongod takes. */
export interface MongodSpec {
  dbpath: string;
  port: number;
  /** `--bind_ip` (default 127.0.0.1: temporary starts must not take client traffic). */
  bindIp?: string;
  replSet?: string;
  clusterRole?: 'configsvr' | 'shardsvr';
  /** `--setParameter name=value`, in order. */
  setParameters?: Record<string, string | number | boolean>;
  /** The source's startup options as mongod arguments (common/startup-options.ts `startupArgs`). */
  startupArgs?: string[];
  /** Where the process's stdout and stderr go (appended). */
  logPath: string;
}

/** A mongod this controller started. */
export interface MongodHandle {
  pid: number;
  port: number;
}

/** mongod's Unauthorized error code. */
const UNAUTHORIZED = 13;

/** The `--dbpath` of a running process's command line (Linux /proc), or undefined. */
function dbpathInCommandLine(pid: number): string | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('--dbpath');
    return i >= 0 ? argv[i + 1] : undefined;
  } catch {
    return undefined;
  }
}

/** The command line for a spec, as mongod takes it. */
export function mongodArgs(spec: MongodSpec): string[] {
  const args = ['--dbpath', spec.dbpath, '--port', String(spec.port), '--bind_ip', spec.bindIp ?? '127.0.0.1'];
  if (spec.replSet) args.push('--replSet', spec.replSet);
  if (spec.clusterRole) args.push(`--${spec.clusterRole}`);
  for (const [k, v] of Object.entries(spec.setParameters ?? {})) args.push('--setParameter', `${k}=${String(v)}`);
  args.push(...(spec.startupArgs ?? []));
  return args;
}

/** A free TCP port on 127.0.0.1 for a temporary start. */
export function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}


/** The last lines of a log file, for error messages. */
function logTail(path: string, lines = 15): string {
  try {
    const size = statSync(path).size;
    const text = readFileSync(path, 'utf8').slice(Math.max(0, size - 8192));
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A direct, single-server client to a local mongod (no replica-set discovery: members may be alone). */
export function directClient(host: string, timeoutMs = 5000): MongoClient {
  return new MongoClient(`mongodb://${host}/?directConnection=true&readPreference=primaryPreferred`, {
    serverSelectionTimeoutMS: timeoutMs,
    connectTimeoutMS: timeoutMs,
    appName: 'cutpoint-restore',
    retryReads: false,
    retryWrites: false,
  });
}

/** Starts, checks and stops mongod processes. Stateless apart from its configuration. */
export class NodeController {
  constructor(
    /** The mongod executable (see {@link mongodPathFromEnv}). */
    readonly mongodPath: string = mongodPathFromEnv(),
    /** How long a start may take before it is declared failed. */
    readonly startTimeoutMs = 120_000,
  ) {}

  /**
   * Starts mongod detached and waits until it answers `hello` on its port. A process that exits first, or does not
   * answer in time (then it is killed), fails with MONGOD_START_FAILED and the end of its log.
   */
  async start(spec: MongodSpec, onWait?: () => void): Promise<MongodHandle> {
    const args = mongodArgs(spec);
    const fd = openSync(spec.logPath, 'a');
    let exit: { code: number | null; signal: string | null } | undefined;
    let spawnError: Error | undefined;
    let pid: number | undefined;
    try {
      const child = spawn(this.mongodPath, args, { detached: true, stdio: ['ignore', fd, fd] });
      child.on('error', (e) => (spawnError = e));
      child.on('exit', (code, signal) => (exit = { code, signal }));
      child.unref();
      pid = child.pid;
    } finally {
      closeSync(fd);
    }
    const host = `127.0.0.1:${spec.port}`;
    const deadline = Date.now() + this.startTimeoutMs;
    const describe = () => `${this.mongodPath} ${args.join(' ')}`;
    for (;;) {
      if (spawnError || pid === undefined) {
        throw new CutpointError('MONGOD_START_FAILED', `cannot run ${describe()}: ${spawnError?.message ?? 'no pid'} (set CUTPOINT_MONGOD_PATH on the agent to the mongod executable)`, undefined, { cause: spawnError });
      }
      if (exit) {
        throw new CutpointError('MONGOD_START_FAILED', `${describe()} exited (code ${exit.code ?? exit.signal}) before it answered; its log ${spec.logPath} ends:\n${logTail(spec.logPath)}`);
      }
      if (await this.answers(host)) return { pid, port: spec.port };
      if (Date.now() > deadline) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
        throw new CutpointError('MONGOD_START_FAILED', `${describe()} did not answer within ${this.startTimeoutMs} ms; its log ${spec.logPath} ends:\n${logTail(spec.logPath)}`);
      }
      onWait?.();
      await sleep(200);
    }
  }

  /** Whether a mongod answers `hello` at `host` within a short time. */
  async answers(host: string): Promise<boolean> {
    const client = directClient(host, 1000);
    try {
      await client.db('admin').command({ hello: 1 });
      return true;
    } catch {
      return false;
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  /**
   * The dbpath the mongod at `host` runs on (getCmdLineOpts), or undefined when none answers. A mongod started with
   * access control refuses getCmdLineOpts to the agent (which holds no credentials of the restored cluster): then the
   * command line of `pid`, the process this restore started there, tells.
   */
  async dbpathOf(host: string, pid?: number): Promise<string | undefined> {
    const client = directClient(host, 1000);
    try {
      const opts = await client.db('admin').command({ getCmdLineOpts: 1 });
      return String((opts.parsed as Document | undefined)?.storage?.dbPath ?? '');
    } catch (e) {
      if (e instanceof MongoServerError && e.code === UNAUTHORIZED && pid !== undefined) return dbpathInCommandLine(pid);
      return undefined;
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  /** Runs `fn` with a direct client to the mongod at `host`. */
  async withClient<T>(host: string, fn: (client: MongoClient) => Promise<T>): Promise<T> {
    const client = directClient(host);
    try {
      await client.connect();
      return await fn(client);
    } finally {
      await client.close().catch(() => undefined);
    }
  }

  /**
   * Stops the mongod cleanly: the `shutdown` command (its final checkpoint is what makes a restore step durable),
   * then waits for the process to exit; SIGTERM after `graceMs`, SIGKILL as the last resort. Idempotent.
   */
  async stop(handle: MongodHandle, graceMs = 60_000, onWait?: () => void): Promise<void> {
    if (!pidAlive(handle.pid)) return;
    const client = directClient(`127.0.0.1:${handle.port}`, 2000);
    try {
      // The server closes the connection instead of replying: an error here is the normal outcome. A mongod with
      // access control refuses the command to the agent: SIGTERM is mongod's clean shutdown too.
      await client
        .db('admin')
        .command({ shutdown: 1, timeoutSecs: 15 })
        .catch((e: unknown) => {
          if (e instanceof MongoServerError && e.code === UNAUTHORIZED) process.kill(handle.pid, 'SIGTERM');
        });
    } finally {
      await client.close().catch(() => undefined);
    }
    // mongod treats SIGTERM as a clean shutdown too; SIGKILL only when that is ignored as well.
    const escalation: Array<NodeJS.Signals> = ['SIGTERM', 'SIGKILL'];
    let deadline = Date.now() + graceMs;
    while (pidAlive(handle.pid)) {
      if (Date.now() > deadline) {
        const signal = escalation.shift() ?? 'SIGKILL';
        try {
          process.kill(handle.pid, signal);
        } catch {
          return;
        }
        deadline = Date.now() + 15_000;
      }
      onWait?.();
      await sleep(100);
    }
  }
}
