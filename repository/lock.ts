/**
 * Repository locks, through the {@link Storage} interface so that every backend (a directory today, an object store
 * next) locks the same way. The scheme needs no exclusive create and no rename, which object stores lack:
 *
 * 1. the taker writes its own file `locks/<name>-<token>.json` (`{name, kind, host, pid, time, token}`), atomically;
 * 2. it lists `locks/` and reads every other lock file (of any name);
 * 3. a stale one (its pid is dead on this host, its `time` is older than `staleMs`, or it is unreadable) is removed;
 *    a live one that conflicts (either of the two is `exclusive`) makes the taker remove its own file and fail with
 *    `REPO_LOCKED` naming the holder(s);
 * 4. otherwise it holds the lock until it removes its file (the returned release function). While it holds it, it
 *    rewrites its file with a new `time` every `refreshMs` or so ({@link refreshLock}), or the lock goes stale.
 *
 * Kinds: `shared` locks (backups) coexist with each other and exclude an `exclusive` one; an `exclusive` lock (prune)
 * excludes every other lock. The name is a label for the messages (`prune`, `backup`), not a namespace.
 *
 * Two conflicting takers can never both hold: the one that lists second has written before listing and sees the
 * first one's file, which stays until that holder releases (or stops refreshing it). Two that write at the same
 * instant may both see each other and both fail; the caller tries again ({@link acquireLockWaiting}). A listing must
 * show every file whose write has completed (true of a filesystem and of S3, which is strongly consistent for
 * listings). A refresh rewrites the holder's file in place (a plain write, no rename); it is refused when the file is
 * gone (another taker found it stale and removed it): the holder has lost the lock and must stop.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { CutpointError } from '../common/errors.ts';
import { pidAlive } from '../lib/process.ts';
import type { Storage } from './storage.ts';

/** A lock whose `time` is older than this is taken over even when its owner may live (a hung process). */
export const DEFAULT_LOCK_STALE_MS = 30 * 60_000;

/** How often a holder rewrites its lock file: well inside {@link DEFAULT_LOCK_STALE_MS}. */
export const DEFAULT_LOCK_REFRESH_MS = 5 * 60_000;

/** The directory of the repository's locks. */
export const LOCK_DIR = 'locks';

export type LockKind = 'exclusive' | 'shared';

/** The content of a lock file. `time` is the last refresh (at first the take). */
export interface LockInfo {
  name: string;
  kind: LockKind;
  host: string;
  pid: number;
  time: string;
  token: string;
}

export interface LockOptions {
  now?: Date;
  /** Age of `time` past which a lock is taken over whatever its pid (default {@link DEFAULT_LOCK_STALE_MS}). */
  staleMs?: number;
  /** Default `exclusive`. */
  kind?: LockKind;
}

/** A held lock: calling it releases it (idempotent). */
export interface HeldLock {
  (): Promise<void>;
  /** The holder's lock file. */
  readonly path: string;
  readonly info: LockInfo;
  /** Rewrites the lock file with a new `time`; fails (`REPO_LOCKED`) when the lock was lost. */
  refresh(now?: Date): Promise<void>;
}

/** The path of one holder's lock file. */
export function lockPath(name: string, token: string): string {
  return `${LOCK_DIR}/${name}-${token}.json`;
}

/** Why a lock is stale, or undefined when its owner may still hold it. */
export function lockStaleReason(info: Partial<LockInfo> | undefined, now: Date, staleMs: number): string | undefined {
  if (!info || typeof info.pid !== 'number' || typeof info.time !== 'string') return 'unreadable';
  const age = now.getTime() - Date.parse(info.time);
  if (!(age <= staleMs)) return `older than ${Math.round(staleMs / 60_000)} minutes`;
  if (info.host === hostname() && !pidAlive(info.pid)) return `pid ${info.pid} is no longer running on ${info.host}`;
  return undefined;
}

/** Whether two locks exclude each other: unless both are shared. A lock file without `kind` (older) is exclusive. */
export function locksConflict(a: LockKind | undefined, b: LockKind | undefined): boolean {
  return a !== 'shared' || b !== 'shared';
}

async function readLock(storage: Storage, path: string): Promise<Partial<LockInfo> | undefined | 'gone'> {
  let text: string;
  try {
    text = (await storage.readFile(path)).toString('utf8');
  } catch (e) {
    if ((e as CutpointError).code === 'REPO_FILE_MISSING') return 'gone'; // released meanwhile
    throw e;
  }
  try {
    return JSON.parse(text) as Partial<LockInfo>;
  } catch {
    return undefined;
  }
}

function holderText(info: Partial<LockInfo> | undefined, path: string): string {
  return `${info?.name ?? path} (${info?.kind ?? 'exclusive'}; host ${info?.host}, pid ${info?.pid}, since ${info?.time}; ${path})`;
}

