/**
 * Multi-document transactions on a replica-set primary, as the driver runs them (docs/simulator.md, "Transactions"):
 * the first command of a transaction carries `lsid`, `txnNumber`, `startTransaction: true` and `autocommit: false`, the
 * next ones `autocommit: false`, then `commitTransaction` or `abortTransaction` on `admin`. Reads see a snapshot taken
 * when the transaction starts plus its own writes; writes are buffered and committed as one oplog entry, as mongod's
 * TransactionParticipant writes an unprepared transaction: `{op: 'c', ns: 'admin.$cmd', o: {applyOps: [...]}, lsid,
 * txnNumber, prevOpTime: {ts: Timestamp(0, 0), t: -1}}` (a read-only transaction writes nothing).
 */
import type { Document } from 'mongodb';
import { BSON, Long, Timestamp } from 'mongodb';
import type { OplogOperation } from '../storage/index.ts';
import { CommandError, ErrorCodes } from '../wire/index.ts';
import type { LogicalSessionId } from './session-cache.ts';
import { applyWrites, ensureCollection } from './writes.ts';
import { abortPrepared, commitPrepared, prepare } from './prepare.ts';
import type { CommandContext, CommandImpl, SimNode } from './types.ts';

const TRANSIENT = ['TransientTransactionError'];

/** mongod's transactionLifetimeLimitSeconds default. */
const TRANSACTION_LIFETIME_MS = 60_000;

/** Commands a transaction may run (the subset of mongod's the simulator has). */
const IN_TRANSACTION = new Set(['find', 'getMore', 'insert', 'update', 'delete', 'commitTransaction', 'abortTransaction', 'prepareTransaction', 'killCursors']);
/** What a prepared transaction still accepts. */
const AFTER_PREPARE = new Set(['commitTransaction', 'abortTransaction', 'prepareTransaction']);

/** mongod's PreparedTransactionInProgress. */
const PREPARED_IN_PROGRESS = 267;

function hasBackupStage(command: Document): boolean {
  const pipeline = command.pipeline as unknown;
  return Array.isArray(pipeline) && pipeline.some((st: unknown) => st !== null && typeof st === 'object' && ('$backupCursor' in st || '$backupCursorExtend' in st));
}

function keyOf(id: unknown): string {
  return BSON.EJSON.stringify({ v: id as BSON.Document }, { relaxed: false });
}

/** One transaction of one session. */
export class Transaction {
  state: 'inProgress' | 'prepared' | 'committed' | 'aborted' = 'inProgress';
  readonly ops: OplogOperation[] = [];
  readonly startedAt = Date.now();
  /** The timestamp its writes became visible at: its applyOps entry's, or a prepared transaction's commitTimestamp. */
  commitTs: Timestamp | undefined;
  /** The prepare entry's optime, once prepared (prepare.ts). */
  prepareOpTime: { ts: Timestamp; t: Long } | undefined;
  /** Documents written so far, by namespace and `_id` (null: deleted). */
  private readonly writes = new Map<string, Map<string, Document | null>>();

  constructor(
    readonly lsid: LogicalSessionId,
    readonly lsidDoc: Document,
    readonly txnNumber: Long,
    /** The snapshot: every read of the transaction is at this timestamp. */
    readonly readTs: Timestamp | undefined,
  ) {}

  /** Documents of `ns` as the transaction sees them. */
  scan(node: SimNode, ns: string): Document[] {
    const base = node.engine.scan(ns, this.readTs);
    const mine = this.writes.get(ns);
    if (!mine) return base;
    const out = base.filter((d) => !mine.has(keyOf(d._id)));
    for (const d of mine.values()) if (d) out.push(d);
    return out;
  }

  findById(node: SimNode, ns: string, id: unknown): Document | undefined {
    const mine = this.writes.get(ns)?.get(keyOf(id));
    if (mine !== undefined) return mine ?? undefined;
    return node.engine.findById(ns, id, this.readTs);
  }

