/**
 * Restore and verify activities of the orchestrator (they need the repository and a network path, not a dbpath):
 * the restore plan read from the backup's manifests and checked against the target map, the re-hash of every file
 * of a replica set, and the checks on the started replica sets.
 */
import { createHash } from 'node:crypto';
import { activityInfo, heartbeat, log } from '@temporalio/activity';
import type { Document } from 'mongodb';
import { CutpointError } from '../../common/errors.ts';
import type { BadFile, RestoreMember, RestoreTargetMap } from '../../common/restore-types.ts';
import type { MongoTarget } from '../../common/target.ts';
import type { Ts } from '../../common/timestamp.ts';
import { withClient } from '../../lib/mongo/client.ts';
import { fsRepository, type Repository } from '../../repository/repository.ts';
import { StorageError } from '../../repository/storage.ts';
import { directClient } from '../agent/restore/node-controller.ts';
import type { StartupOptions } from '../../common/startup-options.ts';

/** One replica set of a restore plan. */
export interface PlannedReplicaSet {
  name: string;
  configServer: boolean;
  files: number;
  bytes: number;
  /** The replica set's own consistent point (`extendedTo`): where a seeded member is recovered to. */
  extendedTo: Ts | null;
  /** The backed-up node's startup options (its replica-set manifest), before any member's overrides. */
  startupOptions: StartupOptions;
  members: RestoreMember[];
}

/** What a restore restores: read from a `complete` backup's manifests. */
export interface RestorePlan {
  cluster: string;
  commonTimestamp: Ts;
  balancerWasEnabled: boolean | null;
  /** A config server is among the replica sets: shard metadata must be rewritten. */
  sharded: boolean;
  replicaSets: PlannedReplicaSet[];
}

export interface RestoreControlContext {
  repository: (repo: string) => Repository;
}

const HEARTBEAT_MS = 1000;

