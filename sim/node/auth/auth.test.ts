/**
 * `--auth` through the official driver over TCP: SCRAM-SHA-256 (speculative in the handshake, and negotiated with
 * saslSupportedMechs), refusals (18 for a wrong password or an unknown user, 13 for an unauthenticated command or
 * a missing privilege), createUser / usersInfo / connectionStatus, the `fsync` privilege (requirePrivilege and the
 * backup-stage gate), sessions under auth (another user's getMore, killSessions), and the launcher's `--auth` JSON.
 */
import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientSession, Document, Long } from 'mongodb';
import { MongoClient, MongoServerError, UUID } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { SimCluster } from '../../cluster/cluster.ts';
import { LAUNCHER_USER_ROLES } from '../../cluster/users.ts';
import { eventually, runMongod, startTestCluster, stopMongod } from '../../testkit.ts';
import { firstKey } from '../../wire/index.ts';
import { commandTable } from '../commands/index.ts';
import type { SimNode } from '../types.ts';
import { CLUSTER, requirePrivilege } from './index.ts';
import { rolesAllow } from './roles.ts';

function login(host: string, user: string, password: string, mechanism: string | null = 'SCRAM-SHA-256'): MongoClient {
  const mech = mechanism ? `&authMechanism=${mechanism}` : '';
  return new MongoClient(
    `mongodb://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}/?directConnection=true&authSource=admin${mech}&readPreference=primaryPreferred`,
    { serverSelectionTimeoutMS: 5000 },
  );
}

function anonymous(host: string): MongoClient {
  return new MongoClient(`mongodb://${host}/?directConnection=true`, { serverSelectionTimeoutMS: 5000 });
}

function sessionWithId(client: MongoClient, id: string): ClientSession {
  const s = client.startSession();
  (s as unknown as { serverSession: { id: { id: UUID } } }).serverSession.id = { id: new UUID(id) };
  return s;
}

describe('built-in roles', () => {
  it('fsync comes with hostManager, clusterAdmin and root only', () => {
    const has = (role: string) => rolesAllow([{ role, db: 'admin' }], 'fsync', CLUSTER);
    expect(['hostManager', 'clusterAdmin', 'root'].filter(has)).toEqual(['hostManager', 'clusterAdmin', 'root']);
    for (const role of ['backup', 'clusterManager', 'clusterMonitor', 'restore', 'readAnyDatabase', 'dbOwner']) expect(has(role)).toBe(false);
    expect(rolesAllow([{ role: 'root', db: 'test' }], 'fsync', CLUSTER)).toBe(false); // adminOnly: root@test does not exist
  });

  it('matches resources as mongod does: any_normal never reaches local or config, backup reads them', () => {
    const readAny = [{ role: 'readAnyDatabase', db: 'admin' }];
    expect(rolesAllow(readAny, 'find', { db: 'app', collection: 't' })).toBe(true);
    expect(rolesAllow(readAny, 'find', { db: 'local', collection: 'oplog.rs' })).toBe(false);
    expect(rolesAllow(readAny, 'find', { db: 'app', collection: 'system.users' })).toBe(false);
    const backup = [{ role: 'backup', db: 'admin' }];
    expect(rolesAllow(backup, 'find', { db: 'local', collection: 'oplog.rs' })).toBe(true);
    expect(rolesAllow(backup, 'update', { db: 'config', collection: 'settings' })).toBe(true);
    expect(rolesAllow(backup, 'killAnySession', CLUSTER)).toBe(false);
    expect(rolesAllow([{ role: 'read', db: 'app' }], 'find', { db: 'app', collection: 't' })).toBe(true);
    expect(rolesAllow([{ role: 'read', db: 'app' }], 'find', { db: 'other', collection: 't' })).toBe(false);
  });
});

