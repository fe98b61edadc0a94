/**
 * Recovers a backed-up replica set to a timestamp exactly as the PSMDB restore sequence does, through the
 * simulator's mongod-compatible entry point (separate processes, mongod's flags, the wire protocol), and reads the
 * bank accounts back with the driver.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fsRepository } from '../../repository/repository.ts';
import { dirname, join } from 'node:path';
import type { Document } from 'mongodb';
import type { ReplicaSetManifest } from '../../common/manifest.ts';
import type { Ts } from '../../common/timestamp.ts';
import { freePort } from '../../scripts/temporal/dev-server.ts';
import { direct, runMongod, stopMongod } from '../../sim/testkit.ts';
import { toBsonTimestamp } from '../../lib/bson-timestamp.ts';
import { tempDir } from './temp.ts';

/**
 * Rebuilds a replica set's files out of a filesystem repository (either format: repository.ts openStoredFile) into a
 * fresh dbpath, each checked against its manifest's size and SHA-256 (`password`: of an encrypted repository).
 */
export async function materialize(repo: string, backupId: string, manifest: ReplicaSetManifest, password?: string): Promise<string> {
  const dbpath = tempDir(`cutpoint-restored-${manifest.name}-`);
  const r = fsRepository(repo, password === undefined ? {} : { password: () => password });
  for (const f of manifest.files) {
    const to = join(dbpath, f.path);
    mkdirSync(dirname(to), { recursive: true });
    const parts: Buffer[] = [];
    for await (const b of await r.openStoredFile(backupId, manifest.name, f)) parts.push(b);
    const bytes = Buffer.concat(parts);
    if (bytes.length !== f.size || (f.sha256 !== undefined && createHash('sha256').update(bytes).digest('hex') !== f.sha256)) throw new Error(`${f.path}: rebuilt file differs from its manifest entry`);
    writeFileSync(to, bytes);
  }
  return dbpath;
}

/** Standalone (set oplogTruncateAfterPoint) → recoverFromOplogAsStandalone + takeUnstableCheckpointOnShutdown → read. */
export async function recoverBankAt(dbpath: string, ts: Ts): Promise<Map<string, number>> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const step1 = await runMongod(['--dbpath', dbpath, '--port', String(port)]);
  if (step1.child.exitCode !== null) throw new Error(`standalone start failed:\n${step1.output()}`);
  const c1 = direct(host);
  await c1.db('local').collection<Document>('replset.oplogTruncateAfterPoint').replaceOne(
    { _id: 'oplogTruncateAfterPoint' as never },
    { _id: 'oplogTruncateAfterPoint', oplogTruncateAfterPoint: toBsonTimestamp(ts) },
    { upsert: true },
  );
  await c1.close();
  await stopMongod(step1);
  const step2 = await runMongod([
    '--dbpath', dbpath, '--port', String(port),
    '--setParameter', 'recoverFromOplogAsStandalone=true',
    '--setParameter', 'takeUnstableCheckpointOnShutdown=true',
  ]);
  if (step2.child.exitCode !== null) throw new Error(`recoverFromOplogAsStandalone failed:\n${step2.output()}`);
  const c2 = direct(host);
  try {
    const docs = await c2.db('bank').collection('accounts').find().toArray();
    return new Map(docs.map((d) => [String(d._id), Number(d.balance)]));
  } finally {
    await c2.close();
    await stopMongod(step2);
  }
}
