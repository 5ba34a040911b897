/** The split virtqueue: driver and device through guest memory only; the device survives a hostile driver. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  createGuestMemory, createGuestMemoryOver, writeLe16, writeLe32, writeLe64, writeBytes, readBytes, isRam, readLe16, readLe32, readLe64, discardPage, GuestMemoryFault,
} from '../../src/virtio/guest_memory.js';
import {
  virtqDriverCreate, virtqAddBuf, virtqGetBuf, virtqKickPrepare, virtqDeviceCreate, virtqueuePop,
  virtqueuePush, virtqueueShouldNotify,
} from '../../src/virtio/virtqueue.js';
import { type VirtqLayout, vringNeedEvent, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT } from '../../src/virtio/virtio_ring.js';
import { createTransport, featureBit, VIRTIO_F_VERSION_1, VIRTIO_CONFIG_S_NEEDS_RESET } from '../../src/virtio/transport.js';
import { benchVirtqueue, DEFAULT_VIRTQUEUE_BENCH } from '../../bench/virtqueue.js';

const MiB = 1024 * 1024;
const RAM = [{ start: 0, end: 64 * MiB }];

function setup(size = 8, eventIdx = false) {
  const mem = createGuestMemory(RAM);
  const layout: VirtqLayout = { size, descAddr: 0x10000, availAddr: 0x11000, usedAddr: 0x12000, eventIdx };
  // the device the queue belongs to: a modern one, so a violation also sets NEEDS_RESET
  const t = createTransport(mem, 5, featureBit(VIRTIO_F_VERSION_1), 8, [size]);
  t.driverFeatures = featureBit(VIRTIO_F_VERSION_1);
  return { mem, layout, t, drv: virtqDriverCreate(mem, layout), dev: virtqDeviceCreate(mem, layout, t, 'test queue') };
}

test('a buffer goes from driver to device and back, through the bytes only', () => {
  const { mem, drv, dev } = setup();
  writeBytes(mem, 0x20000, new Uint8Array([1, 2, 3, 4]));
  assert.equal(virtqAddBuf(drv, [{ addr: 0x20000, len: 4 }], [{ addr: 0x21000, len: 16 }], 77), true);
  assert.equal(virtqKickPrepare(drv), true);
  const e = virtqueuePop(dev)!;
  assert.deepEqual(e.out, [{ addr: 0x20000, len: 4 }]);
  assert.deepEqual(e.in, [{ addr: 0x21000, len: 16 }]);
  assert.deepEqual(Array.from(readBytes(mem, e.out[0]!.addr, 4)), [1, 2, 3, 4]);
  writeBytes(mem, e.in[0]!.addr, new Uint8Array([9, 9]));
  virtqueuePush(dev, e, 2);
  assert.equal(virtqueueShouldNotify(dev), true);
  assert.deepEqual(virtqGetBuf(drv), { token: 77, len: 2 });
  assert.equal(virtqGetBuf(drv), null);
  assert.equal(virtqueuePop(dev), null);
  assert.equal(drv.numFree, 8, 'descriptors returned to the free list');
});

test('ring layout: every field at the spec\'s byte offset (desc 16 B, avail 6+2n, used 6+8n, event words last)', () => {
  const { mem, drv, dev, layout } = { ...setup(8, true), layout: { descAddr: 0x10000, availAddr: 0x11000, usedAddr: 0x12000 } };
  assert.equal(virtqAddBuf(drv, [{ addr: 0x2345678, len: 0x400 }], [{ addr: 0x30000, len: 8 }], 5), true);
  // desc[0] = { le64 addr; le32 len; le16 flags; le16 next }
  assert.equal(readLe64(mem, layout.descAddr), 0x2345678);
  assert.equal(readLe32(mem, layout.descAddr + 8), 0x400);
  assert.equal(readLe16(mem, layout.descAddr + 12), VIRTQ_DESC_F_NEXT);
  assert.equal(readLe16(mem, layout.descAddr + 14), 1);
  assert.equal(readLe64(mem, layout.descAddr + 16), 0x30000);
  assert.equal(readLe32(mem, layout.descAddr + 24), 8);
  assert.equal(readLe16(mem, layout.descAddr + 28), VIRTQ_DESC_F_WRITE);
  // avail = { le16 flags; le16 idx; le16 ring[8]; le16 used_event }
  assert.equal(readLe16(mem, layout.availAddr + 2), 1);
  assert.equal(readLe16(mem, layout.availAddr + 4), 0, 'ring[0] names head 0');
  // raw little-endian bytes of avail.idx
  assert.deepEqual(Array.from(readBytes(mem, layout.availAddr + 2, 2)), [1, 0]);
  virtqKickPrepare(drv);
  const e = virtqueuePop(dev)!;
  // the device publishes avail_event = its next avail index, after used.ring[8]
  assert.equal(readLe16(mem, layout.usedAddr + 4 + 8 * 8), 1);
  virtqueuePush(dev, e, 3);
  // used = { le16 flags; le16 idx; { le32 id; le32 len } ring[8]; le16 avail_event }
  assert.equal(readLe16(mem, layout.usedAddr + 2), 1);
  assert.equal(readLe32(mem, layout.usedAddr + 4), 0);
  assert.equal(readLe32(mem, layout.usedAddr + 8), 3);
  virtqGetBuf(drv);
  // the driver publishes used_event = its next used index, after avail.ring[8]
  assert.equal(readLe16(mem, layout.availAddr + 4 + 2 * 8), 1);
});

test('the ring wraps: many round trips with chains of varying length', () => {
  const { drv, dev } = setup(4);
  for (let i = 0; i < 1000; i++) {
    const n = 1 + (i % 3);
    const out = Array.from({ length: n }, (_, k) => ({ addr: 0x30000 + 64 * k, len: 8 }));
    assert.ok(virtqAddBuf(drv, out, [], i));
    const e = virtqueuePop(dev)!;
    assert.equal(e.out.length, n);
    virtqueuePush(dev, e, 0);
    assert.equal(virtqGetBuf(drv)!.token, i);
  }
  assert.equal(dev.vdev.error, null);
});

test('a full ring refuses more buffers until some come back', () => {
  const { drv, dev } = setup(4);
  for (let i = 0; i < 4; i++) assert.ok(virtqAddBuf(drv, [{ addr: 0x30000, len: 8 }], [], i));
  assert.equal(virtqAddBuf(drv, [{ addr: 0x30000, len: 8 }], [], 9), false);
  virtqueuePush(dev, virtqueuePop(dev)!, 0);
  virtqGetBuf(drv);
  assert.ok(virtqAddBuf(drv, [{ addr: 0x30000, len: 8 }], [], 9));
});

test('event index: the device asks for a kick only past avail_event, the driver for an interrupt only past used_event', () => {
  assert.equal(vringNeedEvent(0, 1, 0), true);
  assert.equal(vringNeedEvent(5, 3, 2), false);
  assert.equal(vringNeedEvent(0xffff, 0, 0xfffe), true, 'wraps at 2^16');
  const { drv, dev } = setup(8, true);
  virtqAddBuf(drv, [{ addr: 0x30000, len: 8 }], [], 1);
  assert.equal(virtqKickPrepare(drv), true, 'avail_event 0: the first buffer is worth a kick');
  virtqAddBuf(drv, [{ addr: 0x30000, len: 8 }], [], 2);
  assert.equal(virtqKickPrepare(drv), false, 'the device has not consumed the first yet: no new kick');
  const a = virtqueuePop(dev)!;
  virtqueuePush(dev, a, 0);
  assert.equal(virtqueueShouldNotify(dev), true);
  const b = virtqueuePop(dev)!;
  virtqueuePush(dev, b, 0);
  assert.equal(virtqueueShouldNotify(dev), false, 'the driver has not read the first used entry yet');
});

/** Writes a raw descriptor: the hostile driver's tool. */
function desc(mem: ReturnType<typeof createGuestMemory>, base: number, i: number, addr: number, len: number, flags: number, next: number) {
  writeLe64(mem, base + 16 * i, addr);
  writeLe32(mem, base + 16 * i + 8, len);
  writeLe16(mem, base + 16 * i + 12, flags);
  writeLe16(mem, base + 16 * i + 14, next);
}

