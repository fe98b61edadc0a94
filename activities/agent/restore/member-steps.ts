/**
 * The restore steps of one target member, run by the agent of the *target* host (task queue
 * `cutpoint-agent:<host:port>` of the member being restored): inspect the target, place the files, then the PSMDB
 * sequence of docs/psmdb-behaviour.md section 7 through the {@link NodeController}:
 *
 * 1. prepare: standalone start; empty `local.replset.minvalid`, `.oplogTruncateAfterPoint`, `.election` and
 *    `local.system.replset`; insert `minvalid {t: -1, ts: Timestamp(0, 1)}` and the truncate point (the common
 *    timestamp); shut down.
 * 2. recover: `recoverFromOplogAsStandalone` + `takeUnstableCheckpointOnShutdown`: the oplog is cut after the point
 *    and applied up to it, and the shutdown checkpoint keeps it all.
 * 3. reset: standalone start; the new replica-set config (version 1, the new hosts); on a config server the shard
 *    map and the balancer setting, on a shard its identity (the new config server connection string); the routing
 *    caches and `config.system.sessions` emptied (documents deleted, collections and their UUIDs kept); shut down.
 * 4. start: mongod with `--replSet` (and `--configsvr`/`--shardsvr`) on the member's own port, left running.
 *
 * Every step is idempotent: its effect is recorded in the member's state file (restore-state.ts) once it is durable,
 * a repeated step is skipped, and a temporary mongod left by a killed agent is shut down cleanly before the step is
 * run again. Long waits heartbeat, so a dead agent is noticed and the step retried on its restarted successor.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { activityInfo, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import { Long, ObjectId, Timestamp, type Document, type MongoClient } from 'mongodb';
import { CutpointError } from '../../../common/errors.ts';
import type { Ts } from '../../../common/timestamp.ts';
import { compareTs, formatTs } from '../../../common/timestamp.ts';
import { normalizeHostPort } from '../../../common/task-queues.ts';
import type { Repository } from '../../../repository/repository.ts';
import { freeLocalPort, NodeController, type MongodHandle } from './node-controller.ts';
import { pidAlive, sleep } from '../../../lib/process.ts';
import { asidePath, readState, STATE_DIR, stateDir, updateState, writeState, type MemberState } from './restore-state.ts';
import { fromBsonTimestamp, toBsonTimestamp } from '../../../lib/bson-timestamp.ts';
import { startupArgs, uncarried, type StartupOptions } from '../../../common/startup-options.ts';
import { replayOplog, type ReplayInput, type ReplayResult } from './replay-oplog.ts';

/** What the agent knows about the member it serves. */
export interface MemberStepsContext {
  /** host:port of the member this agent serves (the restore target). */
  mongod: string;
  /** The dbpath as this agent sees it, when it differs from the map's (containers). */
  dbpath?: string;
  repository: (repo: string) => Repository;
  /** Default: a controller for CUTPOINT_MONGOD_PATH (read when a step runs). */
  controller?: () => NodeController;
}

/** Every step names its restore and target dbpath (as the map gives it). */
export interface MemberStepInput {
  restoreId: string;
  dbpath: string;
  /** The source node's startup options, with the member's overrides (common/startup-options.ts). */
  startupOptions?: StartupOptions;
}

/** What a target looks like before anything is written. */
export interface TargetInspection {
  host: string;
  dbpath: string;
  /** The dbpath holds files (other than this restore's own state). */
  nonEmpty: boolean;
  /** This restore has already worked here (a retried or resumed restore). */
  ours: boolean;
  /** Something answers on the member's port that this restore did not start. */
  portBusy: boolean;
}

/** The metadata to write in the reset step. */
export interface ResetInput extends MemberStepInput {
  replicaSet: string;
  /** The new members, in order (`_id` 0, 1, …); null: leave the config empty (a seeded member gets it from the set). */
  members: string[] | null;
  configServer: boolean;
  sharded: boolean;
  /** Config server: each shard replica set's name and new hosts (config.shards `host` is rewritten by name). */
  shardHosts?: Record<string, string[]>;
  /** Shards: the config server's new connection string `<cfg>/<host>,…`. */
  configConnectionString?: string;
  /** Config server: the balancer state to leave (the manifest's `balancerWasEnabled`); null leaves it as restored. */
  balancerEnabled?: boolean | null;
}

