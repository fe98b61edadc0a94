/**
 * Backup cursors are bound to the logical session they were opened in (getMore from another session: 50738). To
 * keep a cursor alive from a later activity, or from a restarted agent, cutpoint chooses the session id itself,
 * records it, and reuses it. The driver has no public API for that: an explicit session's `serverSession.id` is
 * overridden (docs/psmdb-behaviour.md section 8). This file is the only place that relies on the internal, and its
 * test fails on a driver upgrade that breaks it.
 *
 * Such a session must never be ended on the server: `endSessions` marks it ended and the server's next session
 * refresh (every 5 minutes on mongod) kills its cursors, the backup cursor included. The driver ends every session
 * still active when the client closes (`MongoClient.close` → `endSession` → the id goes back to the pool →
 * `endSessions` for the pooled ids), so {@link sessionWithId} makes that end release a throwaway id instead.
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
  // Closing the client ends this session; what goes back to the pool, and then to endSessions, must not be the
  // backup cursor's session id.
  const end = session.endSession.bind(session);
  session.endSession = async (options) => {
    if (server.id) server.id = { id: new UUID() };
    return end(options);
  };
  return session;
}
