/**
 * The mongod-compatible entry point as a separate process, driven exactly as a restore will drive a real mongod:
 * standalone starts leave data at the checkpoint, replica-set and recoverFromOplogAsStandalone starts apply the
 * oplog, oplogTruncateAfterPoint cuts it exactly, and damaged dbpaths fail startup naming what is wrong. Plus the
 * launcher's contract (docs/interfaces.md section 1).
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Document, Timestamp } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { BankWorkload } from './cluster/bank.ts';
import type { BankHistory } from './cluster/history.ts';
import { compareTs } from './node/clock.ts';
import { direct, eventually, runMongod, sleep, startTestCluster, stopMongod } from './testkit.ts';

/** A crashed single-member replica set's dbpath (with workload history), prepared once and copied per test. */
let source: string;
let history: BankHistory;
let port: number;
let checkpointAtCrash: Timestamp;

/** The crashed cluster's data directory: the source every test copies; removed after the tests. */
let clusterDir: string;

beforeAll(async () => {
  clusterDir = mkdtempSync(join(tmpdir(), 'cutpoint-mongod-source-'));
  const cluster = await startTestCluster({ replsetOnly: true, members: 1, checkpointMs: 800, dir: clusterDir });
  const workload = await BankWorkload.start(cluster, { log: cluster.shards[0]!.localNodes[0]!.log, seed: 5 });
  await sleep(2000);
  workload.stop();
  const node = cluster.shards[0]!.localNodes[0]!;
  checkpointAtCrash = node.engine.lastCheckpoint().timestamp!;
  // More transfers after the last checkpoint, only in the journal, then kill -9.
  for (let i = 0; i < 20; i++) workload.transferOnce();
  source = node.dbpath;
  port = node.port;
  history = workload.history;
  await node.crash();
  await cluster.stop();
});

function copyOfSource(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cutpoint-mongod-test-'));
  cpSync(source, dir, { recursive: true });
  return dir;
}

async function accounts(host: string): Promise<Map<string, number>> {
  const c = direct(host);
  try {
    const docs = await c.db('bank').collection('accounts').find().toArray();
    return new Map(docs.map((d) => [String(d._id), Number(d.balance)]));
  } finally {
    await c.close();
  }
}

function expectHistoryAt(state: Map<string, number>, ts: Timestamp): void {
  expect(Object.fromEntries(state)).toEqual(Object.fromEntries(history.stateAt('rs0', ts)));
}

describe('mongod entry point: starts and recovery modes', () => {
  it('standalone leaves the data at the checkpoint; --replSet applies the journaled oplog', async () => {
    const dbpath = copyOfSource();
    const standalone = await runMongod(['--dbpath', dbpath, '--port', String(port)]);
    const status = await direct(`127.0.0.1:${port}`).db('admin').command({ serverStatus: 1 });
    const ckpt = status.wiredTiger.checkpoint.timestamp as Timestamp;
    expect(compareTs(ckpt, checkpointAtCrash)).toBe(0);
    const atCheckpoint = await accounts(`127.0.0.1:${port}`);
    expectHistoryAt(atCheckpoint, ckpt);
    expect(Object.fromEntries(atCheckpoint)).not.toEqual(Object.fromEntries(history.stateAt('rs0', history.last())));
    expect(await stopMongod(standalone)).toBe(0);

    const member = await runMongod(['--dbpath', dbpath, '--port', String(port), '--replSet', 'rs0']);
    await eventually(async () => (await direct(`127.0.0.1:${port}`).db('admin').command({ hello: 1 })).isWritablePrimary, 10_000, 'PRIMARY');
    expectHistoryAt(await accounts(`127.0.0.1:${port}`), history.last());
    expect(await stopMongod(member)).toBe(0);
    rmSync(dbpath, { recursive: true, force: true });
  });

  it('oplogTruncateAfterPoint + recoverFromOplogAsStandalone + takeUnstableCheckpointOnShutdown land exactly on the point', async () => {
    const dbpath = copyOfSource();
    const target = history.transfers.at(-8)!.ts; // after the checkpoint, before the end of the journal
    expect(compareTs(target, checkpointAtCrash)).toBeGreaterThan(0);

    const step1 = await runMongod(['--dbpath', dbpath, '--port', String(port), '--setParameter', 'disableLogicalSessionCacheRefresh=true']);
    const c = direct(`127.0.0.1:${port}`);
    await c.db('local').collection<Document>('replset.oplogTruncateAfterPoint').replaceOne(
      { _id: 'oplogTruncateAfterPoint' as never },
      { _id: 'oplogTruncateAfterPoint', oplogTruncateAfterPoint: target },
      { upsert: true },
    );
    await c.close();
    expect(await stopMongod(step1)).toBe(0);

    const step2 = await runMongod([
      '--dbpath', dbpath, '--port', String(port),
      '--setParameter', 'recoverFromOplogAsStandalone=true',
      '--setParameter', 'takeUnstableCheckpointOnShutdown=true',
    ]);
    expectHistoryAt(await accounts(`127.0.0.1:${port}`), target);
    // Read-only while recovering from the oplog as a standalone.
    await expect(direct(`127.0.0.1:${port}`).db('bank').collection('accounts').insertOne({ _id: 'x' as never })).rejects.toThrow();
    expect(await stopMongod(step2)).toBe(0);

    // The shutdown checkpoint kept everything applied: a plain standalone now sees the target state.
    const step3 = await runMongod(['--dbpath', dbpath, '--port', String(port)]);
    expectHistoryAt(await accounts(`127.0.0.1:${port}`), target);
    const oplog = await direct(`127.0.0.1:${port}`).db('local').collection('oplog.rs').find().toArray();
    expect(compareTs(oplog.at(-1)!.ts as Timestamp, target)).toBe(0);
    expect(await stopMongod(step3)).toBe(0);
    rmSync(dbpath, { recursive: true, force: true });
  });
});

