/**
 * `bench incremental`: what a first and a second backup of the same dbpath cost and store, against `cp -r` and, with
 * `--peers restic`, restic run side by side in the same invocation. Each run: `cp -r`, a full cutpoint backup into a
 * fresh repository, a full cutpoint backup into a fresh encrypted repository (docs/repository-format.md section 16:
 * restic always encrypts, so this is the like-for-like figure) and `restic backup` into a fresh restic repository (in an order that rotates between runs, the page
 * cache prepared the same way before each); then about 1 % of the data rewritten (scripts/bench/dataset.ts,
 * rewriteShare) and a second backup of each into the same repository. Wall time, throughput (the dbpath's bytes per
 * second, the same logical bytes for all three), bytes stored, and bytes the second backup added to its repository.
 * Ratios are reported, never asserted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Logger } from 'pino';
import { timeCpR } from './baseline.ts';
import { runBackup } from './backup-run.ts';
import { loadMix, rewriteShare, type Rewritten } from './dataset.ts';
import { bytesUnder, filesUnder, prepareCache, type CacheMode } from './page-cache.ts';
import { GiB, journalFileSize, loadingProgress, median, MiB, printTable } from './report.ts';
import { locateRestic, ResticRepo, RESTIC_VERSION, resticVersion, type ResticSummary } from './restic.ts';
import { fsRepository } from '../../repository/repository.ts';
import { membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri } from './stack.ts';

/** The other backup tools the benchmark can run beside cutpoint. */
export const PEERS = ['restic'] as const;
export type Peer = (typeof PEERS)[number];

/** Share of the data the workload rewrites between the two backups. */
export const CHANGE_SHARE = 0.01;
/** The simulator's block size in this benchmark (as in bench copy): also the unit in which dbpath changes are counted. */
const BLOCK_SIZE = 64 * 1024;

/** Options of the incremental benchmark. */
export interface IncrementalBenchOptions {
  size: number;
  runs: number;
  cache: CacheMode;
  peers: Peer[];
  dir: string;
  log: Logger;
  /** A running Temporal server to use instead of starting one. */
  temporal?: { address: string; namespace: string };
}

/** SHA-1 of every `blockSize` block of every file under `dir`, by path relative to it. */
export function blockDigests(dir: string, blockSize = BLOCK_SIZE): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const buf = Buffer.alloc(blockSize);
  for (const file of filesUnder(dir)) {
    const digests: string[] = [];
    const fd = openSync(file, 'r');
    try {
      for (let n; (n = readSync(fd, buf, 0, blockSize, null)) > 0; ) digests.push(createHash('sha1').update(buf.subarray(0, n)).digest('hex'));
    } finally {
      closeSync(fd);
    }
    out.set(relative(dir, file), digests);
  }
  return out;
}

/** Bytes of `dir` that differ from `before` (a {@link blockDigests} of it): changed blocks, and new files whole. */
export function changedBytes(before: Map<string, string[]>, dir: string, blockSize = BLOCK_SIZE): number {
  let changed = 0;
  for (const [file, digests] of blockDigests(dir, blockSize)) {
    const old = before.get(file) ?? [];
    const size = statSync(join(dir, file)).size;
    digests.forEach((d, i) => {
      if (d !== old[i]) changed += Math.min(blockSize, size - i * blockSize);
    });
  }
  return changed;
}

/** One tool's backup in one run. */
interface Measured {
  seconds: number;
  /** CPU seconds of the process that did the work (the agent; restic itself); null where unknown. */
  cpuSeconds: number | null;
  /** What the tool itself counted: the bytes cutpoint copied, the bytes restic read. */
  toolBytes: number;
}
interface Full extends Measured {
  storedBytes: number;
}
interface Second extends Measured {
  addedBytes: number;
}
/** restic's own account of a backup (its `--json` summary). */
interface ResticCounts {
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  dataAdded: number;
  dataAddedPacked: number | null;
}
const resticCounts = (s: ResticSummary): ResticCounts => ({
  filesNew: s.files_new,
  filesChanged: s.files_changed,
  filesUnmodified: s.files_unmodified,
  dataAdded: s.data_added,
  dataAddedPacked: s.data_added_packed ?? null,
});

