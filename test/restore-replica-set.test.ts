/**
 * Replica-set restore on the real Temporal dev server and the simulator: a backup taken under the bank workload is
 * restored to new ports and dbpaths by the target hosts' agents, through the simulator's mongod executable (the node
 * controller spawns it with mongod's flags), and the restored set — still running afterwards — is checked with the
 * driver: its oplog ends at the common timestamp and its data equals history at that timestamp. Also the operator's
 * surface: `cutpoint restore --json`, `cutpoint verify`, and `cutpoint cancel` mid-restore rolling every target back.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../lib/process.ts';
import type { ClusterManifest, ReplicaSetManifest } from '../common/manifest.ts';
import type { RestoreSummary, StartedMember } from '../common/restore-types.ts';
import { compareTs } from '../common/timestamp.ts';
import { backupResult, startBackup } from '../api/backups.ts';
import { restoreProgress, restoreResult, startRestore, startVerify, verifyResult } from '../api/restores.ts';
import { Oracle } from '../sim/cluster/oracle.ts';
import { eventually } from '../sim/testkit.ts';
import { runCli } from './helpers/cli.ts';
import { helloOf, lastRealOplogTs, listening, newMembers, oplogTail, readAccounts, startTargetAgents, stopMembers, toTimestamp, useSimMongod } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { fromBsonTimestamp } from '../lib/bson-timestamp.ts';
import { tempDir } from './helpers/temp.ts';
import { FsStorage } from '../repository/fs-storage.ts';
import { ChunkIndex } from '../repository/v2/chunk-index.ts';
import { packPath } from '../repository/v2/pack.ts';

let stack: SimStack;
let repo: string;
let backupId: string;
const started: StartedMember[] = [];
const agents: Array<{ stop(): Promise<void> }> = [];

beforeAll(async () => {
  useSimMongod();
  stack = await startSimStack({ replsetOnly: true, members: 3, checkpointMs: 1000, bank: true });
  repo = tempDir('cutpoint-repo-');
  const uri = stack.cluster.describe().shards[0].uri as string;
  const { id } = await startBackup(stack.h.client, { uri, repo, keepAliveIntervalMs: 1000 });
  expect((await backupResult(stack.h.client, id)).status).toBe('complete');
  backupId = id;
});
afterAll(async () => {
  await stopMembers(started);
  for (const a of agents) await a.stop();
  await stack?.stop();
});


/**
 * A copy of the repository with one flipped byte in the stored (compressed) bytes of a chunk that only one data file
 * uses: that file, and only it, is damaged.
 */
async function corruptedRepo(): Promise<{ dir: string; path: string; chunk: string }> {
  const dir = tempDir('cutpoint-repo-bad-');
  cpSync(repo, dir, { recursive: true });
  const rm = JSON.parse(readFileSync(join(dir, 'backups', backupId, 'rs0', 'manifest.json'), 'utf8')) as ReplicaSetManifest;
  const users = new Map<string, number>();
  for (const f of rm.files) for (const c of new Set(f.chunks)) users.set(c, (users.get(c) ?? 0) + 1);
  const f = rm.files.find((x) => x.kind === 'data' && x.size > 100 && x.chunks!.some((c) => users.get(c) === 1))!;
  const chunk = f.chunks!.find((c) => users.get(c) === 1)!;
  const storage = new FsStorage(dir);
  const where = (await ChunkIndex.load(storage)).get(chunk)!;
  const file = join(dir, packPath(where.pack));
  const bytes = readFileSync(file);
  bytes[where.blob.offset + Math.floor(where.blob.length / 2)]! ^= 0x01;
  writeFileSync(file, bytes);
  return { dir, path: f.path, chunk };
}

