/** Progress of a restore, verify or seed on stderr, shared by cmd-restore.ts, cmd-verify.ts and cmd-seed.ts. */
import type { Client } from '@temporalio/client';
import { watchRestore } from '../api/restores.ts';

const MiB = 1024 * 1024;

/** One progress line on stderr every few seconds, and at every phase change, until the workflow ends. */
export async function followRestore(client: Client, id: string): Promise<void> {
  let last = '';
  let lastAt = 0;
  for await (const p of watchRestore(client, id, 1000)) {
    const line = `${id}: ${p.status} ${p.phase} ${(p.bytesDone / MiB).toFixed(1)}/${(p.bytesTotal / MiB).toFixed(1)} MiB ${p.replicaSets.map((r) => `${r.name}:${r.phase}`).join(' ')}`;
    if (line !== last && (Date.now() - lastAt > 3000 || p.phase !== last.split(' ')[2] || p.status !== 'running')) {
      process.stderr.write(line + '\n');
      last = line;
      lastAt = Date.now();
    }
  }
}
