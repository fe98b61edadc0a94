/**
 * Multi-document transactions through the in-process mongos (mongos.ts), as mongos 7.0's TransactionRouter runs
 * them (src/mongo/s/transaction_router.cpp): the first statement fixes one cluster time (readConcern
 * `atClusterTime`, else the router's latest cluster time); each statement goes to the shards it targets, and a shard's
 * first statement starts the transaction there (`startTransaction: true`, `autocommit: false`, the client's `lsid` and
 * `txnNumber`, `readConcern: {level: 'snapshot', atClusterTime}`); a failed statement aborts the transaction on every
 * participant; `commitTransaction` commits (two-phase.ts: one writer as on a replica set, several with two-phase
 * commit), `abortTransaction` aborts every participant. The bank's transfers use {@link RouterTransactions.runInProcess}:
 * the same participants and commit, without the wire (and without waiting for the prepare entries' majority).
 */
import type { Document } from 'mongodb';
import { Long, Timestamp } from 'mongodb';
import { sleep } from '../../lib/process.ts';
import { compareTs } from '../node/clock.ts';
import type { ReplicaSet } from '../node/replset.ts';
import { makeSessionId, parseLsid } from '../node/sessions.ts';
import type { LogicalSessionId } from '../node/session-cache.ts';
import { transactionsOf } from '../node/transactions.ts';
import type { CommandContext, SimNode } from '../node/types.ts';
import { CommandError, ErrorCodes, type ConnectionContext } from '../wire/index.ts';
import { abortAll, commitAll, commitSingleWriter, prepareAll, type Participant } from './two-phase.ts';

/** What the router needs from the cluster: shard targeting and primaries. */
export interface RouterTargets {
  /** Shards holding documents of `ns` (one when `id` is given and `ns` is sharded). */
  shardsFor(ns: string, id?: unknown): readonly ReplicaSet[];
  primaryOf(rs: ReplicaSet): SimNode;
  clusterTime(): Timestamp;
}

interface RouterTxn {
  txnNumber: Long;
  atClusterTime: Timestamp;
  lsid: Document;
  participants: Map<ReplicaSet, SimNode>;
  state: 'inProgress' | 'committed' | 'aborted';
}

const STATEMENTS = new Set(['find', 'insert', 'update', 'delete']);
/** How long the coordinator waits for the prepare entries to be majority committed. */
const PREPARE_MAJORITY_WAIT_MS = 30_000;

function scalarId(q: Document | undefined): unknown {
  const id = q?._id as unknown;
  if (id === undefined) return undefined;
  if (id !== null && typeof id === 'object' && Object.keys(id as Document).some((k) => k.startsWith('$'))) return undefined;
  return id;
}

export class RouterTransactions {
  private readonly bySession = new Map<string, RouterTxn>();

  constructor(private readonly targets: RouterTargets) {}

  /** Whether a command runs in a transaction (it carries `autocommit` or `startTransaction`). */
  static applies(command: Document): boolean {
    return command.autocommit !== undefined || command.startTransaction !== undefined;
  }

