/**
 * `applyOps` on a standalone or a primary, as mongod 7.0 runs it (mongodb/mongo src/mongo/db/repl/apply_ops.cpp,
 * apply_ops_command_info.cpp and oplog.cpp applyOperation_inlock in kApplyOpsCmd mode; docs/simulator.md, "applyOps"):
 * - the command: `prepare` (2), `partialTxn` (31056) and `count` (31240) refused; a secondary refuses it
 *   (NotWritablePrimary); `dropDatabase` only alone (6275900);
 * - each operation, in order and on its own (no atomic mode: each is its own oplog entry on a primary): `n` skipped and
 *   not counted; a non-command with an invalid `ns` fails the command (73); then the entry is parsed (IDL errors 40414
 *   missing, 40415 unknown field, 2 bad `op`), an insert or update on a missing collection is 26, a delete of one is a
 *   success; an insert of an existing `_id` replaces it (the upsert of applyOps); an update of a missing document is
 *   77 unless `b: true`; a `ui` naming another collection is 3318200. An exception stops the command with
 *   `applied` (counting the failed operation), `results` and the error; a returned error marks its result false and
 *   the command ends with 8 "applyOps had one or more errors applying ops";
 * - commands: `create`, `drop` and nested `applyOps` (checked as the command is); others are refused naming the
 *   simulator.
 */
import type { Document } from 'mongodb';
import { BSON, UUID } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import { applyUpdate, isOperatorUpdate } from '../matcher.ts';
import type { CommandContext, CommandImpl } from '../types.ts';
import { applyWrites } from '../writes.ts';

/** mongod's UpdateOperationFailed. */
const UPDATE_OPERATION_FAILED = 77;

/** Fields an operation may carry (oplog_entry.idl's OplogEntryBase and DurableReplOperation, 7.0); others are 40415. */
const KNOWN_FIELDS = new Set([
  'op', 'ns', 'ui', 'o', 'o2', 'b', 'ts', 't', 'v', 'wall', 'tid', 'fromMigrate', '_id', 'lsid', 'txnNumber', 'stmtId',
  'prevOpTime', 'preImageOpTime', 'postImageOpTime', 'needsRetryImage', 'destinedRecipient', 'recordId',
  'checkExistenceForDiffInsert', 'versionContext', 'multiOpType',
]);
const OP_TYPES = new Set(['i', 'u', 'd', 'c', 'n']);

function redact(op: Document): string {
  return BSON.EJSON.stringify(op, { relaxed: true });
}

function bsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'double';
  if (typeof v === 'boolean') return 'bool';
  return (v as { _bsontype?: string })?._bsontype?.toLowerCase() ?? 'object';
}

/** A namespace mongod accepts for a CRUD operation: `db.coll`, both parts non-empty, no `$` in the collection. */
function validNs(ns: string): boolean {
  const dot = ns.indexOf('.');
  return dot > 0 && dot < ns.length - 1 && !ns.slice(dot + 1).includes('$');
}

