/**
 * Host scenarios (`vms:`, scenario/host_schema.ts and host_runner.ts): validation names
 * the field; each VM runs its own timeline on its own clock; an overcommitted host swaps
 * guest pages and past its swap OOM-kills a VM; the run is deterministic and passes the
 * checker throughout; a file without `vms:` parses as it did.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadScenarioText } from '../../src/scenario/runner.js';
import { runHostScenario } from '../../src/scenario/host_runner.js';
import { vmSeed } from '../../src/scenario/host_schema.js';

const MiB = 2 ** 20;

const overcommit = (host: string, extra = '') => `name: tiny-host
seed: 5
host: { ${host} }
guest: { memory: 256MiB, thp: never }
duration: 20s
vms:
  - name: idle
    timeline: [ { at: 0s, action: idle } ]
  - name: burst
    count: 2
    timeline:
      - { at: 2s, action: process_fault, pid: 100, size: 150MiB }
      - { at: 12s, action: process_exit, pid: 100 }
${extra}`;

function load(text: string) {
  return loadScenarioText(text, 't.yaml').base;
}

function refusal(text: string): string {
  try {
    load(text);
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
}

test('vms: each VM is a scenario of its own, merged over the top-level guest and balloon; count names them name-1 .. name-N, seeds from the scenario seed', () => {
  const s = load(overcommit('memory: 1GiB', '    guest: { vcpus: 2 }\n'));
  assert.deepEqual(s.vms!.map((v) => v.name), ['idle', 'burst-1', 'burst-2']);
  assert.equal(s.vms![1]!.scenario.guest.memory, 256 * MiB);
  assert.equal(s.vms![1]!.scenario.guest.vcpus, 2);
  assert.equal(s.vms![0]!.scenario.guest.vcpus, 1);
  assert.deepEqual(s.vms!.map((v) => v.scenario.seed), [0, 1, 2].map((k) => vmSeed(5, k)));
  assert.equal(s.vms![2]!.scenario.timeline[0]!.action, 'process_fault');
  assert.equal(s.host.memory, 1024 * MiB);
});

test('a file without vms: parses exactly as before (no host fields appear)', () => {
  const s = load('name: single\nguest: { memory: 256MiB }\ntimeline: [ { at: 0s, action: snapshot } ]\n');
  assert.equal(s.vms, undefined);
  assert.deepEqual(s.host, { mem_prealloc: false, accel: 'kvm' });
});

test('bad host scenarios are refused naming the field', () => {
  assert.match(refusal(overcommit('swap: 1GiB')), /host\.memory: required with vms:/);
  assert.match(refusal(overcommit('memory: 1GiB, policy: lru')), /host\.policy\.name: unknown or missing policy "lru" \(allowed: none, reporting, mom, proxmox, chromeos-limit-cache, chromeos-balance-available\)/);
  assert.match(refusal(overcommit('memory: 1GiB, policy: { name: reporting, pressure: 1 }')), /host\.policy: unknown option "pressure" for policy reporting \(allowed: none\)/);
  assert.match(refusal(overcommit('memory: 1GiB', '    colour: blue\n')), /vms\[1\]\.\(the entry\): unknown field "colour"/);
  assert.match(refusal(overcommit('memory: 1GiB', '  - name: idle\n')), /vms\[2\]\.name: duplicate VM name "idle"/);
  assert.match(refusal(overcommit('memory: 1GiB').replace('pid: 100, size: 150MiB', 'pid: 100, size: lots')), /vms\[1\] \(burst-1\): timeline\[0\]\.size/);
  assert.match(refusal(overcommit('memory: 1GiB') + 'timeline: [ { at: 0s, action: snapshot } ]\n'), /timeline: with vms: each VM has its own timeline/);
});

test('an overcommitted host swaps guest pages and past its swap kills the largest QEMU; the checker holds throughout; the run is deterministic', () => {
  const s = load(overcommit('memory: 400MiB, swap: 32MiB'));
  const a = runHostScenario(s, { check: true }).doc;
  const b = runHostScenario(s, { check: true }).doc;
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  const h = a.host;
  assert.ok(h.pswpout > 0, 'the host swapped guest pages out');
  assert.equal(h.oom_kills.length, 1, 'one VM killed');
  const killed = a.vms.filter((v) => !v.running);
  assert.equal(killed.length, 1);
  assert.match(killed[0]!.name, /^burst-/);
  assert.equal(killed[0]!.killed_at_ns, h.oom_kills[0]!.t_ns);
  assert.ok(killed[0]!.killed_at_ns! >= 2e9 && killed[0]!.killed_at_ns! < 12e9, 'killed while bursting');
  // the survivors run to the end: the other burst exits at 12 s
  const other = a.vms.find((v) => v.running && v.name.startsWith('burst-'))!;
  assert.ok(other.events.some((e) => e.kind === 'process_exit'));
  assert.ok(h.peak_swap_used_bytes <= h.swap_bytes);
  assert.equal(a.duration_ns, 20e9);
});

test('with room for everyone nothing is swapped or killed, and each VM\'s RSS is its own', () => {
  const a = runHostScenario(load(overcommit('memory: 2GiB, swap: 64MiB'))).doc;
  assert.equal(a.host.pswpout, 0);
  assert.equal(a.host.oom_kills.length, 0);
  const [idle, b1] = a.vms;
  assert.ok(b1!.rss_series.some(([, r]) => r > idle!.rss_bytes + 120 * MiB), 'a burst backs its 150 MiB');
  assert.equal(a.host.series[0]![3], 3 * 256 * MiB, 'the guests\' RAM summed');
});
