/**
 * Conversions between the workflow-safe timestamp of common/timestamp.ts (`{t, i}`: seconds and increment) and the
 * BSON Timestamp the driver and the server use. Node-only (the driver's `bson`).
 */
import { Timestamp } from 'mongodb';
import type { Ts } from '../common/timestamp.ts';

/** `{t, i}` as a BSON Timestamp. */
export function toBsonTimestamp(ts: Ts): Timestamp {
  return new Timestamp({ t: ts.t, i: ts.i });
}

/**
 * A BSON Timestamp as `{t, i}` (unsigned: `.low` would turn an increment of 2^31 or more negative); null for anything
 * that is not one (a missing field of a server reply).
 */
export function fromBsonTimestamp(value: unknown): Ts | null {
  return value instanceof Timestamp ? { t: value.t, i: value.i } : null;
}
