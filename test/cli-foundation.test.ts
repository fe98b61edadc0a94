/** The `cutpoint` executable as a user runs it: verbs, exit codes, graceful shutdown, and `up`. */
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { runCli, startCli, waitFor } from './helpers/cli.ts';
import { tempDir } from './helpers/temp.ts';

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

  it.each([
    [['worker'], { TEMPORAL_TLS_CERT: '/etc/hostname' }, /BAD_USAGE: TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together/],
    [['worker'], { CUTPOINT_LOG_LEVEL: 'loud' }, /BAD_USAGE: CUTPOINT_LOG_LEVEL=loud is not a log level/],
    // Checked before connecting: the unreachable address below is never tried.
    [['agent', '--mongod', 'db1:27017', '--mongod', 'DB1:27017'], {}, /BAD_USAGE: agent: --mongod db1:27017 is given twice/],
    [['up', '--once'], { TEMPORAL_ADDRESS: '', TEMPORAL_CLI_PATH: '/nonexistent/temporal' }, /BAD_USAGE: TEMPORAL_CLI_PATH=\/nonexistent\/temporal is not an executable/],
  ])('exits 2 on bad input from the environment or command line: %j %j', async (args, env, message) => {
    const state = tempDir('cutpoint-bad-');
    const r = await runCli(args, { TEMPORAL_ADDRESS: '127.0.0.1:1', CUTPOINT_STATE_DIR: state, ...env });
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/cannot reach Temporal/);
    expect(r.code).toBe(2);
  });

  it.each([['worker'], ['agent', '--mongod', '127.0.0.1:27999']])('`%s` runs until SIGTERM, then drains and exits 0', async (...args) => {
    const p = startCli(args, { ...temporalEnv(), CUTPOINT_LOG_LEVEL: 'info' });
    await waitFor(() => /workers? running/.test(p.output().stderr), 60_000, `${args[0]} to start`);
    p.child.kill('SIGTERM');
    const r = await p.done;
    expect(r.stderr).toMatch(/SIGTERM received, shutting down/);
    expect(r.code).toBe(0);
  });

  it('`worker` forced to exit (a second SIGTERM) while it bundles the workflows leaves neither the bundler process nor its directory', async () => {
    const p = startCli(['worker'], { ...temporalEnv(), CUTPOINT_LOG_LEVEL: 'info' });
    await waitFor(() => /bundling the workflows in a child process/.test(p.output().stderr), 60_000, 'the bundling to start');
    const line = JSON.parse(p.output().stderr.split('\n').find((l) => l.includes('bundling the workflows in a child process'))!) as { pid: number; dir: string };
    // The first signal waits for the start-up to end; the second exits at once.
    p.child.kill('SIGTERM');
    await waitFor(() => /SIGTERM received/.test(p.output().stderr), 10_000, 'the first SIGTERM to be taken');
    p.child.kill('SIGTERM');
    const r = await p.done;
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).not.toMatch(/workers? running/);
    // A killed process whose parent has exited may stay a zombie until init reaps it: that one is gone too.
    const alive = () => {
      try {
        return readFileSync(`/proc/${line.pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
      } catch {
        return false;
      }
    };
    // Killed as the worker exits; left running, the bundler would go on for seconds and leave its output behind.
    const deadline = Date.now() + 1000;
    while (alive() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    expect(alive(), `bundler pid ${line.pid}`).toBe(false);
    expect(existsSync(line.dir), line.dir).toBe(false);
  });

  it('`up` provisions its own dev server, prints a UI address that answers, and stops it all on Ctrl-C', async () => {
    const state = tempDir('cutpoint-up-');
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

  it('`up` interrupted by Ctrl-C during start-up stops what it started and exits 0', async () => {
    const state = tempDir('cutpoint-up-abort-');
    const p = startCli(['up'], { TEMPORAL_ADDRESS: '', CUTPOINT_STATE_DIR: state, CUTPOINT_LOG_LEVEL: 'info' });
    await waitFor(() => /starting Temporal dev server/.test(p.output().stderr), 60_000, 'the dev server to be spawned');
    const address = /"address":"([^"]+)","ui"/.exec(p.output().stderr)?.[1];
    p.child.kill('SIGINT');
    const r = await p.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/start-up interrupted by a signal/);
    expect(r.stdout).not.toMatch(/cutpoint is up/);
    // The server it was starting is gone with it.
    const [host, port] = [address!.slice(0, address!.lastIndexOf(':')), Number(address!.slice(address!.lastIndexOf(':') + 1))];
    const answers = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port }, () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    expect(answers).toBe(false);
  });

  it('`up --once` with TEMPORAL_ADDRESS uses that server and starts none', async () => {
    const state = tempDir('cutpoint-up-once-');
    const r = await runCli(['up', '--once'], { ...temporalEnv(), CUTPOINT_LOG_LEVEL: 'info', CUTPOINT_STATE_DIR: state });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Temporal ${inject('temporalAddress')}`);
    expect(r.stdout).toMatch(/Temporal UI: served by your Temporal deployment/);
    // No server of its own: at info level the stack says which service it uses, and never that it starts one
    // (startDevServer logs 'starting Temporal dev server' at info before it spawns anything); no server log either.
    expect(r.stderr).toMatch(/TEMPORAL_ADDRESS is set: using that Temporal service, starting no dev server/);
    expect(r.stderr).not.toMatch(/starting Temporal dev server/);
    expect(existsSync(join(state, 'logs'))).toBe(false);
  });
});
