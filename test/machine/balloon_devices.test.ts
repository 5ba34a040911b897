/**
 * Several balloon devices in one guest (issue 16): each its own transport, queues,
 * driver instance and balloon_dev_info; QMP addresses each by id; compaction moves
 * each device's pages through the device the page belongs to (its mapping); the
 * checker checks every device against the host's count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadScenarioText, runScenario, scenarioVmConfig, checkSides } from '../../src/scenario/runner.js';
import { createVm, checkVm } from '../../src/machine/machine.js';
import { qmpExecute } from '../../src/host/qmp.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { compactMemory } from '../../src/guest/mm/compaction.js';
import { Owner, pageMapping, pageOwner } from '../../src/guest/mm/memmap.js';
import { ScenarioError } from '../../src/scenario/schema.js';

const MiB = 1024 * 1024;

const SCATTERED = `
name: two-balloons
seed: 3
guest: { memory: 1GiB, vcpus: 2, thp: never }
balloon:
  compaction: true
  devices:
    - id: balloon0
    - id: small
      deflate_on_oom: true
timeline:
  - { at: 100ms, action: process_fault, pid: 100, size: 800MiB }
  - { at: 1s, action: process_free, pid: 100, fraction: 0.5, pick: alternate }
  - { at: 1s, action: drain_pcp }
  - { at: 2s, action: balloon, value: 960MiB, wait: 60s }
  - { at: 2s, action: balloon, device: small, value: 832MiB, wait: 60s }
  - { at: 3s, action: balloon, value: 896MiB, wait: 60s }
  - { at: 4s, action: query_balloon, device: small }
  - { at: 4s, action: query_balloon }
  - { at: 5s, action: process_exit, pid: 100 }
  - { at: 5s, action: drain_pcp }
  - { at: 6s, action: compact_memory }
  - { at: 7s, action: balloon, device: small, value: 960MiB, wait: 60s }
`;

test('two balloon devices inflate through their QMP ids, each accounted on its own; compaction migrates both; the checker passes', () => {
  const sf = loadScenarioText(SCATTERED, 'two.yaml');
  const { doc } = runScenario(sf.base, { check: true });
  const devs = doc.balloon.devices!;
  assert.deepEqual(devs.map((d) => d.id), ['balloon0', 'small']);
  // balloon0: 128 MiB out (1 GiB - 896 MiB); small: 192 MiB, then 64 MiB after its deflate
  assert.equal(devs[0]!.target_pages, 128 * MiB / 4096);
  assert.equal(devs[0]!.actual_pages, 128 * MiB / 4096);
  assert.equal(devs[1]!.target_pages, 64 * MiB / 4096);
  assert.equal(devs[1]!.actual_pages, 64 * MiB / 4096);
  assert.equal(devs[0]!.driver.num_pages, 32768);
  assert.equal(devs[1]!.driver.num_pages, 16384);
  assert.equal(devs[0]!.device.inflated_pages, 32768);
  assert.equal(devs[1]!.device.inflated_pages, 16384);
  // query-balloon answers each device's logical size
  const q = (doc.events as unknown as Array<{ kind: string; qmp: { return: { actual: number } } }>).filter((e) => e.kind === 'query_balloon');
  assert.deepEqual(q.map((e) => e.qmp.return.actual), [832 * MiB, 896 * MiB]);
  // compaction moved pages of both devices (each through its own driver callback): the
  // holes are handed out last-freed first, so balloon0's first 64 MiB sit high, small's
  // pages below them and balloon0's second 64 MiB lowest, where the migrate scanner starts
  const migrations = devs.map((d) => d.driver.migrations as number);
  assert.ok(migrations[0]! > 0 && migrations[1]! > 0, `both devices' pages migrate: ${migrations}`);
  assert.equal(doc.vmstat.balloon_migrate, migrations[0]! + migrations[1]!);
  // the host saw every migration of a device's page as that device's inflate and deflate
  assert.equal(devs[1]!.device.inflatePfns, 49152 + migrations[1]!);
  assert.equal(doc.vmstat.balloon_inflate, 32768 + 49152);
});

test('a balloon page carries its device in its mapping; pages stay with their device through compaction', () => {
  const sf = loadScenarioText(SCATTERED, 'two.yaml');
  const s = sf.base;
  const vm = createVm(scenarioVmConfig(s, s.seed));
  assert.equal(vm.balloons.length, 2);
  const [a, b] = vm.balloons;
  assert.deepEqual(qmpExecute(vm.host, { execute: 'balloon', arguments: { value: 960 * MiB } }), { return: {} });
  assert.deepEqual(qmpExecute(vm.host, { execute: 'balloon', arguments: { value: 992 * MiB, id: 'small' } }), { return: {} });
  simRunUntil(vm.sim, 30e9);
  assert.equal(a!.driver.numPages, 16384);
  assert.equal(b!.driver.numPages, 8192);
  const map = vm.guest.pgdat.map;
  const perDevice = [0, 0];
  for (let pfn = 0; pfn < map.nrPages; pfn++) if (pageOwner(map, pfn) === Owner.balloon) perDevice[pageMapping(map, pfn)]!++;
  assert.deepEqual(perDevice, [16384, 8192]);
  compactMemory(vm.guest.pgdat);
  simRunUntil(vm.sim, 60e9);
  assert.equal(checkVm(vm), null);
  // a page claimed by the wrong device is caught
  let victim = -1;
  for (let pfn = 0; pfn < map.nrPages && victim < 0; pfn++) if (pageOwner(map, pfn) === Owner.balloon && pageMapping(map, pfn) === 1) victim = pfn;
  map.w[victim * 4 + 1] = (map.w[victim * 4 + 1]! & 0xffff) | (0 << 16);
  assert.match(checkVm(vm) ?? '', /small: pfn \d+ is on the balloon list but its mapping says balloon 0/);
});

test('QMP: an unknown id is DeviceNotFound; qom-get finds each device by its path', () => {
  const vm = createVm(scenarioVmConfig(loadScenarioText(SCATTERED, 'two.yaml').base, 1));
  assert.deepEqual(qmpExecute(vm.host, { execute: 'balloon', arguments: { value: 512 * MiB, id: 'nope' } }), { error: { class: 'DeviceNotFound', desc: "Device 'nope' not found" } });
  assert.deepEqual(qmpExecute(vm.host, { execute: 'query-balloon', arguments: { id: 'small' } }), { return: { actual: 1024 * MiB } });
  const stats = qmpExecute(vm.host, { execute: 'qom-get', arguments: { path: '/machine/peripheral/small', property: 'guest-stats' } });
  assert.ok('return' in stats);
  const none = qmpExecute(vm.host, { execute: 'qom-get', arguments: { path: '/machine/peripheral/balloon9', property: 'guest-stats' } });
  assert.deepEqual(none, { error: { class: 'DeviceNotFound', desc: "Device '/machine/peripheral/balloon9' not found" } });
});

test('balloon.devices: duplicate ids, reporting or hinting on a second device, and real guests are refused, naming the field', () => {
  const base = (devices: string) => `name: x\nguest: { memory: 1GiB }\nballoon:\n  devices:\n${devices}\ntimeline: []\n`;
  assert.throws(() => loadScenarioText(base('    - id: a\n    - id: a'), 'x.yaml'), (e: Error) => e instanceof ScenarioError && /balloon\.devices\.1\.id|balloon\.devices\[1\]\.id/.test(e.message) && /already the id/.test(e.message));
  assert.throws(() => loadScenarioText(base('    - id: a\n    - id: b\n      free_page_reporting: true'), 'x.yaml'), (e: Error) => /free_page_reporting/.test(e.message) && /-EBUSY/.test(e.message));
  assert.throws(() => loadScenarioText(base('    - id: a\n    - id: b\n      free_page_hint: true'), 'x.yaml'), (e: Error) => /free_page_hint/.test(e.message));
  assert.throws(() => loadScenarioText(base('    - id: 9x'), 'x.yaml'), (e: Error) => /id/.test(e.message) && /QEMU's id syntax/.test(e.message));
  assert.throws(() => loadScenarioText(base('    - id: a\n      compaction: false'), 'x.yaml'), (e: Error) => /compaction/.test(e.message));
  const two = loadScenarioText(base('    - id: a\n    - id: b'), 'x.yaml').base;
  assert.throws(() => checkSides(two, 'qemu', 'x.yaml'), (e: Error) => e instanceof ScenarioError && /balloon\.devices/.test(e.message) && /one balloon device/.test(e.message));
  // one device named in `devices` is what QEMU has: the real guest takes it
  checkSides(loadScenarioText(base('    - id: balloon0'), 'x.yaml').base, 'qemu', 'x.yaml');
});

test('a balloon action naming a device the machine lacks fails with the ids it has', () => {
  const sf = loadScenarioText(`name: x\nguest: { memory: 1GiB }\nballoon: { devices: [{ id: balloon0 }, { id: b1 }] }\ntimeline:\n  - { at: 1s, action: balloon, device: b2, value: 512MiB }\n`, 'x.yaml');
  assert.throws(() => runScenario(sf.base, {}), (e: Error) => /device: no balloon device "b2" \(the machine has balloon0, b1\)/.test(e.message));
});

test('a devices entry inherits the balloon\'s properties it does not set', () => {
  const s = loadScenarioText(`name: x\nguest: { memory: 1GiB }\nballoon:\n  deflate_on_oom: true\n  stats_vq: false\n  devices:\n    - id: a\n    - id: b\n      deflate_on_oom: false\ntimeline: []\n`, 'x.yaml').base;
  const vm = createVm(scenarioVmConfig(s, 1));
  const [a, b] = vm.balloons;
  assert.equal(a!.device.opts.deflateOnOom, true);
  assert.equal(b!.device.opts.deflateOnOom, false);
  assert.equal(a!.device.opts.statsVq, false);
  assert.equal(b!.device.opts.statsVq, false, 'stats_vq: false is the balloon\'s, so both devices\'');
  assert.equal(vm.guest.pgdat.oomNotifiers.length, 1, 'only a registers the OOM notifier');
});
