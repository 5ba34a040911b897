/**
 * v33 free page hinting (the June 2018 series): get_from_free_page_list's walk, the two
 * buffer rules, the zone lock the walk holds, and the driver and device end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { miniNode, giveBlock } from '../helpers/mini.js';
import { getFromFreePageList, allocPages, freePages, drainAllPages } from '../../src/guest/mm/page_alloc.js';
import { MAX_ORDER, PageBuddy, buddyOrder, Owner } from '../../src/guest/mm/memmap.js';
import { ZoneType } from '../../src/guest/mm/mmzone.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, __GFP_DMA32 } from '../../src/guest/mm/gfp.js';
import { createVm, type Vm } from '../../src/machine/machine.js';
import { defaultGuestConfig } from '../../src/guest/guest.js';
import { physPfn } from '../../src/guest/mm/layout.js';
import {
  hintBufferPagesFor, hintBufferEntries, FREE_PAGE_HINT_MEM_SIZE, HINT_BUFFER_MAX_PAGES,
} from '../../src/guest/drivers/virtio_balloon.js';
import { virtioBalloonFreePageStart, virtioBalloonFreePageStop, FreePageHintStatus } from '../../src/host/virtio_balloon.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { createRng, rngBelow } from '../../src/sim/rng.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const ORDER = MAX_ORDER - 1;
const BLOCK = 1 << ORDER;

/** The free blocks of `order` of the whole node, as a sorted list of head PFNs. */
function freeBlocksOfOrder(pgdat: ReturnType<typeof miniNode>, order: number): number[] {
  const out: number[] = [];
  for (let pfn = 0; pfn < pgdat.map.nrPages; pfn++) if (PageBuddy(pgdat.map, pfn) && buddyOrder(pgdat.map, pfn) === order) out.push(pfn);
  return out;
}

test('get_from_free_page_list: exactly the free order-10 blocks, zone by zone, nothing taken off the lists', () => {
  // DMA32: 8 blocks of 4 MiB, Normal: 4; free six of DMA32 whole, one in halves, and three of Normal
  const pg = miniNode(8 * BLOCK, 4 * BLOCK);
  for (const b of [0, 1, 2, 4, 6, 7]) giveBlock(pg, b * BLOCK, ORDER);
  giveBlock(pg, 3 * BLOCK, ORDER - 1);
  for (const b of [8, 9, 11]) giveBlock(pg, b * BLOCK, ORDER);
  const before = freeBlocksOfOrder(pg, ORDER);
  const nrFree = pg.zones.map((z) => z.nrFree[ORDER]);
  const pfns = new Int32Array(64), perZone = new Int32Array(3);
  const n = getFromFreePageList(pg, ORDER, pfns, 64, perZone);
  assert.equal(n, 9);
  assert.deepEqual([...pfns.subarray(0, n)].sort((a, b) => a - b), before);
  assert.deepEqual([...perZone], [-1, 6, 3], 'DMA is empty (not walked), DMA32 gave 6, Normal 3');
  // zone order: every DMA32 entry before every Normal one
  assert.ok([...pfns.subarray(0, 6)].every((p) => p < 8 * BLOCK) && [...pfns.subarray(6, 9)].every((p) => p >= 8 * BLOCK));
  // the walk changed nothing
  assert.deepEqual(freeBlocksOfOrder(pg, ORDER), before);
  assert.deepEqual(pg.zones.map((z) => z.nrFree[ORDER]), nrFree);
  assert.equal(checkPgdat(pg), null);
  // a smaller array: the first entries in walk order, and the zones after it are not walked
  const few = new Int32Array(4);
  assert.equal(getFromFreePageList(pg, ORDER, few, 4, perZone), 4);
  assert.deepEqual([...few], [...pfns.subarray(0, 4)]);
  assert.deepEqual([...perZone], [-1, 4, -1]);
  // another order's lists
  assert.equal(getFromFreePageList(pg, ORDER - 1, pfns, 64, perZone), 1, 'the half of block 3');
  assert.equal(pfns[0], 3 * BLOCK);
  assert.equal(getFromFreePageList(pg, MAX_ORDER, pfns, 64, perZone), 0, 'an order the lists do not have');
});

