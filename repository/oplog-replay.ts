/**
 * What a point-in-time restore replays of one replica set's captured oplog (repository/oplog-segments.ts) on top of a
 * base backup restored at `from`, to stop at exactly the cluster time `to`:
 *
 * - entries at or before `from` are in the base; entries after `to` are not applied, except that the capture is read
 *   past `to` for the decision of every transaction prepared at or before `to`;
 * - a plain entry (insert, update, delete, command) and a transaction committed without prepare (one `applyOps` entry
 *   with `lsid`/`txnNumber`, or a chain of `partialTxn` entries ending in one) are applied at their timestamp;
 * - a prepared transaction (`{applyOps, prepare: true}`, a cross-shard transaction's participant, docs/psmdb-behaviour.md
 *   section 7) is applied iff its commit entry's `commitTimestamp` is at or before `to`: the same decision on every
 *   participant, whose commit entries lie at different timestamps after the shared commitTimestamp. It is applied at
 *   its commit entry when that is at or before `to`, else after every entry up to `to` (no other write touches its
 *   documents between prepare and commit: they are prepare conflicts). Aborted, or committed after `to`: not applied.
 *   A transaction prepared at or before `to` whose decision the capture has not reached makes `to` not yet
 *   restorable (PITR_NOT_RESTORABLE);
 * - no-ops and what a restore must not carry over are skipped ({@link skippedNamespace}).
 *
 * Pure over deserialized oplog documents, so the orchestrator's preflight and the agent's replay share it.
 */
import type { Document } from 'mongodb';
import { CutpointError } from '../common/errors.ts';
import { compareTs, formatTs, type Ts } from '../common/timestamp.ts';
import { fromBsonTimestamp } from '../lib/bson-timestamp.ts';

/**
 * Namespaces a replay never applies: the session and transaction tables (the replayed transactions' own effects are
 * applied instead), the shard's routing caches and the cluster's bookkeeping that the restore's reset step rewrites
 * for the new hosts (activities/agent/restore/member-steps.ts), and the node-local database.
 */
const SKIPPED = new Set([
  'config.system.sessions',
  'config.transactions',
  'config.transaction_coordinators',
  'config.image_collection',
  'config.system.indexBuilds',
  'config.mongos',
  'config.lockpings',
  'config.locks',
  'config.shards',
  'config.version',
  'admin.system.version',
]);

/** Whether a replay skips an operation on `ns` (a CRUD namespace, or `db.$cmd` with the command's target). */
export function skippedNamespace(ns: string): boolean {
  return SKIPPED.has(ns) || ns.startsWith('config.cache.') || ns.startsWith('local.');
}

/** The target of a command entry (`db.$cmd` + `{create: 'c'}` → `db.c`), else the entry's own namespace. */
function targetOf(op: Document): string {
  const ns = String(op.ns);
  if (op.op !== 'c' || !ns.endsWith('.$cmd')) return ns;
  const o = op.o as Document;
  const name = Object.keys(o)[0];
  const db = ns.slice(0, -'.$cmd'.length);
  const arg = name ? o[name] : undefined;
  return typeof arg === 'string' ? `${db}.${arg}` : ns;
}

/** The operations of `ops` a replay applies (skipped namespaces and no-ops removed), with only the fields applyOps takes. */
export function replayable(ops: Document[]): Document[] {
  return ops.filter((op) => op.op !== 'n' && !skippedNamespace(targetOf(op)));
}

export function tsOf(entry: Document): Ts {
  const ts = fromBsonTimestamp(entry.ts);
  if (!ts) throw new CutpointError('REPO_CORRUPT', `an oplog entry without a timestamp: ${JSON.stringify(entry).slice(0, 200)}`);
  return ts;
}

const key = (ts: Ts) => `${ts.t}:${ts.i}`;

/** The kind of an `admin.$cmd` transaction entry. */
type TxnKind = 'apply' | 'partial' | 'prepare' | 'commit' | 'abort' | undefined;

