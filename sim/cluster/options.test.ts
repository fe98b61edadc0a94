/**
 * The launcher's storage and encryption options (`--directory-per-db`, `--directory-for-indexes`,
 * `--encryption-key-file`; `--key-file` is in sim/node/auth/internal.test.ts) reach every node: its files, its
 * storage.bson and key.db, and what getCmdLineOpts reports, so a backed-up cluster carries them.
 */
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { direct, startTestCluster } from '../testkit.ts';
import type { SimCluster } from './cluster.ts';

let dir: string;
let keyFile: string;
let cluster: SimCluster;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cutpoint-cluster-options-'));
  keyFile = join(dir, 'master.key');
  writeFileSync(keyFile, Buffer.alloc(32, 3).toString('base64'));
  chmodSync(keyFile, 0o600);
  cluster = await startTestCluster({ replsetOnly: true, members: 2, directoryPerDB: true, directoryForIndexes: true, encryptionKeyFile: keyFile });
});

afterAll(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('launcher storage and encryption options', () => {
  it('every node lays out its files per database and directory, is encrypted, and reports its options', async () => {
    const rs = cluster.shards[0]!;
    const primary = rs.primary()!;
    const c = direct(primary.address);
    try {
      await c.db('bank').collection('x').insertOne({ _id: 1 as never });
      for (const node of rs.localNodes) {
        const nc = direct(node.address);
        const opts = await nc.db('admin').command({ getCmdLineOpts: 1 }).finally(() => nc.close());
        expect(opts.parsed.storage).toMatchObject({ directoryPerDB: true, wiredTiger: { engineConfig: { directoryForIndexes: true } } });
        expect(opts.parsed.security).toEqual({ enableEncryption: true, encryptionKeyFile: keyFile });
        expect(existsSync(join(node.dbpath, 'key.db', 'key.wt'))).toBe(true);
        const info = node.engine.getCollection('local.oplog.rs')!;
        expect(info.ident).toMatch(/^local\/collection\/\d+-\d+$/);
      }
      expect(primary.engine.getCollection('bank.x')!.ident).toMatch(/^bank\/collection\//);
      primary.engine.checkpoint();
      expect(readdirSync(join(primary.dbpath, 'bank')).sort()).toEqual(['collection', 'index']);
    } finally {
      await c.close();
    }
  });
});
