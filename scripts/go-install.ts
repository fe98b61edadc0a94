/**
 * Builds a Go program from the Go module proxy into cutpoint's per-user cache (`cacheDir()/<name>/<version>/<binary>`):
 * the Temporal CLI the dev server runs (scripts/temporal/cli-locator.ts) and restic, the benchmark's peer
 * (scripts/bench/restic.ts). One build per tool and version, reused afterwards.
 *
 * `go install` runs with CGO off, into a temporary GOBIN beside the target that is renamed into place, with GOPATH,
 * GOMODCACHE and GOCACHE under `cacheDir()/go`, so nothing lands outside the cache and a half-written binary is never
 * seen. A directory lock per tool and version keeps two processes (a test run and `npm start`, two benchmarks) from
 * building the same thing at once; a lock whose owner died is taken over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';
import { pidAlive } from '../lib/process.ts';
import { cacheDir } from './temporal/paths.ts';

/** A program `go install` can build from the module proxy. */
export interface GoTool {
  /** What log lines and errors call it: `the Temporal CLI`, `restic`. */
  label: string;
  /** The package to install, without version: `github.com/restic/restic/cmd/restic`. */
  pkg: string;
  /** The release, without the `v`: `0.18.1`. */
  version: string;
  /** The executable `go install` writes (the package's last path element). */
  binary: string;
  /** The cache folder that holds its versions: `restic` → `cacheDir()/restic/<version>/<binary>`. */
  cacheName: string;
  /** `-X` flags and the like, added to `-s -w`. */
  ldflags?: string;
  /** The error a failed build (or a build that cannot start) is reported with. */
  unavailable: (message: string, options?: { cause?: unknown }) => Error;
}

/** Whether `path` is an executable regular file. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first executable `name` on `env.PATH`. */
export function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** True when a `go` toolchain is on PATH. */
export function haveGo(env: NodeJS.ProcessEnv = process.env): boolean {
  return onPath('go', env) !== undefined;
}

/** The cached binary's path (whether or not it exists yet). */
export function cachedToolPath(tool: GoTool, env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDir(env), tool.cacheName, tool.version, tool.binary);
}

/** The Go workspace every build shares: module downloads and the build cache stay inside cutpoint's cache. */
export function goWorkspace(env: NodeJS.ProcessEnv = process.env): { GOPATH: string; GOMODCACHE: string; GOCACHE: string } {
  const root = join(cacheDir(env), 'go');
  return { GOPATH: root, GOMODCACHE: join(root, 'pkg', 'mod'), GOCACHE: join(root, 'build') };
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
 * Directory lock so that two processes never build the same tool into the cache at once. The owner writes
 * `<pid> <hostname>` into it; a waiter takes the lock over when that pid is dead (or, when the owner cannot be
 * checked, when the lock is older than {@link LOCK_STALE_MS}). Two waiters taking over the same dead lock at once may
 * both build: harmless, as each builds into its own temporary GOBIN and renames atomically.
 */
async function withBuildLock<T>(tool: GoTool, dir: string, log: Logger, fn: (lock: string) => Promise<T>): Promise<T> {
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
        log.warn({ lock, reason: stale }, `taking over a stale build lock of ${tool.label}`);
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw tool.unavailable(`timed out waiting for another build of ${tool.label} (lock ${lock})`);
      log.info({ lock }, `another process is building ${tool.label}; waiting`);
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
 * Builds `tool` with `go install` into the cache, unless it is there already (another process may have built it while
 * this one waited for the lock: `built` is then false). The first build downloads the modules and compiles them, which
 * takes minutes on 2 cores; progress lines go to the logger. The caller checks that `go` is on PATH first; a missing
 * `go` is still reported through `tool.unavailable`.
 */
export async function goInstall(tool: GoTool, log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<{ path: string; built: boolean }> {
  const target = cachedToolPath(tool, env);
  const dir = join(target, '..');
  mkdirSync(dir, { recursive: true });
  return withBuildLock(tool, dir, log, async (lock) => {
    if (isExecutable(target)) return { path: target, built: false };
    const gobin = mkdtempSync(join(dir, '.gobin-'));
    const started = Date.now();
    const module = `${tool.pkg}@v${tool.version}`;
    log.warn({ module, cache: target }, `building ${tool.label} from the Go module proxy (first run only; several minutes)`);
    try {
      await new Promise<void>((resolve, reject) => {
        // -modcacherw: the module cache under cacheDir() stays removable with a plain `rm -r`.
        const child = spawn('go', ['install', '-modcacherw', '-ldflags', `-s -w${tool.ldflags ? ` ${tool.ldflags}` : ''}`, module], {
          env: { ...env, ...goWorkspace(env), CGO_ENABLED: '0', GOBIN: gobin, GOFLAGS: env.GOFLAGS ?? '-buildvcs=false' },
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
          log.info({ elapsedSec: Math.round((Date.now() - started) / 1000) }, `still building ${tool.label}`);
        }, 30_000);
        child.on('error', (e) => {
          clearInterval(ticker);
          releaseSignals();
          reject(tool.unavailable(`cannot run go install: ${e.message}`, { cause: e }));
        });
        child.on('exit', (code, signal) => {
          clearInterval(ticker);
          releaseSignals();
          if (code === 0) resolve();
          else reject(tool.unavailable(`go install failed (${code ?? signal}):\n${tail.join('\n')}`));
        });
      });
      const built = join(gobin, tool.binary);
      if (!existsSync(built)) throw tool.unavailable(`go install succeeded but ${built} is missing`);
      renameSync(built, target);
      log.warn({ seconds: Math.round((Date.now() - started) / 1000), path: target }, `built ${tool.label}`);
      return { path: target, built: true };
    } finally {
      rmSync(gobin, { recursive: true, force: true });
    }
  });
}