describe('replica-set restore', () => {
  it('restores to new ports and dbpaths; the running set is at the common timestamp and equals history there', async () => {
    const members = await newMembers(3);
    agents.push(await startTargetAgents(stack.h, members));
    const { id } = await startRestore(stack.h.client, { backupId, repo, to: { rs0: members } });
    const summary = await restoreResult(stack.h.client, id);
    started.push(...summary.replicaSets.flatMap((r) => r.members));
    expect(summary.error).toBeUndefined();
    expect(summary.status).toBe('complete');
    const common = summary.commonTimestamp!;
    const cm = JSON.parse(readFileSync(join(repo, 'backups', backupId, 'manifest.json'), 'utf8')) as ClusterManifest;
    expect(common).toEqual(cm.commonTimestamp);

    const rs = summary.replicaSets[0]!;
    expect(rs.members.map((m) => m.host)).toEqual(members.map((m) => m.host));
    // The restored mongods keep running, as a replica set of the new hosts with one primary.
    for (const m of rs.members) expect(pidAlive(m.pid), m.host).toBe(true);
    const hellos = await Promise.all(members.map((m) => helloOf(m.host)));
    expect(hellos.map((h) => h.setName)).toEqual(['rs0', 'rs0', 'rs0']);
    expect(hellos.filter((h) => h.isWritablePrimary)).toHaveLength(1);
    expect(hellos.filter((h) => h.secondary)).toHaveLength(2);
    expect([...(hellos[0]!.hosts as string[])].sort()).toEqual(members.map((m) => m.host).sort());

    const ts = toTimestamp(common);
    const oracle = new Oracle(stack.workload!.history);
    for (const m of members) {
      // The oplog was cut at the common timestamp: its last replicated write is exactly there (a single replica
      // set's common timestamp is its own oplogEnd), whatever no-ops the running primary has written since.
      expect(await lastRealOplogTs(m.host), m.host).toEqual(common);
      const tail = await oplogTail(m.host);
      expect(tail.some((e) => e.op !== 'n' && compareTs(fromBsonTimestamp(e.ts)!, common) > 0), m.host).toBe(false);
      // The data, read with the driver from the running member, equals history at that timestamp (bank invariant
      // included), while the source kept taking transfers after it.
      const verdict = oracle.verify([{ name: 'rs0', accounts: await readAccounts(m.host) }], ts);
      expect(verdict.mismatches, m.host).toEqual([]);
    }
    expect(stack.workload!.history.last().greaterThan(ts)).toBe(true);
    for (const m of rs.members) expect(m.oplogTop).toEqual(common);
  });

  it('a flipped byte in the repository fails the placement naming the file and chunk, and leaves the target empty', async () => {
    const bad = await corruptedRepo();
    const members = await newMembers(1);
    agents.push(await startTargetAgents(stack.h, members));
    const { id } = await startRestore(stack.h.client, { backupId, repo: bad.dir, to: { rs0: members } });
    const summary = await restoreResult(stack.h.client, id);
    expect(summary.status).toBe('failed');
    expect(summary.error?.code).toBe('CHECKSUM_MISMATCH');
    expect(summary.error?.message).toContain(bad.path);
    expect(summary.error?.message).toContain(`chunk ${bad.chunk}`);
    // No separate pass over the repository into an empty target: the placement found it, and the rollback emptied it.
    expect(summary.error?.message).toContain(`replica set rs0: ${bad.path}: chunk ${bad.chunk}`);
    expect(existsSync(members[0]!.dbpath) ? readdirSync(members[0]!.dbpath) : []).toEqual([]);

    // `cutpoint verify` names the file too and exits 1; the intact repository verifies clean.
    const env = { TEMPORAL_ADDRESS: stack.h.address, TEMPORAL_NAMESPACE: stack.h.namespace };
    const cli = await runCli(['verify', backupId, '--repo', bad.dir, '--json'], env);
    expect(cli.code).toBe(1);
    const v = JSON.parse(cli.stdout.trim().split('\n').at(-1)!) as { status: string; bad: Array<{ path: string; problem: string }> };
    expect(v.status).toBe('failed');
    expect(v.bad.map((b) => b.path)).toEqual([bad.path]);
    expect(v.bad[0]!.problem).toMatch(new RegExp(`^chunk ${bad.chunk} in pack 'data/[0-9a-f]{2}/[0-9a-f]{64}' of repository .* is damaged`));
    const good = await verifyResult(stack.h.client, (await startVerify(stack.h.client, { backupId, repo })).id);
    expect(good).toMatchObject({ status: 'complete', bad: [] });
    expect(good.files).toBeGreaterThan(0);
  });

  it('refuses bad input with a clear error and writes nothing to the targets', async () => {
    const members = await newMembers(2);
    agents.push(await startTargetAgents(stack.h, members));
    const run = async (input: Parameters<typeof startRestore>[1]) => restoreResult(stack.h.client, (await startRestore(stack.h.client, input)).id);

    const unknown = await run({ backupId: 'backup-does-not-exist', repo, to: { rs0: [members[0]!] } });
    expect(unknown.error).toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    expect(unknown.error?.message).toContain('backup-does-not-exist');

    const failedRepo = tempDir('cutpoint-repo-failed-');
    cpSync(repo, failedRepo, { recursive: true });
    const cmPath = join(failedRepo, 'backups', backupId, 'manifest.json');
    writeFileSync(cmPath, JSON.stringify({ ...(JSON.parse(readFileSync(cmPath, 'utf8')) as object), status: 'failed', error: { code: 'CURSOR_LOST', message: 'x' } }));
    const notComplete = await run({ backupId, repo: failedRepo, to: { rs0: [members[0]!] } });
    expect(notComplete.error).toMatchObject({ code: 'BACKUP_NOT_RESTORABLE' });

    const missing = await run({ backupId, repo, to: { cfg: [members[0]!] } });
    expect(missing.error?.code).toBe('BAD_USAGE');
    expect(missing.error?.message).toMatch(/no members for replica set rs0/);

    // An agent that is not running: the restore fails after the schedule-to-start timeout, naming the queue.
    const [ghost] = await newMembers(1, 'ghost');
    const t0 = Date.now();
    const noAgent = await run({ backupId, repo, to: { rs0: [ghost!] }, agentTimeoutMs: 3000 });
    expect(noAgent.error?.code).toBe('WORKER_UNAVAILABLE');
    expect(noAgent.error?.message).toContain(`cutpoint-agent:${ghost!.host}`);
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(existsSync(ghost!.dbpath)).toBe(false);

    // A non-empty dbpath is refused without --overwrite, and left as it was.
    const occupied = members[1]!;
    mkdirSync(occupied.dbpath, { recursive: true });
    writeFileSync(join(occupied.dbpath, 'precious.txt'), 'keep me');
    const refused = await run({ backupId, repo, to: { rs0: [occupied] } });
    expect(refused.error?.code).toBe('TARGET_NOT_EMPTY');
    expect(readdirSync(occupied.dbpath)).toEqual(['precious.txt']);

    // With --overwrite the old data is kept aside; a restore that fails later puts it back.
    process.env.CUTPOINT_MONGOD_PATH = '/nonexistent/mongod';
    try {
      const broken = await run({ backupId, repo, to: { rs0: [occupied] }, overwrite: true });
      expect(broken.error?.code).toBe('MONGOD_START_FAILED');
      expect(broken.error?.message).toContain('/nonexistent/mongod');
    } finally {
      useSimMongod();
    }
    expect(readdirSync(occupied.dbpath)).toEqual(['precious.txt']);
    expect(readFileSync(join(occupied.dbpath, 'precious.txt'), 'utf8')).toBe('keep me');
    expect(readdirSync(join(occupied.dbpath, '..')).filter((n) => n.includes('aside'))).toEqual([]);

    await expect(startRestore(stack.h.client, { backupId, repo, to: { rs0: [{ host: 'nohost', dbpath: '/x' }] } })).rejects.toThrow(/host:port/);
  });

  it('`cutpoint restore --json` restores and prints the summary, exit 0', async () => {
    const members = await newMembers(3, 'cli');
    agents.push(await startTargetAgents(stack.h, members));
    const map = join(tempDir('cutpoint-map-'), 'map.json');
    writeFileSync(map, JSON.stringify({ rs0: members }));
    const env = { TEMPORAL_ADDRESS: stack.h.address, TEMPORAL_NAMESPACE: stack.h.namespace };
    const cli = await runCli(['restore', backupId, '--repo', repo, '--to', map, '--json'], env);
    const summary = JSON.parse(cli.stdout.trim().split('\n').at(-1)!) as RestoreSummary;
    started.push(...summary.replicaSets.flatMap((r) => r.members));
    expect(cli.code, cli.stderr).toBe(0);
    expect(summary).toMatchObject({ backupId, status: 'complete', cluster: 'rs0' });
    expect(summary.replicaSets[0]!.members.map((m) => m.host).sort()).toEqual(members.map((m) => m.host).sort());
    expect((await helloOf(members[0]!.host)).setName).toBe('rs0');
  });

  it('cancel mid-restore (`cutpoint cancel <restore id>`): it ends cancelled, every target rolled back, no mongod left', async () => {
    const members = await newMembers(3, 'cancel');
    agents.push(await startTargetAgents(stack.h, members));
    const { id } = await startRestore(stack.h.client, { backupId, repo, to: { rs0: members } });
    // Once the files are placed and the members' mongods are being run: the rollback has something to undo.
    await eventually(async () => ['prepare', 'recover', 'reset', 'start'].includes((await restoreProgress(stack.h.client, id)).phase), 60_000, 'the restore past placing');
    const env = { TEMPORAL_ADDRESS: stack.h.address, TEMPORAL_NAMESPACE: stack.h.namespace };
    const cli = await runCli(['cancel', id, '--reason', 'wrong backup'], env);
    expect(cli.code, cli.stderr).toBe(0);
    const summary = await restoreResult(stack.h.client, id);
    expect(summary.status).toBe('cancelled');
    expect(summary.error).toEqual({ code: 'CANCELLED', message: 'cancelled: wrong backup' });
    // The steps the cancel found running ended before the replica set's workflow did (and so before the rollback):
    // a step left running would start or stop a mongod in a dbpath being emptied.
    const events = (await stack.h.client.workflow.getHandle(`${id}.rs0`).fetchHistory()).events ?? [];
    const cancelRequested = events.filter((e) => e.activityTaskCancelRequestedEventAttributes).map((e) => String(e.activityTaskCancelRequestedEventAttributes!.scheduledEventId));
    expect(cancelRequested.length).toBeGreaterThan(0);
    const ended = new Set(
      events.flatMap((e) => {
        const a = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskCanceledEventAttributes ?? e.activityTaskTimedOutEventAttributes;
        return a ? [String(a.scheduledEventId)] : [];
      }),
    );
    expect(cancelRequested.filter((s) => !ended.has(s))).toEqual([]);
    for (const m of members) {
      expect(existsSync(m.dbpath) ? readdirSync(m.dbpath) : [], m.dbpath).toEqual([]);
      expect(await listening(m.host), m.host).toBe(false);
    }
  });
});

