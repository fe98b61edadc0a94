/**
 * The `--metrics` endpoint of `cutpoint worker`, `agent` and `up` (README, "Metrics and alerts"): cutpoint's metrics
 * (lib/metrics.ts) and, after them in the same scrape, the Temporal SDK's worker metrics. The SDK's Rust core has its
 * own Prometheus exporter, which serves only the core's metrics: it is bound to a free loopback port and read on every
 * scrape, so one scrape target gives both.
 */
import { freePort } from '../lib/ports.ts';
import { serveMetrics, type MetricsServer } from '../lib/metrics.ts';
import { installRuntime } from './runtime.ts';

/** `--metrics`, else CUTPOINT_METRICS_ADDRESS, else none. */
export function metricsAddress(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flag ?? (env.CUTPOINT_METRICS_ADDRESS || undefined);
}

/**
 * Binds the endpoint at `address` (BAD_USAGE, exit 2, when it is taken), then installs the worker runtime with the
 * SDK's exporter on a loopback port. Must run before the first Worker or connection of the process.
 */
export async function startMetricsEndpoint(address: string): Promise<MetricsServer> {
  const sdk = `127.0.0.1:${await freePort()}`;
  const server = await serveMetrics(address, { forward: `http://${sdk}/metrics` });
  installRuntime({ sdkMetrics: sdk });
  return server;
}
