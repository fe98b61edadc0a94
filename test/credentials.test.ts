/**
 * The backup user's password goes nowhere but to MongoDB: a backup of a cluster that requires authentication, and the
 * restore of that backup to a new member, run by worker processes that log at `debug` with the credentials in their
 * environment, leave the password in no log line of the orchestrator or the agents, no event of any workflow's history
 * (payloads decoded), no output of the CLI, no file of the repository and no file of the restored dbpath.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BackupSummary } from '../common/backup-types.ts';
import type { RestoreSummary } from '../common/restore-types.ts';
import { MONGOD_BIN } from '../sim/testkit.ts';
import { runCli, startCli } from './helpers/cli.ts';
import { newMembers, stopMembers } from './helpers/restore-targets.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const processes: Array<ReturnType<typeof startCli>> = [];

beforeAll(async () => {
  // Workers as separate processes, so that everything they print is theirs.
  stack = await startSimStack({ replsetOnly: true, members: 2, auth: true, orchestrator: false, agents: false });
});
afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await stack?.stop();
});

/** Paths (`events.3.…`) where `secret` appears in `value`: strings, and byte arrays (payloads) decoded as UTF-8. */
export function whereSecret(value: unknown, secret: string, path = ''): string[] {
  if (typeof value === 'string') return value.includes(secret) ? [path] : [];
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8').includes(secret) ? [path] : [];
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => whereSecret(v, secret, `${path}.${k}`));
  return [];
}

/** Every file under `dir`, as [relative path, text]. */
function filesOf(dir: string): Array<[string, string]> {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => [join(e.parentPath, e.name).slice(dir.length + 1), readFileSync(join(e.parentPath, e.name), 'latin1')]);
}

describe('credentials', () => {
  it('the password of an --auth backup and its restore is in no worker log line, workflow history, CLI output, repository or restored file', async () => {
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

    // The restore, to one new member whose agent has the credentials too.
    const [target] = await newMembers(1, 'credentials-target');
    processes.push(startCli(['agent', '--mongod', target!.host], { ...workerEnv, CUTPOINT_MONGOD_PATH: MONGOD_BIN }));
    const map = join(tempDir('cutpoint-credentials-map-'), 'map.json');
    writeFileSync(map, JSON.stringify({ rs0: [target] }));
    const restoreCli = await runCli(['restore', summary.id, '--repo', dir, '--to', map, '--json'], { ...temporalEnv, CUTPOINT_LOG_LEVEL: 'debug' });
    expect(restoreCli.code, restoreCli.stderr).toBe(0);
    const restored = JSON.parse(restoreCli.stdout.trim().split('\n').at(-1)!) as RestoreSummary;
    expect(restored.status).toBe('complete');
    await stopMembers(restored.replicaSets.flatMap((r) => r.members));

    const histories: temporal.api.history.v1.IHistory[] = [];
    for (const id of [summary.id, `${summary.id}.rs0`, restored.id, `${restored.id}.rs0`]) histories.push(await stack.h.client.workflow.getHandle(id).fetchHistory());
    expect(histories.map((h) => h.events?.length ?? 0).every((n) => n > 10)).toBe(true);
    expect(histories.flatMap((h, i) => whereSecret(h, password, `history ${i}`))).toEqual([]);

    for (const p of processes) p.child.kill('SIGTERM');
    const outputs = await Promise.all(processes.map((p) => p.done));
    const logLines = outputs.flatMap((o) => `${o.stdout}\n${o.stderr}`.split('\n')).filter((l) => l.trim());
    // Debug logging was on: the workers said a lot.
    expect(logLines.length).toBeGreaterThan(50);
    expect(logLines.filter((l) => l.includes(password))).toEqual([]);
    expect(`${cli.stdout}\n${cli.stderr}\n${restoreCli.stdout}\n${restoreCli.stderr}`).not.toContain(password);
    expect(filesOf(dir).filter(([, text]) => text.includes(password)).map(([p]) => p)).toEqual([]);
    // The restored member holds the users (their SCRAM keys), never the password itself.
    const restoredFiles = filesOf(target!.dbpath);
    expect(restoredFiles.some(([p]) => p.startsWith('collection-'))).toBe(true);
    expect(restoredFiles.filter(([, text]) => text.includes(password)).map(([p]) => p)).toEqual([]);
  });
});
