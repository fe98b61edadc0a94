/**
 * The startup options a restore must repeat (docs/psmdb-behaviour.md section 7.1), on `sim/bin/mongod` processes as a
 * restore starts them: the ident layout (files in subdirectories, listed so by `$backupCursor`, recorded in
 * storage.bson, a start with other options refused with mongod's message), encryption at rest (key.db; refused
 * without the key or with another one), key files (refused as mongod refuses them), getCmdLineOpts, and internal
 * authentication between two processes of one replica set.
 */
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BSON, Long, MongoClient, type Document, type MongoClientOptions } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { keyFileClientOptions } from '../lib/mongo/keyfile.ts';
import { freePort } from '../lib/ports.ts';
import { direct, eventually, runMongod, stopMongod, type MongodProcess } from './testkit.ts';

const root = mkdtempSync(join(tmpdir(), 'cutpoint-mongod-options-'));
const running: MongodProcess[] = [];
afterAll(async () => {
  for (const p of running) if (p.child.exitCode === null) await stopMongod(p);
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
function newDir(): string {
  return mkdtempSync(join(root, `db${n++}-`));
}

/** A file readable by its owner only, as mongod wants key files. */
function secret(name: string, text: string, mode = 0o600): string {
  const file = join(root, name);
  writeFileSync(file, text);
  chmodSync(file, mode);
  return file;
}

async function start(args: string[]): Promise<MongodProcess> {
  const p = await runMongod(args);
  running.push(p);
  return p;
}

async function withClient<T>(host: string, fn: (c: MongoClient) => Promise<T>, opts?: MongoClientOptions): Promise<T> {
  const c = opts ? new MongoClient(`mongodb://${host}/?directConnection=true&readPreference=primaryPreferred`, { serverSelectionTimeoutMS: 5000, ...opts }) : direct(host);
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

/** Every file document of a `$backupCursor` opened and closed at once. */
async function backupFiles(c: MongoClient): Promise<string[]> {
  const admin = c.db('admin');
  const reply = await admin.command({ aggregate: 1, pipeline: [{ $backupCursor: {} }], cursor: {} });
  const docs = [...(reply.cursor.firstBatch as Document[])];
  const id = Long.fromValue(reply.cursor.id as Long | number);
  await admin.command({ killCursors: '$cmd.aggregate', cursors: [id] });
  return docs.filter((d) => d.filename !== undefined).map((d) => String(d.filename));
}

describe('storage layout', () => {
  it('directoryPerDB + directoryForIndexes: files in subdirectories, listed so, recorded, and a start without them refused', async () => {
    const dbpath = newDir();
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const args = ['--dbpath', dbpath, '--port', String(port), '--directoryperdb', '--wiredTigerDirectoryForIndexes'];
    const p = await start([...args, '--wiredTigerCacheSizeGB', '0.5', '--setParameter', 'simCheckpointIntervalMs=200']);
    await withClient(host, async (c) => {
      await c.db('shop').collection('orders').insertOne({ _id: 1 as never });
      const opts = await c.db('admin').command({ getCmdLineOpts: 1 });
      expect(opts.parsed.storage).toEqual({ dbPath: dbpath, directoryPerDB: true, wiredTiger: { engineConfig: { cacheSizeGB: 0.5, directoryForIndexes: true } } });
      expect(opts.argv).toEqual(expect.arrayContaining(['--directoryperdb', '--wiredTigerDirectoryForIndexes', '--wiredTigerCacheSizeGB', '0.5']));
      // The backup cursor lists the files by their paths under the dbpath, subdirectories included (once a
      // checkpoint holds the collection).
      const files = (await eventually(
        async () => {
          const f = await backupFiles(c);
          return f.some((x) => x.startsWith(`${dbpath}/shop/collection/`)) ? f : undefined;
        },
        10_000,
        'a checkpoint holding shop.orders',
      ))!;
      const shop = files.filter((f) => f.startsWith(`${dbpath}/shop/`));
      expect(shop).toHaveLength(2);
      expect(shop[0]).toMatch(new RegExp(`^${dbpath}/shop/collection/\\d+-\\d+\\.wt$`));
      expect(shop[1]).toMatch(new RegExp(`^${dbpath}/shop/index/\\d+-\\d+\\.wt$`));
      for (const f of shop) expect(existsSync(f)).toBe(true);
      expect(files).toContain(`${dbpath}/_mdb_catalog.wt`);
    });
    expect(await stopMongod(p)).toBe(0);
    expect(BSON.deserialize(readFileSync(join(dbpath, 'storage.bson'))).storage.options).toEqual({ directoryPerDB: true, directoryForIndexes: true, groupCollections: false });

    // A restore that forgets --directoryperdb: mongod refuses the dbpath (an exception in initAndListen: exit 100).
    const forgot = await start(['--dbpath', dbpath, '--port', String(port), '--wiredTigerDirectoryForIndexes']);
    expect(await forgot.exited).toBe(100);
    expect(forgot.output()).toContain(
      'InvalidOptions: Requested option conflicts with current storage engine option for directoryPerDB; you requested false but the current server storage is already set to true and cannot be changed',
    );
    const again = await start(args);
    expect(await withClient(host, (c) => c.db('shop').collection('orders').findOne())).toEqual({ _id: 1 });
    expect(await stopMongod(again)).toBe(0);
  });
});

describe('encryption at rest', () => {
  it('an encrypted dbpath is refused without --enableEncryption and with another master key', async () => {
    const dbpath = newDir();
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const key = secret('master.key', `${Buffer.alloc(32, 7).toString('base64')}\n`);
    const p = await start(['--dbpath', dbpath, '--port', String(port), '--enableEncryption', '--encryptionKeyFile', key, '--encryptionCipherMode', 'AES256-GCM']);
    await withClient(host, async (c) => {
      await c.db('app').collection('t').insertOne({ _id: 1 as never });
      const opts = await c.db('admin').command({ getCmdLineOpts: 1 });
      expect(opts.parsed.security).toEqual({ enableEncryption: true, encryptionCipherMode: 'AES256-GCM', encryptionKeyFile: key });
      const files = await backupFiles(c);
      expect(files.slice(0, 2)).toEqual([`${dbpath}/key.db/key.wt`, `${dbpath}/key.db/WiredTiger`]);
    });
    expect(await stopMongod(p)).toBe(0);

    const plain = await start(['--dbpath', dbpath, '--port', String(port)]);
    expect(await plain.exited).toBe(14);
    expect(plain.output()).toContain("unknown encryptor 'percona'");

    const other = secret('other.key', `${Buffer.alloc(32, 9).toString('base64')}\n`);
    const wrong = await start(['--dbpath', dbpath, '--port', String(port), '--enableEncryption', '--encryptionKeyFile', other, '--encryptionCipherMode', 'AES256-GCM']);
    expect(await wrong.exited).toBe(14);
    expect(wrong.output()).toContain('EncryptionKeyDB: WiredTiger metadata corruption detected or an invalid encryption key is used');

    // The copy of an unencrypted dbpath cannot be started encrypted either.
    const unencrypted = newDir();
    cpSync(dbpath, unencrypted, { recursive: true });
    rmSync(join(unencrypted, 'key.db'), { recursive: true });
    const enabled = await start(['--dbpath', unencrypted, '--port', String(port), '--enableEncryption', '--encryptionKeyFile', key]);
    expect(await enabled.exited).toBe(100);
    expect(enabled.output()).toContain('encryption at rest can only be enabled on an empty dbpath');

    // Options mongod refuses while parsing its command line: exit 2.
    const noKey = await start(['--dbpath', dbpath, '--port', String(port), '--enableEncryption']);
    expect(await noKey.exited).toBe(2);
    const noOplog = await start(['--dbpath', dbpath, '--port', String(port), '--oplogSize', '0']);
    expect(await noOplog.exited).toBe(2);
    expect(noOplog.output()).toContain('bad --oplogSize, arg must be greater than 0, found: 0');
  });
});

describe('key files', () => {
  it('a key file mongod would refuse stops startup with its message and exit code 1', async () => {
    const dbpath = newDir();
    const port = String(await freePort());
    const open = secret('open.key', 'c2VjcmV0LWtleQ==', 0o644);
    const tooOpen = await start(['--dbpath', dbpath, '--port', port, '--keyFile', open]);
    expect(await tooOpen.exited).toBe(1);
    expect(tooOpen.output()).toContain(`permissions on ${open} are too open`);
    const short = secret('short.key', 'abc\n');
    const tooShort = await start(['--dbpath', dbpath, '--port', port, '--keyFile', short]);
    expect(await tooShort.exited).toBe(1);
    expect(tooShort.output()).toContain(`security key in ${short} has length 3, must be between 6 and 1024 chars`);
    // Refused before the dbpath was touched.
    expect(existsSync(join(dbpath, 'storage.bson'))).toBe(false);
  });
});

describe('internal authentication between processes', () => {
  it('members started with --keyFile K --auth replicate; a member with another key is refused at every heartbeat', async () => {
    const key = secret('rs.key', 'aW50ZXJuYWwtYXV0aGVudGljYXRpb24ta2V5\n');
    const otherKey = secret('rs-other.key', 'YW5vdGhlci1rZXktYWx0b2dldGhlcg==\n');
    const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
    const [a, b, c] = [pa, pb, pc].map((p) => `127.0.0.1:${p}`) as [string, string, string];
    const member = (dbpath: string, port: number, keyFile: string) =>
      start(['--dbpath', dbpath, '--port', String(port), '--replSet', 'rs', '--keyFile', keyFile, '--auth']);
    // Clients authenticate as __system with the key file, as a restore's node controller can.
    const as = <T>(host: string, keyFile: string, fn: (cl: MongoClient) => Promise<T>) => withClient(host, fn, keyFileClientOptions(keyFile));

    // The first member, initiated through the localhost exception, which its first user then closes.
    const dirA = newDir();
    await member(dirA, pa, key);
    await withClient(a, async (cl) => {
      await cl.db('admin').command({ replSetInitiate: {} });
      await eventually(async () => (await cl.db('admin').command({ hello: 1 })).isWritablePrimary === true, 10_000, 'a primary');
      await cl.db('admin').command({ createUser: 'root', pwd: 'secret-password', roles: ['root'] });
    });
    await expect(withClient(a, (cl) => cl.db('app').collection('t').findOne())).rejects.toMatchObject({ code: 13 });
    await as(a, key, (cl) => cl.db('app').collection('t').insertOne({ _id: 'before' as never }));
    // The other two start from hot backups of it (a member with an empty oplog would need an initial sync): they
    // hold the user too, so nothing reaches them unauthenticated.
    const dirB = newDir();
    const dirC = newDir();
    await as(a, key, async (cl) => {
      await cl.db('admin').command({ createBackup: 1, backupDir: dirB });
      await cl.db('admin').command({ createBackup: 1, backupDir: dirC });
    });
    await member(dirB, pb, key);
    const wrong = await member(dirC, pc, otherKey);
    await as(a, key, async (cl) => {
      const admin = cl.db('admin');
      const { config } = (await admin.command({ replSetGetConfig: 1 })) as { config: Document };
      const members = [...(config.members as Document[]), { _id: 1, host: b }, { _id: 2, host: c, priority: 0, votes: 0 }];
      await admin.command({ replSetReconfig: { ...config, version: Number(config.version) + 1, members } });
    });

    // B heartbeats back with the same key, learns the config, syncs from A over authenticated connections.
    await eventually(async () => (await as(b, key, (cl) => cl.db('admin').command({ hello: 1 }))).secondary === true, 15_000, 'B SECONDARY');
    await as(a, key, (cl) => cl.db('app').collection('t').insertOne({ _id: 'after' as never }));
    await eventually(async () => (await as(b, key, (cl) => cl.db('app').collection('t').findOne({ _id: 'after' as never }))) !== null, 10_000, 'the write on B');

    // C has another key: A's heartbeats fail authenticating as __system, so C never learns the config.
    const seen = (await eventually(
      async () => {
        const status = await as(a, key, (cl) => cl.db('admin').command({ replSetGetStatus: 1 }));
        const m = (status.members as Document[]).find((x) => x.name === c);
        return m?.lastHeartbeatMessage ? m : undefined;
      },
      10_000,
      'a failed heartbeat to C',
    ))!;
    expect(seen.health).toBe(0);
    expect(seen.lastHeartbeatMessage).toMatch(/Authentication failed/);
    const helloC = await as(c, otherKey, (cl) => cl.db('admin').command({ hello: 1 }));
    expect(helloC.setName).toBeUndefined();
    expect(await as(c, otherKey, (cl) => cl.db('app').collection('t').findOne({ _id: 'after' as never }))).toBeNull();
    expect(wrong.child.exitCode).toBeNull();
  });
});