export function restoreControlActivities(ctx: RestoreControlContext = { repository: (repo) => fsRepository(repo) }) {
  return {
    /**
     * Reads the backup (it must exist and be `complete`) and checks the target map: every replica set mapped,
     * none unknown. `to` absent: every replica set gets no members (verify). `only`: plan one replica set (seeding).
     */
    async loadRestorePlan(input: { repo: string; backupId: string; to?: RestoreTargetMap; only?: string }): Promise<RestorePlan> {
      const repo = ctx.repository(input.repo);
      await repo.open();
      const cm = await repo.readClusterManifest(input.backupId);
      if (!cm) throw new CutpointError('BACKUP_NOT_FOUND', `no backup '${input.backupId}' in repository ${repo.location}`);
      if (cm.status !== 'complete' || !cm.commonTimestamp) {
        throw new CutpointError('BACKUP_NOT_RESTORABLE', `backup '${input.backupId}' is ${cm.status}${cm.error ? ` (${cm.error.code}: ${cm.error.message})` : ''}: only a complete backup can be restored`);
      }
      const names = cm.replicaSets.map((r) => r.name);
      const wanted = input.only !== undefined ? [input.only] : names;
      if (input.only !== undefined && !names.includes(input.only)) {
        throw new CutpointError('BAD_USAGE', `backup '${input.backupId}' has no replica set '${input.only}' (it has ${names.join(', ')})`);
      }
      if (input.to) {
        const missing = wanted.filter((n) => !input.to![n]);
        if (missing.length) {
          throw new CutpointError('BAD_USAGE', `the target map has no members for replica set${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of backup '${input.backupId}' (it has ${names.join(', ')})`);
        }
        const unknown = Object.keys(input.to).filter((n) => !wanted.includes(n));
        if (unknown.length) throw new CutpointError('BAD_USAGE', `the target map names replica set${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}, which backup '${input.backupId}' does not hold (it has ${names.join(', ')})`);
      }
      const replicaSets: PlannedReplicaSet[] = [];
      for (const r of cm.replicaSets.filter((x) => wanted.includes(x.name))) {
        const m = await repo.readReplicaSetManifest(input.backupId, r.name);
        if (!m) throw new CutpointError('REPO_FILE_MISSING', `backup '${input.backupId}' has no manifest for replica set ${r.name} in ${repo.location}`);
        replicaSets.push({
          name: r.name,
          configServer: r.configServer,
          files: m.files.length,
          bytes: m.files.reduce((s, f) => s + f.size, 0),
          extendedTo: m.extendedTo,
          startupOptions: m.startupOptions ?? {},
          members: input.to?.[r.name] ?? [],
        });
      }
      return {
        cluster: cm.cluster,
        commonTimestamp: cm.commonTimestamp,
        balancerWasEnabled: cm.balancerWasEnabled,
        sharded: cm.replicaSets.some((r) => r.configServer),
        replicaSets,
      };
    },

    /**
     * Re-hashes every file of one replica set in the repository against its manifest (size and SHA-256); returns
     * every bad file instead of stopping at the first, so a report names them all. Resumes after a crash from the
     * heartbeated position.
     */
    async verifyReplicaSetFiles(input: { repo: string; backupId: string; replicaSet: string }): Promise<{ files: number; bytes: number; bad: BadFile[] }> {
      const repo = ctx.repository(input.repo);
      const m = await repo.readReplicaSetManifest(input.backupId, input.replicaSet);
      if (!m) throw new CutpointError('REPO_FILE_MISSING', `backup '${input.backupId}' has no manifest for replica set ${input.replicaSet} in ${repo.location}`);
      const prev = activityInfo().heartbeatDetails as { next: number; bytes: number; bad: BadFile[] } | undefined;
      const state = { next: prev?.next ?? 0, bytes: prev?.bytes ?? 0, bad: [...(prev?.bad ?? [])] };
      let last = 0;
      for (let i = state.next; i < m.files.length; i++) {
        const f = m.files[i]!;
        const bad = (problem: string) => state.bad.push({ replicaSet: input.replicaSet, path: f.path, problem });
        try {
          // A file with a whole-file SHA-256 (v1, and v2 backups written before it was dropped) is checked against it;
          // a v2 file without one by its chunks, each checked against its id as read, and its size (docs/repository-format.md section 9).
          const hash = f.sha256 !== undefined ? createHash('sha256') : undefined;
          let size = 0;
          for await (const chunk of await repo.openStoredFile(input.backupId, input.replicaSet, f)) {
            hash?.update(chunk);
            size += chunk.length;
          }
          const sha = hash?.digest('hex');
          if (size !== f.size) bad(`${size} bytes, the manifest says ${f.size}`);
          else if (sha !== undefined && f.sha256 !== undefined && sha !== f.sha256) bad(`SHA-256 ${sha}, the manifest says ${f.sha256}`);
        } catch (e) {
          if (e instanceof StorageError && e.code === 'REPO_FILE_MISSING') bad(f.chunks ? `a chunk is missing: ${e.message}` : 'missing from the repository');
          // v2: a chunk whose pack is missing, truncated or tampered with, named with its pack.
          else if (e instanceof CutpointError && (e.code === 'CHECKSUM_MISMATCH' || e.code === 'REPO_CORRUPT' || e.code === 'REPO_FILE_MISSING')) bad(e.message);
          else throw e;
        }
        state.bytes += f.size;
        state.next = i + 1;
        if (Date.now() - last >= HEARTBEAT_MS) {
          last = Date.now();
          heartbeat(state);
        }
      }
      if (state.bad.length) log.warn('bad files in backup', { replicaSet: input.replicaSet, bad: state.bad.length });
      return { files: m.files.length, bytes: state.bytes, bad: state.bad };
    },

    /**
     * Waits until the restored replica set has exactly one PRIMARY among its members (the others SECONDARY), asking
     * each member directly. Retried by Temporal while members are still electing.
     */
    async checkRestoredReplicaSet(input: { replicaSet: string; hosts: string[] }): Promise<Record<string, string>> {
      const states: Record<string, string> = {};
      for (const host of input.hosts) {
        const client = directClient(host);
        try {
          const hello = await client.db('admin').command({ hello: 1 });
          if (hello.setName !== input.replicaSet) throw new CutpointError('MONGO_UNREACHABLE', `${host} answers as replica set ${String(hello.setName)}, not ${input.replicaSet}`);
          states[host] = hello.isWritablePrimary ? 'PRIMARY' : hello.secondary ? 'SECONDARY' : 'OTHER';
        } catch (e) {
          if (e instanceof CutpointError) throw e;
          throw new CutpointError('MONGO_UNREACHABLE', `restored member ${host} does not answer: ${(e as Error).message}`);
        } finally {
          await client.close().catch(() => undefined);
        }
      }
      const primaries = Object.values(states).filter((s) => s === 'PRIMARY').length;
      if (primaries !== 1) throw new CutpointError('MONGO_UNREACHABLE', `restored replica set ${input.replicaSet} has ${primaries} primaries yet: ${JSON.stringify(states)}`);
      return states;
    },

    /** Adds `host` to the running replica set (replSetReconfig on its primary, version + 1); a no-op when present. */
    async addReplicaSetMember(input: { target: MongoTarget; host: string; replicaSet: string }): Promise<{ added: boolean }> {
      return withClient(input.target, {}, async (client) => {
        const admin = client.db('admin');
        const { config } = (await admin.command({ replSetGetConfig: 1 })) as { config: Document };
        if (config._id !== input.replicaSet) throw new CutpointError('BAD_USAGE', `${input.target.uri} is replica set ${String(config._id)}, not ${input.replicaSet}`);
        const members = config.members as Document[];
        if (members.some((m) => m.host === input.host)) return { added: false };
        const nextId = Math.max(...members.map((m) => Number(m._id))) + 1;
        // A new member starts with no vote and priority 0 (MongoDB's advice for adding a member): it cannot
        // disturb elections or the majority while it catches up.
        await admin.command({ replSetReconfig: { ...config, version: Number(config.version) + 1, members: [...members, { _id: nextId, host: input.host, priority: 0, votes: 0 }] } });
        log.info('member added to the replica set', { host: input.host, replicaSet: input.replicaSet });
        return { added: true };
      });
    },

    /** The state the running set's primary reports for `host` (replSetGetStatus), e.g. SECONDARY. */
    async memberStateOf(input: { target: MongoTarget; host: string }): Promise<{ state: string; health: number }> {
      return withClient(input.target, {}, async (client) => {
        const status = await client.db('admin').command({ replSetGetStatus: 1 });
        const m = (status.members as Document[]).find((x) => x.name === input.host);
        return { state: String(m?.stateStr ?? 'not a member'), health: Number(m?.health ?? 0) };
      });
    },
  };
}

export type RestoreControlActivities = ReturnType<typeof restoreControlActivities>;
