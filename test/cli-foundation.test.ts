/** The `cutpoint` executable as a user runs it: verbs, exit codes, graceful shutdown, and `up`. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli, startCli, waitFor } from './helpers/cli.ts';

const temporalEnv = () => ({ TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_NAMESPACE: inject('temporalNamespace') });

describe('cutpoint CLI', () => {
  it('lists its verbs', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const verb of ['worker', 'agent', 'up']) expect(r.stdout).toMatch(new RegExp(`^\\s+${verb}\\b`, 'm'));
  });

  it.each([
    [['agent'], /give at least one --mongod/],
    [['agent', '--mongod', 'nohostport'], /'nohostport' is not host:port/],
    [['agent', '--mongod', 'a:1', '--mongod', 'b:2', '--dbpath', '/x'], /2 --mongod but 1 --dbpath/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('exits 2 with a clear message on bad usage: %j', async (args, message) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('exits 1 naming the address when Temporal is unreachable', async () => {
    const r = await runCli(['worker'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TEMPORAL_UNAVAILABLE: cannot reach Temporal at 127\.0\.0\.1:1/);
  });

  it('rejects a half-configured TLS client certificate', async () => {
    const r = await runCli(['worker'], { TEMPORAL_ADDRESS: '127.0.0.1:1', TEMPORAL_TLS_CERT: '/etc/hostname' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together/);
  });

  it.each([['worker'], ['agent', '--mongod', '127.0.0.1:27999']])('`%s` runs until SIGTERM, then drains and exits 0', async (...args) => {
    const p = startCli(args, { ...temporalEnv(), CUTPOINT_LOG_LEVEL: 'info' });
    await waitFor(() => /workers? running/.test(p.output().stderr), 60_000, `${args[0]} to start`);
    p.child.kill('SIGTERM');
    const r = await p.done;
    expect(r.stderr).toMatch(/SIGTERM received, shutting down/);
    expect(r.code).toBe(0);
  });

  it('`up` provisions its own dev server, prints a UI address that answers, and stops it all on Ctrl-C', async () => {
    const state = mkdtempSync(join(tmpdir(), 'cutpoint-up-'));
    const p = startCli(['up'], { TEMPORAL_ADDRESS: '', CUTPOINT_STATE_DIR: state });
    await waitFor(() => /Press Ctrl-C to stop/.test(p.output().stdout), 120_000, 'the stack to come up');
    const { stdout } = p.output();
    expect(stdout).toMatch(/orchestrator worker pid \d+ on task queue cutpoint/);
    const ui = /^Temporal UI: (http:\/\/\S+)$/m.exec(stdout)?.[1];
    expect(ui, stdout).toBeDefined();
    const page = await fetch(ui!);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<html/i);

    p.child.kill('SIGINT');
    const r = await p.done;
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/"level":50/);
    // The server it started is gone with it.
    await expect(fetch(ui!)).rejects.toThrow();
  });

  it('`up --once` with TEMPORAL_ADDRESS uses that server and starts none', async () => {
    const r = await runCli(['up', '--once'], temporalEnv());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Temporal ${inject('temporalAddress')}`);
    expect(r.stdout).toMatch(/Temporal UI: served by your Temporal deployment/);
  });
});
