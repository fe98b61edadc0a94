/**
 * Finds a `temporal` CLI to run the dev server with, building it from the Go module proxy when none is installed.
 *
 * Order: TEMPORAL_CLI_PATH, PATH, the per-user cache, a `go install` of the last go-installable release
 * into that cache. When nothing works the caller may fall back to @temporalio/testing's download (machines with
 * internet); see dev-server.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';
import { CutpointError } from '../../common/errors.ts';
import { cacheDir } from './paths.ts';
import { pidAlive } from '../../lib/process.ts';

/**
 * v1.5.1 is the last release that `go install pkg@version` accepts: from v1.6.0 on, the CLI's go.mod has a `replace`
 * directive, and `go install` refuses any module whose go.mod has one. Its dev server is Temporal Server 1.29.1 with
 * the Web UI embedded.
 */
export const TEMPORAL_CLI_VERSION = '1.5.1';
const MODULE = 'github.com/temporalio/cli/cmd/temporal';
const VERSION_LDFLAG = `-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`;

/** Where a located CLI came from. */
export type CliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'built';

/** A `temporal` executable and where it was found. */
export interface LocatedCli {
  path: string;
  source: CliSource;
}

/** Raised when no CLI could be found or built (TEMPORAL_UNAVAILABLE, exit 1); its message says what to install. */
export class TemporalCliUnavailableError extends CutpointError {
  override name = 'TemporalCliUnavailableError';
  /** @param options `cause`: the underlying failure (a failed download, a failed build). */
  constructor(message: string, options?: { cause?: unknown }) {
    super('TEMPORAL_UNAVAILABLE', message, undefined, options);
  }
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The cached binary's path (whether or not it exists yet). */
export function cachedCliPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDir(env), 'temporal-cli', TEMPORAL_CLI_VERSION, 'temporal');
}

/** Looks without building: TEMPORAL_CLI_PATH (BAD_USAGE when it is not an executable), PATH, cache. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): LocatedCli | undefined {
  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new CutpointError('BAD_USAGE', `TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
    }
    return { path: explicit, source: 'TEMPORAL_CLI_PATH' };
  }
  const fromPath = onPath('temporal', env);
  if (fromPath) return { path: fromPath, source: 'PATH' };
  const cached = cachedCliPath(env);
  if (isExecutable(cached)) return { path: cached, source: 'cache' };
  return undefined;
}

/** True when a `go` toolchain is on PATH. */
export function haveGo(env: NodeJS.ProcessEnv = process.env): boolean {
  return onPath('go', env) !== undefined;
}

/** How long a caller waits for another process's build before giving up. */
const LOCK_WAIT_MS = 30 * 60_000;
/**
 * A lock whose owner cannot be checked (no pid file, or written on another host sharing the cache) is stale after
 * this long. Shorter than {@link LOCK_WAIT_MS}, so a waiter takes a dead lock over instead of timing out behind it.
 * A lock whose owner runs on this host is taken over as soon as that pid is gone.
 */
const LOCK_STALE_MS = 20 * 60_000;
const LOCK_POLL_MS = 5_000;
const LOCK_OWNER_FILE = 'owner';

/** What the owner writes into the lock: `<pid> <hostname>`. */
const ownerLine = () => `${process.pid} ${hostname()}`;

/** Removes `lock` if it is still ours (after a signal another process may already hold a new one). */
function releaseLock(lock: string): void {
  let owner = '';
  try {
    owner = readFileSync(join(lock, LOCK_OWNER_FILE), 'utf8').trim();
  } catch {
    return; // gone already, or someone else's lock that has no owner file yet
  }
  if (owner === ownerLine()) rmSync(lock, { recursive: true, force: true });
}

/** Why the lock at `lock` may be taken over, or undefined while its owner may still be building. */
function staleReason(lock: string): string | undefined {
  let owner: { pid: number; host: string } | undefined;
  try {
    const [pid, host] = readFileSync(join(lock, LOCK_OWNER_FILE), 'utf8').trim().split(/\s+/);
    if (pid && /^\d+$/.test(pid)) owner = { pid: Number(pid), host: host ?? '' };
  } catch {
    // no owner file yet (just created, or written by a process that died in between): judged by age below
  }
  if (owner && owner.host === hostname()) return pidAlive(owner.pid) ? undefined : `its owner pid ${owner.pid} is gone`;
  const age = Date.now() - statSync(lock).mtimeMs;
  return age > LOCK_STALE_MS ? `it is ${Math.round(age / 60_000)} min old and its owner cannot be checked` : undefined;
}

