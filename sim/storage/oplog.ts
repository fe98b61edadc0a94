import type { Document, Long, Timestamp, UUID } from 'mongodb';
import { StorageCodes, StorageError } from './errors.ts';
import type { Store } from './store.ts';
import { tsKey } from './keys.ts';
import { isTimestamp, toTs } from './timestamps.ts';
import type { Ts } from './timestamps.ts';

/**
 * Oplog entries and how they change the data tables. The sim's oplog is MongoDB's with one simplification: an update
 * (`op: 'u'`) carries the whole replacement document in `o` (and `{_id}` in `o2`), never update operators.
 */

/** Operation kinds: insert, update (full replacement), delete, no-op, command. */
export type OplogOp = 'i' | 'u' | 'd' | 'n' | 'c';

/** One operation: a top-level entry, or an element of an `applyOps` command (which has no ts/t/wall of its own). */
export interface OplogOperation {
  op: OplogOp;
  /** `db.coll`, or `db.$cmd` for commands (`admin.$cmd` for `applyOps`). */
  ns: string;
  ui?: UUID;
  /** Inserted/replacement document; `{_id}` for deletes; the command for `c`; a message for `n`. */
  o: Document;
  /** `{_id}` of the document an update replaces. */
  o2?: Document;
}

/** A top-level oplog entry as stored in `local.oplog.rs` and journaled. */
export interface OplogEntry extends OplogOperation {
  ts: Timestamp;
  /** Term. */
  t: Long;
  h?: Long;
  v?: number;
  wall: Date;
}

const OPS = new Set(['i', 'u', 'd', 'n', 'c']);

function unsupported(message: string): StorageError {
  return new StorageError(StorageCodes.OplogOperationUnsupported, message);
}

/** Checks the fields every entry must have; throws BadValue naming the first bad one. */
export function validateEntry(entry: OplogEntry): Ts {
  const bad = (field: string): StorageError =>
    new StorageError(StorageCodes.BadValue, `invalid oplog entry: bad or missing '${field}'`);
  if (!isTimestamp(entry.ts)) throw bad('ts');
  if (entry.t === undefined || entry.t === null) throw bad('t');
  if (!OPS.has(entry.op)) throw bad('op');
  if (typeof entry.ns !== 'string') throw bad('ns');
  if (typeof entry.o !== 'object' || entry.o === null) throw bad('o');
  if (!(entry.wall instanceof Date)) throw bad('wall');
  return toTs(entry.ts);
}

function commandDb(ns: string): string {
  const dot = ns.indexOf('.');
  return dot < 0 ? ns : ns.slice(0, dot);
}

/**
 * The commit entry of a prepared transaction (`{commitTransaction: 1, commitTimestamp}`, `prevOpTime` = its prepare
 * entry's optime): the prepare entry's operations become visible at `commitTimestamp` and durable at the commit
 * entry's own timestamp, as mongod's applier commits a prepared transaction on a secondary and in recovery. A prepare
 * entry alone changes nothing (an abort neither): its writes stay invisible until a commit entry names it.
 */
function commitPrepared(store: Store, op: OplogOperation, ts: Ts): void {
  const prev = (op as OplogOperation & { prevOpTime?: { ts?: Timestamp } }).prevOpTime?.ts;
  const at = op.o.commitTimestamp as Timestamp | undefined;
  if (!isTimestamp(prev) || !isTimestamp(at)) throw unsupported('commitTransaction entry without prevOpTime.ts or commitTimestamp');
  const prepare = store.oplog(false)?.data.read(tsKey(toTs(prev)), undefined) as OplogEntry | undefined;
  const ops = prepare?.o.applyOps as OplogOperation[] | undefined;
  if (!prepare || prepare.o.prepare !== true || !Array.isArray(ops)) {
    throw new StorageError(StorageCodes.BadValue, `commitTransaction entry at ${String(ts)}: no prepare entry at its prevOpTime ${prev.toString()}`);
  }
  for (const inner of ops) applyOperation(store, inner, toTs(at), ts);
}

function applyCommand(store: Store, op: OplogOperation, ts: Ts, durable?: Ts): void {
  const db = commandDb(op.ns);
  const name = Object.keys(op.o)[0];
  if (name === 'commitTransaction') return commitPrepared(store, op, ts);
  if (name === 'abortTransaction') return;
  if (name === 'create') {
    const { create, ...options } = op.o as { create: string } & Document;
    const ns = `${db}.${create}`;
    const existing = store.collection(ns, undefined);
    // Re-applying the create a checkpoint already holds must be harmless: recovery replays from the checkpoint.
    if (existing && op.ui && existing.uuid.equals(op.ui)) return;
    store.createCollection(ns, op.ui, options, ts);
    return;
  }
  if (name === 'drop') {
    store.dropCollection(`${db}.${String(op.o.drop)}`, ts);
    return;
  }
  if (name === 'applyOps') {
    const ops = op.o.applyOps as OplogOperation[];
    if (!Array.isArray(ops)) throw unsupported('applyOps without an array of operations');
    if (op.o.prepare === true) return;
    for (const inner of ops) applyOperation(store, inner, ts, durable);
    return;
  }
  throw unsupported(`the simulator cannot apply the oplog command '${String(name)}'`);
}

/**
 * Applies one operation at `ts` with idempotent semantics (insert and update overwrite, delete of nothing is a no-op);
 * `durable`: the commit entry's timestamp when `ts` is a prepared transaction's commitTimestamp.
 */
export function applyOperation(store: Store, op: OplogOperation, ts: Ts, durable?: Ts): void {
  switch (op.op) {
    case 'n':
      return;
    case 'i':
      store.put(op.ns, op.o, ts, 'upsert', durable);
      return;
    case 'u': {
      if (Object.keys(op.o).some((k) => k.startsWith('$'))) {
        throw unsupported(`update operators are not supported in the simulator's oplog (ns ${op.ns})`);
      }
      const id: unknown = op.o2?._id ?? op.o._id;
      store.put(op.ns, op.o._id === undefined ? { _id: id, ...op.o } : op.o, ts, 'upsert', durable);
      return;
    }
    case 'd':
      store.remove(op.ns, op.o._id, ts, durable);
      return;
    case 'c':
      applyCommand(store, op, ts, durable);
      return;
    default:
      throw unsupported(`unknown oplog op '${String((op as { op: unknown }).op)}'`);
  }
}

/** Applies a top-level entry at its own timestamp and advances `lastApplied`. */
export function applyEntry(store: Store, entry: OplogEntry): void {
  const ts = validateEntry(entry);
  applyOperation(store, entry, ts);
  if (store.lastApplied === null || ts > store.lastApplied) store.lastApplied = ts;
}
