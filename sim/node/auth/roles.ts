/**
 * MongoDB's built-in roles and how a privilege is matched against a resource, after mongod 7.0
 * (`src/mongo/db/auth/builtin_roles.yml` and `AuthorizationSessionImpl`'s resource search list).
 *
 * Every built-in role is here with the actions of the yml; the simulator checks only the actions of the commands it
 * implements, so an action no command asks for is harmless. What matters most for cutpoint
 * (docs/psmdb-behaviour.md section 1.2): `fsync` (and `killAnySession`, `killAnyCursor`) on the cluster resource come
 * only with `hostManager`, and so with `clusterAdmin` and `root`; `clusterManager` and `backup` do not have them.
 */

/** mongod's `ActionType::anyAction`: a privilege holding it allows every action on its resource. */
export const ANY_ACTION = 'anyAction';

/** A resource as a command needs it: the cluster, a database (`collection: ''`), or one namespace. */
export type Resource = { cluster: true } | { db: string; collection: string };

/** A privilege's resource pattern, as the yml's `matchType` names them. */
export type Pattern =
  | { match: 'cluster' }
  | { match: 'any' }
  | { match: 'any_normal' }
  | { match: 'database'; db: string }
  | { match: 'exact_namespace'; db: string; collection: string }
  | { match: 'collection'; collection: string };

export interface Privilege {
  resource: Pattern;
  actions: readonly string[];
}

/** A privilege as the role table writes it: `db` absent means the database the role is granted on. */
type RolePattern =
  | { match: 'cluster' | 'any' | 'any_normal' }
  | { match: 'database'; db?: string }
  | { match: 'exact_namespace'; db?: string; collection: string }
  | { match: 'collection'; collection: string };

interface RoleDef {
  /** Exists only on `admin` (e.g. `root@admin`; `root@test` is RoleNotFound). */
  adminOnly?: boolean;
  roles?: Array<string | { role: string; db: string }>;
  privileges: Array<{ resource: RolePattern; actions: readonly string[] }>;
}

