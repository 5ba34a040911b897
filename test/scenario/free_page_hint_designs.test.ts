/**
 * balloon.free_page_hint: false | true | upstream | v33 and free_page_hint_buffer:
 * validation (exit 2 naming the field), true being upstream, and the shrunk
 * hint-designs comparison: deterministic, checked, every migration delivered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadScenarioText, runScenario, type ResultDocument } from '../../src/scenario/runner.js';
import { ScenarioError, freePageHintDesign } from '../../src/scenario/schema.js';
import { defaultCompareRows, formatCompareGroups } from '../../src/report/compare.js';
import { runWithinMemory, scenarioMemoryEstimate, MODEL_BYTES_PER_PAGE } from '../../src/cli/memory_gate.js';
import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'balloonlab.js');

const scenario = (balloon: string) => `
name: h
guest: { memory: 256MiB }
balloon: ${balloon}
timeline:
  - { at: 100ms, action: process_fault, pid: 100, size: 96MiB }
  - { at: 1s, action: process_exit, pid: 100 }
  - { at: 2s, action: migrate, max_bandwidth: 100GiB, downtime_limit: 2s, wait: 60s }
`;

function errorOf(text: string): string {
  try {
    loadScenarioText(text, 'bad.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, `expected a ScenarioError, got ${String(e)}`);
    return e.message;
  }
  assert.fail('no error');
}

test('free_page_hint takes false, true, upstream or v33; free_page_hint_buffer only with v33; bad values name the field', () => {
  for (const [b, want] of [['{ free_page_hint: false }', 'off'], ['{ free_page_hint: true }', 'upstream'], ['{ free_page_hint: upstream }', 'upstream'], ['{ free_page_hint: v33 }', 'v33'], ['{ free_page_hint: v33, free_page_hint_buffer: sized }', 'v33'], ['false', 'off']] as const) {
    assert.equal(freePageHintDesign(loadScenarioText(scenario(b), 'ok.yaml').base.balloon), want, b);
  }
  assert.equal(errorOf(scenario('{ free_page_hint: v34 }')), 'bad.yaml: balloon.free_page_hint: expected false, true (= upstream), upstream or v33');
  assert.equal(errorOf(scenario('{ free_page_hint: 1 }')), 'bad.yaml: balloon.free_page_hint: expected false, true (= upstream), upstream or v33');
  assert.match(errorOf(scenario('{ free_page_hint: v33, free_page_hint_buffer: huge }')), /^bad\.yaml: balloon\.free_page_hint_buffer: .*"fixed"\|"sized"/);
  assert.match(errorOf(scenario('{ free_page_hint: upstream, free_page_hint_buffer: sized }')), /^bad\.yaml: balloon\.free_page_hint_buffer: only with free_page_hint: v33 .*got free_page_hint: upstream$/);
  assert.match(errorOf(scenario('{ free_page_hint_buffer: fixed }')), /^bad\.yaml: balloon\.free_page_hint_buffer: only with free_page_hint: v33/);
  assert.match(errorOf(scenario('{ free_page_hint: v33, hint_action: discard }')), /^bad\.yaml: balloon\.hint_action: v33's hinted blocks stay free/);
  assert.match(errorOf(scenario('{ free_page_hint: v33, hint_ack_on_stop: true }')), /^bad\.yaml: balloon\.hint_ack_on_stop: v33 has no STOP/);
});

test('the CLI refuses a bad design with exit 2 and one line naming the field', () => {
  const dir = tempDir('bl-hint-');
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, scenario('{ free_page_hint: v35 }'));
  const r = spawnSync(process.execPath, [bin, 'run', f, '--quiet'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /balloon\.free_page_hint: expected false, true \(= upstream\), upstream or v33/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('true is upstream: the same run, and only a named design adds balloon.free_page_hint to the document', () => {
  const run = (b: string) => runScenario(loadScenarioText(scenario(b), 'h.yaml').base, { check: true }).doc;
  const t = run('{ free_page_hint: true }'), u = run('{ free_page_hint: upstream }');
  assert.equal(t.balloon.free_page_hint, undefined);
  const summary = u.balloon.free_page_hint!;
  assert.equal(summary.design, 'upstream');
  delete u.balloon.free_page_hint;
  assert.equal(JSON.stringify(t), JSON.stringify(u));
  assert.equal(t.migration?.destination_check, 'ok');
  // upstream's blocks are zeroed as they are allocated (init_on_alloc, Debian's default): counted
  assert.ok(summary.totals.zeroed_pages >= summary.totals.hinted_pages && summary.totals.zero_ns > 0);
  assert.equal(summary.totals.lock_hold_ns, 0);
  const v = run('{ free_page_hint: v33 }').balloon.free_page_hint!;
  assert.equal(v.design, 'v33');
  assert.equal(v.buffer, 'fixed');
  assert.equal(v.totals.zeroed_pages, 0, 'v33 allocates nothing to hint (the fixed buffer is probe-time)');
  assert.ok(v.first !== null && v.first.lock_hold_ns > 0 && v.first.share_pct > 80);
});

test('hint-designs-small: every variant checked and destination-checked, the JSON byte-identical across two runs, compare prints a table per group', () => {
  const file = join(root, 'scenarios', 'hint-designs-small.yaml');
  const sf = loadScenarioText(readFileSync(file, 'utf8'), file);
  assert.ok(sf.variants.length >= 6);
  const once = (): { json: string; docs: ResultDocument[] } => {
    const docs = sf.variants.map((v) => runScenario(v.scenario, { check: true, source: `${file} (${v.name})` }).doc);
    return { json: JSON.stringify(docs), docs };
  };
  const a = once(), b = once();
  assert.equal(a.json, b.json);
  for (const [i, d] of a.docs.entries()) {
    assert.equal(d.migration?.destination_check, 'ok', sf.variants[i]!.name);
    assert.ok(d.balloon.free_page_hint, sf.variants[i]!.name);
  }
  const names = sf.variants.map((v) => v.name);
  const text = formatCompareGroups(sf.base.name, names, a.docs, defaultCompareRows(a.docs));
  const blocks = text.split('\n\n');
  assert.equal(blocks.length, new Set(names.map((n) => n.slice(0, n.lastIndexOf('/')))).size);
  assert.match(blocks[0]!, /^ +256MiB idle +256MiB idle/);
  assert.match(blocks[0]!.split('\n')[1]!, /upstream +v33 +v33-sized/);
  for (const row of ['Hint: free memory hinted (%)', 'Hint: latency (ms)', 'Hinting: allocs waiting on zone lock', 'Hinting: OOM kills', 'Hint: zeroing (ms)', 'Migration total-time (ms)', 'Migration transferred (MiB)', 'Migration downtime (ms)', 'Migration destination check ok']) {
    assert.ok(text.includes(row), row);
  }
  // names without a group: formatCompare's one table
  assert.equal(formatCompareGroups('s', ['a', 'b'], a.docs.slice(0, 2), defaultCompareRows(a.docs)).split('\n\n').length, 1);
});

test('compare runs no more variants at once than fit in memory: a 2 TiB guest runs alone', async () => {
  const big = loadScenarioText(scenario('{ free_page_hint: v33 }').replace('256MiB', '2TiB'), 'big.yaml').base;
  const small = loadScenarioText(scenario('{ free_page_hint: v33 }'), 'small.yaml').base;
  assert.equal(scenarioMemoryEstimate(big) - scenarioMemoryEstimate(small), ((2 * 1024 ** 4 - 256 * 1024 ** 2) / 4096) * MODEL_BYTES_PER_PAGE);
  const sizes = [1, 10, 10, 1, 1, 30];
  let inFlight = 0, used = 0, peakUsed = 0, peakRuns = 0;
  const order: number[] = [];
  const got = await runWithinMemory(sizes.length, 3, (i) => sizes[i]!, 20, async (i) => {
    inFlight++; used += sizes[i]!; peakRuns = Math.max(peakRuns, inFlight);
    if (inFlight > 1) peakUsed = Math.max(peakUsed, used);
    order.push(i);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--; used -= sizes[i]!;
    return i * 2;
  });
  assert.deepEqual(got, [0, 2, 4, 6, 8, 10], 'results in input order');
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5], 'started in order');
  assert.ok(peakUsed <= 20, `several at once only within the budget (${peakUsed})`);
  assert.ok(peakRuns <= 3);
  await assert.rejects(runWithinMemory(3, 2, () => 1, 10, async (i) => { if (i === 1) throw new Error('boom'); return i; }), /boom/);
});
