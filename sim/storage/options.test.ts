/**
 * The startup options that shape a dbpath and must be repeated by every later start (docs/psmdb-behaviour.md section
 * 7.1): the ident layout (directoryPerDB, directoryForIndexes) recorded in storage.bson, and PSMDB's encryption at
 * rest recorded in key.db/. Engine-level; the mongod process's side is sim/mongod-options.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { BSON } from 'mongodb';
import { afterEach, describe, expect, it } from 'vitest';
import { escapeDbName } from './catalog.ts';
import { listIdentFiles } from './dbfiles.ts';
import { cleanup, openEngine, tmpDir } from './testkit.ts';

const dirs: string[] = [];
afterEach(() => cleanup(dirs));

function dbpath(): string {
  const dir = tmpDir();
  dirs.push(dir);
  return dir;
}

/** A master key file: 32 random bytes, base64, readable by its owner only. */
function keyFile(mode = 0o600): string {
  const dir = dbpath();
  const file = path.join(dir, 'master.key');
  fs.writeFileSync(file, `${Buffer.from(Array.from({ length: 32 }, () => Math.floor(Math.random() * 256))).toString('base64')}\n`);
  fs.chmodSync(file, mode);
  return file;
}

function identsOf(engine: ReturnType<typeof openEngine>, ns: string): string[] {
  const info = engine.getCollection(ns)!;
  return [info.ident, info.idIndexIdent!];
}

describe('ident layout', () => {
  it('puts idents where mongod puts them for each combination of directoryPerDB and directoryForIndexes', () => {
    const cases = [
      { layout: {}, coll: /^collection-\d+-\d+$/, index: /^index-\d+-\d+$/ },
      { layout: { directoryPerDB: true }, coll: /^test\/collection-\d+-\d+$/, index: /^test\/index-\d+-\d+$/ },
      { layout: { directoryForIndexes: true }, coll: /^collection\/\d+-\d+$/, index: /^index\/\d+-\d+$/ },
      { layout: { directoryPerDB: true, directoryForIndexes: true }, coll: /^test\/collection\/\d+-\d+$/, index: /^test\/index\/\d+-\d+$/ },
    ];
    for (const c of cases) {
      const dir = dbpath();
      const engine = openEngine(dir, 'standalone', c.layout);
      engine.createCollection('test.c');
      engine.insert('test.c', { _id: 1 });
      const [coll, index] = identsOf(engine, 'test.c');
      expect(coll).toMatch(c.coll);
      expect(index).toMatch(c.index);
      engine.checkpoint();
      for (const ident of [coll!, index!]) expect(fs.existsSync(path.join(dir, `${ident}.wt`))).toBe(true);
      expect(listIdentFiles(dir)).toEqual([`${coll}.wt`, `${index}.wt`].sort());
      // storage.bson records the layout as mongod's createMetadataOptions does.
      const recorded = BSON.deserialize(fs.readFileSync(path.join(dir, 'storage.bson')));
      expect(recorded).toEqual({
        storage: {
          engine: 'wiredTiger',
          options: { directoryPerDB: c.layout.directoryPerDB ?? false, directoryForIndexes: c.layout.directoryForIndexes ?? false, groupCollections: false },
        },
      });
      engine.close();
    }
  });

  it('escapes database names as mongod does for their directories', () => {
    expect(escapeDbName('test')).toBe('test');
    expect(escapeDbName('a-b c')).toBe('a.45b.32c');
    expect(escapeDbName('x_1')).toBe('x_1');
    const dir = dbpath();
    const engine = openEngine(dir, 'standalone', { directoryPerDB: true });
    engine.createCollection('my-db.c');
    expect(identsOf(engine, 'my-db.c')[0]).toMatch(/^my\.45db\/collection-/);
    engine.close();
  });

  it('refuses a start whose layout differs from storage.bson with mongod message; a start without options keeps it', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'standalone', { directoryPerDB: true });
    engine.createCollection('test.c');
    engine.insert('test.c', { _id: 1 });
    engine.close();
    expect(() => openEngine(dir, 'standalone', { directoryPerDB: false, directoryForIndexes: false })).toThrow(
      expect.objectContaining({
        code: 72,
        codeName: 'InvalidOptions',
        message:
          'Requested option conflicts with current storage engine option for directoryPerDB; you requested false but the current server storage is already set to true and cannot be changed',
      }),
    );
    expect(() => openEngine(dir, 'standalone', { directoryPerDB: true, directoryForIndexes: true })).toThrow(
      'Requested option conflicts with current storage engine option for directoryForIndexes; you requested true but the current server storage is already set to false and cannot be changed',
    );
    // A tool that opens the dbpath without options gets the recorded layout for new idents.
    const again = openEngine(dir, 'standalone');
    expect(again.findById('test.c', 1)).toEqual({ _id: 1 });
    again.createCollection('other.d');
    expect(identsOf(again, 'other.d')[0]).toMatch(/^other\/collection-/);
    again.close();
  });

  it('deletes unknown ident files in subdirectories at startup, and the directories that leaves empty', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'standalone', { directoryPerDB: true, directoryForIndexes: true });
    engine.createCollection('test.c');
    engine.close();
    fs.mkdirSync(path.join(dir, 'gone', 'collection'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'gone', 'collection', '9-1.wt'), 'x');
    fs.writeFileSync(path.join(dir, 'test', 'index', '9-1.wt'), 'x');
    const again = openEngine(dir, 'standalone', { directoryPerDB: true, directoryForIndexes: true });
    expect([...again.recovery.orphansRemoved].sort()).toEqual(['gone/collection/9-1.wt', 'test/index/9-1.wt']);
    expect(fs.existsSync(path.join(dir, 'gone'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'test', 'index'))).toBe(true);
    again.close();
  });

  it('a backup pin lists ident files by their paths with subdirectories, in metadata order', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'replicaSet', { directoryPerDB: true });
    engine.createCollection('test.c');
    engine.insert('test.c', { _id: 1 });
    engine.checkpoint({ unstable: true });
    engine.switchLog();
    const pin = engine.pinCheckpoint();
    const data = pin.files.filter((f) => f.kind === 'data').map((f) => f.path);
    expect(data).toContain(`${identsOf(engine, 'test.c')[0]}.wt`);
    expect(data.filter((p) => p.startsWith('test/'))).toHaveLength(2);
    expect(data).toEqual([...data].sort());
    pin.release();
    engine.close();
  });
});

