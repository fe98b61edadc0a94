/**
 * The minimal document commands (docs/simulator.md): enough for the bank workload, the restore sequence's `local`
 * collections, the oracle's reads and a demo. Reads honour secondaryOk and `readConcern` (`majority` reads the
 * committed snapshot, `snapshot` with `atClusterTime` reads at that timestamp).
 */
import type { Document } from 'mongodb';
import { Long, ObjectId, Timestamp } from 'mongodb';
import { OPLOG_NS, type OplogOperation } from '../../storage/index.ts';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import { sleep } from '../../../lib/process.ts';
import { applyUpdate, getPath, matches, upsertSeed } from '../matcher.ts';
import { DEFAULT_AWAIT_DATA_MS, openTailable, tailableMode } from '../tailable.ts';
import type { SimNode } from '../types.ts';
import { enterCollection, lookup, transactionOf, transactionsOf, write } from '../transactions.ts';
import { enforcesPrepareConflicts, waitForPrepared } from '../prepare.ts';
import { assertWritable } from '../writes.ts';
import type { CommandContext, CommandImpl } from '../types.ts';

function collName(ctx: CommandContext): string {
  const v = ctx.command[ctx.name];
  if (typeof v !== 'string' || v === '') {
    throw new CommandError(ErrorCodes.InvalidNamespace, `collection name has invalid type ${typeof v}`);
  }
  return v;
}

/** Reads on a secondary need a non-primary read preference (a direct connection sends primaryPreferred). */
export function assertReadable(ctx: CommandContext): void {
  const { node } = ctx;
  if (!node.rs || node.state === 'PRIMARY') return;
  // A RECOVERING or STARTUP2 member serves no reads (mongod's checkCanServeReadsFor), except of `local`.
  if (node.state !== 'SECONDARY' && ctx.db !== 'local') {
    throw new CommandError(13436, 'not primary or secondary; cannot currently read from this replSet member', { codeName: 'NotPrimaryOrSecondary' });
  }
  const mode = (ctx.command.$readPreference as Document | undefined)?.mode;
  if (mode === undefined || mode === 'primary') {
    throw new CommandError(ErrorCodes.NotPrimaryNoSecondaryOk, 'not primary and secondaryOk=false');
  }
}

/** The timestamp a read observes, from its readConcern; undefined = latest. */
export function readTimestamp(ctx: CommandContext): Timestamp | undefined {
  const rc = ctx.command.readConcern as Document | undefined;
  if (!rc) return undefined;
  const level = rc.level as string | undefined;
  if (rc.atClusterTime !== undefined) {
    if (level !== 'snapshot') throw new CommandError(ErrorCodes.InvalidOptions, 'atClusterTime is only valid with readConcern level snapshot');
    return rc.atClusterTime as Timestamp;
  }
  if (level === 'majority' && ctx.node.rs) return ctx.node.rs.committedSnapshot(ctx.node);
  if (level !== undefined && !['local', 'available', 'majority', 'snapshot', 'linearizable'].includes(level)) {
    throw new CommandError(ErrorCodes.FailedToParse, `Invalid readConcern level: ${level}`);
  }
  return undefined;
}

/** `sort` as find applies it (ascending 1, descending -1, key by key); shared with the pipeline's `$sort`. */
export function sortDocs(docs: Document[], sort: Document | undefined): Document[] {
  if (!sort || Object.keys(sort).length === 0) return docs;
  const keys = Object.entries(sort);
  return [...docs].sort((a, b) => {
    for (const [k, dir] of keys) {
      const x = getPath(a, k) as number | string;
      const y = getPath(b, k) as number | string;
      if (x === y) continue;
      const c = x === undefined ? -1 : y === undefined ? 1 : x < y ? -1 : 1;
      return Number(dir) < 0 ? -c : c;
    }
    return 0;
  });
}

/** A find projection (inclusion or exclusion of top-level fields); shared with the pipeline's `$project`. */
export function project(doc: Document, projection: Document | undefined): Document {
  if (!projection || Object.keys(projection).length === 0) return doc;
  const include = Object.entries(projection).filter(([k, v]) => k !== '_id' && Boolean(v));
  if (include.length > 0) {
    const out: Document = projection._id === 0 || projection._id === false ? {} : { _id: doc._id };
    for (const [k] of include) if (doc[k] !== undefined) out[k] = doc[k];
    return out;
  }
  const out = { ...doc };
  for (const [k, v] of Object.entries(projection)) if (!v) delete out[k];
  return out;
}

