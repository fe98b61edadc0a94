/**
 * Finds a `temporal` CLI to run the dev server with, building it from the Go module proxy when none is installed.
 *
 * Order: TEMPORAL_CLI_PATH, PATH, the per-user cache, a `go install` of the last go-installable release
 * into that cache. When nothing works the caller may fall back to @temporalio/testing's download (machines with
 * internet); see dev-server.ts.
 */
import type { Logger } from 'pino';
import { CutpointError } from '../../common/errors.ts';
import { cachedToolPath, goInstall, haveGo, isExecutable, onPath, type GoTool } from '../go-install.ts';

export { haveGo };

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

/** How scripts/go-install.ts builds it: cached as `temporal-cli/<version>/temporal`. */
const TEMPORAL_CLI: GoTool = {
  label: 'the Temporal CLI',
  pkg: MODULE,
  version: TEMPORAL_CLI_VERSION,
  binary: 'temporal',
  cacheName: 'temporal-cli',
  ldflags: VERSION_LDFLAG,
  unavailable: (message, options) => new TemporalCliUnavailableError(message, options),
};

/** The cached binary's path (whether or not it exists yet). */
export function cachedCliPath(env: NodeJS.ProcessEnv = process.env): string {
  return cachedToolPath(TEMPORAL_CLI, env);
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

/**
 * Builds the CLI with `go install` into the cache (scripts/go-install.ts: atomically, one build at a time). The first
 * build downloads a few hundred MB of modules and takes minutes on 2 cores; progress lines go to the logger.
 */
export async function buildTemporalCli(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<LocatedCli> {
  const { path, built } = await goInstall(TEMPORAL_CLI, log, env);
  return { path, source: built ? 'built' : 'cache' };
}