describe('mongod entry point: damaged dbpaths fail loudly', () => {
  it('a flipped byte in a referenced block fails startup naming the file, the block and the generation', async () => {
    const dbpath = copyOfSource();
    const files = readdirSync(dbpath).filter((f) => /^collection-.*\.wt$/.test(f));
    const biggest = files.sort((a, b) => statSync(join(dbpath, b)).size - statSync(join(dbpath, a)).size)[0]!;
    // Flip one byte in the payload of every data block: whichever blocks the checkpoint references, one is hit.
    const size = statSync(join(dbpath, biggest)).size;
    const fd = openSync(join(dbpath, biggest), 'r+');
    for (let off = 4096 + 200; off < size; off += 4096) {
      const b = Buffer.alloc(1);
      b[0] = readFileSync(join(dbpath, biggest))[off]! ^ 0xff;
      writeSync(fd, b, 0, 1, off);
    }
    closeSync(fd);
    const p = await runMongod(['--dbpath', dbpath, '--port', String(port)]);
    expect(await p.exited).toBe(100);
    expect(p.output()).toMatch(new RegExp(`${biggest.replace('.', '\\.')} block \\d+`));
    expect(p.output()).toMatch(/generation \d+/);
    rmSync(dbpath, { recursive: true, force: true });
  });

  it('a missing journal file fails startup naming it', async () => {
    const dbpath = copyOfSource();
    const logs = readdirSync(join(dbpath, 'journal')).sort();
    expect(logs.length).toBeGreaterThan(0);
    const victim = logs[0]!;
    rmSync(join(dbpath, 'journal', victim));
    const p = await runMongod(['--dbpath', dbpath, '--port', String(port), '--replSet', 'rs0']);
    expect(await p.exited).toBe(100);
    expect(p.output()).toContain(victim);
    rmSync(dbpath, { recursive: true, force: true });
  });

  it('an unknown --setParameter fails startup', async () => {
    const dbpath = copyOfSource();
    const p = await runMongod(['--dbpath', dbpath, '--port', String(port), '--setParameter', 'noSuchKnob=1']);
    expect(await p.exited).toBe(100);
    expect(p.output()).toContain("Unknown --setParameter 'noSuchKnob'");
    rmSync(dbpath, { recursive: true, force: true });
  });
});

describe('launcher', () => {
  it('`npm run -s sim -- up` prints the JSON line of docs/interfaces.md, serves it, and shuts down cleanly on SIGTERM', async () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), 'cutpoint-launcher-'));
    const child = spawn('npm', ['run', '-s', 'sim', '--', 'up', '--shards', '2', '--members', '2', '--dir', dir, '--checkpoint-ms', '1000', '--workload', 'bank'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, signalled as a terminal signals its foreground job (npm does not forward SIGTERM).
      detached: true,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    onTestFinished(killGroup);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
    await eventually(() => out.trim().endsWith('}'), 60_000, `launcher JSON (stderr: ${err})`);
    const info = JSON.parse(out.trim().split('\n').at(-1)!) as {
      mongos: string;
      configRS: { name: string; uri: string; hosts: string[]; members: Array<{ host: string; dbpath: string }> };
      shards: Array<{ name: string; uri: string; hosts: string[]; members: Array<{ host: string; dbpath: string }> }>;
    };
    expect(info.mongos).toMatch(/^mongodb:\/\/127\.0\.0\.1:\d+$/);
    expect(info.configRS.name).toBe('cfg');
    expect(info.shards.map((s) => s.name)).toEqual(['shard0', 'shard1']);
    for (const rs of [info.configRS, ...info.shards]) {
      expect(rs.hosts).toHaveLength(2);
      expect(rs.uri).toBe(`mongodb://${rs.hosts.join(',')}/?replicaSet=${rs.name}`);
      expect(rs.members.map((m) => m.host)).toEqual(rs.hosts);
      for (const m of rs.members) expect(m.dbpath.startsWith(dir)).toBe(true);
    }
    const ms = direct(info.mongos.slice('mongodb://'.length));
    try {
      expect((await ms.db('admin').command({ hello: 1 })).msg).toBe('isdbgrid');
      expect((await ms.db('admin').command({ listShards: 1 })).shards).toHaveLength(2);
      const { map } = await ms.db('admin').command({ getShardMap: 1 });
      expect(map).toEqual({ config: `cfg/${info.configRS.hosts.join(',')}`, shard0: `shard0/${info.shards[0]!.hosts.join(',')}`, shard1: `shard1/${info.shards[1]!.hosts.join(',')}` });
      const n = await ms.db('bank').collection('accounts').countDocuments();
      expect(n).toBeGreaterThan(0);
    } finally {
      await ms.close();
    }
    process.kill(-child.pid!, 'SIGTERM');
    const end = await exited;
    expect(end.code === 0 || end.signal === 'SIGTERM').toBe(true);
    // Every node shut down cleanly: its final checkpoint taken and mongod.lock emptied.
    const members = [info.configRS, ...info.shards].flatMap((rs) => rs.members);
    await eventually(() => members.every((m) => readFileSync(join(m.dbpath, 'mongod.lock'), 'utf8') === ''), 15_000, 'clean shutdown of every node');
  }, 90_000);
});

afterAll(() => {
  if (source) rmSync(join(source, '..'), { recursive: true, force: true });
});
