/**
 * The target of a point-in-time restore (`restore --at`, `RestoreInput.at`), parsed once for the CLI, the client API
 * and the workflow (which checks its input again, so a restore started from the Temporal UI is refused the same way):
 *
 * - `t:i`: exactly the cluster time `Timestamp(t, i)`;
 * - an ISO-8601 time with a zone (`2026-12-07T16:40:35Z`, `…+01:00`): everything at or before the end of that second,
 *   i.e. `Timestamp(<that second>, 4294967295)`. A fraction of a second is refused: cluster times have none.
 *
 * Workflow-safe (pure).
 */
import { CutpointError } from './errors.ts';
import type { Ts } from './timestamp.ts';

/** The largest increment of a cluster time (an unsigned 32-bit integer). */
export const MAX_INCREMENT = 0xffff_ffff;
/** The largest seconds of a cluster time (an unsigned 32-bit integer). */
const MAX_SECONDS = 0xffff_ffff;

const EXACT = /^(\d{1,10}):(\d{1,10})$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/;

const usage = (value: string, why: string) =>
  new CutpointError('BAD_USAGE', `--at ${JSON.stringify(value)}: ${why}; give an ISO-8601 time with a zone (2026-12-07T16:40:35Z: everything at or before the end of that second) or an exact cluster time t:i (1796661635:12)`);

/** Parses a restore target; BAD_USAGE naming the problem. */
export function parseRestoreAt(value: string): Ts {
  const v = value.trim();
  const exact = EXACT.exec(v);
  if (exact) {
    const t = Number(exact[1]);
    const i = Number(exact[2]);
    if (t < 1 || t > MAX_SECONDS) throw usage(value, `seconds ${t} is outside 1..${MAX_SECONDS}`);
    if (i > MAX_INCREMENT) throw usage(value, `increment ${i} is outside 0..${MAX_INCREMENT}`);
    return { t, i };
  }
  if (!ISO.test(v)) throw usage(value, 'not a time this restore understands');
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) throw usage(value, 'not a valid date');
  const t = ms / 1000;
  if (t < 1 || t > MAX_SECONDS) throw usage(value, 'outside the range of cluster times');
  return { t, i: MAX_INCREMENT };
}

/** The restore's source: a backup id, or a point in time (exactly one); BAD_USAGE otherwise. */
export function restoreSource(input: { backupId?: string; at?: string }): { backupId: string } | { at: Ts } {
  const hasId = input.backupId !== undefined && input.backupId !== '';
  const hasAt = input.at !== undefined && input.at !== '';
  if (hasId && hasAt) throw new CutpointError('BAD_USAGE', `give a backup id or --at, not both (backup ${input.backupId}, --at ${input.at}): a point-in-time restore chooses its base backup`);
  if (hasAt) return { at: parseRestoreAt(input.at!) };
  if (!hasId) throw new CutpointError('BAD_USAGE', 'give the backup id to restore, or --at <time> for a point-in-time restore');
  return { backupId: input.backupId! };
}

/** The base and target of a point-in-time restore, as its preflight chose them (repository/pitr-base.ts). */
export interface PitrBase {
  cluster: string;
  backupId: string;
  /** The base backup's common timestamp: the replay starts after it. */
  base: Ts;
  at: Ts;
}
