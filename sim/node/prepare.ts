/**
 * Prepared transactions: the participant's half of a router's two-phase commit, after mongod 7.0's
 * TransactionParticipant (src/mongo/db/transaction/transaction_participant.cpp) and its OpObserver:
 *
 * - `prepareTransaction` writes `{op: 'c', ns: 'admin.$cmd', o: {applyOps: [...], prepare: true}, lsid, txnNumber,
 *   prevOpTime: {ts: Timestamp(0, 0), t: -1}}` at a new timestamp, the prepareTimestamp; nothing becomes visible and
 *   the transaction keeps its documents (a write by another transaction to them is a WriteConflict);
 * - `commitTransaction` with `commitTimestamp` (>= prepareTimestamp, else 72) writes `{o: {commitTransaction: 1,
 *   commitTimestamp}, prevOpTime: <the prepare entry's optime>}` at a new timestamp after commitTimestamp (the cluster
 *   time is first ticked to it); the writes become visible at commitTimestamp and durable at the entry's timestamp
 *   (storage/oplog.ts applies the entry the same way on secondaries and in recovery);
 * - `abortTransaction` of a prepared transaction writes `{o: {abortTransaction: 1}, prevOpTime: <prepare optime>}`.
 *
 * Reads that would see a prepared transaction's documents (readConcern snapshot, majority or with a cluster time, at
 * or after its prepareTimestamp) wait until it commits or aborts, as mongod's prepare conflicts make them retry;
 * local and available reads without a cluster time ignore the conflict and see the documents before the transaction.
 */
import type { Document } from 'mongodb';
import { Long, Timestamp } from 'mongodb';
import { sleep } from '../../lib/process.ts';
import { CommandError, ErrorCodes } from '../wire/index.ts';
import { compareTs } from './clock.ts';
import type { OplogOperation } from '../storage/index.ts';

/**
 * What prepare, commit and abort use of a transaction and of its node's registry (transactions.ts `Transaction` and
 * `TransactionRegistry`), named here so that this file does not import the commands that call it.
 */
interface Transaction {
  state: 'inProgress' | 'prepared' | 'committed' | 'aborted';
  readonly ops: OplogOperation[];
  commitTs: Timestamp | undefined;
  prepareOpTime: { ts: Timestamp; t: Long } | undefined;
  readonly lsidDoc: Document;
  readonly txnNumber: Long;
}
interface TransactionRegistry {
  checkNoOutsideWrite(node: SimNode, txn: Transaction): void;
  release(txn: Transaction): void;
  prepared(): Iterable<Transaction>;
}
import type { SimNode } from './types.ts';

const NO_PREV = () => ({ ts: new Timestamp({ t: 0, i: 0 }), t: Long.fromNumber(-1) });

function sessionFields(txn: Transaction, prevOpTime: Document, wall: Date | undefined): Document {
  return { lsid: txn.lsidDoc, txnNumber: txn.txnNumber, prevOpTime, ...(wall ? { wall } : {}) };
}

/**
 * prepareTransaction: the prepare entry; answers `{prepareTimestamp}` (again the same on a retry). `wall`: the entry's
 * wall clock time when the caller runs both phases as one instant (two-phase.ts).
 */
export function prepare(node: SimNode, txn: Transaction, registry: TransactionRegistry, wall?: Date): Document {
  if (txn.state === 'prepared') return { prepareTimestamp: txn.prepareOpTime!.ts };
  if (txn.state === 'aborted') throw new CommandError(ErrorCodes.NoSuchTransaction, 'Transaction has been aborted.', { errorLabels: ['TransientTransactionError'] });
  if (txn.state === 'committed') throw new CommandError(256, `Transaction ${txn.txnNumber.toString()} has been committed.`, { codeName: 'TransactionCommitted' });
  if (!node.writable) throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary');
  registry.checkNoOutsideWrite(node, txn);
  const ts = node.rs!.writeCommand(node, { applyOps: txn.ops, prepare: true }, sessionFields(txn, NO_PREV(), wall));
  txn.prepareOpTime = { ts, t: Long.fromNumber(node.rs!.term) };
  txn.state = 'prepared';
  return { prepareTimestamp: ts };
}

