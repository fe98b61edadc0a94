/**
 * The benchmarks at tiny sizes (bench/RESULTS.md has the real runs): each one runs as a user runs it, `npm run bench
 * -- <name>`, on this run's Temporal server, and writes a result whose figures are consistent with each other.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { renderResults } from '../scripts/bench/render.ts';
import { tempDir } from './helpers/temp.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const out = tempDir('cutpoint-bench-smoke-');

/** A result file as the tests read it: JSON whose shape each test asserts. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed JSON, checked field by field below
type Json = any;

/** Runs one benchmark on the suite's server; returns its result file and stdout. */
function bench(name: string, ...args: string[]): { result: Json; stdout: string } {
  const file = join(out, `${name}.json`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/bench/main.ts', name, '--temporal', inject('temporalAddress'), '--namespace', inject('temporalNamespace'), '--runs', '1', '--cache', 'warm', '--out', file, ...args],
    { cwd: ROOT, encoding: 'utf8', timeout: 240_000 },
  );
  expect(r.status, `bench ${name} failed:\n${r.stderr}`).toBe(0);
  return { result: JSON.parse(readFileSync(file, 'utf8')) as Json, stdout: r.stdout };
}

const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);

describe('npm run bench at tiny sizes', () => {
  it('copy: a backup and cp -r of the same dbpath, their ratio, and a throttle held', () => {
    const { result: r, stdout } = bench('copy', '--size', '24MiB', '--profile');
    expect(stdout).toMatch(/cp -r MiB\/s/);
    expect(r.defaultSizes).toBe(false);
    expect(r.command).toContain('copy --temporal');
    expect(r.machine.cores).toBeGreaterThan(0);
    expect(r.sizes.backupBytes).toBeGreaterThan(24 * 2 ** 20 * 0.9);
    const [run] = r.runs;
    // The phases split the end-to-end time: they add up to it, less the client's own round trips.
    expect(sum(run.phases)).toBeLessThanOrEqual(run.backupSeconds + 0.05);
    expect(sum(run.phases)).toBeGreaterThan(run.backupSeconds * 0.5);
    expect(r.median.ratio).toBeCloseTo(r.median.backupMiBps / r.median.cpMiBps, 6);
    // The plain backup (a repository with compression none) stores more than the zstd one (the simulator's files hold
    // runs of zeros). The target is the plain path's.
    expect(r.median.plainRatio).toBeCloseTo(r.median.plainMiBps / r.median.cpMiBps, 6);
    expect(run.storedBytes).toBeGreaterThan(0);
    expect(run.storedBytes).toBeLessThan(run.plain.storedBytes);
    expect(r.target.met).toBe(r.median.plainRatio >= 0.95);
    // The throttled backup stays under its limit (a bucket of 50 ms allows no more than a small burst).
    expect(r.throttle.limitMiBps).toBeGreaterThanOrEqual(1);
    expect(r.throttle.copyPhaseMiBps).toBeGreaterThan(0);
    expect(r.throttle.copyPhaseMiBps).toBeLessThan(r.throttle.limitMiBps * 1.2);
    expect(r.peakRssBytes.agent).toBeGreaterThan(20 * 2 ** 20);
    // --profile: the unthrottled backups' agent was profiled and its busiest functions kept.
    expect(r.agentProfile.seconds).toBeGreaterThan(r.agentProfile.idleSeconds);
    expect(r.agentProfile.top.length).toBeGreaterThan(0);
    expect(r.agentProfile.top[0].seconds).toBeGreaterThan(0);
  }, 300_000);

  it('orchestration: phases and history events per shard count', () => {
    const { result: r } = bench('orchestration', '--shards', '1,2');
    expect(r.cases.map((c: Json) => c.shards)).toEqual([1, 2]);
    for (const c of r.cases) {
      expect(Object.keys(c.phases)).toEqual(['open', 'extend', 'copy', 'close', 'commit']);
      expect(c.events).toBeGreaterThan(c.largestHistory);
    }
    // One more replica set, one more child workflow: more events in all.
    expect(r.cases[1].events).toBeGreaterThan(r.cases[0].events);
  }, 300_000);

  it('files: events and worker memory for each file count', () => {
    const { result: r } = bench('files', '--files', '100,400');
    expect(r.cases.map((c: Json) => c.backupFiles >= c.files)).toEqual([true, true]);
    expect(r.cases[0].orchestratorPeakRssBytes).toBeGreaterThan(20 * 2 ** 20);
    expect(Number.isFinite(r.eventsGrowthExponent)).toBe(true);
  }, 300_000);

  it('restore: a checked restore against cp -r of the backup', () => {
    const { result: r } = bench('restore', '--size', '16MiB', '--profile');
    const [run] = r.runs;
    expect(run.documents).toBe(r.sizes.loaded.largest.documents);
    expect(run.phases.place).toBeGreaterThan(0);
    expect(r.median.ratio).toBeCloseTo(r.median.cpSeconds / r.median.restoreSeconds, 6);
    // The baseline copies as many bytes as the restore writes (the source's dbpath, not the backup's manifests).
    expect(r.sizes.sourceBytes).toBeGreaterThan(r.sizes.backupBytes * 0.8);
    expect(r.median.placeMiBps).toBeCloseTo(r.sizes.backupBytes / 2 ** 20 / r.median.placeSeconds, 6);
    expect(r.peakRssBytes.agent).toBeGreaterThan(20 * 2 ** 20);
    // --profile: the restores' agent was profiled and its busiest functions kept.
    expect(r.agentProfile.seconds).toBeGreaterThan(r.agentProfile.idleSeconds);
    expect(r.agentProfile.top.length).toBeGreaterThan(0);
    expect(r.agentProfile.top[0].seconds).toBeGreaterThan(0);
  }, 300_000);

  it('memory: peak RSS of fresh workers after a backup and a restore, for each size', () => {
    const { result: r } = bench('memory', '--sizes', '16MiB,8MiB');
    expect(r.cases.map((c: Json) => c.requestedBytes)).toEqual([8 * 2 ** 20, 16 * 2 ** 20]);
    for (const c of r.cases) {
      expect(c.backupFiles).toBeGreaterThan(0);
      expect(c.peak.agent).toBeGreaterThanOrEqual(c.afterBackup.agent);
      expect(c.peak.orchestrator).toBeGreaterThan(20 * 2 ** 20);
    }
    expect(r.growth.agent).toBeCloseTo((r.cases[1].peak.agent - r.cases[0].peak.agent) / r.cases[0].peak.agent, 6);
  }, 300_000);

  it('incremental: a base and an incremental after 1 % of the data changed, against cp -r and an empty replica set; restic only when asked', () => {
    const { result: r } = bench('incremental', '--size', '16MiB');
    // No --peers: restic is neither built nor run here.
    expect(r.peers).toEqual([]);
    expect(r.restic).toBeNull();
    const [run] = r.runs;
    expect(run.order).toEqual(['cp', 'cutpoint', 'cutpoint-encrypted']);
    expect(run.full.restic).toBeNull();
    // The encrypted repository holds the same chunks, sealed: a little more than the plain one, and not much.
    expect(run.full.cutpointEncrypted.storedBytes).toBeGreaterThan(run.full.cutpoint.storedBytes);
    expect(run.full.cutpointEncrypted.storedBytes).toBeLessThan(run.full.cutpoint.storedBytes * 1.05);
    expect(run.second.restic).toBeNull();
    expect(run.full.cutpoint.storedBytes).toBeGreaterThan(r.sizes.loaded.bytes);
    // About 1 % of the documents' bytes rewritten, and the dbpath changed by at least that much.
    expect(run.change.bytes).toBeGreaterThanOrEqual(r.sizes.loaded.bytes * r.changeShare);
    expect(run.change.bytes).toBeLessThan(r.sizes.loaded.bytes * r.changeShare * 2);
    expect(run.change.dbpathChangedBytes).toBeGreaterThanOrEqual(run.change.bytes);
    expect(run.second.cutpoint.addedBytes).toBeGreaterThan(0);
    // A chain: the first backup a base, the second an incremental of it that read and stored only part of the dbpath.
    expect(run.full.cutpoint).toMatchObject({ kind: 'base', parent: null });
    expect(run.second.cutpoint).toMatchObject({ kind: 'incremental', parent: run.full.cutpoint.id, chainBreak: null });
    expect(run.second.cutpoint.listedBytes).toBeGreaterThan(0);
    expect(run.second.cutpoint.listedBytes).toBeLessThan(r.sizes.dbpathBytes / 2);
    expect(run.second.cutpoint.bytesRead).toBeLessThan(run.full.cutpoint.bytesRead / 2);
    expect(run.full.cutpointEncrypted.kind).toBe('full');
    // The base's copy phase is a part of its run; the empty replica set's pair is a chain as well.
    expect(run.full.cutpoint.copySeconds).toBeGreaterThan(0);
    expect(run.full.cutpoint.copySeconds).toBeLessThan(run.full.cutpoint.seconds);
    expect(run.empty.base.kind).toBe('base');
    expect(run.empty.incremental).toMatchObject({ kind: 'incremental', parent: run.empty.base.id });
    // The target's ratios are of this run's figures.
    expect(run.target.changedBytes).toBe(run.second.cutpoint.listedBytes);
    expect(run.target.readToChanged).toBeCloseTo(run.second.cutpoint.bytesRead / run.second.cutpoint.listedBytes, 6);
    expect(run.target.storedToChanged).toBeCloseTo(run.second.cutpoint.bytesStored / run.second.cutpoint.listedBytes, 6);
    expect(run.target.allowedSeconds).toBeCloseTo(0.1 * run.full.cutpoint.copySeconds + run.empty.incremental.seconds, 6);
    expect(run.target.secondsToAllowed).toBeCloseTo(run.second.cutpoint.seconds / run.target.allowedSeconds, 6);
    const m = r.median;
    expect(m.target.secondsToAllowed).toBeCloseTo(run.target.secondsToAllowed, 6);
    // bench/RESULTS.md's verdict: met only when every median is within its bound.
    const met = m.target.readToChanged <= 1.2 && m.target.storedToChanged <= 1.2 && m.target.secondsToAllowed <= 1;
    expect(renderResults(out)).toContain(`**Target ${met ? 'met' : 'not met'}** (medians): read ÷ listed`);
    expect(m.ratios.fullThroughputCutpointToCp).toBeCloseTo(m.full.cutpointMiBps / m.full.cpMiBps, 6);
    expect(m.ratios.secondAddedCutpointToFull).toBeCloseTo(m.second.cutpointAddedBytes / m.full.cutpointStoredBytes, 6);
    expect(m.ratios.fullThroughputCutpointToRestic).toBeNull();
    expect(m.ratios.fullThroughputEncryptedToPlain).toBeCloseTo(m.full.cutpointEncryptedMiBps / m.full.cutpointMiBps, 6);
    expect(m.ratios.fullThroughputEncryptedToRestic).toBeNull();
    expect(m.ratios.secondAddedCutpointToRestic).toBeNull();
  }, 300_000);

  it('s3: a backup and a restore to a local S3 server against the same to a local directory', () => {
    const { result: r, stdout } = bench('s3', '--size', '16MiB');
    expect(stdout).toMatch(/s3 backup MiB\/s/);
    const [run] = r.runs;
    expect(run.first).toBe('dir');
    expect(run['s3 backup s']).toBeGreaterThan(0);
    expect(run['s3 restore s']).toBeGreaterThan(0);
    expect(run['backup ratio']).toBeCloseTo(run['dir backup s'] / run['s3 backup s'], 6);
    expect(r.median.restoreRatio).toBeCloseTo(run['restore ratio'], 6);
    expect(r.target.ratio).toBe(0.8);
  }, 300_000);

  it('pitr: RPO of continuous oplog capture under the bank workload, every sample resolved', () => {
    const { result: r, stdout } = bench('pitr', '--seconds', '4');
    expect(stdout).toMatch(/pitr: RPO under the bank workload/);
    expect(r.samples).toBeGreaterThan(5);
    expect(r.unresolved).toBe(0);
    expect(r.rpoMedianMs).toBeGreaterThan(0);
    expect(r.rpoMaxMs).toBeGreaterThanOrEqual(r.rpoP95Ms);
    expect(r.rpoTargetMs).toBe(3000);
    expect(r.withinTarget).toBe(r.rpoMaxMs <= 3000);
    expect(r.gaps).toBe(0);
    expect(r.transfers).toBeGreaterThan(0);
  }, 300_000);
});