function txnKind(e: Document): TxnKind {
  if (e.op !== 'c' || typeof e.o !== 'object' || e.o === null) return undefined;
  const o = e.o as Document;
  if (o.commitTransaction !== undefined) return 'commit';
  if (o.abortTransaction !== undefined) return 'abort';
  if (!Array.isArray(o.applyOps)) return undefined;
  if (o.prepare === true) return 'prepare';
  if (o.partialTxn === true) return 'partial';
  return 'apply';
}

const sessionKey = (e: Document) => `${JSON.stringify(e.lsid ?? null)}#${String(e.txnNumber ?? '')}`;

/** What a scan past `to` learnt: each prepared transaction's decision, by its prepare entry's timestamp. */
export type Decisions = Map<string, { commitTimestamp: Ts } | 'abort'>;

/** A prepared transaction's decision from its commit or abort entry (`prevOpTime.ts` names the prepare entry). */
function decisionOf(e: Document): { prepare: Ts; decision: { commitTimestamp: Ts } | 'abort' } | undefined {
  const kind = txnKind(e);
  if (kind !== 'commit' && kind !== 'abort') return undefined;
  const prepare = fromBsonTimestamp((e.prevOpTime as Document | undefined)?.ts);
  if (!prepare) throw new CutpointError('REPO_CORRUPT', `a ${kind} entry at ${formatTs(tsOf(e))} without prevOpTime.ts`);
  if (kind === 'abort') return { prepare, decision: 'abort' };
  const commitTimestamp = fromBsonTimestamp((e.o as Document).commitTimestamp);
  if (!commitTimestamp) throw new CutpointError('REPO_CORRUPT', `a commitTransaction entry at ${formatTs(tsOf(e))} without commitTimestamp`);
  return { prepare, decision: { commitTimestamp } };
}

/**
 * The first pass: reads entries after `from` (in oplog order, as far as the capture goes) and records the decision of
 * every prepared transaction. `pending` are prepares at or before `from` still undecided there (the restored node's
 * oplog holds them). Returns the decisions and the prepares at or before `to` left undecided (refused by
 * {@link assertDecided}). `done()` says when the scan may stop: past `to` with nothing pending.
 */
export class DecisionScan {
  readonly decisions: Decisions = new Map();
  private readonly open = new Set<string>();
  private passedTo = false;

  constructor(
    private readonly from: Ts,
    private readonly to: Ts,
    pending: Ts[] = [],
  ) {
    for (const p of pending) this.open.add(key(p));
  }

  /** Feeds one entry; entries at or before `from` are ignored. */
  add(e: Document): void {
    const ts = tsOf(e);
    if (compareTs(ts, this.from) <= 0) return;
    if (compareTs(ts, this.to) > 0) this.passedTo = true;
    const kind = txnKind(e);
    if (kind === 'prepare' && compareTs(ts, this.to) <= 0) this.open.add(key(ts));
    const d = decisionOf(e);
    if (d) {
      this.decisions.set(key(d.prepare), d.decision);
      this.open.delete(key(d.prepare));
    }
  }

  /** Past `to`, with every transaction prepared at or before it decided: nothing later changes the replay. */
  done(): boolean {
    return this.passedTo && this.open.size === 0;
  }

  /** Prepares at or before `to` without a decision in what was scanned. */
  undecided(): Ts[] {
    return [...this.open].map((k) => {
      const [t, i] = k.split(':').map(Number);
      return { t: t!, i: i! };
    });
  }
}

/** Refuses a target whose replay would need a decision the capture has not reached. */
export function assertDecided(replicaSet: string, to: Ts, undecided: Ts[]): void {
  if (!undecided.length) return;
  throw new CutpointError(
    'PITR_NOT_RESTORABLE',
    `replica set ${replicaSet}: the transaction${undecided.length > 1 ? 's' : ''} prepared at ${undecided.map(formatTs).join(', ')} ${undecided.length > 1 ? 'are' : 'is'} not yet committed or aborted in the captured oplog: ${formatTs(to)} is not restorable until the capture reaches the decision`,
    { replicaSet, undecided },
  );
}

