/**
 * An in-process replica set: a fixed primary unless `replSetStepDown` / `replSetStepUp` hand the role over
 * (election.ts: no election happens otherwise), secondaries that apply the primary's oplog after a configurable lag, the majority commit point, each member's committed snapshot and stable
 * timestamp, and the periodic no-op writer (docs/simulator.md, "Replication and time").
 *
 * Members attached here share this object. A member named in the config but running in another process (a mongod
 * entry point) is reached over the wire as mongod reaches it: heartbeats (remote-member.ts, heartbeat.ts) deliver the
 * config and report its state and optime; a local member whose primary is remote pulls that primary's oplog
 * (oplog-sync.ts) and applies it through {@link ReplicaSet.applyFetched}, as in-process secondaries do.
 */
import type { Document, ObjectId } from 'mongodb';
import { Long, Timestamp } from 'mongodb';
import type { Logger } from 'pino';
import type { OplogEntry, OplogOperation } from '../storage/index.ts';
import { CommandError, ErrorCodes } from '../wire/index.ts';
import { ClusterClock, compareTs, minTs, ZERO_TS } from './clock.ts';
import { electionIdOf, Elections, type CandidateView, type StepDownOptions } from './election.ts';
import { STATE_CODES } from './member-state.ts';
import { OplogSync, type SyncOwner } from './oplog-sync.ts';
import { RemoteMember, type HeartbeatOwner } from './remote-member.ts';
import { configFrom, normalizeMember, REPLSET_CONFIG_NS, type MemberConfig, type ReplSetConfig } from './replset-config.ts';
import type { NodeReplicaSet, SimNode } from './types.ts';

interface MemberProgress {
  applied: Timestamp;
  /** The commit point this member learned with its last fetch. */
  knownCommit: Timestamp;
  lastHeartbeat: Date;
}

