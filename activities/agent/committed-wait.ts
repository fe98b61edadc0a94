/**
 * Waiting, on the client's side, for a node's majority-committed snapshot to reach a timestamp before
 * `$backupCursorExtend` is sent. The extend itself waits for exactly that on the server, but its wait must never be
 * interrupted: early PSMDB builds treat a failed wait (maxTimeMS, killOp, a client gone) as fatal and abort mongod
 * (assertion 29096; docs/psmdb-behaviour.md section 4). So cutpoint sends the extend only once the wait is over — the
 * server then returns at once — and keeps the deadline and the cancellation here, where interrupting costs nothing.
 *
 * The node reports its committed snapshot in `replSetGetStatus` as `optimes.readConcernMajorityOpTime`: the majority
 * commit point as it knows it, never ahead of what it has applied, which is the point the extend waits for.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Document, MongoClient, Timestamp } from 'mongodb';
import { CutpointError } from '../../common/errors.ts';

/** How often the node is asked while it is behind. */
export const POLL_MS = 200;

/** The node's committed snapshot (`optimes.readConcernMajorityOpTime.ts`), or undefined when it reports none. */
export async function committedSnapshot(client: MongoClient): Promise<Timestamp | undefined> {
  const status = await client.db('admin').command({ replSetGetStatus: 1 });
  return ((status.optimes as Document | undefined)?.readConcernMajorityOpTime as { ts?: Timestamp } | undefined)?.ts;
}

/** Options of {@link waitForCommittedSnapshot}. */
export interface CommittedWaitOptions {
  /** The node, for messages. */
  node: string;
  /** Give up at this time (ms since the epoch) with NODE_BEHIND. */
  deadline: number;
  /** A cancellation ends the wait at once (throws the signal's reason). */
  signal: AbortSignal;
  /** Called after each look, with the snapshot seen (progress, heartbeats). */
  onPoll?: (snapshot: Timestamp | undefined) => void;
}

/** Resolves once `client`'s node has a committed snapshot at or past `to`. */
export async function waitForCommittedSnapshot(client: MongoClient, to: Timestamp, o: CommittedWaitOptions): Promise<void> {
  for (;;) {
    o.signal.throwIfAborted();
    const snapshot = await committedSnapshot(client);
    o.onPoll?.(snapshot);
    if (snapshot && snapshot.greaterThanOrEqual(to)) return;
    if (Date.now() >= o.deadline) {
      const at = snapshot ? `Timestamp(${snapshot.high}, ${snapshot.low})` : 'none reported';
      throw new CutpointError(
        'NODE_BEHIND',
        `${o.node}: its majority-committed point did not reach the common timestamp Timestamp(${to.high}, ${to.low}) in time (it is at ${at}): ` +
          'replication to this member is stalled or far behind; check its lag (rs.status()) or back up another member (--node)',
        { node: o.node },
      );
    }
    await delay(POLL_MS, undefined, { signal: o.signal }).catch(() => o.signal.throwIfAborted());
  }
}
