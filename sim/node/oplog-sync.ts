/**
 * Steady-state replication from a primary in another process, for one local member (mongod's BackgroundSync and
 * OplogFetcher, polling instead of an awaitData cursor): it asks its sync source for
 * `local.oplog.rs {ts: {$gte: lastApplied}}` over the wire, checks that the first entry returned is its own last one
 * (the two oplogs overlap), and applies the rest through the replica set's `applyFetched` (replset.ts), the path in-process
 * secondaries take. Without overlap the member cannot catch up: when the source's oldest entry is newer than its last
 * one it is "too stale" and, as mongod, enters maintenance mode (RECOVERING) until a source overlaps again; when the
 * source holds older entries but not its last one the member diverged, which would need a rollback (not simulated),
 * so it goes RECOVERING too rather than applying on top of a history that is not the primary's.
 */
import type { Document, Timestamp } from 'mongodb';
import type { Logger } from 'pino';
import type { OplogEntry } from '../storage/index.ts';
import { compareTs, ZERO_TS } from './clock.ts';
import type { MemberState } from './member-state.ts';
import type { RemoteMember } from './remote-member.ts';
import type { ReplSetConfig } from './replset-config.ts';
import type { SimNode } from './types.ts';

/** Between two fetches that found nothing new (a fetch that filled its batch is followed by another at once). */
const POLL_MS = 100;
/** Entries per fetch. */
const BATCH = 1000;

/** mongod's error when no sync source overlaps (bgsync.cpp, log id 21126). */
export const TOO_STALE_MESSAGE = 'Too stale to catch up. Entering maintenance mode. See http://dochub.mongodb.org/core/resyncingaverystalereplicasetmember';
/** replSetGetStatus `infoMessage` of a member that has no usable sync source. */
export const NO_SYNC_SOURCE_MESSAGE = 'Could not find member to sync from';

/** What a fetcher needs of its replica set (replset.ts implements it). */
export interface SyncOwner {
  readonly config: ReplSetConfig;
  /** The local member at `host`, if any. */
  localNode(host: string): SimNode | undefined;
  /** The primary, if it is up in this process. */
  primary(): SimNode | undefined;
  /** A primary in another process that answers heartbeats. */
  syncSource(): RemoteMember | undefined;
  /** Last applied timestamp of a member. */
  applied(node: SimNode): Timestamp;
  /** Applies fetched entries on a secondary; returns how many it applied. */
  applyFetched(node: SimNode, entries: OplogEntry[]): number;
  /** Wakes streaming `hello`s of every member. */
  topologyChanged(): void;
}

export class OplogSync {
  /** Why this member does not sync (replSetGetStatus `infoMessage`), undefined while it does. */
  infoMessage: string | undefined;
  /** The member it fetches from, once it found one. */
  source: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** In maintenance mode: entered on no overlap, left when a fetch overlaps again. */
  private noCommonPoint = false;
  private warnedEmpty = false;

  constructor(
    private readonly rs: SyncOwner,
    /** The local member's host:port (a restarted member is a new SimNode at the same address). */
    readonly address: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.schedule(0);
  }

  /** Stops fetching; waits for a fetch in flight to end (it fails once the replica set closes the connections). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.step()
        .catch((e: unknown) => {
          if (!this.stopped) this.log.warn({ err: (e as Error).message, source: this.source }, 'oplog fetch failed');
          return false;
        })
        .then((more) => {
          this.running = undefined;
          this.schedule(more ? 0 : POLL_MS);
        });
    }, ms);
    this.timer.unref();
  }

  /** One fetch and apply; true when there is probably more to fetch at once. */
  private async step(): Promise<boolean> {
    const node = this.rs.localNode(this.address);
    // A local primary means in-process replication (ReplicaSet.tick) is the way; a primary never syncs.
    if (!node?.up || this.rs.primary() || node.state === 'PRIMARY' || node.state === 'REMOVED') return false;
    const source = this.rs.syncSource();
    if (!source) return false;
    this.source = source.host;
    const last = this.rs.applied(node);
    if (compareTs(last, ZERO_TS) === 0) {
      // An empty oplog means an initial sync (clone every database), which the simulator does not do.
      if (!this.warnedEmpty) this.log.error({ source: source.host }, 'this member has no oplog and needs an initial sync, which the simulator does not simulate');
      this.warnedEmpty = true;
      this.enter(node, 'STARTUP2', 'initial sync is not simulated');
      return false;
    }
    const oplog = source.client.db('local').collection('oplog.rs');
    const batch = (await oplog.find({ ts: { $gte: last } }, { batchSize: BATCH, limit: BATCH }).toArray()) as unknown as OplogEntry[];
    if (this.stopped || !node.up) return false;
    const first = batch[0];
    if (!first || compareTs(first.ts, last) !== 0) {
      await this.lostCommonPoint(node, source, last);
      return false;
    }
    if (this.noCommonPoint) {
      this.log.info({ source: source.host }, `No longer too stale. Able to sync from ${source.host}`);
      this.noCommonPoint = false;
      this.enter(node, 'SECONDARY', undefined);
    }
    const entries = batch.slice(1);
    const applied = this.rs.applyFetched(node, entries);
    return batch.length === BATCH && applied === entries.length;
  }

  /** The source does not hold our last entry: too stale (its oldest is newer) or diverged. Either way, RECOVERING. */
  private async lostCommonPoint(node: SimNode, source: RemoteMember, last: Timestamp): Promise<void> {
    const [oldest] = (await source.client.db('local').collection('oplog.rs').find({}, { limit: 1 }).toArray()) as Document[];
    if (this.noCommonPoint) return;
    this.noCommonPoint = true;
    const earliest = oldest?.ts as Timestamp | undefined;
    const t = this.rs.config.term;
    if (earliest && compareTs(earliest, last) > 0) {
      this.log.error({ id: 21126, lastOpTimeFetched: { ts: last.toString(), t }, earliestOpTimeSeen: { ts: earliest.toString(), t } }, TOO_STALE_MESSAGE);
    } else {
      this.log.error(
        { lastOpTimeFetched: last.toString(), source: source.host },
        "this member's last oplog entry is not in its sync source's oplog (the histories diverged); rollback is not simulated",
      );
    }
    this.enter(node, 'RECOVERING', NO_SYNC_SOURCE_MESSAGE);
  }

  private enter(node: SimNode, state: MemberState, info: string | undefined): void {
    this.infoMessage = info;
    if (node.state === state) return;
    node.state = state;
    this.rs.topologyChanged();
  }
}