  /**
   * Buffers a write. A document changed since the snapshot by someone else is a write conflict (112, transient),
   * which aborts the transaction, as mongod's does.
   */
  write(node: SimNode, op: OplogOperation, registry: TransactionRegistry): void {
    const id: unknown = op.op === 'u' ? op.o2?._id : op.o._id;
    const k = keyOf(id);
    if (!this.writes.get(op.ns)?.has(k)) {
      if (changedSince(node, op.ns, id, this.readTs) || registry.lockedByOther(this, op.ns, k)) {
        this.state = 'aborted';
        registry.release(this);
        throw new CommandError(ErrorCodes.WriteConflict, 'Write conflict during plan execution and yielding is disabled.', { errorLabels: TRANSIENT });
      }
      registry.lock(this, op.ns, k);
    }
    let byId = this.writes.get(op.ns);
    if (!byId) this.writes.set(op.ns, (byId = new Map()));
    byId.set(k, op.op === 'd' ? null : op.o);
    this.ops.push(op);
  }

  /** Keys this transaction wrote, as `ns␀key`. */
  *keys(): Generator<[string, string]> {
    for (const [ns, byId] of this.writes) for (const k of byId.keys()) yield [ns, k];
  }

  /** Documents this transaction wrote, for the commit's conflict check. */
  *written(): Generator<[string, unknown]> {
    for (const [ns, byId] of this.writes) for (const [, d] of byId) if (d) yield [ns, d._id];
  }
}

function changedSince(node: SimNode, ns: string, id: unknown, at: Timestamp | undefined): boolean {
  if (at === undefined) return false;
  const now = node.engine.findById(ns, id);
  const then = node.engine.findById(ns, id, at);
  if (now === undefined && then === undefined) return false;
  if (now === undefined || then === undefined) return true;
  return !Buffer.from(BSON.serialize(now)).equals(Buffer.from(BSON.serialize(then)));
}

/** The transactions of one node, by session. */
export class TransactionRegistry {
  private readonly bySession = new Map<string, Transaction>();
  /** Documents written by transactions in progress (mongod holds their locks until commit or abort). */
  private readonly locks = new Map<string, Transaction>();

  lock(txn: Transaction, ns: string, k: string): void {
    this.locks.set(`${ns}\u0000${k}`, txn);
  }

  lockedByOther(txn: Transaction, ns: string, k: string): boolean {
    const owner = this.locks.get(`${ns}\u0000${k}`);
    if (owner === undefined || owner === txn) return false;
    // A prepared transaction keeps its documents until its commit or abort entry, whatever its age.
    if (owner.state === 'prepared') return true;
    if (owner.state !== 'inProgress') return false;
    // mongod aborts a transaction older than transactionLifetimeLimitSeconds (60): an abandoned one frees its documents.
    if (Date.now() - owner.startedAt > TRANSACTION_LIFETIME_MS) {
      owner.state = 'aborted';
      this.release(owner);
      return false;
    }
    return true;
  }

  release(txn: Transaction): void {
    for (const [ns, k] of txn.keys()) if (this.locks.get(`${ns}\u0000${k}`) === txn) this.locks.delete(`${ns}\u0000${k}`);
  }

