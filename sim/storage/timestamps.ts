import { Timestamp } from 'mongodb';

/**
 * Timestamps travel through the engine as unsigned 64-bit bigints (`seconds << 32 | increment`), which compare with
 * `<` and fit in a Map key; the public API speaks MongoDB's `Timestamp`.
 */
export type Ts = bigint;

/** `Timestamp` → engine bigint. */
export function toTs(ts: Timestamp): Ts {
  return (BigInt(ts.t) << 32n) | BigInt(ts.i);
}

/** Engine bigint → `Timestamp`. */
export function fromTs(ts: Ts): Timestamp {
  return new Timestamp({ t: Number(ts >> 32n), i: Number(ts & 0xffffffffn) });
}

/** `Timestamp | null` → bigint or null, for optional fields. */
export function toTsOrNull(ts: Timestamp | null | undefined): Ts | null {
  return ts == null ? null : toTs(ts);
}

/** `Timestamp(seconds, increment)`, the shape mongod prints in logs and errors. */
export function formatTs(ts: Ts | null): string {
  if (ts === null) return 'none';
  return `Timestamp(${ts >> 32n}, ${ts & 0xffffffffn})`;
}

/** True when `value` is a BSON Timestamp (an instance check would miss copies from another bson build). */
export function isTimestamp(value: unknown): value is Timestamp {
  return typeof value === 'object' && value !== null && (value as { _bsontype?: unknown })._bsontype === 'Timestamp';
}
