/** The dashboard's server: it only serves files, isolated (COOP/COEP), on loopback; the bundles build. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDashboard, bundledScenarios } from '../../src/cli/dashboard_server.js';

const { server, url } = await startDashboard({ host: '127.0.0.1', port: 0, scenarioFile: 'mine.yaml', scenarioText: 'name: mine\nguest:\n  memory: 256MiB\n' });
after(() => server.close());

test('the page, the scenario list and texts, with COOP/COEP on every response; 404 and 405 otherwise', async () => {
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const page = await fetch(url);
  assert.equal(page.status, 200);
  assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
  assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
  const html = await page.text();
  assert.ok(html.includes('<canvas id="map"'));
  assert.ok(html.includes('<script src="/app.js"></script>'));
  const list = await (await fetch(`${url}api/scenarios`)).json() as { scenarios: string[]; initial: string };
  assert.deepEqual(list.scenarios, ['your scenario', ...bundledScenarios()]);
  assert.ok(list.scenarios.includes('balloon-basic'));
  assert.equal(list.initial, 'your scenario');
  assert.equal(await (await fetch(`${url}api/scenario?name=your%20scenario`)).text(), 'name: mine\nguest:\n  memory: 256MiB\n');
  assert.match(await (await fetch(`${url}api/scenario?name=boot`)).text(), /^# |name: boot/m);
  assert.equal((await fetch(`${url}api/scenario?name=..%2Fpackage`)).status, 404);
  assert.equal((await fetch(`${url}nothing`)).status, 404);
  assert.equal((await fetch(url, { method: 'POST' })).status, 405);
});

test('app.js and worker.js are bundled for the browser (IIFE, no Node imports left)', async () => {
  for (const f of ['app.js', 'worker.js']) {
    const r = await fetch(`${url}${f}`);
    assert.equal(r.status, 200, f);
    assert.equal(r.headers.get('cross-origin-embedder-policy'), 'require-corp');
    const js = await r.text();
    assert.ok(js.length > 100_000, `${f}: ${js.length} bytes`);
    assert.ok(!/require\("node:|from"node:/.test(js), `${f} imports Node`);
  }
  const worker = await (await fetch(`${url}worker.js`)).text();
  assert.ok(worker.includes('Atomics.wait'), 'the worker paces with Atomics.wait');
});
