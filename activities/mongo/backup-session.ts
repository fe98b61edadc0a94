/**
 * Backup cursors are bound to the logical session they were opened in (getMore from another session: 50738). To
 * keep a cursor alive from a later activity, or from a restarted agent, cutpoint chooses the session id itself,
 * records it, and reuses it. The driver has no public API for that: an explicit session's `serverSession.id` is
 * overridden (driver-notes.md). This file is the only place that relies on the internal, and its test fails on a
 * driver upgrade that breaks it.
 *
 * Such a session is never ended: ending it would return the id to the driver's pool, and `client.close()` sends
 * `endSessions` for pooled ids, which kills the backup cursor.
 */
import { randomUUID } from 'node:crypto';
import type { ClientSession, MongoClient } from 'mongodb';
import { UUID } from 'mongodb';

/** A new session id for a backup cursor (a UUID string). */
export function newBackupSessionId(): string {
  return randomUUID();
}

/** An explicit session on `client` whose commands carry `lsid: {id: UUID(sessionId)}`. */
export function sessionWithId(client: MongoClient, sessionId: string): ClientSession {
  const session = client.startSession();
  const internal = session as unknown as { serverSession?: { id?: { id: unknown } } };
  const server = internal.serverSession;
  if (!server || typeof server !== 'object' || !server.id) {
    throw new Error('mongodb driver internals changed: ClientSession.serverSession.id is not available to set a backup session id');
  }
  server.id = { id: new UUID(sessionId) };
  return session;
}
