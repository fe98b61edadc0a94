/**
 * restic, the benchmark's peer (`npm run bench -- incremental --peers restic`): located or built from the Go module
 * proxy into the per-user cache the way the Temporal CLI is (scripts/go-install.ts), and run against a local
 * repository with its password in a file.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { cachedToolPath, goInstall, haveGo, isExecutable, type GoTool } from '../go-install.ts';
import { cpuSecondsOf } from './stack.ts';

/** The restic release the benchmark builds and measures. */
export const RESTIC_VERSION = '0.18.1';

/** Raised when no restic can be found or built; the message says what to install. */
export class ResticUnavailableError extends Error {
  override name = 'ResticUnavailableError';
}

/** How scripts/go-install.ts builds it: cached as `restic/<version>/restic`. */
export const RESTIC: GoTool = {
  label: 'restic',
  pkg: 'github.com/restic/restic/cmd/restic',
  version: RESTIC_VERSION,
  binary: 'restic',
  cacheName: 'restic',
  unavailable: (message, options) => new ResticUnavailableError(message, options),
};

/** A restic executable and where it came from. */
export interface LocatedRestic {
  path: string;
  source: 'CUTPOINT_RESTIC_PATH' | 'cache' | 'built';
}

/**
 * `CUTPOINT_RESTIC_PATH`, else the cached build of {@link RESTIC_VERSION}, else a `go install` of it into the cache.
 * A restic on PATH is not used: the figures are for a known release (the result records `restic version` anyway).
 */
export async function locateRestic(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<LocatedRestic> {
  const explicit = env.CUTPOINT_RESTIC_PATH;
  if (explicit) {
    if (!isExecutable(explicit)) throw new ResticUnavailableError(`CUTPOINT_RESTIC_PATH=${explicit} is not an executable file`);
    return { path: explicit, source: 'CUTPOINT_RESTIC_PATH' };
  }
  const cached = cachedToolPath(RESTIC, env);
  if (isExecutable(cached)) return { path: cached, source: 'cache' };
  if (!haveGo(env)) {
    throw new ResticUnavailableError(
      `--peers restic needs restic ${RESTIC_VERSION}: it is not in the cache (${cached}) and there is no 'go' on PATH to build it ` +
        `with. Install Go (the bench then runs 'go install ${RESTIC.pkg}@v${RESTIC_VERSION}' into that cache once), or set ` +
        'CUTPOINT_RESTIC_PATH to a restic executable.',
    );
  }
  const { path, built } = await goInstall(RESTIC, log, env);
  return { path, source: built ? 'built' : 'cache' };
}

/** `restic version`'s line, e.g. `restic 0.18.1 compiled with go1.26.8 on linux/amd64`. */
export function resticVersion(bin: string): string {
  return execFileSync(bin, ['version'], { encoding: 'utf8' }).trim();
}

/** The end of `restic backup --json`: its summary message (fields as restic 0.17+ prints them). */
export interface ResticSummary {
  files_new: number;
  files_changed: number;
  files_unmodified: number;
  data_added: number;
  /** Bytes added to the repository after compression (restic 0.17+). */
  data_added_packed?: number;
  total_files_processed: number;
  total_bytes_processed: number;
  snapshot_id: string;
}

/** The summary line of `restic backup --json` output. */
export function parseBackupSummary(stdout: string): ResticSummary {
  for (const line of stdout.split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    try {
      const m = JSON.parse(line) as { message_type?: string };
      if (m.message_type === 'summary') return m as unknown as ResticSummary;
    } catch {
      // a partial status line
    }
  }
  throw new Error(`restic backup printed no summary:\n${stdout.slice(-2000)}`);
}

/**
 * One local restic repository in `dir/repo`, its password in `dir/password` (mode 600) and its cache in `dir/cache`,
 * so that neither the user's restic settings (every `RESTIC_*` variable is dropped) nor their `~/.cache/restic` take
 * part. Compression is restic's default (`auto`) for a version-2 repository.
 */
export class ResticRepo {
  readonly repo: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly cache: string;

  constructor(
    private readonly bin: string,
    dir: string,
  ) {
    mkdirSync(dir, { recursive: true });
    this.repo = join(dir, 'repo');
    this.cache = join(dir, 'cache');
    const password = join(dir, 'password');
    writeFileSync(password, `${randomBytes(24).toString('base64')}\n`);
    chmodSync(password, 0o600);
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RESTIC_')));
    this.env = { ...inherited, RESTIC_PASSWORD_FILE: password };
  }

  /** `restic init` (not measured). */
  init(): void {
    execFileSync(this.bin, ['init', '--repo', this.repo, '--cache-dir', this.cache], { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /**
   * `restic backup <path>` then `sync -f` of the repository, timed together (a cutpoint backup and `cp -r` are measured
   * to durability too, scripts/bench/baseline.ts); with the CPU time restic used.
   */
  async backup(path: string): Promise<{ seconds: number; cpuSeconds: number | null; summary: ResticSummary }> {
    const cpu0 = cpuSecondsOf('self', true);
    const t0 = process.hrtime.bigint();
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(this.bin, ['backup', '--repo', this.repo, '--cache-dir', this.cache, '--json', path], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        // exit 3: some files could not be read (a snapshot was still written); anything else non-zero is a failure.
        if (code !== 0) reject(new Error(`restic backup exited ${code ?? signal}:\n${Buffer.concat(err).toString().slice(-2000)}`));
        else resolve(Buffer.concat(out).toString());
      });
    });
    execFileSync('sync', ['-f', this.repo], { stdio: ['ignore', 'ignore', 'inherit'] });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu1 = cpuSecondsOf('self', true);
    return { seconds, cpuSeconds: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0, summary: parseBackupSummary(stdout) };
  }
}
