/**
 * One simulated mongod: a storage engine on its dbpath, a wire server on its port, cursors, parameters, and a
 * command table. A replica-set member is driven by its replica set (replset.ts; elections are not simulated); a
 * standalone writes untimestamped, as mongod does. Its parts (commands, replica set, backup hooks, sessions) know it
 * through the {@link SimNode} interface of types.ts: this module imports them, none imports it.
 */
import type { Document } from 'mongodb';
import { Timestamp } from 'mongodb';
import type { Logger } from 'pino';
import { readKeyFile } from '../../lib/mongo/keyfile.ts';
import { sleep } from '../../lib/process.ts';
import { StorageEngine, type StartMode } from '../storage/index.ts';
import { CommandError, ErrorCodes, WireServer, firstKey, type ConnectionContext, type ExhaustReply } from '../wire/index.ts';
import { TopologyVersion } from '../wire/topology.ts';
import { BackupHooks } from './backup/state.ts';
import { commandTable } from './commands/index.ts';
import { CursorManager } from './cursors.ts';
import { afterCommand, beforeCommand, commandDone } from './gate.ts';
import type { MemberState } from './member-state.ts';
import { parseStartupParameters, RuntimeParameters } from './parameters.ts';
import type { ReplSetConfig } from './replset-config.ts';
import { SessionCache } from './session-cache.ts';
import { sessionTimeoutMs } from './sessions.ts';
import { startupOptionError } from './startup-options.ts';
import type { CommandContext, NodeConfigSeeker, NodeReplicaSet, SimNode, SimNodeOptions } from './types.ts';

/** NotPrimaryError and ShutdownError codes: their replies carry the node's topologyVersion. */
const TOPOLOGY_ERRORS = new Set<number>([
  ErrorCodes.NotWritablePrimary,
  ErrorCodes.NotPrimaryNoSecondaryOk,
  ErrorCodes.NotPrimaryOrSecondary,
  ErrorCodes.InterruptedDueToReplStateChange,
  ErrorCodes.PrimarySteppedDown,
  ErrorCodes.ShutdownInProgress,
  ErrorCodes.InterruptedAtShutdown,
]);

export class MongodNode implements SimNode {
  readonly host: string;
  readonly port: number;
  readonly dbpath: string;
  readonly flavor: 'psmdb' | 'community';
  readonly log: Logger;
  readonly cursors = new CursorManager();
  /** Logical sessions (sessions.ts): the idle life is read from the parameters at each refresh. */
  readonly sessions: SessionCache = new SessionCache(this.cursors, () => sessionTimeoutMs(this.params));
  readonly topology = new TopologyVersion();
  readonly params: RuntimeParameters;
  readonly startedAt = new Date();
  readonly internalKey: string | undefined;
  private engineRef: StorageEngine | undefined;
  private server: WireServer | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** Set by the replica set this node is a member of. */
  rs: NodeReplicaSet | undefined;
  /** This member's state, as `replSetGetStatus` reports it. */
  state: MemberState = 'STARTUP';
  /** The backup hooks (backup/state.ts): `$backupCursor`, `$backupCursorExtend`, fsync lock, createBackup, fail points. */
  readonly backup: BackupHooks | undefined = new BackupHooks(this);
  /** `replSetInitiate` for a node started with --replSet and no config (the mongod entry point installs it). */
  initiate: ((config: Document | undefined) => Promise<void>) | undefined;
  /**
   * Joins the replica set of a config that a heartbeat delivered (a node started with --replSet and no config that a
   * running set added; the mongod entry point installs it). Without it the node does not look for a config.
   */
  adoptConfig: ((config: ReplSetConfig) => void) | undefined;
  /** The heartbeats of this node while it has no config (heartbeat.ts); stopped with the node. */
  configSeeker: NodeConfigSeeker | undefined;
  /** Called after a `shutdown` command stopped the node (the mongod entry point exits). */
  onShutdown: (() => void) | undefined;

