/**
 * Logical sessions through the official driver over TCP (and raw OP_MSG where a command must carry no lsid at all,
 * since the driver attaches its implicit session to everything): getMore's session binding (50736 / 50737 /
 * 50738 with mongod's messages), endSessions and killSessions killing a session's cursors, idle expiry of a session
 * killing its cursors, and cursorTimeoutMillis reaping only cursors opened outside a session unless
 * enableTimeoutOfInactiveSessionCursors is set.
 */
import { randomUUID } from 'node:crypto';
import type { ClientSession, Document, Long, MongoClient } from 'mongodb';
import { MongoServerError, UUID } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimCluster } from '../cluster/cluster.ts';
import { direct, eventually, sleep, startTestCluster } from '../testkit.ts';
import { parseOpMsg } from '../wire/protocol.ts';
import { buildOpMsg, RawClient } from '../wire/test-wire-client.ts';
import { CursorManager } from './cursors.ts';
import type { SimNode } from './types.ts';
import { NO_AUTH_UID, SessionCache } from './session-cache.ts';

/** An explicit session whose commands carry `lsid: {id}` (driver internal; see docs/psmdb-behaviour.md section 8). */
function sessionWithId(client: MongoClient, id: string): ClientSession {
  const s = client.startSession();
  (s as unknown as { serverSession: { id: { id: UUID } } }).serverSession.id = { id: new UUID(id) };
  return s;
}

/** How mongod prints a session without auth. */
const printed = (id: string) => `${id} - ${NO_AUTH_UID} -  - `;

let cluster: SimCluster;
let node: SimNode;
let client: MongoClient;
let raw: RawClient;
let requestId = 1;

async function rawCommand(doc: Document): Promise<Document> {
  raw.send(buildOpMsg([{ kind: 0, doc }], { requestId: requestId++ }));
  return parseOpMsg(await raw.next()).body;
}

const app = () => client.db('app');

/** Opens a find cursor (batch of 2 of the 10 documents) in a session, or outside any session (raw, no lsid). */
async function openCursor(session?: ClientSession): Promise<Long> {
  if (session) {
    const r = await app().command({ find: 't', batchSize: 2 }, { session, promoteLongs: false });
    return r.cursor.id as Long;
  }
  const r = await rawCommand({ find: 't', batchSize: 2, $db: 'app' });
  expect(r.ok).toBe(1);
  return r.cursor.id as Long;
}

const alive = (id: Long) => {
  try {
    node.cursors.get(id);
    return true;
  } catch {
    return false;
  }
};

async function setParameter(p: Document): Promise<void> {
  await client.db('admin').command({ setParameter: 1, ...p });
}

beforeAll(async () => {
  cluster = await startTestCluster({ replsetOnly: true, members: 1, sessionRefreshMs: 200 });
  node = cluster.shards[0]!.localNodes[0]!;
  client = direct(node.address);
  await app()
    .collection('t')
    .insertMany(Array.from({ length: 10 }, (_, i) => ({ _id: i as never })));
  raw = await RawClient.connect(node.port);
});

afterAll(async () => {
  raw?.close();
  await client?.close();
  await cluster?.stop();
});