/**
 * Rewrites the holder's lock file `path` with a new `time` (and this process's host and pid: a workflow's lock is
 * refreshed by whichever worker runs the refreshing activity). Fails with `REPO_LOCKED` when the file is gone: another
 * taker found it stale and removed it, so the lock is lost.
 */
export async function refreshLock(storage: Storage, path: string, now: Date = new Date()): Promise<LockInfo> {
  const info = await readLock(storage, path);
  if (info === 'gone' || !info || typeof info.token !== 'string') {
    throw new CutpointError('REPO_LOCKED', `the repository lock ${path} in ${storage.location} was lost (taken over as stale): stop, the repository may have changed`, { lock: path });
  }
  const next: LockInfo = { ...(info as LockInfo), host: hostname(), pid: process.pid, time: now.toISOString() };
  await storage.writeFile(path, `${JSON.stringify(next)}\n`);
  return next;
}

/**
 * Takes the repository lock `name` (e.g. `prune`) of `kind` (default exclusive); returns it (calling it releases it).
 * Conflicting locks held by live processes fail with `REPO_LOCKED` naming every holder (name, kind, host, pid, time)
 * and the file to remove if that process is gone; stale locks are removed on the way.
 */
export async function acquireLock(storage: Storage, name: string, options: LockOptions = {}): Promise<HeldLock> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new CutpointError('INTERNAL', `invalid lock name ${JSON.stringify(name)}`);
  const now = options.now ?? new Date();
  const kind = options.kind ?? 'exclusive';
  const mine: LockInfo = { name, kind, host: hostname(), pid: process.pid, time: now.toISOString(), token: randomBytes(8).toString('hex') };
  const path = lockPath(name, mine.token);
  await storage.writeFile(path, `${JSON.stringify(mine)}\n`);
  const release = async (): Promise<void> => storage.remove(path);
  try {
    const others = (await storage.list(LOCK_DIR)).filter((p) => p !== path && p.endsWith('.json'));
    const live: Array<{ path: string; info: Partial<LockInfo> | undefined }> = [];
    for (const other of others) {
      const info = await readLock(storage, other);
      if (info === 'gone') continue;
      const stale = lockStaleReason(info, now, options.staleMs ?? DEFAULT_LOCK_STALE_MS);
      if (stale !== undefined) {
        await storage.remove(other);
        continue;
      }
      if (locksConflict(kind, info?.kind)) live.push({ path: other, info });
    }
    if (live.length === 1 && live[0]!.info?.name === name) {
      const { path: other, info } = live[0]!;
      throw new CutpointError(
        'REPO_LOCKED',
        `another ${name} holds the repository ${storage.location} (host ${info?.host}, pid ${info?.pid}, since ${info?.time}); ` +
          `wait for it, or remove ${other} from the repository if that process is gone`,
        { lock: other, ...info },
      );
    }
    if (live.length > 0) {
      throw new CutpointError(
        'REPO_LOCKED',
        `the ${kind} lock ${name} of ${storage.location} is refused: held by ${live.map((l) => holderText(l.info, l.path)).join(', ')}; ` +
          `wait for ${live.length === 1 ? 'it' : 'them'}, or remove the file from the repository if that process is gone`,
        { lock: live[0]!.path, ...live[0]!.info, holders: live.map((l) => ({ lock: l.path, ...l.info })) },
      );
    }
  } catch (e) {
    await release().catch(() => undefined);
    throw e;
  }
  return Object.assign(release, { path, info: mine, refresh: async (at?: Date) => void (await refreshLock(storage, path, at)) });
}

export interface WaitOptions extends LockOptions {
  /** How long to keep trying while the lock is held by others (default 1 hour); then the last REPO_LOCKED. */
  waitMs?: number;
  /** First pause between tries (default 1 s); doubled up to `maxRetryMs` (default 30 s). */
  retryMs?: number;
  maxRetryMs?: number;
  /** Called on each refusal, before the pause (progress, logs). */
  onWait?: (error: CutpointError) => void;
}

/**
 * {@link acquireLock}, tried again with backoff (and jitter, so two takers that collided do not collide again) while it
 * fails with `REPO_LOCKED`, for up to `waitMs`; then its last refusal is thrown. Between tries the taker holds no file,
 * so a waiting exclusive taker does not block new shared ones (it may wait for its whole bound).
 */
export async function acquireLockWaiting(storage: Storage, name: string, options: WaitOptions = {}): Promise<HeldLock> {
  const deadline = Date.now() + (options.waitMs ?? 3_600_000);
  let pause = options.retryMs ?? 1000;
  const { now: _now, ...lockOptions } = options; // every try judges staleness at its own time
  for (;;) {
    try {
      return await acquireLock(storage, name, lockOptions);
    } catch (e) {
      if ((e as CutpointError).code !== 'REPO_LOCKED' || Date.now() + pause > deadline) throw e;
      options.onWait?.(e as CutpointError);
      await delay(pause * (0.5 + Math.random()));
      pause = Math.min(pause * 2, options.maxRetryMs ?? 30_000);
    }
  }
}
