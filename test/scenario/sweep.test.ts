/**
 * Sweeps (scenario/sweep.ts, `balloonlab sweep`): the file is validated naming the
 * field; runs are the product of the value lists (first parameter slowest, seeds
 * fastest), each the base scenario with its values set and validated; `--jobs 2` gives
 * the bytes of `--jobs 1`, in the same order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validateSweep, sweepRuns, setPath } from '../../src/scenario/sweep.js';
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
  assert.match(refusal({ sweep: 'x', base: 'b.yaml', parameters: [{ path: 'seed', values: [1] }], colour: 1 }), /unknown field "colour"/);
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