/** How often a waiting awaitData getMore looks for new entries. */
const AWAIT_POLL_MS = 10;

function cursorOver(node: SimNode, ns: string, docs: Document[], batchSize: unknown): Document {
  let i = 0;
  return node.cursors.open({ ns, source: () => docs[i++] }, batchSize);
}

function query(ctx: CommandContext, ns: string, filter: Document | undefined): Document[] {
  const txn = transactionOf(ctx);
  if (txn) return txn.scan(ctx.node, ns).filter((d) => matches(d, filter));
  const at = readTimestamp(ctx);
  const docs = (at === undefined && ns === OPLOG_NS ? oplogFrom(ctx, filter) : undefined) ?? ctx.node.engine.scan(ns, at);
  return docs.filter((d) => matches(d, filter));
}

/**
 * A find on the oplog bounded below by `ts` starts at that key instead of scanning the whole oplog, as mongod's oplog
 * start optimisation does: a sync source answers a secondary's `{ts: {$gte: lastFetched}}` at the cost of what is new.
 */
function oplogFrom(ctx: CommandContext, filter: Document | undefined): Document[] | undefined {
  const ts = filter?.ts as Document | undefined;
  if (!ts || typeof ts !== 'object') return undefined;
  if (ts.$gte instanceof Timestamp) return ctx.node.engine.readOplog({ from: ts.$gte });
  if (ts.$gt instanceof Timestamp) return ctx.node.engine.readOplog({ after: ts.$gt });
  return undefined;
}

/**
 * A read that enforces prepare conflicts (prepare.ts: in a transaction, or readConcern snapshot, majority or with a
 * cluster time) waits while a prepared transaction holds a document it would see: the `_id` of an equality filter,
 * else any document of the namespace.
 */
export async function awaitPrepareConflicts(ctx: CommandContext, ns: string, filter: Document | undefined): Promise<void> {
  const txn = transactionOf(ctx);
  if (!txn && !enforcesPrepareConflicts(ctx.command.readConcern as Document | undefined)) return;
  const registry = transactionsOf(ctx.node);
  if (registry.prepared().next().done) return;
  const id = filter?._id as unknown;
  const scalar = id !== undefined && (id === null || typeof id !== 'object' || Object.keys(id as Document).every((k) => !k.startsWith('$')));
  const touches = (t: { ops: Array<{ ns: string; o: Document; o2?: Document }> }) =>
    !scalar || t.ops.some((op) => op.ns === ns && JSON.stringify(op.o2?._id ?? op.o._id) === JSON.stringify(id));
  const readTs = txn ? txn.readTs : readTimestamp(ctx);
  const max = ctx.command.maxTimeMS === undefined ? undefined : Number(ctx.command.maxTimeMS);
  await waitForPrepared(ctx.node, registry, ns, readTs, max, (t) => t !== txn && touches(t));
}

export const find: CommandImpl = async (ctx) => {
  assertReadable(ctx);
  const ns = `${ctx.db}.${collName(ctx)}`;
  const c = ctx.command;
  const { tailable, awaitData } = tailableMode(c);
  if (tailable) return openTailable(ctx, ns, (d) => project(d, c.projection as Document | undefined), awaitData);
  await awaitPrepareConflicts(ctx, ns, c.filter as Document | undefined);
  let docs = sortDocs(query(ctx, ns, c.filter as Document | undefined), c.sort as Document | undefined);
  if (c.skip) docs = docs.slice(Number(c.skip));
  const limit = Math.abs(Number(c.limit ?? 0));
  if (limit) docs = docs.slice(0, limit);
  docs = docs.map((d) => project(d, c.projection as Document | undefined));
  return cursorOver(ctx.node, ns, docs, c.singleBatch ? Number.MAX_SAFE_INTEGER : c.batchSize);
};

