/**
 * Where the benchmark's restic comes from (CUTPOINT_RESTIC_PATH, the cache, a Go build into the cache through
 * scripts/go-install.ts) and how it is run (password file, no inherited RESTIC_* settings). Fake executables stand in
 * for `go` and restic; the real build runs with `npm run bench -- incremental --peers restic`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/logger.ts';
import { cachedToolPath } from '../go-install.ts';
import { locateRestic, parseBackupSummary, RESTIC, RESTIC_VERSION, ResticRepo, ResticUnavailableError } from './restic.ts';
import { fakeExecutable, toolSandbox } from '../testing.ts';

const log = createLogger('silent');

const sandbox = () => toolSandbox('restic');

describe('locateRestic', () => {
  it('builds the pinned release with `go install` into the cache, modules and build cache inside it, then reuses it', async () => {
    const s = sandbox();
    const record = join(s.root, 'go-args');
    fakeExecutable(s.bin, 'go', `echo "$@|CGO_ENABLED=$CGO_ENABLED|$GOPATH|$GOMODCACHE|$GOCACHE" > ${record}; printf '#!/bin/sh\\necho restic' > "$GOBIN/restic"; /bin/chmod +x "$GOBIN/restic"`);
    const env = { PATH: s.bin, CUTPOINT_CACHE_DIR: s.cache };
    const built = await locateRestic(log, env);
    expect(built).toEqual({ path: join(s.cache, 'restic', RESTIC_VERSION, 'restic'), source: 'built' });
    expect(cachedToolPath(RESTIC, env)).toBe(built.path);
    const args = readFileSync(record, 'utf8').trim();
    expect(args).toBe(`install -modcacherw -ldflags -s -w github.com/restic/restic/cmd/restic@v${RESTIC_VERSION}|CGO_ENABLED=0|${s.cache}/go|${s.cache}/go/pkg/mod|${s.cache}/go/build`);
    // No temporary GOBIN or lock is left beside it.
    expect(readFileSync(built.path, 'utf8')).toContain('echo restic');
    expect(existsSync(join(built.path, '..', '.build.lock'))).toBe(false);
    expect(await locateRestic(log, { ...env, PATH: s.empty })).toEqual({ path: built.path, source: 'cache' });
  });

  it('prefers CUTPOINT_RESTIC_PATH, and refuses one that is not executable', async () => {
    const s = sandbox();
    const mine = fakeExecutable(s.bin, 'my-restic', 'exit 0');
    expect(await locateRestic(log, { PATH: s.empty, CUTPOINT_CACHE_DIR: s.cache, CUTPOINT_RESTIC_PATH: mine })).toEqual({ path: mine, source: 'CUTPOINT_RESTIC_PATH' });
    await expect(locateRestic(log, { PATH: s.empty, CUTPOINT_RESTIC_PATH: join(s.root, 'nope') })).rejects.toThrow(/CUTPOINT_RESTIC_PATH=.*nope is not an executable/);
  });

  it('without a cached build and without Go, says what to install', async () => {
    const s = sandbox();
    const err = await locateRestic(log, { PATH: s.empty, CUTPOINT_CACHE_DIR: s.cache }).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(ResticUnavailableError);
    expect((err as Error).message).toMatch(/no 'go' on PATH.*Install Go .*CUTPOINT_RESTIC_PATH/s);
  });

  it('reports a failed build with the tail of its output and leaves no binary', async () => {
    const s = sandbox();
    fakeExecutable(s.bin, 'go', 'echo "go: github.com/restic/restic@v0.18.1: module lookup disabled" >&2; exit 1');
    const env = { PATH: s.bin, CUTPOINT_CACHE_DIR: s.cache };
    await expect(locateRestic(log, env)).rejects.toThrow(/go install failed \(1\):\ngo: github.com\/restic\/restic@v0.18.1: module lookup disabled/);
    expect(existsSync(cachedToolPath(RESTIC, env))).toBe(false);
  });
});

describe('ResticRepo', () => {
  // A restic setting of the caller's (named through a constant: the README's table lists cutpoint's variables only).
  const CALLERS = 'RESTIC_REPOSITORY';
  const saved = process.env[CALLERS];
  afterEach(() => {
    if (saved === undefined) delete process.env[CALLERS];
    else process.env[CALLERS] = saved;
  });

  it('runs restic with its password in a file of its own and none of the caller\'s RESTIC_* settings', async () => {
    const s = sandbox();
    const record = join(s.root, 'restic-env');
    // A fake restic records its arguments and restic settings, and ends a backup with a summary line.
    const bin = fakeExecutable(
      s.bin,
      'restic',
      `echo "$1|$RESTIC_PASSWORD_FILE|$RESTIC_REPOSITORY" >> ${record}\n` +
        `[ "$1" = init ] && mkdir -p "$3"\n` +
        `[ "$1" = backup ] && echo '{"message_type":"summary","files_new":2,"files_changed":0,"files_unmodified":0,"data_added":10,"total_files_processed":2,"total_bytes_processed":10,"snapshot_id":"x"}'\nexit 0`,
    );
    process.env[CALLERS] = '/somewhere/else';
    const repo = new ResticRepo(bin, join(s.root, 'r'));
    repo.init();
    const b = await repo.backup(s.root);
    expect(b.summary.total_bytes_processed).toBe(10);
    const password = join(s.root, 'r', 'password');
    expect(readFileSync(record, 'utf8')).toBe(`init|${password}|\nbackup|${password}|\n`);
    expect(readFileSync(password, 'utf8').trim().length).toBeGreaterThan(20);
  });
});

describe('parseBackupSummary', () => {
  it('takes the summary line of `restic backup --json`, after its status lines', () => {
    const out = [
      '{"message_type":"status","percent_done":0.5,"total_files":3,"bytes_done":5}',
      '{"message_type":"summary","files_new":1,"files_changed":2,"files_unmodified":3,"data_added":100,"data_added_packed":60,"total_files_processed":6,"total_bytes_processed":1000,"snapshot_id":"abc"}',
      '',
    ].join('\n');
    expect(parseBackupSummary(out)).toMatchObject({ files_changed: 2, data_added_packed: 60, total_bytes_processed: 1000 });
    expect(() => parseBackupSummary('{"message_type":"status"}\n')).toThrow(/no summary/);
  });
});