const read = [
  'changeStream', 'collStats', 'dbHash', 'dbStats', 'find', 'killCursors', 'listCollections', 'listIndexes',
  'listSearchIndexes', 'planCacheRead',
] as const;
const readWrite = [
  ...read, 'cleanupStructuredEncryptionData', 'compactStructuredEncryptionData', 'convertToCapped', 'createCollection',
  'createIndex', 'createSearchIndexes', 'dropCollection', 'dropIndex', 'dropSearchIndex', 'insert', 'remove',
  'renameCollectionSameDB', 'update', 'updateSearchIndex',
] as const;
const userAdmin = [
  'changeCustomData', 'changePassword', 'createUser', 'createRole', 'dropUser', 'dropRole', 'grantRole', 'revokeRole',
  'setAuthenticationRestriction', 'viewUser', 'viewRole',
] as const;
const dbAdmin = [
  'analyze', 'bypassDocumentValidation', 'collMod', 'collStats', 'compact', 'convertToCapped', 'createCollection',
  'dbStats', 'dropCollection', 'dropDatabase', 'dropIndex', 'dropSearchIndex', 'createIndex', 'createSearchIndexes',
  'enableProfiler', 'listCollections', 'listIndexes', 'listSearchIndexes', 'updateSearchIndex', 'planCacheIndexFilter',
  'planCacheRead', 'planCacheWrite', 'reIndex', 'renameCollectionSameDB', 'storageDetails', 'validate',
] as const;
const clusterMonitorCluster = [
  'connPoolStats', 'getCmdLineOpts', 'getDefaultRWConcern', 'getLog', 'getParameter', 'getShardMap', 'hostInfo',
  'listDatabases', 'listSampledQueries', 'listSessions', 'listShards', 'netstat', 'operationMetrics',
  'replSetGetConfig', 'replSetGetStatus', 'serverStatus', 'top', 'useUUID', 'inprog', 'shardingState',
  'allCollectionStats', 'shardedDataDistribution',
] as const;
const clusterMonitorDatabase = ['collStats', 'dbStats', 'getDatabaseVersion', 'getShardVersion', 'indexStats'] as const;
/** `fsync` is here and only here (and so in clusterAdmin and root). */
const hostManagerCluster = [
  'applicationMessage', 'auditConfigure', 'connPoolSync', 'dropConnections', 'logRotate', 'oidReset', 'setParameter',
  'shutdown', 'touch', 'unlock', 'flushRouterConfig', 'fsync', 'invalidateUserCache', 'killAnyCursor',
  'killAnySession', 'killop', 'replSetResizeOplog', 'resync', 'trafficRecord', 'rotateCertificates', 'oidcListKeys',
  'oidcRefreshKeys',
] as const;
const clusterManagerCluster = [
  'appendOplogNote', 'applicationMessage', 'replSetConfigure', 'replSetGetConfig', 'replSetGetStatus',
  'replSetStateChange', 'resync', 'addShard', 'removeShard', 'listSessions', 'listShards', 'flushRouterConfig',
  'cleanupOrphaned', 'getDefaultRWConcern', 'runTenantMigration', 'setDefaultRWConcern',
  'setFeatureCompatibilityVersion', 'setClusterParameter', 'getClusterParameter', 'setChangeStreamState',
  'getChangeStreamState', 'querySettings', 'queryStatsRead', 'queryStatsReadTransformed', 'checkMetadataConsistency',
  'transitionFromDedicatedConfigServer', 'transitionToDedicatedConfigServer',
] as const;
const clusterManagerDatabase = [
  'analyzeShardKey', 'configureQueryAnalyzer', 'clearJumboFlag', 'splitChunk', 'moveChunk', 'moveCollection',
  'enableSharding', 'splitVector', 'refineCollectionShardKey', 'reshardCollection',
] as const;
const clusterManagerWrite = ['insert', 'update', 'remove'] as const;
const restoreWrite = [
  'bypassDocumentValidation', 'collMod', 'convertToCapped', 'createCollection', 'createIndex', 'createSearchIndexes',
  'dropCollection', 'insert', 'updateSearchIndex',
] as const;

const cluster = { match: 'cluster' } as const;
const anyNormal = { match: 'any_normal' } as const;
const thisDb = { match: 'database' } as const;
const dbRes = (db: string) => ({ match: 'database', db }) as const;
const ns = (db: string | undefined, collection: string) => ({ match: 'exact_namespace', db, collection }) as const;
const coll = (collection: string) => ({ match: 'collection', collection }) as const;

