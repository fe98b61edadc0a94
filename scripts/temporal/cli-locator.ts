/**
 * Finds a `temporal` CLI to run the dev server with, building it from the Go module proxy when none is installed.
 *
 * Order (issue 2): TEMPORAL_CLI_PATH, PATH, the per-user cache, a `go install` of the last go-installable release
 * into that cache. When nothing works the caller may fall back to @temporalio/testing's download (machines with
 * internet); see dev-server.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';
import { cacheDir } from './paths.ts';

/**
 * v1.5.1 is the last release whose go.mod has no `replace` directive, which `go install pkg@version` refuses
 * (temporal-notes.md section 1a). Its dev server is Temporal Server 1.29.1 with the Web UI embedded.
 */
export const TEMPORAL_CLI_VERSION = '1.5.1';
const MODULE = 'github.com/temporalio/cli/cmd/temporal';
const VERSION_LDFLAG = `-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`;

export type CliSource = 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'built';

export interface LocatedCli {
  path: string;
  source: CliSource;
}

/** Raised when no CLI could be found or built; its message says what to install. */
export class TemporalCliUnavailableError extends Error {
  override name = 'TemporalCliUnavailableError';
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

/** Looks without building: TEMPORAL_CLI_PATH, PATH, cache. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): LocatedCli | undefined {
  const explicit = env.TEMPORAL_CLI_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new TemporalCliUnavailableError(`TEMPORAL_CLI_PATH=${explicit} is not an executable file`);
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

/** Directory lock so that two processes (a test run and `npm start`) never build into the cache at once. */
async function withBuildLock<T>(dir: string, log: Logger, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, '.build.lock');
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock older than the longest plausible build is stale (a killed build); take it over.
      const age = Date.now() - statSync(lock).mtimeMs;
      if (age > 40 * 60_000) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new TemporalCliUnavailableError(`timed out waiting for another build (lock ${lock})`);
      log.info({ lock }, 'another process is building the Temporal CLI; waiting');
      await new Promise((r) => setTimeout(r, 5_000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Builds the CLI with `go install` into the cache (atomically: temp GOBIN, then rename). The first build downloads
 * a few hundred MB of modules and takes minutes on 2 cores; progress lines go to the logger.
 */
export async function buildTemporalCli(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<LocatedCli> {
  const target = cachedCliPath(env);
  const dir = join(target, '..');
  mkdirSync(dir, { recursive: true });
  return withBuildLock(dir, log, async () => {
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
          reject(e);
        });
        child.on('exit', (code, signal) => {
          clearInterval(ticker);
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

/** The CLI's self-reported version line, for logs and error messages. */
export function cliVersion(path: string): string {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  return (r.stdout || r.stderr || '').trim();
}
