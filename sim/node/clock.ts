/**
 * The cluster-wide logical clock: MongoDB `Timestamp(seconds, increment)` values, strictly increasing, seconds from
 * the wall clock. One instance serves every node of a simulated cluster (the sim's stand-in for `$clusterTime`
 * gossip), so a cross-shard commit can take one timestamp for both shards.
 */
import { Timestamp } from 'mongodb';

export class ClusterClock {
  private secs = 0;
  private inc = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** A new timestamp, after every one issued or observed before. */
  next(): Timestamp {
    const wall = Math.floor(this.now() / 1000);
    if (wall > this.secs) {
      this.secs = wall;
      this.inc = 1;
    } else {
      this.inc += 1;
    }
    return new Timestamp({ t: this.secs, i: this.inc });
  }

  /** The newest timestamp issued or observed (Timestamp(0,0) before any). */
  current(): Timestamp {
    return new Timestamp({ t: this.secs, i: this.inc });
  }

  /** Moves the clock past `ts` (a restarted node's top of oplog, a timestamp from another process). */
  observe(ts: Timestamp): void {
    const t = ts.high;
    const i = ts.low;
    if (t > this.secs || (t === this.secs && i > this.inc)) {
      this.secs = t;
      this.inc = i;
    }
  }
}

/** Compares timestamps: negative, zero or positive. */
export function compareTs(a: Timestamp, b: Timestamp): number {
  return a.high !== b.high ? (a.high < b.high ? -1 : 1) : a.low === b.low ? 0 : a.low < b.low ? -1 : 1;
}

/** The larger of two timestamps. */
export function maxTs(a: Timestamp, b: Timestamp): Timestamp {
  return compareTs(a, b) >= 0 ? a : b;
}

/** The smaller of two timestamps. */
export function minTs(a: Timestamp, b: Timestamp): Timestamp {
  return compareTs(a, b) <= 0 ? a : b;
}

export const ZERO_TS = new Timestamp({ t: 0, i: 0 });
