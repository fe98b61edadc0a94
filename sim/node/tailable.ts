/**
 * Tailable (and awaitData) `find` on the capped oplog, as mongod answers it (docs/simulator.md, "Oplog tailing"):
 * the option checks of mongod's query_request_helper.cpp and tailable_mode.cpp, a cursor kept open at the end of the
 * oplog (find.cpp shouldSaveCursor: unless the collection is missing or empty), a collection scan that starts at the
 * filter's `ts` lower bound (the oplog start optimisation) and stops at its upper bound, and CappedPositionLost when the
 * entry the cursor last stood on was truncated (collection_scan.cpp, "failure to restore tailable cursor position").
 * With readConcern majority it returns only majority-committed entries (it reads the committed snapshot).
 */
import type { Document } from 'mongodb';
import { Long, Timestamp } from 'mongodb';
import { OPLOG_NS, type OplogEntry } from '../storage/index.ts';
import { CommandError, ErrorCodes } from '../wire/index.ts';
import { compareTs } from './clock.ts';
import { matches } from './matcher.ts';
import type { CommandContext } from './types.ts';

/** mongod's default wait of an awaitData getMore sent without maxTimeMS (getmore_cmd.cpp: one second). */
export const DEFAULT_AWAIT_DATA_MS = 1000;

/** Entries read from the engine at a time. */
const CHUNK = 256;

/** The tailable/awaitData flags of a find, checked as mongod checks them (first failing check wins). */
export function tailableMode(command: Document): { tailable: boolean; awaitData: boolean } {
  const tailable = command.tailable === true;
  const awaitData = command.awaitData === true;
  if (awaitData && !tailable) throw new CommandError(ErrorCodes.FailedToParse, "Cannot set 'awaitData' without also setting 'tailable'");
  if (tailable) {
    const sort = command.sort as Document | undefined;
    const keys = sort ? Object.keys(sort) : [];
    if (keys.length > 0 && !(keys.length === 1 && keys[0] === '$natural' && Number(sort!.$natural) === 1)) {
      throw new CommandError(ErrorCodes.BadValue, 'cannot use tailable option with a sort other than {$natural: 1}');
    }
    if (command.singleBatch === true) throw new CommandError(ErrorCodes.BadValue, "cannot use tailable option with the 'singleBatch' option");
  }
  return { tailable, awaitData };
}

interface Bounds {
  from?: Timestamp;
  after?: Timestamp;
  upTo?: Timestamp;
  before?: Timestamp;
}

/** The `ts` range of a filter's top-level `ts` condition (`$gt`/`$gte`/`$lt`/`$lte`/equality), as the scan bounds. */
function boundsOf(filter: Document | undefined): Bounds {
  const ts = filter?.ts as unknown;
  if (ts instanceof Timestamp) return { from: ts, upTo: ts };
  if (!ts || typeof ts !== 'object') return {};
  const c = ts as Document;
  const b: Bounds = {};
  if (c.$gte instanceof Timestamp) b.from = c.$gte;
  if (c.$gt instanceof Timestamp) b.after = c.$gt;
  if (c.$lte instanceof Timestamp) b.upTo = c.$lte;
  if (c.$lt instanceof Timestamp) b.before = c.$lt;
  return b;
}

function pastUpper(ts: Timestamp, b: Bounds): boolean {
  return (b.upTo !== undefined && compareTs(ts, b.upTo) > 0) || (b.before !== undefined && compareTs(ts, b.before) >= 0);
}

/** The 64-bit RecordId of an oplog entry (its timestamp), as mongod prints it. */
function recordId(ts: Timestamp): string {
  return Long.fromBits(ts.low, ts.high, true).toString();
}

/** A tailable find on `ns`: the first batch of a cursor that stays open at the end of the oplog. */
export function openTailable(ctx: CommandContext, ns: string, project: (d: Document) => Document, awaitData: boolean): Document {
  const { node, command } = ctx;
  const info = node.engine.getCollection(ns);
  // find.cpp: a missing collection gives an empty, closed cursor.
  if (!info) return { cursor: { firstBatch: [], id: Long.ZERO, ns } };
  if (info.options.capped !== true) {
    throw new CommandError(ErrorCodes.BadValue, `error processing query: ns=${ns} tailable cursor requested on non capped collection`);
  }
  if (ns !== OPLOG_NS) {
    throw new CommandError(ErrorCodes.CommandNotSupported, `the simulator tails only ${OPLOG_NS}, not ${ns}`);
  }
  if (command.skip !== undefined || command.limit !== undefined) {
    throw new CommandError(ErrorCodes.CommandNotSupported, 'the simulator does not support skip or limit on a tailable cursor');
  }
  const filter = command.filter as Document | undefined;
  const bounds = boundsOf(filter);
  // readConcern majority: the cursor reads the committed snapshot, so it returns an entry only once the majority has
  // it, and an awaitData getMore waits for the commit point to reach the next one.
  const majority = (command.readConcern as Document | undefined)?.level === 'majority' && node.rs !== undefined;
  const engine = () => node.engine;
  // The record the scan last examined (matching or not): where the next read resumes, and what truncation can lose.
  let last: Timestamp | undefined;
  let buffer: OplogEntry[] = [];
  let ended = false;
  const checkPosition = (): void => {
    if (last === undefined) return;
    const first = engine().oplogFirst();
    if (!first || compareTs(first.ts, last) > 0) {
      throw new CommandError(
        ErrorCodes.CappedPositionLost,
        `CollectionScan died due to failure to restore tailable cursor position. Last seen record id: RecordId(${recordId(last)})`,
      );
    }
  };
  const refill = (): void => {
    checkPosition();
    buffer =
      last !== undefined
        ? engine().readOplog({ after: last, limit: CHUNK })
        : bounds.after !== undefined
          ? engine().readOplog({ after: bounds.after, limit: CHUNK })
          : engine().readOplog({ ...(bounds.from !== undefined ? { from: bounds.from } : {}), limit: CHUNK });
  };
  const source = (): Document | undefined => {
    while (!ended) {
      if (buffer.length === 0) refill();
      const e = buffer.shift();
      if (!e) return undefined;
      if (majority && compareTs(e.ts, node.rs!.committedSnapshot(node)) > 0) {
        // Not majority-committed yet: read again from the last position next time.
        buffer = [];
        return undefined;
      }
      if (pastUpper(e.ts, bounds)) {
        // The scan's end bound: a tailable cursor stays open but finds nothing more.
        ended = true;
        return undefined;
      }
      last = e.ts;
      if (matches(e, filter)) return project(e);
    }
    return undefined;
  };
  const empty = engine().oplogLast() === undefined;
  const reply = node.cursors.open({ ns, source, tailable: !empty, awaitData, restore: checkPosition }, command.batchSize);
  return reply;
}