export class ReplicaSet implements HeartbeatOwner, SyncOwner, NodeReplicaSet {
  readonly clock: ClusterClock;
  /** mongod's OID::fromTerm of the primary's term: it grows with each election, which the drivers' SDAM relies on. */
  electionId: ObjectId;
  private readonly nodes = new Map<string, SimNode>();
  private readonly progress = new Map<string, MemberProgress>();
  /** Members of the config in other processes, by host. */
  private readonly remotes = new Map<string, RemoteMember>();
  /** Oplog fetchers of local members whose primary is in another process, by host. */
  private readonly syncs = new Map<string, OplogSync>();
  /** Connections of remote members dropped from the config, still closing. */
  private readonly closing = new Set<Promise<void>>();
  private started = false;
  /** Set by {@link attach} `joining`: the primary is in another process. */
  private joinedRunningSet = false;
  private timer: NodeJS.Timeout | undefined;
  private lastWriteWall = 0;
  private primaryHost: string | undefined;
  /** Step-down and election state (election.ts). */
  readonly elections = new Elections();
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
    this.electionId = electionIdOf(config.term);
  }

  /**
   * Adds a local member (already started). The config must name it. `joining`: the member was added to a running set
   * (its config came from a heartbeat), whose primary is elsewhere; it never makes itself primary, whatever its
   * priority (elections are not simulated).
   */
  attach(node: SimNode, opts: { joining?: boolean } = {}): void {
    if (!this.config.members.some((m) => m.host === node.address)) {
      throw new Error(`sim bug: ${node.address} is not in the config of ${this.name}`);
    }
    if (opts.joining) this.joinedRunningSet = true;
    node.rs = this;
    this.nodes.set(node.address, node);
    this.reconcileRemotes();
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
    const mayLead = !this.joinedRunningSet && this.electable(node.address);
    if (this.joinedRunningSet && compareTs(top, ZERO_TS) === 0) {
      // A member added to a running set with no oplog needs an initial sync: mongod enters STARTUP2 at once (its
      // data replication starts with one) and never reports SECONDARY before it (oplog-sync.ts keeps it there).
      node.state = 'STARTUP2';
    } else {
      node.state = (mayLead && this.primaryHost === undefined) || this.primaryHost === node.address ? 'PRIMARY' : 'SECONDARY';
    }
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

  /** The local member at `host`, if any. */
  localNode(host: string): SimNode | undefined {
    return this.nodes.get(host);
  }

  /** The member at `host` in another process, if the config names one there. */
  remoteMember(host: string): RemoteMember | undefined {
    return this.remotes.get(host);
  }

  /** The key file's key of the local members (they share one), for the connections to members in other processes. */
  internalKey(): string | undefined {
    return this.localNodes.find((n) => n.internalKey !== undefined)?.internalKey;
  }

  /** The primary, if it is up in this process. */
  primary(): SimNode | undefined {
    const p = this.primaryHost ? this.nodes.get(this.primaryHost) : undefined;
    return p?.up ? p : undefined;
  }

  /** A primary in another process that answers heartbeats: the sync source of local members (no chaining). */
  syncSource(): RemoteMember | undefined {
    return [...this.remotes.values()].find((r) => r.health === 1 && r.state === 'PRIMARY');
  }

  /** host:port of the primary, local or remote, as `hello` names it. */
  primaryAddress(): string | undefined {
    return this.primary()?.address ?? this.syncSource()?.host;
  }

  /** Starts replication, commit point, no-op writer, and heartbeats to members in other processes. */
  start(): void {
    this.started = true;
    this.timer ??= setInterval(() => this.tick(), 10);
    this.timer.unref();
    this.reconcileRemotes();
  }

  /** Stops the loop, the oplog fetchers and the heartbeats; resolves when their connections are closed. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const syncs = [...this.syncs.values()];
    this.syncs.clear();
    // Fetchers first: they read through the remote members' connections.
    await Promise.all(syncs.map((s) => s.stop()));
    const remotes = [...this.remotes.values()];
    this.remotes.clear();
    await Promise.all([...remotes.map((r) => r.stop()), ...this.closing]);
  }

  /** One {@link RemoteMember} per config member not attached here, none for members the config no longer names. */
  private reconcileRemotes(): void {
    if (!this.started) return;
    const wanted = new Set(this.config.members.map((m) => m.host).filter((h) => !this.nodes.has(h)));
    for (const [host, r] of this.remotes) {
      if (wanted.has(host)) continue;
      this.remotes.delete(host);
      const closed = r.stop().finally(() => this.closing.delete(closed));
      this.closing.add(closed);
    }
    for (const host of wanted) {
      if (this.remotes.has(host)) continue;
      const r = new RemoteMember(host, this, this.log);
      this.remotes.set(host, r);
      r.start();
    }
  }

  /**
   * A replicated write on the primary: one oplog entry (an `applyOps` entry for several operations, committed
   * atomically at one timestamp). `ts` lets a caller commit on several replica sets at the same cluster time.
   */
  write(node: SimNode, ops: OplogOperation[], ts?: Timestamp, txn?: Document): Timestamp {
    this.assertWritable(node);
    if (ops.length === 0) throw new Error('sim bug: empty write');
    const at = ts ?? this.clock.next();
    this.clock.observe(at);
    const base = { ts: at, t: Long.fromNumber(this.config.term), v: 2, wall: new Date() };
    const entry: OplogEntry =
      txn !== undefined
        ? ({ ...txn, op: 'c', ns: 'admin.$cmd', o: { applyOps: ops }, ...base } as OplogEntry)
        : ops.length === 1
          ? { ...ops[0]!, ...base }
          : { op: 'c', ns: 'admin.$cmd', o: { applyOps: ops }, ...base };
    node.engine.logAndApply(entry);
    this.progress.get(node.address)!.applied = at;
    this.lastWriteWall = Date.now();
    this.advanceCommitPoint();
    return at;
  }

  /**
   * A command oplog entry on the primary (`op: 'c'`, `ns: 'admin.$cmd'`): a prepared transaction's prepare, commit
   * or abort entry (prepare.ts), with its session fields (and `wall`, when the caller dates several entries as one
   * instant). Returns its timestamp.
   */
  writeCommand(node: SimNode, o: Document, fields: Document): Timestamp {
    this.assertWritable(node);
    const at = this.clock.next();
    const wall = fields.wall instanceof Date ? fields.wall : new Date();
    const entry = { ...fields, op: 'c', ns: 'admin.$cmd', o, ts: at, t: Long.fromNumber(this.config.term), v: 2, wall } as OplogEntry;
    node.engine.logAndApply(entry);
    this.progress.get(node.address)!.applied = at;
    this.lastWriteWall = Date.now();
    this.advanceCommitPoint();
    return at;
  }

  /**
   * Writes go to the primary only (NotWritablePrimary elsewhere); while it steps down (election.ts) they are
   * interrupted as mongod interrupts writes that conflict with the step-down's replication state transition lock.
   */
  private assertWritable(node: SimNode): void {
    if (this.primary() !== node) throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary');
    if (this.elections.steppingDown) throw new CommandError(ErrorCodes.InterruptedDueToReplStateChange, 'operation was interrupted because of a replication state change: the primary is stepping down');
  }

  /** The term of the primary's entries (a prepare entry's optime is `{ts, t}`). */
  get term(): number {
    return this.config.term;
  }

  /** Replication tick: secondaries fetch and apply, the commit point moves, stable timestamps follow. */
  tick(): void {
    const primary = this.primary();
    if (primary) {
      const noop = primary.params.get('simNoopIntervalMs') as number;
      if (noop > 0 && !this.elections.steppingDown && Date.now() - this.lastWriteWall >= noop) {
        this.guarded(primary, () => this.write(primary, [{ op: 'n', ns: '', o: { msg: 'periodic noop' } }]));
      }
      for (const node of this.nodes.values()) {
        if (node === primary || !node.up) continue;
        this.guarded(node, () => this.pull(node, primary));
      }
      this.advanceCommitPoint();
    } else if (this.remotes.size > 0) {
      this.followRemotePrimary();
    } else if (this.elections.pending) {
      // After a step-down without a caught-up successor: members sync from the freshest one (chaining) until one
      // can win an election (election.ts).
      const source = this.freshest();
      for (const node of this.nodes.values()) if (source && node !== source && node.up) this.guarded(node, () => this.pull(node, source));
      this.runElection();
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

  /** An in-process secondary fetches from the primary's oplog directly. */
  private pull(node: SimNode, primary: SimNode): void {
    this.applyFetched(node, primary.engine.readOplog({ after: this.applied(node), limit: 2000 }));
  }

  /** Local members without a local primary fetch from the primary in another process (oplog-sync.ts). */
  private followRemotePrimary(): void {
    for (const node of this.nodes.values()) {
      if (!node.up || this.syncs.has(node.address)) continue;
      const s = new OplogSync(this, node.address, this.log.child({ node: node.address }));
      this.syncs.set(node.address, s);
      s.start();
    }
  }

  /**
   * A secondary applies entries fetched from its sync source, oldest first, after its own last applied one: those
   * the primary wrote at least `lag` ago (its own lag plus secondaryDelaySecs); the rest wait for the next fetch.
   * The one apply path of every secondary, whether the primary is in this process or not. Returns how many it applied.
   */
  applyFetched(node: SimNode, entries: OplogEntry[]): number {
    const p = this.progress.get(node.address)!;
    const m = this.member(node.address);
    const lag = (node.params.get('simReplicationLagMs') as number) + (m ? m.secondaryDelaySecs.toNumber() * 1000 : 0);
    const cutoff = Date.now() - lag;
    let n = 0;
    for (const e of entries) {
      if (e.wall.getTime() > cutoff) break;
      node.engine.logAndApply(e);
      // Entries from another process carry that process's clock: $clusterTime here must not fall behind them.
      this.clock.observe(e.ts);
      p.applied = e.ts;
      n++;
    }
    // The commit point travels with fetched batches; a lagging member learns it late.
    p.knownCommit = minTs(this.commitPoint, p.applied);
    p.lastHeartbeat = new Date();
    return n;
  }

  /** The primary's majority commit point: the newest timestamp a majority of voting members has applied. */
  private advanceCommitPoint(): void {
    const voters = this.config.members.filter((m) => m.votes > 0);
    const applied = voters
      .map((m) => this.progress.get(m.host)?.applied ?? this.remotes.get(m.host)?.applied ?? ZERO_TS)
      .sort((a, b) => compareTs(b, a));
    const majority = Math.floor(voters.length / 2) + 1;
    const point = applied[majority - 1] ?? ZERO_TS;
    // Raft: a primary commits only once an entry of its own term (its "new primary" no-op) is on a majority.
    if (compareTs(point, this.commitPoint) > 0 && compareTs(point, this.elections.termStart) >= 0) this.commitPoint = point;
    const primary = this.primary();
    if (primary) this.progress.get(primary.address)!.knownCommit = this.commitPoint;
  }

  /** The up local member with the newest oplog. */
  private freshest(): SimNode | undefined {
    return this.localNodes.filter((n) => n.up).sort((a, b) => compareTs(this.applied(b), this.applied(a)))[0];
  }

  /**
   * `replSetStepDown` on `node` (election.ts has the rules): writes are interrupted at once; the primary waits up to
   * `catchUpSecs` for a majority of voters, one of them electable, to reach its last applied entry, then becomes a
   * secondary that no election picks for `stepDownSecs`, and the freshest electable member is elected (mongod's
   * election handoff). ExceededTimeLimit when none caught up in time and not `force`.
   */
  async stepDown(node: SimNode, opts: StepDownOptions): Promise<void> {
    if (this.primary() !== node || node.state !== 'PRIMARY') throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary so can\'t step down');
    if (this.elections.steppingDown) throw new CommandError(ErrorCodes.ConflictingOperationInProgress, 'A step down is already in progress');
    this.elections.steppingDown = true;
    try {
      const deadline = Date.now() + opts.catchUpSecs * 1000;
      while (!this.safeToStepDown(node) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      if (this.primary() !== node) throw new CommandError(ErrorCodes.NotWritablePrimary, 'not primary so can\'t step down');
      if (!this.safeToStepDown(node) && !opts.force) {
        throw new CommandError(ErrorCodes.ExceededTimeLimit, `No electable secondaries caught up as of ${new Date().toISOString()}. Please use the replSetStepDown command with the argument {force: true} to force node to step down.`);
      }
      node.state = 'SECONDARY';
      this.primaryHost = undefined;
      this.elections.freeze(node.address, opts.stepDownSecs);
      this.elections.pending = true;
      this.log.info({ node: node.address, term: this.config.term }, 'stepped down');
    } finally {
      this.elections.steppingDown = false;
    }
    this.topologyChanged();
    this.runElection();
  }

  /** `replSetStepUp` on a secondary: it wins only if it is electable and as fresh as every up voter (CommandFailed). */
  stepUp(node: SimNode): void {
    if (this.primary() === node) return;
    if (!this.elections.canWin(this.candidateView(node), this.voterViews())) throw new CommandError(ErrorCodes.CommandFailed, 'Election failed.');
    const old = this.primary();
    if (old) old.state = 'SECONDARY';
    this.elect(node);
  }

  /** A pending election: the best candidate that can win takes office. */
  private runElection(): void {
    if (!this.elections.pending || this.primary()) return;
    const voters = this.voterViews();
    const winner = this.elections.choose(this.localNodes.filter((n) => n.up && n.state === 'SECONDARY').map((n) => this.candidateView(n)), voters);
    const node = winner ? this.nodes.get(winner) : undefined;
    if (node) this.elect(node);
  }

  private candidateView(node: SimNode): CandidateView {
    const m = this.member(node.address);
    return { host: node.address, up: node.up && node.state === 'SECONDARY', priority: m?.priority ?? 0, hidden: m?.hidden ?? true, votes: m?.votes ?? 0, id: m?._id ?? -1, applied: this.applied(node) };
  }

  private voterViews(): { up: boolean; applied: Timestamp }[] {
    return this.config.members
      .filter((m) => m.votes > 0)
      .map((m) => {
        const n = this.nodes.get(m.host);
        return { up: n?.up === true, applied: this.progress.get(m.host)?.applied ?? ZERO_TS };
      });
  }

  /** mongod's isSafeToStepDown: a majority of voters (the primary counted) and one electable secondary at its last applied. */
  private safeToStepDown(primary: SimNode): boolean {
    const top = this.applied(primary);
    const voters = this.config.members.filter((m) => m.votes > 0);
    const caughtUp = voters.filter((m) => compareTs(this.progress.get(m.host)?.applied ?? ZERO_TS, top) >= 0);
    if (caughtUp.length < Math.floor(voters.length / 2) + 1) return false;
    return caughtUp.some((m) => {
      const n = this.nodes.get(m.host);
      return n && n !== primary && n.up && n.state === 'SECONDARY' && this.elections.eligible(this.candidateView(n));
    });
  }

  /** `node` wins the election of term + 1: config term, electionId, "new primary" no-op, every member's hello. */
  private elect(node: SimNode): void {
    const term = this.config.term + 1;
    this.config = { ...this.config, term };
    this.electionId = electionIdOf(term);
    for (const n of this.nodes.values()) if (n.up) this.persistConfig(n);
    this.primaryHost = node.address;
    node.state = 'PRIMARY';
    this.elections.pending = false;
    this.elections.termStart = this.write(node, [{ op: 'n', ns: '', o: { msg: 'new primary' } }]);
    this.log.info({ node: node.address, term }, 'elected primary');
    this.topologyChanged();
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

  /** The `replSetHeartbeat` request this set sends to its members in other processes (mongod's ReplSetHeartbeatArgsV1). */
  heartbeatRequest(): Document {
    const self = this.primary() ?? this.localNodes.find((n) => n.up);
    return {
      replSetHeartbeat: this.name,
      configVersion: this.config.version,
      configTerm: Long.fromNumber(this.config.term),
      hbv: 1,
      from: self?.address ?? '',
      fromId: (self && this.member(self.address)?._id) ?? -1,
      term: Long.fromNumber(this.config.term),
    };
  }

  heartbeatIntervalMs(): number {
    return Number(this.config.settings.heartbeatIntervalMillis ?? 2000);
  }

  /** A heartbeat reply: a newer config is installed, the commit point learned from the primary, hello woken on changes. */
  onHeartbeat(member: RemoteMember, reply: Document | undefined, changed: boolean): void {
    if (reply) {
      this.clock.observe(member.applied);
      const config = reply.config as Document | undefined;
      if (config && config._id === this.name && Number(config.version) > this.config.version) {
        this.log.info({ from: member.host, version: config.version }, 'new replica set config from a heartbeat');
        this.installConfig(configFrom(config));
      }
      // A secondary learns the commit point from its primary ($replData of heartbeats and fetches); a primary computes it.
      const committed = (reply.$replData as Document | undefined)?.lastOpCommitted as { ts?: Timestamp } | undefined;
      if (!this.primary() && member.state === 'PRIMARY' && committed?.ts && compareTs(committed.ts, this.commitPoint) > 0) this.commitPoint = committed.ts;
    }
    if (changed) this.topologyChanged();
  }

  /** The reply to a heartbeat from a member of another process (mongod's prepareHeartbeatResponseV1, reduced). */
  heartbeatResponse(node: SimNode, askerConfigVersion: number): Document {
    const t = Long.fromNumber(this.config.term);
    const applied = this.applied(node);
    const wall = new Date(applied.high * 1000);
    const primary = this.primaryAddress();
    const primaryId = primary === undefined ? undefined : this.member(primary)?._id;
    return {
      set: this.name,
      state: STATE_CODES[node.state],
      opTime: { ts: applied, t },
      wallTime: wall,
      durableOpTime: { ts: applied, t },
      durableWallTime: wall,
      ...(primaryId !== undefined ? { primaryId } : {}),
      term: t,
      v: this.config.version,
      configTerm: t,
      // mongod delivers its config to a member whose config is older (or that has none: version -2).
      ...(askerConfigVersion < this.config.version ? { config: this.config } : {}),
      $replData: {
        term: t,
        lastOpCommitted: { ts: this.commitPoint, t },
        lastCommittedWall: new Date(this.commitPoint.high * 1000),
        configVersion: this.config.version,
        configTerm: t,
        primaryIndex: primary === undefined ? -1 : this.config.members.findIndex((m) => m.host === primary),
      },
    };
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
    this.installConfig({ ...this.config, version: force ? Math.max(version, this.config.version + 1) : version, members, settings: (newConfig.settings as Document) ?? this.config.settings });
    // mongod heartbeats every member at once after a reconfig, so members elsewhere learn the config without delay.
    for (const r of this.remotes.values()) r.heartbeatNow();
  }

  /** A new config (replSetReconfig here, or a heartbeat reply): persisted by every local member, remotes reconciled. */
  private installConfig(config: ReplSetConfig): void {
    this.config = config;
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      this.persistConfig(n);
      if (!this.member(n.address)) n.state = 'REMOVED';
    }
    this.reconcileRemotes();
    this.topologyChanged();
  }

  /** The replica-set fields of `hello` for one member. */
  helloFields(node: SimNode): Document {
    const m = this.member(node.address);
    const primary = this.primary();
    const primaryAddress = this.primaryAddress();
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
      ...(primaryAddress ? { primary: primaryAddress } : {}),
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
      const remote = this.remotes.get(m.host);
      if (!node && remote) return this.remoteStatus(m, remote, now);
      const info = this.syncs.get(m.host)?.infoMessage;
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
        ...(info && up ? { infoMessage: info } : {}),
        ...(m.host === self.address ? { self: true } : { lastHeartbeat: this.progress.get(m.host)?.lastHeartbeat ?? new Date(0) }),
      };
    });
    return {
      set: this.name,
      date: now,
      myState: STATE_CODES[self.state],
      term: Long.fromNumber(this.config.term),
      heartbeatIntervalMillis: Long.fromNumber(this.heartbeatIntervalMs()),
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

  /** A member in another process in `replSetGetStatus`: what its last heartbeat reply said. */
  private remoteStatus(m: MemberConfig, r: RemoteMember, now: Date): Document {
    const up = r.health === 1;
    return {
      _id: m._id,
      name: m.host,
      health: r.health,
      state: STATE_CODES[up ? r.state : 'DOWN'],
      stateStr: up ? r.state : '(not reachable/healthy)',
      uptime: r.upSince ? Math.floor((now.getTime() - r.upSince.getTime()) / 1000) : 0,
      optime: { ts: r.applied, t: Long.fromNumber(this.config.term) },
      optimeDate: new Date(r.applied.high * 1000),
      lastAppliedWallTime: new Date(r.applied.high * 1000),
      lastHeartbeat: r.lastHeartbeat,
      ...(r.lastError ? { lastHeartbeatMessage: r.lastError } : {}),
      configVersion: r.configVersion,
    };
  }

  /** Stops the loop, the connections to other processes, and every local member cleanly. */
  async shutdown(): Promise<void> {
    await this.stop();
    for (const n of this.nodes.values()) if (n.up) await n.stop();
  }
}

export { Timestamp };
