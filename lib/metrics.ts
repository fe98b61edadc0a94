/**
 * Prometheus metrics of a cutpoint process (README, "Metrics and alerts"): the orchestrator's per-cluster backup
 * outcome and the agents' copy figures, in one prom-client registry per process, served at `/metrics` by
 * {@link serveMetrics} next to the Temporal SDK's own worker metrics (the Rust core's exporter, bound to a loopback
 * port and appended to every scrape; workers/runtime.ts).
 *
 * Labels are bounded by the deployment: `cluster` (the backed-up cluster's name), `replica_set`, `mongod` (a member's
 * host:port), `status` (complete, failed, cancelled). No backup id is ever a label.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { CutpointError } from '../common/errors.ts';
import type { ClusterManifest } from '../common/manifest.ts';

/** The environment variable that gives `--metrics` its default (README, "Environment variables"). */
export const METRICS_ADDRESS_ENV = 'CUTPOINT_METRICS_ADDRESS';

/** This process's registry. */
export const registry = new Registry();

const cluster = ['cluster'] as const;
const mongod = ['mongod'] as const;
const registers = [registry];

const m = {
  lastSuccess: new Gauge({ name: 'cutpoint_backup_last_success_timestamp_seconds', help: 'when the newest complete backup of the cluster finished (Unix seconds)', labelNames: cluster, registers }),
  lastFinish: new Gauge({ name: 'cutpoint_backup_last_finish_timestamp_seconds', help: 'when the last backup of the cluster ended, whatever its outcome (Unix seconds)', labelNames: cluster, registers }),
  lastFailed: new Gauge({ name: 'cutpoint_backup_last_failed', help: '1 when the last backup of the cluster failed, else 0 (complete or cancelled)', labelNames: cluster, registers }),
  lastDuration: new Gauge({ name: 'cutpoint_backup_last_duration_seconds', help: 'how long the last backup of the cluster ran', labelNames: cluster, registers }),
  lastBytes: new Gauge({ name: 'cutpoint_backup_last_bytes', help: 'bytes of the last backup of the cluster (its files, before deduplication)', labelNames: cluster, registers }),
  running: new Gauge({ name: 'cutpoint_backups_running', help: 'backups of the cluster running in this orchestrator', labelNames: cluster, registers }),
  finished: new Counter({ name: 'cutpoint_backups_total', help: 'backups that ended, by outcome', labelNames: ['cluster', 'status'] as const, registers }),
  member: new Gauge({ name: 'cutpoint_replica_set_member', help: '1 for every member of a replica set the orchestrator discovered (an agent must serve each)', labelNames: ['replica_set', 'mongod'] as const, registers }),
  agentMongod: new Gauge({ name: 'cutpoint_agent_mongod', help: '1 for every mongod this agent serves', labelNames: mongod, registers }),
  copiedBytes: new Counter({ name: 'cutpoint_agent_copied_bytes_total', help: 'bytes this agent copied out of the dbpath of the mongod (its rate is the copy throughput)', labelNames: mongod, registers }),
  copiesRunning: new Gauge({ name: 'cutpoint_agent_copies_running', help: 'copy batches running for the mongod', labelNames: mongod, registers }),
  throttle: new Gauge({ name: 'cutpoint_agent_copy_throttle_bytes_per_second', help: 'the copy rate limit in effect for the mongod (0: unlimited), as of its last copy', labelNames: mongod, registers }),
};

/** Running backups per cluster (ids kept here, never as labels), so a retried start counts once. */
const running = new Map<string, Set<string>>();

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** The orchestrator wrote a `running` manifest for backup `id` of `clusterName`. */
export function backupStarted(clusterName: string, id: string): void {
  const ids = running.get(clusterName) ?? new Set<string>();
  running.set(clusterName, ids.add(id));
  m.running.set({ cluster: clusterName }, ids.size);
}

/** The orchestrator wrote a backup's final manifest (complete, failed or cancelled). */
export function backupFinished(manifest: ClusterManifest): void {
  const labels = { cluster: manifest.cluster };
  const ids = running.get(manifest.cluster);
  ids?.delete(manifest.id);
  m.running.set(labels, ids?.size ?? 0);
  m.finished.inc({ ...labels, status: manifest.status });
  if (!manifest.finishedAt) return;
  m.lastFinish.set(labels, seconds(manifest.finishedAt));
  m.lastFailed.set(labels, manifest.status === 'failed' ? 1 : 0);
  m.lastDuration.set(labels, Math.max(0, seconds(manifest.finishedAt) - seconds(manifest.startedAt)));
  m.lastBytes.set(labels, manifest.bytes);
  if (manifest.status === 'complete') setLastSuccess(manifest.cluster, seconds(manifest.finishedAt));
}

