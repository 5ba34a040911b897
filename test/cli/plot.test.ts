/** The charts: specs from real runs, rendered to SVG by Vega and to PNG by resvg (text drawn), and `balloonlab plot`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Resvg } from '@resvg/resvg-js';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { resultCharts, compareCharts, memoryMapCells } from '../../src/report/charts.js';
import { chartSvg, svgToPng, resvgOptions } from '../../src/cli/render.js';
import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'balloonlab.js');
function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const SCENARIO = `
name: plot-small
guest:
  memory: 256MiB
duration: 4s
timeline:
  - at: 0s
    action: snapshot
    label: booted
  - at: 100ms
    action: process_fault
    pid: 10
    size: 64MiB
  - at: 1s
    action: balloon
    value: 160MiB
  - at: 3s
    action: snapshot
    label: inflated
variants:
  - name: compaction-on
  - name: compaction-off
    balloon:
      compaction: false
`;

const sf = loadScenarioText(SCENARIO, 'plot-small');
const doc = runScenario(sf.base, {}).doc;

/** The number of items Vega drew in the SVG's mark groups of a kind (rect, area, line ...). */
function markItems(svg: string, kind: string): number {
  let n = 0;
  for (const m of svg.matchAll(new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>(.*?)</g>`, 'gs'))) n += (m[1]!.match(/<(path|line) /g) ?? []).length;
  return n;
}

test('one run: free-by-order, pageblocks, balloon-rss and a memory map per snapshot and at the end', async () => {
  const charts = resultCharts(doc);
  assert.deepEqual(charts.map((c) => c.name), ['free-by-order', 'pageblocks', 'balloon-rss', 'memory-map-0-booted', 'memory-map-1-inflated', 'memory-map-2-end']);
  const svg = await chartSvg(charts[2]!);
  assert.match(svg, /^<svg/);
  assert.ok(svg.includes('Balloon size, host RSS and guest free memory (MiB)'));
  assert.ok(svg.includes('virtual time (s)'));
  for (const l of ['balloon target', 'balloon actual', 'host RSS']) assert.ok(svg.includes(l), l);
  // the balloon's 96 MiB: the axis reaches it
  assert.ok(svg.includes('>100<') || svg.includes('>120<') || svg.includes('>150<'), 'an axis label past 96 MiB');
});

test('the memory map draws one rect per pageblock in each panel; the balloon colour appears once it inflates', async () => {
  const charts = resultCharts(doc);
  const [booted, inflated] = [charts[3]!, charts[4]!];
  const { cells } = memoryMapCells(doc.memory_maps.maps[1]!);
  assert.equal(cells.length, 128);
  const svgB = await chartSvg(booted), svgI = await chartSvg(inflated);
  assert.equal(markItems(svgI, 'rect'), 2 * 128);
  assert.ok(!svgB.includes('#6a3d9a'), 'no balloon before the inflate');
  assert.ok(svgI.includes('#6a3d9a'), 'balloon cells after it');
  assert.ok(svgI.includes('balloon (offline)'));
  assert.ok(cells.filter((c) => c.content === 'balloon (offline)').length >= 40, '96 MiB of balloon is ~48 pageblocks');
});

test('PNG: resvg renders the SVG with its text (DejaVu Sans found)', async () => {
  const svg = await chartSvg(resultCharts(doc)[0]!);
  const png = svgToPng(svg, 2);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  // a text-only SVG draws dark pixels only if a font was found
  const text = '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="5" y="30" font-family="DejaVu Sans" font-size="20">MiB 1234</text></svg>';
  const r = new Resvg(text, resvgOptions(1)).render();
  let dark = 0;
  for (let i = 0; i < r.pixels.length; i += 4) if (r.pixels[i]! < 128) dark++;
  assert.ok(dark > 100, `text drew ${dark} dark pixels`);
});

test('a migration chart from the fine series: a line per quantity and a rule per pass', async () => {
  const text = readFileSync(join(root, 'scenarios', 'migration-tcg.yaml'), 'utf8');
  const v = loadScenarioText(text, 'migration-tcg').variants.find((x) => x.name === 'w16-hint')!;
  const d = runScenario(v.scenario, {}).doc;
  const chart = resultCharts(d).find((c) => c.name === 'migration')!;
  assert.ok(chart, 'a migration chart');
  const passes = new Set(d.series.migration!.columns.iteration).size;
  assert.ok(passes >= 2, `${passes} passes`);
  const svg = await chartSvg(chart);
  assert.equal(markItems(svg, 'line'), 2);
  assert.equal(markItems(svg, 'rule'), passes);
  for (let p = 1; p <= passes; p++) assert.ok(svg.includes(`>pass ${p}<`), `pass ${p} labelled`);
  assert.equal(resultCharts(doc).find((c) => c.name === 'migration'), undefined, 'no migration, no chart');
});

test('a comparison overlays the variants and has each variant\'s charts', async () => {
  const docs = sf.variants.map((v) => ({ name: v.name, result: runScenario(v.scenario, {}).doc }));
  const charts = compareCharts({ scenario: 'plot-small', variants: docs });
  const names = charts.map((c) => c.name);
  assert.deepEqual(names.slice(0, 3), ['compare-free', 'compare-pageblocks', 'compare-balloon-rss']);
  assert.ok(names.includes('compaction-off-memory-map-1-inflated'));
  const svg = await chartSvg(charts[0]!);
  assert.ok(svg.includes('compaction-on') && svg.includes('compaction-off'));
  assert.equal(markItems(svg, 'line'), 4, 'two variants × two quantities');
});

test('balloonlab plot: a scenario to SVG and PNG files; a result document; bad input exits 2', () => {
  const dir = tempDir('bl-plot-');
  const yaml = join(dir, 's.yaml');
  writeFileSync(yaml, SCENARIO.replace(/variants:[\s\S]*$/, ''));
  const out = join(dir, 'out');
  const r = run('plot', yaml, '--out', out, '--format', 'svg,png');
  assert.equal(r.code, 0, r.err);
  const files = readdirSync(out).sort();
  assert.deepEqual(files, ['balloon-rss.png', 'balloon-rss.svg', 'free-by-order.png', 'free-by-order.svg', 'memory-map-0-booted.png', 'memory-map-0-booted.svg',
    'memory-map-1-inflated.png', 'memory-map-1-inflated.svg', 'memory-map-2-end.png', 'memory-map-2-end.svg', 'pageblocks.png', 'pageblocks.svg']);
  assert.match(readFileSync(join(out, 'pageblocks.svg'), 'utf8'), /Pageblocks by migratetype/);
  const json = join(dir, 'r.json');
  assert.equal(run('run', yaml, '--json', json, '--quiet', '--reproducible').code, 0);
  const out2 = join(dir, 'out2');
  assert.equal(run('plot', json, '--out', out2).code, 0);
  assert.equal(readFileSync(join(out2, 'pageblocks.svg'), 'utf8'), readFileSync(join(out, 'pageblocks.svg'), 'utf8'), 'the same run draws the same chart');
  const bad = run('plot', json, '--format', 'gif', '--out', out2);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--format: unknown format "gif"/);
  writeFileSync(join(dir, 'x.json'), '{"a":1}');
  const notDoc = run('plot', join(dir, 'x.json'), '--out', out2);
  assert.equal(notDoc.code, 2);
  assert.match(notDoc.err, /not a result document/);
});

test('balloonlab report --html: one file, no script or outside link, every chart inline, the table, the events and the scenario', () => {
  const dir = tempDir('bl-report-');
  const yaml = join(dir, 's.yaml');
  writeFileSync(yaml, SCENARIO);
  const html = join(dir, 'r.html');
  const r = run('report', yaml, '--html', html);
  assert.equal(r.code, 0, r.err);
  const text = readFileSync(html, 'utf8');
  const docs = sf.variants.map((v) => ({ name: v.name, result: runScenario(v.scenario, {}).doc }));
  const charts = compareCharts({ scenario: 'plot-small', variants: docs });
  assert.equal((text.match(/<svg/g) ?? []).length, charts.length);
  assert.match(r.out, new RegExp(`${charts.length} charts`));
  assert.equal((text.match(/<figure id="[^"]*memory-map-/g) ?? []).length, 6, 'three maps per variant');
  assert.ok(!/<script/i.test(text), 'no script');
  assert.ok(!/\s(src|href)="(?!#)/.test(text), 'no link outside the file');
  assert.ok(!/<link /.test(text));
  assert.ok(text.includes('Comparison table'));
  assert.ok(/Pageblocks Unmovable \(end\)/.test(text), 'compare.ts rows');
  assert.ok(text.includes('<h3>Variant compaction-off</h3>'));
  assert.ok(text.includes('action: balloon'), 'the scenario text');
  assert.ok(text.includes('process_fault'), 'the events');
  assert.equal(run('report', yaml).code, 2, '--html is required');
});

test('host runs: the host-memory and per-VM RSS charts render with their series; a comparison of policies overlays swap and overcommit; plot draws them from a host scenario file', async () => {
  const { runHostScenario } = await import('../../src/scenario/host_runner.js');
  const { hostCharts, hostCompareCharts } = await import('../../src/report/host_charts.js');
  const text = `name: tiny-host-plot
seed: 5
host: { memory: 640MiB, swap: 256MiB, series_interval: 1s }
guest: { memory: 256MiB, thp: never }
duration: 10s
vms:
  - name: idle
    timeline: [ { at: 0s, action: idle } ]
  - name: burst
    count: 2
    timeline:
      - { at: 1s, action: process_fault, pid: 100, size: 150MiB }
      - { at: 6s, action: process_exit, pid: 100 }
`;
  const s = loadScenarioText(text, 'host-plot.yaml').base;
  const doc = runHostScenario(s, {}).doc;
  const charts = hostCharts(doc);
  assert.deepEqual(charts.map((c) => c.name), ['host-memory', 'host-vm-rss']);
  const rows = (c: (typeof charts)[number]) => (c.spec as { data: { values: Array<Record<string, unknown>> } }).data.values;
  assert.deepEqual([...new Set(rows(charts[1]!).map((r) => r.series))], ['idle', 'burst-1', 'burst-2']);
  assert.ok(rows(charts[0]!).some((r) => r.series === 'host swap used'), 'the host swap column is drawn');
  for (const c of charts) {
    const svg = await chartSvg(c);
    assert.match(svg, /<svg/);
    assert.ok(svg.includes('virtual time (s)'), c.name);
  }
  const cmp = hostCompareCharts('tiny-host-plot', [{ name: 'a', doc }, { name: 'b', doc }]);
  assert.deepEqual(cmp.slice(0, 2).map((c) => c.name), ['compare-host-swap', 'compare-overcommit']);
  assert.equal(cmp.length, 2 + 2 * 2);
  // the CLI: a host scenario file, run then drawn
  const dir = tempDir('bl-hostplot-');
  const f = join(dir, 'host.yaml');
  writeFileSync(f, text);
  const r = run('plot', f, '--out', join(dir, 'out'));
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(readdirSync(join(dir, 'out')).sort(), ['host-memory.svg', 'host-vm-rss.svg']);
  const rep = run('report', f, '--html', join(dir, 'r.html'));
  assert.equal(rep.code, 2, 'the HTML report refuses host runs, naming plot');
  assert.match(rep.err, /balloonlab plot/);
});
