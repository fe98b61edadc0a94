/** Connections to Temporal for CLI verbs, with errors that say which address failed and how to change it. */
import { Connection, Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { CutpointError } from '../../common/errors.ts';
import { redactString } from '../../common/redact.ts';
import { connectionOptions, type TemporalTarget } from '../../workers/connection.ts';
import { installRuntime } from '../../workers/runtime.ts';

function unreachable(target: TemporalTarget, e: unknown): CutpointError {
  return new CutpointError(
    'TEMPORAL_UNAVAILABLE',
    `cannot reach Temporal at ${target.address} (namespace ${target.namespace}): ${redactString(String((e as Error)?.message ?? e))}. ` +
      'Set TEMPORAL_ADDRESS (and TEMPORAL_TLS_* for TLS), or run `cutpoint up` for an embedded dev server.',
  );
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

/** A client for starting and inspecting workflows. */
export async function connectClient(target: TemporalTarget): Promise<{ client: Client; connection: Connection }> {
  try {
    const connection = await Connection.connect({ ...connectionOptions(target), connectTimeout: 10_000 });
    return { client: new Client({ connection, namespace: target.namespace }), connection };
  } catch (e) {
    throw unreachable(target, e);
  }
}