/**
 * commitTransaction with commitTimestamp. `requireMajorityPrepare`: mongod refuses the commit until the prepare entry
 * is majority committed (a coordinator waits for that before it decides); the bank's in-process router, which runs
 * both phases in one turn of the event loop, does not wait (sim/cluster/two-phase.ts).
 */
export function commitPrepared(node: SimNode, txn: Transaction, commitTimestamp: Timestamp, registry: TransactionRegistry, opts: { requireMajorityPrepare: boolean; wall?: Date }): Document {
  if (txn.state === 'committed') return {};
  if (txn.state !== 'prepared') throw new CommandError(ErrorCodes.InvalidOptions, 'commitTransaction cannot provide commitTimestamp to unprepared transaction.');
  if (!node.writable) throw new CommandError(ErrorCodes.NotWritablePrimary, 'Not primary so we cannot commit a prepared transaction');
  if (commitTimestamp.isZero()) throw new CommandError(ErrorCodes.InvalidOptions, "'commitTimestamp' cannot be null");
  const prepared = txn.prepareOpTime!;
  if (compareTs(commitTimestamp, prepared.ts) < 0) {
    throw new CommandError(ErrorCodes.InvalidOptions, "'commitTimestamp' must be greater than or equal to 'prepareTimestamp'");
  }
  if (opts.requireMajorityPrepare && compareTs(node.rs!.committedSnapshot(node), prepared.ts) < 0) {
    throw new CommandError(ErrorCodes.InvalidOptions, 'commitTransaction for a prepared transaction cannot be run before its prepare oplog entry has been majority committed');
  }
  node.rs!.clock.observe(commitTimestamp);
  node.rs!.writeCommand(node, { commitTransaction: 1, commitTimestamp }, sessionFields(txn, prepared, opts.wall));
  txn.state = 'committed';
  txn.commitTs = commitTimestamp;
  registry.release(txn);
  return {};
}

/** abortTransaction of a prepared transaction: the abort entry. */
export function abortPrepared(node: SimNode, txn: Transaction, registry: TransactionRegistry): Document {
  if (!node.writable) throw new CommandError(ErrorCodes.NotWritablePrimary, 'Not primary so we cannot abort a prepared transaction');
  node.rs!.writeCommand(node, { abortTransaction: 1 }, sessionFields(txn, txn.prepareOpTime!, undefined));
  txn.state = 'aborted';
  registry.release(txn);
  return {};
}

/** Whether a read with this readConcern enforces prepare conflicts (mongod ignores them for plain local reads). */
export function enforcesPrepareConflicts(readConcern: Document | undefined): boolean {
  if (!readConcern) return false;
  if (readConcern.atClusterTime !== undefined || readConcern.afterClusterTime !== undefined) return true;
  return readConcern.level === 'snapshot' || readConcern.level === 'majority' || readConcern.level === 'linearizable';
}

const PREPARE_POLL_MS = 5;

/**
 * Waits while a transaction prepared at or before `readTs` (undefined: the latest) holds a document of `ns` the read
 * would see (`ids`: only those `_id` keys; undefined: any), until it commits or aborts; `maxTimeMS` bounds the wait
 * (50 MaxTimeMSExpired), as it bounds mongod's prepare-conflict retries.
 */
export async function waitForPrepared(node: SimNode, registry: TransactionRegistry, ns: string, readTs: Timestamp | undefined, maxTimeMS: number | undefined, touches: (txn: Transaction) => boolean): Promise<void> {
  const deadline = maxTimeMS ? Date.now() + maxTimeMS : Infinity;
  const blocking = (): boolean =>
    [...registry.prepared()].some((t) => (readTs === undefined || compareTs(t.prepareOpTime!.ts, readTs) <= 0) && t.ops.some((op) => op.ns === ns) && touches(t));
  while (blocking()) {
    if (Date.now() >= deadline) throw new CommandError(ErrorCodes.MaxTimeMSExpired, 'operation exceeded time limit');
    if (!node.up) throw new CommandError(ErrorCodes.InterruptedAtShutdown, 'interrupted at shutdown');
    await sleep(PREPARE_POLL_MS);
  }
}
