/**
 * The backup user's password goes nowhere but to MongoDB: a backup of a cluster that requires authentication, and the
 * restore of that backup to new members, run by worker processes that log at `debug` with the credentials in their
 * environment, leave the password in no log line of the orchestrator or the agents, no event of any workflow's history
 * (payloads decoded), no output of the CLI, no file of the repository and no file of the restored dbpath. The
 * cluster's key file (internal authentication) and its encryption master key are secrets too: the same scan.
 *
 * The cluster runs as an operator's would: keyFile authentication between members, directoryPerDB layout, PSMDB
 * encryption at rest. The restore starts every mongod with those options (recorded at backup time as the replica-set
 * manifest's startupOptions; the target map gives the new hosts' key file paths): without them the simulator's
 * mongod refuses the dbpath, as mongod does. The restored set comes up with access control (an unauthenticated read
 * is refused, the source's users work) and its two members, separate processes, replicate with the key.
 */
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { join } from 'node:path';
import type { temporal } from '@temporalio/proto';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BackupSummary } from '../common/backup-types.ts';
import type { ReplicaSetManifest } from '../common/manifest.ts';
import type { RestoreSummary } from '../common/restore-types.ts';
import { eventually, MONGOD_BIN } from '../sim/testkit.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { newMembers, stopMembers } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { whereSecret } from './helpers/secrets.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const processes: Array<ReturnType<typeof startCli>> = [];

const secrets = tempDir('cutpoint-credentials-keys-');
const KEY = randomBytes(48).toString('base64');
const MASTER_KEY = randomBytes(32).toString('base64');
const keyFile = join(secrets, 'keyfile');
const masterKeyFile = join(secrets, 'master.key');

beforeAll(async () => {
  writeFileSync(keyFile, KEY, { mode: 0o600 });
  writeFileSync(masterKeyFile, MASTER_KEY, { mode: 0o600 });
  // Workers as separate processes, so that everything they print is theirs.
  stack = await startSimStack({
    replsetOnly: true,
    members: 2,
    auth: true,
    keyFile,
    directoryPerDB: true,
    encryptionKeyFile: masterKeyFile,
    orchestrator: false,
    agents: false,
  });
});
afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await stack?.stop();
});

/** Every file under `dir`, as [relative path, text]. */
function filesOf(dir: string): Array<[string, string]> {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => [join(e.parentPath, e.name).slice(dir.length + 1), readFileSync(join(e.parentPath, e.name), 'latin1')]);
}

