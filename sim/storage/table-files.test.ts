import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SMALL, copyListed, create, openEngine, ts, useTmpDirs, write } from './testkit.ts';

const dir = useTmpDirs();

describe('table files', () => {
  it('exist from the creation of a collection (its descriptor only), so a backup cursor lists them before any checkpoint', () => {
    const src = dir();
    const engine = openEngine(src, 'replicaSet');
    create(engine, 1, 'app.c');
    const info = engine.getCollection('app.c')!;
    for (const ident of [info.ident, info.idIndexIdent!]) {
      // WiredTiger creates the file with the table: one descriptor block, no page yet.
      expect(fs.statSync(path.join(src, `${ident}.wt`)).size).toBe(SMALL.blockSize);
    }
    write(engine, 2, 'i', 'app.c', { _id: 1 });
    engine.setStableTimestamp(ts(2));
    // No checkpoint since the create: the pinned checkpoint is the one of the fresh dbpath.
    engine.switchLog();
    const pin = engine.pinCheckpoint();
    const data = pin.files.filter((f) => f.kind === 'data').map((f) => f.path);
    expect(data).toContain(`${info.ident}.wt`);
    expect(data).toContain(`${info.idIndexIdent!}.wt`);
    // In metadata order, as WiredTiger lists them.
    expect(data).toEqual([...data].sort());
    const dest = dir();
    copyListed(src, dest, pin);
    pin.release();
    engine.close();
    // The restore replays the oplog from the checkpoint: the collection comes back (the copied empty files of idents
    // the checkpoint does not know are dropped as mongod drops unknown idents).
    const restored = openEngine(dest, 'replicaSet');
    expect(restored.scan('app.c')).toEqual([{ _id: 1 }]);
    restored.close();
  });
});