  /**
   * The transaction a command runs in (undefined: none), checked as mongod's initializeOperationSessionInfo and
   * TransactionParticipant::beginOrContinue check it.
   */
  forCommand(ctx: CommandContext, session: LogicalSessionId | undefined): Transaction | undefined {
    const { node, command, name } = ctx;
    if (command.autocommit === undefined && command.startTransaction === undefined) return undefined;
    if (!node.rs) throw new CommandError(ErrorCodes.IllegalOperation, 'Transaction numbers are only allowed on a replica set member or mongos');
    if (command.autocommit !== false) throw new CommandError(ErrorCodes.InvalidOptions, 'Specifying autocommit=true is not allowed.');
    if (!session) throw new CommandError(ErrorCodes.InvalidOptions, 'Transaction number requires a session ID to also be specified');
    const txnNumber = command.txnNumber as unknown;
    if (!Long.isLong(txnNumber) && typeof txnNumber !== 'number') {
      throw new CommandError(ErrorCodes.InvalidOptions, "'autocommit' field requires a transaction number to also be specified");
    }
    const n = Long.fromValue(txnNumber as number | Long);
    // An aggregate is allowed in a transaction, and its stages then refuse it by their own constraints (the backup
    // cursor stages: 263 naming the stage, backup/pipeline.ts); the simulator runs no other aggregate in one.
    if (name === 'aggregate' && hasBackupStage(command)) return undefined;
    if (!IN_TRANSACTION.has(name)) {
      throw new CommandError(ErrorCodes.OperationNotSupportedInTransaction, `Cannot run '${name}' in a multi-document transaction.`);
    }
    const key = `${session.id}/${session.uid}`;
    const current = this.bySession.get(key);
    if (current && n.lessThan(current.txnNumber)) {
      throw new CommandError(225, `Cannot start transaction ${n.toString()} on session ${session.id} because a newer transaction ${current.txnNumber.toString()} has already started.`, { codeName: 'TransactionTooOld' });
    }
    if (command.startTransaction === true) {
      if (!node.writable) throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary');
      if (current && current.txnNumber.equals(n)) {
        throw new CommandError(ErrorCodes.ConflictingOperationInProgress, `Transaction with { txnNumber: ${n.toString()} } has already been started.`);
      }
      if (current?.state === 'inProgress') {
        current.state = 'aborted';
        this.release(current);
      }
      // A router starts every participant at one cluster time (readConcern snapshot with atClusterTime).
      const rc = command.readConcern as Document | undefined;
      const readTs = rc?.atClusterTime instanceof Timestamp ? rc.atClusterTime : (node.engine.lastApplied ?? undefined);
      return this.begin(session, command.lsid as Document, n, readTs);
    }
    if (!current || !current.txnNumber.equals(n) || current.state === 'aborted') {
      const active = current ? ` The active transaction number is ${current.txnNumber.toString()}` : '';
      throw new CommandError(ErrorCodes.NoSuchTransaction, `Given transaction number ${n.toString()} does not match any in-progress transactions.${active}`, { errorLabels: TRANSIENT });
    }
    if (current.state === 'prepared' && !AFTER_PREPARE.has(name)) {
      throw new CommandError(PREPARED_IN_PROGRESS, 'Cannot call continue on a prepared transaction', { codeName: 'PreparedTransactionInProgress' });
    }
    return current;
  }

  /** Starts a transaction (`startTransaction: true`, checked by {@link forCommand}; the in-process router too). */
  begin(session: LogicalSessionId, lsidDoc: Document, txnNumber: Long, readTs: Timestamp | undefined): Transaction {
    const txn = new Transaction(session, lsidDoc, txnNumber, readTs);
    this.bySession.set(`${session.id}/${session.uid}`, txn);
    return txn;
  }

  /** The transaction of a session, if any (the router finds its participants' transactions so). */
  find(session: LogicalSessionId, txnNumber: Long): Transaction | undefined {
    const t = this.bySession.get(`${session.id}/${session.uid}`);
    return t && t.txnNumber.equals(txnNumber) ? t : undefined;
  }

  /** Transactions prepared and not yet committed or aborted (reads at or after their prepare wait for them). */
  *prepared(): Generator<Transaction> {
    for (const t of this.bySession.values()) if (t.state === 'prepared') yield t;
  }

  /**
   * A write outside the transaction to a document it wrote since its snapshot (mongod makes that write wait for the
   * transaction; here the transaction loses): 112, and the transaction is aborted.
   */
  checkNoOutsideWrite(node: SimNode, txn: Transaction): void {
    for (const [ns, id] of txn.written()) {
      if (changedSince(node, ns, id, txn.readTs)) {
        txn.state = 'aborted';
        this.release(txn);
        throw new CommandError(ErrorCodes.WriteConflict, 'Write conflict during plan execution and yielding is disabled.', { errorLabels: TRANSIENT });
      }
    }
  }

