/**
 * `bench incremental`: what a first and a second backup of the same dbpath cost and store, against `cp -r` and, with
 * `--peers restic`, restic run side by side in the same invocation. Each run: `cp -r`, a cutpoint base (an incremental
 * backup's first: it reads every file) into a fresh repository, a full cutpoint backup into a fresh encrypted
 * repository (docs/repository-format.md section 16: restic always encrypts, so this is the like-for-like figure) and
 * `restic backup` into a fresh restic repository (in an order that rotates between runs, the page cache prepared the
 * same way before each); then about 1 % of the data rewritten (scripts/bench/dataset.ts, rewriteShare) and a second
 * backup of each into the same repository: cutpoint's an incremental of the base (docs/incremental.md).
 *
 * The incremental's target, measured in the same run: it reads and stores at most 1.2 times the bytes the backup cursor
 * listed as changed (its replica-set manifest's `incremental.listedBytes`), and takes at most 0.1 times the base's copy
 * phase (its replica-set child's copyBatch activities, first scheduled to last completed) plus the fixed cost of a
 * backup: the same pair, base then incremental, of a freshly started replica set with no data loaded.
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
import { membersOf, startAgent, startBenchTemporal, startOrchestrator, startQuietCluster, targetUri, type WorkerProcess } from './stack.ts';
import type { BackupKind } from '../../common/incremental.ts';

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
  /** What the tool itself counted: the bytes cutpoint backed up (logical), the bytes restic read. */
  toolBytes: number;
}
/** What cutpoint's own summary and manifest say of one backup of a replica set. */
interface CutpointCounts {
  id: string;
  kind: BackupKind;
  parent: string | null;
  /** The backup's phases (scripts/bench/history.ts BACKUP_PHASES), seconds. */
  phases: Record<string, number>;
  /** Seconds of the replica set's copy: its first copyBatch scheduled to its last completed. */
  copySeconds: number | null;
  /** Bytes read from the dbpath (the summary's `bytesRead`). */
  bytesRead: number;
  /** New bytes the backup added to the repository, after deduplication and compression (the summary's). */
  bytesStored: number;
  /** Bytes of the ranges the backup cursor listed as changed (manifest `incremental.listedBytes`; a base: all). */
  listedBytes: number | null;
  chainBreak: string | null;
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

/** The incremental's target (the issue's), computed from one run's figures; reported, never asserted. */
interface Target {
  /** "Changed bytes": what the backup cursor listed for the incremental. */
  changedBytes: number | null;
  readToChanged: number | null;
  storedToChanged: number | null;
  /** 0.1 × the base's copy seconds + the empty replica set's incremental seconds. */
  allowedSeconds: number | null;
  secondsToAllowed: number | null;
}

interface Run {
  run: number;
  order: string[];
  cp: { seconds: number; cpuSeconds: number | null };
  full: { cutpoint: Full & CutpointCounts; cutpointEncrypted: Full & CutpointCounts; restic: (Full & ResticCounts) | null };
  change: Rewritten & { dbpathBytes: number; dbpathChangedBytes: number };
  second: { cutpoint: Second & CutpointCounts; restic: (Second & ResticCounts) | null };
  /** The fixed cost: a base then an incremental of a replica set started fresh, with no data loaded. */
  empty: { base: Measured & CutpointCounts; incremental: Measured & CutpointCounts };
  target: Target;
}

/** The bounds of the issue's target, shown beside the ratios. */
export const TARGET = { readToChanged: 1.2, storedToChanged: 1.2, secondsToAllowed: 1, copyShare: 0.1 } as const;
/** blockSizeMB of the chains (WiredTiger's granularity is 1 MB; the smallest, as the simulator's blocks are 64 KiB). */
export const BLOCK_SIZE_MB = 1;

/** `order` rotated left by `i`: which tool goes first changes from run to run. */
const rotate = <T>(order: T[], i: number): T[] => order.map((_, k) => order[(k + i) % order.length]!);

/** `a / b`, or null when either is missing. */
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a == null || b == null || !b ? null : a / b);