  constructor(readonly options: SimNodeOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port;
    this.dbpath = options.dbpath;
    this.flavor = options.flavor ?? 'psmdb';
    this.log = options.log.child({ node: `${this.host}:${this.port}` });
    this.params = new RuntimeParameters(parseStartupParameters(options.setParameters ?? {}));
    const refused = startupOptionError(options);
    if (refused) throw new CommandError(refused.code, refused.message, { codeName: refused.codeName });
    // mongod reads the key file before anything touches the dbpath (a bad one: KeyFileError, exit 1).
    this.internalKey = options.keyFile !== undefined ? readKeyFile(options.keyFile) : undefined;
  }

  /** `host:port` as the replica set names it. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** True while the process is "up" (engine open and listening). */
  get up(): boolean {
    return this.engineRef?.isOpen === true && this.server !== undefined;
  }

  /** The open storage engine; a crashed or stopped node has none. */
  get engine(): StorageEngine {
    if (!this.engineRef?.isOpen) throw new CommandError(ErrorCodes.ShutdownInProgress, 'The server is shutting down');
    return this.engineRef;
  }

  /** How the engine must recover at startup (docs/psmdb-behaviour.md section 7). */
  startMode(): StartMode {
    if (this.options.replSet) return 'replicaSet';
    if (this.params.get('recoverFromOplogAsStandalone') === true) return 'recoverFromOplogAsStandalone';
    return 'standalone';
  }

  /** Opens the dbpath (running recovery) and starts listening. */
  async start(): Promise<void> {
    this.engineRef = StorageEngine.open({
      dbpath: this.dbpath,
      mode: this.startMode(),
      takeUnstableCheckpointOnShutdown: this.params.get('takeUnstableCheckpointOnShutdown') === true,
      logFileSize: this.params.get('simLogFileSize') as number,
      blockSize: this.params.get('simBlockSize') as number,
      fsync: this.params.get('simFsync') as boolean,
      directoryPerDB: this.options.directoryPerDB === true,
      ...(this.options.oplogSizeMB !== undefined ? { oplogSizeBytes: Math.floor(this.options.oplogSizeMB * 1024 * 1024) } : {}),
      directoryForIndexes: this.options.directoryForIndexes === true,
      ...(this.options.enableEncryption && this.options.encryptionKeyFile !== undefined
        ? { encryption: { keyFile: this.options.encryptionKeyFile, cipherMode: this.options.encryptionCipherMode } }
        : {}),
    });
    const r = this.engineRef.recovery;
    this.log.info(
      { mode: r.mode, unclean: r.uncleanShutdown, checkpoint: r.checkpoint.timestamp?.toString() ?? null, replication: r.replication },
      'storage recovered',
    );
    // A replica-set member is in STARTUP until it has a config (its replica set sets its state then).
    this.state = 'STARTUP';
    this.server = new WireServer({ handler: this, host: this.host, port: this.port, logger: this.log });
    try {
      await this.server.listen();
    } catch (e) {
      this.engineRef.crash();
      this.server = undefined;
      throw e;
    }
    this.startTimers();
  }

  private startTimers(): void {
    const every = (ms: number, fn: () => void, offset = 0) => {
      const start = setTimeout(() => {
        fn();
        const t = setInterval(fn, ms);
        t.unref();
        this.timers.push(t);
      }, offset);
      start.unref();
      this.timers.push(start);
    };
    const checkpointMs = this.params.get('simCheckpointIntervalMs') as number;
    // Staggered so that no two nodes (or shards) checkpoint at the same timestamp by luck (docs/simulator.md).
    const offset = this.params.get('simCheckpointOffsetMs') as number;
    if (checkpointMs > 0) every(checkpointMs, () => this.guard('checkpoint', () => this.engine.checkpoint()), offset);
    every(1000, () =>
      this.guard('cursor reaper', () =>
        this.cursors.reapIdle(this.params.get('cursorTimeoutMillis') as number, this.params.get('enableTimeoutOfInactiveSessionCursors') === true),
      ),
    );
    const sessionRefreshMs = this.params.get('logicalSessionRefreshMillis') as number;
    if (sessionRefreshMs > 0 && this.params.get('disableLogicalSessionCacheRefresh') !== true) {
      every(sessionRefreshMs, () => this.guard('logical session refresh', () => this.sessions.refresh()));
    }
  }