/** OplogEntry::parse of one operation (ts and wall are filled in by applyOps, so never missing). */
function parseOperation(op: Document): void {
  for (const k of Object.keys(op)) {
    if (!KNOWN_FIELDS.has(k)) throw new CommandError(ErrorCodes.IDLUnknownField, `BSON field 'OplogEntryBase.${k}' is an unknown field.`);
  }
  for (const k of ['op', 'ns', 'o']) {
    if (op[k] === undefined) throw new CommandError(ErrorCodes.IDLFailedToParse, `BSON field 'OplogEntryBase.${k}' is missing but a required field`);
  }
  if (!OP_TYPES.has(op.op as string)) {
    throw new CommandError(ErrorCodes.BadValue, `Enumeration value '${String(op.op)}' for field 'OplogEntryBase.op' is not a valid value.`);
  }
  if (typeof op.o !== 'object' || op.o === null) {
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field 'OplogEntryBase.o' is the wrong type '${bsonTypeName(op.o)}', expected type 'object'`);
  }
}

/** A `$v: 2` delta (`u` set, `i` insert, `d` delete, `s<field>` a nested object's delta), as oplog updates carry it. */
function applyDiff(doc: Document, diff: Document): Document {
  const out: Document = { ...doc };
  for (const [k, v] of Object.entries(diff)) {
    if (k === 'u' || k === 'i') Object.assign(out, v as Document);
    else if (k === 'd') for (const f of Object.keys(v as Document)) delete out[f];
    else if (k.startsWith('s') && k.length > 1) {
      const field = k.slice(1);
      const sub = v as Document;
      if (sub.a === true) throw new CommandError(ErrorCodes.CommandNotSupported, `the simulator does not apply array deltas (field '${field}')`);
      out[field] = applyDiff((out[field] as Document | undefined) ?? {}, sub);
    } else if (k !== 'a') throw new CommandError(ErrorCodes.BadValue, `Unrecognized diff field '${k}'`);
  }
  return out;
}

/** The post-image of an oplog update's `o`: a replacement, operators, or a `$v: 2` delta. */
function updated(doc: Document, o: Document): Document {
  if (o.$v !== undefined && Number(o.$v) === 2 && typeof o.diff === 'object' && o.diff !== null) return applyDiff(doc, o.diff as Document);
  return applyUpdate(doc, o);
}

interface Outcome {
  applied: number;
  results: boolean[];
}

/** Checks of the applyOps command object (the top-level command or a nested applyOps entry). */
function checkCommand(command: Document): Document[] {
  const ops = command.applyOps as unknown;
  if (!Array.isArray(ops)) {
    throw new CommandError(ErrorCodes.TypeMismatch, `BSON field 'applyOps.applyOps' is the wrong type '${bsonTypeName(ops)}', expected type 'array'`);
  }
  for (const op of ops) {
    if (typeof op !== 'object' || op === null || Array.isArray(op) || (op as { _bsontype?: string })._bsontype) {
      throw new CommandError(ErrorCodes.TypeMismatch, `BSON field 'applyOps.applyOps' is the wrong type '${bsonTypeName(op)}', expected type 'object'`);
    }
  }
  if (command.prepare !== undefined && command.prepare !== false) throw new CommandError(ErrorCodes.BadValue, "applyOps command can't have 'prepare' field");
  if (command.partialTxn !== undefined && command.partialTxn !== false) throw new CommandError(31056, "applyOps command can't have 'partialTxn' field.");
  if (command.count !== undefined) throw new CommandError(31240, "applyOps command can't have 'count' field.");
  return ops as Document[];
}

function applyCommandOp(ctx: CommandContext, op: Document): void {
  const ns = op.ns as string;
  const db = ns.slice(0, ns.indexOf('.'));
  const o = op.o as Document;
  const name = Object.keys(o)[0];
  switch (name) {
    case 'create': {
      const target = `${db}.${String(o.create)}`;
      if (ctx.node.engine.getCollection(target)) throw new CommandError(ErrorCodes.NamespaceExists, `Collection ${target} already exists.`);
      applyWrites(ctx.node, [{ op: 'c', ns: `${db}.$cmd`, ui: (op.ui as UUID | undefined) ?? new UUID(), o }]);
      return;
    }
    case 'drop': {
      const target = `${db}.${String(o.drop)}`;
      if (!ctx.node.engine.getCollection(target)) throw new CommandError(ErrorCodes.NamespaceNotFound, 'ns not found');
      applyWrites(ctx.node, [{ op: 'c', ns: `${db}.$cmd`, o: { drop: o.drop } }]);
      return;
    }
    case 'applyOps':
      run(ctx, checkCommand(o));
      return;
    default:
      throw new CommandError(ErrorCodes.CommandNotSupported, `the simulator cannot apply the command '${String(name)}' with applyOps`);
  }
}

/** One CRUD operation; false for a returned (not thrown) error. */
function applyCrud(ctx: CommandContext, op: Document): boolean {
  const { node } = ctx;
  const ns = op.ns as string;
  const o = op.o as Document;
  if (op.ui !== undefined) {
    const owner = node.engine.listCollections().find((c) => c.uuid.equals(op.ui as UUID));
    if (owner?.ns !== ns) {
      const errmsg = `Namespace '${ns}' and UUID '${String(op.ui)}' point to different collections`;
      ctx.node.log.info({ code: 3318200, errmsg }, 'applyOps error applying');
      return false;
    }
  }
  const exists = node.engine.getCollection(ns) !== undefined;
  if (!exists) {
    if (op.op === 'd') return true;
    throw new CommandError(ErrorCodes.NamespaceNotFound, `cannot apply insert or update operation on a non-existent namespace ${ns}: ${redact(op)}`);
  }
  switch (op.op) {
    case 'i': {
      if (o._id === undefined) throw new CommandError(ErrorCodes.NoSuchKey, `Failed to apply insert due to missing _id: ${redact(op)}`);
      const existing = node.engine.findById(ns, o._id);
      applyWrites(node, [existing === undefined ? { op: 'i', ns, o } : { op: 'u', ns, o, o2: { _id: o._id } }]);
      return true;
    }
    case 'u': {
      const id = (op.o2 as Document | undefined)?._id;
      if (id === undefined) throw new CommandError(ErrorCodes.NoSuchKey, `Failed to apply update due to missing _id: ${redact(op)}`);
      const doc = node.engine.findById(ns, id);
      if (doc === undefined && op.b !== true) {
        // A returned status (mongod logs it, id 21064): only the operation's result says it failed.
        const errmsg = isOperatorUpdate(o) ? `couldn't find doc: ${redact(op)}` : `update of non-mod failed: ${redact(op)}`;
        ctx.node.log.info({ code: UPDATE_OPERATION_FAILED, errmsg }, 'applyOps error applying');
        return false;
      }
      const after = updated(doc ?? { _id: id }, o);
      applyWrites(node, [{ op: 'u', ns, o: after._id === undefined ? { _id: id, ...after } : after, o2: { _id: id } }]);
      return true;
    }
    case 'd': {
      if (o._id === undefined) throw new CommandError(ErrorCodes.NoSuchKey, `Failed to apply delete due to missing _id: ${redact(op)}`);
      if (node.engine.findById(ns, o._id) !== undefined) applyWrites(node, [{ op: 'd', ns, o: { _id: o._id } }]);
      return true;
    }
    default:
      return true;
  }
}

