/**
 * Installs the Temporal Runtime once per process with its logs routed to pino.
 *
 * Must run before the first Worker or NativeConnection is created: the SDK fixes the runtime on first use.
 */
import type { LogLevel } from '@temporalio/common';
import { makeTelemetryFilterString, NativeConnection, Runtime } from '@temporalio/worker';
import { log, PinoTemporalLogger } from '../lib/logger.ts';
import { connectionOptions, unreachable, type TemporalTarget } from '../lib/temporal-connection.ts';

let installed = false;

/**
 * The Rust core's log level for a pino level: the same level, but never more verbose than INFO (core's DEBUG and
 * TRACE output is for SDK developers and floods a terminal).
 */
export function coreLogLevel(pinoLevel: string): LogLevel {
  switch (pinoLevel) {
    case 'warn':
      return 'WARN';
    case 'error':
    case 'fatal':
    case 'silent':
      return 'ERROR';
    default: // trace, debug, info
      return 'INFO';
  }
}

/**
 * Idempotent: the first call wins, later calls are no-ops. `sdkMetrics`: a host:port where the SDK's own Prometheus
 * exporter serves the worker metrics (workers/metrics-endpoint.ts appends them to cutpoint's); returns whether this
 * call installed the runtime (false: an earlier call did, and its metrics settings hold).
 */
export function installRuntime(opts: { sdkMetrics?: string } = {}): boolean {
  if (installed) return false;
  installed = true;
  const logger = log();
  Runtime.install({
    logger: new PinoTemporalLogger(logger.child({ component: 'temporal' })),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: coreLogLevel(logger.level), other: 'ERROR' }) },
      ...(opts.sdkMetrics ? { metrics: { prometheus: { bindAddress: opts.sdkMetrics } } } : {}),
    },
    // cutpoint owns SIGINT/SIGTERM (cli/signals.ts): the SDK must not shut workers down on its own, or a
    // Ctrl-C during start-up or a second Ctrl-C would be handled twice.
    shutdownSignals: [],
  });
  return true;
}

/** A worker-side connection (NativeConnection); installs the pino-routed Runtime first, as the SDK requires. */
export async function connectWorker(target: TemporalTarget): Promise<NativeConnection> {
  installRuntime();
  try {
    return await NativeConnection.connect(connectionOptions(target));
  } catch (e) {
    throw unreachable(target, e);
  }
}