  /** A statement, commitTransaction or abortTransaction of a client's transaction. */
  async run(db: string, name: string, command: Document, ctx: ConnectionContext): Promise<Document> {
    const parsed = parseLsid(command);
    if (!parsed) throw new CommandError(ErrorCodes.InvalidOptions, 'Transaction number requires a session ID to also be specified');
    if (command.autocommit !== false) throw new CommandError(ErrorCodes.InvalidOptions, 'Specifying autocommit=true is not allowed.');
    const txnNumber = Long.fromValue(command.txnNumber as number | Long);
    const key = parsed.id;
    let txn = this.bySession.get(key);
    if (command.startTransaction === true) {
      if (txn && txn.txnNumber.equals(txnNumber)) {
        throw new CommandError(ErrorCodes.ConflictingOperationInProgress, `Transaction with { txnNumber: ${txnNumber.toString()} } has already been started.`);
      }
      const rc = command.readConcern as Document | undefined;
      txn = {
        txnNumber,
        atClusterTime: rc?.atClusterTime instanceof Timestamp ? rc.atClusterTime : this.targets.clusterTime(),
        lsid: command.lsid as Document,
        participants: new Map(),
        state: 'inProgress',
      };
      this.bySession.set(key, txn);
    } else if (!txn || !txn.txnNumber.equals(txnNumber)) {
      throw new CommandError(ErrorCodes.NoSuchTransaction, `Transaction ${txnNumber.toString()} has been aborted.`, { errorLabels: ['TransientTransactionError'] });
    }
    if (name === 'commitTransaction') return this.commit(txn, ctx);
    if (name === 'abortTransaction') return this.abort(txn, ctx);
    if (!STATEMENTS.has(name)) throw new CommandError(ErrorCodes.OperationNotSupportedInTransaction, `Cannot run '${name}' in a multi-document transaction.`);
    if (txn.state !== 'inProgress') {
      throw new CommandError(ErrorCodes.NoSuchTransaction, `Transaction ${txnNumber.toString()} has been ${txn.state}.`, { errorLabels: ['TransientTransactionError'] });
    }
    try {
      return await this.statement(db, name, command, txn, ctx);
    } catch (e) {
      this.abortParticipants(txn, ctx);
      throw e;
    }
  }

  /** Splits a statement by shard, sends each part in the transaction, merges the replies. */
  private async statement(db: string, name: string, command: Document, txn: RouterTxn, ctx: ConnectionContext): Promise<Document> {
    const ns = `${db}.${String(command[name])}`;
    const parts = new Map<ReplicaSet, Document>();
    const add = (rs: ReplicaSet, field: string | undefined, item?: Document) => {
      let c = parts.get(rs);
      if (!c) parts.set(rs, (c = { ...command, ...(field ? { [field]: [] } : {}) }));
      if (field && item) (c[field] as Document[]).push(item);
    };
    if (name === 'find') for (const rs of this.targets.shardsFor(ns, scalarId(command.filter as Document))) add(rs, undefined);
    if (name === 'insert') for (const d of (command.documents ?? []) as Document[]) add(this.targets.shardsFor(ns, d._id)[0]!, 'documents', d);
    if (name === 'update' || name === 'delete') {
      const field = name === 'update' ? 'updates' : 'deletes';
      for (const s of (command[field] ?? []) as Document[]) for (const rs of this.targets.shardsFor(ns, scalarId(s.q as Document))) add(rs, field, s);
    }
    const replies: Document[] = [];
    for (const [rs, part] of parts) {
      const node = this.targets.primaryOf(rs);
      const first = !txn.participants.has(rs);
      txn.participants.set(rs, node);
      const { startTransaction: _s, readConcern: _r, $db: _d, $clusterTime: _c, ...rest } = part;
      const shardCommand = { ...rest, ...(name === 'find' ? { singleBatch: true, batchSize: 1_000_000 } : {}), lsid: txn.lsid, txnNumber: txn.txnNumber, autocommit: false, ...(first ? { startTransaction: true, readConcern: { level: 'snapshot', atClusterTime: txn.atClusterTime } } : {}) };
      const reply = (await node.handle(db, shardCommand, ctx)) as Document;
      if (Array.isArray(reply.writeErrors) && reply.writeErrors.length > 0) return reply;
      replies.push(reply);
    }
    if (name === 'find') return { docs: replies.flatMap((r) => ((r.cursor as Document).firstBatch as Document[]) ?? []) };
    const sum = (f: string) => replies.reduce((n, r) => n + Number(r[f] ?? 0), 0);
    return name === 'update' ? { n: sum('n'), nModified: sum('nModified') } : { n: sum('n') };
  }