/** Clusters whose catalogue was read for the newest complete backup ({@link seedLastSuccess}), once per process. */
const seeded = new Set<string>();

/** Whether {@link seedLastSuccess} should run for `clusterName` (it has not yet in this process). */
export function needsSeed(clusterName: string): boolean {
  return !seeded.has(clusterName);
}

/**
 * Sets the finish time of `clusterName`'s newest complete backup from the repository's catalogue (after a restart
 * the gauge would otherwise stay empty until the next complete backup), unless a later one is already known.
 */
export function seedLastSuccess(clusterName: string, finishedAt: string | null): void {
  seeded.add(clusterName);
  if (finishedAt) setLastSuccess(clusterName, seconds(finishedAt));
}

/** Finish times of the newest complete backups, per cluster, as the gauge holds them. */
const lastSuccessAt = new Map<string, number>();

function setLastSuccess(clusterName: string, t: number): void {
  if ((lastSuccessAt.get(clusterName) ?? -Infinity) >= t) return;
  lastSuccessAt.set(clusterName, t);
  m.lastSuccess.set({ cluster: clusterName }, t);
}

/** The members of each replica set as last discovered, so a member that left is dropped. */
const members = new Map<string, Set<string>>();

/** The orchestrator discovered replica set `replicaSet` with members `hosts` (host:port, as agents name them). */
export function replicaSetMembers(replicaSet: string, hosts: string[]): void {
  const now = new Set(hosts);
  for (const old of members.get(replicaSet) ?? []) if (!now.has(old)) m.member.remove({ replica_set: replicaSet, mongod: old });
  for (const h of now) m.member.set({ replica_set: replicaSet, mongod: h }, 1);
  members.set(replicaSet, now);
}

/** An agent serves `mongodAddress`. */
export function agentServes(mongodAddress: string): void {
  m.agentMongod.set({ mongod: mongodAddress }, 1);
}

/** Copy figures of one agent's mongod: `copied(bytes)` as bytes are read, `rate(r)` when the limit is (re)set. */
export function copyMeter(mongodAddress: string): { copied: (bytes: number) => void; rate: (bytesPerSec: number) => void; done: () => void } {
  const labels = { mongod: mongodAddress };
  m.copiesRunning.inc(labels);
  let open = true;
  return {
    copied: (bytes) => m.copiedBytes.inc(labels, bytes),
    rate: (bytesPerSec) => m.throttle.set(labels, bytesPerSec),
    done: () => {
      if (open) m.copiesRunning.dec(labels);
      open = false;
    },
  };
}

/** A metrics endpoint being served. */
export interface MetricsServer {
  /** `http://host:port/metrics`. */
  url: string;
  close(): Promise<void>;
}

/** `host:port` (IPv6 in brackets) → its parts; BAD_USAGE naming `flag` otherwise. */
export function parseListenAddress(value: string, flag = '--metrics'): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || !Number.isInteger(port) || port > 65535) {
    throw new CutpointError('BAD_USAGE', `${flag} '${value}' is not host:port (e.g. 127.0.0.1:9464, or :9464 for every interface)`);
  }
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/**
 * Serves this process's metrics at `http://<address>/metrics`; with `forward`, the text of that URL (the Temporal
 * SDK's exporter) is appended to every scrape. A taken or unusable address is BAD_USAGE (exit 2) naming it.
 */
export async function serveMetrics(address: string, opts: { forward?: string } = {}): Promise<MetricsServer> {
  const { host, port } = parseListenAddress(address);
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('cutpoint serves its metrics at /metrics\n');
      return;
    }
    void (async () => {
      let text = await registry.metrics();
      if (opts.forward) {
        // The SDK's metrics are part of the answer; when its exporter does not answer the scrape still has ours.
        const sdk = await fetch(opts.forward, { signal: AbortSignal.timeout(2000) })
          .then((r) => (r.ok ? r.text() : ''))
          .catch(() => '');
        text += sdk.endsWith('\n') || sdk === '' ? sdk : `${sdk}\n`;
      }
      res.writeHead(200, { 'content-type': registry.contentType }).end(text);
    })().catch((e: unknown) => res.writeHead(500).end(String(e)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'is in use by another process' : e.code === 'EACCES' ? 'needs privileges this process lacks' : `cannot be bound (${e.code ?? e.message})`;
      reject(new CutpointError('BAD_USAGE', `--metrics ${address}: the address ${why}; give another host:port (or ${METRICS_ADDRESS_ENV})`, undefined, { cause: e }));
    });
    server.listen({ host, port, exclusive: true }, resolve);
  });
  const bound = server.address();
  const shown = typeof bound === 'object' && bound ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : address;
  return {
    url: `http://${shown}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
