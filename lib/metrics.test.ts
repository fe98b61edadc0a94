/**
 * lib/metrics.ts: the gauges a backup's manifests set, served at /metrics; a taken address is BAD_USAGE naming it.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { backupFinished, backupStarted, copyMeter, parseListenAddress, replicaSetMembers, serveMetrics } from './metrics.ts';

const manifest = (id: string, status: 'complete' | 'failed', startedAt: string, finishedAt: string) => ({
  format: 'cutpoint/v2',
  id,
  cluster: 'metrics-test',
  status,
  startedAt,
  finishedAt,
  commonTimestamp: status === 'complete' ? { t: 1, i: 1 } : null,
  balancerWasEnabled: null,
  bytes: 1234,
  replicaSets: [],
});

describe('metrics', () => {
  it('serves the last outcome per cluster: success time kept across a later failure, running count, copy bytes', async () => {
    const server = await serveMetrics('127.0.0.1:0');
    try {
      backupStarted('metrics-test', 'b1');
      backupStarted('metrics-test', 'b1'); // a retried activity counts once
      let text = await (await fetch(server.url)).text();
      expect(text).toMatch(/^cutpoint_backups_running\{cluster="metrics-test"\} 1$/m);
      backupFinished(manifest('b1', 'complete', '2026-01-01T00:00:00.000Z', '2026-01-01T00:01:40.000Z'));
      backupStarted('metrics-test', 'b2');
      backupFinished(manifest('b2', 'failed', '2026-01-02T00:00:00.000Z', '2026-01-02T00:00:10.000Z'));
      const meter = copyMeter('127.0.0.1:27017');
      meter.rate(5_000_000);
      meter.copied(4096);
      meter.done();
      text = await (await fetch(server.url)).text();
      const t1 = Date.parse('2026-01-01T00:01:40.000Z') / 1000;
      expect(text).toMatch(new RegExp(`^cutpoint_backup_last_success_timestamp_seconds\\{cluster="metrics-test"\\} ${t1}$`, 'm'));
      expect(text).toMatch(/^cutpoint_backup_last_failed\{cluster="metrics-test"\} 1$/m);
      expect(text).toMatch(/^cutpoint_backup_last_duration_seconds\{cluster="metrics-test"\} 10$/m);
      expect(text).toMatch(/^cutpoint_backups_running\{cluster="metrics-test"\} 0$/m);
      expect(text).toMatch(/^cutpoint_backups_total\{cluster="metrics-test",status="failed"\} 1$/m);
      expect(text).toMatch(/^cutpoint_agent_copied_bytes_total\{mongod="127.0.0.1:27017"\} 4096$/m);
      expect(text).toMatch(/^cutpoint_agent_copy_throttle_bytes_per_second\{mongod="127.0.0.1:27017"\} 5000000$/m);
      expect(text).not.toMatch(/b1|b2/);
      expect((await fetch(server.url.replace('/metrics', '/'))).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it('lists the members of a replica set as last discovered', async () => {
    const server = await serveMetrics('127.0.0.1:0');
    try {
      replicaSetMembers('rsm', ['h1:27017', 'h2:27017']);
      replicaSetMembers('rsm', ['h2:27017', 'h3:27017']);
      const lines = (await (await fetch(server.url)).text()).split('\n').filter((l) => l.startsWith('cutpoint_replica_set_member{'));
      expect(lines).toEqual(['cutpoint_replica_set_member{replica_set="rsm",mongod="h2:27017"} 1', 'cutpoint_replica_set_member{replica_set="rsm",mongod="h3:27017"} 1']);
    } finally {
      await server.close();
    }
  });

  it('refuses a taken address and a malformed one with BAD_USAGE', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(serveMetrics(`127.0.0.1:${port}`)).rejects.toMatchObject({ code: 'BAD_USAGE', message: new RegExp(`--metrics 127.0.0.1:${port}: the address is in use`) });
    } finally {
      taken.close();
    }
    expect(() => parseListenAddress('localhost')).toThrow(/is not host:port/);
    expect(parseListenAddress(':9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(parseListenAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
  });
});
