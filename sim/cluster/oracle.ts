/**
 * The oracle (docs/simulator.md): given each replica set's bank state (read live at a cluster timestamp, or from
 * restored dbpaths recovered through the simulator's own startup path) and a target timestamp, checks that
 * (a) every replica set equals history at that timestamp, (b) the sum of balances is the invariant total and (c) no
 * cross-shard transfer (a distributed transaction) is half-applied: one side applied and the other not, whichever
 * side history says it should be on. It reports every mismatch; an honest check must be able to fail, and the tests
 * show it does.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Document, Timestamp } from 'mongodb';
import { MongoClient } from 'mongodb';
import { StorageEngine, TRUNCATE_POINT_ID, TRUNCATE_POINT_NS } from '../storage/index.ts';
import { BANK_NS } from './topology.ts';
import type { BankHistory } from './history.ts';

export interface ReplicaSetState {
  name: string;
  accounts: Map<string, number>;
}

export interface Verdict {
  ok: boolean;
  /** Human-readable findings, one per difference (empty when ok). */
  mismatches: string[];
  total: number;
  expectedTotal: number;
}

function toMap(docs: Document[]): Map<string, number> {
  return new Map(docs.map((d) => [String(d._id), Number(d.balance)]));
}

export class Oracle {
  constructor(readonly history: BankHistory) {}

  private halfApplied(states: ReplicaSetState[], ts: Timestamp): string[] {
    return halfAppliedIn(this.history, states, ts);
  }

  /** Compares states with history at `ts`; the invariant is checked when every bank replica set is given. */
  verify(states: ReplicaSetState[], ts: Timestamp): Verdict {
    const mismatches: string[] = [];
    let total = 0;
    for (const s of states) {
      const expected = this.history.stateAt(s.name, ts);
      for (const [id, bal] of expected) {
        const got = s.accounts.get(id);
        if (got !== bal) mismatches.push(`${s.name}: ${id} is ${got ?? 'missing'}, history at ${ts.toString()} says ${bal}`);
      }
      for (const id of s.accounts.keys()) if (!expected.has(id)) mismatches.push(`${s.name}: ${id} should not exist at ${ts.toString()}`);
      for (const v of s.accounts.values()) total += v;
    }
    mismatches.push(...this.halfApplied(states, ts));
    const expectedTotal = this.history.total();
    const all = this.history.replicaSets().every((rs) => states.some((s) => s.name === rs));
    if (all && total !== expectedTotal) mismatches.push(`invariant broken: balances sum to ${total}, not ${expectedTotal}`);
    return { ok: mismatches.length === 0, mismatches, total, expectedTotal };
  }
}

/**
 * Cross-shard transfers applied on one shard and not on the other at `ts`: for each, the deviation of each account
 * from history is compared with the transfer's amount (a missing side of a transfer history applied, or an applied
 * side of one it did not).
 */
function halfAppliedIn(history: BankHistory, states: ReplicaSetState[], ts: Timestamp): string[] {
  const out: string[] = [];
  const byRs = new Map(states.map((s) => [s.name, s]));
  const expected = new Map(states.map((s) => [s.name, history.stateAt(s.name, ts)]));
  const deviation = (id: string): number | undefined => {
    const rs = history.replicaSetOf(id);
    const got = rs === undefined ? undefined : byRs.get(rs)?.accounts.get(id);
    const want = rs === undefined ? undefined : expected.get(rs)?.get(id);
    return got === undefined || want === undefined ? undefined : got - want;
  };
  for (const t of history.transfers) {
    const fromRs = history.replicaSetOf(t.from);
    const toRs = history.replicaSetOf(t.to);
    if (fromRs === toRs) continue;
    const dFrom = deviation(t.from);
    const dTo = deviation(t.to);
    if (dFrom === undefined || dTo === undefined || (dFrom === 0 && dTo === 0)) continue;
    const applied = t.ts.compare(ts) <= 0;
    // Applied per history: a missing side shows as +amount on `from`, -amount on `to`; not applied: the reverse.
    const sign = applied ? 1 : -1;
    const fromOff = dFrom === sign * t.amount;
    const toOff = dTo === -sign * t.amount;
    if (fromOff !== toOff && (fromOff ? dTo === 0 : dFrom === 0)) {
      const [on, off] = applied === fromOff ? [`${t.to}@${toRs}`, `${t.from}@${fromRs}`] : [`${t.from}@${fromRs}`, `${t.to}@${toRs}`];
      out.push(`half-applied cross-shard transfer of ${t.amount} committed at ${t.ts.toString()}: applied on ${on}, not on ${off} at ${ts.toString()}`);
    }
  }
  return out;
}

/** Reads one member's bank state at `ts` over the wire (readConcern snapshot, atClusterTime), as any client can. */
export async function readLiveAt(host: string, ts: Timestamp): Promise<Map<string, number>> {
  const client = new MongoClient(`mongodb://${host}/?directConnection=true`, { serverSelectionTimeoutMS: 5000 });
  try {
    // A raw command: the driver's find() helper keeps atClusterTime only inside its own snapshot sessions.
    const reply = await client.db('bank').command(
      { find: 'accounts', filter: {}, singleBatch: true, batchSize: 1_000_000, readConcern: { level: 'snapshot', atClusterTime: ts } },
      { readPreference: 'primaryPreferred' },
    );
    const docs = (reply.cursor as { firstBatch: Document[] }).firstBatch;
    return toMap(docs);
  } finally {
    await client.close();
  }
}

/**
 * Recovers a copy of `dbpath` to exactly `ts` through the simulator's startup path, as a restore does: a standalone
 * start writes `oplogTruncateAfterPoint`, then `recoverFromOplogAsStandalone` applies the oplog up to it.
 */
export function recoverAt(dbpath: string, ts: Timestamp): Map<string, number> {
  const work = mkdtempSync(join(tmpdir(), 'cutpoint-oracle-'));
  try {
    cpSync(dbpath, work, { recursive: true });
    const standalone = StorageEngine.open({ dbpath: work, mode: 'standalone' });
    if (!standalone.getCollection(TRUNCATE_POINT_NS)) standalone.createCollection(TRUNCATE_POINT_NS);
    standalone.replace(TRUNCATE_POINT_NS, { _id: TRUNCATE_POINT_ID, oplogTruncateAfterPoint: ts }, { upsert: true });
    standalone.close({ clean: true });
    const recovered = StorageEngine.open({ dbpath: work, mode: 'recoverFromOplogAsStandalone', takeUnstableCheckpointOnShutdown: true });
    try {
      return toMap(recovered.scan(BANK_NS));
    } finally {
      recovered.close({ clean: true });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The negative control's recovery: a plain standalone start, leaving the data at the node's own checkpoint. */
export function recoverAtOwnCheckpoint(dbpath: string): { ts: Timestamp | null; accounts: Map<string, number> } {
  const work = mkdtempSync(join(tmpdir(), 'cutpoint-oracle-'));
  try {
    cpSync(dbpath, work, { recursive: true });
    const engine = StorageEngine.open({ dbpath: work, mode: 'standalone' });
    try {
      return { ts: engine.recovery.checkpoint.timestamp, accounts: toMap(engine.scan(BANK_NS)) };
    } finally {
      engine.close({ clean: false });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
