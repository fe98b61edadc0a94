/**
 * The Temporal Web UI of the run's dev server, driven in headless Chromium (playwright-core, the system's
 * /usr/bin/chromium): a running, throttled backup's page shows cutpoint's search attributes and its "Current
 * Details", whose progress advances between two reads and agrees with the workflow's `progress` query.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BackupProgress } from '../common/backup-types.ts';
import { backupProgress, cancelBackup, startBackup } from '../api/backups.ts';
import { eventually } from '../sim/testkit.ts';
import { startSimStack, type SimStack } from './helpers/sim-stack.ts';
import { tempDir } from './helpers/temp.ts';

const CHROMIUM = process.env.CUTPOINT_CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const MiB = 1024 * 1024;

let stack: SimStack;
let browser: Browser;
const shots = tempDir('cutpoint-ui-');

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM} (apt-get install chromium, or set CUTPOINT_CHROMIUM_PATH)`);
  stack = await startSimStack({ replsetOnly: true, members: 3, checkpointMs: 1000, bank: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/**
 * "Copied X of Y MiB" from the page's Current Details, in MiB. The UI renders that markdown in a sandboxed iframe, so
 * every frame of the page is read.
 */
async function copiedOnPage(page: Page): Promise<{ done: number; total: number; text: string }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    for (const frame of page.frames()) {
      const text = await frame.locator('body').innerText({ timeout: 1000 }).catch(() => '');
      const m = /Copied ([\d.]+) of ([\d.]+) MiB/.exec(text);
      if (m) return { done: Number(m[1]), total: Number(m[2]), text };
    }
    if (Date.now() > deadline) throw new Error('no "Copied X of Y MiB" in the current details within 30 s');
    await page.waitForTimeout(250);
  }
}

describe('Temporal UI in a browser', () => {
  it("shows a running backup's search attributes and current details, advancing with its progress query", async () => {
    const uiUrl = inject('temporalUiUrl');
    expect(uiUrl, 'the dev server runs with its UI').toMatch(/^http:\/\//);
    const namespace = inject('temporalNamespace');
    const dir = tempDir('cutpoint-repo-');
    const uri = stack.cluster.describe().shards[0]!.uri as string;
    // Throttled so that it is still copying while the browser reads it twice.
    const { id } = await startBackup(stack.h.client, { uri, repo: dir, bytesPerSec: 8_000, keepAliveIntervalMs: 1000, batchMaxFiles: 2 });
    let page: Page | undefined;
    try {
      await eventually(async () => {
        const p = await backupProgress(stack.h.client, id);
        return p.phase === 'copy' && p.bytesDone > 0;
      }, 60_000, 'the backup copies');

      page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
      const url = `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(id)}`;
      const read = async () => {
        const before: BackupProgress = await backupProgress(stack.h.client, id);
        await page!.goto(url, { waitUntil: 'domcontentloaded' });
        // The workflow page's "User Metadata" tab holds the summary and the current details.
        await page!.getByText('User Metadata', { exact: true }).first().click({ timeout: 30_000 });
        const shown = await copiedOnPage(page!);
        const after: BackupProgress = await backupProgress(stack.h.client, id);
        return { before, shown, after };
      };

      const first = await read();
      // The details the UI shows are the workflow's: bytes between the progress query before and after the read.
      expect(first.shown.total).toBeCloseTo(first.after.bytesTotal / MiB, 1);
      expect(first.shown.done).toBeGreaterThanOrEqual(Math.floor((10 * first.before.bytesDone) / MiB) / 10);
      expect(first.shown.done).toBeLessThanOrEqual(Math.ceil((10 * first.after.bytesDone) / MiB) / 10);
      writeFileSync(join(shots, 'user-metadata.txt'), await page.locator('body').innerText());
      await page.getByText('Search Attributes', { exact: true }).first().click();
      await page.getByText('CutpointCluster').first().waitFor({ timeout: 30_000 });
      const body = await page.locator('body').innerText();
      writeFileSync(join(shots, 'page.txt'), body);
      // Search attributes: cutpoint's, with this backup's values (the UI shows them as JSON).
      for (const [name, value] of [['CutpointCluster', 'rs0'], ['CutpointKind', 'backup'], ['CutpointStatus', 'running'], ['CutpointPhase', 'copy']]) {
        expect(body, name).toContain(`"${name}": "${value}"`);
      }
      expect(body).toMatch(/"CutpointBytes": \d+/);

      // Until the details' 0.1 MiB resolution can show the advance.
      await eventually(async () => Number(((await backupProgress(stack.h.client, id)).bytesDone / MiB).toFixed(1)) > first.shown.done, 60_000, 'progress advances');
      const second = await read();
      expect(second.shown.done).toBeGreaterThan(first.shown.done);
      expect(second.before.status, 'still running at the second read').toBe('running');
      expect(second.shown.done).toBeGreaterThanOrEqual(Math.floor((10 * second.before.bytesDone) / MiB) / 10);
      expect(second.shown.done).toBeLessThanOrEqual(Math.ceil((10 * second.after.bytesDone) / MiB) / 10);

      const shot = join(shots, `${id}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      process.stderr.write(`[ui-browser] screenshot ${shot} (page text ${join(shots, 'page.txt')}); ` +
        `current details read ${first.shown.done} then ${second.shown.done} of ${second.shown.total} MiB ` +
        `(progress query ${first.after.bytesDone} then ${second.after.bytesDone} bytes, ${second.after.status})\n`);
      expect(existsSync(shot)).toBe(true);
    } catch (e) {
      // What the browser saw, for the failure report.
      if (page) {
        writeFileSync(join(shots, 'failed.txt'), await page.locator('body').innerText().catch(String));
        await page.screenshot({ path: join(shots, 'failed.png'), fullPage: true }).catch(() => undefined);
        process.stderr.write(`[ui-browser] failed; page in ${shots}\n`);
      }
      throw e;
    } finally {
      await cancelBackup(stack.h.client, id).catch(() => undefined);
    }
  });
});
