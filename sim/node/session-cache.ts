/**
 * The logical session records of one node (mongod's LogicalSessionCache): created or refreshed by every command that
 * names a session, ended by `endSessions`, and reaped with their cursors by the periodic refresh. How commands find
 * their session and how cursors are bound to it is sessions.ts.
 */
import type { CursorManager } from './cursors.ts';
import { displayName, sessionUid, type UserName } from './auth/user-name.ts';

/** A logical session id: the client's UUID and the owner's digest. */
export interface LogicalSessionId {
  /** The UUID, 32 lowercase hex digits (the form cursors.ts keeps in `lsid`). */
  id: string;
  /** SHA-256 digest of the owner's `user@db`, base64 (mongod prints it so). */
  uid: string;
}

/** The uid of sessions without auth (SHA-256 of the empty string). */
export const NO_AUTH_UID = sessionUid(undefined).toString('base64');

type Cursor = ReturnType<CursorManager['get']>;

interface SessionRecord {
  lsid: LogicalSessionId;
  user: string | undefined;
  lastUse: number;
  ended: boolean;
  /** Operations running in the session right now. */
  active: number;
}

const key = (s: LogicalSessionId) => `${s.id}|${s.uid}`;

/** A cursor's session, from the fields the node stamped on it. */
export function cursorSession(c: Cursor): LogicalSessionId | undefined {
  return c.lsid === undefined ? undefined : { id: c.lsid, uid: c.uid ?? NO_AUTH_UID };
}

/** The session records of one node and the reaping of their cursors. */
export class SessionCache {
  private readonly records = new Map<string, SessionRecord>();

  constructor(
    private readonly cursors: CursorManager,
    /** The idle life of a session, ms (read at each refresh: a parameter may change it). */
    private readonly timeoutMs: () => number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Number of live session records. */
  get size(): number {
    return this.records.size;
  }

  /** Creates or refreshes a session record (mongod's vivify): every command in a session calls it. */
  vivify(lsid: LogicalSessionId, user: UserName | undefined): void {
    const k = key(lsid);
    const r = this.records.get(k);
    if (r) {
      // An ended session stays ended until the refresh reaps it, even if the client uses it again (mongod's
      // refresh removes explicitly ended sessions whatever their activity).
      if (!r.ended) r.lastUse = this.now();
      return;
    }
    this.records.set(k, { lsid, user: user ? displayName(user) : undefined, lastUse: this.now(), ended: false, active: 0 });
  }

  /** An operation starts running in a (vivified) session: it stays alive while the operation runs. */
  enter(lsid: LogicalSessionId): void {
    const r = this.records.get(key(lsid));
    if (r) r.active++;
  }

  /** The operation has finished: its end counts as a use. */
  leave(lsid: LogicalSessionId): void {
    const r = this.records.get(key(lsid));
    if (!r) return;
    r.active = Math.max(0, r.active - 1);
    if (!r.ended) r.lastUse = this.now();
  }

  /** Whether a session has a live (not ended, not expired) record. */
  has(lsid: LogicalSessionId): boolean {
    const r = this.records.get(key(lsid));
    return r !== undefined && !r.ended;
  }

  /** `endSessions`: the records end; their cursors go at the next refresh. */
  end(lsids: LogicalSessionId[]): void {
    for (const s of lsids) {
      const r = this.records.get(key(s));
      if (r) r.ended = true;
      else this.records.set(key(s), { lsid: s, user: undefined, lastUse: this.now(), ended: true, active: 0 });
    }
  }

  /** Kills the cursors of the sessions matching `predicate` at once (killSessions); returns how many. */
  killCursors(predicate: (s: LogicalSessionId, user: string | undefined) => boolean): number {
    return this.cursors.closeWhere('session', (c) => {
      const s = cursorSession(c);
      return s !== undefined && predicate(s, c.user);
    });
  }

  /**
   * The periodic refresh: ended sessions and sessions idle past the timeout lose their records and their cursors,
   * and so do cursors of sessions that have no record. Returns the numbers, for logs and tests.
   */
  refresh(): { ended: number; expired: number; cursorsKilled: number } {
    const now = this.now();
    const timeout = this.timeoutMs();
    let ended = 0;
    let expired = 0;
    for (const [k, r] of [...this.records]) {
      if (r.ended) ended++;
      else if (r.active === 0 && now - r.lastUse >= timeout) expired++;
      else continue;
      this.records.delete(k);
    }
    const cursorsKilled = this.cursors.closeWhere('session', (c) => {
      const s = cursorSession(c);
      return s !== undefined && !this.records.has(key(s));
    });
    return { ended, expired, cursorsKilled };
  }
}
