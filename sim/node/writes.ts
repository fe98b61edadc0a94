/**
 * How a node applies a write: replicated through the replica set's primary (timestamped, in the oplog), or
 * untimestamped for a standalone and for the non-replicated `local` database, as mongod does.
 */
import type { Document } from 'mongodb';
import { UUID } from 'mongodb';
import { isReplicated, type OplogOperation } from '../storage/index.ts';
import { CommandError, ErrorCodes } from '../wire/index.ts';
import type { SimNode } from './types.ts';

function dbOf(ns: string): string {
  return ns.slice(0, ns.indexOf('.'));
}

/** Throws NotWritablePrimary unless this node takes writes. */
export function assertWritable(node: SimNode, ns: string): void {
  if (node.rs && isReplicated(ns) && !node.writable) throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary');
}

/** Applies operations on one namespace's database; several operations are atomic (one applyOps). */
export function applyWrites(node: SimNode, ops: OplogOperation[]): void {
  if (ops.length === 0) return;
  const replicated = node.rs !== undefined && ops.every((o) => isReplicated(o.ns === `${dbOf(o.ns)}.$cmd` ? `${dbOf(o.ns)}.x` : o.ns));
  if (replicated) {
    node.rs!.write(node, ops);
    return;
  }
  const engine = node.engine;
  for (const op of ops) {
    switch (op.op) {
      case 'i':
        engine.insert(op.ns, op.o);
        break;
      case 'u':
        engine.replace(op.ns, op.o, { upsert: true });
        break;
      case 'd':
        engine.delete(op.ns, op.o._id);
        break;
      case 'c': {
        const db = dbOf(op.ns);
        if ('create' in op.o) engine.createCollection(`${db}.${String(op.o.create)}`, { uuid: op.ui });
        else if ('drop' in op.o) engine.dropCollection(`${db}.${String(op.o.drop)}`);
        else throw new Error(`sim bug: untimestamped command ${JSON.stringify(op.o)}`);
        break;
      }
      case 'n':
        break;
    }
  }
}

/** Creates `ns` if missing (implicit creation on first insert, as mongod does). */
export function ensureCollection(node: SimNode, ns: string, options: Document = {}): void {
  if (node.engine.getCollection(ns)) return;
  const db = dbOf(ns);
  applyWrites(node, [{ op: 'c', ns: `${db}.$cmd`, ui: new UUID(), o: { create: ns.slice(db.length + 1), ...options } }]);
}
