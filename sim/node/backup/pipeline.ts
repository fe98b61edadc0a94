/**
 * `aggregate` with `$backupCursor` or `$backupCursorExtend`, checked in mongod's order (docs/psmdb-behaviour.md
 * section 1.2): lite parsing of every stage (40323, 40324), the read concern (72), transactions (263), secondary reads
 * (13435), each stage's own options (`createFromBson`: 9, 14, 72), then the namespace of the first stage (73) and the
 * position of every stage (40602). Authorization (13, the `fsync` privilege) comes before all of these and belongs to
 * the auth layer.
 */
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import { matches } from '../matcher.ts';
import { runPipeline } from '../commands/aggregate.ts';
import { assertReadable } from '../commands/crud.ts';
import type { CommandContext, NodeBackup } from '../types.ts';
import type { CursorSource } from '../cursors.ts';
import { backupCursorSource } from './backup-cursor.ts';
import { parseBackupCursorSpec, parseExtendSpec, typedCommand } from './options.ts';
import { filePath } from './paths.ts';

const CURSOR = '$backupCursor';
const EXTEND = '$backupCursorExtend';
const BACKUP_STAGES: ReadonlySet<string> = new Set([CURSOR, EXTEND]);
/** The other stages the simulator knows (sim/node/commands/aggregate.ts). */
const OTHER_STAGES: ReadonlySet<string> = new Set(['$match', '$group', '$limit', '$skip', '$count']);
const READ_CONCERN_LEVELS: ReadonlySet<string> = new Set(['local', 'majority', 'linearizable', 'available', 'snapshot']);

/** `{aggregate: 1}`: the collectionless namespace. */
function isCollectionless(aggregate: unknown): boolean {
  const n = Long.isLong(aggregate) ? aggregate.toNumber() : aggregate;
  if (typeof n === 'number') {
    if (n !== 1) {
      throw new CommandError(ErrorCodes.FailedToParse, "Invalid command format: the 'aggregate' field must specify a collection name or 1");
    }
    return true;
  }
  if (typeof aggregate !== 'string') {
    throw new CommandError(ErrorCodes.TypeMismatch, "collection name has invalid type, the 'aggregate' field must specify a collection name or 1");
  }
  return false;
}

/** The deadline from `maxTimeMS` (absent or 0: none), counted from `start`. */
function deadlineOf(command: Document, start: number): number | undefined {
  const raw = command.maxTimeMS as unknown;
  if (raw === undefined || raw === null) return undefined;
  const ms = Long.isLong(raw) ? raw.toNumber() : Number(raw);
  if (!Number.isFinite(ms) || ms < 0) throw new CommandError(ErrorCodes.BadValue, `${String(raw)} value for maxTimeMS is out of range`);
  return ms === 0 ? undefined : start + ms;
}

/** Stages after the first, applied to the backup stage's documents as they stream (only streaming stages here). */
function downstream(source: CursorSource, stages: Document[], stage: string): CursorSource {
  let out = source;
  for (const s of stages) {
    const name = Object.keys(s)[0]!;
    const arg = s[name] as unknown;
    const prev = out;
    switch (name) {
      case '$match':
        out = () => {
          for (let d = prev(); d !== undefined; d = prev()) if (matches(d, arg as Document)) return d;
          return undefined;
        };
        break;
      case '$skip': {
        let skip = Number(arg);
        out = () => {
          for (let d = prev(); d !== undefined; d = prev()) {
            if (skip > 0) skip--;
            else return d;
          }
          return undefined;
        };
        break;
      }
      case '$limit': {
        let left = Number(arg);
        out = () => (left-- > 0 ? prev() : undefined);
        break;
      }
      default:
        throw new CommandError(ErrorCodes.IllegalOperation, `${name} after ${stage} is not supported by the simulator`);
    }
  }
  return out;
}

