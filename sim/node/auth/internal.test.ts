/**
 * Internal authentication of key-file nodes through the official driver: `__system@local` with the key as password
 * (lib/mongo/keyfile.ts `keyFileClientOptions`), its `__system` role (the `internal` action no other built-in role
 * has), refusals for another key, and the launcher's `keyFile` option reported by getCmdLineOpts. Between processes:
 * sim/mongod-options.test.ts.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient, type MongoClientOptions } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFileClientOptions } from '../../../lib/mongo/keyfile.ts';
import type { SimCluster } from '../../cluster/cluster.ts';
import { startTestCluster } from '../../testkit.ts';
import { CLUSTER } from './index.ts';
import { rolesAllow } from './roles.ts';

let dir: string;
let cluster: SimCluster;
let host: string;

function writeKey(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  chmodSync(file, 0o600);
  return file;
}

async function withClient<T>(opts: MongoClientOptions, fn: (c: MongoClient) => Promise<T>): Promise<T> {
  const c = new MongoClient(`mongodb://${host}/?directConnection=true`, { serverSelectionTimeoutMS: 3000, ...opts });
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cutpoint-keyfile-'));
  // Whitespace anywhere is not part of the key (mongod strips it).
  const keyFile = writeKey('key', 'c2ltdWxh\n  dG9yLWtl eQ==\n');
  cluster = await startTestCluster({ replsetOnly: true, members: 1, keyFile });
  host = cluster.shards[0]!.localNodes[0]!.address;
});

afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('__system', () => {
  it('only the __system role grants the internal action replSetHeartbeat needs', () => {
    expect(rolesAllow([{ role: '__system', db: 'admin' }], 'internal', CLUSTER)).toBe(true);
    expect(rolesAllow([{ role: '__system', db: 'admin' }], 'find', { db: 'local', collection: 'oplog.rs' })).toBe(true);
    expect(rolesAllow([{ role: 'root', db: 'admin' }], 'internal', CLUSTER)).toBe(false);
  });

  it('authenticates with the key file as __system@local, with every privilege', async () => {
    await withClient(keyFileClientOptions(join(dir, 'key')), async (c) => {
      const status = await c.db('admin').command({ connectionStatus: 1 });
      expect(status.authInfo).toEqual({ authenticatedUsers: [{ user: '__system', db: 'local' }], authenticatedUserRoles: [{ role: '__system', db: 'admin' }] });
      const reply = await c.db('admin').command({ replSetHeartbeat: 'rs0', configVersion: -2, hbv: 1, from: '127.0.0.1:1', fromId: -1 });
      expect(reply.ok).toBe(1);
      await c.db('app').collection('t').insertOne({ _id: 1 as never });
      expect(await c.db('local').collection('oplog.rs').countDocuments()).toBeGreaterThan(0);
    });
    // SCRAM-SHA-1 too, whose password is md5("__system:mongo:<key>") as for any user.
    await withClient({ ...keyFileClientOptions(join(dir, 'key')), authMechanism: 'SCRAM-SHA-1' }, async (c) => {
      expect((await c.db('admin').command({ ping: 1 })).ok).toBe(1);
    });
  });

  it('refuses another key (18) and keeps the internal action from ordinary users (13)', async () => {
    const other = writeKey('other', 'c29tZXRoaW5nLWVsc2U=');
    await expect(withClient(keyFileClientOptions(other), (c) => c.db('admin').command({ ping: 1 }))).rejects.toMatchObject({ code: 18 });
    const admin = cluster.users!.admin;
    await expect(
      withClient({ auth: { username: admin.user, password: admin.password }, authSource: 'admin' }, (c) =>
        c.db('admin').command({ replSetHeartbeat: 'rs0', configVersion: -2, hbv: 1, from: '127.0.0.1:1', fromId: -1 }),
      ),
    ).rejects.toMatchObject({ code: 13, message: expect.stringMatching(/^not authorized on admin to execute command \{ replSetHeartbeat: "rs0"/) });
  });

  it('the launcher keyFile implies --auth; getCmdLineOpts reports both', async () => {
    await withClient(keyFileClientOptions(join(dir, 'key')), async (c) => {
      const opts = await c.db('admin').command({ getCmdLineOpts: 1 });
      expect(opts.parsed.security).toEqual({ authorization: 'enabled', keyFile: join(dir, 'key') });
      expect(opts.argv).toEqual(expect.arrayContaining(['--auth', '--keyFile', join(dir, 'key')]));
    });
    await expect(
      new MongoClient(`mongodb://${host}/?directConnection=true`, { serverSelectionTimeoutMS: 3000 }).db('app').collection('t').findOne(),
    ).rejects.toMatchObject({ code: 13 });
  });
});
