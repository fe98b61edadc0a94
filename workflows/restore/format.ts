/** The Temporal UI's "Current Details" markdown of a restore or verify workflow. Pure. */
import type { RestoreProgress } from '../../common/restore-types.ts';
import { formatTs } from '../../common/timestamp.ts';

const mib = (n: number) => (n / (1024 * 1024)).toFixed(1);

export function restoreMarkdown(id: string, backupId: string, p: RestoreProgress): string {
  const pct = p.bytesTotal ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
  return [
    `**cutpoint ${p.kind}** \`${id}\` of backup \`${backupId}\`: ${p.status}, phase **${p.phase}**`,
    '',
    `${p.kind === 'verify' ? 'Checked' : 'Processed'} ${mib(p.bytesDone)} of ${mib(p.bytesTotal)} MiB (${pct}%).`,
    ...(p.commonTimestamp ? ['', `Target timestamp: ${formatTs(p.commonTimestamp)}`] : []),
    '',
    '| replica set | targets | phase | files | MiB |',
    '|---|---|---|---|---|',
    ...p.replicaSets.map((r) => `| ${r.name} | ${r.node ?? '—'} | ${r.phase} | ${r.filesDone}/${r.filesTotal} | ${mib(r.bytesDone)}/${mib(r.bytesTotal)} |`),
  ].join('\n');
}