/** The built-in roles (7.0), by name. */
export const BUILTIN_ROLES: Record<string, RoleDef> = {
  read: { privileges: [{ resource: thisDb, actions: read }, { resource: ns(undefined, 'system.js'), actions: read }] },
  readWrite: {
    privileges: [{ resource: thisDb, actions: readWrite }, { resource: ns(undefined, 'system.js'), actions: readWrite }],
  },
  userAdmin: { privileges: [{ resource: thisDb, actions: userAdmin }] },
  dbAdmin: {
    privileges: [
      { resource: thisDb, actions: [...dbAdmin, 'configureQueryAnalyzer'] },
      { resource: ns(undefined, 'system.profile'), actions: [...read, 'convertToCapped', 'createCollection', 'dropCollection'] },
    ],
  },
  dbOwner: { roles: ['readWrite', 'dbAdmin', 'userAdmin'], privileges: [] },
  enableSharding: {
    privileges: [
      { resource: anyNormal, actions: ['analyzeShardKey', 'enableSharding', 'moveCollection', 'refineCollectionShardKey', 'reshardCollection'] },
    ],
  },
  readAnyDatabase: {
    adminOnly: true,
    privileges: [
      { resource: anyNormal, actions: read },
      { resource: cluster, actions: ['listDatabases'] },
      { resource: coll('system.js'), actions: read },
    ],
  },
  readWriteAnyDatabase: {
    adminOnly: true,
    roles: ['readAnyDatabase'],
    privileges: [{ resource: anyNormal, actions: readWrite }, { resource: coll('system.js'), actions: readWrite }],
  },
  userAdminAnyDatabase: {
    adminOnly: true,
    privileges: [
      { resource: anyNormal, actions: [...userAdmin, 'listCachedAndActiveUsers'] },
      { resource: dbRes('local'), actions: userAdmin },
      { resource: dbRes('config'), actions: userAdmin },
      { resource: cluster, actions: ['listDatabases', 'authSchemaUpgrade', 'invalidateUserCache', 'viewUser'] },
      { resource: ns('admin', 'system.users'), actions: [...read, 'createIndex', 'createSearchIndexes', 'dropIndex', 'dropSearchIndex'] },
      { resource: ns('admin', 'system.roles'), actions: [...read, 'createIndex', 'createSearchIndexes', 'dropIndex', 'dropSearchIndex'] },
      { resource: coll('system.users'), actions: read },
      { resource: ns('admin', 'system.version'), actions: read },
      { resource: ns('admin', 'system.backup_users'), actions: read },
    ],
  },
  dbAdminAnyDatabase: {
    adminOnly: true,
    privileges: [
      { resource: cluster, actions: ['listDatabases', 'applyOps'] },
      { resource: anyNormal, actions: [...dbAdmin, 'configureQueryAnalyzer'] },
      { resource: coll('system.profile'), actions: [...read, 'convertToCapped', 'createCollection', 'dropCollection'] },
    ],
  },
  clusterMonitor: {
    adminOnly: true,
    roles: [{ role: 'read', db: 'config' }, { role: 'read', db: 'local' }],
    privileges: [
      { resource: cluster, actions: clusterMonitorCluster },
      { resource: anyNormal, actions: clusterMonitorDatabase },
      { resource: dbRes('config'), actions: clusterMonitorDatabase },
      { resource: ns('config', 'system.sessions'), actions: clusterMonitorDatabase },
      { resource: dbRes('local'), actions: clusterMonitorDatabase },
      { resource: ns('local', 'system.replset'), actions: ['find'] },
      { resource: ns('local', 'replset.election'), actions: ['find'] },
      { resource: ns('local', 'replset.minvalid'), actions: ['find'] },
      { resource: coll('system.profile'), actions: ['find'] },
    ],
  },
  hostManager: {
    adminOnly: true,
    privileges: [{ resource: cluster, actions: hostManagerCluster }, { resource: anyNormal, actions: ['killCursors'] }],
  },
  clusterManager: {
    adminOnly: true,
    roles: [{ role: 'read', db: 'config' }],
    privileges: [
      { resource: cluster, actions: clusterManagerCluster },
      { resource: anyNormal, actions: clusterManagerDatabase },
      { resource: dbRes('config'), actions: [...clusterManagerDatabase, ...clusterManagerWrite] },
      { resource: dbRes('local'), actions: [...clusterManagerDatabase, ...clusterManagerWrite] },
      { resource: ns('local', 'system.replset'), actions: read },
      { resource: { match: 'any' }, actions: ['dbCheck'] },
      { resource: ns('local', 'system.healthlog'), actions: read },
      { resource: ns('local', 'replset.election'), actions: clusterManagerWrite },
      { resource: ns('local', 'replset.minvalid'), actions: clusterManagerWrite },
    ],
  },
  clusterAdmin: {
    adminOnly: true,
    roles: ['clusterMonitor', 'hostManager', 'clusterManager'],
    privileges: [
      { resource: anyNormal, actions: ['dropDatabase'] },
      { resource: { match: 'any' }, actions: ['importCollection', 'exportCollection'] },
    ],
  },
  __queryableBackup: {
    adminOnly: true,
    privileges: [
      { resource: { match: 'any' }, actions: ['collStats', 'listCollections', 'listIndexes', 'listSearchIndexes'] },
      { resource: anyNormal, actions: ['find'] },
      { resource: cluster, actions: ['getParameter', 'listDatabases', 'useUUID'] },
      { resource: dbRes('config'), actions: ['find'] },
      { resource: dbRes('local'), actions: ['find'] },
      { resource: ns('local', 'replset.election'), actions: ['find'] },
      { resource: ns('local', 'replset.minvalid'), actions: ['find'] },
      { resource: coll('system.js'), actions: ['find'] },
      { resource: coll('system.users'), actions: ['find'] },
      { resource: coll('system.profile'), actions: ['find'] },
      { resource: ns('admin', 'system.backup_users'), actions: ['find'] },
      { resource: ns('admin', 'system.roles'), actions: ['find'] },
      { resource: ns('admin', 'system.version'), actions: ['find'] },
      { resource: ns('config', 'settings'), actions: ['find'] },
    ],
  },
  /** No `fsync`: a user with only this role gets 13 from `$backupCursor`. */
  backup: {
    adminOnly: true,
    roles: ['__queryableBackup'],
    privileges: [
      { resource: cluster, actions: ['appendOplogNote', 'serverStatus', 'setUserWriteBlockMode'] },
      { resource: ns('config', 'settings'), actions: ['insert', 'update'] },
    ],
  },
  restore: {
    adminOnly: true,
    privileges: [
      { resource: cluster, actions: ['getParameter', 'forceUUID', 'useUUID', 'bypassWriteBlockingMode', 'setUserWriteBlockMode', 'applyOps'] },
      { resource: dbRes('local'), actions: restoreWrite },
      { resource: dbRes('config'), actions: restoreWrite },
      { resource: ns('local', 'system.replset'), actions: restoreWrite },
      { resource: ns('local', 'replset.election'), actions: restoreWrite },
      { resource: ns('local', 'replset.minvalid'), actions: restoreWrite },
      { resource: { match: 'any' }, actions: ['listCollections'] },
      { resource: anyNormal, actions: [...restoreWrite, ...userAdmin] },
      { resource: coll('system.js'), actions: restoreWrite },
      { resource: ns('admin', 'tempusers'), actions: ['find'] },
      { resource: ns('admin', 'temproles'), actions: ['find'] },
      { resource: ns('admin', 'system.backup_users'), actions: restoreWrite },
      { resource: ns('admin', 'system.version'), actions: [...restoreWrite, 'find'] },
      { resource: coll('system.users'), actions: [...restoreWrite, 'find', 'update', 'remove'] },
      { resource: ns('admin', 'system.roles'), actions: ['createIndex'] },
    ],
  },
  root: {
    adminOnly: true,
    roles: ['clusterAdmin', 'userAdminAnyDatabase', 'dbAdminAnyDatabase', 'readWriteAnyDatabase', 'backup', 'restore', 'directShardOperations'],
    privileges: [
      { resource: { match: 'any' }, actions: ['validate'] },
      { resource: cluster, actions: ['useTenant'] },
      { resource: ns('config', 'system.preimages'), actions: ['find', 'remove'] },
      { resource: ns('config', 'system.change_collection'), actions: ['find', 'insert', 'remove', 'update'] },
    ],
  },
  directShardOperations: { adminOnly: true, privileges: [{ resource: cluster, actions: ['issueDirectShardOperations'] }] },
  /**
   * The internal user's role (`__system@local` of a key-file node, auth/internal.ts): every action on every resource,
   * `internal` on the cluster included, which members need for `replSetHeartbeat`.
   */
  __system: {
    adminOnly: true,
    privileges: [
      { resource: { match: 'any' }, actions: [ANY_ACTION] },
      { resource: cluster, actions: [ANY_ACTION] },
    ],
  },
};

