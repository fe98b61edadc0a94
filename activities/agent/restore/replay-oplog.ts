/**
 * The `replay` step of a point-in-time restore, between `recover` and `reset` (activities/agent/restore/member-steps.ts):
 * on a standalone recovery mongod over the member's recovered dbpath, the replica set's captured oplog
 * (repository/oplog-segments.ts, read through the repository, so S3 and encryption work) is applied with `applyOps`
 * from just after the base backup's common timestamp up to exactly the target cluster time, transactions as
 * repository/oplog-replay.ts decides them.
 *
 * Two passes over the segments: the first reads past the target for the decisions of prepared transactions, the
 * second applies. Progress is checkpointed in the member's state file after every applied batch (the newest entry it
 * completes), so an agent killed mid-replay resumes after its last checkpoint; re-applying the batch it was in is
 * harmless: an oplog insert of an existing `_id` replaces it (applyOps' upsert), an update carries the whole resulting
 * document, a delete of a missing document succeeds, and a collection created or dropped again is taken as done.
 */
import { cancellationSignal, heartbeat, log } from '@temporalio/activity';
import { BSON, type Document, type MongoClient } from 'mongodb';
import { CutpointError } from '../../../common/errors.ts';
import { compareTs, formatTs, type Ts } from '../../../common/timestamp.ts';
import { fromBsonTimestamp, toBsonTimestamp } from '../../../lib/bson-timestamp.ts';
import { assertDecided, DecisionScan, ReplayPlan, tsOf } from '../../../repository/oplog-replay.ts';
import { OplogSegments, type OplogSegment } from '../../../repository/oplog-segments.ts';
import type { Repository } from '../../../repository/repository.ts';
import type { ChunkIndex } from '../../../repository/v2/chunk-index.ts';
import { readState, updateState, type MemberState } from './restore-state.ts';

/** What the replay step needs. */
export interface ReplayInput {
  restoreId: string;
  dbpath: string;
  repo: string;
  cluster: string;
  replicaSet: string;
  /** The base backup's common timestamp (the restored data's point). */
  from: Ts;
  /** The target cluster time. */
  to: Ts;
  /** Operations per applyOps command (each batch is one checkpoint). */
  batchOps: number;
}

/** What the replay did. */
export interface ReplayResult {
  entries: number;
  bytes: number;
}

/** What the step heartbeats. */
export interface ReplayProgress {
  entries: number;
  bytes: number;
  at: Ts | null;
}

const NAMESPACE_EXISTS = 48;
const NAMESPACE_NOT_FOUND = 26;

/**
 * Prepared transactions in the restored node's own oplog (at or before the base): their operations by prepare
 * timestamp, and those without a decision there (their decision is in the capture, after the base).
 */
async function preparedInBase(c: MongoClient, from: Ts): Promise<{ ops: Map<string, Document[]>; pending: Ts[] }> {
  const entries = await c.db('local').collection('oplog.rs').find({ op: 'c', ns: 'admin.$cmd', ts: { $lte: toBsonTimestamp(from) } }).toArray();
  const ops = new Map<string, Document[]>();
  const decided = new Set<string>();
  for (const e of entries) {
    const o = e.o as Document;
    if (o.prepare === true && Array.isArray(o.applyOps)) ops.set(`${tsOf(e).t}:${tsOf(e).i}`, o.applyOps as Document[]);
    const prev = fromBsonTimestamp((e.prevOpTime as Document | undefined)?.ts);
    if (prev && (o.commitTransaction !== undefined || o.abortTransaction !== undefined)) decided.add(`${prev.t}:${prev.i}`);
  }
  const pending = [...ops.keys()].filter((k) => !decided.has(k)).map((k) => {
    const [t, i] = k.split(':').map(Number);
    return { t: t!, i: i! };
  });
  return { ops, pending };
}

/** Every entry of the segments that hold entries after `from`, in oplog order; `stop()` ends the read early. */
async function* entriesAfter(segs: OplogSegments, segments: OplogSegment[], index: ChunkIndex, from: Ts, stop: () => boolean = () => false): AsyncGenerator<{ doc: Document; bytes: number }> {
  for (const s of segments) {
    if (compareTs(s.last, from) <= 0) continue;
    for (const raw of await segs.entries(s, index)) yield { doc: BSON.deserialize(raw) as Document, bytes: raw.length };
    if (stop()) return;
  }
}