export async function benchIncremental(o: IncrementalBenchOptions): Promise<Record<string, unknown>> {
  // restic first: when it has to be built (minutes, once) or cannot be, that is known before any data is loaded.
  const restic = o.peers.includes('restic') ? await locateRestic(o.log) : undefined;
  const clusterOptions = { replsetOnly: true, blockSize: BLOCK_SIZE, logFileSize: journalFileSize(o.size) };
  const cluster = await startQuietCluster(o.log, { ...clusterOptions, dir: join(o.dir, 'sim') });
  // The fixed cost's replica set: started the same way, nothing loaded into it.
  const empty = await startQuietCluster(o.log, { ...clusterOptions, dir: join(o.dir, 'sim-empty') });
  const temporal = await startBenchTemporal(o.log, o.temporal);
  const workers = [];
  try {
    const primary = cluster.shards[0]!.primary()!;
    const t0 = Date.now();
    const loaded = loadMix(primary, o.size, undefined, loadingProgress);
    process.stderr.write(`\rloaded ${loaded.documents} documents in ${loaded.collections} collections in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    const [member] = membersOf(cluster);
    const [emptyMember] = membersOf(empty);
    const dbpath = member!.dbpath;
    const dbpathBytes = bytesUnder(dbpath);
    const dbpathFiles = filesUnder(dbpath).length;
    const emptyDbpathBytes = bytesUnder(emptyMember!.dbpath);
    // The workers hold a repository password (their own environment), as for an encrypted repository in production;
    // the plain repository is created in the clear beforehand, so only the encrypted one uses it.
    const password = { CUTPOINT_REPO_PASSWORD: randomBytes(18).toString('base64') };
    const agent = await startAgent(temporal, [member!], password);
    const emptyAgent = await startAgent(temporal, [emptyMember!], password);
    workers.push(await startOrchestrator(temporal, password), agent, emptyAgent);
    const uri = targetUri(cluster);
    const emptyUri = targetUri(empty);
    const version = restic ? resticVersion(restic.path) : null;

    /** A cutpoint backup of `target` into `repo`, costed from its summary, its histories and its manifest. */
    const cutpointBackup = async (target: string, by: WorkerProcess, repo: string, incremental: boolean): Promise<Measured & CutpointCounts> => {
      const cpu0 = by.cpuSeconds();
      const r = await runBackup(temporal.client, { uri: target, repo, ...(incremental ? { incremental: true, blockSizeMB: BLOCK_SIZE_MB } : {}) });
      const cpu1 = by.cpuSeconds();
      const [rs] = r.summary.replicaSets;
      const manifest = await fsRepository(repo, { password: () => password.CUTPOINT_REPO_PASSWORD }).readReplicaSetManifest(r.id, rs!.name);
      return {
        seconds: r.seconds,
        cpuSeconds: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0,
        toolBytes: r.bytes,
        id: r.id,
        kind: r.summary.kind,
        parent: r.summary.parent,
        phases: r.phases,
        copySeconds: r.copySeconds[rs!.name] ?? null,
        bytesRead: r.summary.bytesRead,
        bytesStored: r.summary.bytesStored,
        listedBytes: manifest?.incremental?.listedBytes ?? null,
        chainBreak: rs!.chainBreak ?? null,
      };
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
      const emptyRepo = join(o.dir, `repo-empty-${i}`);
      for (const r of [repo, emptyRepo]) await fsRepository(r, { password: () => undefined }).init(new Date(), { encrypt: false });
      await fsRepository(encRepo, { password: () => password.CUTPOINT_REPO_PASSWORD }).init(new Date(), { encrypt: true });
      const resticRepo = restic ? new ResticRepo(restic.path, join(o.dir, `restic-${i}`)) : undefined;
      resticRepo?.init();
      let cp: Run['cp'] | undefined;
      let fullCutpoint: Run['full']['cutpoint'] | undefined;
      let fullEncrypted: Run['full']['cutpointEncrypted'] | undefined;
      let fullRestic: Run['full']['restic'] = null;
      for (const tool of order) {
        prepareCache(o.cache, [dbpath]);
        if (tool === 'cp') {
          cp = timeCpR(dbpath, cpDst);
          rmSync(cpDst, { recursive: true, force: true });
        } else if (tool === 'cutpoint') {
          // A base: the first backup of a chain, every file read (a fresh repository has no earlier backup).
          fullCutpoint = { ...(await cutpointBackup(uri, agent, repo, true)), storedBytes: bytesUnder(repo) };
        } else if (tool === 'cutpoint-encrypted') {
          fullEncrypted = { ...(await cutpointBackup(uri, agent, encRepo, false)), storedBytes: bytesUnder(encRepo) };
        } else {
          fullRestic = { ...(await resticBackup(resticRepo!)), storedBytes: bytesUnder(resticRepo!.repo) };
        }
      }
      prepareCache(o.cache, [emptyMember!.dbpath]);
      const emptyBase = await cutpointBackup(emptyUri, emptyAgent, emptyRepo, true);

      // The workload: about 1 % of the data rewritten, a different 1 % in each run.
      const before = blockDigests(dbpath);
      const rewritten = rewriteShare(primary, o.size, CHANGE_SHARE, i + 1);
      const change = { ...rewritten, dbpathBytes: bytesUnder(dbpath), dbpathChangedBytes: changedBytes(before, dbpath) };

      // The fixed cost, next to the measured incremental: the empty replica set's incremental of its base.
      prepareCache(o.cache, [emptyMember!.dbpath]);
      const emptyIncremental = await cutpointBackup(emptyUri, emptyAgent, emptyRepo, true);
      let secondCutpoint: Run['second']['cutpoint'] | undefined;
      let secondRestic: Run['second']['restic'] = null;
      for (const tool of order.filter((t) => t !== 'cp' && t !== 'cutpoint-encrypted')) {
        prepareCache(o.cache, [dbpath]);
        if (tool === 'cutpoint') {
          const r = await cutpointBackup(uri, agent, repo, true);
          secondCutpoint = { ...r, addedBytes: bytesUnder(repo) - fullCutpoint!.storedBytes };
        } else {
          const r = await resticBackup(resticRepo!);
          secondRestic = { ...r, addedBytes: bytesUnder(resticRepo!.repo) - fullRestic!.storedBytes };
        }
      }
      for (const r of [repo, encRepo, emptyRepo]) rmSync(r, { recursive: true, force: true });
      if (resticRepo) rmSync(join(o.dir, `restic-${i}`), { recursive: true, force: true });
      const allowed = fullCutpoint!.copySeconds === null ? null : TARGET.copyShare * fullCutpoint!.copySeconds + emptyIncremental.seconds;
      const target: Target = {
        changedBytes: secondCutpoint!.listedBytes,
        readToChanged: ratio(secondCutpoint!.bytesRead, secondCutpoint!.listedBytes),
        storedToChanged: ratio(secondCutpoint!.bytesStored, secondCutpoint!.listedBytes),
        allowedSeconds: allowed,
        secondsToAllowed: ratio(secondCutpoint!.seconds, allowed),
      };
      runs.push({
        run: i + 1,
        order,
        cp: cp!,
        full: { cutpoint: fullCutpoint!, cutpointEncrypted: fullEncrypted!, restic: fullRestic },
        change,
        second: { cutpoint: secondCutpoint!, restic: secondRestic },
        empty: { base: emptyBase, incremental: emptyIncremental },
        target,
      });
      process.stderr.write(
        `run ${i + 1}: cp -r ${cp!.seconds.toFixed(1)} s; full: cutpoint base ${fullCutpoint!.seconds.toFixed(1)} s (copy ${fullCutpoint!.copySeconds?.toFixed(1)} s), encrypted ${fullEncrypted!.seconds.toFixed(1)} s` +
          `${fullRestic ? `, restic ${fullRestic.seconds.toFixed(1)} s` : ''}; empty: base ${emptyBase.seconds.toFixed(1)} s, incremental ${emptyIncremental.seconds.toFixed(1)} s; ` +
          `second: cutpoint ${secondCutpoint!.kind} ${secondCutpoint!.seconds.toFixed(1)} s` +
          `${secondRestic ? `, restic ${secondRestic.seconds.toFixed(1)} s` : ''}\n`,
      );
    }

    const rows = runs.map((r) => ({
      run: r.run,
      order: r.order.join(' '),
      'cp -r s': r.cp.seconds,
      'base s': r.full.cutpoint.seconds,
      'base copy s': r.full.cutpoint.copySeconds ?? NaN,
      'encrypted s': r.full.cutpointEncrypted.seconds,
      'restic s': r.full.restic?.seconds ?? NaN,
      'empty incr s': r.empty.incremental.seconds,
      'listed MiB': (r.second.cutpoint.listedBytes ?? NaN) / MiB,
      'incr read MiB': r.second.cutpoint.bytesRead / MiB,
      'incr stored MiB': r.second.cutpoint.bytesStored / MiB,
      'incr s': r.second.cutpoint.seconds,
      '2nd restic s': r.second.restic?.seconds ?? NaN,
      '2nd restic added MiB': (r.second.restic?.addedBytes ?? NaN) / MiB,
    }));
    // Without a peer, its columns are left out of the printed tables.
    const shown = (row: Record<string, string | number>) => (restic ? row : Object.fromEntries(Object.entries(row).filter(([k]) => !k.includes('restic'))));
    printTable(`incremental: ${(dbpathBytes / MiB).toFixed(0)} MiB in ${dbpathFiles} files, cache ${o.cache}, peers ${o.peers.join(',') || 'none'}`, rows.map(shown));

    // Medians of each figure; the ratios are of the medians (as bench copy's), the target's of each run's.
    const med = (f: (r: Run) => number | null | undefined): number | null => {
      const xs = runs.map(f).filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
      return xs.length ? median(xs) : null;
    };
    const rate = (bytes: number, s: number | null | undefined) => (s ? bytes / s / MiB : null);
    const full = {
      cpMiBps: med((r) => rate(dbpathBytes, r.cp.seconds)),
      cutpointMiBps: med((r) => rate(dbpathBytes, r.full.cutpoint.seconds)),
      cutpointCopySeconds: med((r) => r.full.cutpoint.copySeconds),
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
      cutpointListedBytes: med((r) => r.second.cutpoint.listedBytes),
      cutpointReadBytes: med((r) => r.second.cutpoint.bytesRead),
      cutpointStoredBytes: med((r) => r.second.cutpoint.bytesStored),
      cutpointSeconds: med((r) => r.second.cutpoint.seconds),
      resticSeconds: med((r) => r.second.restic?.seconds),
      cutpointMiBps: med((r) => rate(r.change.dbpathBytes, r.second.cutpoint.seconds)),
      resticMiBps: med((r) => rate(r.change.dbpathBytes, r.second.restic?.seconds)),
      cutpointAddedBytes: med((r) => r.second.cutpoint.addedBytes),
      resticAddedBytes: med((r) => r.second.restic?.addedBytes),
      cutpointCpuSecondsPerGiB: med((r) => ratio(r.second.cutpoint.cpuSeconds, r.change.dbpathBytes / GiB)),
      resticCpuSecondsPerGiB: med((r) => ratio(r.second.restic?.cpuSeconds, r.change.dbpathBytes / GiB)),
    };
    const emptyMed = {
      dbpathBytes: emptyDbpathBytes,
      baseSeconds: med((r) => r.empty.base.seconds),
      incrementalSeconds: med((r) => r.empty.incremental.seconds),
    };
    const target = {
      bounds: TARGET,
      readToChanged: med((r) => r.target.readToChanged),
      storedToChanged: med((r) => r.target.storedToChanged),
      allowedSeconds: med((r) => r.target.allowedSeconds),
      secondsToAllowed: med((r) => r.target.secondsToAllowed),
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
      secondSecondsCutpointToRestic: ratio(second.cutpointSeconds, second.resticSeconds),
    };
    printTable('medians', [
      shown({
        'cp -r MiB/s': full.cpMiBps ?? NaN,
        'base MiB/s': full.cutpointMiBps ?? NaN,
        'encrypted MiB/s': full.cutpointEncryptedMiBps ?? NaN,
        'restic MiB/s': full.resticMiBps ?? NaN,
        'encrypted/restic': ratios.fullThroughputEncryptedToRestic ?? NaN,
        'stored cutpoint/restic': ratios.fullStoredCutpointToRestic ?? NaN,
        '2nd s cutpoint/restic': ratios.secondSecondsCutpointToRestic ?? NaN,
        '2nd added cutpoint/restic': ratios.secondAddedCutpointToRestic ?? NaN,
      }),
    ]);
    printTable(`incremental target: read, stored <= ${TARGET.readToChanged} x listed; seconds <= ${TARGET.copyShare} x base copy + empty incremental`, [
      {
        'read/listed': target.readToChanged ?? NaN,
        'stored/listed': target.storedToChanged ?? NaN,
        'allowed s': target.allowedSeconds ?? NaN,
        'incr s': second.cutpointSeconds ?? NaN,
        'incr s/allowed': target.secondsToAllowed ?? NaN,
      },
    ]);
    return {
      sizes: { requestedBytes: o.size, dbpathBytes, dbpathFiles, loaded },
      cache: o.cache,
      peers: o.peers,
      restic: restic ? { version, pinned: RESTIC_VERSION, source: restic.source } : null,
      changeShare: CHANGE_SHARE,
      blockSizeMB: BLOCK_SIZE_MB,
      runs,
      median: { full, second, empty: emptyMed, target, ratios },
    };
  } finally {
    for (const w of workers) await w.stop();
    await temporal.close();
    await empty.stop();
    await cluster.stop();
  }
}