  private participants(txn: RouterTxn, ctx: ConnectionContext): Participant[] {
    const out: Participant[] = [];
    const parsed = parseLsid({ lsid: txn.lsid })!;
    for (const node of txn.participants.values()) {
      const session = makeSessionId({ node, conn: ctx, db: 'admin', command: {}, name: 'commitTransaction' } as CommandContext, parsed);
      const t = transactionsOf(node).find(session, txn.txnNumber);
      if (t) out.push({ node, txn: t });
    }
    return out;
  }

  private abortParticipants(txn: RouterTxn, ctx: ConnectionContext): void {
    abortAll(this.participants(txn, ctx));
    txn.state = 'aborted';
  }

  private async commit(txn: RouterTxn, ctx: ConnectionContext): Promise<Document> {
    if (txn.state === 'committed') return {};
    if (txn.state === 'aborted') throw new CommandError(ErrorCodes.NoSuchTransaction, 'Transaction has been aborted.', { errorLabels: ['TransientTransactionError'] });
    const parts = this.participants(txn, ctx);
    if (parts.length !== txn.participants.size) {
      this.abortParticipants(txn, ctx);
      throw new CommandError(ErrorCodes.NoSuchTransaction, 'Transaction was aborted on a participant.', { errorLabels: ['TransientTransactionError'] });
    }
    const single = commitSingleWriter(parts);
    if (single === 'twoPhase') {
      const commitTs = prepareAll(parts);
      await this.prepareMajorityCommitted(parts);
      commitAll(parts, commitTs, true);
    }
    txn.state = 'committed';
    return {};
  }

  /** The coordinator's wait: every prepare entry majority committed on its shard. */
  private async prepareMajorityCommitted(parts: Participant[]): Promise<void> {
    const deadline = Date.now() + PREPARE_MAJORITY_WAIT_MS;
    for (const p of parts) {
      const at = p.txn.prepareOpTime?.ts;
      if (!at) continue;
      while (compareTs(p.node.rs!.committedSnapshot(p.node), at) < 0) {
        if (Date.now() >= deadline) throw new CommandError(ErrorCodes.MaxTimeMSExpired, 'waiting for the prepare entries to be majority committed timed out');
        await sleep(5);
      }
    }
  }

  private abort(txn: RouterTxn, ctx: ConnectionContext): Document {
    if (txn.state === 'committed') throw new CommandError(256, `Transaction ${txn.txnNumber.toString()} has been committed.`, { codeName: 'TransactionCommitted' });
    this.abortParticipants(txn, ctx);
    return {};
  }

  /**
   * The bank's transaction (bank.ts): replaces each document on the shard of its `_id` in one transaction of
   * `session` started at the latest cluster time, then commits it as a client's commitTransaction would. Returns
   * the timestamp its writes are visible at (the commitTimestamp of a two-phase commit).
   */
  runInProcess(session: LogicalSessionId, lsid: Document, txnNumber: Long, ns: string, docs: Document[]): Timestamp {
    const atClusterTime = this.targets.clusterTime();
    const byShard = new Map<ReplicaSet, Participant>();
    const parts: Participant[] = [];
    try {
      for (const doc of docs) {
        const rs = this.targets.shardsFor(ns, doc._id)[0]!;
        let p = byShard.get(rs);
        if (!p) {
          const node = this.targets.primaryOf(rs);
          if (!node.writable) throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary');
          p = { node, txn: transactionsOf(node).begin(session, lsid, txnNumber, atClusterTime) };
          byShard.set(rs, p);
          parts.push(p);
        }
        p.txn.write(p.node, { op: 'u', ns, o: doc, o2: { _id: doc._id } }, transactionsOf(p.node));
      }
    } catch (e) {
      abortAll(parts);
      throw e;
    }
    const single = commitSingleWriter(parts);
    if (single !== 'twoPhase') return single!;
    const wall = new Date();
    const commitTs = prepareAll(parts, wall);
    commitAll(parts, commitTs, false, wall);
    return commitTs;
  }
}
