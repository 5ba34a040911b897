/**
 * Buddy allocator behaviour on hand-built layouts. Each expected outcome was worked
 * out from the kernel's rules (mm/page_alloc.c, 6.1): __rmqueue_fallback,
 * find_suitable_fallback, can_steal_fallback, steal_suitable_fallback,
 * __free_one_page, ALLOC_NOFRAGMENT, __zone_watermark_ok, reserve_highatomic_pageblock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { miniNode, giveBlock, blockTypes, freeBlocks } from '../helpers/mini.js';
import { allocPages, freePages, drainAllPages, setupPagesets } from '../../src/guest/mm/page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE, GFP_ATOMIC, __GFP_RECLAIMABLE } from '../../src/guest/mm/gfp.js';
import { MigrateType, Owner, PG, NO_PAGE, setPageblockMigratetype, pageOwner, pageFlags, setPageFlags } from '../../src/guest/mm/memmap.js';
import { ZoneType, Wmark } from '../../src/guest/mm/mmzone.js';
import { checkPgdat } from '../../src/guest/mm/check.js';

const DMA32 = ZoneType.dma32;
const NORMAL = ZoneType.normal;

function descending(order: number, type: string, from = 0): Record<string, number> {
  const out: Record<string, number> = {};
  for (let o = order; o >= from; o--) out[`${o}:${type}`] = 1;
  return out;
}

test('an unmovable allocation steals a whole order-10 block and retypes both its pageblocks', () => {
  const pg = miniNode(2048);
  giveBlock(pg, 0, 10);
  giveBlock(pg, 1024, 10);
  assert.equal(blockTypes(pg), 'MMMM');
  const pfn = allocPages(pg, GFP_KERNEL, 0, Owner.kernel);
  assert.equal(pfn, 0, 'the first block on the list is split and its lowest page handed out');
  assert.equal(blockTypes(pg), 'UUMM', 'change_pageblock_range: an order >= pageblock_order block changes type outright');
  assert.deepEqual(freeBlocks(pg, DMA32), { '10:M': 1, ...descending(9, 'U') });
  assert.equal(pg.extfragEvents, 1);
  assert.equal(checkPgdat(pg), null);
});

test('a movable allocation that may not steal takes the smallest foreign block and leaves the pageblock alone', () => {
  const pg = miniNode(512);
  setPageblockMigratetype(pg.map, 0, MigrateType.unmovable);
  giveBlock(pg, 0, 3);
  const pfn = allocPages(pg, GFP_HIGHUSER_MOVABLE, 0, Owner.anon);
  assert.equal(pfn, 0);
  assert.equal(blockTypes(pg), 'U', 'order 3 < pageblock_order/2: no whole-block steal for a movable request');
  assert.deepEqual(freeBlocks(pg, DMA32), descending(2, 'M'), 'the split remainder sits on the movable lists');
  assert.equal(checkPgdat(pg), null);
  freePages(pg, pfn, 0);
  drainAllPages(pg, null);
  assert.deepEqual(freeBlocks(pg, DMA32), { '3:U': 1 }, 'freed into its pageblock\'s type and merged back to order 3');
  assert.equal(checkPgdat(pg), null);
});

test('a movable fallback claims a pageblock when at least half of it is free', () => {
  const pg = miniNode(512);
  setPageblockMigratetype(pg.map, 0, MigrateType.unmovable);
  giveBlock(pg, 0, 8); // 256 free pages: exactly half
  assert.equal(allocPages(pg, GFP_HIGHUSER_MOVABLE, 0, Owner.anon), 0);
  assert.equal(blockTypes(pg), 'M');
  assert.deepEqual(freeBlocks(pg, DMA32), descending(7, 'M'));
  assert.equal(checkPgdat(pg), null);
});

test('a movable fallback below half free moves the free pages but keeps the pageblock type', () => {
  const pg = miniNode(512);
  setPageblockMigratetype(pg.map, 0, MigrateType.unmovable);
  giveBlock(pg, 0, 7); // 128 free pages
  assert.equal(allocPages(pg, GFP_HIGHUSER_MOVABLE, 0, Owner.anon), 0);
  assert.equal(blockTypes(pg), 'U');
  assert.deepEqual(freeBlocks(pg, DMA32), descending(6, 'M'), 'move_freepages_block moved every free page to the movable lists');
});

test('an unmovable fallback counts in-use pages that are not LRU as compatible', () => {
  // 128 free; the other 384 pages in use. Not LRU: alike = 512 - 128 = 384, claim.
  const a = miniNode(512);
  giveBlock(a, 0, 7);
  assert.equal(allocPages(a, GFP_KERNEL, 0, Owner.kernel), 0);
  assert.equal(blockTypes(a), 'U');
  // Same, but the 384 in-use pages are on the LRU (movable): alike = 0, no claim.
  const b = miniNode(512);
  giveBlock(b, 0, 7);
  for (let p = 128; p < 512; p++) setPageFlags(b.map, p, pageFlags(b.map, p) | PG.lru);
  assert.equal(allocPages(b, GFP_KERNEL, 0, Owner.kernel), 0);
  assert.equal(blockTypes(b), 'M');
  assert.deepEqual(freeBlocks(b, DMA32), descending(6, 'U'));
});

test('reclaimable requests fall back to unmovable before movable', () => {
  // Two free order-9 blocks that are not buddies: pageblock 0 Movable, pageblock 2 Unmovable.
  const pg = miniNode(2048);
  setPageblockMigratetype(pg.map, 1024, MigrateType.unmovable);
  giveBlock(pg, 0, 9);
  giveBlock(pg, 1024, 9);
  const pfn = allocPages(pg, GFP_KERNEL | __GFP_RECLAIMABLE, 0, Owner.slabReclaimable);
  assert.equal(pfn, 1024, 'fallbacks[MIGRATE_RECLAIMABLE] = { UNMOVABLE, MOVABLE }');
  assert.equal(blockTypes(pg), 'MMRM', 'an order-9 block is stolen whole');
});

test('ALLOC_NOFRAGMENT: with Normal preferred, a movable request uses DMA32 rather than split a foreign pageblock in Normal', () => {
  const pg = miniNode(1024, 1024);
  setPageblockMigratetype(pg.map, 1024, MigrateType.unmovable);
  setPageblockMigratetype(pg.map, 1536, MigrateType.unmovable);
  giveBlock(pg, 1024, 3);
  giveBlock(pg, 0, 10);
  const pfn = allocPages(pg, GFP_HIGHUSER_MOVABLE, 0, Owner.anon);
  assert.ok(pfn >= 0 && pfn < 1024, `allocated in DMA32 (pfn ${pfn})`);
  assert.equal(blockTypes(pg), 'MMUU');
  assert.deepEqual(freeBlocks(pg, NORMAL), { '3:U': 1 });
  // Once DMA32 is exhausted the second pass (without NOFRAGMENT) may fragment Normal.
  const pg2 = miniNode(1024, 1024);
  setPageblockMigratetype(pg2.map, 1024, MigrateType.unmovable);
  giveBlock(pg2, 1024, 3);
  assert.equal(allocPages(pg2, GFP_HIGHUSER_MOVABLE, 0, Owner.anon), 1024);
});

test('watermarks: GFP_KERNEL stops at min, GFP_ATOMIC digs to min/2 - min/8', () => {
  const pg = miniNode(1024);
  giveBlock(pg, 0, 10);
  const z = pg.zones[DMA32]!;
  z.watermark[Wmark.min] = 1000; z.watermark[Wmark.low] = 1010; z.watermark[Wmark.high] = 1020;
  setupPagesets(pg);
  let kswapdWakes = 0;
  pg.hooks.wakeupKswapd = () => { kswapdWakes++; };
  let n = 0;
  while (allocPages(pg, GFP_KERNEL, 0, Owner.kernel) !== NO_PAGE) n++;
  assert.equal(n, 24, 'order-0 succeeds while free pages > min (1024 - 1000)');
  assert.ok(kswapdWakes > 0, 'falling below low wakes kswapd');
  let m = 0;
  while (allocPages(pg, GFP_ATOMIC, 0, Owner.kernel) !== NO_PAGE) m++;
  assert.equal(m, 1000 - 375, 'ALLOC_HIGH halves min (500), ALLOC_HARDER takes a quarter more (375)');
  assert.equal(checkPgdat(pg), null);
});

test('a high-order atomic allocation that needed the slow path reserves a HighAtomic pageblock', () => {
  const pg = miniNode(2048);
  giveBlock(pg, 0, 10);
  giveBlock(pg, 1024, 10);
  const z = pg.zones[DMA32]!;
  z.watermark[Wmark.min] = 100; z.watermark[Wmark.low] = 3000; z.watermark[Wmark.high] = 3100;
  const pfn = allocPages(pg, GFP_ATOMIC, 2, Owner.kernel);
  assert.equal(pfn, 0);
  assert.equal(blockTypes(pg), 'HUMM');
  assert.equal(pg.zones[DMA32]!.nrReservedHighatomic, 512);
  assert.equal(checkPgdat(pg), null);
});

test('freeing merges buddies back into the largest block', () => {
  const pg = miniNode(1024);
  giveBlock(pg, 0, 10);
  const pfns: number[] = [];
  for (let i = 0; i < 1024; i++) pfns.push(allocPages(pg, GFP_HIGHUSER_MOVABLE, 0, Owner.anon));
  assert.ok(pfns.every((p) => p !== NO_PAGE));
  assert.equal(allocPages(pg, GFP_HIGHUSER_MOVABLE, 0, Owner.anon), NO_PAGE, 'allocation failure is a result, not an exception');
  assert.equal(pageOwner(pg.map, 5), Owner.anon);
  for (const p of pfns.reverse()) freePages(pg, p, 0);
  drainAllPages(pg, null);
  assert.deepEqual(freeBlocks(pg, DMA32), { '10:M': 1 });
  assert.equal(checkPgdat(pg), null);
});

test('order-9 (THP) and order 1-3 requests use the per-cpu lists; order 4-8 go straight to the buddy', () => {
  const pg = miniNode(2048);
  giveBlock(pg, 0, 10);
  giveBlock(pg, 1024, 10);
  pg.zones[DMA32]!.pcp[0]!.high = 4096; // a small zone's default high (4 pages) would drain at once
  const thp = allocPages(pg, GFP_HIGHUSER_MOVABLE, 9, Owner.anon);
  freePages(pg, thp, 9);
  assert.equal(pg.zones[DMA32]!.pcp[0]!.count, 512, 'a freed THP waits on the pcp list');
  const o5 = allocPages(pg, GFP_HIGHUSER_MOVABLE, 5, Owner.anon);
  const before = pg.zones[DMA32]!.pcp[0]!.count;
  freePages(pg, o5, 5);
  assert.equal(pg.zones[DMA32]!.pcp[0]!.count, before, 'order 5 is not a pcp order');
  assert.equal(checkPgdat(pg), null);
});
