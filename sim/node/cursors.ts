/**
 * Server-side cursors: ids, batches, getMore, killCursors and the idle timeout for cursors opened outside a session
 * (`cursorTimeoutMillis`). Cursor ids are random positive int64 values, always sent as `Long`.
 */
import { randomBytes } from 'node:crypto';
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import { CommandError } from '../wire/index.ts';

/** Produces documents for a cursor; `undefined` means no more right now (EOF, or for a tailable cursor: not yet). */
export type CursorSource = () => Document | undefined;

export interface OpenCursor {
  ns: string;
  source: CursorSource;
  /** Tailable cursors survive EOF: getMore returns empty batches and the same id. */
  tailable?: boolean;
  /** An awaitData cursor (tailable too): getMore waits for new entries up to its maxTimeMS (crud.ts getMore). */
  awaitData?: boolean;
  /** Called before each getMore reads: throws when the cursor's position is gone (CappedPositionLost, tailable.ts). */
  restore?: () => void;
  /** Session the cursor was opened in (hex of the lsid UUID), if any. The node sets it (with `uid` and `user`) from the opening command (sessions.ts). */
  lsid?: string;
  /** The session's uid (SHA-256 of the owner's `user@db`, base64), with `lsid`. */
  uid?: string;
  /** The user that opened the cursor (`user@db`), when auth is on. */
  user?: string;
  /** Called once when the cursor goes away: exhausted, killed, timed out, or the node shuts down. */
  onClose?: (reason: CursorCloseReason) => void;
}

export type CursorCloseReason = 'exhausted' | 'killed' | 'timeout' | 'session' | 'shutdown';

interface LiveCursor extends OpenCursor {
  id: Long;
  lastUsed: number;
}

const DEFAULT_FIRST_BATCH = 101;
const MAX_BATCH_BYTES = 16 * 1024 * 1024;

function newCursorId(): Long {
  const b = randomBytes(8);
  b[7] = b[7]! & 0x7f; // positive
  const id = Long.fromBytesLE([...b]);
  return id.isZero() ? Long.ONE : id;
}

function batchSizeOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Long.isLong(value) ? value.toNumber() : Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CommandError(2, `batchSize must be a non-negative integer, got ${String(value)}`);
  return n;
}

export class CursorManager {
  private readonly cursors = new Map<string, LiveCursor>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Number of open cursors. */
  get size(): number {
    return this.cursors.size;
  }

  /** Opens a cursor and returns the first reply (`firstBatch`); an exhausted non-tailable cursor gets id 0. */
  open(spec: OpenCursor, batchSize?: unknown): Document {
    const cursor: LiveCursor = { ...spec, id: newCursorId(), lastUsed: this.now() };
    const { docs, eof } = this.fill(cursor, batchSizeOf(batchSize) ?? DEFAULT_FIRST_BATCH);
    if (eof && !cursor.tailable) {
      cursor.onClose?.('exhausted');
      return { cursor: { firstBatch: docs, id: Long.ZERO, ns: spec.ns } };
    }
    this.cursors.set(cursor.id.toString(), cursor);
    return { cursor: { firstBatch: docs, id: cursor.id, ns: spec.ns } };
  }

  /** Looks a cursor up for getMore; 43 CursorNotFound when it is gone. */
  get(id: Long): LiveCursor {
    const c = this.cursors.get(id.toString());
    if (!c) throw new CommandError(43, `cursor id ${id.toString()} not found`);
    return c;
  }

  /** True while cursor `id` is open. */
  has(id: Long): boolean {
    return this.cursors.has(id.toString());
  }

  /** Runs getMore on a cursor found with {@link get}. */
  getMore(cursor: LiveCursor, batchSize?: unknown): Document {
    cursor.lastUsed = this.now();
    const max = batchSizeOf(batchSize) ?? Number.MAX_SAFE_INTEGER;
    let filled: { docs: Document[]; eof: boolean };
    try {
      cursor.restore?.();
      filled = this.fill(cursor, max);
    } catch (e) {
      // mongod disposes of a cursor whose plan failed (CappedPositionLost): a later getMore is CursorNotFound.
      this.close(cursor.id, 'killed');
      throw e;
    }
    const { docs, eof } = filled;
    if (eof && !cursor.tailable) {
      this.close(cursor.id, 'exhausted');
      return { cursor: { nextBatch: docs, id: Long.ZERO, ns: cursor.ns } };
    }
    return { cursor: { nextBatch: docs, id: cursor.id, ns: cursor.ns } };
  }

  /** killCursors: the reply fields of mongod. */
  kill(ids: Long[]): Document {
    const killed: Long[] = [];
    const notFound: Long[] = [];
    for (const id of ids) (this.close(id, 'killed') ? killed : notFound).push(id);
    return { cursorsKilled: killed, cursorsNotFound: notFound, cursorsAlive: [], cursorsUnknown: [] };
  }

  /** Closes one cursor; false if it was not open. */
  close(id: Long, reason: CursorCloseReason): boolean {
    const c = this.cursors.get(id.toString());
    if (!c) return false;
    this.cursors.delete(id.toString());
    c.onClose?.(reason);
    return true;
  }

  /** Closes the cursors that match (all when no predicate): shutdown, session kill. */
  closeWhere(reason: CursorCloseReason, predicate: (c: LiveCursor) => boolean = () => true): number {
    let n = 0;
    for (const c of [...this.cursors.values()]) if (predicate(c) && this.close(c.id, reason)) n++;
    return n;
  }

  /**
   * Kills cursors idle longer than `timeoutMs` (mongod's ClientCursorMonitor): those opened outside a session, and
   * session cursors too when `includeSessionCursors` (`enableTimeoutOfInactiveSessionCursors`).
   */
  reapIdle(timeoutMs: number, includeSessionCursors = false): number {
    const cutoff = this.now() - timeoutMs;
    return this.closeWhere('timeout', (c) => (includeSessionCursors || c.lsid === undefined) && c.lastUsed <= cutoff);
  }

  private fill(cursor: LiveCursor, max: number): { docs: Document[]; eof: boolean } {
    const docs: Document[] = [];
    let bytes = 0;
    while (docs.length < max && bytes < MAX_BATCH_BYTES) {
      const d = cursor.source();
      if (d === undefined) return { docs, eof: true };
      docs.push(d);
      bytes += 256; // documents here are small; a precise size is not worth a serialization per document
    }
    return { docs, eof: false };
  }
}
