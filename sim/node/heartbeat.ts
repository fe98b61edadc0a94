/**
 * `replSetHeartbeat`, the command replica-set members send each other (mongod's `processHeartbeatV1` and
 * `TopologyCoordinator::prepareHeartbeatResponseV1`, reduced to the fields the simulator uses), and how a member
 * started with `--replSet` and no config learns one: a member whose config names it heartbeats it; it answers as
 * STARTUP with config version -2 and heartbeats the sender back, whose reply carries its config because the asker's
 * version is older. Members in one process never need this (they share a {@link ReplicaSet}); members in different
 * processes do (remote-member.ts).
 */
import type { Document } from 'mongodb';
import { Long } from 'mongodb';
import { CommandError, ErrorCodes } from '../wire/index.ts';
import { STATE_CODES } from './member-state.ts';
import { RemoteMember, type HeartbeatOwner } from './remote-member.ts';
import { configFrom } from './replset-config.ts';
import type { CommandImpl, NodeConfigSeeker, SimNode } from './types.ts';

/** mongod's `InconsistentReplicaSetNames`. */
const INCONSISTENT_REPLICA_SET_NAMES = 108;

export const replSetHeartbeat: CommandImpl = (ctx) => {
  const { node, command } = ctx;
  if (!node.options.replSet) throw new CommandError(ErrorCodes.NoReplicationEnabled, 'not running with --replSet', { codeName: 'NoReplicationEnabled' });
  const ourName = node.rs?.name ?? node.options.replSet;
  if (command.replSetHeartbeat !== ourName) {
    throw new CommandError(INCONSISTENT_REPLICA_SET_NAMES, `Our set name of ${ourName} does not match name ${String(command.replSetHeartbeat)} reported by remote node`, {
      codeName: 'InconsistentReplicaSetNames',
    });
  }
  const from = typeof command.from === 'string' ? command.from : '';
  const askerVersion = Number(command.configVersion ?? -2);
  const rs = node.rs;
  if (!rs) {
    // mongod: a node outside any config it knows heartbeats every sender back, "in case one of those remote nodes
    // has a configuration that contains us" — the only reason anyone heartbeats it.
    if (from && node.adoptConfig) seekConfig(node, from);
    const top = node.engine.oplogLast();
    return {
      set: ourName,
      state: STATE_CODES.STARTUP,
      ...(top ? { opTime: { ts: top.ts, t: top.t }, wallTime: top.wall, durableOpTime: { ts: top.ts, t: top.t }, durableWallTime: top.wall } : {}),
      term: Long.fromNumber(-1),
      v: -2,
    };
  }
  const reply = rs.heartbeatResponse(node, askerVersion);
  // The sender has a newer config: fetch it with a heartbeat of our own (its reply carries it).
  if (from && askerVersion > rs.config.version) rs.remoteMember(from)?.heartbeatNow();
  return reply;
};

/**
 * The heartbeats of a member that has no config yet, to every member that heartbeated it (mongod's seed list), until
 * one replies with a config that names this member.
 */
export class ConfigSeeker implements HeartbeatOwner, NodeConfigSeeker {
  private readonly seeds = new Map<string, RemoteMember>();
  private done = false;

  constructor(private readonly node: SimNode) {}

  /** Heartbeats `host` from now on (once per host). */
  add(host: string): void {
    if (this.done || this.seeds.has(host)) return;
    const m = new RemoteMember(host, this, this.node.log);
    this.seeds.set(host, m);
    m.start();
  }

  heartbeatRequest(): Document {
    return { replSetHeartbeat: this.node.options.replSet, configVersion: -2, hbv: 1, from: this.node.address, fromId: -1, term: Long.fromNumber(-1) };
  }

  heartbeatIntervalMs(): number {
    return 2000;
  }

  internalKey(): string | undefined {
    return this.node.internalKey;
  }

  onHeartbeat(member: RemoteMember, reply: Document | undefined): void {
    const config = reply?.config as Document | undefined;
    if (this.done || !config || this.node.rs || !this.node.up) return;
    if (config._id !== this.node.options.replSet || !Array.isArray(config.members)) return;
    if (!(config.members as Document[]).some((m) => m.host === this.node.address)) {
      this.node.log.warn({ from: member.host, version: config.version }, 'a heartbeat reply carried a config that does not include this node');
      return;
    }
    this.done = true;
    void this.stop();
    this.node.adoptConfig?.(configFrom(config));
  }

  /** Stops every heartbeat and closes the connections. */
  async stop(): Promise<void> {
    this.done = true;
    const seeds = [...this.seeds.values()];
    this.seeds.clear();
    await Promise.all(seeds.map((m) => m.stop()));
  }
}

function seekConfig(node: SimNode, from: string): void {
  node.configSeeker ??= new ConfigSeeker(node);
  node.configSeeker.add(from);
}