export async function backupAggregate(ctx: CommandContext, hooks: NodeBackup): Promise<Document> {
  const start = Date.now();
  const { node, command, db } = ctx;
  if (command.cursor === undefined && command.explain === undefined) {
    throw new CommandError(ErrorCodes.FailedToParse, "The 'cursor' option is required, except for aggregate with the explain argument");
  }
  const pipeline = typedCommand(ctx.command, ctx.conn).pipeline as unknown[];
  // Lite parsing.
  const names = pipeline.map((stage) => {
    const keys = stage && typeof stage === 'object' && !Array.isArray(stage) ? Object.keys(stage) : [];
    if (keys.length !== 1) throw new CommandError(40323, 'A pipeline stage specification object must contain exactly one field.');
    const name = keys[0]!;
    if (!BACKUP_STAGES.has(name) && !OTHER_STAGES.has(name)) throw new CommandError(40324, `Unrecognized pipeline stage name: '${name}'`);
    return name;
  });
  const backupStage = names.find((n) => BACKUP_STAGES.has(n))!;
  const rc = command.readConcern as Document | undefined;
  const level = rc?.level as unknown;
  if (level !== undefined) {
    if (typeof level !== 'string' || !READ_CONCERN_LEVELS.has(level)) {
      throw new CommandError(ErrorCodes.FailedToParse, "level must be either 'local', 'majority', 'linearizable', 'available', or 'snapshot'");
    }
    if (level !== 'local' && level !== 'majority') {
      throw new CommandError(
        ErrorCodes.InvalidOptions,
        `Aggregation stage ${backupStage} cannot run with a readConcern other than 'local' or 'majority'. Current readConcern: ${level}`,
      );
    }
  }
  if (command.autocommit === false) {
    throw new CommandError(
      ErrorCodes.OperationNotSupportedInTransaction,
      `Operation not permitted in transaction :: caused by :: Aggregation stage ${backupStage} cannot run within a multi-document transaction.`,
    );
  }
  assertReadable(ctx);
  // createFromBson, stage by stage.
  const specs = pipeline as Document[];
  const parsed = names.map((name, i) => {
    const spec = specs[i]![name] as unknown;
    if (name === CURSOR) return parseBackupCursorSpec(spec);
    if (name === EXTEND) return parseExtendSpec(spec);
    return undefined;
  });
  // validateTopLevelPipeline, then validateCommon.
  const collectionless = isCollectionless(command.aggregate);
  const first = names[0]!;
  if (collectionless && !BACKUP_STAGES.has(first)) {
    throw new CommandError(ErrorCodes.InvalidNamespace, `{aggregate: 1} is not valid for '${first}'; a collection is required.`);
  }
  if (!collectionless && BACKUP_STAGES.has(first)) {
    throw new CommandError(ErrorCodes.InvalidNamespace, `'${first}' can only be run with {aggregate: 1}`);
  }
  for (const name of names.slice(1)) {
    if (BACKUP_STAGES.has(name)) throw new CommandError(40602, `${name} is only valid as the first stage in a pipeline.`);
  }

  const ns = `${db}.$cmd.aggregate`;
  const batchSize = (command.cursor as Document | undefined)?.batchSize;
  const rest = (command.pipeline as Document[]).slice(1);
  if (first === CURSOR) {
    downstream(() => undefined, rest, CURSOR); // refuses what it cannot stream before anything opens
    const open = await hooks.openBackupCursor(parsed[0] as ReturnType<typeof parseBackupCursorSpec>);
    try {
      return node.cursors.open(
        {
          ns,
          source: downstream(backupCursorSource(node, open), rest, CURSOR),
          tailable: true,
          // The node binds the cursor to the command's session and user once the reply is built (sessions.ts).
          onClose: () => hooks.closeBackupCursor(open.backupId),
        },
        batchSize,
      );
    } catch (e) {
      hooks.closeBackupCursor(open.backupId);
      throw e;
    }
  }
  const { backupId, timestamp } = parsed[0] as ReturnType<typeof parseExtendSpec>;
  const files = await hooks.extendBackupCursor(backupId, timestamp, deadlineOf(command, start), ctx.conn.signal);
  // Not tailable: a finite list, so any later stage can run over all of it.
  const docs = runPipeline(files.map((f) => ({ filename: filePath(node.dbpath, f.path) })), rest);
  let i = 0;
  return node.cursors.open({ ns, source: () => docs[i++] }, batchSize);
}