function publish(mem: ReturnType<typeof createGuestMemory>, layout: VirtqLayout, head: number, idx = 1) {
  writeLe16(mem, layout.availAddr + 4, head);
  writeLe16(mem, layout.availAddr + 2, idx);
}

test('hostile driver: every validation rule breaks the queue with a message, never a throw', () => {
  const cases: Array<[string, (s: ReturnType<typeof setup>) => void, RegExp]> = [
    ['avail index jumps more than a ring', (s) => writeLe16(s.mem, s.layout.availAddr + 2, 100), /moved avail index/],
    ['head out of range', (s) => publish(s.mem, s.layout, 9), /index 9 is available/],
    ['next out of range', (s) => { desc(s.mem, s.layout.descAddr, 0, 0x30000, 8, VIRTQ_DESC_F_NEXT, 12); publish(s.mem, s.layout, 0); }, /Desc next is 12/],
    ['descriptor loop', (s) => { desc(s.mem, s.layout.descAddr, 0, 0x30000, 8, VIRTQ_DESC_F_NEXT, 1); desc(s.mem, s.layout.descAddr, 1, 0x30000, 8, VIRTQ_DESC_F_NEXT, 0); publish(s.mem, s.layout, 0); }, /Looped descriptor/],
    ['buffer outside RAM', (s) => { desc(s.mem, s.layout.descAddr, 0, 128 * MiB, 8, 0, 0); publish(s.mem, s.layout, 0); }, /bad address/],
    ['buffer overflowing RAM', (s) => { desc(s.mem, s.layout.descAddr, 0, 64 * MiB - 4, 8, 0, 0); publish(s.mem, s.layout, 0); }, /bad address/],
    ['zero-sized buffer', (s) => { desc(s.mem, s.layout.descAddr, 0, 0x30000, 0, 0, 0); publish(s.mem, s.layout, 0); }, /zero sized/],
    ['readable after writable', (s) => { desc(s.mem, s.layout.descAddr, 0, 0x30000, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1); desc(s.mem, s.layout.descAddr, 1, 0x30000, 8, 0, 0); publish(s.mem, s.layout, 0); }, /Incorrect order/],
    ['indirect table of bad size', (s) => { desc(s.mem, s.layout.descAddr, 0, 0x40000, 17, VIRTQ_DESC_F_INDIRECT, 0); publish(s.mem, s.layout, 0); }, /Invalid size for indirect/],
    ['indirect with NEXT', (s) => { desc(s.mem, s.layout.descAddr, 0, 0x40000, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1); publish(s.mem, s.layout, 0); }, /may not also have NEXT/],
    ['nested indirect', (s) => { desc(s.mem, s.layout.descAddr, 0, 0x40000, 32, VIRTQ_DESC_F_INDIRECT, 0); desc(s.mem, 0x40000, 0, 0x50000, 16, VIRTQ_DESC_F_INDIRECT, 0); publish(s.mem, s.layout, 0); }, /Nested indirect/],
    ['indirect table outside RAM', (s) => { desc(s.mem, s.layout.descAddr, 0, 100 * MiB, 32, VIRTQ_DESC_F_INDIRECT, 0); publish(s.mem, s.layout, 0); }, /outside guest RAM/],
    ['ring outside RAM', (s) => { s.dev.layout = { ...s.layout, availAddr: 200 * MiB }; }, /outside guest RAM/],
  ];
  for (const [name, hostile, re] of cases) {
    const s = setup();
    hostile(s);
    assert.equal(virtqueuePop(s.dev), null, name);
    assert.match(s.t.error ?? '', re, name);
    assert.match(s.t.error ?? '', /^test queue: /, `${name}: the message names the queue`);
    assert.ok(s.t.status & VIRTIO_CONFIG_S_NEEDS_RESET, `${name}: virtioError sets NEEDS_RESET`);
    assert.equal(virtqueuePop(s.dev), null, `${name}: stays broken`);
  }
});

