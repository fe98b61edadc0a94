/**
 * Temporal connection settings from the environment (docs/interfaces.md section 2), shared by the CLI, workers and
 * tests.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection, type TLSConfig, WorkflowNotFoundError } from '@temporalio/client';
import { CutpointError } from '../common/errors.ts';
import { redactString } from '../common/redact.ts';

/** Where and how to reach Temporal; built from TEMPORAL_* variables or given explicitly (embedded dev server). */
export interface TemporalTarget {
  /** Frontend `host:port`. */
  address: string;
  namespace: string;
  /** mTLS and/or a custom CA; absent for plain connections. */
  tls?: TLSConfig;
}

/** The address used when TEMPORAL_ADDRESS is unset and no embedded server was started. */
export const DEFAULT_TEMPORAL_ADDRESS = '127.0.0.1:7233';

function readPem(variable: string, env: NodeJS.ProcessEnv): Buffer | undefined {
  const path = env[variable];
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new CutpointError('BAD_USAGE', `${variable}=${path}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
}

/**
 * Reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and TEMPORAL_TLS_CERT/KEY/CA (file paths). A certificate without its
 * key (or the reverse) is a BAD_USAGE error: half a client certificate would fail later with a far less helpful TLS
 * message. `fromEnv` says whether TEMPORAL_ADDRESS was set (then `cutpoint up` starts no server of its own).
 */
export function temporalTargetFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalTarget & { fromEnv: boolean } {
  const address = env.TEMPORAL_ADDRESS?.trim() || DEFAULT_TEMPORAL_ADDRESS;
  const namespace = env.TEMPORAL_NAMESPACE?.trim() || 'default';
  const cert = readPem('TEMPORAL_TLS_CERT', env);
  const key = readPem('TEMPORAL_TLS_KEY', env);
  const ca = readPem('TEMPORAL_TLS_CA', env);
  if (Boolean(cert) !== Boolean(key)) {
    throw new CutpointError('BAD_USAGE', 'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (client certificate and its key)');
  }
  let tls: TLSConfig | undefined;
  if (cert || ca) {
    tls = {};
    if (cert && key) tls.clientCertPair = { crt: cert, key };
    if (ca) tls.serverRootCACertificate = ca;
  }
  return { address, namespace, tls, fromEnv: Boolean(env.TEMPORAL_ADDRESS?.trim()) };
}

/** Connection options for @temporalio/client and @temporalio/worker from a target. */
export function connectionOptions(target: TemporalTarget): { address: string; tls?: TLSConfig } {
  return { address: target.address, tls: target.tls };
}

/** The error every failed connection raises: which address failed, and how to change it. */
export function unreachable(target: TemporalTarget, e: unknown): CutpointError {
  return new CutpointError(
    'TEMPORAL_UNAVAILABLE',
    `cannot reach Temporal at ${target.address} (namespace ${target.namespace}): ${redactString(String((e as Error)?.message ?? e))}. ` +
      'Set TEMPORAL_ADDRESS (and TEMPORAL_TLS_* for TLS), or run `cutpoint up` for an embedded dev server.',
  );
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

/**
 * Whether workflow `id` still runs: `true` RUNNING, `false` not found or ended, `undefined` when Temporal could not
 * say (the catalogue's check of a `running` manifest).
 */
export async function workflowRunning(client: Client, id: string): Promise<boolean | undefined> {
  try {
    const d = await client.workflow.getHandle(id).describe();
    return d.status.name === 'RUNNING';
  } catch (e) {
    if (e instanceof WorkflowNotFoundError) return false;
    return undefined;
  }
}
