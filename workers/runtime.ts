/**
 * Installs the Temporal Runtime once per process with its logs routed to pino.
 *
 * Must run before the first Worker or NativeConnection is created: the SDK fixes the runtime on first use.
 */
import { Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { log, PinoTemporalLogger } from './logger.ts';

let installed = false;

/** Idempotent: the first call wins, later calls are no-ops. */
export function installRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({
    logger: new PinoTemporalLogger(log().child({ component: 'temporal' })),
    telemetryOptions: {
      logging: { forward: {}, filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }) },
    },
  });
}
