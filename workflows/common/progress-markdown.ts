/**
 * The markdown the Temporal UI shows as a running workflow's "Current Details" (setCurrentDetails), the same layout for
 * backups, restores and verifies: a headline, bytes done of the total, the cluster timestamp, a row per replica set.
 */
import type { Ts } from '../../common/timestamp.ts';
import { formatTs } from '../../common/timestamp.ts';
import { markdownTable } from '../../common/markdown.ts';

const mib = (n: number) => (n / (1024 * 1024)).toFixed(1);

/** What every progress snapshot has (BackupProgress, RestoreProgress). */
export interface ProgressLike {
  status: string;
  phase: string;
  bytesDone: number;
  bytesTotal: number;
  bytesPerSec?: number;
  commonTimestamp?: Ts;
  replicaSets: Array<{ name: string; node: string | null; phase: string; filesDone: number; filesTotal: number; bytesDone: number; bytesTotal: number }>;
}

export interface MarkdownWording {
  /** `**cutpoint backup** \`id\` of **cluster**`: what the workflow is, before its status. */
  title: string;
  /** The verb of the bytes line: Copied, Processed, Checked. */
  done: string;
  /** Shows the copy rate (backups). */
  throttle?: boolean;
  /** How the timestamp is named: Common timestamp, Target timestamp. */
  timestamp: string;
  /** The header of the column of members: node, targets. */
  members: string;
}

export function progressMarkdown(p: ProgressLike, w: MarkdownWording): string {
  const pct = p.bytesTotal ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
  const throttle = w.throttle ? ` Throttle: ${p.bytesPerSec ? `${mib(p.bytesPerSec)} MiB/s` : 'unlimited'}.` : '';
  return [
    `${w.title}: ${p.status}, phase **${p.phase}**`,
    '',
    `${w.done} ${mib(p.bytesDone)} of ${mib(p.bytesTotal)} MiB (${pct}%).${throttle}`,
    ...(p.commonTimestamp ? ['', `${w.timestamp}: ${formatTs(p.commonTimestamp)}`] : []),
    '',
    markdownTable(
      ['replica set', w.members, 'phase', 'files', 'MiB'],
      p.replicaSets.map((r) => [r.name, r.node ?? '—', r.phase, `${r.filesDone}/${r.filesTotal}`, `${mib(r.bytesDone)}/${mib(r.bytesTotal)}`]),
    ),
  ].join('\n');
}