/** A role as granted to a user: `{role, db}`. */
export interface RoleName {
  role: string;
  db: string;
}

/** Whether `{role, db}` names a built-in role (adminOnly roles exist only on admin). */
export function roleExists(r: RoleName): boolean {
  const def = BUILTIN_ROLES[r.role];
  return def !== undefined && (!def.adminOnly || r.db === 'admin');
}

function concrete(p: RolePattern, db: string): Pattern {
  switch (p.match) {
    case 'database':
      return { match: 'database', db: p.db ?? db };
    case 'exact_namespace':
      return { match: 'exact_namespace', db: p.db ?? db, collection: p.collection };
    default:
      return p;
  }
}

const expanded = new Map<string, Privilege[]>();

/** Every privilege of a role, with the roles it inherits (built-in roles only). */
export function privilegesOf(r: RoleName): Privilege[] {
  const key = `${r.role}@${r.db}`;
  const cached = expanded.get(key);
  if (cached) return cached;
  const def = roleExists(r) ? BUILTIN_ROLES[r.role]! : undefined;
  const out: Privilege[] = [];
  if (def) {
    for (const p of def.privileges) out.push({ resource: concrete(p.resource, r.db), actions: p.actions });
    for (const sub of def.roles ?? []) out.push(...privilegesOf(typeof sub === 'string' ? { role: sub, db: r.db } : sub));
  }
  expanded.set(key, out);
  return out;
}