/** One `applyOps` command's operations, and the timestamp of the entry the replay stands at once it is applied. */
export interface ReplayBatch {
  ops: Document[];
  /** The newest entry this batch completes (the resume point once it is applied). */
  through: Ts;
}

/**
 * The second pass: turns entries after `from` into the operations to apply, in order. Feed every entry up to `to`
 * with {@link add} (it returns the operations to apply now, possibly none), then call {@link finish} for the
 * prepared transactions committed at or before `to` whose commit entry lies after it. `prepared(ts)` returns the
 * operations of a prepare entry at or before `from` (from the restored node's own oplog).
 */
export class ReplayPlan {
  private readonly partial = new Map<string, Document[]>();
  private readonly preparedOps = new Map<string, Document[]>();
  private readonly applied = new Set<string>();

  constructor(
    private readonly from: Ts,
    private readonly to: Ts,
    private readonly decisions: Decisions,
    private readonly earlierPrepare: (ts: Ts) => Document[] | undefined = () => undefined,
  ) {}

  /** The operations entry `e` makes the replay apply now (after earlier ones). */
  add(e: Document): Document[] {
    const ts = tsOf(e);
    if (compareTs(ts, this.from) <= 0 || compareTs(ts, this.to) > 0) return [];
    const kind = txnKind(e);
    const ops = (e.o as Document | undefined)?.applyOps as Document[] | undefined;
    switch (kind) {
      case 'partial':
        this.partial.set(sessionKey(e), [...(this.partial.get(sessionKey(e)) ?? []), ...ops!]);
        return [];
      case 'apply': {
        // A transaction's last (or only) entry; a plain applyOps run by a user is applied the same way.
        const chain = e.lsid !== undefined ? (this.partial.get(sessionKey(e)) ?? []) : [];
        this.partial.delete(sessionKey(e));
        return replayable([...chain, ...ops!]);
      }
      case 'prepare': {
        const chain = this.partial.get(sessionKey(e)) ?? [];
        this.partial.delete(sessionKey(e));
        this.preparedOps.set(key(ts), [...chain, ...ops!]);
        return [];
      }
      case 'commit': {
        const d = decisionOf(e)!;
        return this.commit(d.prepare);
      }
      case 'abort': {
        this.preparedOps.delete(key(decisionOf(e)!.prepare));
        return [];
      }
      default:
        return replayable([e]).map(operation);
    }
  }

  /** The prepared transactions committed at or before `to` whose commit entry lies after it, in commit order. */
  finish(): Document[][] {
    const late = [...this.decisions.entries()]
      .filter(([k, d]) => d !== 'abort' && compareTs(d.commitTimestamp, this.to) <= 0 && !this.applied.has(k))
      .map(([k, d]) => ({ k, at: (d as { commitTimestamp: Ts }).commitTimestamp }))
      .sort((a, b) => compareTs(a.at, b.at));
    return late.map(({ k }) => {
      const [t, i] = k.split(':').map(Number);
      return this.commit({ t: t!, i: i! });
    });
  }

  private commit(prepare: Ts): Document[] {
    const k = key(prepare);
    if (this.applied.has(k)) return [];
    const ops = this.preparedOps.get(k) ?? (compareTs(prepare, this.from) <= 0 ? this.earlierPrepare(prepare) : undefined);
    if (!ops) throw new CutpointError('REPO_CORRUPT', `the prepare entry at ${formatTs(prepare)} of a committed transaction is in neither the capture nor the restored oplog`);
    this.applied.add(k);
    this.preparedOps.delete(k);
    return replayable(ops);
  }
}

/** An oplog entry as one operation of an applyOps command: the fields applyOps takes, session fields left out. */
export function operation(e: Document): Document {
  const out: Document = {};
  for (const f of ['op', 'ns', 'ui', 'o', 'o2', 'b']) if (e[f] !== undefined) out[f] = e[f];
  return out;
}