/** Applies the operations of one applyOps object in order (apply_ops.cpp _applyOps). */
function run(ctx: CommandContext, ops: Document[]): Outcome {
  const out: Outcome = { applied: 0, results: [] };
  let errors = 0;
  for (const op of ops) {
    if (op.op === 'n') continue;
    if (typeof op.ns !== 'string') {
      throw new CommandError(13111, op.ns === undefined ? 'field not found, expected type 2' : `wrong type for field (ns) ${bsonTypeName(op.ns)} != string`);
    }
    if (op.op !== 'c' && !validNs(op.ns)) throw new CommandError(ErrorCodes.InvalidNamespace, `invalid ns: ${op.ns}`);
    let ok: boolean;
    try {
      parseOperation(op);
      if (op.op === 'c') {
        applyCommandOp(ctx, op);
        ok = true;
      } else {
        ok = applyCrud(ctx, op);
      }
    } catch (e) {
      if (!(e instanceof CommandError) || e.code === ErrorCodes.NotWritablePrimary) throw e;
      throw new CommandError(e.code, e.message, { codeName: e.codeName, extra: { applied: out.applied + 1, results: [...out.results, false] } });
    }
    out.results.push(ok);
    if (!ok) errors++;
    out.applied++;
  }
  if (errors > 0) {
    throw new CommandError(ErrorCodes.UnknownError, 'applyOps had one or more errors applying ops', { extra: { applied: out.applied, results: out.results } });
  }
  return out;
}

export const applyOps: CommandImpl = (ctx) => {
  const { node, db, command } = ctx;
  const ops = checkCommand(command);
  if (node.rs && !node.writable && db !== 'local') {
    throw new CommandError(ErrorCodes.NotWritablePrimary, `Not primary while applying ops to database ${db}`);
  }
  const dropsDatabase = ops.some((op) => op.op === 'c' && typeof op.o === 'object' && op.o !== null && Object.keys(op.o as Document)[0] === 'dropDatabase');
  if (dropsDatabase && ops.length !== 1) throw new CommandError(6275900, 'dropDatabase in an applyOps must be the only entry');
  const { applied, results } = run(ctx, ops);
  return { applied, results };
};
