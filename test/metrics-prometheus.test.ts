/**
 * The metrics as an operator's Prometheus sees them: Debian's Prometheus scrapes a `cutpoint worker --metrics`
 * process (the orchestrator; the agents run in this process) every second and evaluates the shipped alert rules
 * (monitoring/cutpoint-rules.yml) every second. After a backup, the query for the newest complete backup's time
 * answers that backup's finish time within seconds of its end; after a failed backup the failure alert fires in
 * Prometheus's own rule evaluation. The scrape also carries the Temporal SDK's worker metrics.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { backupResult, startBackup } from '../api/backups.ts';
import { fsRepository } from '../repository/repository.ts';
import { freePort } from '../lib/ports.ts';
import { startCli, waitFor } from './helpers/cli.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const RULES = fileURLToPath(new URL('../monitoring/cutpoint-rules.yml', import.meta.url));

let stack: SimStack;
let worker: ReturnType<typeof startCli> | undefined;
let prometheus: ChildProcess | undefined;
let promUrl = '';
let promLog = '';

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(q: string): Promise<Sample[]> {
  const r = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: Sample[] } };
  return r.data.result;
}

/** Polls until `probe` returns a value (not undefined), or fails after `ms` naming `what` with Prometheus's log. */
async function until<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\nworker:\n${worker?.output().stderr.slice(-3000)}\nprometheus:\n${promLog.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  expect(existsSync(PROMETHEUS), `${PROMETHEUS} is missing: install Debian's prometheus package (apt-get install prometheus; npm test does as root)`).toBe(true);
  stack = await startSimStack({ replsetOnly: true, members: 1, orchestrator: false });
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  worker = startCli(['worker', '--metrics', metricsAddress], {
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_NAMESPACE: inject('temporalNamespace'),
    CUTPOINT_LOG_LEVEL: 'info',
  });
  await waitFor(() => worker!.output().stderr.includes('orchestrator worker running') || worker!.output().code !== null, 120_000, 'the orchestrator worker');
  expect(worker.output().code, worker.output().stderr).toBeNull();

  const dir = tempDir('cutpoint-prometheus-');
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      `rule_files: [${JSON.stringify(RULES)}]`,
      'scrape_configs:',
      `  - { job_name: cutpoint-orchestrator, static_configs: [{ targets: [${JSON.stringify(metricsAddress)}] }] }`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
  await until(async () => ((await query('up{job="cutpoint-orchestrator"} == 1')).length === 1 ? true : undefined), 60_000, 'Prometheus scraping the worker');
});

afterAll(async () => {
  prometheus?.kill('SIGTERM');
  worker?.child.kill('SIGTERM');
  await worker?.done;
  await stack?.stop();
});

describe('Prometheus scraping a running stack', () => {
  it('answers the newest complete backup time within seconds of its end; carries the SDK worker metrics', async () => {
    const repo = tempDir('cutpoint-repo-');
    const uri = stack.cluster.describe().shards[0].uri as string;
    const { id } = await startBackup(stack.h.client, { uri, repo, keepAliveIntervalMs: 1000 });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('complete');
    const ended = Date.now();
    const manifest = await fsRepository(repo).readClusterManifest(id);
    const finishedAt = Date.parse(manifest!.finishedAt!) / 1000;

    const value = await until(
      async () => {
        const [s] = await query('cutpoint_backup_last_success_timestamp_seconds{cluster="rs0"}');
        return s && Number(s.value[1]) === finishedAt ? Number(s.value[1]) : undefined;
      },
      30_000,
      'the newest complete backup time in Prometheus',
    );
    const lag = Date.now() - ended;
    expect(value).toBe(finishedAt);
    expect(lag).toBeLessThan(5_000);
    expect(await query('cutpoint_backup_last_failed{cluster="rs0"}')).toMatchObject([{ value: [expect.any(Number), '0'] }]);
    // The member the backup discovered, which the CutpointAgentMissing rule matches against the agents' mongods.
    const members = await query('cutpoint_replica_set_member{replica_set="rs0"}');
    expect(members.map((s) => s.metric.mongod)).toEqual([stack.cluster.shards[0]!.localNodes[0]!.address]);
    // The SDK's own worker metrics come in the same scrape.
    expect((await query('{job="cutpoint-orchestrator", __name__=~"temporal_.+"}')).length).toBeGreaterThan(0);
  });

  it('after a failed backup the failure alert fires in Prometheus rule evaluation', async () => {
    const repo = tempDir('cutpoint-repo-');
    const uri = stack.cluster.describe().shards[0].uri as string;
    // A node that is not a member: the backup starts (its manifest is written `running`) and fails at node selection.
    const { id } = await startBackup(stack.h.client, { uri, repo, node: '127.0.0.1:1', keepAliveIntervalMs: 1000 });
    const summary = await backupResult(stack.h.client, id);
    expect(summary.status).toBe('failed');
    const ended = Date.now();
    const alert = await until(
      async () => {
        const r = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } };
        return r.data.alerts.find((a) => a.labels.alertname === 'CutpointBackupFailed' && a.state === 'firing');
      },
      30_000,
      'CutpointBackupFailed firing',
    );
    expect(alert.labels).toMatchObject({ cluster: 'rs0', severity: 'warning' });
    expect(Date.now() - ended).toBeLessThan(10_000);
  });
});