test('indirect descriptors: a valid table is followed', () => {
  const s = setup();
  desc(s.mem, 0x40000, 0, 0x30000, 8, VIRTQ_DESC_F_NEXT, 1);
  desc(s.mem, 0x40000, 1, 0x31000, 4, VIRTQ_DESC_F_WRITE, 0);
  desc(s.mem, s.layout.descAddr, 0, 0x40000, 32, VIRTQ_DESC_F_INDIRECT, 0);
  publish(s.mem, s.layout, 0);
  const e = virtqueuePop(s.dev)!;
  assert.deepEqual(e, { head: 0, out: [{ addr: 0x30000, len: 8 }], in: [{ addr: 0x31000, len: 4 }] });
});

const descArb = fc.record({
  addr: fc.oneof(fc.integer({ min: 0x30000, max: 0x3ffff }), fc.integer({ min: 0, max: 80 * MiB }), fc.constant(0x40000)),
  len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(16, 32, 48, 4096)),
  flags: fc.integer({ min: 0, max: 7 }),
  next: fc.integer({ min: 0, max: 12 }),
});

test('property: any descriptors and ring indices give valid elements or a broken queue, never a throw or a hang', () => {
  fc.assert(
    fc.property(fc.array(descArb, { minLength: 8, maxLength: 8 }), fc.array(descArb, { minLength: 4, maxLength: 4 }),
      fc.array(fc.integer({ min: 0, max: 10 }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 0xffff }), (table, indirect, ring, idx) => {
        const s = setup(8);
        table.forEach((d, i) => desc(s.mem, s.layout.descAddr, i, d.addr, d.len, d.flags, d.next));
        indirect.forEach((d, i) => desc(s.mem, 0x40000, i, d.addr, d.len, d.flags, d.next));
        ring.forEach((h, i) => writeLe16(s.mem, s.layout.availAddr + 4 + 2 * i, h));
        writeLe16(s.mem, s.layout.availAddr + 2, idx);
        let popped = 0;
        for (let k = 0; k < 20; k++) {
          const e = virtqueuePop(s.dev);
          if (e === null) break;
          popped++;
          assert.ok(e.head < 8);
          for (const b of [...e.out, ...e.in]) assert.ok(isRam(s.mem, b.addr, b.len) && b.len > 0, 'only valid buffers reach the device');
          assert.ok(e.out.length + e.in.length <= 8);
          virtqueuePush(s.dev, e, 0);
        }
        if (idx > 8) assert.match(s.t.error ?? '', /moved avail index/);
        assert.ok(popped <= 8);
      }),
    { numRuns: 1000, seed: 3 },
  );
});