describe('a replica set with --auth', () => {
  let cluster: SimCluster;
  let node: SimNode;
  let host: string;
  let users: NonNullable<SimCluster['users']>;
  const clients: MongoClient[] = [];
  const as = (key: 'admin' | 'backup' | 'noFsync', mechanism?: string | null) => {
    const c = login(host, users[key].user, users[key].password, mechanism);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    cluster = await startTestCluster({ replsetOnly: true, members: 1, auth: true });
    node = cluster.shards[0]!.localNodes[0]!;
    host = node.address;
    users = cluster.users!;
    await as('admin').db('app').collection('t').insertMany(Array.from({ length: 5 }, (_, i) => ({ _id: i as never })));
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    await cluster?.stop();
  });

  it('every launcher user logs in with SCRAM-SHA-256 (speculative: no saslStart round trip) and with the default mechanism', async () => {
    const seen: string[] = [];
    const original = node.handle.bind(node);
    node.handle = (db, command, ctx) => {
      seen.push(firstKey(command));
      return original(db, command, ctx);
    };
    try {
      for (const key of ['admin', 'backup', 'noFsync'] as const) {
        const status = await as(key).db('admin').command({ connectionStatus: 1 });
        expect(status.authInfo.authenticatedUsers).toEqual([{ user: users[key].user, db: 'admin' }]);
        expect(status.authInfo.authenticatedUserRoles).toEqual(LAUNCHER_USER_ROLES[key].roles);
      }
      expect(seen).toContain('saslContinue');
      expect(seen).not.toContain('saslStart');
      const viaDefault = await as('backup', null).db('admin').command({ connectionStatus: 1 });
      expect(viaDefault.authInfo.authenticatedUsers).toEqual([{ user: users.backup.user, db: 'admin' }]);
      // SCRAM-SHA-1 works too (createUser stores both credentials, as mongod does by default).
      const sha1 = await as('admin', 'SCRAM-SHA-1').db('admin').command({ connectionStatus: 1 });
      expect(sha1.authInfo.authenticatedUsers).toHaveLength(1);
    } finally {
      node.handle = original;
    }
  });

  it('refuses a wrong password and an unknown user with 18 AuthenticationFailed', async () => {
    const wrong = login(host, users.admin.user, 'not-the-password');
    clients.push(wrong);
    await expect(wrong.db('admin').command({ ping: 1 })).rejects.toMatchObject({ code: 18, codeName: 'AuthenticationFailed', errmsg: 'Authentication failed.' });
    const nobody = login(host, 'nobody', 'x');
    clients.push(nobody);
    await expect(nobody.db('admin').command({ ping: 1 })).rejects.toMatchObject({ code: 18 });
  });

  it('an unauthenticated client gets hello, ping, buildInfo and connectionStatus, and 13 for the rest', async () => {
    const anon = anonymous(host);
    clients.push(anon);
    expect((await anon.db('admin').command({ hello: 1 })).setName).toBe('rs0');
    await anon.db('admin').command({ ping: 1 });
    expect((await anon.db('admin').command({ buildInfo: 1 })).psmdbVersion).toBeDefined();
    expect((await anon.db('admin').command({ connectionStatus: 1 })).authInfo.authenticatedUsers).toEqual([]);
    await expect(anon.db('app').command({ find: 't' })).rejects.toMatchObject({
      code: 13,
      codeName: 'Unauthorized',
      errmsg: 'Command find requires authentication',
    });
    await expect(anon.db('admin').command({ replSetGetStatus: 1 })).rejects.toMatchObject({ code: 13, errmsg: 'Command replSetGetStatus requires authentication' });
    await expect(anon.db('admin').command({ endSessions: [] })).rejects.toMatchObject({ code: 13 });
  });

  it('checks privileges per command: 13 "not authorized on <db> to execute command …"', async () => {
    const noFsync = as('noFsync');
    expect((await noFsync.db('admin').command({ replSetGetStatus: 1 })).set).toBe('rs0'); // clusterMonitor
    expect(await noFsync.db('local').collection('oplog.rs').countDocuments()).toBeGreaterThan(0); // backup
    const err = await noFsync
      .db('app')
      .collection('t')
      .insertOne({ _id: 99 as never })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MongoServerError);
    expect(err).toMatchObject({ code: 13 });
    expect((err as MongoServerError).errmsg).toMatch(/^not authorized on app to execute command \{ insert: "t", /);
    await expect(noFsync.db('admin').command({ setParameter: 1, cursorTimeoutMillis: 1000 })).rejects.toMatchObject({ code: 13 });
    await expect(as('backup').db('admin').command({ getParameter: 1, cursorTimeoutMillis: 1 })).resolves.toMatchObject({ ok: 1 });
  });

  it('requirePrivilege(ctx, "fsync", cluster): 13 without fsync (a test-only command), nothing with it', async () => {
    commandTable.simTestRequireFsync = (ctx) => {
      requirePrivilege(ctx, 'fsync', CLUSTER);
      return { allowed: true };
    };
    try {
      const err = await as('noFsync')
        .db('admin')
        .command({ simTestRequireFsync: 1 })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 13, codeName: 'Unauthorized' });
      expect((err as MongoServerError).errmsg).toMatch(/^not authorized on admin to execute command \{ simTestRequireFsync: 1, /);
      for (const key of ['backup', 'admin'] as const) {
        expect((await as(key).db('admin').command({ simTestRequireFsync: 1 })).allowed).toBe(true);
      }
    } finally {
      delete commandTable.simTestRequireFsync;
    }
  });

  it('$backupCursor needs fsync: checked before the stage parses its options', async () => {
    expect(node.backup).toBeDefined();
    {
      const err = await as('noFsync')
        .db('admin')
        .command({ aggregate: 1, pipeline: [{ $backupCursor: { bogusOption: 1 } }], cursor: {} })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 13, codeName: 'Unauthorized' });
      expect((err as MongoServerError).errmsg).toMatch(/^not authorized on admin to execute command \{ aggregate: 1, pipeline: \[ \{ \$backupCursor: \{ bogusOption: 1 \} \} \]/);
      // The backup user passes the gate and reaches the stage (its own errors, if any, are not 13).
      const ok = await as('backup')
        .db('admin')
        .command({ aggregate: 1, pipeline: [{ $backupCursor: { bogusOption: 1 } }], cursor: {} })
        .catch((e: unknown) => e);
      expect((ok as { code?: number }).code).not.toBe(13);
    }
  });

  it('createUser with roles, usersInfo, and the new user\'s privileges', async () => {
    const admin = as('admin');
    await admin.db('app').command({ createUser: 'reader', pwd: 'pw-reader', roles: ['read'] });
    await expect(admin.db('app').command({ createUser: 'reader', pwd: 'x', roles: [] })).rejects.toMatchObject({ code: 51003, errmsg: 'User "reader@app" already exists' });
    await expect(admin.db('app').command({ createUser: 'x', pwd: 'x', roles: ['root'] })).rejects.toMatchObject({ code: 31, errmsg: 'Could not find role: root@app' });
    await expect(as('noFsync').db('admin').command({ createUser: 'x', pwd: 'x', roles: [] })).rejects.toMatchObject({ code: 13 });
    const info = await admin.db('app').command({ usersInfo: 'reader' });
    expect(info.users).toMatchObject([{ _id: 'app.reader', user: 'reader', db: 'app', roles: [{ role: 'read', db: 'app' }], mechanisms: ['SCRAM-SHA-1', 'SCRAM-SHA-256'] }]);
    expect(info.users[0].credentials).toBeUndefined();

    const reader = new MongoClient(`mongodb://reader:pw-reader@${host}/app?directConnection=true&authMechanism=SCRAM-SHA-256`, { serverSelectionTimeoutMS: 5000 });
    clients.push(reader);
    expect(await reader.db('app').collection('t').countDocuments()).toBe(5);
    await expect(reader.db('app').collection('t').insertOne({ _id: 7 as never })).rejects.toMatchObject({ code: 13 });
    await expect(reader.db('other').collection('t').findOne()).rejects.toMatchObject({ code: 13 });
    expect((await reader.db('app').command({ usersInfo: 'reader' })).users).toHaveLength(1); // oneself: always allowed
    await expect(reader.db('admin').command({ usersInfo: { user: users.admin.user, db: 'admin' } })).rejects.toMatchObject({ code: 13 });
  });

  it('another user cannot continue a cursor, even with the same session UUID (13), nor kill it by session id', async () => {
    const admin = as('admin');
    const backup = as('backup');
    const id = randomUUID();
    const r = await admin.db('app').command({ find: 't', batchSize: 1 }, { session: sessionWithId(admin, id), promoteLongs: false });
    const cursorId = r.cursor.id as Long;
    const digest = (u: string) => createHash('sha256').update(`${u}@admin`).digest('base64');
    const err = await backup
      .db('app')
      .command({ getMore: cursorId, collection: 't' }, { session: sessionWithId(backup, id) })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 13,
      errmsg: `Cursor session id (${id} - ${digest(users.admin.user)} -  - ) is not the same as the operation context's session id (${id} - ${digest(users.backup.user)} -  - )`,
    });
    // killSessions by another user with the bare id names that user's own session: nothing happens.
    await backup.db('admin').command({ killSessions: [{ id: new UUID(id) }] });
    const more = await admin.db('app').command({ getMore: cursorId, collection: 't', batchSize: 1 }, { session: sessionWithId(admin, id) });
    expect(more.cursor.nextBatch).toHaveLength(1);
    // The owner kills it by id.
    await admin.db('admin').command({ killSessions: [{ id: new UUID(id) }] });
    await expect(admin.db('app').command({ getMore: cursorId, collection: 't' }, { session: sessionWithId(admin, id) })).rejects.toMatchObject({ code: 43 });
  });
});

