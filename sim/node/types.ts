/**
 * A node as its parts see it. The node (node.ts) owns its replica set, backup hooks, sessions and command table, and
 * every one of them works on the node: to keep that from becoming an import circle, they all name the node through
 * the interfaces here, which import only modules that know nothing of the node. node.ts implements them and imports
 * everything else; nothing in sim/node imports node.ts.
 */
import type { Document, Timestamp, UUID } from 'mongodb';
import type { Logger } from 'pino';
import type { BackupFile, CipherMode, OplogOperation, StartMode, StorageEngine } from '../storage/index.ts';
import type { CommandHandler, ConnectionContext, ExhaustReply, TopologyVersion } from '../wire/index.ts';
import type { HooksState, OpenBackup } from './backup/open-backup.ts';
import type { FailPoints } from './backup/fail-points.ts';
import type { IncrementalState } from './backup/incremental.ts';
import type { BackupOptions } from './backup/options.ts';
import type { ClusterClock } from './clock.ts';
import type { CursorManager } from './cursors.ts';
import type { MemberState } from './member-state.ts';
import type { RuntimeParameters } from './parameters.ts';
import type { RemoteMember } from './remote-member.ts';
import type { ReplSetConfig } from './replset-config.ts';
import type { SessionCache } from './session-cache.ts';

/** Options of a node, mirroring mongod's command line (docs/simulator.md, "sim/bin/mongod"). */
export interface SimNodeOptions {
  host?: string;
  port: number;
  dbpath: string;
  /** `--replSet`: the replica set this node belongs to. */
  replSet?: string;
  /** `--configsvr` / `--shardsvr`. */
  clusterRole?: 'configsvr' | 'shardsvr';
  /** `--setParameter name=value` given at startup (strings are parsed as mongod parses them). */
  setParameters?: Record<string, unknown>;
  /** `psmdb` (default) has `$backupCursor`; `community` pretends to be MongoDB Community (no backup cursor). */
  flavor?: 'psmdb' | 'community';
  /** `--auth`: clients must authenticate (SCRAM) and hold the privileges of each command (auth/index.ts). */
  auth?: boolean;
  /**
   * `--keyFile`: internal authentication (auth/internal.ts): the node has the internal user `__system@local`, whose
   * password is the key, and authenticates as it to members in other processes. Implies authorization, as in mongod.
   */
  keyFile?: string;
  /** `--clusterAuthMode` (keyFile when a key file is given; the x509 modes need TLS, which the simulator refuses). */
  clusterAuthMode?: ClusterAuthMode;
  /** `--directoryperdb`: each database's files in a directory of its own (storage `identFor`). */
  directoryPerDB?: boolean;
  /** `--wiredTigerDirectoryForIndexes`: collections' and indexes' files in `collection/` and `index/`. */
  directoryForIndexes?: boolean;
  /**
   * `--oplogSize`: the capped oplog's size in MB (mongod's default, 5% of the disk, is not modelled: unset means never
   * truncated). In-process nodes may give a fraction of a MB, so tests roll the oplog over in a few hundred entries.
   */
  oplogSizeMB?: number;
  /** `--wiredTigerCacheSizeGB`: accepted and reported (getCmdLineOpts) only. */
  wiredTigerCacheSizeGB?: number;
  /** `--enableEncryption` (PSMDB's encryption at rest, storage/keydb.ts); needs `encryptionKeyFile`. */
  enableEncryption?: boolean;
  /** `--encryptionKeyFile`: the master key. */
  encryptionKeyFile?: string;
  /** `--encryptionCipherMode` (PSMDB's default: AES256-CBC). */
  encryptionCipherMode?: CipherMode;
  log: Logger;
}

/** mongod's `--clusterAuthMode` values. */
export type ClusterAuthMode = 'keyFile' | 'sendKeyFile' | 'sendX509' | 'x509';

