/** Where cutpoint keeps per-user caches (built binaries) and state (the embedded server's SQLite file, logs). */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** `$CUTPOINT_CACHE_DIR`, else `$XDG_CACHE_HOME/cutpoint`, else `~/.cache/cutpoint`. Survives between runs. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CUTPOINT_CACHE_DIR) return env.CUTPOINT_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cutpoint');
}

/** `$CUTPOINT_STATE_DIR`, else `$XDG_STATE_HOME/cutpoint`, else `~/.local/state/cutpoint`. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CUTPOINT_STATE_DIR) return env.CUTPOINT_STATE_DIR;
  return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'cutpoint');
}
