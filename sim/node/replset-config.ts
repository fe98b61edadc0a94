/**
 * A replica set's config document as mongod keeps it in `local.system.replset`: its shape, the defaults mongod fills
 * in for each member, and the two ways the simulator builds one (`replSetInitiate`, or a config another member sent).
 */
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import { CommandError, ErrorCodes } from '../wire/index.ts';

export interface MemberConfig {
  _id: number;
  host: string;
  arbiterOnly: boolean;
  buildIndexes: boolean;
  hidden: boolean;
  priority: number;
  tags: Document;
  secondaryDelaySecs: Long;
  votes: number;
}

export interface ReplSetConfig {
  _id: string;
  version: number;
  term: number;
  protocolVersion: Long;
  configsvr?: boolean;
  members: MemberConfig[];
  settings: Document;
}

/** Where `replSetGetConfig` lives in `local` (mongod keeps it in local.system.replset). */
export const REPLSET_CONFIG_NS = 'local.system.replset';

/** Fills in a member's defaults and checks what mongod checks for the fields the sim supports. */
export function normalizeMember(m: Document, index: number): MemberConfig {
  if (typeof m.host !== 'string') throw new CommandError(ErrorCodes.InvalidReplicaSetConfig, `members[${index}].host must be a string`);
  const hidden = m.hidden === true;
  const priority = m.priority === undefined ? (hidden ? 0 : 1) : Number(m.priority);
  const delay = Number(m.secondaryDelaySecs ?? 0);
  if (hidden && priority !== 0) {
    throw new CommandError(ErrorCodes.InvalidReplicaSetConfig, `priority must be 0 when hidden=true (members[${index}])`);
  }
  if (delay > 0 && priority !== 0) {
    throw new CommandError(ErrorCodes.InvalidReplicaSetConfig, `priority must be 0 when secondaryDelaySecs is used (members[${index}])`);
  }
  return {
    _id: Number(m._id ?? index),
    host: m.host,
    arbiterOnly: false,
    buildIndexes: true,
    hidden,
    priority,
    tags: (m.tags as Document) ?? {},
    secondaryDelaySecs: Long.fromNumber(delay),
    votes: m.votes === undefined ? 1 : Number(m.votes),
  };
}

/** A config as another member sent it (a heartbeat reply): members normalized as a reconfig normalizes them. */
export function configFrom(doc: Document): ReplSetConfig {
  return {
    _id: String(doc._id),
    version: Number(doc.version),
    term: Number(doc.term ?? 1),
    protocolVersion: Long.ONE,
    ...(doc.configsvr === true ? { configsvr: true } : {}),
    members: (doc.members as Document[]).map((m, i) => normalizeMember(m, i)),
    settings: (doc.settings as Document | undefined) ?? {},
  };
}

/** Builds a config from member hosts, as `rs.initiate()` would. */
export function initialConfig(name: string, members: Document[], configsvr = false): ReplSetConfig {
  return {
    _id: name,
    version: 1,
    term: 1,
    protocolVersion: Long.ONE,
    ...(configsvr ? { configsvr: true } : {}),
    members: members.map((m, i) => normalizeMember(m, i)),
    settings: { chainingAllowed: true, heartbeatIntervalMillis: 2000, electionTimeoutMillis: 10000 },
  };
}