describe('launcher --auth', () => {
  it('prints the three users in its JSON line; each logs in through the mongos and on a shard member', async () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const child = spawn('npm', ['run', '-s', 'sim', '--', 'up', '--shards', '1', '--members', '1', '--auth', '--session-timeout-ms', '2000'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    onTestFinished(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await eventually(() => out.trim().endsWith('}'), 60_000, `launcher JSON (stderr: ${err})`);
    const info = JSON.parse(out.trim().split('\n').at(-1)!) as {
      mongos: string;
      shards: Array<{ hosts: string[] }>;
      users: Record<'admin' | 'backup' | 'noFsync', { user: string; password: string }>;
    };
    expect(Object.keys(info.users).sort()).toEqual(['admin', 'backup', 'noFsync']);
    const mongos = info.mongos.slice('mongodb://'.length);
    const shardMember = info.shards[0]!.hosts[0]!;
    const opened: MongoClient[] = [];
    try {
      for (const [key, u] of Object.entries(info.users)) {
        expect(u.password.length).toBeGreaterThanOrEqual(16);
        for (const h of [mongos, shardMember]) {
          const c = login(h, u.user, u.password);
          opened.push(c);
          const s = await c.db('admin').command({ connectionStatus: 1 });
          expect(s.authInfo.authenticatedUsers, `${key} on ${h}`).toEqual([{ user: u.user, db: 'admin' }]);
        }
      }
      const anon = anonymous(mongos);
      opened.push(anon);
      await expect(anon.db('admin').command({ listShards: 1 })).rejects.toMatchObject({ code: 13, errmsg: 'Command listShards requires authentication' });
      const backupOnMongos = login(mongos, info.users.backup.user, info.users.backup.password);
      opened.push(backupOnMongos);
      expect((await backupOnMongos.db('admin').command({ listShards: 1 })).shards).toHaveLength(1);
      const adminOnShard = login(shardMember, info.users.admin.user, info.users.admin.password);
      opened.push(adminOnShard);
      const param: Document = await adminOnShard.db('admin').command({ getParameter: 1, simLogicalSessionTimeoutMs: 1, logicalSessionRefreshMillis: 1 });
      expect(param).toMatchObject({ simLogicalSessionTimeoutMs: 2000, logicalSessionRefreshMillis: 500 });

      // killSessions through the mongos reaches the shard member's cursors (mongos broadcasts it).
      const backupOnShard = login(shardMember, info.users.backup.user, info.users.backup.password);
      opened.push(backupOnShard);
      const sid = randomUUID();
      const found = await backupOnShard
        .db('local')
        .command({ find: 'oplog.rs', batchSize: 1 }, { session: sessionWithId(backupOnShard, sid), promoteLongs: false });
      const cursorId = found.cursor.id as Long;
      expect(cursorId.isZero()).toBe(false);
      await backupOnMongos.db('admin').command({ killSessions: [{ id: new UUID(sid) }] });
      await expect(
        backupOnShard.db('local').command({ getMore: cursorId, collection: 'oplog.rs' }, { session: sessionWithId(backupOnShard, sid) }),
      ).rejects.toMatchObject({ code: 43 });
    } finally {
      for (const c of opened) await c.close();
    }
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }, 90_000);
});

describe('mongod entry point with --auth', () => {
  it('lets a loopback client create the first user (localhost exception), then requires authentication', async () => {
    const dbpath = mkdtempSync(join(tmpdir(), 'cutpoint-auth-'));
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    const p = await runMongod(['--dbpath', dbpath, '--port', String(port), '--auth']);
    const host = `127.0.0.1:${port}`;
    const anon = anonymous(host);
    const root = login(host, 'root', 'pw-root');
    try {
      await anon.db('admin').command({ createUser: 'root', pwd: 'pw-root', roles: ['root'] });
      await expect(anon.db('app').command({ find: 't' })).rejects.toMatchObject({ code: 13, errmsg: 'Command find requires authentication' });
      await root.db('app').collection('t').insertOne({ _id: 1 as never });
      expect(await root.db('app').collection('t').countDocuments()).toBe(1);
    } finally {
      await anon.close();
      await root.close();
      expect(await stopMongod(p)).toBe(0);
      rmSync(dbpath, { recursive: true, force: true });
    }
  });
});