describe('credentials', () => {
  it('the password and keys of an --auth, keyFile, encrypted backup and its restore are in no log line, history, CLI output, repository or restored file; the restore repeats the source\'s startup options', async () => {
    const { user, password } = (stack.cluster.describe().users as Record<string, { user: string; password: string }>).backup!;
    const hosts = stack.cluster.describe().shards[0].hosts as string[];
    const temporalEnv = { TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') };
    const workerEnv = { ...temporalEnv, CUTPOINT_LOG_LEVEL: 'debug', CUTPOINT_MONGO_USERNAME: user, CUTPOINT_MONGO_PASSWORD: password };
    processes.push(startCli(['worker'], workerEnv), startCli(['agent', ...hosts.flatMap((h) => ['--mongod', h])], workerEnv));

    const dir = tempDir('cutpoint-credentials-');
    const cli = await runCli(['backup', '--uri', stack.cluster.describe().shards[0].uri as string, '--repo', dir, '--keep-alive-ms', '1000', '--json'], {
      ...temporalEnv,
      CUTPOINT_LOG_LEVEL: 'debug',
    });
    expect(cli.code, cli.stderr).toBe(0);
    const summary = JSON.parse(cli.stdout.trim().split('\n').at(-1)!) as BackupSummary;
    expect(summary.status).toBe('complete');

    // The scan finds a planted secret, in a string and in a payload's bytes.
    expect(whereSecret({ events: [{ a: { payloads: [{ data: Buffer.from(`{"p":"${password}"}`) }] } }] }, password)).toEqual(['.events.0.a.payloads.0.data']);

    // The recorded startup options: layout, encryption and security by configuration-file name, secrets by path only.
    const rsManifest = JSON.parse(readFileSync(join(dir, 'backups', summary.id, 'rs0', 'manifest.json'), 'utf8')) as ReplicaSetManifest;
    expect(rsManifest.startupOptions).toEqual({
      'storage.directoryPerDB': true,
      'security.enableEncryption': true,
      'security.encryptionKeyFile': masterKeyFile,
      'security.keyFile': keyFile,
      'security.authorization': 'enabled',
    });

    // The restore, to two new members whose agents have the credentials too; on the new hosts the key files are
    // elsewhere (copies), given in the target map.
    const targets = await newMembers(2, 'credentials-target');
    const newKeys = tempDir('cutpoint-credentials-newkeys-');
    copyFileSync(keyFile, join(newKeys, 'keyfile'));
    copyFileSync(masterKeyFile, join(newKeys, 'master.key'));
    const options = { 'security.keyFile': join(newKeys, 'keyfile'), 'security.encryptionKeyFile': join(newKeys, 'master.key') };
    processes.push(startCli(['agent', ...targets.flatMap((t) => ['--mongod', t.host])], { ...workerEnv, CUTPOINT_MONGOD_PATH: MONGOD_BIN }));
    const map = join(tempDir('cutpoint-credentials-map-'), 'map.json');
    writeFileSync(map, JSON.stringify({ rs0: targets.map((t) => ({ ...t, options })) }));
    const restoreCli = await runCli(['restore', summary.id, '--repo', dir, '--to', map, '--json'], { ...temporalEnv, CUTPOINT_LOG_LEVEL: 'debug' });
    expect(restoreCli.code, restoreCli.stderr).toBe(0);
    const restored = JSON.parse(restoreCli.stdout.trim().split('\n').at(-1)!) as RestoreSummary;
    expect(restored.status).toBe('complete');
    try {
      // Access control: refused without credentials, the source's users (restored with the data) let in.
      const [primary, secondary] = targets.map((t) => t.host) as [string, string];
      const anonymous = new MongoClient(`mongodb://${primary}/?directConnection=true`, { serverSelectionTimeoutMS: 5000 });
      const admin = stack.cluster.describe().users.admin as { user: string; password: string };
      const authed = (host: string) =>
        new MongoClient(`mongodb://${host}/?directConnection=true&readPreference=secondaryPreferred`, { auth: { username: admin.user, password: admin.password }, serverSelectionTimeoutMS: 5000 });
      const [onPrimary, onSecondary] = [authed(primary), authed(secondary)];
      try {
        await expect(anonymous.db('admin').collection('system.users').countDocuments()).rejects.toMatchObject({ code: 13 });
        expect(await onPrimary.db('admin').collection('system.users').countDocuments()).toBe(3);
        // The two members, separate processes, authenticate to each other with the key: a write replicates.
        await onPrimary.db('restored').collection('probe').insertOne({ _id: 'after-restore' as never });
        const states = async () =>
          JSON.stringify(((await onPrimary.db('admin').command({ replSetGetStatus: 1 })).members as Array<{ name: string; stateStr: string; health: number }>).map((m) => [m.name, m.stateStr, m.health]));
        await eventually(async () => (await states()) === JSON.stringify([[primary, 'PRIMARY', 1], [secondary, 'SECONDARY', 1]]), 20_000, 'the other restored member to be a healthy SECONDARY');
        await eventually(async () => (await onSecondary.db('restored').collection('probe').countDocuments()) === 1, 20_000, 'the write replicated to the other restored member');
        const opts = await onPrimary.db('admin').command({ getCmdLineOpts: 1 });
        expect(opts.parsed.security).toMatchObject({ keyFile: options['security.keyFile'], encryptionKeyFile: options['security.encryptionKeyFile'], enableEncryption: true });
        expect(opts.parsed.storage.directoryPerDB).toBe(true);
      } finally {
        await Promise.all([anonymous.close(), onPrimary.close(), onSecondary.close()]);
      }
    } finally {
      await stopMembers(restored.replicaSets.flatMap((r) => r.members));
    }

    const histories: temporal.api.history.v1.IHistory[] = [];
    for (const id of [summary.id, `${summary.id}.rs0`, restored.id, `${restored.id}.rs0`]) histories.push(await stack.h.client.workflow.getHandle(id).fetchHistory());
    expect(histories.map((h) => h.events?.length ?? 0).every((n) => n > 10)).toBe(true);

    for (const p of processes) p.child.kill('SIGTERM');
    const outputs = await Promise.all(processes.map((p) => p.done));
    const logLines = outputs.flatMap((o) => `${o.stdout}\n${o.stderr}`.split('\n')).filter((l) => l.trim());
    // Debug logging was on: the workers said a lot.
    expect(logLines.length).toBeGreaterThan(50);
    for (const secret of [password, KEY, MASTER_KEY]) {
      expect(logLines.filter((l) => l.includes(secret))).toEqual([]);
      expect(histories.flatMap((h, i) => whereSecret(h, secret, `history ${i}`))).toEqual([]);
      expect(`${cli.stdout}\n${cli.stderr}\n${restoreCli.stdout}\n${restoreCli.stderr}`).not.toContain(secret);
      expect(filesOf(dir).filter(([, text]) => text.includes(secret)).map(([p]) => p)).toEqual([]);
    }
    // The restored members hold the users (their SCRAM keys) in the source's layout, never the password itself.
    for (const t of targets) {
      const restoredFiles = filesOf(t.dbpath);
      expect(restoredFiles.some(([p]) => p.startsWith('admin/collection-'))).toBe(true);
      expect(restoredFiles.filter(([, text]) => text.includes(password)).map(([p]) => p)).toEqual([]);
    }
  });
});
