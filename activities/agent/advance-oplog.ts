/**
 * Getting an idle replica set to the common timestamp. `$backupCursorExtend` waits until the node's majority-committed
 * timestamp reaches it; a replica set that takes no writes only gets there with its periodic no-op write (every
 * `periodicNoopIntervalSecs`, 10 s by default), so an idle shard or config server would hold the whole backup for up to
 * ten seconds. A no-op note on its primary (`appendOplogNote`, a privilege of the `backup` role) gets it there at once.
 * The note is repeated every second while the extend waits: a primary whose clock has not seen the common timestamp
 * (no cluster-time gossip since) writes it at an earlier timestamp, but its clock follows the wall clock, so a note
 * written a second later is past it.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Document, MongoClient, Timestamp } from 'mongodb';
import type { MongoTarget } from '../../common/target.ts';
import { withClient } from '../../lib/mongo/client.ts';

/** Notes while the extend still waits. */
export const NOTE_EVERY_MS = 1000;

/** Options of {@link advanceOplogWhile}. */
export interface AdvanceOptions {
  target: MongoTarget;
  /** A direct client to the node being extended. */
  client: MongoClient;
  /** The note's content (visible in the oplog: say who wrote it and why). */
  data: Document;
  /** The timestamp the extend waits for: no note when the node has already written past it. */
  to: Timestamp;
  /** True once the extend returned: no more notes. */
  done: () => boolean;
}

/** Waits up to `ms`, returning early once `done()`. */
async function pause(ms: number, done: () => boolean): Promise<void> {
  for (let left = ms; left > 0 && !done(); left -= 100) await delay(Math.min(100, left));
}

/**
 * Writes no-op notes on the node's primary until `done()`. Rejects with the primary's error when a note is refused
 * (no privilege, no primary, not a replica set): the caller logs it and the extend waits for the periodic no-op.
 */
export async function advanceOplogWhile(o: AdvanceOptions): Promise<number> {
  const hello = await o.client.db('admin').command({ hello: 1 });
  // A node that has written past the timestamp only waits for its majority: a note would not help.
  const last = (hello.lastWrite as { opTime?: { ts?: Timestamp } } | undefined)?.opTime?.ts;
  if (o.done() || (last && last.greaterThanOrEqual(o.to))) return 0;
  let notes = 0;
  const write = async (c: MongoClient) => {
    while (!o.done()) {
      await c.db('admin').command({ appendOplogNote: 1, data: o.data });
      notes++;
      await pause(NOTE_EVERY_MS, o.done);
    }
  };
  if (hello.isWritablePrimary === true) await write(o.client);
  else if (typeof hello.primary === 'string') await withClient(o.target, { host: hello.primary, timeoutMs: 10_000 }, write);
  else throw new Error(`no primary known to ${String(hello.me ?? 'the node')}`);
  return notes;
}
