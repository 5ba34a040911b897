/**
 * The dashboard and the HTML report in a real browser: playwright-core driving Debian's
 * Chromium (/usr/bin/chromium, installed by .ci/run; no browser download). Skipped
 * unless BALLOONLAB_BROWSER=1 (which `npm run test:browser` sets), so `npm test` needs
 * no browser.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Server } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDashboard } from '../../src/cli/dashboard_server.js';
import { tempDir } from '../helpers/tmp.js';

const CHROMIUM = process.env.BALLOONLAB_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = process.env.BALLOONLAB_BROWSER === '1' ? false : 'browser: run `npm run test:browser` (sets BALLOONLAB_BROWSER=1; needs Debian\'s chromium)';
const root = fileURLToPath(new URL('../../../', import.meta.url));

/** A small guest with no balloon entry: only the target typed in the page inflates it. */
const DASH_SCENARIO = `
name: browser-small
guest:
  memory: 512MiB
duration: 6s
timeline:
  - at: 100ms
    action: process_fault
    pid: 10
    size: 128MiB
  - at: 5s
    action: snapshot
    label: late
`;

/** The same guest with a balloon entry (for the report). */
const SCENARIO = `
name: browser-small
guest:
  memory: 512MiB
duration: 6s
timeline:
  - at: 100ms
    action: process_fault
    pid: 10
    size: 128MiB
  - at: 1s
    action: balloon
    value: 256MiB
  - at: 3s
    action: snapshot
    label: inflated
`;

let browser: Browser;
let server: Server;
let url: string;

