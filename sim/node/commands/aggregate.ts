/**
 * `aggregate`: the few stages a demo or a driver helper (countDocuments) needs, and the backup-cursor stages
 * through the node's backup hook. An unknown stage gets mongod's 40324, so nothing is silently ignored.
 */
import type { Document } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import { getPath, matches } from '../matcher.ts';
import { assertReadable, awaitPrepareConflicts, project, readTimestamp, sortDocs } from './crud.ts';
import type { CommandImpl } from '../types.ts';

const BACKUP_STAGES = new Set(['$backupCursor', '$backupCursorExtend']);

function unrecognized(stage: string): CommandError {
  return new CommandError(40324, `Unrecognized pipeline stage name: '${stage}'`);
}

function accumulate(docs: Document[], spec: Document): Document[] {
  const groups = new Map<string, Document>();
  for (const d of docs) {
    const idSpec = spec._id;
    const id = typeof idSpec === 'string' && idSpec.startsWith('$') ? getPath(d, idSpec.slice(1)) : idSpec;
    const key = JSON.stringify(id ?? null);
    const g = groups.get(key) ?? { _id: id ?? null };
    for (const [field, acc] of Object.entries(spec)) {
      if (field === '_id') continue;
      const [op, arg] = Object.entries(acc as Document)[0] ?? [];
      if (op !== '$sum') throw new CommandError(ErrorCodes.BadValue, `unsupported accumulator in the simulator: ${String(op)}`);
      const v = typeof arg === 'string' && arg.startsWith('$') ? Number(getPath(d, arg.slice(1)) ?? 0) : Number(arg);
      g[field] = (Number(g[field] ?? 0) as number) + v;
    }
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** `$project` with field inclusions or exclusions only (0/1/true/false); computed fields are refused, not ignored. */
function projectStage(docs: Document[], spec: Document): Document[] {
  for (const [field, v] of Object.entries(spec)) {
    if (typeof v !== 'number' && typeof v !== 'boolean') {
      throw new CommandError(ErrorCodes.BadValue, `unsupported $project value in the simulator for '${field}': only inclusions and exclusions`);
    }
  }
  return docs.map((d) => project(d, spec));
}

/** Runs the supported stages over documents already read (a node's collection, or a router's merged shards). */
export function runPipeline(input: Document[], pipeline: Document[]): Document[] {
  let docs = input;
  for (const stage of pipeline) {
    const name = Object.keys(stage)[0] ?? '';
    const arg = stage[name] as unknown;
    switch (name) {
      case '$match':
        docs = docs.filter((d) => matches(d, arg as Document));
        break;
      case '$group':
        docs = accumulate(docs, arg as Document);
        break;
      case '$limit':
        docs = docs.slice(0, Number(arg));
        break;
      case '$skip':
        docs = docs.slice(Number(arg));
        break;
      case '$sort':
        docs = sortDocs(docs, arg as Document);
        break;
      case '$project':
        docs = projectStage(docs, arg as Document);
        break;
      case '$count':
        docs = [{ [String(arg)]: docs.length }];
        break;
      default:
        throw unrecognized(name);
    }
  }
  return docs;
}

export const aggregate: CommandImpl = async (ctx) => {
  const { node, command, db } = ctx;
  const pipeline = command.pipeline;
  if (!Array.isArray(pipeline)) throw new CommandError(ErrorCodes.TypeMismatch, "'pipeline' option must be specified as an array");
  const stageName = (s: unknown) => Object.keys((s ?? {}) as Document)[0] ?? '';
  const first = stageName(pipeline[0]);
  if (BACKUP_STAGES.has(first) || pipeline.some((s) => BACKUP_STAGES.has(stageName(s)))) {
    if (node.flavor !== 'psmdb' || !node.backup) throw unrecognized(BACKUP_STAGES.has(first) ? first : pipeline.map(stageName).find((n) => BACKUP_STAGES.has(n))!);
    return node.backup.aggregate(ctx);
  }
  if (command.aggregate === 1) throw new CommandError(ErrorCodes.InvalidNamespace, `{aggregate: 1} is not valid for '${first}'; a collection name is required`);
  assertReadable(ctx);
  const ns = `${db}.${String(command.aggregate)}`;
  // Prepare conflicts as find waits for them (crud.ts), for any document of the namespace.
  await awaitPrepareConflicts(ctx, ns, undefined);
  const docs = runPipeline(node.engine.scan(ns, readTimestamp(ctx)), pipeline as Document[]);
  let i = 0;
  return node.cursors.open({ ns: `${db}.${String(command.aggregate)}`, source: () => docs[i++] }, (command.cursor as Document | undefined)?.batchSize);
};