test('the buffer rules: 16 pages hold 8191 entries (32 GiB less 4 MiB); sized from totalram_pages, 512 blocks a page, at most 1024 pages', () => {
  assert.equal(FREE_PAGE_HINT_MEM_SIZE, 16 * 4096);
  assert.equal(hintBufferEntries(FREE_PAGE_HINT_MEM_SIZE), 8191, '(64 KiB - 8 bytes of header) / 8');
  assert.equal(hintBufferEntries(FREE_PAGE_HINT_MEM_SIZE) * BLOCK * 4096, 32 * GiB - 4 * MiB, 'what one fixed buffer can report');
  assert.equal(hintBufferEntries(HINT_BUFFER_MAX_PAGES * 4096) * BLOCK * 4096, 2048 * GiB - 4 * MiB, 'what the largest sized buffer can report');
  const pagesFor = (bytes: number) => hintBufferPagesFor(bytes / 4096);
  assert.equal(pagesFor(128 * MiB), 1, 'rounded up: the mail\'s integer division would give none below 2 GiB');
  assert.equal(pagesFor(1 * GiB), 1);
  assert.equal(pagesFor(2 * GiB), 1, '512 blocks fill one page');
  assert.equal(pagesFor(2 * GiB + 4 * MiB), 2);
  assert.equal(pagesFor(8 * GiB), 4);
  assert.equal(pagesFor(32 * GiB), 16, 'the fixed buffer\'s size is the rule\'s at 32 GiB');
  assert.equal(pagesFor(256 * GiB), 128);
  assert.equal(pagesFor(2048 * GiB), 1024, '2 TB: 2^19 blocks');
  assert.equal(pagesFor(4096 * GiB), 1024, 'capped: a 4 TiB guest reports at most 2 TiB');
  // a guest's totalram is less than its RAM (the kernel, memblock): the rule sees that
  assert.equal(pagesFor(8 * GiB - 64 * MiB), 4);
  assert.equal(pagesFor(2 * GiB - 64 * MiB), 1);
});

test('property: after any allocations and frees a walk reports only blocks free at order 10 when it ran, as many as fit, and the checker holds', () => {
  fc.assert(fc.property(
    fc.array(fc.record({ alloc: fc.boolean(), order: fc.integer({ min: 0, max: ORDER }), gfp: fc.constantFrom(GFP_KERNEL, GFP_HIGHUSER_MOVABLE) }), { maxLength: 120 }),
    fc.integer({ min: 0, max: 40 }),
    fc.integer({ min: 0, max: 1000 }),
    (ops, size, seed) => {
      const pg = miniNode(24 * BLOCK, 8 * BLOCK);
      for (let b = 0; b < 32; b++) giveBlock(pg, b * BLOCK, ORDER);
      const rng = createRng(seed);
      const held: Array<[number, number]> = [];
      for (const op of ops) {
        if (op.alloc || held.length === 0) {
          const pfn = allocPages(pg, op.gfp, op.order, Owner.kernel);
          if (pfn >= 0) held.push([pfn, op.order]);
        } else {
          const [pfn, order] = held.splice(rngBelow(rng, held.length), 1)[0]!;
          freePages(pg, pfn, order);
        }
      }
      if (seed % 2) drainAllPages(pg, null);
      const pfns = new Int32Array(size), perZone = new Int32Array(3);
      const n = getFromFreePageList(pg, ORDER, pfns, size, perZone);
      const free = freeBlocksOfOrder(pg, ORDER);
      assert.equal(n, Math.min(size, free.length));
      const set = new Set(free);
      for (let i = 0; i < n; i++) assert.ok(set.has(pfns[i]!), `entry ${pfns[i]} is not a free order-10 block`);
      assert.equal(new Set(pfns.subarray(0, n)).size, n, 'no block twice');
      assert.equal(checkPgdat(pg), null);
    },
  ), { numRuns: 150, seed: 33 });
});

function v33Vm(memory: number, buffer: 'fixed' | 'sized' = 'fixed'): Vm {
  return createVm({
    guest: defaultGuestConfig({ memoryBytes: memory, vcpus: 2 }),
    balloon: { device: { freePageHint: true, freePageHintDesign: 'v33' }, driver: { hintDesign: 'v33', hintBuffer: buffer } },
    memPrealloc: false,
  });
}

/** The guest-physical addresses of the guest's free order-10 blocks now. */
function freeBlockAddrs(v: Vm): Set<number> {
  const out = new Set<number>();
  const map = v.guest.pgdat.map;
  for (let pfn = 0; pfn < map.nrPages; pfn++) if (PageBuddy(map, pfn) && buddyOrder(map, pfn) === ORDER) out.add(physPfn(v.guest.layout, pfn) * 4096);
  return out;
}

test('driver and device: a request gets one buffer of every free order-10 block\'s address; nothing is allocated; the request ends', () => {
  for (const buffer of ['fixed', 'sized'] as const) {
    const v = v33Vm(2 * GiB, buffer);
    const dev = v.host.balloon!, drv = v.driver!;
    assert.equal(drv.hint.name, 'v33');
    assert.equal(drv.hintBuf.pfn >= 0, buffer === 'fixed', 'the fixed buffer is there from probe; the sized one only during a report');
    const got: Array<[number, number, boolean]> = [];
    dev.onFreePageHint = (addr, len, clearLog) => got.push([addr, len, clearLog]);
    assert.ok(virtioBalloonFreePageStart(dev));
    simRunUntil(v.sim, v.sim.now + 10e6);
    // an idle guest: what was free at the walk is free now (the sized buffer's page came and went)
    const free = freeBlockAddrs(v);
    const report = drv.hintLog.reports[0]!;
    assert.deepEqual(new Set(got.map((g) => g[0])), free, `${buffer}: the hints are exactly the free order-10 blocks`);
    assert.equal(got.length, free.size);
    assert.ok(got.every((g) => g[1] === BLOCK * 4096 && !g[2]), 'each 4 MiB; v33 hints never clear the dirty log');
    assert.equal(report.entries, free.size);
    assert.equal(report.bufferPages, buffer === 'fixed' ? 16 : 1);
    assert.ok(report.lockHoldNs > 0 && report.endNs > report.startNs);
    assert.equal(dev.freePageHintStatus, FreePageHintStatus.stop, 'the buffer answered the request');
    assert.equal(dev.hintRounds[0]!.pages, free.size * BLOCK);
    assert.equal(v.guest.pgdat.ownerPages[Owner.freePageHint], 0, 'v33 holds nothing');
    assert.equal(drv.hintBuf.pfn >= 0, buffer === 'fixed', 'the sized buffer went back after the host used it');
    assert.equal(checkPgdat(v.guest.pgdat), null);
  }
});

