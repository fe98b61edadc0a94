/**
 * Repository locks, through the {@link Storage} interface so that every backend (a directory today, an object store
 * next) locks the same way. The scheme needs no exclusive create, which object stores lack:
 *
 * 1. the taker writes its own file `locks/<name>-<token>.json` (`{name, host, pid, time, token}`), atomically;
 * 2. it lists `locks/` and reads every other lock of the same name;
 * 3. a stale one (its pid is dead on this host, it is older than `staleMs`, or it is unreadable) is removed; a live
 *    one makes the taker remove its own file and fail with `REPO_LOCKED` naming the holder;
 * 4. otherwise it holds the lock until it removes its file (the returned release function).
 *
 * Two takers can never both hold it: the one that lists second has written before listing and sees the first one's
 * file, which stays until that holder releases. Two that write at the same instant may both see each other and both
 * fail; the caller tries again. A listing must show every file whose write has completed (true of a filesystem and of
 * S3, which is strongly consistent for listings).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { CutpointError } from '../common/errors.ts';
import { pidAlive } from '../lib/process.ts';
import type { Storage } from './storage.ts';

/** A lock older than this is taken over even when its owner may live (a hung process). */
export const DEFAULT_LOCK_STALE_MS = 6 * 3_600_000;

/** The directory of the repository's locks. */
export const LOCK_DIR = 'locks';

/** The content of a lock file. */
export interface LockInfo {
  name: string;
  host: string;
  pid: number;
  time: string;
  token: string;
}

export interface LockOptions {
  now?: Date;
  /** Age past which a lock is taken over whatever its pid (default {@link DEFAULT_LOCK_STALE_MS}). */
  staleMs?: number;
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

/**
 * Takes the repository lock `name` (e.g. `prune`); returns its release function (idempotent). A lock held by a live
 * process fails with `REPO_LOCKED` naming its host, pid and age and the file to remove if that process is gone; stale
 * locks are removed on the way.
 */
export async function acquireLock(storage: Storage, name: string, options: LockOptions = {}): Promise<() => Promise<void>> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new CutpointError('INTERNAL', `invalid lock name ${JSON.stringify(name)}`);
  const now = options.now ?? new Date();
  const mine: LockInfo = { name, host: hostname(), pid: process.pid, time: now.toISOString(), token: randomBytes(8).toString('hex') };
  const path = lockPath(name, mine.token);
  await storage.writeFile(path, `${JSON.stringify(mine)}\n`);
  const release = async (): Promise<void> => storage.remove(path);
  try {
    const others = (await storage.list(LOCK_DIR)).filter((p) => p !== path && p.startsWith(`${LOCK_DIR}/${name}-`) && p.endsWith('.json'));
    for (const other of others) {
      const info = await readLock(storage, other);
      if (info === 'gone') continue;
      const stale = lockStaleReason(info, now, options.staleMs ?? DEFAULT_LOCK_STALE_MS);
      if (stale !== undefined) {
        await storage.remove(other);
        continue;
      }
      throw new CutpointError(
        'REPO_LOCKED',
        `another ${name} holds the repository ${storage.location} (host ${info?.host}, pid ${info?.pid}, since ${info?.time}); ` +
          `wait for it, or remove ${other} from the repository if that process is gone`,
        { lock: other, ...info },
      );
    }
  } catch (e) {
    await release().catch(() => undefined);
    throw e;
  }
  return release;
}
