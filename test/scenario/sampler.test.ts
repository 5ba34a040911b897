/** The result document's time series and memory maps: what they hold, and that sampling leaves the run as it was. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadScenarioText, runScenario, type ResultDocument } from '../../src/scenario/runner.js';
import { defaultSampleInterval } from '../../src/scenario/sampler.js';
import { memoryMapDecode, MapContent, base64Encode, base64Decode } from '../../src/report/memory_map.js';
import { formatJson } from '../../src/report/json.js';

const root = new URL('../../../', import.meta.url);
const load = (f: string) => loadScenarioText(readFileSync(new URL(f, root), 'utf8'), f);

const SMALL = `
name: small
guest:
  memory: 256MiB
duration: 3s
timeline:
  - at: 0s
    action: snapshot
    label: booted
  - at: 100ms
    action: alloc_pages
    count: 8000
    owner: slab_unreclaimable
    tag: a
  - at: 1s
    action: free_pages
    tag: a
  - at: 1500ms
    action: drain_pcp
  - at: 2s
    action: snapshot
    label: after
`;

function col(doc: ResultDocument, name: string): number[] {
  const c = doc.series.columns[name];
  assert.ok(c, `column ${name} (have: ${Object.keys(doc.series.columns).join(', ')})`);
  return c.map((v) => { assert.notEqual(v, null, `${name} has a null`); return v as number; });
}

test('series: columns as long as t_ns, at the default interval, agreeing with the document at the end', () => {
  const { doc } = runScenario(loadScenarioText(SMALL, 'small'), { check: true });
  const s = doc.series;
  assert.equal(s.interval_ns, defaultSampleInterval(3e9));
  assert.equal(s.interval_ns, 100_000_000);
  assert.equal(s.t_ns.length, 31);
  assert.equal(s.t_ns[0], 0);
  assert.equal(s.t_ns.at(-1), 3e9);
  for (const [name, c] of Object.entries(s.columns)) assert.equal(c.length, s.t_ns.length, name);
  // free pages per order summed are nr_free_pages; per migratetype too
  const last = s.t_ns.length - 1;
  const byOrder = Array.from({ length: 11 }, (_, o) => col(doc, `free_pages.order.${o}`)[last]!);
  assert.equal(byOrder.reduce((a, b) => a + b, 0), doc.vmstat.nr_free_pages);
  const byMt = ['Unmovable', 'Movable', 'Reclaimable', 'HighAtomic', 'Isolate'].map((m) => col(doc, `free_pages.${m}`)[last]!);
  assert.equal(byMt.reduce((a, b) => a + b, 0), doc.vmstat.nr_free_pages);
  for (const [k, v] of Object.entries(doc.final.pageblocks)) assert.equal(col(doc, `pageblocks.${k}`)[last], v, k);
  assert.equal(col(doc, 'host.rss_bytes')[last], doc.host.rss_bytes);
  // vmstat: only counters that moved; pgalloc moved with the burst, nr_mlock never does
  const pgfree = col(doc, 'vmstat.pgfree');
  assert.ok(pgfree.at(-1)! > pgfree[0]! + 7000, 'the burst is freed');
  assert.equal(s.columns['vmstat.nr_mlock'], undefined);
  for (const [name, c] of Object.entries(s.columns)) if (name.startsWith('vmstat.')) assert.ok(c.some((v) => v !== c[0]), `${name} never changed`);
  // the slab burst steals pageblocks while it is held
  const unmov = col(doc, 'pageblocks.Unmovable');
  assert.ok(Math.max(...unmov) > unmov[0]!, 'Unmovable pageblocks grow with the burst');
  assert.equal(s.columns['migration.remaining_bytes'], undefined, 'no migration, no migration columns');
});

test('series: sample.interval sets the interval and does not change the run; the same run twice is byte-identical', () => {
  const fast = runScenario(loadScenarioText(SMALL + 'sample:\n  interval: 20ms\n', 'small'), {}).doc;
  const dflt = runScenario(loadScenarioText(SMALL, 'small'), {}).doc;
  assert.equal(fast.series.interval_ns, 20_000_000);
  assert.equal(fast.series.t_ns.length, 151);
  assert.equal(fast.series.t_ns[1], 20_000_000);
  const strip = (d: ResultDocument) => JSON.stringify({ ...d, series: null, host: { ...d.host, rss_series: null }, balloon: { ...d.balloon, actual_series: null } });
  assert.equal(strip(fast), strip(dflt), 'sampling more often changes nothing but the series');
  assert.equal(JSON.stringify(runScenario(loadScenarioText(SMALL, 'small'), {}).doc), JSON.stringify(dflt));
  assert.throws(() => loadScenarioText(SMALL + 'sample:\n  interval: 0s\n', 'small'), /sample\.interval: at least 1ms/);
  assert.throws(() => loadScenarioText(SMALL + 'sample:\n  interval: 1s\n  every: 1s\n', 'small'), /sample: unknown field "every"/);
});

test('series: balloon target and actual follow the inflate; migration progress when a migration runs', () => {
  const bb = runScenario(load('scenarios/balloon-basic.yaml').base, {}).doc;
  const target = col(bb, 'balloon.target_pages'), actual = col(bb, 'balloon.actual_pages');
  assert.equal(Math.max(...target), 786432);
  assert.equal(Math.max(...actual), 786432);
  const i = bb.series.t_ns.findIndex((t) => t >= 6e9);
  assert.ok(actual[i]! > 0 && actual[i]! < 786432, `inflating at 6 s: ${actual[i]}`);
  const rss = col(bb, 'host.rss_bytes');
  assert.ok(rss[bb.series.t_ns.findIndex((t) => t >= 10e9)]! < 0.3 * Math.max(...rss));

  const mig = load('scenarios/migration-idle.yaml').variants.find((v) => v.name === 'legacy-fresh')!.scenario;
  const doc = runScenario(mig, {}).doc;
  const rem = doc.series.columns['migration.remaining_bytes']!;
  assert.ok(rem, 'migration columns present');
  assert.equal(rem[0], null, 'null before the migration starts');
  const started = rem.findIndex((v) => v !== null);
  assert.ok(started > 0);
  assert.equal(rem.at(-1), doc.migration!.remaining);
  const transferred = doc.series.columns['migration.transferred_bytes']!.slice(started) as number[];
  for (let k = 1; k < transferred.length; k++) assert.ok(transferred[k]! >= transferred[k - 1]!, 'transferred never goes down');
  assert.equal(transferred.at(-1), doc.migration!.transferred);
  assert.equal(doc.series.columns['migration.iteration']!.at(-1), doc.migration!.iterations);
  // the fine series: every 10 ms from the migrate entry to the sample that sees it completed
  const fine = doc.series.migration!;
  assert.ok(fine, 'series.migration present');
  assert.equal(fine.interval_ns, 10_000_000);
  const migrateAt = doc.events.find((e) => e.kind === 'migrate')!.t_ns;
  assert.equal(fine.t_ns[0], migrateAt);
  for (let k = 1; k < fine.t_ns.length; k++) assert.equal(fine.t_ns[k]! - fine.t_ns[k - 1]!, 10_000_000);
  const totalMs = doc.migration!['total-time'];
  assert.ok(Math.abs(fine.t_ns.length - (totalMs / 10 + 1)) <= 2, `${fine.t_ns.length} samples over ${totalMs} ms`);
  assert.equal(fine.columns.transferred_bytes!.at(-1), doc.migration!.transferred);
  assert.equal(fine.columns.remaining_bytes!.at(-1), 0);
  assert.ok(fine.columns.remaining_bytes![1]! > 0.9 * 8 * 2 ** 30, 'nearly all of RAM is dirty at the start');
  assert.equal(runScenario(load('scenarios/balloon-basic.yaml').base, {}).doc.series.migration, undefined, 'no migration, no fine series');
});

test('memory maps: one at each snapshot and one at the end; cells agree with pagetypeinfo and show the balloon', () => {
  const { doc } = runScenario(loadScenarioText(SMALL, 'small'), {});
  const maps = doc.memory_maps.maps;
  assert.deepEqual(maps.map((m) => m.label), ['booted', 'after', 'end']);
  assert.deepEqual(maps.map((m) => m.t_ns), [0, 2e9, 3e9]);
  assert.equal(maps[0]!.pageblocks, 128);
  const end = memoryMapDecode(maps[2]!);
  const byMt: Record<string, number> = {};
  end.migratetype.forEach((mt) => { const n = doc.memory_maps.legend.migratetypes[mt]!; byMt[n] = (byMt[n] ?? 0) + 1; });
  for (const [k, v] of Object.entries(doc.final.pageblocks)) assert.equal(byMt[k] ?? 0, v, k);
  const booted = memoryMapDecode(maps[0]!);
  assert.ok(booted.content.filter((c) => c === MapContent.free10).length > 64, 'a booted guest is mostly free 4 MiB blocks');
  assert.ok(booted.content.includes(MapContent.reserved) || booted.content.includes(MapContent.kernel), 'the kernel is somewhere');

  const bb = runScenario(load('scenarios/balloon-basic.yaml').base, {}).doc;
  const inflated = bb.memory_maps.maps.find((m) => m.label === 'inflated')!;
  const cells = memoryMapDecode(inflated).content.filter((c) => c === MapContent.balloon).length;
  assert.ok(cells > 0.98 * 1536 && cells < 1.02 * 1536, `3 GiB of balloon is ~1536 pageblocks, got ${cells}`);
  const used = memoryMapDecode(bb.memory_maps.maps.find((m) => m.label.startsWith('used guest'))!).content;
  assert.equal(used.filter((c) => c === MapContent.balloon).length, 0);
});

test('base64 round trip; formatJson is JSON with scalar arrays on one line', () => {
  for (const n of [0, 1, 2, 3, 4, 5, 255, 4096]) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 11) & 0xff);
    const s = base64Encode(b);
    assert.equal(s.length, Math.ceil(n / 3) * 4);
    assert.deepEqual(base64Decode(s), b);
  }
  assert.equal(base64Encode(Uint8Array.from([0x4d, 0x61, 0x6e, 0x4d])), 'TWFuTQ==');
  const v = { a: 1, b: [1, 2, null], c: { d: [[0, 1], [2, 3]], e: [{ f: 'x' }], g: [], h: {} }, u: undefined };
  const text = formatJson(v);
  assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(v)));
  assert.ok(text.includes('"b": [1,2,null]'));
  assert.ok(text.includes('"d": [[0,1],[2,3]]'));
  assert.ok(text.includes('"e": [\n      {\n        "f": "x"\n      }\n    ]'));
  const plain = { x: 1, y: { z: 'q', w: true } };
  assert.equal(formatJson(plain), JSON.stringify(plain, null, 2));
});
