/**
 * Restore targets for tests: new members (free ports, fresh dbpaths) with an agent worker each on the run's dev
 * server, the simulator's mongod as the executable the node controller spawns, and the checks a user would run on
 * a restored member through the driver.
 */
import { existsSync, readFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import type { Worker } from '@temporalio/worker';
import type { Timestamp } from 'mongodb';
import { MongoClient, type Document } from 'mongodb';
import { pidAlive } from '../../lib/process.ts';
import type { RestoreMember, StartedMember } from '../../common/restore-types.ts';
import type { Ts } from '../../common/timestamp.ts';
import { freePort } from '../../scripts/temporal/dev-server.ts';
import { MONGOD_BIN, sleep } from '../../sim/testkit.ts';
import { createAgentWorkers } from '../../workers/agent.ts';
import { createLogger } from '../../lib/logger.ts';
import type { TemporalHarness } from './temporal.ts';
import { toBsonTimestamp, fromBsonTimestamp } from '../../lib/bson-timestamp.ts';
import { tempDir } from './temp.ts';
import { expect } from 'vitest';
import type { BankHistory } from '../../sim/cluster/history.ts';
import { Oracle, type Verdict } from '../../sim/cluster/oracle.ts';

/** The node controller spawns the simulator's mongod in tests (the agent reads this when a step runs). */
export function useSimMongod(): void {
  process.env.CUTPOINT_MONGOD_PATH = MONGOD_BIN;
}

/** `n` new members on free ports of 127.0.0.1, each with an empty dbpath. */
export async function newMembers(n: number, label = 'target'): Promise<RestoreMember[]> {
  const parent = tempDir(`cutpoint-${label}-`);
  const out: RestoreMember[] = [];
  for (let i = 0; i < n; i++) out.push({ host: `127.0.0.1:${await freePort()}`, dbpath: join(parent, `m${i}`) });
  return out;
}

/** Agent workers (in this process) for the given target hosts; `stop()` shuts them down. */
export async function startTargetAgents(h: TemporalHarness, members: RestoreMember[]): Promise<{ workers: Worker[]; stop(): Promise<void> }> {
  const workers = await createAgentWorkers({ connection: h.native, namespace: h.namespace, targets: members.map((m) => ({ mongod: m.host })), log: createLogger('warn') });
  const running = Promise.allSettled(workers.map((w) => w.run()));
  return {
    workers,
    async stop() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await running;
    },
  };
}

/** Stops restored mongods (SIGTERM: a clean shutdown) and waits for them to exit. */
export async function stopMembers(members: Array<Pick<StartedMember, 'pid'>>): Promise<void> {
  for (const m of members) {
    try {
      process.kill(m.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 30_000;
  while (members.some((m) => pidAlive(m.pid)) && Date.now() < deadline) await sleep(100);
}

/** A direct driver connection to one member. */
export function connect(host: string): MongoClient {
  return new MongoClient(`mongodb://${host}/?directConnection=true&readPreference=primaryPreferred`, { serverSelectionTimeoutMS: 5000 });
}

/** The bank accounts of a member, read with the driver. */
export async function readAccounts(host: string): Promise<Map<string, number>> {
  const c = connect(host);
  try {
    const docs = await c.db('bank').collection('accounts').find().toArray();
    return new Map(docs.map((d) => [String(d._id), Number(d.balance)]));
  } finally {
    await c.close();
  }
}

/**
 * The bank accounts of a member as of cluster time `ts` (a snapshot read with `atClusterTime`), read with the driver:
 * two members compared at one timestamp while writes go on.
 */
export async function readAccountsAt(host: string, ts: Timestamp): Promise<Map<string, number>> {
  const c = connect(host);
  try {
    const reply = await c
      .db('bank')
      .command({ find: 'accounts', batchSize: 100_000, readConcern: { level: 'snapshot', atClusterTime: ts } }, { readPreference: 'primaryPreferred' });
    const cursor = reply.cursor as { id: unknown; firstBatch: Document[] };
    return new Map(cursor.firstBatch.map((d) => [String(d._id), Number(d.balance)]));
  } finally {
    await c.close();
  }
}

/** The newest oplog entries of a member (newest first), read with the driver. */
export async function oplogTail(host: string, n = 500): Promise<Document[]> {
  const c = connect(host);
  try {
    return await c.db('local').collection('oplog.rs').find({}, { sort: { ts: -1 }, limit: n }).toArray();
  } finally {
    await c.close();
  }
}

/** The newest oplog entry that is not a periodic no-op (a restored primary writes those once it runs). */
export async function lastRealOplogTs(host: string): Promise<Ts | null> {
  const tail = await oplogTail(host);
  const e = tail.find((x) => x.op !== 'n');
  const ts = e?.ts as Timestamp | undefined;
  return ts ? fromBsonTimestamp(ts)! : null;
}

/** `hello` of a member. */
export async function helloOf(host: string): Promise<Document> {
  const c = connect(host);
  try {
    return await c.db('admin').command({ hello: 1 });
  } finally {
    await c.close();
  }
}

/** The restore state a member's dbpath holds (what an agent records), or undefined. */
export function memberState(dbpath: string): Record<string, unknown> | undefined {
  const f = join(dbpath, '.cutpoint-restore', 'state.json');
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>) : undefined;
}

export const toTimestamp = toBsonTimestamp;

/**
 * The restored shards' accounts, read from their new hosts, against the workload's history at `ts`: no mismatch and
 * the invariant total. Returns the oracle's verdict for further checks.
 */
export async function expectShardsAtHistory(history: BankHistory, shards: Array<{ name: string; host: string }>, ts: Timestamp): Promise<Verdict> {
  const states = [];
  for (const s of shards) states.push({ name: s.name, accounts: await readAccounts(s.host) });
  const verdict = new Oracle(history).verify(states, ts);
  expect(verdict.mismatches).toEqual([]);
  expect(verdict.total).toBe(verdict.expectedTotal);
  return verdict;
}

/** Whether something accepts TCP connections at host:port (a refused connection answers at once). */
export function listening(hostPort: string): Promise<boolean> {
  const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const sock = connectTcp({ host, port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
