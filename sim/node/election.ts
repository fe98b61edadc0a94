/**
 * Step-down and elections of the in-process replica set (replset.ts), as mongod runs them (docs/psmdb-behaviour.md,
 * "Step-down and elections"). The simulator never elects on its own: only `replSetStepDown` and `replSetStepUp` hand
 * the primary role over, so a set keeps its fixed primary otherwise (a crashed primary comes back as primary).
 *
 * - A step-down interrupts writes at once (InterruptedDueToReplStateChange), waits up to `secondaryCatchUpPeriodSecs`
 *   for a majority of voters, one of them electable, to reach the primary's last applied entry (mongod's
 *   isSafeToStepDown), then makes the primary a secondary that cannot be elected for `stepDownSecs`. Open cursors
 *   survive (mongod closes no connection since 4.2; reads are not interrupted).
 * - An election is won by an electable member (priority > 0, not hidden, a vote, not frozen) whose oplog is as fresh
 *   as every up voter's (a voter refuses a candidate behind it), with a majority of voters up; highest priority first,
 *   then the freshest, then the lowest `_id`. The winner's term is the config's + 1, its `electionId` mongod's
 *   OID::fromTerm, and its first entry the "new primary" no-op; it commits nothing older than that entry's majority.
 * - Unlike mongod, no less fresh member is ever elected, so no rollback happens (ROLLBACK is not simulated).
 */
import { ObjectId, type Timestamp } from 'mongodb';
import { compareTs, ZERO_TS } from './clock.ts';

export interface StepDownOptions {
  stepDownSecs: number;
  catchUpSecs: number;
  force: boolean;
}

/** What an election needs to know of a candidate. */
export interface CandidateView {
  host: string;
  up: boolean;
  priority: number;
  hidden: boolean;
  votes: number;
  id: number;
  applied: Timestamp;
}

/** mongod's OID::fromTerm: 0x7fffffff, then zeros, then the term in the last 8 bytes (big-endian). */
export function electionIdOf(term: number): ObjectId {
  return new ObjectId(`7fffffff${term.toString(16).padStart(16, '0')}`);
}

export class Elections {
  /** A step-down waits for its successor to catch up: writes are interrupted meanwhile. */
  steppingDown = false;
  /** The primary stepped down: the next member that can win is elected. */
  pending = false;
  /** The first entry of the current primary's term (its "new primary" no-op): the commit point starts there. */
  termStart: Timestamp = ZERO_TS;
  /** Members that stepped down, by host: the time before which they cannot be elected. */
  private readonly frozenUntil = new Map<string, number>();

  freeze(host: string, secs: number): void {
    this.frozenUntil.set(host, Date.now() + secs * 1000);
  }

  /** Electable: up, priority above 0, not hidden, a voter, not frozen by a step-down. */
  eligible(c: CandidateView): boolean {
    return c.up && c.priority > 0 && !c.hidden && c.votes > 0 && (this.frozenUntil.get(c.host) ?? 0) <= Date.now();
  }

  /** Whether `c` would win now: eligible, a majority of voters up, none of them fresher than it. */
  canWin(c: CandidateView, voters: { up: boolean; applied: Timestamp }[]): boolean {
    if (!this.eligible(c)) return false;
    const up = voters.filter((v) => v.up);
    if (up.length < Math.floor(voters.length / 2) + 1) return false;
    return up.every((v) => compareTs(v.applied, c.applied) <= 0);
  }

  /** The winner among `candidates`: highest priority, then freshest, then lowest `_id`. */
  choose(candidates: CandidateView[], voters: { up: boolean; applied: Timestamp }[]): string | undefined {
    return candidates
      .filter((c) => this.canWin(c, voters))
      .sort((a, b) => b.priority - a.priority || compareTs(b.applied, a.applied) || a.id - b.id)[0]?.host;
  }
}
