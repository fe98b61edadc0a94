/**
 * What every long-running verb (backup, restore, verify, seed) shares: a Temporal client for the verb's duration,
 * and the end of the verb: return at once, or follow the workflow, print its summary (or JSON), exit by its outcome.
 */
import type { Client } from '@temporalio/client';
import { EXIT, exitCodeFor } from '../common/errors.ts';
import { temporalTargetFromEnv } from '../lib/temporal-connection.ts';
import type { CliContext } from './context.ts';
import { connectClient } from '../lib/temporal-connection.ts';

/** Runs `fn` with a client of the Temporal service the environment names; the connection is closed after. */
export async function withTemporal<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const { client, connection } = await connectClient(temporalTargetFromEnv());
  try {
    return await fn(client);
  } finally {
    await connection.close();
  }
}

/** The exit code of a finished operation: 0 complete, 3 cancelled, else its error code's (the registry's). */
export function exitForOutcome(s: { status: string; error?: { code: string } }): number {
  if (s.status === 'complete') return EXIT.ok;
  if (s.status === 'cancelled') return EXIT.cancelled;
  return exitCodeFor(s.error?.code);
}

/** How a verb ends once its workflow has started. */
export interface Outcome<S extends { status: string; error?: { code: string } }> {
  id: string;
  /** Noun for the "started" line ("backup", "restore"). */
  kind: string;
  /** Wait for the end (implied by `json`); without either the verb returns once started. */
  wait: boolean;
  json: boolean;
  /** Draws progress on stderr until the end (not with `json`: stdout then holds only the summary). */
  follow: () => Promise<void>;
  result: () => Promise<S>;
  print: (s: S) => void;
}

/** Ends a verb: started line, or progress then the summary (text or JSON) and the exit code of its outcome. */
export async function finishOperation<S extends { status: string; error?: { code: string } }>(ctx: CliContext, o: Outcome<S>): Promise<void> {
  if (!o.wait && !o.json) {
    ctx.out(`started ${o.kind} ${o.id}; watch it with: cutpoint status ${o.id}`);
    return;
  }
  if (!o.json) await o.follow();
  const s = await o.result();
  if (o.json) ctx.out(JSON.stringify(s));
  else o.print(s);
  ctx.setExit(exitForOutcome(s));
}
