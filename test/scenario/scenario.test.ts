/** Scenario files: validation errors name the field; runs are deterministic. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { eventsOfKind } from '../../src/actions/index.js';
import { ScenarioError } from '../../src/scenario/schema.js';
import { VERSION } from '../../src/version.js';

const root = new URL('../../../', import.meta.url);

const GOOD = `
name: t
seed: 3
guest:
  memory: 256MiB
  vcpus: 2
timeline:
  - at: 0s
    action: snapshot
  - at: 10ms
    action: alloc_pages
    label: burst
    count: 3000
    gfp: GFP_KERNEL
    owner: slab_unreclaimable
    tag: a
  - at: 20ms
    action: free_pages
    tag: a
    fraction: 0.5
  - at: 30ms
    action: alloc_pages
    count: 40
    order: 9
    gfp: GFP_HIGHUSER_MOVABLE|__GFP_NORETRY|__GFP_NOWARN
    owner: anon
    tag: thp
  - at: 40ms
    action: snapshot
`;

function errorOf(text: string): string {
  try {
    loadScenarioText(text, 'bad.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, `expected a ScenarioError, got ${e}`);
    return e.message;
  }
  assert.fail('no error');
}

test('a good scenario runs; events and the result document have the CLI.md fields', () => {
  const sf = loadScenarioText(GOOD, 'good.yaml');
  const { doc } = runScenario(sf.base, { check: true });
  assert.equal(doc.balloonlab, VERSION);
  assert.equal(doc.scenario, 't');
  assert.equal(doc.seed, 3);
  assert.deepEqual(doc.guest, { memory_bytes: 256 * 1024 ** 2, vcpus: 2 });
  assert.equal(doc.duration_ns, 40e6);
  for (const k of ['vmstat', 'balloon', 'events', 'wall_ms']) assert.ok(k in doc, k);
  assert.equal(doc.events.length, 5);
  assert.deepEqual(doc.events.map((e) => e.kind).slice(0, 3), ['snapshot', 'alloc_pages', 'free_pages']);
  assert.equal(eventsOfKind(doc.events, 'alloc_pages')[0]!.succeeded, 3000);
  assert.equal(eventsOfKind(doc.events, 'free_pages')[0]!.freed, 1500);
  assert.equal(eventsOfKind(doc.events, 'snapshot')[0]!.free_blocks.length, 11);
  assert.ok(doc.vmstat.pgalloc_dma32! > 3000);
  assert.equal(typeof doc.vmstat.nr_free_pages, 'number');
});

test('the same scenario and seed give byte-identical JSON; another seed does not', () => {
  const sf = loadScenarioText(GOOD, 'good.yaml');
  const a = JSON.stringify(runScenario(sf.base).doc);
  const b = JSON.stringify(runScenario(sf.base).doc);
  assert.equal(a, b);
  const c = JSON.stringify(runScenario(sf.base, { seed: 4 }).doc);
  assert.notEqual(a, c);
});

test('bad input: one clear error naming the field', () => {
  const base = (tl: string, guest = 'memory: 256MiB') => `name: t\nguest:\n  ${guest}\ntimeline:\n${tl}`;
  assert.match(errorOf(base('  - at: 1s\n    action: explode\n')), /^bad\.yaml: timeline\[0\]\.action: unknown or missing action \(allowed: snapshot, alloc_pages/);
  assert.match(errorOf(base('', 'memory: -1GiB')), /^bad\.yaml: guest\.memory: size must not be negative/);
  assert.match(errorOf(base('', 'memory: 4GB')), /^bad\.yaml: guest\.memory: unknown unit "GB" in "4GB" \(allowed: B, KiB, MiB, GiB, TiB\)/);
  assert.match(errorOf('name: t\ntimeline: []\n'), /^bad\.yaml: guest: required field is missing/);
  assert.match(errorOf(base('', 'vcpus: 2')), /^bad\.yaml: guest\.memory: required: a size/);
  assert.match(errorOf(base('  - at: 1s\n    action: alloc_pages\n    count: 5\n    order: 11\n')), /^bad\.yaml: timeline\[0\]\.order: Too big: expected number to be <=10/);
  assert.match(errorOf(base('  - at: 1s\n    action: alloc_pages\n    count: 5\n    gfp: GFP_WHATEVER\n')), /timeline\[0\]\.gfp: unknown GFP flag "GFP_WHATEVER"/);
  assert.match(errorOf(base('  - at: 1s\n    action: snapshot\n    colour: red\n')), /timeline\[0\]: unknown field "colour"/);
  assert.match(errorOf(base('  - at: soon\n    action: snapshot\n')), /timeline\[0\]\.at: "soon" is not a time/);
  assert.match(errorOf(`name: t\nduration: 1s\nguest:\n  memory: 256MiB\ntimeline:\n  - at: 2s\n    action: snapshot\n`), /timeline\[0\]\.at: 2s is after the scenario's duration \(1s\)/);
  assert.match(errorOf('name: [unclosed\n'), /^bad\.yaml: not valid YAML/);
  assert.match(errorOf(`${base('')}\nvariants:\n  - guest: { vcpus: 2 }\n`), /variants\[0\]\.name: required/);
  assert.match(errorOf(`${base('')}\nvariants:\n  - name: x\n    guest: { memory: 1XB }\n`), /variants\[0\] \(x\): guest\.memory: unknown unit "XB"/);
});

test('variants deep-merge onto the base scenario', () => {
  const sf = loadScenarioText(`${GOOD}\nvariants:\n  - name: base\n  - name: big\n    guest: { memory: 512MiB }\n`, 'v.yaml');
  assert.equal(sf.variants.length, 2);
  assert.equal(sf.variants[0]!.scenario.guest.memory, 256 * 1024 ** 2);
  assert.equal(sf.variants[1]!.scenario.guest.memory, 512 * 1024 ** 2);
  assert.equal(sf.variants[1]!.scenario.guest.vcpus, 2, 'untouched fields are kept');
  assert.equal(sf.variants[1]!.scenario.timeline.length, 5);
});

test('every bundled scenario validates', () => {
  for (const f of ['scenarios/boot.yaml', 'scenarios/compaction.yaml', 'scenarios/balloon-basic.yaml', 'scenarios/balloon-compaction.yaml', 'scenarios/migration-idle.yaml']) {
    const text = readFileSync(new URL(f, root), 'utf8');
    const sf = loadScenarioText(text, f);
    assert.ok(sf.base.name.length > 0);
  }
});

test('scenarios/compaction.yaml: compact_memory turns scattered holes into huge free blocks', () => {
  const sf = loadScenarioText(readFileSync(new URL('scenarios/compaction.yaml', root), 'utf8'), 'compaction.yaml');
  const { doc } = runScenario(sf.base, { check: true });
  const ev = eventsOfKind(doc.events, 'compact_memory')[0]!;
  const huge = (a: number[]) => a.slice(9).reduce((x, y) => x + y, 0);
  const before = huge(ev.free_blocks_before), after = huge(ev.free_blocks_after);
  assert.ok(after > 3 * before, `order>=9 free blocks ${before} -> ${after}`);
  for (const k of ['compact_migrate_scanned', 'compact_free_scanned', 'compact_isolated', 'pgmigrate_success'] as const) {
    assert.ok(ev[k] > 0, k);
    assert.ok(doc.vmstat[k]! > 0, `vmstat ${k}`);
  }
  assert.equal(ev.pgmigrate_fail, 0);
});

test('scenarios/balloon-basic.yaml: actual tracks the target, host RSS drops by the balloon and comes back, counts match', () => {
  const sf = loadScenarioText(readFileSync(new URL('scenarios/balloon-basic.yaml', root), 'utf8'), 'balloon-basic.yaml');
  const { doc } = runScenario(sf.base, { check: true });
  const snap = (label: string) => eventsOfKind(doc.events, 'snapshot', label)[0]!;
  const used = snap('used guest, free memory still backed'), inflated = snap('inflated'), deflated = snap('deflated, pages not yet touched');
  assert.equal(inflated.balloon_actual_pages, inflated.balloon_target_pages);
  assert.equal(inflated.balloon_actual_pages, 786432);
  const drop = used.host_rss_bytes - inflated.host_rss_bytes;
  assert.ok(drop > 0.99 * 3 * 1024 ** 3 && drop <= 3 * 1024 ** 3, `RSS drop ${drop}`);
  assert.equal(deflated.balloon_actual_pages, 0);
  const back = snap('memory faulted back in');
  assert.ok(back.host_rss_bytes - deflated.host_rss_bytes > 0.99 * 2 * 1024 ** 3, 'the new workload faults the deflated memory back in');
  assert.ok(doc.host.refaults > 0.99 * 524288);
  assert.equal(doc.balloon.inflated, 786432);
  assert.equal(doc.balloon.deflated, 786432);
  assert.equal(doc.vmstat.balloon_inflate, 786432);
  assert.deepEqual(eventsOfKind(doc.events, 'query_balloon').map((e) => e.qmp), [{ return: { actual: 1024 ** 3 } }, { return: { actual: 4 * 1024 ** 3 } }]);
  const stats = eventsOfKind(doc.events, 'guest_stats')[0]!.qmp as { return: { stats: Record<string, number>; 'last-update': number } };
  // polled every 2 s; the poll due at 10 s runs after the action scheduled for that instant
  assert.equal(stats.return['last-update'], 8);
  assert.equal(Object.keys(stats.return.stats).length, 16);
  assert.ok(doc.host.rss_series.length > 100);
  assert.ok(doc.balloon.actual_series.some(([, a]) => a === 786432));
  const again = runScenario(sf.base, {}).doc;
  assert.equal(JSON.stringify(again), JSON.stringify(doc), 'byte-identical on a second run');
});

test('scenarios/balloon-compaction.yaml: with balloon compaction, balloon pages migrate and more 2 MiB blocks come back', () => {
  const sf = loadScenarioText(readFileSync(new URL('scenarios/balloon-compaction.yaml', root), 'utf8'), 'balloon-compaction.yaml');
  const [off, on] = sf.variants.map((v) => runScenario(v.scenario, { check: true }).doc);
  const huge = (doc: typeof off) => {
    const fb = eventsOfKind(doc!.events, 'compact_memory')[0]!.free_blocks_after;
    return fb[9]! + 2 * fb[10]!;
  };
  assert.equal(off!.vmstat.balloon_migrate, 0);
  assert.ok(on!.vmstat.balloon_migrate! > 10000, `balloon_migrate ${on!.vmstat.balloon_migrate}`);
  assert.ok(huge(on) > huge(off) * 1.15, `2 MiB blocks after compaction: off ${huge(off)}, on ${huge(on)}`);
  assert.ok(eventsOfKind(on!.events, 'compact_memory')[0]!.free_blocks_after !== undefined);
});

test('scenarios/migration-idle.yaml: with free page hinting far fewer pages are scanned and sent, and total time falls', () => {
  const sf = loadScenarioText(readFileSync(new URL('scenarios/migration-idle.yaml', root), 'utf8'), 'migration-idle.yaml');
  const docs = Object.fromEntries(sf.variants.map((v) => [v.name, runScenario(v.scenario, { check: true }).doc]));
  const mig = (name: string) => docs[name]!.migration!;
  for (const state of ['used', 'fresh']) {
    const legacy = mig(`legacy-${state}`), hint = mig(`hinting-${state}`);
    assert.equal(legacy.status, 'completed');
    assert.equal(hint.status, 'completed');
    assert.equal(legacy.destination_check, 'ok');
    assert.equal(hint.destination_check, 'ok');
    assert.equal(legacy['free-page-hint'].hinted_pages, 0);
    assert.ok(hint['free-page-hint'].skipped_pages > 500_000, `${state}: skipped ${hint['free-page-hint'].skipped_pages}`);
    const scanned = (m: typeof legacy) => m.duplicate + m.normal;
    assert.ok(scanned(hint) < 0.75 * scanned(legacy), `${state}: pages scanned ${scanned(legacy)} -> ${scanned(hint)}`);
    assert.ok(hint.transferred <= legacy.transferred, `${state}: bytes sent`);
    assert.ok(hint['total-time'] < legacy['total-time'], `${state}: total time ${legacy['total-time']} -> ${hint['total-time']}`);
  }
  assert.ok(mig('hinting-used').transferred < mig('legacy-used').transferred / 3);
});
