/**
 * Resolves a {@link CredentialsRef} on the worker that needs it: environment variables or a JSON file. The
 * credentials never travel through Temporal.
 */
import { readFileSync } from 'node:fs';
import type { CredentialsRef } from '../../common/target.ts';
import { CutpointError } from '../../common/errors.ts';

export interface Credentials {
  username: string;
  password: string;
}

/** The default reference: CUTPOINT_MONGO_USERNAME / CUTPOINT_MONGO_PASSWORD when set on the worker. */
export const DEFAULT_CREDENTIALS: CredentialsRef = { kind: 'env' };

export function resolveCredentials(ref: CredentialsRef, env: NodeJS.ProcessEnv = process.env): Credentials | undefined {
  if (ref.kind === 'none') return undefined;
  if (ref.kind === 'env') {
    const prefix = ref.prefix ?? 'CUTPOINT_MONGO';
    const username = env[`${prefix}_USERNAME`];
    const password = env[`${prefix}_PASSWORD`];
    if (!username && !password) return undefined;
    if (!username || !password) {
      throw new CutpointError('BAD_USAGE', `set both ${prefix}_USERNAME and ${prefix}_PASSWORD on the cutpoint workers, or neither`);
    }
    return { username, password };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(ref.path, 'utf8'));
  } catch (e) {
    throw new CutpointError('BAD_USAGE', `credentials file ${ref.path}: ${(e as Error).message}`);
  }
  const c = parsed as Partial<Credentials>;
  if (typeof c?.username !== 'string' || typeof c.password !== 'string') {
    throw new CutpointError('BAD_USAGE', `credentials file ${ref.path} must hold {"username": "...", "password": "..."}`);
  }
  return { username: c.username, password: c.password };
}