describe('encryption at rest (key.db)', () => {
  it('creates key.db on a fresh dbpath and lists its files first in a backup', () => {
    const dir = dbpath();
    const key = keyFile();
    const engine = openEngine(dir, 'replicaSet', { encryption: { keyFile: key } });
    expect(fs.readdirSync(path.join(dir, 'key.db')).sort()).toEqual(['WiredTiger', 'key.wt']);
    engine.switchLog();
    const pin = engine.pinCheckpoint();
    expect(pin.files.slice(0, 2).map((f) => [f.path, f.kind])).toEqual([['key.db/key.wt', 'keydb'], ['key.db/WiredTiger', 'keydb']]);
    pin.release();
    engine.close();
    openEngine(dir, 'replicaSet', { encryption: { keyFile: key } }).close();
  });

  it('refuses an encrypted dbpath without encryption, with another key or another cipher mode', () => {
    const dir = dbpath();
    const key = keyFile();
    openEngine(dir, 'standalone', { encryption: { keyFile: key, cipherMode: 'AES256-GCM' } }).close();
    expect(() => openEngine(dir, 'standalone')).toThrow(expect.objectContaining({ code: 28561, exitCode: 14, message: expect.stringContaining("unknown encryptor 'percona'") }));
    expect(() => openEngine(dir, 'standalone', { encryption: { keyFile: keyFile(), cipherMode: 'AES256-GCM' } })).toThrow(
      expect.objectContaining({ exitCode: 14, message: expect.stringContaining('EncryptionKeyDB: WiredTiger metadata corruption detected or an invalid encryption key is used') }),
    );
    expect(() => openEngine(dir, 'standalone', { encryption: { keyFile: key } })).toThrow(/encrypted with AES256-GCM/);
    openEngine(dir, 'standalone', { encryption: { keyFile: key, cipherMode: 'AES256-GCM' } }).close();
  });

  it('refuses encryption on an existing unencrypted dbpath, leaving no key.db behind', () => {
    const dir = dbpath();
    openEngine(dir, 'standalone').close();
    expect(() => openEngine(dir, 'standalone', { encryption: { keyFile: keyFile() } })).toThrow(expect.objectContaining({ code: 72, message: expect.stringContaining('encryption at rest can only be enabled on an empty dbpath') }));
    expect(fs.existsSync(path.join(dir, 'key.db'))).toBe(false);
  });

  it('reads the master key file as PSMDB does', () => {
    const dir = dbpath();
    const open = (file: string) => openEngine(dir, 'standalone', { encryption: { keyFile: file } });
    expect(() => open(keyFile(0o644))).toThrow(/^reading the master key from the encryption key file failed: permissions on .* are too open$/);
    expect(() => open(path.join(dir, 'absent'))).toThrow(`reading the master key from the encryption key file failed: cannot read stats of the encryption key file: ${path.join(dir, 'absent')}: No such file or directory`);
    const short = path.join(dbpath(), 'short.key');
    fs.writeFileSync(short, 'c2hvcnQ=\n', { mode: 0o600 });
    expect(() => open(short)).toThrow('invalid data for an encryption key: it must be a byte string of legth 32 in either raw or base64-encoded form');
    expect(fs.existsSync(path.join(dir, 'key.db'))).toBe(false);
  });
});
