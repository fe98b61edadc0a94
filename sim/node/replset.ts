/**
 * An in-process replica set: a fixed primary (elections are not simulated), secondaries that apply the primary's
 * oplog after a configurable lag, the majority commit point, each member's committed snapshot and stable
 * timestamp, and the periodic no-op writer (sim.md section 5).
 *
 * Members live in this process; a member named in the config but not added here (another process) is reported
 * unreachable, which is how the mongod-compatible entry point runs a one-member set.
 */
import type { Document } from 'mongodb';
import { Long, ObjectId, Timestamp } from 'mongodb';
import type { Logger } from 'pino';
import type { OplogEntry, OplogOperation } from '../storage/index.ts';
import { CommandError, ErrorCodes } from '../wire/index.ts';
import { ClusterClock, compareTs, minTs, ZERO_TS } from './clock.ts';
import { STATE_CODES, type SimNode } from './node.ts';

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

interface MemberProgress {
  applied: Timestamp;
  /** The commit point this member learned with its last fetch. */
  knownCommit: Timestamp;
  lastHeartbeat: Date;
}

export class ReplicaSet {
  readonly clock: ClusterClock;
  readonly electionId = new ObjectId();
  private readonly nodes = new Map<string, SimNode>();
  private readonly progress = new Map<string, MemberProgress>();
  private timer: NodeJS.Timeout | undefined;
  private lastWriteWall = 0;
  private primaryHost: string | undefined;
  commitPoint: Timestamp = ZERO_TS;
  config: ReplSetConfig;

  constructor(
    readonly name: string,
    config: ReplSetConfig,
    private readonly log: Logger,
    clock?: ClusterClock,
  ) {
    this.clock = clock ?? new ClusterClock();
    this.config = config;
  }

