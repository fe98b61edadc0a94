/**
 * Internal authentication of a node started with `--keyFile` (mongod's `setUpSecurityKey` in
 * src/mongo/db/auth/security_key.cpp): the node holds the internal user `__system` on `local`, with SCRAM-SHA-1 and
 * SCRAM-SHA-256 credentials derived from the key (lib/mongo/keyfile.ts: the file's contents without whitespace; fresh
 * salts at every start, as mongod draws them) and the built-in role `__system` (every action, `internal` on the
 * cluster included). The user lives in memory only: it is not in `admin.system.users`, so it neither replicates nor
 * closes the localhost exception.
 *
 * The node also authenticates as `__system` with its key on every connection it opens to a member in another process
 * (remote-member.ts `peerClient`: heartbeats, the config seeker and the oplog fetcher share it). A member with another
 * key, or none, fails: 18 AuthenticationFailed at the SCRAM step, or 13 Unauthorized (`Command replSetHeartbeat
 * requires authentication`) from a member with auth for a member that does not authenticate.
 */
import { INTERNAL_USER } from '../../../lib/mongo/keyfile.ts';
import type { SimNode } from '../types.ts';
import { buildUserDoc, type UserDoc, type UserStore } from './users.ts';
import type { UserName } from './user-name.ts';

/** The internal user of a key (new salts each time, as a mongod start draws them). */
export function internalUserDoc(key: string): UserDoc {
  return buildUserDoc({ user: INTERNAL_USER.user, db: INTERNAL_USER.db }, key, [{ role: '__system', db: 'admin' }]);
}

const docs = new WeakMap<SimNode, UserDoc>();

/** The node's internal user, when it was started with a key file (made once per node). */
export function internalUserOf(node: SimNode): UserDoc | undefined {
  if (node.internalKey === undefined) return undefined;
  let doc = docs.get(node);
  if (!doc) {
    doc = internalUserDoc(node.internalKey);
    docs.set(node, doc);
  }
  return doc;
}

/** A node's users plus its internal user, which `find` knows and `list` (the localhost exception's count) does not. */
export class InternalUserStore implements UserStore {
  constructor(
    private readonly inner: UserStore,
    private readonly internal: UserDoc,
  ) {}

  find(name: UserName): UserDoc | undefined {
    if (name.user === this.internal.user && name.db === this.internal.db) return this.internal;
    return this.inner.find(name);
  }

  list(db?: string): UserDoc[] {
    return this.inner.list(db);
  }

  insert(doc: UserDoc): void {
    this.inner.insert(doc);
  }
}