before(async () => {
  if (SKIP) return;
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: apt-get install chromium`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ({ server, url } = await startDashboard({ host: '127.0.0.1', port: 0, scenarioFile: 'browser-small.yaml', scenarioText: DASH_SCENARIO }));
});

after(async () => {
  await browser?.close();
  server?.close();
});

type State = { running: boolean; done: boolean; framesDrawn: number; fps: number; t_ns: number; balloonActual: number; events: string[]; errors: string[] };
const dash = (page: Page) => page.evaluate(() => (window as unknown as { balloonlab: State }).balloonlab);

/** The memory map canvas's pixels, summed per colour channel (a fingerprint). */
const mapPixels = (page: Page) => page.evaluate(() => {
  const c = document.getElementById('map') as HTMLCanvasElement;
  const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
  let purple = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] === 0x6a && d[i + 1] === 0x3d && d[i + 2] === 0x9a) purple++;
  return { w: c.width, h: c.height, purple };
});

test('the dashboard loads, runs a scenario to the end in the worker, the map turns balloon-purple, a typed target reaches the guest, no console errors', { skip: SKIP, timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true, 'COOP/COEP make SharedArrayBuffer available');
  // the initial scenario starts by itself; wait for the map to be laid out and drawn
  await page.waitForFunction(() => (window as unknown as { balloonlab: State }).balloonlab.framesDrawn > 0, undefined, { timeout: 30_000 });
  const early = await mapPixels(page);
  assert.equal(early.w, 32 * 20, '256 pageblocks: 32 columns of 20 px');
  assert.equal(early.purple, 0, 'no balloon cells before');
  // pause, then check that virtual time stands still
  await page.click('#play');
  const t1 = (await dash(page)).t_ns;
  await page.waitForTimeout(500);
  const t2 = (await dash(page)).t_ns;
  assert.ok(t2 - t1 < 200e6, `paused: time moved ${t2 - t1} ns`);
  assert.equal((await dash(page)).balloonActual, 0, 'no balloon yet');
  // type a balloon target while paused: the 512 MiB guest is to shrink to 256 MiB (65536 balloon pages)
  await page.fill('#target', '256');
  await page.click('#set-target');
  await page.waitForFunction(() => (window as unknown as { balloonlab: State }).balloonlab.events.some((e) => e.includes('QMP balloon value=268435456')), undefined, { timeout: 10_000 });
  await page.click('#migrate');
  await page.waitForFunction(() => (window as unknown as { balloonlab: State }).balloonlab.events.some((e) => e.includes('QMP migrate ->')), undefined, { timeout: 10_000 });
  await page.selectOption('#speed', '0');
  await page.click('#play');
  await page.waitForFunction(() => (window as unknown as { balloonlab: State }).balloonlab.done, undefined, { timeout: 60_000 });
  const end = await dash(page);
  assert.deepEqual(end.errors, []);
  assert.ok(end.events.some((e) => e.includes('snapshot (late)')), 'the timeline ran');
  assert.ok(end.events.some((e) => /snapshot \(late\).*balloon_actual_pages=65536/.test(e)), 'the guest\'s own snapshot sees the typed target reached');
  assert.equal(end.balloonActual, 65536, 'the balloon holds 256 MiB');
  const late = await mapPixels(page);
  assert.ok(late.purple > early.purple + 1000, `balloon cells appeared on the canvas (${early.purple} -> ${late.purple} purple pixels)`);
  assert.ok(end.events.some((e) => /QMP balloon value=268435456 -> \{"return":\{\}\}/.test(e)), 'the device accepted the typed target');
  assert.ok(end.events.some((e) => e.includes('QMP migrate -> {"return":{}}')), 'the migration started');
  assert.equal(await page.evaluate(() => (document.getElementById('chart-migration') as HTMLElement).style.display), '', 'the migration chart is shown');
  assert.deepEqual(errors, []);
  await page.close();
});

test('the dashboard\'s frame rate on an 8 GiB guest (printed; the page stays responsive)', { skip: SKIP, timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(url);
  await page.evaluate(async () => {
    const text = `name: fps-8g\nguest:\n  memory: 8GiB\n  vcpus: 2\nduration: 20s\ntimeline:\n  - at: 100ms\n    action: process_fault\n    pid: 10\n    size: 4GiB\n  - at: 4s\n    action: balloon\n    value: 3GiB\n`;
    (document.getElementById('text') as HTMLTextAreaElement).value = text;
    (document.getElementById('run-text') as HTMLButtonElement).click();
  });
  await page.waitForFunction(() => (window as unknown as { balloonlab: State }).balloonlab.framesDrawn > 10, undefined, { timeout: 60_000 });
  await page.waitForTimeout(3000);
  const s = await dash(page);
  // a click handler still runs promptly while the model runs
  const t0 = Date.now();
  await page.click('#play');
  const clickMs = Date.now() - t0;
  process.stderr.write(`dashboard, 8 GiB guest: ${s.fps} fps (frames drawn ${s.framesDrawn}), click answered in ${clickMs} ms\n`);
  assert.ok(s.fps >= 5, `at least 5 fps, got ${s.fps}`);
  assert.ok(clickMs < 2000);
  await page.close();
});

test('the HTML report opens offline in Chromium and shows every chart', { skip: SKIP, timeout: 120_000 }, async () => {
  const dir = tempDir('bl-report-browser-');
  const yaml = join(dir, 's.yaml');
  writeFileSync(yaml, SCENARIO);
  const html = join(dir, 'r.html');
  const r = spawnSync(process.execPath, [join(root, 'bin', 'balloonlab.js'), 'report', yaml, '--html', html], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const nCharts = Number(/(\d+) charts/.exec(r.stdout)![1]);
  const context = await browser.newContext({ offline: true });
  const page = await context.newPage();
  const requests: string[] = [];
  page.on('request', (q) => { if (!q.url().startsWith('file:')) requests.push(q.url()); });
  await page.goto(`file://${html}`);
  const shown = await page.evaluate(() => Array.from(document.querySelectorAll("figure svg")).filter((s) => { const b = s.getBoundingClientRect(); return b.width > 100 && b.height > 100; }).length);
  assert.equal(shown, nCharts, 'every chart is drawn with a size');
  assert.equal(await page.evaluate(() => document.querySelectorAll('figure[id*="memory-map-"]').length), 2, 'a map at the snapshot and at the end');
  assert.deepEqual(requests, [], 'nothing fetched');
  assert.ok(readFileSync(html, 'utf8').length > 10_000);
  await context.close();
});
