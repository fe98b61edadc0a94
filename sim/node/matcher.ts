/**
 * The small subset of MongoDB's query and update language the simulator understands: enough for the bank
 * workload, the restore sequence's `local` collections and a demo. Anything else is refused with the error a
 * real server gives for an unknown operator, never silently ignored.
 */
import type { Document } from 'mongodb';
import { BSON } from 'mongodb';
import { CommandError } from '../wire/index.ts';

type Comparable = number | string | bigint | Date | boolean | null;

function comparable(v: unknown): Comparable | undefined {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  if (v instanceof Date) return v;
  const bt = (v as { _bsontype?: string })._bsontype;
  if (bt === 'Long' || bt === 'Int32' || bt === 'Double') return Number(v as unknown as number);
  if (bt === 'Timestamp') return (v as unknown as { toString(): string }).toString().padStart(20, '0');
  if (bt === 'ObjectId') return (v as { toHexString(): string }).toHexString();
  return undefined;
}

/** Deep equality by BSON bytes (type-sensitive like MongoDB, except numbers compare by value). */
export function valuesEqual(a: unknown, b: unknown): boolean {
  const ca = comparable(a);
  const cb = comparable(b);
  if (ca !== undefined && cb !== undefined) {
    if (ca instanceof Date && cb instanceof Date) return ca.getTime() === cb.getTime();
    return ca === cb;
  }
  return Buffer.from(BSON.serialize({ v: a })).equals(Buffer.from(BSON.serialize({ v: b })));
}

function compare(a: unknown, b: unknown): number | undefined {
  const ca = comparable(a);
  const cb = comparable(b);
  if (ca === undefined || cb === undefined || ca === null || cb === null) return undefined;
  const x = ca instanceof Date ? ca.getTime() : ca;
  const y = cb instanceof Date ? cb.getTime() : cb;
  if (typeof x !== typeof y) return undefined;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The value at a dotted path. */
export function getPath(doc: Document, path: string): unknown {
  let cur: unknown = doc;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Document)[part];
  }
  return cur;
}

function matchOperator(value: unknown, op: string, arg: unknown): boolean {
  switch (op) {
    case '$eq':
      return valuesEqual(value, arg);
    case '$ne':
      return !valuesEqual(value, arg);
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      const c = compare(value, arg);
      if (c === undefined) return false;
      return op === '$gt' ? c > 0 : op === '$gte' ? c >= 0 : op === '$lt' ? c < 0 : c <= 0;
    }
    case '$in':
      if (!Array.isArray(arg)) throw new CommandError(2, '$in needs an array');
      return arg.some((a) => valuesEqual(value, a));
    case '$nin':
      if (!Array.isArray(arg)) throw new CommandError(2, '$nin needs an array');
      return !arg.some((a) => valuesEqual(value, a));
    case '$exists':
      return (value !== undefined) === Boolean(arg);
    default:
      throw new CommandError(2, `unknown operator: ${op}`);
  }
}

/** True when `doc` matches `filter` (field equality, comparison operators, $and/$or). */
export function matches(doc: Document, filter: Document | undefined): boolean {
  if (!filter) return true;
  for (const [key, cond] of Object.entries(filter)) {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(cond)) throw new CommandError(2, `${key} must be an array`);
      const results = (cond as Document[]).map((c) => matches(doc, c));
      if (key === '$and' ? !results.every(Boolean) : !results.some(Boolean)) return false;
      continue;
    }
    if (key.startsWith('$')) throw new CommandError(2, `unknown top level operator: ${key}`);
    const value = getPath(doc, key);
    const isOps =
      cond !== null && typeof cond === 'object' && !Array.isArray(cond) && !(cond as { _bsontype?: string })._bsontype &&
      !(cond instanceof Date) && Object.keys(cond).length > 0 && Object.keys(cond).every((k) => k.startsWith('$'));
    if (isOps) {
      for (const [op, arg] of Object.entries(cond as Document)) if (!matchOperator(value, op, arg)) return false;
    } else if (!valuesEqual(value, cond)) {
      return false;
    }
  }
  return true;
}

/** True for an update document made of operators (`$set`...) rather than a replacement. */
export function isOperatorUpdate(update: Document): boolean {
  const keys = Object.keys(update);
  return keys.length > 0 && keys.every((k) => k.startsWith('$'));
}

function setPath(doc: Document, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur: Document = doc;
  for (const part of parts.slice(0, -1)) {
    if (cur[part] === null || typeof cur[part] !== 'object') cur[part] = {};
    cur = cur[part] as Document;
  }
  cur[parts[parts.length - 1]!] = value;
}

function unsetPath(doc: Document, path: string): void {
  const parts = path.split('.');
  let cur: Document | undefined = doc;
  for (const part of parts.slice(0, -1)) cur = cur?.[part] as Document | undefined;
  if (cur) delete cur[parts[parts.length - 1]!];
}

/** The post-image of `doc` after `update` (operators $set/$unset/$inc, or a replacement keeping `_id`). */
export function applyUpdate(doc: Document, update: Document): Document {
  if (!isOperatorUpdate(update)) {
    if (Object.keys(update).some((k) => k.startsWith('$'))) {
      throw new CommandError(9, 'the update document mixes operators and fields');
    }
    if (update._id !== undefined && doc._id !== undefined && !valuesEqual(update._id, doc._id)) {
      throw new CommandError(66, `the (immutable) field '_id' was found to have been altered`);
    }
    return { _id: doc._id, ...update };
  }
  const out = structuredClone(doc);
  for (const [op, fields] of Object.entries(update)) {
    for (const [path, arg] of Object.entries(fields as Document)) {
      if (path === '_id' && op !== '$setOnInsert') throw new CommandError(66, `Performing an update on the path '_id' would modify the immutable field '_id'`);
      switch (op) {
        case '$set':
          setPath(out, path, arg);
          break;
        case '$unset':
          unsetPath(out, path);
          break;
        case '$inc': {
          const cur = getPath(out, path);
          const base = cur === undefined ? 0 : Number(cur);
          if (typeof cur !== 'number' && cur !== undefined && !(cur as { _bsontype?: string })._bsontype) {
            throw new CommandError(14, `Cannot apply $inc to a value of non-numeric type`);
          }
          setPath(out, path, base + Number(arg));
          break;
        }
        case '$setOnInsert':
          break;
        default:
          throw new CommandError(9, `Unknown modifier: ${op}`);
      }
    }
  }
  return out;
}

/** Applies `$setOnInsert` and the equality fields of the filter for an upsert's new document. */
export function upsertSeed(filter: Document, update: Document): Document {
  const seed: Document = {};
  for (const [k, v] of Object.entries(filter)) if (!k.startsWith('$') && (typeof v !== 'object' || v === null || (v as { _bsontype?: string })._bsontype || !Object.keys(v).every((x) => x.startsWith('$')))) setPath(seed, k, v);
  if (isOperatorUpdate(update) && update.$setOnInsert) for (const [k, v] of Object.entries(update.$setOnInsert as Document)) setPath(seed, k, v);
  return seed;
}
