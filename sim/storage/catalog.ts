import { UUID } from 'mongodb';
import type { Document } from 'mongodb';
import { StorageCodes, StorageError } from './errors.ts';

/**
 * `_mdb_catalog` entries: namespace → the idents holding the collection and its `_id` index, plus the collection's
 * UUID and options. The catalog is itself a versioned table, so "which collections existed at timestamp T" is a
 * catalog read at T.
 */

/** Namespace of the oplog. */
export const OPLOG_NS = 'local.oplog.rs';
/** Namespace of the oplog truncate point document. */
export const TRUNCATE_POINT_NS = 'local.replset.oplogTruncateAfterPoint';
/** `_id` of the oplog truncate point document. */
export const TRUNCATE_POINT_ID = 'oplogTruncateAfterPoint';

/** Idents of the engine's own tables (their files are `<ident>.wt`). */
export const SystemIdents = {
  catalog: '_mdb_catalog',
  sizeStorer: 'sizeStorer',
  historyStore: 'WiredTigerHS',
} as const;

/**
 * A database name as a directory name (mongod's `escapeDbName` in durable_catalog.cpp): letters, digits, `.` and `_`
 * are kept; every other byte becomes `.` and its decimal value, at least two digits (`a-b` → `a.45b`).
 */
export function escapeDbName(db: string): string {
  let out = '';
  for (const byte of Buffer.from(db, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._]/.test(c) ? c : `.${String(byte).padStart(2, '0')}`;
  }
  return out;
}

/**
 * A new collection or index ident, as mongod's `DurableCatalog::generateUniqueIdent` makes it:
 * `[<escaped db>/]<kind><'/' with directoryForIndexes, else '-'><n>-<rand>`, e.g. `collection-4-817`,
 * `test/collection-4-817` (directoryPerDB), `index/5-817` (directoryForIndexes), `test/index/5-817` (both). The
 * ident is the file's path relative to the dbpath without `.wt`, so the layout lives in the catalog: a dbpath keeps
 * working whatever the flags of a later start, for the idents it already has.
 */
export function identFor(
  layout: { directoryPerDB: boolean; directoryForIndexes: boolean },
  ns: string,
  kind: 'collection' | 'index',
  n: number,
  rand: string,
): string {
  const dir = layout.directoryPerDB ? `${escapeDbName(parseNs(ns).db)}/` : '';
  return `${dir}${kind}${layout.directoryForIndexes ? '/' : '-'}${n}-${rand}`;
}

/** A collection as the catalog records it. */
export interface CollectionInfo {
  readonly ns: string;
  /** Ident of the record store, e.g. `collection-4-8171234` (with subdirectories under a layout: {@link identFor}). */
  readonly ident: string;
  /** Ident of the `_id` index; absent for the oplog, which has none. */
  readonly idIndexIdent?: string;
  readonly uuid: UUID;
  readonly options: Document;
}

/** The catalog value for a collection. */
export function catalogDoc(info: CollectionInfo): Document {
  const doc: Document = { ns: info.ns, ident: info.ident, uuid: info.uuid, options: info.options };
  if (info.idIndexIdent !== undefined) doc.idIndexIdent = info.idIndexIdent;
  return doc;
}

/** Inverse of {@link catalogDoc}. */
export function parseCatalogDoc(doc: Document): CollectionInfo {
  const uuid = doc.uuid instanceof UUID ? doc.uuid : new UUID((doc.uuid as { buffer: Uint8Array }).buffer);
  const info: CollectionInfo = {
    ns: String(doc.ns),
    ident: String(doc.ident),
    uuid,
    options: (doc.options as Document | undefined) ?? {},
  };
  return doc.idIndexIdent === undefined ? info : { ...info, idIndexIdent: String(doc.idIndexIdent) };
}

/** Splits `db.coll`, rejecting names MongoDB would reject. */
export function parseNs(ns: string): { db: string; coll: string } {
  const dot = ns.indexOf('.');
  if (dot <= 0 || dot === ns.length - 1 || ns.includes('\0')) {
    throw new StorageError(StorageCodes.InvalidNamespace, `Invalid namespace specified '${ns}'`);
  }
  return { db: ns.slice(0, dot), coll: ns.slice(dot + 1) };
}

/**
 * True for collections whose writes are replicated (and so come back after a crash only through the oplog).
 * Everything in `local` is node-local; so are `system.profile` collections.
 */
export function isReplicated(ns: string): boolean {
  const { db, coll } = parseNs(ns);
  return db !== 'local' && coll !== 'system.profile';
}