describe('getMore session binding', () => {
  it('continues a cursor in the session it was opened in, from another connection too', async () => {
    const id = randomUUID();
    const id64 = await openCursor(sessionWithId(client, id));
    const other = direct(node.address);
    try {
      const r = await other.db('app').command({ getMore: id64, collection: 't', batchSize: 2 }, { session: sessionWithId(other, id) });
      expect(r.cursor.nextBatch.map((d: Document) => d._id)).toEqual([2, 3]);
    } finally {
      await other.close();
    }
  });

  it('50736: getMore in a session on a cursor opened outside any session', async () => {
    const cursorId = await openCursor();
    const id = randomUUID();
    const err = await app()
      .command({ getMore: cursorId, collection: 't' }, { session: sessionWithId(client, id) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect(err).toMatchObject({
      code: 50736,
      codeName: 'Location50736',
      errmsg: `Cannot run getMore on cursor ${cursorId.toString()}, which was not created in a session, in session ${printed(id)}`,
    });
  });

  it('50737: getMore without an lsid on a cursor opened in a session', async () => {
    const id = randomUUID();
    const cursorId = await openCursor(sessionWithId(client, id));
    const r = await rawCommand({ getMore: cursorId, collection: 't', $db: 'app' });
    expect(r).toMatchObject({
      ok: 0,
      code: 50737,
      codeName: 'Location50737',
      errmsg: `Cannot run getMore on cursor ${cursorId.toString()}, which was created in session ${printed(id)}, without an lsid`,
    });
  });

  it('50738: getMore in another session (the driver replaces a hand-written lsid with its own)', async () => {
    const a = randomUUID();
    const b = randomUUID();
    const cursorId = await openCursor(sessionWithId(client, a));
    const err = await app()
      .command({ getMore: cursorId, collection: 't' }, { session: sessionWithId(client, b) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 50738,
      errmsg: `Cannot run getMore on cursor ${cursorId.toString()}, which was created in session ${printed(a)}, in session ${printed(b)}`,
    });
    // A hand-written lsid goes out as the driver's implicit session instead: 50738 too (docs/psmdb-behaviour.md
    // section 8).
    await expect(app().command({ getMore: cursorId, collection: 't', lsid: { id: new UUID(a) } })).rejects.toMatchObject({ code: 50738 });
    // The cursor survives failed getMores.
    expect(alive(cursorId)).toBe(true);
  });

  it('13 for a getMore naming another namespace', async () => {
    const id = randomUUID();
    const session = sessionWithId(client, id);
    const cursorId = await openCursor(session);
    await expect(app().command({ getMore: cursorId, collection: 'other' }, { session })).rejects.toMatchObject({
      code: 13,
      errmsg: `Requested getMore on namespace 'app.other', but cursor belongs to a different namespace app.t`,
    });
  });

  it('rejects malformed lsids as mongod does', async () => {
    await expect(rawCommand({ find: 't', lsid: 'x', $db: 'app' })).resolves.toMatchObject({
      code: 14,
      errmsg: "BSON field 'OperationSessionInfo.lsid' is the wrong type 'string', expected type 'object'",
    });
    await expect(rawCommand({ find: 't', lsid: {}, $db: 'app' })).resolves.toMatchObject({
      code: 40414,
      errmsg: "BSON field 'OperationSessionInfo.lsid.id' is missing but a required field",
    });
  });
});

describe('ending and killing sessions', () => {
  it('endSessions: the session\'s cursors are killed at the next refresh', async () => {
    const id = randomUUID();
    const session = sessionWithId(client, id);
    const cursorId = await openCursor(session);
    await client.db('admin').command({ endSessions: [{ id: new UUID(id) }] });
    await eventually(() => !alive(cursorId), 3000, 'the ended session\'s cursor to be killed');
    await expect(app().command({ getMore: cursorId, collection: 't' }, { session })).rejects.toMatchObject({ code: 43 });
  });

  it('killSessions: the session\'s cursors are killed at once, other sessions\' are not', async () => {
    const id = randomUUID();
    const session = sessionWithId(client, id);
    const cursorId = await openCursor(session);
    const otherId = await openCursor(sessionWithId(client, randomUUID()));
    const outside = await openCursor();
    await client.db('admin').command({ killSessions: [{ id: new UUID(id) }] });
    expect(alive(cursorId)).toBe(false);
    expect(alive(otherId)).toBe(true);
    expect(alive(outside)).toBe(true);
    await expect(app().command({ getMore: cursorId, collection: 't' }, { session })).rejects.toMatchObject({ code: 43 });
  });

  it('startSession returns a session the server knows', async () => {
    const r = await client.db('admin').command({ startSession: 1 });
    expect(r.id.id).toBeInstanceOf(UUID);
    expect(r.timeoutMinutes).toBe(30);
  });
});

describe('idle expiry', () => {
  it('a session idle past the session timeout loses its cursors; a session in use keeps them', async () => {
    await setParameter({ simLogicalSessionTimeoutMs: 1000 });
    try {
      const idle = await openCursor(sessionWithId(client, randomUUID()));
      const busyId = randomUUID();
      const busy = sessionWithId(client, busyId);
      const kept = await openCursor(busy);
      const outside = await openCursor();
      const started = Date.now();
      while (alive(idle)) {
        // Any command in the busy session keeps it alive (mongod vivifies the session on every command).
        await app().command({ ping: 1 }, { session: busy });
        await sleep(150);
        if (Date.now() - started > 4000) throw new Error('the idle session was not reaped');
      }
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(alive(kept)).toBe(true);
      expect(alive(outside)).toBe(true);
      // Continuing the kept cursor from its session works.
      const r = await app().command({ getMore: kept, collection: 't', batchSize: 1 }, { session: busy });
      expect(r.cursor.nextBatch).toHaveLength(1);
    } finally {
      await setParameter({ simLogicalSessionTimeoutMs: 0 });
    }
  });

  it('cursorTimeoutMillis reaps cursors opened outside a session, session cursors only with enableTimeoutOfInactiveSessionCursors', async () => {
    await setParameter({ cursorTimeoutMillis: 1000 });
    try {
      const outside = await openCursor();
      const inSession = await openCursor(sessionWithId(client, randomUUID()));
      await eventually(() => !alive(outside), 4000, 'the session-less cursor to time out');
      await sleep(1200);
      expect(alive(inSession)).toBe(true);
      const r = await rawCommand({ getMore: outside, collection: 't', $db: 'app' });
      expect(r).toMatchObject({ ok: 0, code: 43, errmsg: `cursor id ${outside.toString()} not found` });

      await setParameter({ enableTimeoutOfInactiveSessionCursors: true });
      await eventually(() => !alive(inSession), 4000, 'the session cursor to time out');
    } finally {
      await setParameter({ cursorTimeoutMillis: 600_000 });
      await setParameter({ enableTimeoutOfInactiveSessionCursors: false });
    }
  });
});

describe('SessionCache', () => {
  it('expiry closes a session cursor with reason "session" (how a backup cursor is released)', () => {
    let now = 0;
    const cursors = new CursorManager(() => now);
    const cache = new SessionCache(cursors, () => 1000, () => now);
    const reasons: string[] = [];
    const lsid = { id: '0123456789abcdef0123456789abcdef', uid: NO_AUTH_UID };
    const first = cursors.open({ ns: 'admin.$cmd.aggregate', source: () => undefined, tailable: true, onClose: (r) => reasons.push(r) });
    const c = cursors.get(first.cursor.id as Long);
    c.lsid = lsid.id;
    c.uid = lsid.uid;
    cache.vivify(lsid, undefined);
    now = 999;
    expect(cache.refresh()).toEqual({ ended: 0, expired: 0, cursorsKilled: 0 });
    now = 1000;
    expect(cache.refresh()).toEqual({ ended: 0, expired: 1, cursorsKilled: 1 });
    expect(reasons).toEqual(['session']);
    expect(cursors.size).toBe(0);
  });

  it('a running operation keeps its session alive; its end counts as a use; an ended session goes whatever its use', () => {
    let now = 0;
    const cache = new SessionCache(new CursorManager(() => now), () => 1000, () => now);
    const s = { id: 'ffffffffffffffffffffffffffffffff', uid: NO_AUTH_UID };
    cache.vivify(s, undefined);
    cache.enter(s);
    now = 5000;
    expect(cache.refresh().expired).toBe(0);
    cache.leave(s);
    now = 5999;
    expect(cache.refresh().expired).toBe(0);
    cache.end([s]);
    cache.vivify(s, undefined); // used again after endSessions: still ended
    expect(cache.refresh()).toMatchObject({ ended: 1 });
    expect(cache.size).toBe(0);
  });
});
