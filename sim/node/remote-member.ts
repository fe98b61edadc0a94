/**
 * A replica-set member running in another process, as this process knows it: through `replSetHeartbeat` sent over
 * the wire with the real driver, every `heartbeatIntervalMillis`, as mongod's heartbeats do. What the replies say
 * (health, state, optime, config version) is this process's view of that member: replSetGetStatus reports it, the
 * primary counts its optime towards the commit point, and a member whose primary is remote picks it as sync source.
 */
import { MongoClient, type Document, type Timestamp } from 'mongodb';
import type { Logger } from 'pino';
import { internalAuthOptions } from '../../lib/mongo/keyfile.ts';
import { ZERO_TS } from './clock.ts';
import { memberStateOf, type MemberState } from './member-state.ts';

/** Who sends the heartbeats: a replica set (heartbeat.ts builds its request), or a member still waiting for a config. */
export interface HeartbeatOwner {
  /** The `replSetHeartbeat` command to send (mongod's `ReplSetHeartbeatArgsV1`). */
  heartbeatRequest(): Document;
  /** Milliseconds between two heartbeats to one member (the config's `settings.heartbeatIntervalMillis`). */
  heartbeatIntervalMs(): number;
  /** After every heartbeat: the reply (undefined when it failed); `changed` when health or state changed. */
  onHeartbeat(member: RemoteMember, reply: Document | undefined, changed: boolean): void;
  /** The key of the local member's `--keyFile`: connections to other members authenticate as `__system` with it. */
  internalKey(): string | undefined;
}

/**
 * A direct connection to another member, as mongod's replication network interface has. Int64s stay `Long`, so
 * oplog entries fetched through it are stored exactly as the source stores them (the storage engine's own rule).
 * With a key (`--keyFile`), it authenticates as the internal user `__system` (auth/internal.ts), as every connection
 * a key-file mongod opens to a peer does; a peer with another key refuses it (18 AuthenticationFailed).
 */
export function peerClient(host: string, internalKey?: string): MongoClient {
  return new MongoClient(`mongodb://${host}/?directConnection=true`, {
    ...(internalKey !== undefined ? internalAuthOptions(internalKey) : {}),
    appName: 'sim-replication',
    promoteLongs: false,
    // A dead member must fail a heartbeat within one interval, not the driver's 30 s default.
    serverSelectionTimeoutMS: 1500,
    connectTimeoutMS: 1500,
    // One monitoring connection (no streaming hello and RTT connection): fewer sockets per member pair.
    serverMonitoringMode: 'poll',
    maxPoolSize: 2,
  });
}

export class RemoteMember {
  /** 1 after a successful heartbeat, 0 after a failed one (replSetGetStatus `health`). */
  health: 0 | 1 = 0;
  /** The state its last reply reported; DOWN when unreachable. */
  state: MemberState = 'DOWN';
  /** Its last applied optime, as its last reply reported it. */
  applied: Timestamp = ZERO_TS;
  /** Its config version (-2: it has no config yet, as mongod answers). */
  configVersion = -2;
  /** When the last heartbeat was sent. */
  lastHeartbeat = new Date(0);
  /** Since when it has answered without a failure (replSetGetStatus `uptime`). */
  upSince: Date | undefined;
  /** Why the last heartbeat failed (replSetGetStatus `lastHeartbeatMessage`). */
  lastError: string | undefined;
  /** The connection the heartbeats (and an oplog fetcher syncing from this member) use. */
  readonly client: MongoClient;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    readonly host: string,
    private readonly owner: HeartbeatOwner,
    private readonly log: Logger,
  ) {
    this.client = peerClient(host, owner.internalKey());
  }

  /** Starts heartbeating, the first one at once (mongod heartbeats a member as soon as a config names it). */
  start(): void {
    this.schedule(0);
  }

  /** One heartbeat as soon as possible (a newer config on either side), then the usual interval. */
  heartbeatNow(): void {
    if (this.inFlight) this.again = true;
    else this.schedule(0);
  }

  /** Stops heartbeating and closes the connection; a heartbeat in flight fails and is ignored. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.client.close().catch(() => undefined);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inFlight = this.beat().finally(() => {
        this.inFlight = undefined;
        const now = this.again;
        this.again = false;
        this.schedule(now ? 0 : this.owner.heartbeatIntervalMs());
      });
    }, ms);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    this.lastHeartbeat = new Date();
    let reply: Document;
    try {
      reply = await this.client.db('admin').command(this.owner.heartbeatRequest());
    } catch (e) {
      if (this.stopped) return;
      const changed = this.health !== 0;
      this.health = 0;
      this.state = 'DOWN';
      this.upSince = undefined;
      this.lastError = (e as Error).message;
      if (changed) this.log.info({ member: this.host, err: this.lastError }, 'heartbeat failed: member is now DOWN');
      this.guard(() => this.owner.onHeartbeat(this, undefined, changed));
      return;
    }
    if (this.stopped) return;
    const state = memberStateOf(Number(reply.state));
    const changed = this.health !== 1 || state !== this.state;
    this.health = 1;
    this.state = state;
    this.upSince ??= new Date();
    this.lastError = undefined;
    const opTime = reply.opTime as { ts?: Timestamp } | undefined;
    if (opTime?.ts) this.applied = opTime.ts;
    this.configVersion = Number(reply.v ?? -2);
    if (changed) this.log.info({ member: this.host, state }, 'member state from heartbeat');
    this.guard(() => this.owner.onHeartbeat(this, reply, changed));
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: e, member: this.host }, 'handling a heartbeat reply failed');
    }
  }
}