/** Runs applyOps with `ops`; a create of an existing or a drop of a missing collection (a re-applied batch) is done. */
async function apply(c: MongoClient, ops: Document[]): Promise<void> {
  try {
    await c.db('admin').command({ applyOps: ops });
  } catch (e) {
    const code = (e as { code?: number }).code;
    const one = ops.length === 1 && ops[0]!.op === 'c';
    if (one && (code === NAMESPACE_EXISTS || code === NAMESPACE_NOT_FOUND)) {
      log.info('a replayed command was already applied (a resumed batch)', { op: JSON.stringify(ops[0]!.o) });
      return;
    }
    throw new CutpointError('RESTORE_STEP_FAILED', `applyOps of ${ops.length} replayed operation(s) failed: ${(e as Error).message}`, { first: BSON.EJSON.stringify(ops[0] ?? {}).slice(0, 300) }, { cause: e });
  }
}

/**
 * Replays onto the standalone mongod `c` (the dbpath's state file `dir` holds the checkpoint). `beat` heartbeats.
 */
export async function replayOplog(c: MongoClient, repo: Repository, dir: string, input: ReplayInput, beat: (p: ReplayProgress) => void): Promise<ReplayResult> {
  await repo.open();
  const segs = new OplogSegments(repo);
  const segments = await segs.list(input.cluster, input.replicaSet);
  // Loaded once, after the listing: every listed segment's chunks are in it (a seal writes its index file first).
  const index = await repo.chunkIndex(true);
  const { ops: baseOps, pending } = await preparedInBase(c, input.from);

  const scan = new DecisionScan(input.from, input.to, pending);
  for await (const { doc } of entriesAfter(segs, segments, index, input.from, () => scan.done())) {
    scan.add(doc);
    if (scan.done()) break;
  }
  assertDecided(input.replicaSet, input.to, scan.undecided());

  const state: MemberState['replay'] = readState(dir)?.replay ?? { through: null, entries: 0, bytes: 0, late: 0 };
  const resumeAfter = state.through;
  if (resumeAfter) log.info('resuming a replay after its checkpoint', { through: formatTs(resumeAfter), entries: state.entries });
  const plan = new ReplayPlan(input.from, input.to, scan.decisions, (ts) => baseOps.get(`${ts.t}:${ts.i}`));
  let batch: Document[] = [];
  let batchEntries = 0;
  let batchBytes = 0;
  let batchThrough: Ts | null = null;
  const flush = async () => {
    // A cancelled restore stops between batches (the step's mongod is then shut down and the target rolled back).
    cancellationSignal().throwIfAborted();
    if (batch.length) await apply(c, batch);
    if (batchThrough) {
      state.through = batchThrough;
      state.entries += batchEntries;
      state.bytes += batchBytes;
      updateState(dir, (s) => (s.replay = { ...state }));
      beat({ entries: state.entries, bytes: state.bytes, at: state.through });
    }
    batch = [];
    batchEntries = 0;
    batchBytes = 0;
    batchThrough = null;
  };
  for await (const { doc, bytes } of entriesAfter(segs, segments, index, input.from)) {
    const ts = tsOf(doc);
    if (compareTs(ts, input.to) > 0) break;
    const ops = plan.add(doc);
    if (resumeAfter && compareTs(ts, resumeAfter) <= 0) continue;
    if (compareTs(ts, input.from) <= 0) continue;
    // A command alone in its applyOps (it may not share one: dropDatabase; and a resumed one is recognised).
    const commands = ops.some((o) => o.op === 'c');
    if (commands && batch.length) await flush();
    batch.push(...ops);
    batchEntries++;
    batchBytes += bytes;
    batchThrough = ts;
    if (commands || batch.length >= input.batchOps) await flush();
  }
  await flush();
  // Prepared transactions committed at or before the target whose commit entry lies after it.
  const late = plan.finish();
  for (let k = state.late; k < late.length; k++) {
    cancellationSignal().throwIfAborted();
    if (late[k]!.length) await apply(c, late[k]!);
    state.late = k + 1;
    updateState(dir, (s) => (s.replay = { ...state }));
    heartbeat();
  }
  log.info('oplog replayed', { replicaSet: input.replicaSet, to: formatTs(input.to), entries: state.entries, late: late.length });
  return { entries: state.entries, bytes: state.bytes };
}
