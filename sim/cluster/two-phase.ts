/**
 * The router's commit of a transaction over its participants, after mongos 7.0's TransactionRouter
 * (src/mongo/s/transaction_router.cpp) and the shard-side TransactionCoordinator
 * (src/mongo/db/s/transaction_coordinator.cpp, transaction_coordinator_util.cpp):
 *
 * - no participant wrote: each is committed as a read-only transaction (nothing in any oplog);
 * - one participant wrote: the read-only ones are committed first, then the writer, as on a replica set (one
 *   `applyOps` entry; mongos's "single write shard" commit);
 * - several wrote: two-phase commit. `prepareTransaction` on each (a prepare entry at its prepareTimestamp); the
 *   decision's commitTimestamp is the largest prepareTimestamp; then `commitTransaction` with that commitTimestamp on
 *   each (a commit entry after it). A failed prepare aborts every participant (abort entries where prepared) and the
 *   commit fails with the participant's error (NoSuchTransaction, TransientTransactionError). The coordinator
 *   waits for the prepare entries to be majority committed before it decides (mongod's prepare votes are sent with
 *   majority write concern); the bank's in-process transfers skip that wait (they run in one turn of the event loop).
 *
 * Read-only participants take part in the two phases like the others in mongod; here they are just committed.
 */
import type { Timestamp } from 'mongodb';
import { compareTs } from '../node/clock.ts';
import { abortPrepared, commitPrepared, prepare } from '../node/prepare.ts';
import { transactionsOf, type Transaction } from '../node/transactions.ts';
import type { SimNode } from '../node/types.ts';
import { CommandError, ErrorCodes } from '../wire/index.ts';

/** One shard's part of a router transaction: its primary and the transaction there. */
export interface Participant {
  node: SimNode;
  txn: Transaction;
}

/** The participants that wrote something. */
export function writers(parts: readonly Participant[]): Participant[] {
  return parts.filter((p) => p.txn.ops.length > 0);
}

/** Aborts every participant still open (a prepared one writes its abort entry); errors of each are ignored. */
export function abortAll(parts: readonly Participant[]): void {
  for (const p of parts) {
    const registry = transactionsOf(p.node);
    try {
      if (p.txn.state === 'prepared') abortPrepared(p.node, p.txn, registry);
      else if (p.txn.state === 'inProgress') registry.abort(p.node, p.txn);
    } catch {
      // A participant whose primary is gone: its transaction dies with it (or expires).
    }
  }
}

/**
 * Commits when at most one participant wrote; returns the commit's timestamp (undefined for a read-only
 * transaction), or `'twoPhase'` when the caller must run {@link prepareAll} and {@link commitAll}.
 */
export function commitSingleWriter(parts: readonly Participant[]): Timestamp | undefined | 'twoPhase' {
  const w = writers(parts);
  if (w.length > 1) return 'twoPhase';
  try {
    for (const p of parts) if (p !== w[0]) transactionsOf(p.node).commit(p.node, p.txn);
    if (w[0]) transactionsOf(w[0].node).commit(w[0].node, w[0].txn);
  } catch (e) {
    abortAll(parts);
    throw e;
  }
  return w[0]?.txn.commitTs;
}

/**
 * Phase one: prepares every writer and returns the commitTimestamp (the largest prepareTimestamp). `wall`: one wall
 * clock time for every entry of a commit run in one instant (the bank's), so a lagging secondary, which applies
 * entries by their wall time, never stops between a prepare entry and its commit entry.
 */
export function prepareAll(parts: readonly Participant[], wall?: Date): Timestamp {
  let commitTs: Timestamp | undefined;
  try {
    for (const p of writers(parts)) {
      const { prepareTimestamp } = prepare(p.node, p.txn, transactionsOf(p.node), wall) as { prepareTimestamp: Timestamp };
      if (!commitTs || compareTs(prepareTimestamp, commitTs) > 0) commitTs = prepareTimestamp;
    }
  } catch (e) {
    abortAll(parts);
    const labels = e instanceof CommandError ? e.errorLabels : undefined;
    throw new CommandError(ErrorCodes.NoSuchTransaction, `Transaction was aborted: ${(e as Error).message}`, { errorLabels: labels?.length ? labels : ['TransientTransactionError'] });
  }
  return commitTs!;
}

/** Phase two: commits every writer at `commitTs` and the read-only participants. */
export function commitAll(parts: readonly Participant[], commitTs: Timestamp, requireMajorityPrepare: boolean, wall?: Date): void {
  for (const p of parts) {
    const registry = transactionsOf(p.node);
    if (p.txn.state === 'prepared') commitPrepared(p.node, p.txn, commitTs, registry, { requireMajorityPrepare, ...(wall ? { wall } : {}) });
    else registry.commit(p.node, p.txn);
  }
}
