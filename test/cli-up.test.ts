/**
 * `npm start -- --once --repo <dir> --json` (docs/interfaces.md section 2): the embedded stack brings up a simulated
 * sharded cluster (2 shards and a config server) with its agents and the bank workload, backs it up, and ends with the summary as the last stdout line.
 * With `--uri <mongos>` of a cluster already running, the members behind the mongos get their agents.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { startTestCluster } from '../sim/testkit.ts';
import { runCli } from './helpers/cli.ts';
import { tempDir } from './helpers/temp.ts';

const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });

describe('cutpoint up --once --json', () => {
  it('backs up the simulated sharded cluster and prints only the summary on stdout', async () => {
    const state = tempDir('cutpoint-up-json-');
    // The default repository, under the state directory: a format v2 repository at repo-v2/ (an older cutpoint's v1
    // default, repo/, is left alone).
    const repo = join(state, 'repo-v2');
    const r = await runCli(['up', '--once', '--json', '--metrics', '127.0.0.1:0'], { ...env(), CUTPOINT_STATE_DIR: state, CUTPOINT_LOG_LEVEL: 'info' });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as { id: string; status: string; cluster: string; replicaSets: Array<{ name: string; configServer: boolean; files: number }> };
    expect(s).toMatchObject({ status: 'complete', cluster: 'cfg' });
    // Every replica set is listed, the config server's included.
    expect(s.replicaSets.map((r) => [r.name, r.configServer])).toEqual([
      ['cfg', true],
      ['shard0', false],
      ['shard1', false],
    ]);
    for (const r of s.replicaSets) expect(r.files, r.name).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/simulated sharded cluster mongodb:\/\/127\.0\.0\.1:\d+ /);
    // `--metrics`: up prints where its Prometheus metrics are (port 0: the port the system chose).
    expect(r.stderr).toMatch(/^Prometheus metrics: http:\/\/127\.0\.0\.1:[1-9]\d*\/metrics$/m);
    const manifest = JSON.parse(readFileSync(join(repo, 'backups', s.id, 'manifest.json'), 'utf8')) as { status: string };
    expect(manifest.status).toBe('complete');
    expect((JSON.parse(readFileSync(join(repo, 'cutpoint.json'), 'utf8')) as { format: string }).format).toBe('cutpoint/v2');

    // pino lines on stderr: each activity's lines name the backup and its phase.
    const logs = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; backupId?: string; phase?: string; sdkComponent?: string });
    const byMsg = (msg: string) => logs.filter((l) => l.msg === msg);
    for (const [msg, phase] of [
      ['backup node chosen', 'select'],
      ['backup cursor open', 'open'],
      ['backup cursor extended', 'extend'],
      ['copy batch stored', 'copy'],
      ['backup cursor closed', 'close'],
      ['replica-set manifest written', 'manifest'],
      ['backup complete', 'commit'],
    ] as const) {
      expect(byMsg(msg).length, msg).toBeGreaterThan(0);
      for (const l of byMsg(msg)) expect(l, msg).toMatchObject({ backupId: s.id, phase, sdkComponent: 'activity' });
    }
  });
});

describe('cutpoint up --once --json --uri <mongos>', () => {
  it('discovers the members behind the mongos (config server and shards), runs their agents here, and backs the cluster up', async () => {
    const cluster = await startTestCluster({ shards: 1, members: 1 });
    try {
      const repo = join(tempDir('cutpoint-up-uri-'), 'repo');
      const mongos = cluster.describe().mongos as string;
      const r = await runCli(['up', '--once', '--json', '--uri', mongos, '--repo', repo], env());
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout.trim()) as { status: string; replicaSets: Array<{ name: string; configServer: boolean; node: string }> };
      expect(s.status).toBe('complete');
      const members = cluster.replicaSets.flatMap((rs) => rs.localNodes.map((n) => n.address));
      expect(s.replicaSets.map((x) => x.node).sort()).toEqual([...members].sort());
      expect(r.stderr).toContain(`2 member(s) of ${mongos} on this host get an agent here`);
    } finally {
      await cluster.stop();
    }
  });
});
