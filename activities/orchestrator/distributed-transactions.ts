/**
 * {@link settleCommonTimestamp}: a common timestamp no distributed transaction straddles. A transaction across shards
 * commits at one `commitTimestamp` C on every participant, but each participant writes its `commitTransaction` oplog
 * entry later than C, at its own time. A restore cuts each replica set's oplog after the common timestamp T, so with
 * C <= T below some participant's commit entry, that participant recovers the transaction as prepared (invisible)
 * while another shows it: a half-applied transfer (docs/psmdb-behaviour.md section 7). A T below C is safe (nobody
 * shows it), and so is a T at or past every commit entry.
 *
 * So T moves forward to the latest commit entry of every transaction that committed at or before T, and again for any
 * such transaction prepared before the new T, until none straddles it; a transaction prepared at or before T and not
 * yet decided is waited for (two-phase commit decides within milliseconds). The scan reads each replica set's
 * command entries of the last minutes before T from its oplog.
 */
import { log, sleep } from '@temporalio/activity';
import type { Document, MongoClient } from 'mongodb';
import { CutpointError } from '../../common/errors.ts';
import type { MongoTarget } from '../../common/target.ts';
import { compareTs, maxTs, type Ts } from '../../common/timestamp.ts';
import { fromBsonTimestamp, toBsonTimestamp } from '../../lib/bson-timestamp.ts';
import { withClient } from '../../lib/mongo/client.ts';

/** How far before T a prepare entry is looked for, seconds (a prepared transaction older than this is not waited for). */
export const PREPARE_LOOKBACK_SECS = 600;
const POLL_MS = 200;

/** A transaction committed at or before T whose commit entry on `replicaSet` is after T. */
export interface Straddling {
  replicaSet: string;
  prepare: Ts;
  commitTimestamp: Ts;
  commitEntry: Ts;
}

/** One replica set's prepares at or before `t` and the decisions about them (keyed by the prepare's timestamp). */
export interface OplogTransactions {
  prepares: Ts[];
  /** Prepare timestamp (`t:i`) → the commit entry (with its commitTimestamp) or abort entry that refers to it. */
  decisions: Map<string, { commitTimestamp: Ts | null; entry: Ts }>;
}

const key = (t: Ts) => `${t.t}:${t.i}`;

/**
 * The straddling transactions at `t` and whether some prepare at or before `t` is undecided; pure (over what the
 * oplogs hold).
 */
export function straddlingAt(t: Ts, byReplicaSet: Map<string, OplogTransactions>): { straddling: Straddling[]; undecided: number } {
  const straddling: Straddling[] = [];
  let undecided = 0;
  for (const [replicaSet, { prepares, decisions }] of byReplicaSet) {
    for (const prepare of prepares) {
      if (compareTs(prepare, t) > 0) continue;
      const d = decisions.get(key(prepare));
      if (!d) {
        undecided++;
        continue;
      }
      if (d.commitTimestamp && compareTs(d.commitTimestamp, t) <= 0 && compareTs(d.entry, t) > 0) straddling.push({ replicaSet, prepare, commitTimestamp: d.commitTimestamp, commitEntry: d.entry });
    }
  }
  return { straddling, undecided };
}

/** The prepare, commit and abort entries of a replica set's oplog since `from`. */
async function readTransactions(client: MongoClient, from: Ts): Promise<OplogTransactions> {
  const entries = await client
    .db('local')
    .collection('oplog.rs')
    .find({ ts: { $gte: toBsonTimestamp(from) }, op: 'c', ns: 'admin.$cmd' })
    .toArray();
  const prepares: Ts[] = [];
  const decisions = new Map<string, { commitTimestamp: Ts | null; entry: Ts }>();
  for (const e of entries as Document[]) {
    const ts = fromBsonTimestamp(e.ts);
    const o = (e.o ?? {}) as Document;
    if (!ts) continue;
    if (o.prepare === true) prepares.push(ts);
    const prev = fromBsonTimestamp((e.prevOpTime as Document | undefined)?.ts);
    if (prev && (o.commitTransaction !== undefined || o.abortTransaction !== undefined)) {
      decisions.set(key(prev), { commitTimestamp: o.commitTransaction !== undefined ? fromBsonTimestamp(o.commitTimestamp) : null, entry: ts });
    }
  }
  return { prepares, decisions };
}

export const distributedTransactionActivities = {
  /**
   * The earliest timestamp at or after `common` that no distributed transaction straddles (see the module comment).
   * Reads each replica set's oplog through its connection string (its primary); gives up after `maxWaitMs` with a
   * retryable error.
   */
  async settleCommonTimestamp(input: {
    replicaSets: Array<{ name: string; target: MongoTarget }>;
    common: Ts;
    maxWaitMs?: number;
  }): Promise<{ common: Ts; moved: Straddling[] }> {
    const maxWaitMs = input.maxWaitMs ?? 60_000;
    const deadline = Date.now() + maxWaitMs;
    let t = input.common;
    const moved: Straddling[] = [];
    for (;;) {
      const from = { t: Math.max(0, t.t - PREPARE_LOOKBACK_SECS), i: 0 };
      // Every replica set at once: the barrier waits on this, and a 16-shard cluster read one after another took 0.4 s.
      const read = await Promise.all(input.replicaSets.map((r) => withClient(r.target, {}, (client) => readTransactions(client, from))));
      const byReplicaSet = new Map<string, OplogTransactions>(input.replicaSets.map((r, k) => [r.name, read[k]!]));
      const { straddling, undecided } = straddlingAt(t, byReplicaSet);
      if (undecided === 0 && straddling.length === 0) {
        if (moved.length) log.info('common timestamp moved past distributed transactions that straddled it', { from: input.common, to: t, transactions: moved.length });
        return { common: t, moved };
      }
      if (Date.now() > deadline) {
        throw new CutpointError(
          'COMMON_TIMESTAMP_UNSETTLED',
          `no common timestamp free of half-committed distributed transactions was found within ${maxWaitMs / 1000} s (${undecided} prepared transactions undecided, ${straddling.length} committing across it)`,
        );
      }
      if (undecided === 0) {
        moved.push(...straddling);
        t = maxTs(t, ...straddling.map((s) => s.commitEntry));
      } else await sleep(POLL_MS);
    }
  },
};

export type DistributedTransactionActivities = typeof distributedTransactionActivities;
