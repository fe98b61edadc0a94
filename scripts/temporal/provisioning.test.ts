/**
 * Where the Temporal CLI comes from: TEMPORAL_CLI_PATH, PATH, the cache, a Go build into the cache, then the SDK
 * download; and the error that says what to install when all of them fail. Fake executables stand in for the
 * real ones (the real build is exercised by every cold CI run through global-setup).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CutpointError } from '../../common/errors.ts';
import { createLogger } from '../../lib/logger.ts';
import {
  buildTemporalCli,
  cachedCliPath,
  findTemporalCli,
  TEMPORAL_CLI_VERSION,
  TemporalCliUnavailableError,
} from './cli-locator.ts';
import { startDevServer } from './dev-server.ts';
import { fakeExecutable, toolSandbox } from '../testing.ts';

const log = createLogger('silent');

/** The error a promise rejects with; a promise that resolves fails the test. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as Error,
  );
}

const sandbox = () => toolSandbox('prov');

describe('findTemporalCli', () => {
  it('prefers TEMPORAL_CLI_PATH, then PATH, then the cache', () => {
    const s = sandbox();
    const explicit = fakeExecutable(join(s.root, 'explicit'), 'temporal');
    const onPath = fakeExecutable(s.bin, 'temporal');
    const env = { PATH: s.bin, CUTPOINT_CACHE_DIR: s.cache };
    const cached = fakeExecutable(join(cachedCliPath(env), '..'), 'temporal');

    expect(findTemporalCli({ ...env, TEMPORAL_CLI_PATH: explicit })).toEqual({ path: explicit, source: 'TEMPORAL_CLI_PATH' });
    expect(findTemporalCli(env)).toEqual({ path: onPath, source: 'PATH' });
    expect(findTemporalCli({ ...env, PATH: s.empty })).toEqual({ path: cached, source: 'cache' });
  });

  it('rejects a TEMPORAL_CLI_PATH that is not executable, by name, as bad input', () => {
    const call = () => findTemporalCli({ TEMPORAL_CLI_PATH: '/nonexistent/temporal' });
    expect(call).toThrow(/TEMPORAL_CLI_PATH=\/nonexistent\/temporal is not an executable/);
    expect(call).toThrow(expect.objectContaining({ code: 'BAD_USAGE' }) as Error);
  });

  it('finds nothing in an empty world', () => {
    const s = sandbox();
    expect(findTemporalCli({ PATH: s.empty, CUTPOINT_CACHE_DIR: s.cache })).toBeUndefined();
  });
});

describe('buildTemporalCli', () => {
  it('runs `go install` of the pinned release with CGO off into a temp GOBIN and moves the binary into the cache', async () => {
    const s = sandbox();
    const record = join(s.root, 'go-args');
    // A fake `go` records how it was called and "builds" by writing $GOBIN/temporal.
    fakeExecutable(s.bin, 'go', `echo "$@|CGO_ENABLED=$CGO_ENABLED|$GOPATH|$GOMODCACHE|$GOCACHE" > ${record}; printf '#!/bin/sh\\necho built' > "$GOBIN/temporal"; /bin/chmod +x "$GOBIN/temporal"`);
    const env = { PATH: s.bin, CUTPOINT_CACHE_DIR: s.cache };
    const built = await buildTemporalCli(log, env);
    expect(built).toEqual({ path: cachedCliPath(env), source: 'built' });
    expect(existsSync(built.path)).toBe(true);
    const args = readFileSync(record, 'utf8');
    expect(args).toContain(`install -modcacherw -ldflags -s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION} github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`);
    expect(args).toContain('CGO_ENABLED=0');
    // Modules and the build cache stay inside cutpoint's cache (scripts/go-install.ts).
    expect(args).toContain(`|${s.cache}/go|${s.cache}/go/pkg/mod|${s.cache}/go/build`);
    // Next time the cache answers without building.
    expect(findTemporalCli({ ...env, PATH: s.empty })).toEqual({ path: built.path, source: 'cache' });
  });

  it('takes over at once a build lock left by a dead process', async () => {
    const s = sandbox();
    fakeExecutable(s.bin, 'go', `printf '#!/bin/sh\\necho built' > "$GOBIN/temporal"; /bin/chmod +x "$GOBIN/temporal"`);
    const env = { PATH: s.bin, CUTPOINT_CACHE_DIR: s.cache };
    const lock = join(cachedCliPath(env), '..', '.build.lock');
    mkdirSync(lock, { recursive: true });
    const dead = spawnSync('/bin/sh', ['-c', 'exit 0']).pid; // exited and reaped: nobody has this pid now
    writeFileSync(join(lock, 'owner'), `${dead} ${hostname()}\n`);
    const started = Date.now();
    const built = await buildTemporalCli(log, env);
    expect(built.source).toBe('built');
    expect(Date.now() - started).toBeLessThan(4_000); // no 5-second wait behind the dead owner
    expect(existsSync(lock)).toBe(false);
  });

  it('reports a failed build with the tail of its output and leaves no partial binary', async () => {
    const s = sandbox();
    fakeExecutable(s.bin, 'go', 'echo "go: module lookup disabled by GOPROXY=off" >&2; exit 1');
    const env = { PATH: s.bin, CUTPOINT_CACHE_DIR: s.cache };
    await expect(buildTemporalCli(log, env)).rejects.toThrow(/go install failed \(1\):\ngo: module lookup disabled/);
    expect(existsSync(cachedCliPath(env))).toBe(false);
  });
});

describe('startDevServer fallbacks', () => {
  it('without CLI and Go, tries the SDK download, and when that fails says what to install', async () => {
    const s = sandbox();
    let downloadTried = false;
    const err = await rejection(
      startDevServer({ logDir: s.root }, log, { PATH: s.empty, CUTPOINT_CACHE_DIR: s.cache }, async () => {
        downloadTried = true;
        throw new Error('getaddrinfo ENOTFOUND temporal.download');
      }),
    );
    expect(downloadTried).toBe(true);
    expect(err).toBeInstanceOf(TemporalCliUnavailableError);
    expect((err as CutpointError).code).toBe('TEMPORAL_UNAVAILABLE');
    expect(err.message).toMatch(/No Temporal server could be provisioned/);
    // The download's own error is kept as the cause (the CLI prints the chain), not flattened into the message.
    expect((err.cause as Error | undefined)?.message).toMatch(/ENOTFOUND/);
    expect(err.message).toMatch(/Install one of: the Temporal CLI .* or Go >= 1\.25 .* TEMPORAL_ADDRESS/s);
  });

  it('fails with the server log when the CLI exits at once', async () => {
    const s = sandbox();
    const broken = fakeExecutable(s.bin, 'temporal', 'echo "flag provided but not defined: --bogus" >&2; exit 3');
    const started = Date.now();
    const err = await rejection(startDevServer({ logDir: s.root, readyTimeoutMs: 30_000 }, log, { TEMPORAL_CLI_PATH: broken }));
    // At once, with the CLI's own exit code, not after the ready timeout.
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(err.message).toMatch(/exited with code 3/);
    expect(err.message).toMatch(/flag provided but not defined/);
  });
});