export const count: CommandImpl = async (ctx) => {
  assertReadable(ctx);
  const ns = `${ctx.db}.${collName(ctx)}`;
  await awaitPrepareConflicts(ctx, ns, ctx.command.query as Document | undefined);
  return { n: query(ctx, ns, ctx.command.query as Document | undefined).length };
};

export const getMore: CommandImpl = async ({ node, command }) => {
  const id = command.getMore;
  if (!Long.isLong(id)) throw new CommandError(ErrorCodes.TypeMismatch, `Field 'getMore' must be of type long in: ${JSON.stringify(command)}`);
  const cursor = node.cursors.get(id);
  // getmore_cmd.cpp validateMaxTimeMS: maxTimeMS is the wait of an awaitData cursor, refused on any other.
  if (command.maxTimeMS !== undefined && !cursor.awaitData) {
    throw new CommandError(ErrorCodes.BadValue, 'cannot set maxTimeMS on getMore command for a non-awaitData cursor');
  }
  if (!cursor.awaitData) return node.cursors.getMore(cursor, command.batchSize);
  // An awaitData getMore answers as soon as it has something, else waits for new entries until maxTimeMS (one
  // second without it) and then returns an empty batch with the same cursor id.
  const wait = command.maxTimeMS === undefined ? DEFAULT_AWAIT_DATA_MS : Number(command.maxTimeMS);
  if (!Number.isInteger(wait) || wait < 0) throw new CommandError(ErrorCodes.BadValue, `${String(command.maxTimeMS)} value for maxTimeMS is out of range`);
  const deadline = Date.now() + wait;
  for (;;) {
    const reply = node.cursors.getMore(cursor, command.batchSize);
    const c = reply.cursor as Document;
    if ((c.nextBatch as Document[]).length > 0 || (c.id as Long).isZero() || Date.now() >= deadline) return reply;
    await sleep(Math.min(AWAIT_POLL_MS, Math.max(1, deadline - Date.now())));
    if (!node.up) throw new CommandError(ErrorCodes.InterruptedAtShutdown, 'interrupted at shutdown');
    if (!node.cursors.has(id)) throw new CommandError(ErrorCodes.CursorKilled, `cursor id ${id.toString()} was killed while awaiting data`);
  }
};

export const killCursors: CommandImpl = ({ node, command }) => {
  const ids = command.cursors;
  if (!Array.isArray(ids)) throw new CommandError(ErrorCodes.FailedToParse, "BSON field 'killCursors.cursors' is missing but a required field");
  return node.cursors.kill(ids as Long[]);
};

function writeErrorOf(index: number, e: unknown): Document {
  const code = (e as { code?: number }).code ?? ErrorCodes.UnknownError;
  return { index, code, errmsg: (e as Error).message };
}

/**
 * Runs per-document writes, collecting writeErrors as mongod does (ordered stops at the first). In a transaction an
 * error fails the whole command (write_ops_exec.cpp handleError), so it carries its labels (TransientTransactionError).
 */
function eachWrite<T>(ctx: CommandContext, items: T[], ordered: boolean, fn: (item: T) => void): Document[] {
  const errors: Document[] = [];
  for (const [i, item] of items.entries()) {
    try {
      fn(item);
    } catch (e) {
      if (e instanceof CommandError && (e.code === ErrorCodes.NotWritablePrimary || e.code === ErrorCodes.ShutdownInProgress)) throw e;
      if (transactionOf(ctx)) throw e;
      errors.push(writeErrorOf(i, e));
      if (ordered) break;
    }
  }
  return errors;
}

export const insert: CommandImpl = (ctx) => {
  const ns = `${ctx.db}.${collName(ctx)}`;
  assertWritable(ctx.node, ns);
  const docs = (ctx.command.documents ?? []) as Document[];
  enterCollection(ctx, ns);
  let n = 0;
  const errors = eachWrite(ctx, docs, ctx.command.ordered !== false, (doc) => {
    const full = doc._id === undefined ? { _id: new ObjectId(), ...doc } : doc;
    if (lookup(ctx, ns, full._id) !== undefined) {
      throw new CommandError(ErrorCodes.DuplicateKey, `E11000 duplicate key error collection: ${ns} index: _id_ dup key: { _id: ${JSON.stringify(full._id)} }`);
    }
    write(ctx, [{ op: 'i', ns, o: full }]);
    n++;
  });
  return { n, ...(errors.length ? { writeErrors: errors } : {}) };
};

