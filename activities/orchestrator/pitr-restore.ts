/**
 * The orchestrator's part of a point-in-time restore: the preflight (repository/pitr-base.ts) — the base backup and
 * the captured oplog's coverage of the replay on every replica set, read from the repository before any target is
 * touched.
 */
import { heartbeat } from '@temporalio/activity';
import type { Ts } from '../../common/timestamp.ts';
import type { PitrBase } from '../../common/restore-at.ts';
import { choosePitrBase } from '../../repository/pitr-base.ts';
import { fsRepository, type Repository } from '../../repository/repository.ts';

export function pitrRestoreActivities(ctx: { repository: (repo: string) => Repository } = { repository: (repo) => fsRepository(repo) }) {
  return {
    /** The base of a restore of the replica sets `replicaSets` to `at`; PITR_NOT_RESTORABLE naming the window. */
    async choosePitrBase(input: { repo: string; replicaSets: string[]; at: Ts }): Promise<PitrBase> {
      const repo = ctx.repository(input.repo);
      await repo.open();
      const timer = setInterval(() => heartbeat(), 5000);
      try {
        return await choosePitrBase(repo, input.replicaSets, input.at, { scan: true });
      } finally {
        clearInterval(timer);
      }
    },
  };
}

export type PitrRestoreActivities = ReturnType<typeof pitrRestoreActivities>;
