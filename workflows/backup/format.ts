/** Pure helpers of the backup workflows: the UI's current-details markdown and failure → {code, message}. */
import type { BackupProgress } from '../../common/backup-types.ts';
import { isErrorCode } from '../../common/errors.ts';
import { formatTs } from '../../common/timestamp.ts';

const MiB = 1024 * 1024;
const mib = (n: number) => (n / MiB).toFixed(1);

/** The markdown the Temporal UI shows as "Current Details" (setCurrentDetails). */
export function progressMarkdown(backupId: string, cluster: string, p: BackupProgress): string {
  const pct = p.bytesTotal ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
  const lines = [
    `**cutpoint backup** \`${backupId}\` of **${cluster || '…'}**: ${p.status}, phase **${p.phase}**`,
    '',
    `Copied ${mib(p.bytesDone)} of ${mib(p.bytesTotal)} MiB (${pct}%). Throttle: ${p.bytesPerSec ? `${mib(p.bytesPerSec)} MiB/s` : 'unlimited'}.`,
    ...(p.commonTimestamp ? ['', `Common timestamp: ${formatTs(p.commonTimestamp)}`] : []),
    '',
    '| replica set | node | phase | files | MiB |',
    '|---|---|---|---|---|',
    ...p.replicaSets.map((r) => `| ${r.name} | ${r.node ?? '—'} | ${r.phase} | ${r.filesDone}/${r.filesTotal} | ${mib(r.bytesDone)}/${mib(r.bytesTotal)} |`),
  ];
  return lines.join('\n');
}

interface FailureLike {
  message?: string;
  type?: string;
  cause?: unknown;
}

/**
 * The registry code and message of a failure, looking through the Child/Activity failure wrappers to the
 * ApplicationFailure that carries a registry type. Unknown failures are INTERNAL with their message.
 */
export function failureInfo(e: unknown): { code: string; message: string } {
  let cur = e as FailureLike | undefined;
  let deepest: FailureLike | undefined;
  for (let depth = 0; cur && depth < 10; depth++) {
    if (cur.type && isErrorCode(cur.type)) return { code: cur.type, message: cur.message ?? cur.type };
    deepest = cur;
    cur = cur.cause as FailureLike | undefined;
  }
  return { code: 'INTERNAL', message: deepest?.message ?? String(e) };
}