/**
 * Directory lock so that two processes (a test run and `npm start`) never build into the cache at once. The owner
 * writes `<pid> <hostname>` into it; a waiter takes the lock over when that pid is dead (or, when the owner cannot
 * be checked, when the lock is older than {@link LOCK_STALE_MS}). Two waiters taking over the same dead lock at
 * once may both build: harmless, as each builds into its own temporary GOBIN and renames atomically.
 */
async function withBuildLock<T>(dir: string, log: Logger, fn: (lock: string) => Promise<T>): Promise<T> {
  const lock = join(dir, '.build.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      try {
        writeFileSync(join(lock, LOCK_OWNER_FILE), `${ownerLine()}\n`);
      } catch (err) {
        rmSync(lock, { recursive: true, force: true });
        throw err;
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let stale: string | undefined;
      try {
        stale = staleReason(lock);
      } catch (err) {
        // Removed between our mkdir and stat: the owner just finished; try again at once.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      if (stale) {
        log.warn({ lock, reason: stale }, 'taking over a stale Temporal CLI build lock');
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new TemporalCliUnavailableError(`timed out waiting for another build (lock ${lock})`);
      log.info({ lock }, 'another process is building the Temporal CLI; waiting');
      await new Promise((r) => setTimeout(r, LOCK_POLL_MS));
    }
  }
  try {
    return await fn(lock);
  } finally {
    releaseLock(lock);
  }
}

/**
 * While `child` runs, SIGINT/SIGTERM of this process kill it and release the build lock and remove the temporary
 * GOBIN at once. When nobody else listens for that signal (a plain script, not the cutpoint CLI), the signal is
 * raised again afterwards so the process still ends as it would have without us. Returns the un-registration.
 */
function killOnSignal(child: ChildProcess, lock: string, gobin: string): () => void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  const release = () => signals.forEach((s) => process.off(s, handler));
  function handler(signal: NodeJS.Signals) {
    child.kill('SIGTERM');
    releaseLock(lock);
    rmSync(gobin, { recursive: true, force: true });
    if (process.listenerCount(signal) === 1) {
      release();
      process.kill(process.pid, signal);
    }
  }
  signals.forEach((s) => process.on(s, handler));
  return release;
}

/**
 * Builds the CLI with `go install` into the cache (atomically: temp GOBIN, then rename). The first build downloads
 * a few hundred MB of modules and takes minutes on 2 cores; progress lines go to the logger.
 */
export async function buildTemporalCli(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<LocatedCli> {
  const target = cachedCliPath(env);
  const dir = join(target, '..');
  mkdirSync(dir, { recursive: true });
  return withBuildLock(dir, log, async (lock) => {
    if (isExecutable(target)) return { path: target, source: 'cache' as const };
    const gobin = mkdtempSync(join(dir, '.gobin-'));
    const started = Date.now();
    log.warn(
      { module: `${MODULE}@v${TEMPORAL_CLI_VERSION}`, cache: target },
      'building the Temporal CLI from the Go module proxy (first run only; several minutes)',
    );
    try {
      await new Promise<void>((resolve, reject) => {
        const child = spawn('go', ['install', '-ldflags', `-s -w ${VERSION_LDFLAG}`, `${MODULE}@v${TEMPORAL_CLI_VERSION}`], {
          env: { ...env, CGO_ENABLED: '0', GOBIN: gobin, GOFLAGS: env.GOFLAGS ?? '-buildvcs=false' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const releaseSignals = killOnSignal(child, lock, gobin);
        const tail: string[] = [];
        const onData = (chunk: Buffer) => {
          for (const line of chunk.toString().split('\n')) {
            if (!line.trim()) continue;
            tail.push(line);
            if (tail.length > 30) tail.shift();
            log.debug({ go: line }, 'go install');
          }
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        const ticker = setInterval(() => {
          log.info({ elapsedSec: Math.round((Date.now() - started) / 1000) }, 'still building the Temporal CLI');
        }, 30_000);
        child.on('error', (e) => {
          clearInterval(ticker);
          releaseSignals();
          reject(new TemporalCliUnavailableError(`cannot run go install: ${e.message}`, { cause: e }));
        });
        child.on('exit', (code, signal) => {
          clearInterval(ticker);
          releaseSignals();
          if (code === 0) resolve();
          else reject(new TemporalCliUnavailableError(`go install failed (${code ?? signal}):\n${tail.join('\n')}`));
        });
      });
      const built = join(gobin, 'temporal');
      if (!existsSync(built)) throw new TemporalCliUnavailableError(`go install succeeded but ${built} is missing`);
      renameSync(built, target);
      log.warn({ seconds: Math.round((Date.now() - started) / 1000), path: target }, 'Temporal CLI built');
      return { path: target, source: 'built' as const };
    } finally {
      rmSync(gobin, { recursive: true, force: true });
    }
  });
}