function samePattern(a: Pattern, b: Pattern): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The patterns that can grant an action on `target`, as mongod's `buildResourceSearchList` builds them:
 * `any` always; a database or a normal collection also through its database and `any_normal` (but never in `local`
 * or `config`, which "user level administrators should not be able to manipulate"); a namespace also through
 * `collection` patterns with its collection name.
 */
export function searchList(target: Resource): Pattern[] {
  if ('cluster' in target) return [{ match: 'any' }, { match: 'cluster' }];
  const special = target.db === 'local' || target.db === 'config';
  if (target.collection === '') {
    return [{ match: 'any' }, { match: 'database', db: target.db }, ...(special ? [] : [anyNormal])];
  }
  const out: Pattern[] = [
    { match: 'any' },
    { match: 'exact_namespace', db: target.db, collection: target.collection },
    { match: 'collection', collection: target.collection },
  ];
  if (!target.collection.startsWith('system.')) {
    if (!special) out.push(anyNormal);
    out.push({ match: 'database', db: target.db });
  }
  return out;
}

/** Whether the roles grant `action` on `target`. */
export function rolesAllow(roles: readonly RoleName[], action: string, target: Resource): boolean {
  const candidates = searchList(target);
  for (const r of roles) {
    for (const p of privilegesOf(r)) {
      if (!p.actions.includes(action) && !p.actions.includes(ANY_ACTION)) continue;
      if (candidates.some((c) => samePattern(c, p.resource))) return true;
    }
  }
  return false;
}

/** The privileges of a set of roles in `connectionStatus {showPrivileges: true}` form (resource + actions). */
export function privilegeDocs(roles: readonly RoleName[]): Array<{ resource: Record<string, unknown>; actions: string[] }> {
  const byResource = new Map<string, { resource: Record<string, unknown>; actions: Set<string> }>();
  for (const r of roles) {
    for (const p of privilegesOf(r)) {
      const resource = resourceDoc(p.resource);
      const key = JSON.stringify(resource);
      const entry = byResource.get(key) ?? { resource, actions: new Set<string>() };
      for (const a of p.actions) entry.actions.add(a);
      byResource.set(key, entry);
    }
  }
  return [...byResource.values()].map((e) => ({ resource: e.resource, actions: [...e.actions].sort() }));
}

function resourceDoc(p: Pattern): Record<string, unknown> {
  switch (p.match) {
    case 'cluster':
      return { cluster: true };
    case 'any':
      return { anyResource: true };
    case 'any_normal':
      return { db: '', collection: '' };
    case 'database':
      return { db: p.db, collection: '' };
    case 'exact_namespace':
      return { db: p.db, collection: p.collection };
    case 'collection':
      return { db: '', collection: p.collection };
  }
}
