/**
 * Continuous oplog capture of one replica set, run by the agent of the member the workflow chose
 * (workflows/pitr/pitr-capture.ts): a tailable awaitData `find` on `local.oplog.rs` with readConcern majority, from
 * the last sealed point (`ts >= last`), sealing what it read every `sealEveryMs` into the repository
 * (repository/oplog-segments.ts) until its lease ends or the workflow cancels it.
 *
 * No gap, no duplicate, whatever member resumes: only majority-committed entries are read (a failover never rolls
 * them back), each segment is sealed before the next is started, and a resumed tail must return the entry at the last
 * sealed timestamp first (it is dropped; it proves nothing lies between). When the first entry is later, the oplog
 * rolled past that point: the gap is recorded in the segment (and logged) and capture goes on from the oldest entry
 * it can read. Entries are kept as the server sent them (raw BSON), so a replay applies exactly what the primary wrote.
 */
import { activityInfo, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import type { Document, MongoClient , Long} from 'mongodb';
import { BSON, MongoServerError } from 'mongodb';
import { CutpointError } from '../../common/errors.ts';
import type { CaptureHeartbeat, CaptureProgress, CaptureResult } from '../../common/pitr-types.ts';
import type { MongoTarget } from '../../common/target.ts';
import { compareTs, formatTs, type Ts } from '../../common/timestamp.ts';
import { fromBsonTimestamp, toBsonTimestamp } from '../../lib/bson-timestamp.ts';
import { withClient } from '../../lib/mongo/client.ts';
import { acquireLock } from '../../repository/lock.ts';
import { OplogSegments } from '../../repository/oplog-segments.ts';
import type { Repository } from '../../repository/repository.ts';

export interface CaptureInput {
  target: MongoTarget;
  repo: string;
  cluster: string;
  replicaSet: string;
  sealEveryMs: number;
  /** How long this activity captures before it returns (the workflow then starts the next one). */
  leaseMs: number;
}

export interface CaptureContext {
  /** host:port of the mongod this agent serves. */
  mongod: string;
  repository: (repo: string) => Repository;
  /**
   * Tells the capture's workflow how far it sealed (workers/agent.ts signals it), at most every
   * {@link PROGRESS_EVERY_MS}, so the lag it shows is seconds old rather than a lease old. A failure is only logged.
   */
  progress?: (workflowId: string, p: CaptureProgress) => Promise<void>;
}

/**
 * The shortest interval between two progress signals of one capture. Each costs its workflow's history about four
 * events (the signal and a workflow task), five when the lag in whole seconds changed (the search attribute's upsert):
 * some 3,000 to 3,600 events per hour per replica set, which continue-as-new bounds (workflows/pitr/pitr-capture.ts).
 */
export const PROGRESS_EVERY_MS = 5_000;

/** The longest single wait of a getMore: the activity heartbeats between them. */
const MAX_WAIT_MS = 1_000;
/** The repository lock a seal holds (shared: captures and backups run side by side; prune's exclusive lock waits). */
export const CAPTURE_LOCK = 'pitr';
/** Server codes after which the tail is re-opened from the last entry read: the cursor is gone, the member is not. */
const REOPEN_CODES = new Set([43 /* CursorNotFound */, 136 /* CappedPositionLost */, 175 /* QueryPlanKilled */, 237 /* CursorKilled */]);

const RAW = { fieldsAsRaw: { firstBatch: true, nextBatch: true }, promoteValues: false } as const;

/** The `ts` of a raw oplog entry. */
export function entryTs(raw: Buffer): Ts {
  const ts = fromBsonTimestamp(BSON.deserialize(raw, { promoteValues: false }).ts);
  if (!ts) throw new CutpointError('INTERNAL', 'an oplog entry without a ts');
  return ts;
}

/** The newest majority-committed optime the member knows (hello.lastWrite.majorityOpTime). */
function majorityTs(hello: Document): Ts | null {
  return fromBsonTimestamp((hello.lastWrite as Document | undefined)?.majorityOpTime?.ts);
}

export function oplogCaptureActivities(ctx: CaptureContext) {
  const node = ctx.mongod;
  return {
    async captureOplog(input: CaptureInput): Promise<CaptureResult> {
      const repo = ctx.repository(input.repo);
      await repo.initWritable();
      const segments = new OplogSegments(repo);
      const signal = cancellationSignal();
      const workflowId = activityInfo().workflowExecution?.workflowId;
      const { progress } = ctx;
      const report = progress && workflowId
        ? (p: CaptureProgress) => progress(workflowId, p).catch((e: unknown) => log.warn('capture progress signal failed', { replicaSet: input.replicaSet, error: String(e) }))
        : undefined;
      return withClient(input.target, { host: node }, async (client) => capture(client, repo, segments, input, signal, report));
    },
  };

  async function capture(
    client: MongoClient,
    repo: Repository,
    segments: OplogSegments,
    input: CaptureInput,
    signal: AbortSignal,
    report?: (p: CaptureProgress) => Promise<void>,
  ): Promise<CaptureResult> {
    const { cluster, replicaSet } = input;
    const admin = client.db('admin');
    const local = client.db('local');
    const hello = await admin.command({ hello: 1 });
    if (hello.setName !== replicaSet) {
      throw new CutpointError('NO_ELIGIBLE_NODE', `${node} is not a member of replica set ${replicaSet} (hello.setName ${JSON.stringify(hello.setName)})`);
    }
    if (!hello.isWritablePrimary && !hello.secondary) throw new CutpointError('NO_ELIGIBLE_NODE', `${node} is neither primary nor secondary: it cannot serve the capture of ${replicaSet}`);

    const resumed = await segments.last(cluster, replicaSet);
    /** The last sealed entry: a resumed tail must start exactly there. */
    let sealed: Ts | null = resumed?.last ?? null;
    const result: CaptureResult = { capturedTo: sealed, lagSecs: 0, node, segments: 0, entries: 0 };
    let pending: Buffer[] = [];
    let pendingFirst: Ts | null = null;
    let pendingLast: Ts | null = null;
    let pendingGap: { from: Ts; to: Ts } | undefined;
    /** The last progress signalled: when, and what it said. */
    let reported = { at: 0, capturedTo: sealed, lagSecs: -1 };

    const seal = async (): Promise<void> => {
      const lag = majorityTs(await admin.command({ hello: 1 }));
      if (pending.length) {
        let release: (() => Promise<void>) | undefined;
        try {
          release = await acquireLock(repo.storage, CAPTURE_LOCK, { kind: 'shared' });
        } catch (e) {
          if (e instanceof CutpointError && e.code === 'REPO_LOCKED') {
            // A prune holds the repository: keep the entries and try at the next seal (no gap, only lag).
            log.info('oplog seal deferred: repository locked', { replicaSet, error: e.message });
            return;
          }
          throw e;
        }
        try {
          // Fencing: the newest segment must still be this capture's last. Another capture of the replica set (an
          // attempt the workflow gave up on, on an agent that was only slow) may have sealed since: this one stops
          // rather than write a second, overlapping chain; the workflow resumes from the newest segment.
          const newest = (await segments.last(cluster, replicaSet))?.last ?? null;
          if ((newest === null) !== (sealed === null) || (newest && sealed && compareTs(newest, sealed) !== 0)) {
            throw new CutpointError(
              'CAPTURE_SUPERSEDED',
              `replica set ${replicaSet}: another capture sealed the oplog to ${newest ? formatTs(newest) : 'nothing'} while this one on ${node} held ${sealed ? formatTs(sealed) : 'nothing'}; this capture stops`,
            );
          }
          await segments.seal({ cluster, replicaSet, docs: pending, first: pendingFirst!, last: pendingLast!, prev: sealed, gap: pendingGap, node });
        } finally {
          await release();
        }
        result.segments++;
        result.entries += pending.length;
        sealed = pendingLast;
        pending = [];
        pendingFirst = pendingLast = null;
        pendingGap = undefined;
      }
      result.capturedTo = sealed;
      result.lagSecs = lag && sealed ? Math.max(0, lag.t - sealed.t) : 0;
      const changed = sealed && (reported.capturedTo === null || compareTs(sealed, reported.capturedTo) !== 0 || result.lagSecs !== reported.lagSecs);
      if (report && sealed && changed && Date.now() - reported.at >= PROGRESS_EVERY_MS) {
        reported = { at: Date.now(), capturedTo: sealed, lagSecs: result.lagSecs };
        await report({ replicaSet, capturedTo: sealed, lagSecs: result.lagSecs, node });
      }
      heartbeat({ capturedTo: result.capturedTo, lagSecs: result.lagSecs, node, segments: result.segments, entries: result.entries } satisfies CaptureHeartbeat);
    };

    /** The entry a (re-)opened tail must return first; null on a first capture, which starts where it finds. */
    let expect: Ts | null = null;

    const take = async (batch: Buffer[]): Promise<void> => {
      for (const raw of batch) {
        const ts = entryTs(raw);
        if (expect) {
          const from = expect;
          expect = null;
          const c = compareTs(ts, from);
          if (c === 0) continue; // the entry already held: contiguous
          if (c < 0) throw new CutpointError('INTERNAL', `the tail from ${formatTs(from)} on ${node} returned the earlier entry ${formatTs(ts)}`);
          log.warn('OPLOG GAP: the oplog rolled past the last captured entry; capture continues from the oldest entry it can read', {
            replicaSet,
            node,
            from: formatTs(from),
            to: formatTs(ts),
          });
          // A segment records at most one gap, before its first entry: seal what came before it first.
          if (pending.length) await seal();
          if (pending.length) throw new CutpointError('REPO_LOCKED', `replica set ${replicaSet}: a gap was found while the repository was locked; the capture starts again`);
          pendingGap = { from, to: ts };
          result.gap = pendingGap;
        } else {
          const last = pendingLast ?? sealed;
          if (last && compareTs(ts, last) <= 0) throw new CutpointError('INTERNAL', `the oplog tail on ${node} went backwards: ${formatTs(ts)} after ${formatTs(last)}`);
        }
        pending.push(raw);
        pendingFirst ??= ts;
        pendingLast = ts;
      }
    };

    const open = async (): Promise<Long> => {
      expect = pendingLast ?? sealed;
      const from = expect ?? majorityTs(await admin.command({ hello: 1 }));
      if (!from) throw new CutpointError('MONGO_UNREACHABLE', `${node} reports no majority-committed optime yet (replica set ${replicaSet} has no commit point)`);
      const reply = await local.command(
        { find: 'oplog.rs', filter: { ts: { $gte: toBsonTimestamp(from) } }, tailable: true, awaitData: true, readConcern: { level: 'majority' } },
        RAW,
      );
      await take(reply.cursor.firstBatch as Buffer[]);
      return reply.cursor.id as Long;
    };

    const started = Date.now();
    const deadline = started + input.leaseMs;
    let nextSeal = started + input.sealEveryMs;
    let cursor: Long | undefined;
    try {
      cursor = await open();
      while (!signal.aborted && Date.now() < deadline) {
        if (!cursor || cursor.isZero()) cursor = await open();
        const wait = Math.max(1, Math.min(MAX_WAIT_MS, nextSeal - Date.now(), deadline - Date.now()));
        try {
          const reply = await local.command({ getMore: cursor, collection: 'oplog.rs', maxTimeMS: wait }, RAW);
          await take(reply.cursor.nextBatch as Buffer[]);
          cursor = reply.cursor.id as Long;
        } catch (e) {
          if (!(e instanceof MongoServerError && REOPEN_CODES.has(Number(e.code)))) throw e;
          log.info('oplog tail lost; re-opening from the last entry read', { replicaSet, node, code: e.code, error: e.message });
          cursor = undefined;
        }
        if (Date.now() >= nextSeal) {
          await seal();
          nextSeal = Date.now() + input.sealEveryMs;
        } else {
          heartbeat({ capturedTo: result.capturedTo, lagSecs: result.lagSecs, node, segments: result.segments, entries: result.entries } satisfies CaptureHeartbeat);
        }
      }
      await seal();
      return result;
    } catch (e) {
      // What was read is majority-committed: seal it before failing, so the next capture resumes after it.
      if (pending.length) await seal().catch((err: unknown) => log.warn('seal after a failure failed', { replicaSet, error: String(err) }));
      throw e;
    } finally {
      if (cursor && !cursor.isZero()) await local.command({ killCursors: 'oplog.rs', cursors: [cursor] }).catch(() => undefined);
    }
  }
}
