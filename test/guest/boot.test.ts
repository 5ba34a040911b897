/** A booted guest looks like a real one (test/fixtures: a Linux 6.1 guest, 1 GiB, 5 s after boot). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { MAX_ORDER, MigrateType, getPageblockMigratetype, PAGEBLOCK_NR_PAGES, PageReserved } from '../../src/guest/mm/memmap.js';
import { ZoneType, Wmark } from '../../src/guest/mm/mmzone.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { physPfn } from '../../src/guest/mm/layout.js';

const GiB = 1024 ** 3;

function blocks(g: ReturnType<typeof createGuest>, zi: ZoneType): number[] {
  const z = g.pgdat.zones[zi]!;
  const c = [0, 0, 0, 0, 0];
  for (let p = z.zoneStartPfn & ~(PAGEBLOCK_NR_PAGES - 1); p < z.zoneStartPfn + z.spannedPages; p += PAGEBLOCK_NR_PAGES) c[getPageblockMigratetype(g.pgdat.map, p)]!++;
  return c;
}

test('1 GiB: zone geometry, managed pages and watermarks as in the real guest', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: GiB }));
  const [dma, dma32, normal] = g.pgdat.zones;
  assert.deepEqual([dma!.zoneStartPfn, dma!.spannedPages, dma!.presentPages, dma!.managedPages], [1, 4095, 3998, 3840]);
  assert.deepEqual([dma32!.zoneStartPfn, dma32!.spannedPages, dma32!.presentPages, dma32!.managedPages], [4096, 258016, 258016, 245316]);
  assert.equal(normal!.presentPages, 0);
  assert.equal(g.pgdat.sysctl.minFreeKbytes, 45056);
  assert.ok(Math.abs(dma32!.watermark[Wmark.min]! - 11088) <= 4);
  assert.ok(Math.abs(dma32!.watermark[Wmark.high]! - 16632) <= 4);
  assert.equal(dma32!.pcp[0]!.batch, 63);
  assert.equal(checkPgdat(g.pgdat), null);
});

test('1 GiB: free memory sits in order-10 Movable blocks; a few dozen Unmovable pageblocks', () => {
  for (const seed of [1, 2, 3, 4]) {
    const g = createGuest(defaultGuestConfig({ memoryBytes: GiB, seed }));
    const z = g.pgdat.zones[ZoneType.dma32]!;
    assert.ok(z.nrFree[MAX_ORDER - 1]! >= 220 && z.nrFree[MAX_ORDER - 1]! <= 232, `order-10 blocks ${z.nrFree[10]} (reference 228)`);
    const [u, m, r] = blocks(g, ZoneType.dma32);
    assert.ok(u! >= 15 && u! <= 45, `unmovable ${u} (reference 38)`);
    assert.ok(r! >= 3 && r! <= 10, `reclaimable ${r} (reference 6)`);
    assert.equal(u! + m! + r!, 504);
    assert.ok(z.pcp[0]!.count > 1000, 'boot leaves pages on the pcp lists');
    assert.deepEqual(blocks(g, ZoneType.dma), [1, 7, 0, 0, 0], 'DMA: the block starting at the pfn-0 hole stays Unmovable');
  }
});

test('KASLR moves the kernel image with the seed; nokaslr pins it at 16 MiB', () => {
  const image = (seed: number, kaslr: boolean) => {
    const g = createGuest(defaultGuestConfig({ memoryBytes: GiB, seed, boot: { ...defaultGuestConfig().boot, kaslr } }));
    // first reserved pageblock-aligned run above 16 MiB
    const map = g.pgdat.map;
    for (let p = 4096; p < map.nrPages; p += PAGEBLOCK_NR_PAGES) if (PageReserved(map, p)) return p;
    return -1;
  };
  assert.equal(image(1, false), 4096);
  assert.equal(image(2, false), 4096);
  assert.notEqual(image(1, true), image(5, true));
});

test('4 and 8 GiB: the PCI hole, a Normal zone above 4 GiB, swiotlb below it', () => {
  for (const gib of [4, 8]) {
    const g = createGuest(defaultGuestConfig({ memoryBytes: gib * GiB, vcpus: 4 }));
    const normal = g.pgdat.zones[ZoneType.normal]!;
    assert.equal(physPfn(g.layout, normal.zoneStartPfn), 0x100000);
    assert.equal(normal.spannedPages, (gib - 3) * 262144);
    assert.equal(g.pgdat.zones[ZoneType.dma32]!.spannedPages, 3 * 262144 - 4096 - 32);
    assert.equal(checkPgdat(g.pgdat), null);
    assert.equal(getPageblockMigratetype(g.pgdat.map, normal.zoneStartPfn + normal.spannedPages - 1), MigrateType.unmovable, 'the memmap at the top of RAM is in deferred-init memory');
  }
});
