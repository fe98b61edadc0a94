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