interface Run {
  run: number;
  order: string[];
  cp: { seconds: number; cpuSeconds: number | null };
  full: { cutpoint: Full; cutpointEncrypted: Full; restic: (Full & ResticCounts) | null };
  change: Rewritten & { dbpathBytes: number; dbpathChangedBytes: number };
  second: { cutpoint: Second; restic: (Second & ResticCounts) | null };
}

/** `order` rotated left by `i`: which tool goes first changes from run to run. */
const rotate = <T>(order: T[], i: number): T[] => order.map((_, k) => order[(k + i) % order.length]!);

/** `a / b`, or null when either is missing. */
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a == null || b == null || !b ? null : a / b);

export async function benchIncremental(o: IncrementalBenchOptions): Promise<Record<string, unknown>> {
  // restic first: when it has to be built (minutes, once) or cannot be, that is known before any data is loaded.
  const restic = o.peers.includes('restic') ? await locateRestic(o.log) : undefined;
  const cluster = await startQuietCluster(o.log, { replsetOnly: true, dir: join(o.dir, 'sim'), blockSize: BLOCK_SIZE, logFileSize: journalFileSize(o.size) });
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const workers = [];
  try {
    const primary = cluster.shards[0]!.primary()!;
    const t0 = Date.now();
    const loaded = loadMix(primary, o.size, undefined, loadingProgress);
    process.stderr.write(`\rloaded ${loaded.documents} documents in ${loaded.collections} collections in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    const [member] = membersOf(cluster);
    const dbpath = member!.dbpath;
    const dbpathBytes = bytesUnder(dbpath);
    const dbpathFiles = filesUnder(dbpath).length;
    // The workers hold a repository password (their own environment), as for an encrypted repository in production;
    // the plain repository is created in the clear beforehand, so only the encrypted one uses it.
    const password = { CUTPOINT_REPO_PASSWORD: randomBytes(18).toString('base64') };
    const agent = await startAgent(temporal, [member!], password);
    workers.push(await startOrchestrator(temporal, password), agent);
    const uri = targetUri(cluster);
    const version = restic ? resticVersion(restic.path) : null;

    const cutpointBackup = async (repo: string) => {
      const cpu0 = agent.cpuSeconds();
      const r = await runBackup(temporal.client, { uri, repo });
      const cpu1 = agent.cpuSeconds();
      return { seconds: r.seconds, cpuSeconds: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0, toolBytes: r.bytes };
    };
    const resticBackup = async (repo: ResticRepo) => {
      const r = await repo.backup(dbpath);
      return { seconds: r.seconds, cpuSeconds: r.cpuSeconds, toolBytes: r.summary.total_bytes_processed, ...resticCounts(r.summary) };
    };

    const runs: Run[] = [];
    for (let i = 0; i < o.runs; i++) {
      const order = rotate(['cp', 'cutpoint', 'cutpoint-encrypted', ...(restic ? ['restic'] : [])], i);
      const cpDst = join(o.dir, `cp-${i}`);
      const repo = join(o.dir, `repo-${i}`);
      const encRepo = join(o.dir, `repo-encrypted-${i}`);
      await fsRepository(repo, { password: () => undefined }).init(new Date(), { encrypt: false });
      await fsRepository(encRepo, { password: () => password.CUTPOINT_REPO_PASSWORD }).init(new Date(), { encrypt: true });
      const resticRepo = restic ? new ResticRepo(restic.path, join(o.dir, `restic-${i}`)) : undefined;
      resticRepo?.init();
      let cp: Run['cp'] | undefined;
      let fullCutpoint: Full | undefined;
      let fullEncrypted: Full | undefined;
      let fullRestic: Run['full']['restic'] = null;
      for (const tool of order) {
        prepareCache(o.cache, [dbpath]);
        if (tool === 'cp') {
          cp = timeCpR(dbpath, cpDst);
          rmSync(cpDst, { recursive: true, force: true });
        } else if (tool === 'cutpoint') {
          fullCutpoint = { ...(await cutpointBackup(repo)), storedBytes: bytesUnder(repo) };
        } else if (tool === 'cutpoint-encrypted') {
          fullEncrypted = { ...(await cutpointBackup(encRepo)), storedBytes: bytesUnder(encRepo) };
        } else {
          fullRestic = { ...(await resticBackup(resticRepo!)), storedBytes: bytesUnder(resticRepo!.repo) };
        }
      }

      // The workload: about 1 % of the data rewritten, a different 1 % in each run.
      const before = blockDigests(dbpath);
      const rewritten = rewriteShare(primary, o.size, CHANGE_SHARE, i + 1);
      const change = { ...rewritten, dbpathBytes: bytesUnder(dbpath), dbpathChangedBytes: changedBytes(before, dbpath) };

      let secondCutpoint: Second | undefined;
      let secondRestic: Run['second']['restic'] = null;
      for (const tool of order.filter((t) => t !== 'cp' && t !== 'cutpoint-encrypted')) {
        prepareCache(o.cache, [dbpath]);
        if (tool === 'cutpoint') {
          const r = await cutpointBackup(repo);
          secondCutpoint = { ...r, addedBytes: bytesUnder(repo) - fullCutpoint!.storedBytes };
        } else {
          const r = await resticBackup(resticRepo!);
          secondRestic = { ...r, addedBytes: bytesUnder(resticRepo!.repo) - fullRestic!.storedBytes };
        }
      }
      rmSync(repo, { recursive: true, force: true });
      rmSync(encRepo, { recursive: true, force: true });
      if (resticRepo) rmSync(join(o.dir, `restic-${i}`), { recursive: true, force: true });
      runs.push({ run: i + 1, order, cp: cp!, full: { cutpoint: fullCutpoint!, cutpointEncrypted: fullEncrypted!, restic: fullRestic }, change, second: { cutpoint: secondCutpoint!, restic: secondRestic } });
      process.stderr.write(
        `run ${i + 1}: cp -r ${cp!.seconds.toFixed(1)} s; full: cutpoint ${fullCutpoint!.seconds.toFixed(1)} s, encrypted ${fullEncrypted!.seconds.toFixed(1)} s` +
          `${fullRestic ? `, restic ${fullRestic.seconds.toFixed(1)} s` : ''}; second: cutpoint ${secondCutpoint!.seconds.toFixed(1)} s` +
          `${secondRestic ? `, restic ${secondRestic.seconds.toFixed(1)} s` : ''}\n`,
      );
    }

    const rows = runs.map((r) => ({
      run: r.run,
      order: r.order.join(' '),
      'cp -r s': r.cp.seconds,
      'cutpoint s': r.full.cutpoint.seconds,
      'encrypted s': r.full.cutpointEncrypted.seconds,
      'restic s': r.full.restic?.seconds ?? NaN,
      'cutpoint stored MiB': r.full.cutpoint.storedBytes / MiB,
      'restic stored MiB': (r.full.restic?.storedBytes ?? NaN) / MiB,
      'changed MiB': r.change.dbpathChangedBytes / MiB,
      '2nd cutpoint s': r.second.cutpoint.seconds,
      '2nd restic s': r.second.restic?.seconds ?? NaN,
      '2nd cutpoint added MiB': r.second.cutpoint.addedBytes / MiB,
      '2nd restic added MiB': (r.second.restic?.addedBytes ?? NaN) / MiB,
    }));
    // Without a peer, its columns are left out of the printed tables.
    const shown = (row: Record<string, string | number>) => (restic ? row : Object.fromEntries(Object.entries(row).filter(([k]) => !k.includes('restic'))));
    printTable(`incremental: ${(dbpathBytes / MiB).toFixed(0)} MiB in ${dbpathFiles} files, cache ${o.cache}, peers ${o.peers.join(',') || 'none'}`, rows.map(shown));

    // Medians of each figure; the ratios are of the medians (as bench copy's).
    const med = (f: (r: Run) => number | null | undefined): number | null => {
      const xs = runs.map(f).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      return xs.length ? median(xs) : null;
    };
    const rate = (bytes: number, s: number | null | undefined) => (s ? bytes / s / MiB : null);
    const full = {
      cpMiBps: med((r) => rate(dbpathBytes, r.cp.seconds)),
      cutpointMiBps: med((r) => rate(dbpathBytes, r.full.cutpoint.seconds)),
      cutpointEncryptedMiBps: med((r) => rate(dbpathBytes, r.full.cutpointEncrypted.seconds)),
      resticMiBps: med((r) => rate(dbpathBytes, r.full.restic?.seconds)),
      cutpointStoredBytes: med((r) => r.full.cutpoint.storedBytes),
      cutpointEncryptedStoredBytes: med((r) => r.full.cutpointEncrypted.storedBytes),
      resticStoredBytes: med((r) => r.full.restic?.storedBytes),
      cutpointCpuSecondsPerGiB: med((r) => ratio(r.full.cutpoint.cpuSeconds, dbpathBytes / GiB)),
      cutpointEncryptedCpuSecondsPerGiB: med((r) => ratio(r.full.cutpointEncrypted.cpuSeconds, dbpathBytes / GiB)),
      resticCpuSecondsPerGiB: med((r) => ratio(r.full.restic?.cpuSeconds, dbpathBytes / GiB)),
    };
    const second = {
      dbpathChangedBytes: med((r) => r.change.dbpathChangedBytes),
      cutpointSeconds: med((r) => r.second.cutpoint.seconds),
      resticSeconds: med((r) => r.second.restic?.seconds),
      cutpointMiBps: med((r) => rate(r.change.dbpathBytes, r.second.cutpoint.seconds)),
      resticMiBps: med((r) => rate(r.change.dbpathBytes, r.second.restic?.seconds)),
      cutpointAddedBytes: med((r) => r.second.cutpoint.addedBytes),
      resticAddedBytes: med((r) => r.second.restic?.addedBytes),
      cutpointCpuSecondsPerGiB: med((r) => ratio(r.second.cutpoint.cpuSeconds, r.change.dbpathBytes / GiB)),
      resticCpuSecondsPerGiB: med((r) => ratio(r.second.restic?.cpuSeconds, r.change.dbpathBytes / GiB)),
    };
    const ratios = {
      fullThroughputCutpointToCp: ratio(full.cutpointMiBps, full.cpMiBps),
      fullThroughputCutpointToRestic: ratio(full.cutpointMiBps, full.resticMiBps),
      fullThroughputEncryptedToPlain: ratio(full.cutpointEncryptedMiBps, full.cutpointMiBps),
      fullThroughputEncryptedToRestic: ratio(full.cutpointEncryptedMiBps, full.resticMiBps),
      fullThroughputResticToCp: ratio(full.resticMiBps, full.cpMiBps),
      fullStoredCutpointToRestic: ratio(full.cutpointStoredBytes, full.resticStoredBytes),
      fullStoredCutpointToDbpath: ratio(full.cutpointStoredBytes, dbpathBytes),
      fullStoredResticToDbpath: ratio(full.resticStoredBytes, dbpathBytes),
      secondThroughputCutpointToRestic: ratio(second.cutpointMiBps, second.resticMiBps),
      secondAddedCutpointToRestic: ratio(second.cutpointAddedBytes, second.resticAddedBytes),
      secondAddedCutpointToFull: ratio(second.cutpointAddedBytes, full.cutpointStoredBytes),
      secondAddedResticToFull: ratio(second.resticAddedBytes, full.resticStoredBytes),
    };
    printTable('medians', [
      shown({
        'cp -r MiB/s': full.cpMiBps ?? NaN,
        'cutpoint MiB/s': full.cutpointMiBps ?? NaN,
        'encrypted MiB/s': full.cutpointEncryptedMiBps ?? NaN,
        'restic MiB/s': full.resticMiBps ?? NaN,
        'encrypted/restic': ratios.fullThroughputEncryptedToRestic ?? NaN,
        'cutpoint/cp': ratios.fullThroughputCutpointToCp ?? NaN,
        'cutpoint/restic': ratios.fullThroughputCutpointToRestic ?? NaN,
        'stored cutpoint/restic': ratios.fullStoredCutpointToRestic ?? NaN,
        '2nd cutpoint/restic': ratios.secondThroughputCutpointToRestic ?? NaN,
        '2nd added cutpoint/restic': ratios.secondAddedCutpointToRestic ?? NaN,
      }),
    ]);
    return {
      sizes: { requestedBytes: o.size, dbpathBytes, dbpathFiles, loaded },
      cache: o.cache,
      peers: o.peers,
      restic: restic ? { version, pinned: RESTIC_VERSION, source: restic.source } : null,
      changeShare: CHANGE_SHARE,
      runs,
      median: { full, second, ratios },
    };
  } finally {
    for (const w of workers) await w.stop();
    await temporal.close();
    await cluster.stop();
  }
}