  private guard(what: string, fn: () => unknown): void {
    if (!this.up) return;
    try {
      fn();
    } catch (e) {
      this.log.error({ err: e }, `${what} failed`);
    }
  }

  private stopTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  /** Clean shutdown: cursors closed, final checkpoint, port released. */
  async stop(): Promise<void> {
    this.stopTimers();
    this.cursors.closeWhere('shutdown');
    const server = this.server;
    this.server = undefined;
    this.state = 'DOWN';
    this.topology.change();
    if (this.engineRef?.isOpen) this.engineRef.close({ clean: true });
    await server?.close();
    await this.configSeeker?.stop();
  }

  /** Simulated crash: memory dropped, connections reset, no checkpoint; the dbpath is left as a kill -9 leaves it. */
  async crash(): Promise<void> {
    this.stopTimers();
    const server = this.server;
    this.server = undefined;
    this.state = 'DOWN';
    server?.destroyAll();
    this.engineRef?.crash();
    this.cursors.closeWhere('shutdown');
    await server?.close();
    await this.configSeeker?.stop();
  }

  /** The CommandHandler entry point for the wire server. */
  async handle(db: string, command: Document, ctx: ConnectionContext): Promise<Document | ExhaustReply> {
    const name = firstKey(command);
    const impl = commandTable[name] ?? commandTable[name.toLowerCase()];
    if (!impl) throw new CommandError(ErrorCodes.CommandNotFound, `no such command: '${name}'`);
    const cctx: CommandContext = { node: this, db, command, conn: ctx, name };
    try {
      beforeCommand(cctx);
      const points = this.backup?.failPoints;
      if (points?.holdsCommand(name, command)) {
        points.enter('simHangBeforeCommand');
        while (points.holdsCommand(name, command) && this.up) await sleep(20);
      }
      const failWith = points?.failsCommand(name, db, command);
      if (failWith !== undefined) throw new CommandError(failWith, "Failing command via 'failCommand' failpoint");
      const reply = await impl(cctx);
      if (reply && typeof reply === 'object' && !(reply instanceof Promise) && 'reply' in reply && 'next' in reply) return reply;
      return this.withClusterTime(afterCommand(cctx, reply as Document));
    } catch (e) {
      throw this.withTopologyVersion(e);
    } finally {
      commandDone(cctx);
    }
  }

  /**
   * mongod appends its `topologyVersion` to "not primary" and shutdown errors (service_entry_point_common.cpp), so a
   * driver can tell a stale error from news and re-checks the server at once instead of waiting for its next `hello`.
   */
  private withTopologyVersion(e: unknown): unknown {
    if (!(e instanceof CommandError) || !TOPOLOGY_ERRORS.has(e.code) || 'topologyVersion' in e.extra) return e;
    return new CommandError(e.code, e.message, { codeName: e.codeName, errorLabels: e.errorLabels, extra: { ...e.extra, topologyVersion: this.topology.current }, cause: e });
  }

  /** `$clusterTime` and `operationTime` on replica-set replies, as a 7.0 member sends them. */
  private withClusterTime(reply: Document): Document {
    if (!this.rs) return reply;
    const ts = this.rs.clock.current();
    return {
      ...reply,
      $clusterTime: { clusterTime: ts, signature: { hash: Buffer.alloc(20), keyId: 0n } },
      operationTime: this.engineRef?.isOpen ? (this.engineRef.lastApplied ?? ts) : ts,
    };
  }

  /** True when this node accepts writes (a primary, or a standalone). */
  get writable(): boolean {
    return this.rs ? this.state === 'PRIMARY' : true;
  }

  /** Applies one write on this node: replicated through the replica set, or untimestamped on a standalone. */
  newTimestamp(): Timestamp {
    return this.rs ? this.rs.clock.next() : new Timestamp({ t: Math.floor(Date.now() / 1000), i: 1 });
  }
}
