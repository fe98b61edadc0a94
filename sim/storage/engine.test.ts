import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageError } from './errors.ts';
import { balances, cleanup, create, openEngine, tmpDir, ts, write } from './testkit.ts';

const dirs: string[] = [];
afterEach(() => cleanup(dirs));

function dbpath(): string {
  const dir = tmpDir();
  dirs.push(dir);
  return dir;
}

describe('StorageEngine basics', () => {
  it('creates a fresh dbpath with WiredTiger names', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'standalone');
    expect(engine.recovery.fresh).toBe(true);
    expect(engine.lastCheckpoint().generation).toBe(1);
    const names = fs.readdirSync(dir).sort();
    for (const name of ['WiredTiger', 'WiredTiger.turtle', 'WiredTiger.wt', 'WiredTigerHS.wt', '_mdb_catalog.wt',
      'sizeStorer.wt', 'storage.bson', 'mongod.lock', 'WiredTiger.lock', 'journal']) {
      expect(names).toContain(name);
    }
    expect(fs.readFileSync(path.join(dir, 'WiredTiger'), 'utf8')).toBe('WiredTiger\nWiredTiger 11.2.0 (sim)\n');
    expect(fs.readdirSync(path.join(dir, 'journal'))).toEqual(['WiredTigerLog.0000000001']);
    expect(fs.readFileSync(path.join(dir, 'mongod.lock'), 'utf8').trim()).toBe(String(process.pid));
    engine.close();
    expect(fs.readFileSync(path.join(dir, 'mongod.lock'), 'utf8')).toBe('');
  });

  it('round-trips data across a clean close and open (with fsync)', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'standalone', { fsync: true });
    engine.createCollection('test.c');
    for (let i = 0; i < 50; i++) engine.insert('test.c', { _id: i, v: `doc ${i}`, nested: { a: [i, i * 2] } });
    engine.replace('test.c', { _id: 7, v: 'seven' });
    engine.delete('test.c', 8);
    engine.close();
    expect(fs.readdirSync(dir).filter((n) => /^(collection|index)-/.test(n))).toHaveLength(2);

    const again = openEngine(dir, 'standalone');
    expect(again.recovery.uncleanShutdown).toBe(false);
    expect(again.count('test.c')).toBe(49);
    expect(again.findById('test.c', 7)).toEqual({ _id: 7, v: 'seven' });
    expect(again.findById('test.c', 8)).toBeUndefined();
    expect(again.findById('test.c', 9)).toEqual({ _id: 9, v: 'doc 9', nested: { a: [9, 18] } });
    again.close();
  });

  it('rejects duplicate _id, unknown namespaces and a second open of the same dbpath', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'standalone');
    engine.createCollection('test.c');
    engine.insert('test.c', { _id: 'a' });
    expect(() => engine.insert('test.c', { _id: 'a' })).toThrow(expect.objectContaining({ code: 11000 }));
    expect(() => engine.insert('test.nope', { _id: 1 })).toThrow(expect.objectContaining({ code: 26 }));
    expect(() => engine.createCollection('test.c')).toThrow(expect.objectContaining({ code: 48 }));
    expect(() => openEngine(dir)).toThrow(expect.objectContaining({ code: 98 }));
    engine.close();
  });

  it('treats numeric _id of different BSON widths as one key', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'standalone');
    engine.createCollection('test.c');
    engine.insert('test.c', { _id: 1, v: 'int' });
    expect(() => engine.insert('test.c', { _id: 1.0 })).toThrow(StorageError);
    engine.insert('test.c', { _id: -2.5, v: 'neg' });
    engine.insert('test.c', { _id: 'x', v: 'str' });
    expect(engine.scan('test.c').map((d) => d._id)).toEqual([-2.5, 1, 'x']);
    engine.close();
  });

  it('reads at a timestamp see the newest version at or before it (MVCC)', () => {
    const dir = dbpath();
    const engine = openEngine(dir, 'replicaSet', { historyWindowSeconds: 0 });
    create(engine, 1, 'bank.accounts');
    write(engine, 2, 'i', 'bank.accounts', { _id: 'a', v: 100 });
    write(engine, 3, 'u', 'bank.accounts', { _id: 'a', v: 90 });
    write(engine, 4, 'i', 'bank.accounts', { _id: 'b', v: 10 });
    write(engine, 5, 'd', 'bank.accounts', { _id: 'a' });
    expect(engine.getCollection('bank.accounts', ts(0))).toBeUndefined();
    expect(balances(engine, 'bank.accounts', ts(2))).toEqual({ a: 100 });
    expect(balances(engine, 'bank.accounts', ts(3))).toEqual({ a: 90 });
    expect(balances(engine, 'bank.accounts', ts(4))).toEqual({ a: 90, b: 10 });
    expect(balances(engine, 'bank.accounts')).toEqual({ b: 10 });
    engine.setStableTimestamp(ts(4));
    expect(() => engine.scan('bank.accounts', ts(3))).toThrow(expect.objectContaining({ code: 239 }));
    expect(() => engine.insert('bank.accounts', { _id: 'c' }, ts(4))).toThrow(expect.objectContaining({ code: 2 }));
    engine.checkpoint();
    expect(balances(engine, 'bank.accounts', ts(4))).toEqual({ a: 90, b: 10 });
    engine.close();
  });

  it('fails to open a missing dbpath and a dbpath whose turtle is gone', () => {
    expect(() => openEngine(path.join(dbpath(), 'nope'))).toThrow(expect.objectContaining({ code: 29 }));
    const dir = dbpath();
    const engine = openEngine(dir, 'standalone');
    engine.createCollection('test.c');
    engine.close();
    fs.rmSync(path.join(dir, 'WiredTiger.turtle'));
    expect(() => openEngine(dir, 'standalone')).toThrow(/WiredTiger\.turtle is missing/);
  });
});
