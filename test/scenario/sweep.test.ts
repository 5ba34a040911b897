/**
 * Sweeps (scenario/sweep.ts, `balloonlab sweep`): the file is validated naming the
 * field (paths, ranges, figures); runs are the product of the value lists (first
 * parameter slowest, seeds fastest), each the base scenario with its values set and
 * validated; the figures are checked against the document the base writes; the
 * document, CSV and table; `--jobs 2` gives the bytes of `--jobs 1`, in the same order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { validateSweep, sweepRuns, sweepFigures, setPath, rangeValues } from '../../src/scenario/sweep.js';
import { sweepDocument, sweepCsv, formatSweep, deadFigures, missingFigures } from '../../src/report/sweep.js';
import { pathValue, pathStop, NAMED_FIGURES } from '../../src/report/sweep_figures.js';
import { sweepCharts } from '../../src/report/sweep_charts.js';
import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'balloonlab.js');
const MiB = 2 ** 20;

const base = `name: tiny
seed: 2
host: { memory: 1100MiB, swap: 64MiB }
guest: { memory: 256MiB, thp: never }
duration: 12s
vms:
  - name: idle
    count: 2
    min_memory: 128MiB
    timeline: [ { at: 0s, action: idle } ]
  - name: burst
    min_memory: 128MiB
    timeline:
      - { at: 5s, action: process_fault, pid: 100, size: 150MiB }
variants:
  - name: small
    host: { memory: 500MiB }
`;

function refusal(doc: unknown): string {
  try {
    validateSweep(doc, 's.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
}

test('sweep files are validated naming the field', () => {
  assert.match(refusal({ sweep: 'x', base: 'b.yaml' }), /s\.yaml: parameters: /);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'host memory', values: [1] }] }), /parameters\[0\]\.path: a dotted path/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [] }] }), /parameters\[0\]\.values/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }, { path: 'seed', values: [2] }] }), /seed is swept twice/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }], colour: 1 }), /unknown field "colour" \(allowed: sweep, base, variant, parameters, seeds, figures\)/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'host..memory', values: [1] }] }), /parameters\[0\]\.path: a dotted path/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'variants.0.host', values: [1] }] }), /parameters\[0\]\.path: variants\.0\.host: a sweep runs the base scenario/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }], seeds: [1] }), /parameters\[0\]\.path: seed is set by seeds:/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a' }] }), /parameters\[0\]: needs values \(a list\) or range/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', values: [1], range: { from: 1, to: 2, step: 1 } }] }), /parameters\[0\]: give values or range, not both/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', vals: [1] }] }), /parameters\[0\]: unknown field "vals" \(allowed: path, values, range\)/);
  // ranges: empty, a zero step, junk, a unit that fits none, too many values
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: 16, to: 10, step: 2 } }] }), /s\.yaml: parameters\[0\]\.range: empty: from 16 is above to 10/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: '2GiB', to: '1GiB', step: '1GiB' } }] }), /parameters\[0\]\.range: empty: from 2GiB is above to 1GiB/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: 1, to: 2, step: 0 } }] }), /parameters\[0\]\.range\.step: must be above 0/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: 1, to: 2, step: -1 } }] }), /parameters\[0\]\.range\.step: must be above 0/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: 'lots', to: 2, step: 1 } }] }), /parameters\[0\]\.range\.from: "lots" is not a number, a size \(512MiB\) or a time \(30s\)/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: '1GiB', to: '10s', step: 1 } }] }), /parameters\[0\]\.range\.to: unknown unit "s" in "10s" \(allowed: B, KiB, MiB, GiB, TiB\) \(the range is of sizes\)/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: '0ns', to: '9007200000000000', step: '1m' } }] }), /parameters\[0\]\.range\.to: time "9007200000000000" is too large/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: 0, to: 1e6, step: 1 } }] }), /parameters\[0\]\.range: 1000001 values, more than the 10000/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'a', range: { from: 1, to: 2 } }] }), /parameters\[0\]\.range\.step: /);
  // figures: unknown names, bad paths, twice
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }], figures: ['overcommit'] }), /s\.yaml: figures\[0\]: "overcommit" is not a figure: name one of overcommit_nominal, .*or give a dotted path into the result document \(its fields: balloonlab, /);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }], figures: ['nr_free_pages', 'hots.pswpin'] }), /figures\[1\]: "hots\.pswpin" is not a figure/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }], figures: ['host.pswpin', 'host.pswpin'] }), /figures\[1\]: host\.pswpin is named twice/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }], figures: ['host pswpin'] }), /figures\[0\]: a figure name/);
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }], figures: [] }), /figures: /);
});

test('ranges: numbers without drift, sizes and times written so they parse back exactly', () => {
  assert.deepEqual(rangeValues({ from: 0.1, to: 0.5, step: 0.1 }, 'r'), [0.1, 0.2, 0.3, 0.4, 0.5]);
  assert.deepEqual(rangeValues({ from: 1, to: 10, step: 4 }, 'r'), [1, 5, 9]);
  assert.deepEqual(rangeValues({ from: 3, to: 3, step: 1 }, 'r'), [3]);
  // sweep.property.test.ts, seed -807400901: -0.3 + 3 × 0.1 came out as 5.55e-17, not 0
  assert.deepEqual(rangeValues({ from: -0.3, to: 0, step: 0.1 }, 'r'), [-0.3, -0.2, -0.1, 0]);
  assert.deepEqual(rangeValues({ from: 1e-7, to: 3e-7, step: 1e-7 }, 'r'), [1e-7, 2e-7, 3e-7]);
  assert.deepEqual(rangeValues({ from: '512MiB', to: '2GiB', step: '512MiB' }, 'r'), ['512MiB', '1GiB', '1536MiB', '2GiB']);
  assert.deepEqual(rangeValues({ from: '10GiB', to: '16GiB', step: '2GiB' }, 'r'), ['10GiB', '12GiB', '14GiB', '16GiB']);
  assert.deepEqual(rangeValues({ from: '30s', to: '2m', step: '45s' }, 'r'), ['30s', '75s', '2m']);
  assert.deepEqual(rangeValues({ from: '250ms', to: '1s', step: '250ms' }, 'r'), ['250ms', '500ms', '750ms', '1s']);
  const s = validateSweep({ sweep: 'x', base: 'tiny.yaml', parameters: [{ path: 'host.memory', range: { from: '400MiB', to: '600MiB', step: '200MiB' } }] }, 's.yaml');
  assert.deepEqual(s.parameters, [{ path: 'host.memory', values: ['400MiB', '600MiB'], range: { from: '400MiB', to: '600MiB', step: '200MiB' } }]);
  assert.deepEqual(sweepRuns(s, base, 'tiny.yaml').map((r) => r.scenario.host.memory! / MiB), [400, 600]);
});

test('figures are checked against the document the base writes; the document, the CSV and the table carry them', () => {
  const s = validateSweep({ sweep: 'x', base: 'tiny.yaml', parameters: [{ path: 'host.policy', values: ['none', { name: 'mom', pressure_threshold: 0.3 }] }], figures: ['nr_free_pages'] }, 's.yaml');
  const runs = sweepRuns(s, base, 'tiny.yaml');
  assert.throws(() => sweepFigures(s, runs, 's.yaml'), /s\.yaml: figures\[0\]: nr_free_pages is a figure of single-guest scenarios; the base is a host \(vms:\) scenario \(its figures: overcommit_nominal, /);
  assert.throws(() => sweepFigures({ ...s, figures: ['host.pswpin', 'vmstat.pgfree'] }, runs, 's.yaml'), /figures\[1\]: vmstat\.pgfree: the host result document has no field "vmstat" \(its fields: balloonlab, scenario, seed, kind, duration_ns, wall_ms, host, vms\)/);
  assert.deepEqual(sweepFigures({ ...s, figures: null }, runs, 's.yaml').map((f) => f.name).slice(0, 2), ['overcommit_logical_mean', 'host_free_min_mib']);
  const figures = sweepFigures({ ...s, figures: ['guest_allocstall', 'vms.burst.rss_bytes', 'vms.9.rss_bytes', 'virtual_time_s'] }, runs, 's.yaml');
  assert.deepEqual(figures.map((f) => [f.label, f.path]), [['Guest allocstall', null], ['vms.burst.rss_bytes', 'vms.burst.rss_bytes'], ['vms.9.rss_bytes', 'vms.9.rss_bytes'], ['Virtual time (s)', null]]);
  const fake = (rss: number) => ({ ok: true as const, doc: { kind: 'host', duration_ns: 12e9, vms: [{ name: 'idle-1', allocstall: 1, rss_bytes: 5 }, { name: 'burst', allocstall: 2, rss_bytes: rss }], host: { memory_bytes: 1 } } as never });
  const doc = sweepDocument({ ...s, figures: null }, runs, figures, [fake(7), { ok: false, kind: 'input', message: 'bad, "quoted"\nline' }]);
  assert.deepEqual(doc.runs[0], { index: 0, point: { 'host.policy': 'none' }, seed: 2, figures: { guest_allocstall: 3, 'vms.burst.rss_bytes': 7, 'vms.9.rss_bytes': null, virtual_time_s: 12 }, result: fake(7).doc });
  assert.deepEqual(doc.runs[1], { index: 1, point: { 'host.policy': { name: 'mom', pressure_threshold: 0.3 } }, seed: 2, error: { kind: 'input', message: 'bad, "quoted"\nline' } });
  assert.equal(sweepCsv(doc), 'index,host.policy,seed,guest_allocstall,vms.burst.rss_bytes,vms.9.rss_bytes,virtual_time_s,error\n0,none,2,3,7,,12,\n1,"{""name"":""mom"",""pressure_threshold"":0.3}",2,,,,,"input: bad, ""quoted""\nline"\n');
  assert.equal(formatSweep(doc, figures), 'sweep x: 2 runs, 1 failed\nhost.policy  seed  Guest allocstall  vms.burst.rss_bytes  vms.9.rss_bytes  Virtual time (s)\nnone         2                    3                    7                -            12.000\nmom          2               failed\n');
  assert.deepEqual(deadFigures(doc), [{ index: 2, name: 'vms.9.rss_bytes', why: 'vms is a list of 2 (names: idle-1, burst): no entry "9"' }]);
  assert.deepEqual(missingFigures(doc), []);
  const two = sweepDocument({ ...s, figures: null }, runs, figures, [fake(7), { ok: true, doc: { kind: 'host', duration_ns: 1, vms: [], host: {} } as never }]);
  assert.deepEqual(missingFigures(two), [{ name: 'vms.burst.rss_bytes', runs: 1, of: 2 }]);
  // a chart per figure, the first parameter along x
  const charts = sweepCharts(two);
  assert.deepEqual(charts.map((c) => c.name), ['sweep-guest-allocstall', 'sweep-vms-burst-rss-bytes', 'sweep-vms-9-rss-bytes', 'sweep-virtual-time-s']);
  assert.deepEqual((charts[3]!.spec as { data: { values: unknown[] } }).data.values, [{ x: 'none', line: 'x', seed: 2, value: 12 }, { x: 'mom', line: 'x', seed: 2, value: 1e-9 }]);
});

test('a path figure reads numbers only, through lists by index or by name; pathStop says where it stops', () => {
  const d = { host: { a: 1, s: 'x', n: null }, vms: [{ name: 'a', v: 2 }, { name: 'b', v: 3 }] };
  assert.equal(pathValue(d, 'host.a'), 1);
  assert.equal(pathValue(d, 'vms.1.v'), 3);
  assert.equal(pathValue(d, 'vms.b.v'), 3);
  for (const p of ['host.s', 'host.n', 'host.b', 'vms', 'vms.c.v', 'host.a.b', 'constructor', 'host.toString']) assert.equal(pathValue(d, p), undefined, p);
  assert.equal(pathStop(d, 'host.s'), 'host.s is "x", not a number');
  assert.equal(pathStop(d, 'host.b'), 'host has no field "b" (its fields: a, s, n)');
  assert.equal(pathStop(d, 'host.a.b'), 'host.a is 1, not an object');
  // every named figure has a distinct name, and docs/sweeps.md lists each
  assert.equal(new Set(NAMED_FIGURES.map((f) => f.name)).size, NAMED_FIGURES.length);
  const docs = readFileSync(join(root, 'docs', 'sweeps.md'), 'utf8');
  for (const f of NAMED_FIGURES) assert.ok(docs.includes(`\`${f.name}\``), `docs/sweeps.md does not list the figure ${f.name}`);
});

test('runs are the product in order (first parameter slowest, seeds fastest), each the base with the values set and validated', () => {
  const s = validateSweep({ sweep: 'x', base: 'tiny.yaml', parameters: [{ path: 'host.memory', values: ['400MiB', '600MiB'] }, { path: 'host.policy', values: ['none', { name: 'mom', pressure_threshold: 0.3 }] }], seeds: [7, 8] }, 's.yaml');
  const runs = sweepRuns(s, base, 'tiny.yaml');
  assert.equal(runs.length, 8);
  assert.deepEqual(runs.map((r) => [r.scenario.host.memory! / MiB, r.scenario.host.policy!.name, r.seed]), [
    [400, 'none', 7], [400, 'none', 8], [400, 'mom', 7], [400, 'mom', 8], [600, 'none', 7], [600, 'none', 8], [600, 'mom', 7], [600, 'mom', 8],
  ]);
  assert.deepEqual(runs[2]!.scenario.host.policy!.options, { pressure_threshold: 0.3 });
  assert.equal(runs[2]!.label, 'host.memory=400MiB host.policy=mom seed=7');
  // from a variant, and through a list by index
  const v = sweepRuns(validateSweep({ sweep: 'v', base: 'tiny.yaml', variant: 'small', parameters: [{ path: 'vms.0.count', values: [1, 3] }] }, 's.yaml'), base, 'tiny.yaml');
  assert.deepEqual(v.map((r) => [r.scenario.host.memory! / MiB, r.scenario.vms!.length]), [[500, 2], [500, 4]]);
  // a bad value is refused naming the run and the field
  assert.throws(() => sweepRuns(validateSweep({ sweep: 'b', base: 'tiny.yaml', parameters: [{ path: 'host.memory', values: ['lots'] }] }, 's.yaml'), base, 'tiny.yaml'), /b: run 0 \(host\.memory=lots\): host\.memory/);
  assert.throws(() => sweepRuns(validateSweep({ sweep: 'b', base: 'tiny.yaml', variant: 'big', parameters: [{ path: 'seed', values: [1] }] }, 's.yaml'), base, 'tiny.yaml'), /has no variant "big" \(its variants: small\)/);
});

test('setPath copies, creating objects on the way; a list takes an index', () => {
  const d = { a: { b: 1 }, l: [{ x: 1 }, { x: 2 }] };
  assert.deepEqual(setPath(d, 'a.c.d', 5), { a: { b: 1, c: { d: 5 } }, l: [{ x: 1 }, { x: 2 }] });
  assert.deepEqual(setPath(d, 'l.1.x', 9), { a: { b: 1 }, l: [{ x: 1 }, { x: 9 }] });
  assert.deepEqual(d, { a: { b: 1 }, l: [{ x: 1 }, { x: 2 }] }, 'the input is untouched');
  assert.throws(() => setPath(d, 'l.5.x', 1), /not an index/);
});

test('balloonlab sweep --jobs 2: the same bytes, in the same order, as --jobs 1', () => {
  const dir = tempDir('balloonlab-sweep-');
  writeFileSync(join(dir, 'tiny.yaml'), base);
  writeFileSync(join(dir, 's.yaml'), 'sweep: t\nbase: tiny.yaml\nparameters:\n  - { path: host.memory, values: [400MiB, 900MiB] }\n  - { path: host.policy, values: [none, proxmox] }\n');
  const run = (jobs: string) => spawnSync(process.execPath, [bin, 'sweep', join(dir, 's.yaml'), '--reproducible', '--jobs', jobs, '--json', '-'], { cwd: root, encoding: 'utf8' });
  const one = run('1'), two = run('2');
  assert.equal(one.status, 0, one.stderr);
  assert.equal(two.status, 0, two.stderr);
  assert.equal(two.stdout, one.stdout);
  const doc = JSON.parse(one.stdout) as { runs: Array<{ point: Record<string, unknown>; result: { host: { memory_bytes: number; policy: string } } }> };
  assert.deepEqual(doc.runs.map((r) => [r.result.host.memory_bytes / MiB, r.result.host.policy]), [[400, 'none'], [400, 'proxmox'], [900, 'none'], [900, 'proxmox']]);
  const table = spawnSync(process.execPath, [bin, 'sweep', join(dir, 's.yaml'), '--reproducible', '--jobs', '1'], { cwd: root, encoding: 'utf8' });
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /^sweep t: 4 runs\nhost\.memory +host\.policy +seed +Overcommit logical mean/);
  assert.equal(table.stdout.trim().split('\n').length, 6);
});

test('balloonlab sweep: bad sweep files exit 2 naming the file and the field; --csv writes the figures; a failed run keeps its place and fails the command', () => {
  const dir = tempDir('balloonlab-sweep-');
  writeFileSync(join(dir, 'tiny.yaml'), base);
  writeFileSync(join(dir, 'g.yaml'), 'name: g\nguest: { memory: 128MiB }\nduration: 2s\ntimeline:\n  - { at: 1s, action: process_fault, pid: 100, size: 16MiB }\n');
  const sweep = (name: string, text: string, ...args: string[]) => {
    writeFileSync(join(dir, name), text);
    return spawnSync(process.execPath, [bin, 'sweep', join(dir, name), '--reproducible', '--jobs', '1', ...args], { cwd: root, encoding: 'utf8' });
  };
  for (const [text, want] of [
    ['sweep: t\nbase: tiny.yaml\nparameters: [ { path: host.memory, range: { from: 2GiB, to: 1GiB, step: 1GiB } } ]\n', /e\.yaml: parameters\[0\]\.range: empty: from 2GiB is above to 1GiB/],
    ['sweep: t\nbase: tiny.yaml\nparameters: [ { path: host.memroy, values: [1GiB] } ]\n', /t: run 0 \(host\.memroy=1GiB\): host: unknown field "memroy"/],
    ['sweep: t\nbase: tiny.yaml\nparameters: [ { path: vms.7.count, values: [1] } ]\n', /t: parameters: vms\.7\.count: 7 is not an index of a list of 2/],
    ['sweep: t\nbase: tiny.yaml\nparameters: [ { path: seed, values: [1] } ]\nfigures: [oom]\n', /e\.yaml: figures\[0\]: "oom" is not a figure/],
    ['sweep: t\nbase: tiny.yaml\nparameters: [ { path: seed, values: [1] } ]\nfigures: [highalloc_pass1_pct]\n', /e\.yaml: figures\[0\]: highalloc_pass1_pct is a figure of single-guest scenarios/],
  ] as const) {
    const r = sweep('e.yaml', text);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, want);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '');
  }
  // a path that reaches nothing in any run: the outputs are written, then exit 2 naming it
  const dead = sweep('d.yaml', 'sweep: d\nbase: g.yaml\nparameters: [ { path: seed, values: [1, 2] } ]\nfigures: [vmstat.nr_free_pages, vmstat.no_such]\n', '--csv', join(dir, 'd.csv'));
  assert.equal(dead.status, 2, dead.stderr);
  assert.match(dead.stderr, /d\.yaml: figures\[1\]: vmstat\.no_such reached no number in any run \(vmstat has no field "no_such" \(its fields: nr_free_pages, /);
  assert.match(readFileSync(join(dir, 'd.csv'), 'utf8'), /^index,seed,vmstat\.nr_free_pages,vmstat\.no_such\n0,1,\d+,\n1,2,\d+,\n$/);
  // one run fails (a mapping larger than the guest's RAM and swap): the others are written, exit 2
  const failing = sweep('f.yaml', 'sweep: f\nbase: g.yaml\nparameters: [ { path: timeline.0.size, values: [16MiB, 4GiB] } ]\n', '--json', join(dir, 'f.json'), '--csv', join(dir, 'f.csv'));
  assert.equal(failing.status, 2, failing.stderr);
  assert.match(failing.stderr, /run 1 \(timeline\.0\.size=4GiB\) failed: input: .*mmap of 4294967296 bytes failed: ENOMEM/);
  assert.match(failing.stderr, /balloonlab: sweep f: 1 of 2 runs failed \(run 1; .*f\.json and .*f\.csv hold the others and each failure\); .*f\.yaml \(run 1: timeline\.0\.size=4GiB\)/);
  assert.match(failing.stdout, /^sweep f: 2 runs, 1 failed\n.*\n16MiB +1 +\d+ .*\n4GiB +1 +failed\n$/);
  const doc = JSON.parse(readFileSync(join(dir, 'f.json'), 'utf8')) as { runs: Array<{ result?: unknown; error?: { kind: string } }> };
  assert.ok(doc.runs[0]!.result);
  assert.equal(doc.runs[1]!.error!.kind, 'input');
  // plot draws one chart per figure from the sweep's document
  const plot = spawnSync(process.execPath, [bin, 'plot', join(dir, 'f.json'), '--out', join(dir, 'plots')], { cwd: root, encoding: 'utf8' });
  assert.equal(plot.status, 0, plot.stderr);
  assert.deepEqual(plot.stdout.trim().split('\n').map((l) => l.split('  ')[0]!.replace(/^.*\//, '')), ['sweep-nr-free-pages.svg', 'sweep-oom-kills.svg', 'sweep-balloon-inflate.svg', 'sweep-host-rss-mib.svg', 'sweep-virtual-time-s.svg']);
  assert.match(readFileSync(join(dir, 'plots', 'sweep-nr-free-pages.svg'), 'utf8'), /^<svg[\s\S]*nr_free_pages over timeline\.0\.size/);
  assert.match(readFileSync(join(dir, 'f.csv'), 'utf8'), /^index,timeline\.0\.size,seed,nr_free_pages,oom_kills,balloon_inflate,host_rss_mib,virtual_time_s,error\n0,16MiB,1,\d+,0,0,[\d.]+,2,\n1,4GiB,1,,,,,,input: /);
});
