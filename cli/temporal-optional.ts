/**
 * A Temporal client when one can be had, for the verbs that read the repository and only refine what they show with
 * Temporal (`list`, `describe`, `prune`).
 */
import type { Client } from '@temporalio/client';
import { CutpointError } from '../common/errors.ts';
import { connectClient, temporalTargetFromEnv } from '../lib/temporal-connection.ts';
import type { CliContext } from './context.ts';

/**
 * Runs `fn` with a Temporal client, or with null when `offline` or when Temporal cannot be reached (a warning on
 * stderr): the catalogue does not need Temporal, it only refines `running`.
 */
export async function withOptionalTemporal<T>(ctx: CliContext, offline: boolean, fn: (client: Client | null) => Promise<T>): Promise<T> {
  if (offline) return fn(null);
  let connected: Awaited<ReturnType<typeof connectClient>> | undefined;
  try {
    connected = await connectClient(temporalTargetFromEnv());
  } catch (e) {
    if (!(e instanceof CutpointError && e.code === 'TEMPORAL_UNAVAILABLE')) throw e;
    ctx.log().warn({ err: e.message }, 'Temporal cannot be reached: running backups are shown as running? (not checked)');
    return fn(null);
  }
  try {
    return await fn(connected.client);
  } finally {
    await connected.connection.close();
  }
}