test('bench virtqueue: inflate buffers and 32-entry report chains make the whole round trip, one kick and one interrupt each', () => {
  const r = benchVirtqueue({ ...DEFAULT_VIRTQUEUE_BENCH, buffers: 2000, chains: 200, runs: 1 });
  assert.equal(r.ok, true);
  assert.equal(r.queue_size, 128);
  assert.equal(r.event_idx, true);
  assert.equal(r.buffer_bytes, 1024);
  assert.equal(r.chain_descriptors, 32);
  assert.equal(r.kicks_per_buffer, 1);
  assert.equal(r.interrupts_per_buffer, 1);
  assert.ok(r.buffers_per_s > 0 && r.report_chains_per_s > 0);
});

test('guest memory: the le accessors match a byte-by-byte reference, inside a page and across page edges', () => {
  const le = (v: number, n: number) => Array.from({ length: n }, (_, k) => Math.floor(v / 2 ** (8 * k)) % 256);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: -9, max: 9 }), fc.integer({ min: 0, max: 2 ** 53 - 1 }), (pg, delta, v) => {
      const mem = createGuestMemory(RAM);
      const a = pg * 4096 + delta;
      writeLe16(mem, a, v);
      assert.deepEqual(Array.from(readBytes(mem, a, 2)), le(v % 2 ** 16, 2));
      assert.equal(readLe16(mem, a), v % 2 ** 16);
      writeLe32(mem, a, v);
      assert.deepEqual(Array.from(readBytes(mem, a, 4)), le(v % 2 ** 32, 4));
      assert.equal(readLe32(mem, a), v % 2 ** 32);
      writeLe64(mem, a, v);
      assert.deepEqual(Array.from(readBytes(mem, a, 8)), le(v, 8));
      assert.equal(readLe64(mem, a), v);
      writeBytes(mem, a, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 0xff]));
      assert.equal(readLe32(mem, a + 4), 0xff070605);
      assert.equal(readLe64(mem, a), Infinity, 'above 2^53');
    }),
    { numRuns: 300, seed: 5 },
  );
  const mem = createGuestMemory(RAM);
  writeLe64(mem, 0x5000, -1);
  assert.deepEqual(Array.from(readBytes(mem, 0x5000, 8)), [255, 255, 255, 255, 255, 255, 255, 255], 'negative values wrap as the byte loop did');
  assert.throws(() => readLe32(mem, 64 * MiB - 2), GuestMemoryFault);
  assert.throws(() => writeLe64(mem, 64 * MiB - 4, 1), /\[0x4000000, \+4\)/, 'the high half faults on its own address');
});

test('guest memory: a discarded page reads as zero, even straight after an access to it', () => {
  const mem = createGuestMemory(RAM);
  writeLe32(mem, 0x7000, 0xdeadbeef);
  assert.equal(readLe32(mem, 0x7000), 0xdeadbeef);
  discardPage(mem, 7);
  assert.equal(readLe32(mem, 0x7000), 0);
  assert.equal(mem.pages.has(7), false);
  writeLe16(mem, 0x7002, 0x1234);
  assert.equal(readLe32(mem, 0x7000), 0x12340000);
  const other = createGuestMemory(RAM);
  assert.equal(readLe32(other, 0x7000), 0, 'another guest memory does not see this one\'s pages');
});

test('guest memory over another emulator\'s RAM: accesses go to its bytes; a discarded page reads as zero there', () => {
  const ram = new Uint8Array(1 * MiB);
  const mem = createGuestMemoryOver(ram);
  writeLe32(mem, 0x2ffe, 0xdeadbeef); // across a page boundary
  assert.deepEqual(Array.from(ram.subarray(0x2ffe, 0x3002)), [0xef, 0xbe, 0xad, 0xde]);
  ram[0x5000] = 7;
  assert.equal(readLe16(mem, 0x5000), 7, 'the emulator\'s own writes are seen');
  discardPage(mem, 5);
  assert.equal(ram[0x5000], 0);
  assert.throws(() => readLe32(mem, 1 * MiB - 2), GuestMemoryFault);
  assert.throws(() => createGuestMemoryOver(ram, [{ start: 0, end: 2 * MiB }]), RangeError);
});
