/** The virtio transport: status, feature negotiation, config generation, queue setup, signals. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuestMemory } from '../../src/virtio/guest_memory.js';
import {
  createTransport, featureBit, transportSetStatus, transportSetDriverFeatures, transportSetupQueue, transportNotify,
  transportReadConfig, transportWriteConfig, transportConfigChanged, virtioError, transportInterrupt,
  transportQueueLayout, configReadLe32, configWriteLe32,
  VIRTIO_CONFIG_S_ACKNOWLEDGE, VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_FEATURES_OK, VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX,
} from '../../src/virtio/transport.js';

const MiB = 1024 * 1024;
const mk = () => createTransport(createGuestMemory([{ start: 0, end: 64 * MiB }]), 5, featureBit(0) | featureBit(1) | featureBit(VIRTIO_F_VERSION_1) | featureBit(VIRTIO_F_EVENT_IDX), 16, [128, 128]);
const S = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

test('feature negotiation: a subset is accepted; a feature the device did not offer makes FEATURES_OK fail', () => {
  const t = mk();
  transportSetStatus(t, S);
  transportSetDriverFeatures(t, featureBit(1) | featureBit(VIRTIO_F_VERSION_1));
  transportSetStatus(t, S | VIRTIO_CONFIG_S_FEATURES_OK);
  assert.ok(t.status & VIRTIO_CONFIG_S_FEATURES_OK);
  transportSetDriverFeatures(t, featureBit(5));
  assert.equal(t.driverFeatures, featureBit(1) | featureBit(VIRTIO_F_VERSION_1), 'features are read-only after FEATURES_OK');
  const u = mk();
  transportSetStatus(u, S);
  transportSetDriverFeatures(u, featureBit(3));
  transportSetStatus(u, S | VIRTIO_CONFIG_S_FEATURES_OK);
  assert.equal(u.status & VIRTIO_CONFIG_S_FEATURES_OK, 0);
});

test('config space: little-endian fields, generation on change, config interrupt after DRIVER_OK only', () => {
  const t = mk();
  let changes = 0;
  t.onConfigChange = () => { changes++; };
  configWriteLe32(t, 0, 0x01020304);
  transportConfigChanged(t);
  assert.equal(changes, 0, 'no interrupts before DRIVER_OK');
  assert.deepEqual(Array.from(transportReadConfig(t, 0, 4)!), [4, 3, 2, 1]);
  transportSetStatus(t, S | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  const g = t.configGeneration;
  transportConfigChanged(t);
  assert.equal(t.configGeneration, g + 1);
  assert.equal(changes, 1);
  let written = -1;
  t.onConfigWrite = (off) => { written = off; };
  transportWriteConfig(t, 4, new Uint8Array([7, 0, 0, 0]));
  assert.equal(written, 4);
  assert.equal(configReadLe32(t, 4), 7);
  assert.equal(transportReadConfig(t, 14, 4), null, 'reads past the config space are refused');
});

test('queue setup is validated; a bad queue makes the device need a reset; reset clears everything', () => {
  const t = mk();
  transportSetDriverFeatures(t, featureBit(VIRTIO_F_VERSION_1));
  transportSetStatus(t, S | VIRTIO_CONFIG_S_FEATURES_OK);
  assert.ok(transportSetupQueue(t, 0, 64, 0x10000, 0x11000, 0x12000));
  transportSetDriverFeatures(t, featureBit(VIRTIO_F_EVENT_IDX));
  assert.equal(transportQueueLayout(t, 0)!.size, 64);
  transportSetStatus(t, S | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  let cfg = 0;
  t.onConfigChange = () => { cfg++; };
  assert.equal(transportSetupQueue(t, 1, 100, 0x20000, 0x21000, 0x22000), false);
  assert.match(t.error!, /invalid size 100/);
  assert.ok(t.status & VIRTIO_CONFIG_S_NEEDS_RESET);
  assert.equal(cfg, 1, 'NEEDS_RESET raises a configuration interrupt');
  assert.equal(transportSetupQueue(t, 1, 64, 0x20008, 0x21000, 0x22000), false);
  assert.equal(transportSetupQueue(t, 1, 64, 64 * MiB - 512, 0x21000, 0x22000), false, "descriptor table runs past RAM");
  let kicks = 0;
  t.onNotify = () => { kicks++; };
  transportNotify(t, 0);
  assert.equal(kicks, 0, 'a device that needs a reset ignores kicks');
  transportSetStatus(t, 0);
  assert.equal(t.status, 0);
  assert.equal(t.error, null);
  assert.equal(transportQueueLayout(t, 0), null);
});

test('virtioError: a legacy device (no VERSION_1) is broken but has no NEEDS_RESET bit to set, as in QEMU', () => {
  const t = mk();
  transportSetStatus(t, S | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  virtioError(t, 'first');
  virtioError(t, 'second');
  assert.equal(t.error, 'first', 'the first message is kept');
  assert.equal(t.status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
});

test('signals: kicks reach the device and interrupts the driver only after DRIVER_OK', () => {
  const t = mk();
  const log: string[] = [];
  t.onNotify = (q) => log.push(`kick ${q}`);
  t.onInterrupt = (q) => log.push(`irq ${q}`);
  transportSetStatus(t, S | VIRTIO_CONFIG_S_FEATURES_OK);
  transportSetupQueue(t, 0, 8, 0x10000, 0x11000, 0x12000);
  transportNotify(t, 0);
  transportInterrupt(t, 0);
  transportSetStatus(t, S | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
  transportNotify(t, 0);
  transportNotify(t, 1);
  transportInterrupt(t, 0);
  virtioError(t, 'boom');
  assert.deepEqual(log, ['kick 0', 'irq 0']);
});
