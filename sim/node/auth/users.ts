/**
 * Users: documents in `admin.system.users`, as mongod keeps them (`_id: "<db>.<user>"`, `userId`, `user`, `db`,
 * `credentials` per SCRAM mechanism, `roles: [{role, db}]`), so they are replicated, checkpointed, backed up and
 * restored with the rest of the data.
 *
 * Where they live: a replica-set member reads its own copy (a secondary sees a new user once it has replicated);
 * a mongos reads the config server primary's copy, as a real mongos authenticates against the config servers.
 * Shards keep their own shard-local users, as in MongoDB, where connecting to a shard member directly (which a
 * physical backup does) needs a user created on that shard's replica set.
 */
import type { Document } from 'mongodb';
import { UUID } from 'mongodb';
import { CommandError, ErrorCodes } from '../../wire/index.ts';
import type { SimNode } from '../types.ts';
import { applyWrites, assertWritable, ensureCollection } from '../writes.ts';
import { roleExists, type RoleName } from './roles.ts';
import { displayName, type UserName } from './user-name.ts';
import { makeCredential, MECHANISMS, type Mechanism, type ScramCredential } from './scram.ts';

export const USERS_NS = 'admin.system.users';

export interface UserDoc extends Document {
  _id: string;
  userId: UUID;
  user: string;
  db: string;
  credentials: Partial<Record<Mechanism, ScramCredential>>;
  roles: RoleName[];
  customData?: Document;
}

/** Where a process reads and writes its users. */
export interface UserStore {
  find(name: UserName): UserDoc | undefined;
  /** Users of one database, or every user. */
  list(db?: string): UserDoc[];
  /** Inserts a new user document (replicated); the caller checked it does not exist. */
  insert(doc: UserDoc): void;
}

/** Users in a node's `admin.system.users` (a mongos passes its config server primary). */
export class EngineUserStore implements UserStore {
  constructor(private readonly node: () => SimNode) {}

  find(name: UserName): UserDoc | undefined {
    const engine = this.node().engine;
    if (!engine.getCollection(USERS_NS)) return undefined;
    return engine.findById(USERS_NS, `${name.db}.${name.user}`) as UserDoc | undefined;
  }

  list(db?: string): UserDoc[] {
    const engine = this.node().engine;
    if (!engine.getCollection(USERS_NS)) return [];
    const all = engine.scan(USERS_NS) as UserDoc[];
    return db === undefined ? all : all.filter((u) => u.db === db);
  }

  insert(doc: UserDoc): void {
    const node = this.node();
    assertWritable(node, USERS_NS);
    ensureCollection(node, USERS_NS);
    applyWrites(node, [{ op: 'i', ns: USERS_NS, o: doc }]);
  }
}

/** Parses `roles` of createUser: names (on the command's database) or `{role, db}`; unknown: 31 RoleNotFound. */
export function parseRoles(value: unknown, db: string): RoleName[] {
  if (!Array.isArray(value)) throw new CommandError(ErrorCodes.BadValue, '"createUser" command requires a "roles" array');
  return value.map((r: unknown) => {
    const role: RoleName =
      typeof r === 'string'
        ? { role: r, db }
        : r && typeof r === 'object' && typeof (r as Document).role === 'string' && typeof (r as Document).db === 'string'
          ? { role: (r as Document).role as string, db: (r as Document).db as string }
          : (() => {
              throw new CommandError(ErrorCodes.BadValue, 'Role names must be either strings or objects');
            })();
    if (!roleExists(role)) throw new CommandError(ErrorCodes.RoleNotFound, `Could not find role: ${role.role}@${role.db}`);
    return role;
  });
}

/** Builds the user document createUser stores. */
export function buildUserDoc(name: UserName, password: string, roles: RoleName[], mechanisms: readonly Mechanism[] = MECHANISMS, customData?: Document): UserDoc {
  const credentials: Partial<Record<Mechanism, ScramCredential>> = {};
  for (const m of mechanisms) credentials[m] = makeCredential(m, name.user, password);
  return {
    _id: `${name.db}.${name.user}`,
    userId: new UUID(),
    user: name.user,
    db: name.db,
    credentials,
    roles,
    ...(customData ? { customData } : {}),
  };
}

/** Creates a user in a store, as `createUser` does; 51003 when it exists. */
export function createUser(store: UserStore, name: UserName, password: string, roles: RoleName[], mechanisms?: readonly Mechanism[], customData?: Document): UserDoc {
  if (store.find(name)) throw new CommandError(51003, `User "${displayName(name)}" already exists`);
  const doc = buildUserDoc(name, password, roles, mechanisms, customData);
  store.insert(doc);
  return doc;
}
