/**
 * `cutpoint backup / status / cancel / throttle` as a user runs them: the JSON summary of docs/interfaces.md section 3,
 * exit codes, and errors that name the problem.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '../sim/testkit.ts';
import { CUTPOINT_BIN, runCli, startCli } from './helpers/cli.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

let stack: SimStack;
const env = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });
const repo = () => tempDir('cutpoint-cli-repo-');
const uri = () => stack.cluster.describe().shards[0].uri as string;

beforeAll(async () => {
  stack = await startSimStack({ replsetOnly: true, members: 2, checkpointMs: 1000 });
});
afterAll(async () => {
  await stack?.stop();
});

describe('cutpoint backup (CLI)', () => {
  it('--json prints exactly the summary of docs/interfaces.md section 3 and exits 0', async () => {
    const r = await runCli(['backup', '--uri', uri(), '--repo', repo(), '--json', '--keep-alive-ms', '1000'], env());
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(['bytes', 'bytesRead', 'bytesStored', 'cluster', 'commonTimestamp', 'finishedAt', 'id', 'kind', 'parent', 'replicaSets', 'startedAt', 'status'].sort());
    expect(s).toMatchObject({ status: 'complete', cluster: 'rs0', kind: 'full', parent: null });
    expect(s.bytesRead).toBeGreaterThan(0);
    expect(s.commonTimestamp).toEqual({ t: expect.any(Number), i: expect.any(Number) });
    expect(new Date(s.startedAt as string).toISOString()).toBe(s.startedAt);
    expect(s.bytes).toBeGreaterThan(0);
    expect(s.bytesStored).toBeGreaterThan(0);
    const [rs] = s.replicaSets as Array<Record<string, unknown>>;
    expect(Object.keys(rs!).sort()).toEqual(['bytes', 'bytesRead', 'bytesStored', 'configServer', 'files', 'kind', 'name', 'node', 'parent']);
    expect(rs).toMatchObject({ name: 'rs0', configServer: false, node: expect.stringMatching(/^127\.0\.0\.1:\d+$/), kind: 'full', parent: null });
  });

  it('status, throttle and cancel drive a running backup; a cancelled one exits 3 with its summary', async () => {
    const id = `cli-${Date.now()}`;
    const b = startCli(['backup', '--uri', uri(), '--repo', repo(), '--id', id, '--rate', '20KB', '--json', '--keep-alive-ms', '1000'], env());
    await eventually(async () => (await runCli(['status', id, '--json'], env())).stdout.includes('"phase":"copy"'), 60_000, 'copy phase');
    const st = await runCli(['status', id], env());
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(new RegExp(`${id}: running, phase copy, .* throttle 20\\.0 KB/s`));
    const th = await runCli(['throttle', id, '30KB'], env());
    expect(th.stdout).toContain('throttle now 30.0 KB/s');
    expect((await runCli(['cancel', id, '--reason', 'cli test'], env())).code).toBe(0);
    const r = await b.done;
    expect(r.code).toBe(3);
    const s = JSON.parse(r.stdout.trim()) as { status: string; error: { code: string; message: string } };
    expect(s.status).toBe('cancelled');
    expect(s.error).toEqual({ code: 'CANCELLED', message: 'cancelled: cli test' });
  });

  it('--wait on a terminal draws a progress bar that reaches 100%', async () => {
    // `script` gives the CLI a pseudo-terminal, as an operator's shell would (stdout and stderr both land on it).
    const cmd = [process.execPath, CUTPOINT_BIN, 'backup', '--uri', uri(), '--repo', repo(), '--wait', '--rate', '60KB', '--keep-alive-ms', '1000']
      .map((a) => `'${a}'`)
      .join(' ');
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, out).toBe(0);
    // The bar is redrawn in place (carriage returns / cursor moves), filled with the shades_classic blocks.
    expect(out).toMatch(/copy\s*\|[\u2588\u2591]{40}\| \d+% /);
    const percents = [...out.matchAll(/\| (\d+)% /g)].map((m) => Number(m[1]));
    expect(percents.length, percents.join(' ')).toBeGreaterThan(2);
    expect(percents.some((p) => p > 0 && p < 100), JSON.stringify(out.slice(-3000))).toBe(true);
    expect(percents.at(-1)).toBe(100);
    expect(out).toMatch(/backup \S+ of rs0: complete/);
  });

  it.each([
    [['backup', '--uri', 'mongodb://admin:secret@h:1/?replicaSet=rs0', '--repo', '/tmp/x'], /must not contain credentials/],
    [['backup', '--uri', 'mongodb://h:1', '--repo', '/tmp/x', '--rate', 'fast'], /'fast' is not a rate/],
    [['throttle', 'no-such-backup', '5MB'], /no backup 'no-such-backup' is known to Temporal/],
    [['backup', '--repo', '/tmp/x'], /required option '--uri <uri>' not specified/],
  ])('exits 2 naming the problem: %j', async (args, message) => {
    const r = await runCli(args, env());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('secret');
  });
});