/** One simulated mongod (implemented by node.ts); its wire server hands it every command (`handle`). */
export interface SimNode extends CommandHandler {
  readonly options: SimNodeOptions;
  readonly host: string;
  readonly port: number;
  readonly dbpath: string;
  readonly flavor: 'psmdb' | 'community';
  readonly log: Logger;
  readonly cursors: CursorManager;
  readonly sessions: SessionCache;
  readonly topology: TopologyVersion;
  readonly params: RuntimeParameters;
  readonly startedAt: Date;
  /** The key of `--keyFile` (whitespace removed), read at construction; the password of `__system`. */
  readonly internalKey: string | undefined;
  /** `host:port` as the replica set names it. */
  readonly address: string;
  /** True while the process is "up" (engine open and listening). */
  readonly up: boolean;
  /** The open storage engine; throws ShutdownInProgress on a crashed or stopped node. */
  readonly engine: StorageEngine;
  /** True when this node accepts writes (a primary, or a standalone). */
  readonly writable: boolean;
  /** Set by the replica set this node is a member of. */
  rs: NodeReplicaSet | undefined;
  /** This member's state, as `replSetGetStatus` reports it. */
  state: MemberState;
  /** The backup hooks (backup/state.ts); undefined would be a node without PSMDB's backup cursor. */
  readonly backup: NodeBackup | undefined;
  /** `replSetInitiate` for a node started with --replSet and no config (the mongod entry point installs it). */
  initiate: ((config: Document | undefined) => Promise<void>) | undefined;
  /** Joins the replica set of a config that a heartbeat delivered (the mongod entry point installs it). */
  adoptConfig: ((config: ReplSetConfig) => void) | undefined;
  /** The heartbeats of this node while it has no config (heartbeat.ts); stopped with the node. */
  configSeeker: NodeConfigSeeker | undefined;
  /** Called after a `shutdown` command stopped the node (the mongod entry point exits). */
  onShutdown: (() => void) | undefined;
  /** How the engine must recover at startup. */
  startMode(): StartMode;
  start(): Promise<void>;
  stop(): Promise<void>;
  crash(): Promise<void>;
  /** A timestamp for a new write: the replica set's clock, or the wall clock on a standalone. */
  newTimestamp(): Timestamp;
}

/** The replica set of a member, as its commands and writes use it (implemented by replset.ts). */
export interface NodeReplicaSet {
  readonly name: string;
  readonly clock: ClusterClock;
  readonly config: ReplSetConfig;
  /** The primary, if it is up in this process. */
  primary(): SimNode | undefined;
  /** Local members, by host. */
  readonly localNodes: SimNode[];
  /** The member at `host` in another process, if the config names one there. */
  remoteMember(host: string): RemoteMember | undefined;
  /**
   * A replicated write on the primary; `ts` commits it at a given cluster time. `txn`: the top-level fields of a
   * transaction's entry (`lsid`, `txnNumber`, `prevOpTime`), which is then always an `applyOps` entry.
   */
  write(node: SimNode, ops: OplogOperation[], ts?: Timestamp, txn?: Document): Timestamp;
  /** A command entry of a prepared transaction (prepare, commit, abort) on the primary, with its session fields. */
  writeCommand(node: SimNode, o: Document, fields: Document): Timestamp;
  /** The primary's term. */
  readonly term: number;
  /** Last applied timestamp of a member. */
  applied(node: SimNode): Timestamp;
  /** A member's committed snapshot: min(commit point it knows, what it applied). */
  committedSnapshot(node: SimNode): Timestamp;
  /** The replica-set fields of `hello` for one member. */
  helloFields(node: SimNode): Document;
  /** `replSetGetStatus` as seen from `self`. */
  status(self: SimNode): Document;
  /** `replSetReconfig`. */
  reconfig(newConfig: Document, force: boolean): void;
  /** `replSetStepDown` (election.ts). */
  stepDown(node: SimNode, opts: { stepDownSecs: number; catchUpSecs: number; force: boolean }): Promise<void>;
  /** `replSetStepUp` (election.ts). */
  stepUp(node: SimNode): void;
  /** The reply to a heartbeat from a member of another process. */
  heartbeatResponse(node: SimNode, askerConfigVersion: number): Document;
  /** Stops replication and the connections to other processes. */
  stop(): Promise<void>;
}

/** A node's backup slot, as the backup commands use it (implemented by backup/state.ts). */
export interface NodeBackup {
  readonly state: HooksState;
  readonly isBackupCursorOpen: boolean;
  readonly openBackup: OpenBackup | undefined;
  readonly failPoints: FailPoints;
  readonly incremental: IncrementalState;
  /** A pipeline holding `$backupCursor` or `$backupCursorExtend`. */
  aggregate(ctx: CommandContext): Promise<Document>;
  fsyncLock(): Promise<void>;
  fsyncUnlock(): Promise<void>;
  enterHotBackup(): Promise<BackupFile[]>;
  exitHotBackup(): void;
  openBackupCursor(options: BackupOptions): Promise<OpenBackup>;
  closeBackupCursor(backupId: UUID): void;
  /** `disconnected`: aborted when the client's connection closes (mongod interrupts the operation, ClientDisconnect). */
  extendBackupCursor(backupId: UUID, timestamp: Timestamp, deadline: number | undefined, disconnected?: AbortSignal): Promise<BackupFile[]>;
}

/** The heartbeats of a node that has no replica-set config yet (implemented by heartbeat.ts). */
export interface NodeConfigSeeker {
  /** Heartbeats `host` from now on (once per host). */
  add(host: string): void;
  stop(): Promise<void>;
}

/** What every command implementation receives. */
export interface CommandContext {
  node: SimNode;
  db: string;
  command: Document;
  conn: ConnectionContext;
  /** The command name as sent. */
  name: string;
}

export type CommandImpl = (ctx: CommandContext) => Document | ExhaustReply | Promise<Document | ExhaustReply>;
