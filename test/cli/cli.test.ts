/** The balloonlab command end to end: exit codes, messages, outputs (CLI.md). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../src/version.js';

import { tempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const bin = join(root, 'bin', 'balloonlab.js');

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('the version matches package.json', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
  assert.equal(run('--version').out.trim(), VERSION);
});

test('run prints a summary; --json - prints the result document; two runs are byte-identical with --reproducible', () => {
  const a = run('run', 'scenarios/boot.yaml', '--quiet');
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /^scenario boot {2}seed 1 {2}guest 1GiB 1 vcpu\(s\)/);
  assert.match(a.out, /snapshot \(after burst\)/);
  const j1 = run('run', 'scenarios/boot.yaml', '--json', '-', '--reproducible', '--check');
  const j2 = run('run', 'scenarios/boot.yaml', '--json', '-', '--reproducible');
  assert.equal(j1.code, 0, j1.err);
  assert.equal(j1.out, j2.out);
  const doc = JSON.parse(j1.out) as Record<string, unknown>;
  for (const k of ['balloonlab', 'scenario', 'seed', 'guest', 'duration_ns', 'wall_ms', 'vmstat', 'balloon', 'events']) assert.ok(k in doc, k);
  assert.equal(doc.wall_ms, 0);
});

test('run --json FILE writes the file and nothing half-written is left on failure', () => {
  const dir = tempDir('balloonlab-');
  const out = join(dir, 'r.json');
  assert.equal(run('run', 'scenarios/boot.yaml', '--json', out, '--quiet').code, 0);
  assert.equal((JSON.parse(readFileSync(out, 'utf8')) as { scenario: string }).scenario, 'boot');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'name: x\nguest:\n  memory: 4GB\n');
  const r = run('run', bad, '--json', join(dir, 'never.json'));
  assert.equal(r.code, 2);
  assert.ok(!existsSync(join(dir, 'never.json')));
  assert.deepEqual(readdirSync(dir).sort(), ['bad.yaml', 'r.json']);
});

test('bad input exits 2 with one line naming what was wrong', () => {
  const cases: Array<[string[], RegExp]> = [
    [['run', 'no-such.yaml'], /no-such\.yaml: cannot read scenario file \(no such file\)/],
    [['proc', 'buddyinfo', '--memory', '4GB'], /--memory: unknown unit "GB"/],
    [['proc', 'slabtop'], /unknown file "slabtop" \(allowed: vmstat, buddyinfo, pagetypeinfo, meminfo, zoneinfo, slabinfo,/],
    [['proc', 'buddyinfo', '--memory', '100MiB'], /at least 128MiB/],
    [['bench', 'nope'], /unknown benchmark "nope" \(available: alloc, compaction, virtqueue, migration, scenario, host, scale\)/],
    [['run', 'scenarios/boot.yaml', '--seed', 'x'], /--seed: expected a whole number/],
    [['frobnicate'], /unknown command/],
  ];
  for (const [args, re] of cases) {
    const r = run(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, re);
    assert.equal(r.err.trim().split('\n').filter((l) => !/^\(Did you mean/.test(l)).length, 1, r.err);
  }
});

test('proc mem-usage prints makedumpfile\'s table for a booted guest, its rows adding up to the pages on the system', () => {
  const r = run('proc', 'mem-usage', '--memory', '1GiB');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^\nTYPE\t\tPAGES\t\t\tEXCLUDABLE\tDESCRIPTION\n-{70}\n/);
  const rows = [...r.out.matchAll(/^(ZERO|NON_PRI_CACHE|PRI_CACHE|USER|FREE|KERN_DATA)\t+(\d+)/gm)].map((m) => Number(m[2]));
  assert.equal(rows.length, 6);
  assert.equal(rows.reduce((a, b) => a + b, 0), 262144, 'no balloon: the rows are every page');
  assert.match(r.out, /\nTotal pages on system:\t262144 {10}\n/);
  assert.match(r.out, /\n# balloonlab: balloon pages are PG_offline; a -d 31 dump writes \d+ pages/);
});

test('proc buddyinfo --memory 4GiB prints the kernel layout for DMA, DMA32 and Normal', () => {
  const r = run('proc', 'buddyinfo', '--memory', '4GiB');
  assert.equal(r.code, 0, r.err);
  const lines = r.out.replace(/\n$/, '').split('\n');
  assert.equal(lines.length, 3);
  for (const [i, zone] of ['DMA', 'DMA32', 'Normal'].entries()) {
    assert.match(lines[i]!, new RegExp(`^Node 0, zone {1,8}${zone}( +\\d+){11} $`));
  }
  const p = run('proc', 'pagetypeinfo', '--memory', '4GiB');
  assert.match(p.out, /^Page block order: 9\nPages per block:  512\n/);
  assert.match(p.out, /Node    0, zone   Normal, type      Movable/);
});

test('proc at a point of a scenario, and kpageflags as binary', () => {
  const r = run('proc', 'vmstat', '--scenario', 'scenarios/boot.yaml', '--at', '150ms');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^nr_free_pages \d+\n/);
  const k = spawnSync(process.execPath, [bin, 'proc', 'kpageflags', '--memory', '128MiB'], { cwd: root });
  assert.equal(k.status, 0);
  assert.equal(k.stdout.length, 8 * (128 * 256));
  assert.equal(run('proc', 'vmstat', '--scenario', 'scenarios/boot.yaml', '--at', '10s').code, 2);
});

test('compare prints the variants side by side', () => {
  const r = run('compare', 'scenarios/boot.yaml', '--quiet');
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.match(lines[1]!, /kaslr +nokaslr$/);
  assert.match(r.out, /Pageblocks Unmovable \(end\) +\d+ \( +0\.00%\) +\d+ \( *-?\d+\.\d+%\)/);
  const j = JSON.parse(run('compare', 'scenarios/boot.yaml', '--json', '-').out) as { scenario: string; variants: { name: string }[] };
  assert.equal(j.scenario, 'boot');
  assert.deepEqual(j.variants.map((v) => v.name), ['kaslr', 'nokaslr']);
});

test('compare --jobs: variants in worker threads give the same bytes, in the same order, as one after another; a failing variant fails the command with its own exit code', () => {
  const one = run('compare', 'scenarios/balloon-compaction.yaml', '--reproducible', '--jobs', '1', '--json', '-');
  const two = run('compare', 'scenarios/balloon-compaction.yaml', '--reproducible', '--jobs', '2', '--json', '-');
  assert.equal(one.code, 0, one.err);
  assert.equal(two.code, 0, two.err);
  assert.ok(one.out.length > 1000);
  assert.equal(two.out, one.out, 'byte-identical');
  assert.equal(run('compare', 'scenarios/boot.yaml', '--jobs', '0').code, 2);
  // a variant whose timeline fails at run time: exit 2 and one line naming the variant, from the worker as from the main thread
  const dir = tempDir('balloonlab-jobs-');
  const f = join(dir, 'bad.yaml');
  writeFileSync(f, 'name: bad\nguest: { memory: 256MiB }\ntimeline:\n  - { at: 1s, action: process_exit, pid: 77 }\nvariants:\n  - { name: a }\n  - { name: b }\n');
  for (const jobs of ['1', '2']) {
    const r = run('compare', f, '--quiet', '--jobs', jobs);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /bad\.yaml \(variant a\): timeline\[0\] \(process_exit at 1s\): no process 77/);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
  }
});

test('the edges a new user hit: each bad input exits 2 with one line naming the file and the place', () => {
  const dir = tempDir('balloonlab-');
  const file = (name: string, text: string) => { const p = join(dir, name); writeFileSync(p, text); return p; };
  const doc = (guest: string, timeline: string, extra = '') => `name: edge\nguest:\n  ${guest}\n${extra}timeline:\n${timeline}`;
  const snap = '  - { at: 0s, action: snapshot }\n';
  const cases: Array<[string, string[], RegExp]> = [
    ['100TiB', ['run', file('huge.yaml', doc('memory: 100TiB', snap))], /huge\.yaml: guest\.memory: must be at most 2TiB/],
    ['memory not a multiple of 4MiB', ['run', file('odd.yaml', doc('memory: 1001MiB', snap))], /odd\.yaml: guest\.memory: .*multiple of 4MiB/],
    ['balloon_cycle step 0', ['run', file('step.yaml', doc('memory: 1GiB', '  - { at: 0s, action: balloon_cycle, period: 1s, size: 256MiB, step: 0MiB }\n'))],
      /step\.yaml: timeline\[0\]\.step: .*at least/],
    ['migrate max_bandwidth 0', ['run', file('bw.yaml', doc('memory: 1GiB', '  - { at: 0s, action: migrate, max_bandwidth: 0 }\n'))],
      /bw\.yaml: timeline\[0\]\.max_bandwidth: .*at least/],
    ['out-of-order timeline', ['run', file('order.yaml', doc('memory: 1GiB', '  - { at: 2s, action: snapshot }\n  - { at: 1s, action: snapshot }\n'))],
      /order\.yaml: timeline\[1\]\.at: 1s is before timeline\[0\]'s 2s/],
    ['cc_heap min > max', ['run', file('cc.yaml', doc('memory: 1GiB', '  - { at: 0s, action: kernel_build, jobs: 2, cc_heap_min: 64MiB, cc_heap_max: 8MiB }\n'))],
      /cc\.yaml: timeline\[0\]\.cc_heap_min: .*cc_heap_max/],
    ['free_pages of a missing tag', ['run', file('tag.yaml', doc('memory: 1GiB', '  - { at: 0s, action: free_pages, tag: x }\n'))],
      /tag\.yaml: timeline\[0\] \(free_pages at 0s\): no allocations are tagged "x"/],
    ['balloon: true', ['run', file('bool.yaml', doc('memory: 1GiB', snap, 'balloon: true\n'))], /bool\.yaml: balloon: expected false \(a machine without a balloon device\) or a mapping/],
    ['real-guest with 4GiB', ['real-guest', file('rg.yaml', doc('memory: 4GiB', snap))], /rg\.yaml: guest\.memory: the v86 real guest takes a multiple of 4MiB/],
    ['--json into a missing directory', ['run', 'scenarios/boot.yaml', '--json', '/proc/nope/x.json'], /--json: cannot write \/proc\/nope\/x\.json/],
  ];
  for (const [what, args, re] of cases) {
    const t0 = Date.now();
    const r = run(...args);
    assert.equal(r.code, 2, `${what}: exit ${r.code}: ${r.err}`);
    assert.match(r.err, re, what);
    assert.equal(r.err.trim().split('\n').length, 1, `${what}: ${r.err}`);
    assert.doesNotMatch(r.err, /\n\s+at /, `${what}: a stack trace`);
    if (what.startsWith('--json')) assert.ok(Date.now() - t0 < 5000, '--json is refused before the run');
  }
  const none = run();
  assert.equal(none.code, 2);
  assert.match(none.err + none.out, /Usage: balloonlab/);
});

test('a closed pipe ends quietly (proc kpageflags | head -c 100)', () => {
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${bin}" proc kpageflags --memory 1GiB | head -c 100 >/dev/null; echo "rc=$?"`], { cwd: root, encoding: 'utf8' });
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /rc=0/);
});

test('bench scale --sizes 1GiB: every phase timed, the destination and the invariants checked; sizes out of range refused', () => {
  const r = run('bench', 'scale', '--sizes', '1GiB');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { bench: string; runs: { memory: string; phases: { name: string; wall_ms: number; peak_rss_mib: number }[]; check_ok: boolean }[] };
  assert.equal(j.bench, 'scale');
  assert.equal(j.runs.length, 1);
  assert.equal(j.runs[0]!.memory, '1GiB');
  assert.deepEqual(j.runs[0]!.phases.map((p) => p.name), ['boot', 'fill', 'inflate 1/2 of RAM', 'hint round', 'migration', 'check']);
  assert.ok(j.runs[0]!.phases.every((p) => p.wall_ms >= 0 && p.peak_rss_mib > 0));
  assert.equal(j.runs[0]!.check_ok, true);
  assert.match(r.err, /bench scale: 1GiB: boot \d+\.\d s/);
  const bad = run('bench', 'scale', '--sizes', '4TiB');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--sizes: 4TiB: guest memory must be at most 2TiB/);
});

test('run --trace writes the guest\'s compaction and reclaim tracepoints in the kernel\'s trace format; refuses stdout and host scenarios', () => {
  const dir = tempDir('trace');
  const f = join(dir, 'trace.txt');
  const r = run('run', 'scenarios/real/qemu-highalloc.yaml', '--quiet', '--trace', f);
  assert.equal(r.code, 0, r.err);
  const lines = readFileSync(f, 'utf8').split('\n');
  assert.match(lines[0]!, /^# tracer: balloonlab/);
  const begin = lines.filter((l) => / mm_compaction_begin: zone_start=0x[0-9a-f]+ migrate_pfn=0x[0-9a-f]+ free_pfn=0x[0-9a-f]+ zone_end=0x[0-9a-f]+, mode=(a?sync)$/.test(l));
  const end = lines.filter((l) => / mm_compaction_end: .* status=(success|complete|partial_skipped|contended|continue|no_suitable_page)$/.test(l));
  assert.ok(begin.length > 10 && begin.length === end.length, `${begin.length} begin, ${end.length} end`);
  assert.ok(lines.some((l) => /^ +kswapd0 \[000\] +\d+\.\d{6}: mm_vmscan_kswapd_wake: nid=0 order=9$/.test(l)));
  assert.equal(run('run', 'scenarios/boot.yaml', '--trace', '-').code, 2);
  assert.equal(run('run', 'scenarios/host-overcommit.yaml', '--trace', join(dir, 'h.txt')).code, 2);
});