const BEAT_MS = 2000;

/** Heartbeats every couple of seconds while `fn` runs, so a long mongod start or copy is not taken for a dead agent. */
async function beating<T>(fn: (beat: (details?: unknown) => void) => Promise<T>): Promise<T> {
  let details: unknown;
  const timer = setInterval(() => heartbeat(details), BEAT_MS);
  try {
    return await fn((d) => {
      if (d !== undefined) details = d;
    });
  } finally {
    clearInterval(timer);
  }
}

/** Files a restore places at once. */
const PLACE_PARALLELISM = 4;


/** Codes of a damaged or incomplete repository, as a chunk read reports them (repository/errors.ts). */
const DAMAGE_CODES = new Set(['CHECKSUM_MISMATCH', 'REPO_CORRUPT', 'REPO_FILE_MISSING']);

/** A chunk read's damage error, its message prefixed with the file being placed (same code and details). */
function namingFile(e: unknown, backupId: string, replicaSet: string, path: string): unknown {
  if (!(e instanceof CutpointError) || !DAMAGE_CODES.has(e.code)) return e;
  return new CutpointError(e.code, `backup ${backupId}, replica set ${replicaSet}: ${path}: ${e.message}`, { ...(e.details?.[0] as Record<string, unknown> | undefined), replicaSet, path }, { cause: e, nonRetryable: e.nonRetryable ?? undefined });
}

/** Files and directories of `dir` other than the restore's own state directory. */
function contents(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n !== STATE_DIR);
}