  /** Builds a config from member hosts, as `rs.initiate()` would. */
  static initialConfig(name: string, members: Document[], configsvr = false): ReplSetConfig {
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

  /** Adds a local member (already started). The config must name it. */
  attach(node: SimNode): void {
    if (!this.config.members.some((m) => m.host === node.address)) {
      throw new Error(`sim bug: ${node.address} is not in the config of ${this.name}`);
    }
    node.rs = this;
    this.nodes.set(node.address, node);
    this.rejoin(node);
  }

  /** A restarted member (a new process on the same dbpath) takes the place of its crashed predecessor. */
  replaceNode(old: SimNode, fresh: SimNode): void {
    if (this.nodes.get(old.address) !== old) throw new Error(`sim bug: ${old.address} is not a member here`);
    fresh.rs = this;
    this.nodes.set(fresh.address, fresh);
    this.rejoin(fresh);
  }

  /** A member whose process (re)started: catch up from its own top of oplog. */
  rejoin(node: SimNode): void {
    const top = node.engine.oplogLast()?.ts ?? ZERO_TS;
    this.clock.observe(top);
    const prev = this.progress.get(node.address);
    this.progress.set(node.address, {
      applied: top,
      knownCommit: prev?.knownCommit ?? ZERO_TS,
      lastHeartbeat: new Date(),
    });
    node.state = this.electable(node.address) && (this.primaryHost === undefined || this.primaryHost === node.address) ? 'PRIMARY' : 'SECONDARY';
    if (node.state === 'PRIMARY') this.primaryHost = node.address;
    this.persistConfig(node);
    this.topologyChanged();
  }

  private electable(host: string): boolean {
    const m = this.member(host);
    if (!m || m.priority <= 0 || m.hidden) return false;
    // The designated primary is the highest-priority electable member (lowest _id on ties).
    const best = [...this.config.members]
      .filter((x) => x.priority > 0 && !x.hidden)
      .sort((a, b) => b.priority - a.priority || a._id - b._id)[0];
    return best?.host === host;
  }

  member(host: string): MemberConfig | undefined {
    return this.config.members.find((m) => m.host === host);
  }

  /** Local members, by host. */
  get localNodes(): SimNode[] {
    return [...this.nodes.values()];
  }

  /** The primary, if it is up. */
  primary(): SimNode | undefined {
    const p = this.primaryHost ? this.nodes.get(this.primaryHost) : undefined;
    return p?.up ? p : undefined;
  }

  /** Starts replication, commit point and no-op writer. */
  start(): void {
    this.timer ??= setInterval(() => this.tick(), 10);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * A replicated write on the primary: one oplog entry (an `applyOps` entry for several operations, committed
   * atomically at one timestamp). `ts` lets a caller commit on several replica sets at the same cluster time.
   */
  write(node: SimNode, ops: OplogOperation[], ts?: Timestamp): Timestamp {
    if (this.primary() !== node) throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary');
    if (ops.length === 0) throw new Error('sim bug: empty write');
    const at = ts ?? this.clock.next();
    this.clock.observe(at);
    const base = { ts: at, t: Long.fromNumber(this.config.term), v: 2, wall: new Date() };
    const entry: OplogEntry =
      ops.length === 1 ? { ...ops[0]!, ...base } : { op: 'c', ns: 'admin.$cmd', o: { applyOps: ops }, ...base };
    node.engine.logAndApply(entry);
    this.progress.get(node.address)!.applied = at;
    this.lastWriteWall = Date.now();
    this.advanceCommitPoint();
    return at;
  }

  /** Replication tick: secondaries fetch and apply, the commit point moves, stable timestamps follow. */
  tick(): void {
    const primary = this.primary();
    if (primary) {
      const noop = primary.params.get('simNoopIntervalMs') as number;
      if (noop > 0 && Date.now() - this.lastWriteWall >= noop) {
        this.guarded(primary, () => this.write(primary, [{ op: 'n', ns: '', o: { msg: 'periodic noop' } }]));
      }
      for (const node of this.nodes.values()) {
        if (node === primary || !node.up) continue;
        this.guarded(node, () => this.pull(node, primary));
      }
      this.advanceCommitPoint();
    }
    for (const node of this.nodes.values()) {
      if (!node.up) continue;
      this.guarded(node, () => {
        const snap = this.committedSnapshot(node);
        if (compareTs(snap, ZERO_TS) > 0) node.engine.setStableTimestamp(snap);
      });
    }
  }

  private guarded(node: SimNode, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: e, node: node.address }, 'replication step failed');
    }
  }

  /** A secondary applies what the primary wrote at least `lag` ago (its own lag plus secondaryDelaySecs). */
  private pull(node: SimNode, primary: SimNode): void {
    const p = this.progress.get(node.address)!;
    const m = this.member(node.address);
    const lag = (node.params.get('simReplicationLagMs') as number) + (m ? m.secondaryDelaySecs.toNumber() * 1000 : 0);
    const cutoff = Date.now() - lag;
    const entries = primary.engine.readOplog({ after: p.applied, limit: 2000 });
    for (const e of entries) {
      if (e.wall.getTime() > cutoff) break;
      node.engine.logAndApply(e);
      p.applied = e.ts;
    }
    // The commit point travels with fetched batches; a lagging member learns it late.
    p.knownCommit = minTs(this.commitPoint, p.applied);
    p.lastHeartbeat = new Date();
  }

  /** The primary's majority commit point: the newest timestamp a majority of voting members has applied. */
  private advanceCommitPoint(): void {
    const voters = this.config.members.filter((m) => m.votes > 0);
    const applied = voters
      .map((m) => this.progress.get(m.host)?.applied ?? ZERO_TS)
      .sort((a, b) => compareTs(b, a));
    const majority = Math.floor(voters.length / 2) + 1;
    const point = applied[majority - 1] ?? ZERO_TS;
    if (compareTs(point, this.commitPoint) > 0) this.commitPoint = point;
    const primary = this.primary();
    if (primary) this.progress.get(primary.address)!.knownCommit = this.commitPoint;
  }

  /** Last applied timestamp of a member. */
  applied(node: SimNode): Timestamp {
    return this.progress.get(node.address)?.applied ?? ZERO_TS;
  }

  /** A member's committed snapshot: min(commit point it knows, what it applied). */
  committedSnapshot(node: SimNode): Timestamp {
    const p = this.progress.get(node.address);
    return p ? minTs(p.knownCommit, p.applied) : ZERO_TS;
  }

  /** Wakes streaming `hello`s of every member: state or config changed. */
  topologyChanged(): void {
    for (const n of this.nodes.values()) n.topology.change();
  }

  private persistConfig(node: SimNode): void {
    const engine = node.engine;
    if (!engine.getCollection(REPLSET_CONFIG_NS)) engine.createCollection(REPLSET_CONFIG_NS);
    engine.replace(REPLSET_CONFIG_NS, { ...this.config }, { upsert: true });
  }

  /** `replSetReconfig`: a higher version, the same set name, the same members' hosts may change fields. */
  reconfig(newConfig: Document, force: boolean): void {
    if (newConfig._id !== this.name) {
      throw new CommandError(ErrorCodes.InvalidReplicaSetConfig, `New and old configurations differ in replica set name; old was ${this.name}, and new is ${String(newConfig._id)}`);
    }
    const version = Number(newConfig.version);
    if (!force && !(version > this.config.version)) {
      throw new CommandError(103, `New replica set configuration version must be greater than old, but ${version} is not greater than ${this.config.version} for replica set ${this.name}`);
    }
    if (!Array.isArray(newConfig.members) || newConfig.members.length === 0) {
      throw new CommandError(ErrorCodes.InvalidReplicaSetConfig, 'members must be a non-empty array');
    }
    const members = (newConfig.members as Document[]).map((m, i) => normalizeMember(m, i));
    this.config = { ...this.config, version: force ? Math.max(version, this.config.version + 1) : version, members, settings: (newConfig.settings as Document) ?? this.config.settings };
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      this.persistConfig(n);
      if (!this.member(n.address)) n.state = 'REMOVED';
    }
    this.topologyChanged();
  }

  /** The replica-set fields of `hello` for one member. */
  helloFields(node: SimNode): Document {
    const m = this.member(node.address);
    const primary = this.primary();
    const visible = this.config.members.filter((x) => !x.hidden && !x.arbiterOnly);
    const top = this.applied(node);
    const majority = this.committedSnapshot(node);
    const t = Long.fromNumber(this.config.term);
    return {
      isWritablePrimary: node.state === 'PRIMARY' && primary === node,
      secondary: node.state === 'SECONDARY',
      ...(m?.hidden ? { hidden: true } : {}),
      ...(m && m.priority === 0 && !m.hidden ? { passive: true } : {}),
      ...(m && m.secondaryDelaySecs.toNumber() > 0 ? { secondaryDelaySecs: m.secondaryDelaySecs } : {}),
      setName: this.name,
      setVersion: this.config.version,
      hosts: visible.filter((x) => x.priority > 0).map((x) => x.host),
      ...(visible.some((x) => x.priority === 0) ? { passives: visible.filter((x) => x.priority === 0).map((x) => x.host) } : {}),
      ...(primary ? { primary: primary.address } : {}),
      me: node.address,
      ...(node.state === 'PRIMARY' ? { electionId: this.electionId } : {}),
      lastWrite: {
        opTime: { ts: top, t },
        lastWriteDate: new Date(top.high * 1000),
        majorityOpTime: { ts: majority, t },
        majorityWriteDate: new Date(majority.high * 1000),
      },
      ...(this.config.configsvr ? { configsvr: 2 } : {}),
    };
  }

  /** `replSetGetStatus` as seen from `self`. */
  status(self: SimNode): Document {
    const now = new Date();
    const optime = (ts: Timestamp) => ({ ts, t: Long.fromNumber(this.config.term) });
    const members = this.config.members.map((m) => {
      const node = this.nodes.get(m.host);
      const up = node?.up === true;
      const applied = this.progress.get(m.host)?.applied ?? ZERO_TS;
      const state = up ? node!.state : 'DOWN';
      return {
        _id: m._id,
        name: m.host,
        health: up ? 1 : 0,
        state: STATE_CODES[state],
        stateStr: state === 'DOWN' ? '(not reachable/healthy)' : state,
        uptime: up ? Math.floor((now.getTime() - node!.startedAt.getTime()) / 1000) : 0,
        optime: optime(applied),
        optimeDate: new Date(applied.high * 1000),
        lastAppliedWallTime: new Date(applied.high * 1000),
        ...(m.host === self.address ? { self: true } : { lastHeartbeat: this.progress.get(m.host)?.lastHeartbeat ?? new Date(0) }),
      };
    });
    return {
      set: this.name,
      date: now,
      myState: STATE_CODES[self.state],
      term: Long.fromNumber(this.config.term),
      heartbeatIntervalMillis: Long.fromNumber(2000),
      majorityVoteCount: Math.floor(this.config.members.filter((m) => m.votes > 0).length / 2) + 1,
      optimes: {
        lastCommittedOpTime: optime(this.commitPoint),
        readConcernMajorityOpTime: optime(this.committedSnapshot(self)),
        appliedOpTime: optime(this.applied(self)),
        durableOpTime: optime(this.applied(self)),
      },
      members,
    };
  }

  /** Stops the loop and every local member cleanly. */
  async shutdown(): Promise<void> {
    this.stop();
    for (const n of this.nodes.values()) if (n.up) await n.stop();
  }
}

export { Timestamp };
