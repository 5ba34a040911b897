/** The balloonlab command end to end: exit codes, messages, outputs (CLI.md). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../src/version.js';

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
  const dir = mkdtempSync(join(tmpdir(), 'balloonlab-'));
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
    [['proc', 'slabinfo'], /unknown file "slabinfo" \(allowed: vmstat, buddyinfo/],
    [['proc', 'buddyinfo', '--memory', '100MiB'], /at least 128MiB/],
    [['bench', 'nope'], /unknown benchmark "nope" \(available: alloc, compaction, virtqueue, migration, scenario\)/],
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
