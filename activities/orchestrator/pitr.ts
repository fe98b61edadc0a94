/**
 * Control-plane activities of continuous oplog capture (workflows/pitr/pitr-capture.ts): which member captures a
 * replica set's oplog (a healthy secondary by preference, as for a backup, avoiding the members whose capture just
 * failed).
 */
import { log } from '@temporalio/activity';
import type { Document } from 'mongodb';
import { CutpointError } from '../../common/errors.ts';
import { selectNode } from '../../common/node-selection.ts';
import type { MongoTarget } from '../../common/target.ts';
import { withClient } from '../../lib/mongo/client.ts';
import { memberViews } from './topology.ts';

export interface CaptureNodeInput {
  target: MongoTarget;
  replicaSet: string;
  maxLagSecs: number;
  /** Members to pass over while another one qualifies (their capture failed last). */
  avoid: string[];
}

export function pitrActivities() {
  return {
    /** The member to capture on: the backup rules (common/node-selection.ts) over the members not avoided, else all. */
    async selectCaptureNode(input: CaptureNodeInput): Promise<{ node: string; reason: string }> {
      return withClient(input.target, {}, async (client) => {
        const admin = client.db('admin');
        const [status, { config }] = await Promise.all([admin.command({ replSetGetStatus: 1 }), admin.command({ replSetGetConfig: 1 })]);
        const members = memberViews(status, config as Document);
        const opts = { maxLagSecs: input.maxLagSecs };
        const preferred = selectNode(
          members.filter((m) => !input.avoid.includes(m.host)),
          opts,
        );
        const choice = preferred.node ? preferred : selectNode(members, opts);
        if (!choice.node) throw new CutpointError('NO_ELIGIBLE_NODE', `replica set ${input.replicaSet}: no member can capture the oplog: ${choice.reason}`);
        log.info('capture node chosen', { replicaSet: input.replicaSet, node: choice.node, reason: choice.reason, avoided: input.avoid });
        return { node: choice.node, reason: choice.reason };
      });
    },

  };
}

export type PitrActivities = ReturnType<typeof pitrActivities>;
