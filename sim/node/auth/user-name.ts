/** A user's name (`{user, db}`), as mongod prints it and as logical sessions digest it. */
import { createHash } from 'node:crypto';

export interface UserName {
  user: string;
  db: string;
}

/** `user@db`, mongod's display name (the logical-session uid is the SHA-256 of it). */
export function displayName(u: UserName): string {
  return `${u.user}@${u.db}`;
}

/** The uid of a user's logical sessions: SHA-256 of `user@db`; with no user (auth off), SHA-256 of "". */
export function sessionUid(u: UserName | undefined): Buffer {
  return createHash('sha256').update(u ? displayName(u) : '', 'utf8').digest();
}