test('the fixed buffer covers at most 8191 blocks (32 GiB less 4 MiB) of a 40 GiB guest\'s free memory; the sized one all of it', () => {
  const hinted: Record<string, number> = {};
  for (const buffer of ['fixed', 'sized'] as const) {
    const v = v33Vm(40 * GiB, buffer);
    const dev = v.host.balloon!;
    const free = freeBlockAddrs(v).size;
    assert.ok(free > 8191, `${free} free blocks`);
    virtioBalloonFreePageStart(dev);
    simRunUntil(v.sim, v.sim.now + 50e6);
    hinted[buffer] = dev.counters.hintedPages;
    if (buffer === 'fixed') assert.equal(dev.counters.hintedPages, 8191 * BLOCK);
    else assert.equal(dev.counters.hintedPages, free * BLOCK);
    // ~100 ns an entry under the lock: the Normal zone's hold is most of the walk
    const r = v.driver!.hintLog.reports[0]!;
    assert.ok(r.maxLockHoldNs > 0.5e6 && r.lockHoldNs < 2e6, `lock held ${r.lockHoldNs} ns`);
  }
  assert.ok(hinted.sized! > hinted.fixed!);
});

test('while the walk holds a zone\'s lock, an allocation there spins until it is let go (system time of its task), once', () => {
  const v = v33Vm(6 * GiB, 'sized');
  const pg = v.guest.pgdat, dev = v.host.balloon!;
  virtioBalloonFreePageStart(dev);
  simRunUntil(v.sim, v.sim.now + 1); // the work has run: the walk's snapshot and its lock windows
  const normal = pg.zones[ZoneType.normal]!, dma32 = pg.zones[ZoneType.dma32]!;
  assert.ok(normal.lockHeldUntil > normal.lockHeldFrom && normal.lockHeldFrom >= dma32.lockHeldUntil, 'DMA32 first, then Normal');
  // inside Normal's window: an order-5 request goes to the buddy lists (no pcp list for it)
  simRunUntil(v.sim, normal.lockHeldFrom + 1000);
  const stall0 = pg.tasks.stallNs, wait = normal.lockHeldUntil - v.sim.now;
  const a = allocPages(pg, GFP_KERNEL, 5, Owner.kernel);
  assert.ok(a >= 0);
  assert.equal(normal.lockWaits, 1);
  assert.equal(pg.tasks.stallNs - stall0, wait);
  const b = allocPages(pg, GFP_KERNEL, 5, Owner.kernel);
  assert.ok(b >= 0);
  assert.equal(normal.lockWaits, 1, 'the cpu is past the hold after one wait');
  // DMA32's lock was let go already: no wait there
  assert.ok(allocPages(pg, GFP_KERNEL | __GFP_DMA32, 5, Owner.kernel) >= 0);
  assert.equal(dma32.lockWaits, 0);
  simRunUntil(v.sim, v.sim.now + 10e6);
  assert.equal(checkPgdat(pg), null);
});

test('a request the host stopped before the guest answered it (a bitmap sync in the walk) has its buffer dropped; the next request\'s is taken', () => {
  const v = v33Vm(6 * GiB, 'sized');
  const dev = v.host.balloon!;
  const got: number[] = [];
  dev.onFreePageHint = (addr) => got.push(addr);
  virtioBalloonFreePageStart(dev);
  simRunUntil(v.sim, v.sim.now + 1); // walked; the buffer leaves when the walk's time is over
  assert.equal(got.length, 0);
  virtioBalloonFreePageStop(dev); // migration_bitmap_sync_precopy: stop, sync, start
  virtioBalloonFreePageStart(dev);
  simRunUntil(v.sim, v.sim.now + 20e6);
  assert.equal(dev.hintStaleDropped, 1);
  assert.equal(v.driver!.hintLog.nReports, 2, 'the config change of the second request ran the work again');
  assert.equal(new Set(got).size, got.length);
  assert.equal(got.length, v.driver!.hintLog.reports[1]!.entries, 'only the second walk\'s hints were applied');
  assert.ok(dev.hintRounds[0]!.endNs < 0 && dev.hintRounds[1]!.endNs > 0);
});