export const update: CommandImpl = (ctx) => {
  const ns = `${ctx.db}.${collName(ctx)}`;
  assertWritable(ctx.node, ns);
  let n = 0;
  let nModified = 0;
  const upserted: Document[] = [];
  const statements = (ctx.command.updates ?? []) as Document[];
  const errors = eachWrite(ctx, statements.map((s, i) => ({ s, i })), ctx.command.ordered !== false, ({ s, i }) => {
    const q = (s.q ?? {}) as Document;
    const u = s.u as Document;
    const targets = ctx.node.engine.getCollection(ns) ? query(ctx, ns, q) : [];
    const chosen = s.multi ? targets : targets.slice(0, 1);
    if (chosen.length === 0 && s.upsert) {
      enterCollection(ctx, ns);
      const seed = upsertSeed(q, u);
      const doc = applyUpdate(seed._id === undefined ? { _id: new ObjectId(), ...seed } : seed, u);
      write(ctx, [{ op: 'i', ns, o: doc }]);
      upserted.push({ index: i, _id: doc._id });
      n++;
      return;
    }
    const ops: OplogOperation[] = [];
    for (const doc of chosen) {
      const after = applyUpdate(doc, u);
      n++;
      if (JSON.stringify(after) === JSON.stringify(doc)) continue;
      nModified++;
      ops.push({ op: 'u', ns, o: after, o2: { _id: doc._id } });
    }
    // Each document is its own oplog entry, as in mongod (a multi-update is not atomic).
    for (const op of ops) write(ctx, [op]);
  });
  return { n, nModified, ...(upserted.length ? { upserted } : {}), ...(errors.length ? { writeErrors: errors } : {}) };
};

export const del: CommandImpl = (ctx) => {
  const ns = `${ctx.db}.${collName(ctx)}`;
  assertWritable(ctx.node, ns);
  let n = 0;
  const errors = eachWrite(ctx, (ctx.command.deletes ?? []) as Document[], ctx.command.ordered !== false, (s) => {
    if (!ctx.node.engine.getCollection(ns)) return;
    const targets = query(ctx, ns, s.q as Document);
    for (const doc of Number(s.limit) === 1 ? targets.slice(0, 1) : targets) {
      write(ctx, [{ op: 'd', ns, o: { _id: doc._id } }]);
      n++;
    }
  });
  return { n, ...(errors.length ? { writeErrors: errors } : {}) };
};

export const listCollections: CommandImpl = (ctx) => {
  assertReadable(ctx);
  const prefix = `${ctx.db}.`;
  const docs = ctx.node.engine
    .listCollections()
    .filter((c) => c.ns.startsWith(prefix))
    .map((c) => ({
      name: c.ns.slice(prefix.length),
      type: 'collection',
      options: c.options,
      info: { readOnly: false, uuid: c.uuid },
      idIndex: { v: 2, key: { _id: 1 }, name: '_id_' },
    }))
    .filter((d) => matches(d, ctx.command.filter as Document | undefined));
  return cursorOver(ctx.node, `${ctx.db}.$cmd.listCollections`, docs, (ctx.command.cursor as Document | undefined)?.batchSize);
};

export const create: CommandImpl = (ctx) => {
  const ns = `${ctx.db}.${collName(ctx)}`;
  assertWritable(ctx.node, ns);
  if (ctx.node.engine.getCollection(ns)) throw new CommandError(ErrorCodes.NamespaceExists, `Collection ${ns} already exists.`);
  enterCollection(ctx, ns);
  return {};
};

export const drop: CommandImpl = (ctx) => {
  const ns = `${ctx.db}.${collName(ctx)}`;
  assertWritable(ctx.node, ns);
  if (!ctx.node.engine.getCollection(ns)) throw new CommandError(ErrorCodes.NamespaceNotFound, 'ns not found');
  write(ctx, [{ op: 'c', ns: `${ctx.db}.$cmd`, o: { drop: collName(ctx) } }]);
  return { nIndexesWas: 1, ns };
};
