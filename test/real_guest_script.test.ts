/**
 * Real-guest scripts without a real guest: the script schema's errors (each names its
 * field), and the model half of `balloonlab real-guest --diff` on a tiny script.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ScenarioError } from '../src/scenario/schema.js';
import {
  loadRealGuestScriptText, validateRealGuestScript, runModelSide, diffRows, formatTable, summariseTrace, type HintRound,
} from '../src/integrations/v86/script.js';

const MiB = 2 ** 20;

function err(doc: unknown): string {
  try {
    validateRealGuestScript(doc, 's.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e.message;
  }
  assert.fail('expected a ScenarioError');
}

test('real-guest script: defaults and step forms', () => {
  const s = loadRealGuestScriptText('name: t\nsteps:\n  - balloon: { value: 96MiB }\n  - wait: { time: 1s }\n  - stats: {}\n  - shell: { cmd: "echo hi" }\n  - alloc: { size: 8MiB }\n', 't.yaml');
  assert.equal(s.memory, 128 * MiB);
  assert.equal(s.balloon.deflate_on_oom, false);
  assert.equal(s.balloon.page_poison, true);
  assert.deepEqual(s.steps.map((x) => x.kind), ['balloon', 'wait', 'stats', 'shell', 'alloc']);
  assert.deepEqual(s.steps[0], { kind: 'balloon', value: 96 * MiB, timeout: 60e9 });
  assert.deepEqual(s.steps[1], { kind: 'wait', time: 1e9 });
});

test('real-guest script: errors name the field', () => {
  assert.match(err({ steps: [{ wait: { time: '1s' } }] }), /^s\.yaml: name: /);
  assert.match(err({ name: 'x' }), /^s\.yaml: steps: required field is missing/);
  assert.match(err({ name: 'x', steps: [{ inflate: {} }] }), /^s\.yaml: steps\[0\]: unknown action "inflate" \(allowed: balloon, wait, stats, free_page_hint, shell, alloc\)/);
  assert.match(err({ name: 'x', steps: [{ balloon: {} }] }), /^s\.yaml: steps\[0\]\.balloon\.value: required: a size/);
  assert.match(err({ name: 'x', steps: [{ wait: { time: '1s' } }, { balloon: { value: '96MB' } }] }), /^s\.yaml: steps\[1\]\.balloon\.value: unknown unit "MB"/);
  assert.match(err({ name: 'x', steps: [{ balloon: { value: '96MiB', when: 1 } }] }), /^s\.yaml: steps\[0\]\.balloon: unknown field "when"/);
  assert.match(err({ name: 'x', steps: [{ balloon: { value: '96MiB' }, wait: { time: '1s' } }] }), /^s\.yaml: steps\[0\]: expected exactly one action/);
  assert.match(err({ name: 'x', steps: ['balloon'] }), /^s\.yaml: steps\[0\]: expected a mapping with one action/);
  assert.match(err({ name: 'x', balloon: { deflate_on_oom: 'yes' }, steps: [{ stats: {} }] }), /^s\.yaml: balloon\.deflate_on_oom: /);
  assert.match(err({ name: 'x', balloon: { reporting: true }, steps: [{ stats: {} }] }), /^s\.yaml: balloon: unknown field "reporting"/);
  assert.match(err({ name: 'x', steps: [{ free_page_hint: { rounds: 2 } }] }), /^s\.yaml: steps\[0\]\.free_page_hint: needs balloon\.free_page_hint: true/);
  assert.match(err({ name: 'x', balloon: { free_page_hint: true }, steps: [{ free_page_hint: { rounds: 0 } }] }), /^s\.yaml: steps\[0\]\.free_page_hint\.rounds: /);
  assert.match(err({ name: 'x', memory: '130MiB', steps: [{ stats: {} }] }), /^s\.yaml: memory: must be a multiple of 4MiB/);
  assert.match(err({ name: 'x', steps: [{ shell: { cmd: '' } }] }), /^s\.yaml: steps\[0\]\.shell\.cmd: /);
  assert.throws(() => loadRealGuestScriptText('name: [x\n', 'bad.yaml'), /bad\.yaml: not valid YAML/);
});

test('the standard script validates', () => {
  const s = loadRealGuestScriptText(readFileSync(new URL('../../scripts/real-guest/standard.yaml', import.meta.url), 'utf8'), 'standard.yaml');
  assert.equal(s.balloon.deflate_on_oom, false);
  assert.equal(s.balloon.free_page_hint, true);
  assert.deepEqual(s.steps.map((x) => x.kind), ['balloon', 'stats', 'balloon', 'free_page_hint', 'shell']);
});

test('--diff model side: a tiny script on the model guest', async () => {
  const s = loadRealGuestScriptText([
    'name: tiny', 'memory: 128MiB', 'balloon: { free_page_hint: true }', 'steps:',
    '  - balloon: { value: 112MiB }', '  - stats: {}', '  - alloc: { size: 8MiB }', '  - balloon: { value: 128MiB }',
    '  - free_page_hint: { rounds: 2 }', '  - shell: { cmd: "true" }', '  - wait: { time: 1s }',
  ].join('\n'), 'tiny.yaml');
  const r = await runModelSide(s);
  assert.equal(r.kind, 'model');
  assert.ok(r.ok, r.steps.map((x) => x.text).join('\n'));
  assert.equal(r.device.needs_reset, null);
  assert.deepEqual(r.device.features, ['STATS_VQ', 'FREE_PAGE_HINT']);
  // 16 MiB = 4096 PFNs each way, 256 PFNs per buffer (the driver's array)
  assert.deepEqual(r.device.trace.inflate, { count: 16, total: 4096, min: 256, median: 256, max: 256 });
  assert.equal(r.device.trace.deflate.total, 4096);
  assert.equal(r.guest.vmstat.balloon_inflate, r.device.counters.inflatePfns);
  assert.equal(r.guest.vmstat.balloon_deflate, r.device.counters.deflatePfns);
  assert.equal(r.device.actual_bytes, 128 * MiB);
  const b0 = r.steps[0]!.data;
  assert.equal((b0.memtotal_before_kib as number) - (b0.memtotal_after_kib as number), 16 * 1024);
  // The model's driver is set up as Linux 6.1 (the real guest's kernel): tags 0-9.
  assert.deepEqual(r.device.trace.stats_tags, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const rounds = r.steps[4]!.data.rounds as HintRound[];
  assert.deepEqual(rounds.map((x) => x.requested), [0x80000000, 0x80000001]);
  assert.deepEqual(rounds.map((x) => x.echoed), [[0x80000000, 0], [0x80000001, 0]]);
  assert.ok(rounds.every((x) => x.stop && x.recovered && x.ranges.length > 0));
  assert.match(r.steps[5]!.text, /skipped/);
  // The side-by-side table renders (the model against itself: every row equal).
  const rows = diffRows(r, r);
  assert.ok(rows.every(([, a, b]) => a === b));
  assert.match(formatTable(['', 'real', 'model'], rows), /\| inflate PFNs per buffer +\| 16 bufs, 4096 total \(min 256 \/ median 256 \/ max 256\)/);
});

test('summariseTrace: distributions and hint ids', () => {
  const t = summariseTrace([
    { t_ns: 0, kind: 'inflate', pfns: 256 }, { t_ns: 1, kind: 'inflate', pfns: 100 }, { t_ns: 2, kind: 'actual', actual: 356 },
    { t_ns: 3, kind: 'stats', tags: [0, 5] }, { t_ns: 4, kind: 'hint-cmd', id: 0x80000000 }, { t_ns: 5, kind: 'hint', pages: 1024 },
    { t_ns: 6, kind: 'hint-cmd', id: 0 }, { t_ns: 7, kind: 'report', blocks: 2, pages: 1024 },
  ]);
  assert.deepEqual(t.inflate, { count: 2, total: 356, min: 100, median: 178, max: 256 });
  assert.equal(t.actual_updates, 1);
  assert.deepEqual(t.stats_tags, [0, 5]);
  assert.deepEqual(t.hint_ids_echoed, [0x80000000, 0]);
  assert.deepEqual(t.reports, { buffers: 1, blocks: 2, pages: 1024 });
});
