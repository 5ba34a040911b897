/** QMP-shaped control of the balloon: QEMU's commands and answers, errors included. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createVm } from '../../src/machine/machine.js';
import { qmpExecute, BALLOON_QOM_PATH } from '../../src/host/qmp.js';
import { defaultGuestConfig } from '../../src/guest/guest.js';
import { simRunUntil } from '../../src/sim/clock.js';

const MiB = 1024 * 1024;

test('balloon, query-balloon and guest-stats answer as QEMU does', () => {
  const vm = createVm({ guest: defaultGuestConfig({ memoryBytes: 256 * MiB }), balloon: { device: {}, driver: {} }, memPrealloc: false });
  assert.deepEqual(qmpExecute(vm.host, { execute: 'query-balloon' }), { return: { actual: 256 * MiB } });
  assert.deepEqual(qmpExecute(vm.host, { execute: 'balloon', arguments: { value: 200 * MiB } }), { return: {} });
  simRunUntil(vm.sim, 1e9);
  assert.deepEqual(qmpExecute(vm.host, { execute: 'query-balloon' }), { return: { actual: 200 * MiB } });
  // a target above RAM means "no balloon"
  qmpExecute(vm.host, { execute: 'balloon', arguments: { value: 1024 * MiB } });
  simRunUntil(vm.sim, 2e9);
  assert.deepEqual(qmpExecute(vm.host, { execute: 'query-balloon' }), { return: { actual: 256 * MiB } });
  // stats: nothing until polling is on; then every counter and last-update in seconds
  const none = qmpExecute(vm.host, { execute: 'qom-get', arguments: { path: BALLOON_QOM_PATH, property: 'guest-stats' } }) as { return: { stats: Record<string, number>; 'last-update': number } };
  assert.ok(Object.values(none.return.stats).some((v) => v !== -1), 'the buffer primed at probe was read at DRIVER_OK');
  assert.deepEqual(qmpExecute(vm.host, { execute: 'qom-set', arguments: { path: BALLOON_QOM_PATH, property: 'guest-stats-polling-interval', value: 3 } }), { return: {} });
  simRunUntil(vm.sim, 10e9);
  const s = qmpExecute(vm.host, { execute: 'qom-get', arguments: { path: BALLOON_QOM_PATH, property: 'guest-stats' } }) as { return: { stats: Record<string, number>; 'last-update': number } };
  assert.equal(s.return['last-update'], 8);
  assert.deepEqual(Object.keys(s.return.stats), [
    'stat-swap-in', 'stat-swap-out', 'stat-major-faults', 'stat-minor-faults', 'stat-free-memory', 'stat-total-memory',
    'stat-available-memory', 'stat-disk-caches', 'stat-htlb-pgalloc', 'stat-htlb-pgfail', 'stat-oom-kills',
    'stat-alloc-stalls', 'stat-async-scans', 'stat-direct-scans', 'stat-async-reclaims', 'stat-direct-reclaims',
  ]);
  assert.deepEqual(qmpExecute(vm.host, { execute: 'qom-get', arguments: { path: BALLOON_QOM_PATH, property: 'guest-stats-polling-interval' } }), { return: 3 });
});

test('bad commands get QMP errors, never exceptions', () => {
  const vm = createVm({ guest: defaultGuestConfig({ memoryBytes: 128 * MiB }), balloon: { device: {}, driver: {} }, memPrealloc: false });
  assert.deepEqual(qmpExecute(vm.host, { execute: 'balloon', arguments: { value: 0 } }), { error: { class: 'GenericError', desc: "Parameter 'target' expects a size" } });
  assert.deepEqual(qmpExecute(vm.host, { execute: 'balloon', arguments: { value: '1G' } }), { error: { class: 'GenericError', desc: "Invalid parameter type for 'value', expected: integer" } });
  assert.deepEqual(qmpExecute(vm.host, { execute: 'system_powerdown' }), { error: { class: 'CommandNotFound', desc: 'The command system_powerdown has not been found' } });
  const bare = createVm({ guest: defaultGuestConfig({ memoryBytes: 128 * MiB }), balloon: null, memPrealloc: false });
  assert.deepEqual(qmpExecute(bare.host, { execute: 'query-balloon' }), { error: { class: 'DeviceNotActive', desc: 'No balloon device has been activated' } });
});
