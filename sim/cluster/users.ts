/**
 * The users the launcher creates with `--auth` (docs/interfaces.md section 1), on every replica set of the cluster:
 * the config servers' users are the ones a mongos client authenticates as, and each shard holds the same users as
 * shard-local users, because a physical backup connects to shard members directly.
 *
 * - `admin`: `root`.
 * - `backup`: what a cutpoint backup user needs: `clusterAdmin` (its `hostManager` part brings `fsync` for
 *   `$backupCursor`/`$backupCursorExtend`, `killAnySession` and `killAnyCursor`; `clusterMonitor` brings
 *   `replSetGetStatus`, `getCmdLineOpts`, `serverStatus`, `listShards`; `clusterManager` the replica-set and
 *   sharding actions) and `backup` (read access to every database including `admin`, `config` and `local`, and
 *   update on `config.settings` for the balancer).
 * - `noFsync`: `backup` and `clusterMonitor`: everything a backup reads and inspects, but no `fsync`, so its
 *   `$backupCursor` gets 13 Unauthorized.
 */
import { randomBytes } from 'node:crypto';
import type { RoleName } from '../node/auth/roles.ts';
import { buildUserDoc, EngineUserStore, type UserDoc } from '../node/auth/users.ts';
import type { ReplicaSet } from '../node/replset.ts';

export interface LauncherUser {
  user: string;
  password: string;
}

export interface LauncherUsers {
  admin: LauncherUser;
  backup: LauncherUser;
  noFsync: LauncherUser;
}

const admin = (role: string): RoleName => ({ role, db: 'admin' });

/** The launcher's users: names, roles (all on `admin`). */
export const LAUNCHER_USER_ROLES: Record<keyof LauncherUsers, { user: string; roles: RoleName[] }> = {
  admin: { user: 'admin', roles: [admin('root')] },
  backup: { user: 'cutpoint-backup', roles: [admin('clusterAdmin'), admin('backup')] },
  noFsync: { user: 'cutpoint-nofsync', roles: [admin('backup'), admin('clusterMonitor')] },
};

/**
 * Creates the launcher's users on every replica set's primary (replicated to its members) with fresh random
 * passwords, and returns them for the JSON line.
 */
export function createLauncherUsers(replicaSets: ReplicaSet[]): LauncherUsers {
  const out = {} as LauncherUsers;
  const docs: UserDoc[] = [];
  for (const [key, spec] of Object.entries(LAUNCHER_USER_ROLES) as Array<[keyof LauncherUsers, (typeof LAUNCHER_USER_ROLES)[keyof LauncherUsers]]>) {
    const password = randomBytes(18).toString('base64url');
    out[key] = { user: spec.user, password };
    docs.push(buildUserDoc({ user: spec.user, db: 'admin' }, password, spec.roles));
  }
  for (const rs of replicaSets) {
    const primary = rs.primary();
    if (!primary) throw new Error(`sim: replica set ${rs.name} has no primary to create users on`);
    const store = new EngineUserStore(() => primary);
    for (const doc of docs) if (!store.find(doc)) store.insert(doc);
  }
  return out;
}
