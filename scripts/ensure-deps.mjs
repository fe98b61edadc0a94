#!/usr/bin/env node
// Runs before `npm start` and `npm test` (npm's pre-scripts): installs dependencies on a fresh clone and again
// whenever package-lock.json changed since the last install, so the README's two commands need no set-up step.
// Plain Node on purpose: it must run before any dependency exists.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.cutpoint-install-stamp');

// `npm test` drives the Temporal Web UI in headless Chromium (test/ui-browser.test.ts): install Debian's chromium when
// it is missing and apt-get can (root on Debian/Ubuntu). Otherwise that test fails saying what to install.
const chromium = process.env.CUTPOINT_CHROMIUM_PATH ?? '/usr/bin/chromium';
if (process.env.npm_lifecycle_event === 'pretest' && process.platform === 'linux' && !existsSync(chromium) && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
  console.error('cutpoint: installing chromium for the browser test (apt-get install chromium) ...');
  const apt = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  if (!(apt(['install', '-y', '--no-install-recommends', 'chromium']) || (apt(['update']) && apt(['install', '-y', '--no-install-recommends', 'chromium'])))) {
    console.error('cutpoint: apt-get install chromium failed; test/ui-browser.test.ts will fail until Chromium is installed');
  }
}

// The alert rules' unit tests run promtool (scripts/prometheus-rules.test.ts) and one end-to-end test scrapes a running
// stack with Prometheus (test/metrics-prometheus.test.ts): install Debian's prometheus package, which has both, when
// promtool is missing and apt-get can. Otherwise those tests fail saying what to install.
if (process.env.npm_lifecycle_event === 'pretest' && process.platform === 'linux' && !existsSync('/usr/bin/promtool') && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
  console.error('cutpoint: installing prometheus and promtool for the metrics tests (apt-get install prometheus) ...');
  const apt = (args) => spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  if (!(apt(['install', '-y', '--no-install-recommends', 'prometheus']) || (apt(['update']) && apt(['install', '-y', '--no-install-recommends', 'prometheus'])))) {
    console.error('cutpoint: apt-get install prometheus failed; the metrics tests will fail until Prometheus is installed');
  }
}

const digest = createHash('sha256').update(readFileSync(lock)).digest('hex');
if (existsSync(stamp) && readFileSync(stamp, 'utf8') === digest) process.exit(0);

// `npm install` with the committed lock installs the locked versions. `npm ci` would be stricter, but it rejects a
// lock that lacks other platforms' optional packages (@swc/core-darwin-*), which registry mirrors may not carry.
console.error('cutpoint: installing dependencies (npm install from package-lock.json) ...');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const r = spawnSync(npm, ['install', '--no-audit', '--no-fund', '--no-save'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  console.error(`cutpoint: 'npm install' failed (exit ${r.status ?? r.signal}); fix the error above and run the command again`);
  process.exit(1);
}
writeFileSync(stamp, digest);