  /** commitTransaction: one applyOps oplog entry for the writes (none for a read-only transaction). */
  commit(node: SimNode, txn: Transaction): Document {
    if (txn.state === 'committed') return {};
    if (txn.state === 'aborted') throw new CommandError(ErrorCodes.NoSuchTransaction, 'Transaction has been aborted.', { errorLabels: TRANSIENT });
    if (txn.state === 'prepared') {
      throw new CommandError(ErrorCodes.InvalidOptions, "'commitTimestamp' must be provided to commit a prepared transaction");
    }
    try {
      if (txn.ops.length > 0) {
        this.checkNoOutsideWrite(node, txn);
        txn.commitTs = node.rs!.write(node, txn.ops, undefined, {
          lsid: txn.lsidDoc,
          txnNumber: txn.txnNumber,
          prevOpTime: { ts: new Timestamp({ t: 0, i: 0 }), t: Long.fromNumber(-1) },
        });
      }
      txn.state = 'committed';
      return {};
    } finally {
      this.release(txn);
    }
  }

  abort(node: SimNode, txn: Transaction): Document {
    if (txn.state === 'committed') throw new CommandError(256, `Transaction ${txn.txnNumber.toString()} has been committed.`, { codeName: 'TransactionCommitted' });
    if (txn.state === 'prepared') return abortPrepared(node, txn, this);
    txn.state = 'aborted';
    this.release(txn);
    return {};
  }
}

const registries = new WeakMap<SimNode, TransactionRegistry>();
const running = new WeakMap<CommandContext, Transaction>();

/** The transactions of a node. */
export function transactionsOf(node: SimNode): TransactionRegistry {
  let r = registries.get(node);
  if (!r) registries.set(node, (r = new TransactionRegistry()));
  return r;
}

/** Before a command (gate.ts): finds or starts the transaction it runs in. */
export function enterTransaction(ctx: CommandContext, session: LogicalSessionId | undefined): void {
  const txn = transactionsOf(ctx.node).forCommand(ctx, session);
  if (txn) running.set(ctx, txn);
}

/** The transaction a command runs in, if any. */
export function transactionOf(ctx: CommandContext): Transaction | undefined {
  return running.get(ctx);
}

/** A write of a command: buffered in its transaction, or applied (writes.ts) right away. */
export function write(ctx: CommandContext, ops: OplogOperation[]): void {
  const txn = running.get(ctx);
  if (!txn) return applyWrites(ctx.node, ops);
  for (const op of ops) txn.write(ctx.node, op, transactionsOf(ctx.node));
}

/** A document by `_id` as the command sees it (in its transaction, or the latest). */
export function lookup(ctx: CommandContext, ns: string, id: unknown): Document | undefined {
  const txn = running.get(ctx);
  return txn ? txn.findById(ctx.node, ns, id) : ctx.node.engine.findById(ns, id);
}

/**
 * The implicit creation of a collection by a write. Inside a transaction the simulator refuses it (mongod 4.4+ creates
 * it as part of the transaction).
 */
export function enterCollection(ctx: CommandContext, ns: string): void {
  if (running.get(ctx) && !ctx.node.engine.getCollection(ns)) {
    throw new CommandError(ErrorCodes.CommandNotSupported, `the simulator cannot create a collection (${ns}) inside a transaction`);
  }
  ensureCollection(ctx.node, ns);
}

function inTransaction(ctx: CommandContext): Transaction {
  const txn = running.get(ctx);
  if (!txn) throw new CommandError(ErrorCodes.InvalidOptions, `${ctx.name} must be run within a transaction`);
  return txn;
}

/** commitTransaction: with `commitTimestamp`, of a prepared transaction (prepare.ts); else as on a replica set. */
export const commitTransaction: CommandImpl = (ctx) => {
  const txn = inTransaction(ctx);
  const at = ctx.command.commitTimestamp as unknown;
  if (at === undefined) return transactionsOf(ctx.node).commit(ctx.node, txn);
  if (!(at instanceof Timestamp)) throw new CommandError(ErrorCodes.TypeMismatch, "BSON field 'commitTransaction.commitTimestamp' is the wrong type, expected type 'timestamp'");
  return commitPrepared(ctx.node, txn, at, transactionsOf(ctx.node), { requireMajorityPrepare: true });
};
export const abortTransaction: CommandImpl = (ctx) => transactionsOf(ctx.node).abort(ctx.node, inTransaction(ctx));
/** prepareTransaction (a router's two-phase commit, prepare.ts): `{prepareTimestamp}`. */
export const prepareTransaction: CommandImpl = (ctx) => prepare(ctx.node, inTransaction(ctx), transactionsOf(ctx.node));
