/** The Temporal UI's "Current Details" of a restore or verify workflow (workflows/common/progress-markdown.ts). */
import type { RestoreProgress } from '../../common/restore-types.ts';
import { progressMarkdown } from '../common/progress-markdown.ts';

export function restoreMarkdown(id: string, backupId: string, p: RestoreProgress): string {
  return progressMarkdown(p, {
    title: `**cutpoint ${p.kind}** \`${id}\` of backup \`${backupId}\``,
    done: p.kind === 'verify' ? 'Checked' : 'Processed',
    timestamp: 'Target timestamp',
    members: 'targets',
  });
}
