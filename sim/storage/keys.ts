import { BSON } from 'mongodb';
import type { Ts } from './timestamps.ts';

/**
 * Table keys are strings compared by JavaScript's `<` (UTF-16 code units). The encodings below are deterministic,
 * so equal `_id` values always land on the same key, and sortable, so a page covers a contiguous key range.
 */

/** Oplog key: the timestamp as 16 hex digits, so string order is timestamp order. */
export function tsKey(ts: Ts): string {
  return ts.toString(16).padStart(16, '0');
}

/** Inverse of {@link tsKey}. */
export function tsFromKey(key: string): Ts {
  return BigInt(`0x${key}`);
}

const f64 = new DataView(new ArrayBuffer(8));

/** IEEE-754 double as 16 hex digits whose string order is numeric order (sign-flipped, negatives inverted). */
function sortableDouble(value: number): string {
  f64.setFloat64(0, Object.is(value, -0) ? 0 : value);
  let hi = f64.getUint32(0);
  let lo = f64.getUint32(4);
  if (hi & 0x80000000) {
    hi = ~hi >>> 0;
    lo = ~lo >>> 0;
  } else {
    hi = (hi | 0x80000000) >>> 0;
  }
  return hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');
}

function bsonType(value: object): string | undefined {
  const t = (value as { _bsontype?: unknown })._bsontype;
  return typeof t === 'string' ? t : undefined;
}

/**
 * Key of an `_id` value. Numbers of every BSON width share one class ordered by value (MongoDB treats `1`, `1.0` and
 * `NumberLong(1)` as the same `_id`); int64 values beyond 2^53 carry their exact digits so they never collide.
 * Strings and ObjectIds have their own prefixes; anything else falls back to canonical Extended JSON.
 */
export function idKey(id: unknown): string {
  if (typeof id === 'number') return `n${sortableDouble(Number.isNaN(id) ? NaN : id)}`;
  if (typeof id === 'bigint') return numberKey(Number(id), id.toString());
  if (typeof id === 'string') return `s${id}`;
  if (typeof id === 'object' && id !== null) {
    const type = bsonType(id);
    if (type === 'Int32' || type === 'Double') return `n${sortableDouble((id as { value: number }).value)}`;
    if (type === 'Long') {
      const long = id as { toNumber(): number; toString(): string };
      return numberKey(long.toNumber(), long.toString());
    }
    if (type === 'ObjectId') return `o${(id as { toHexString(): string }).toHexString()}`;
  }
  if (id === undefined) throw new TypeError('document has no _id');
  return `x${BSON.EJSON.stringify({ v: id as BSON.Document }, { relaxed: false })}`;
}

function numberKey(approx: number, exact: string): string {
  const base = `n${sortableDouble(approx)}`;
  return Number.isSafeInteger(approx) ? base : `${base}~${exact}`;
}