export function memberSteps(ctx: MemberStepsContext) {
  const self = normalizeHostPort(ctx.mongod);
  const port = Number(self.slice(self.lastIndexOf(':') + 1));
  const bindHost = self.slice(0, self.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  const controller = () => ctx.controller?.() ?? new NodeController();
  const dirOf = (input: MemberStepInput) => ctx.dbpath ?? input.dbpath;
  const logPath = (dir: string, step: string) => join(stateDir(dir), `mongod-${step}.log`);

  /** The state of this restore in `dir`; any other restore's state there is refused. */
  const ownState = (input: MemberStepInput): MemberState => {
    const dir = dirOf(input);
    const s = readState(dir);
    if (!s || s.restoreId !== input.restoreId) {
      throw new CutpointError('INTERNAL', `restore ${input.restoreId}: ${dir} holds no state of this restore (files not placed?)`);
    }
    return s;
  };

  /** Stops a temporary mongod a previous attempt of a step left running (the agent was killed meanwhile). */
  const stopLeftover = async (dir: string, beat: () => void) => {
    const s = readState(dir);
    if (s?.temp) {
      if (pidAlive(s.temp.pid)) {
        log.info('stopping a temporary mongod left by an earlier attempt', { pid: s.temp.pid, port: s.temp.port });
        await controller().stop(s.temp, 60_000, beat);
      }
      updateState(dir, (x) => delete x.temp);
    }
  };

  /**
   * One temporary standalone run: start mongod on a free local port with `params`, run `fn` against it, shut it
   * down cleanly. The pid and port are recorded before anything else, so a killed agent's successor stops it.
   */
  const standalone = async <T>(input: MemberStepInput, step: string, params: Record<string, string | number | boolean>, fn: (c: MongoClient) => Promise<T>): Promise<T> =>
    beating(async (beat) => {
      const dir = dirOf(input);
      await stopLeftover(dir, beat);
      const c = controller();
      const tempPort = await freeLocalPort();
      let handle: MongodHandle | undefined;
      try {
        handle = await c.start({ dbpath: dir, port: tempPort, setParameters: params, startupArgs: startupArgs(input.startupOptions ?? {}, 'temporary'), logPath: logPath(dir, step) }, beat);
        const h = handle;
        updateState(dir, (x) => (x.temp = h));
        // A cancelled step stops here (the catch stops the mongod); the workflow waits for that before rolling back.
        cancellationSignal().throwIfAborted();
        const result = await c.withClient(`127.0.0.1:${tempPort}`, fn);
        await c.stop(handle, 60_000, beat);
        updateState(dir, (x) => delete x.temp);
        return result;
      } catch (e) {
        // A failed step leaves no mongod behind; the retry starts from the files.
        if (handle) await c.stop(handle, 30_000, beat).catch(() => undefined);
        updateState(dir, (x) => delete x.temp);
        throw e;
      }
    });

  const shardingParams = (sharded: boolean): Record<string, boolean> =>
    // A shard or config server started without its role refuses to run unless told this is maintenance.
    sharded ? { skipShardingConfigurationChecks: true } : {};

  return {
    /** Looks at the target before anything is written: is the dbpath empty, is the port free? */
    async inspectRestoreTarget(input: MemberStepInput): Promise<TargetInspection> {
      const dir = dirOf(input);
      const s = readState(dir);
      const ours = s?.restoreId === input.restoreId || existsSync(asidePath(dir, input.restoreId));
      const runningOurs = s?.restoreId === input.restoreId && s.started !== undefined && pidAlive(s.started.pid);
      const portBusy = !runningOurs && (await controller().answers(self));
      return { host: self, dbpath: dir, nonEmpty: contents(dir).length > 0 || (s !== undefined && s.restoreId !== input.restoreId), ours, portBusy };
    },

    /**
     * Places the replica set's files into the dbpath, each checked as it is written: every chunk against its id as it
     * is read from the repository (once), every file against the manifest's size (and its SHA-256 when the manifest has one); a mismatch fails with
     * CHECKSUM_MISMATCH naming the file (and the chunk and pack), before any mongod starts on the dbpath. With `overwrite`, data found in the dbpath
     * is first renamed aside (put back by {@link rollbackRestoreTarget}, removed by {@link commitRestoreTarget}).
     * Resumes after the files already placed (heartbeat).
     */
    async placeRestoreFiles(input: MemberStepInput & { repo: string; backupId: string; replicaSet: string; overwrite: boolean }): Promise<{ files: number; bytes: number }> {
      const dir = dirOf(input);
      const existing = readState(dir);
      if (existing?.restoreId === input.restoreId && existing.placed) return existing.placed;
      if (existing?.restoreId !== input.restoreId) {
        if (contents(dir).length > 0 || existing) {
          if (!input.overwrite) {
            throw new CutpointError('TARGET_NOT_EMPTY', `${self}: dbpath ${dir} is not empty; give --overwrite to keep its data aside and restore anyway`);
          }
          const aside = asidePath(dir, input.restoreId);
          if (existsSync(aside)) throw new CutpointError('INTERNAL', `${dir} and ${aside} both hold data; resolve by hand`);
          renameSync(dir, aside);
          log.info('target data kept aside', { dbpath: dir, aside });
        }
        mkdirSync(dir, { recursive: true });
        writeState(dir, { restoreId: input.restoreId });
      }
      const repo = ctx.repository(input.repo);
      const manifest = await repo.readReplicaSetManifest(input.backupId, input.replicaSet);
      if (!manifest) throw new CutpointError('REPO_FILE_MISSING', `backup ${input.backupId} has no manifest for replica set ${input.replicaSet} in ${repo.location}`);
      const resumeAt = (activityInfo().heartbeatDetails as { next?: number } | undefined)?.next ?? 0;
      const bytes = manifest.files.reduce((sum, f) => sum + f.size, 0);
      /** Places file `i`: written under a temporary name, checked, renamed into place. */
      const placeOne = async (i: number): Promise<void> => {
        const f = manifest.files[i]!;
        if (i < resumeAt && existsSync(join(dir, f.path)) && statSync(join(dir, f.path)).size === f.size) return;
        const dest = join(dir, f.path);
        mkdirSync(dirname(dest), { recursive: true });
        const partial = `${dest}.cutpoint-partial`;
        // A file with a whole-file SHA-256 (v1, and v2 backups written before it was dropped) is checked against it; a
        // v2 file written now has none: its chunks, each checked against its id as it is read, and its size prove it
        // (docs/repository-format.md section 9), so each byte is hashed once.
        const hash = f.sha256 !== undefined ? createHash('sha256') : undefined;
        let size = 0;
        const out = await open(partial, 'w');
        try {
          for await (const chunk of await repo.openStoredFile(input.backupId, input.replicaSet, f)) {
            cancellationSignal().throwIfAborted();
            // The write runs on the thread pool while this thread hashes the same bytes (each chunk is a new buffer).
            const written = out.write(chunk);
            hash?.update(chunk);
            size += chunk.length;
            await written;
          }
          await out.sync();
        } catch (e) {
          throw namingFile(e, input.backupId, input.replicaSet, f.path);
        } finally {
          await out.close();
        }
        const sha = hash?.digest('hex');
        if (size !== f.size || (sha !== undefined && f.sha256 !== undefined && sha !== f.sha256)) {
          rmSync(partial, { force: true });
          throw new CutpointError(
            'CHECKSUM_MISMATCH',
            `backup ${input.backupId}, replica set ${input.replicaSet}: ${f.path} in ${repo.location} has ${size} bytes${sha ? ` with SHA-256 ${sha}` : ''}, the manifest says ${f.size} bytes${sha && f.sha256 ? ` with ${f.sha256}` : ''}`,
            { replicaSet: input.replicaSet, path: f.path },
          );
        }
        await rename(partial, dest);
      };
      await beating(async (beat) => {
        // Several files at once, as the backup copies them: one stream leaves the disk idle while it hashes. The
        // resume point is the first file not yet placed (every file before it is).
        const placedSet = new Set<number>();
        let next = 0;
        let taken = 0;
        let failed = false;
        const worker = async () => {
          for (let i = taken++; i < manifest.files.length && !failed; i = taken++) {
            try {
              await placeOne(i);
            } catch (e) {
              failed = true;
              throw e;
            }
            placedSet.add(i);
            while (placedSet.delete(next)) next++;
            beat({ next });
          }
        };
        const settled = await Promise.allSettled(Array.from({ length: Math.min(PLACE_PARALLELISM, manifest.files.length) }, worker));
        const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (rejected) throw rejected.reason;
      });
      const placed = { files: manifest.files.length, bytes };
      updateState(dir, (s) => (s.placed = placed));
      log.info('restore files placed', { dbpath: dir, ...placed });
      return placed;
    },

    /** Step 1: reset the local replication collections and set oplogTruncateAfterPoint to `truncateAfter`. */
    async prepareRestoredNode(input: MemberStepInput & { truncateAfter: Ts; sharded: boolean }): Promise<void> {
      if (ownState(input).prepared) return;
      await standalone(input, 'prepare', { disableLogicalSessionCacheRefresh: true, ...shardingParams(input.sharded) }, async (c) => {
        const local = c.db('local');
        for (const coll of ['replset.minvalid', 'replset.oplogTruncateAfterPoint', 'replset.election', 'system.replset']) {
          await local.collection(coll).deleteMany({});
        }
        await local.collection('replset.minvalid').insertOne({ _id: new ObjectId(), t: Long.fromNumber(-1), ts: new Timestamp({ t: 0, i: 1 }) });
        await local
          .collection<Document>('replset.oplogTruncateAfterPoint')
          .insertOne({ _id: 'oplogTruncateAfterPoint' as never, oplogTruncateAfterPoint: toBsonTimestamp(input.truncateAfter) });
      });
      updateState(dirOf(input), (s) => (s.prepared = true));
    },

    /**
     * Step 2: recoverFromOplogAsStandalone + takeUnstableCheckpointOnShutdown; returns the newest oplog entry left,
     * which must not be after the truncate point (else the server ignored it and the restore would be wrong).
     */
    async recoverRestoredNode(input: MemberStepInput & { truncateAfter: Ts; sharded: boolean }): Promise<{ oplogTop: Ts | null }> {
      const done = ownState(input).recovered;
      if (done) return done;
      const oplogTop = await standalone(
        input,
        'recover',
        { recoverFromOplogAsStandalone: true, takeUnstableCheckpointOnShutdown: true, disableLogicalSessionCacheRefresh: true, ...shardingParams(input.sharded) },
        async (c) => {
          const top = await c.db('local').collection('oplog.rs').find({}, { sort: { ts: -1 }, limit: 1 }).toArray();
          return fromBsonTimestamp(top[0]?.ts);
        },
      );
      if (oplogTop && compareTs(oplogTop, input.truncateAfter) > 0) {
        throw new CutpointError('INTERNAL', `${self}: after recovery the oplog ends at ${formatTs(oplogTop)}, after the truncate point ${formatTs(input.truncateAfter)}`);
      }
      const recovered = { oplogTop };
      updateState(dirOf(input), (s) => (s.recovered = recovered));
      return recovered;
    },

    /**
     * Point-in-time restores only, between recover and reset: the captured oplog applied on a standalone mongod up to
     * the target (replay-oplog.ts), resumable from its checkpoint. Returns the entries and bytes replayed.
     */
    async replayRestoredOplog(input: MemberStepInput & Omit<ReplayInput, 'dbpath' | 'restoreId'> & { sharded: boolean }): Promise<ReplayResult> {
      const done = ownState(input).replay;
      if (done?.done) return { entries: done.entries, bytes: done.bytes };
      const dir = dirOf(input);
      const result = await standalone(input, 'replay', { disableLogicalSessionCacheRefresh: true, ...shardingParams(input.sharded) }, (c) =>
        replayOplog(c, ctx.repository(input.repo), dir, { ...input, dbpath: dir }, (p) => heartbeat(p)),
      );
      updateState(dir, (s) => (s.replay = { ...(s.replay ?? { through: null, entries: 0, bytes: 0, late: 0 }), done: true }));
      return result;
    },

    /** Step 3: replica-set and shard metadata for the new hosts. */
    async resetRestoredMetadata(input: ResetInput): Promise<void> {
      if (ownState(input).reset) return;
      await standalone(input, 'reset', { disableLogicalSessionCacheRefresh: true, ...shardingParams(input.sharded) }, async (c) => {
        const local = c.db('local');
        await local.collection('system.replset').deleteMany({});
        if (input.members) await local.collection<Document>('system.replset').insertOne(replicaSetConfig(input.replicaSet, input.members, input.configServer));
        const config = c.db('config');
        await emptyRoutingCaches(c, self);
        if (input.configServer) {
          // config.shards `host` is `<rs>/<hosts>`; the shard's _id may differ from its replica-set name.
          const shards = config.collection<Document>('shards');
          for (const doc of await shards.find().toArray()) {
            const rs = String(doc.host).split('/')[0]!;
            const hosts = input.shardHosts?.[rs];
            if (hosts) await shards.updateOne({ _id: doc._id }, { $set: { host: `${rs}/${hosts.join(',')}` } });
          }
          await config.collection('mongos').deleteMany({});
          await config.collection('lockpings').deleteMany({});
          if (input.balancerEnabled !== undefined && input.balancerEnabled !== null) {
            const on = input.balancerEnabled;
            await config.collection<Document>('settings').updateOne({ _id: 'balancer' as never }, { $set: { mode: on ? 'full' : 'off', stopped: !on } }, { upsert: true });
          }
        }
        if (input.configConnectionString) {
          await c.db('admin').collection<Document>('system.version').updateOne({ _id: 'shardIdentity' as never }, { $set: { configsvrConnectionString: input.configConnectionString } });
        }
      });
      updateState(dirOf(input), (s) => (s.reset = true));
    },

    /**
     * Step 4: the member's own mongod (`--replSet`, its cluster role, its port), left running; returns its pid, port
     * and state. A member this restore already started and that still runs on this dbpath is returned as it is.
     */
    async startRestoredNode(input: MemberStepInput & { replicaSet: string; clusterRole?: 'configsvr' | 'shardsvr' }): Promise<{ pid: number; port: number; state: string }> {
      const dir = dirOf(input);
      const s = ownState(input);
      const c = controller();
      return beating(async (beat) => {
        let handle = s.started && pidAlive(s.started.pid) && (await c.dbpathOf(self, s.started.pid)) === dir ? s.started : undefined;
        if (!handle) {
          await stopLeftover(dir, beat);
          const options = input.startupOptions ?? {};
          for (const left of uncarried(options)) log.warn('a startup option of the source is not carried into the restore', { host: self, option: left });
          handle = await c.start(
            { dbpath: dir, port, bindIp: bindHost, replSet: input.replicaSet, clusterRole: input.clusterRole, startupArgs: startupArgs(options, 'final'), logPath: logPath(dir, 'final') },
            beat,
          );
          const h = handle;
          updateState(dir, (x) => (x.started = h));
        }
        const hello = await c.withClient(self, (cl) => cl.db('admin').command({ hello: 1 }));
        const state = hello.isWritablePrimary ? 'PRIMARY' : hello.secondary ? 'SECONDARY' : String(hello.setName ? 'OTHER' : 'STANDALONE');
        return { pid: handle.pid, port: handle.port, state };
      });
    },

    /**
     * Undoes this restore on the member after a failure: stops the mongods it started, removes what it placed, and
     * puts data kept aside back. Never touches a dbpath this restore did not write to. Idempotent.
     */
    async rollbackRestoreTarget(input: MemberStepInput): Promise<{ restored: boolean }> {
      const dir = dirOf(input);
      const s = readState(dir);
      const aside = asidePath(dir, input.restoreId);
      await beating(async (beat) => {
        if (s?.restoreId === input.restoreId) {
          for (const h of [s.temp, s.started]) if (h && pidAlive(h.pid)) await controller().stop(h, 30_000, beat);
          rmSync(dir, { recursive: true, force: true });
        } else if (existsSync(aside) && contents(dir).length === 0) {
          rmSync(dir, { recursive: true, force: true });
        }
      });
      if (existsSync(aside) && !existsSync(dir)) {
        renameSync(aside, dir);
        log.info('target data put back', { dbpath: dir });
        return { restored: true };
      }
      return { restored: false };
    },

    /** After a successful restore: removes the data kept aside. Idempotent. */
    async commitRestoreTarget(input: MemberStepInput): Promise<void> {
      rmSync(asidePath(dirOf(input), input.restoreId), { recursive: true, force: true });
    },
  };
}

/** A replica-set config as `local.system.replset` holds it: version 1, the new members with default settings. */
export function replicaSetConfig(name: string, hosts: string[], configServer: boolean): Document {
  return {
    _id: name,
    version: 1,
    term: 1,
    protocolVersion: Long.ONE,
    ...(configServer ? { configsvr: true } : {}),
    members: hosts.map((host, i) => ({
      _id: i,
      host,
      arbiterOnly: false,
      buildIndexes: true,
      hidden: false,
      priority: 1,
      tags: {},
      secondaryDelaySecs: Long.ZERO,
      votes: 1,
    })),
    settings: { chainingAllowed: true, heartbeatIntervalMillis: 2000, electionTimeoutMillis: 10000 },
  };
}

export type MemberStepActivities = ReturnType<typeof memberSteps>;

/** Attempts at emptying one cache collection before the step fails naming it. */
const EMPTY_ATTEMPTS = 3;

/**
 * The shard's routing caches (`config.cache.*`) and the logical sessions (`config.system.sessions`) describe the
 * source cluster: their documents go, so the restored shard reloads its routing from the restored config server. The
 * collections stay: dropping them would give them new UUIDs, while the shard's metadata knows them by the old ones
 * (PBM learned this the hard way). A delete that keeps failing fails the step naming the collection: a restored shard
 * serving the source cluster's routing would be wrong in ways no later check sees.
 */
export async function emptyRoutingCaches(c: MongoClient, self: string): Promise<void> {
  const config = c.db('config');
  const names = (await config.listCollections({}, { nameOnly: true }).toArray()).map((x) => x.name);
  for (const name of names.filter((n) => n.startsWith('cache.') || n === 'system.sessions').sort()) {
    for (let attempt = 1; ; attempt++) {
      try {
        await config.collection(name).deleteMany({});
        break;
      } catch (e) {
        if (attempt >= EMPTY_ATTEMPTS) {
          throw new CutpointError('RESTORE_STEP_FAILED', `${self}: emptying config.${name} failed ${attempt} times (${(e as Error).message})`, { collection: `config.${name}` }, { cause: e });
        }
        await sleep(500 * attempt);
      }
    }
  }
}
