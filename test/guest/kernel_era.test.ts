/**
 * Linux 3.6's allocator and compaction rules on hand-built layouts, each outcome
 * worked out from the 3.6 function named in the test, next to what 6.1 does with the
 * same layout where the two differ.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { miniNode, giveBlock, blockTypes, freeBlocks } from '../helpers/mini.js';
import { KERNEL_3_6, KERNEL_6_1, KERNEL_MECHANISMS, profileDifferences, profileValue } from '../../src/guest/mm/kernel_era.js';
import { MigrateType, Owner, NO_PAGE, setPageblockMigratetype, pageOwner } from '../../src/guest/mm/memmap.js';
import { rmqueueFallback36, allocPages, zoneWatermarkOk, setupZoneMigrateReserve, setupPerZoneWmarks } from '../../src/guest/mm/page_alloc.js';
import { GFP_KERNEL, GFP_HIGHUSER_MOVABLE } from '../../src/guest/mm/gfp.js';
import { Wmark } from '../../src/guest/mm/mmzone.js';
import { compactionSuitable, CompactResult } from '../../src/guest/mm/compaction.js';
import { checkPgdat } from '../../src/guest/mm/check.js';

const B = 512;

test('__rmqueue_fallback (3.6): the largest block of another type is taken first, its pageblock moved and claimed when >= 256 pages were free', () => {
  // B0 Unmovable: an order-3 block free; B1 Unmovable: wholly free (order 9)
  const pg = miniNode(4 * B, 0, 1, KERNEL_3_6);
  setPageblockMigratetype(pg.map, 0, MigrateType.unmovable);
  setPageblockMigratetype(pg.map, B, MigrateType.unmovable);
  giveBlock(pg, 0, 3);
  giveBlock(pg, B, 9);
  const pfn = rmqueueFallback36(pg, pg.zones[1]!, 0, MigrateType.movable);
  assert.equal(pfn, B, 'the order-9 block, not the order-3 one');
  assert.equal(blockTypes(pg), 'UMMM', 'B1 claimed for Movable (order 9 >= pageblock_order: change_pageblock_range)');
  // expand() put the rest of the order-9 block on the Movable lists; the order-3 block stays Unmovable
  assert.deepEqual(freeBlocks(pg, 1), { '0:M': 1, '1:M': 1, '2:M': 1, '3:U': 1, '3:M': 1, '4:M': 1, '5:M': 1, '6:M': 1, '7:M': 1, '8:M': 1 });
  assert.equal(pg.era.blockClaims, 1);
});

test('__rmqueue_fallback (3.6): below pageblock_order/2 an unmovable request takes the block alone and leaves the pageblock Movable; 6.1 (can_steal_fallback, alike pages) claims it', () => {
  // B1 Movable holding only an order-3 free block; its other pages are in use (kernel pages)
  for (const kernel of [KERNEL_3_6, KERNEL_6_1]) {
    const pg = miniNode(4 * B, 0, 1, kernel);
    giveBlock(pg, B, 3);
    const pfn = allocPages(pg, GFP_KERNEL, 0, Owner.kernel);
    assert.notEqual(pfn, NO_PAGE);
    assert.ok(pfn >= B && pfn < B + 8, `from the order-3 block (${pfn})`);
    if (kernel === KERNEL_3_6) {
      assert.equal(blockTypes(pg)[1], 'M', '3.6: order 3 < pageblock_order/2 and not reclaimable: no move_freepages_block');
      assert.equal(pg.era.blockMoves, 0);
    } else {
      assert.equal(blockTypes(pg)[1], 'U', '6.1: 8 free + 504 unmovable-alike pages >= half the block: claimed');
      assert.equal(pg.era.blockClaims, 1);
    }
    assert.equal(checkPgdat(pg), null);
  }
});

test('__rmqueue_fallback (3.6): a reclaimable request moves the whole pageblock even for a small block, claiming it only when over half was free', () => {
  const pg = miniNode(4 * B, 0, 1, KERNEL_3_6);
  giveBlock(pg, B, 3);
  giveBlock(pg, 2 * B, 8);
  giveBlock(pg, 2 * B + 256, 7);
  // largest first: the order-8 block in B2 (384 free pages in B2 -> claimed)
  const pfn = rmqueueFallback36(pg, pg.zones[1]!, 0, MigrateType.reclaimable);
  assert.equal(pfn, 2 * B);
  assert.equal(blockTypes(pg), 'MMRM');
  // then an order-3 block in B1 (8 free pages): moved, not claimed
  const pg2 = miniNode(4 * B, 0, 1, KERNEL_3_6);
  giveBlock(pg2, B, 3);
  assert.equal(rmqueueFallback36(pg2, pg2.zones[1]!, 0, MigrateType.reclaimable), B);
  assert.equal(blockTypes(pg2), 'MMMM');
  assert.equal(pg2.era.blockMoves, 1);
  assert.equal(pg2.era.blockClaims, 0);
});

test('__rmqueue (3.6): MIGRATE_RESERVE is no fallback, only the last resort (retry_reserve)', () => {
  const pg = miniNode(4 * B, 0, 1, KERNEL_3_6);
  setPageblockMigratetype(pg.map, 0, MigrateType.reserve);
  giveBlock(pg, 0, 9);
  // GFP_KERNEL order 0 through the pcp refill: no Unmovable, Reclaimable or Movable page anywhere
  const pfn = allocPages(pg, GFP_KERNEL, 0, Owner.kernel);
  assert.equal(pfn, 0);
  assert.equal(pg.era.reserveAllocs, 1);
  assert.equal(pg.era.fallbacks, 0);
  assert.equal(blockTypes(pg)[0], 'H', 'the block stays Reserve (the HighAtomic slot)');
  // 6.1 has no such retry: a HighAtomic block serves only ALLOC_HARDER high orders
  const pg61 = miniNode(4 * B, 0, 1, KERNEL_6_1);
  setPageblockMigratetype(pg61.map, 0, MigrateType.highatomic);
  pg61.zones[1]!.nrReservedHighatomic = B;
  giveBlock(pg61, 0, 9);
  assert.equal(allocPages(pg61, GFP_KERNEL, 0, Owner.kernel), NO_PAGE);
});

test('setup_zone_migrate_reserve (3.6): min(2, min watermark in pageblocks) Movable blocks become Reserve, without reserved pages, and later ones go back', () => {
  const pg = miniNode(8 * B, 0, 1, KERNEL_3_6);
  const z = pg.zones[1]!;
  giveBlock(pg, B, 9); giveBlock(pg, 2 * B, 10); giveBlock(pg, 4 * B, 10); giveBlock(pg, 6 * B, 10);
  z.watermark[Wmark.min] = 600;
  setupZoneMigrateReserve(pg, z);
  assert.equal(blockTypes(pg), 'MHHMMMMM', 'B0 holds reserved pages; B1, B2 become Reserve (ceil(600/512) = 2)');
  z.watermark[Wmark.min] = 100;
  setupZoneMigrateReserve(pg, z);
  assert.equal(blockTypes(pg), 'MHMMMMMM', 'one block for a min watermark under a pageblock');
  assert.deepEqual(freeBlocks(pg, 1)['9:H'], 1);
  assert.equal(checkPgdat(pg), null);
});

test('__zone_watermark_ok (3.6): each lower order\'s free pages drop out and min halves per order', () => {
  for (const kernel of [KERNEL_3_6, KERNEL_6_1]) {
    const pg = miniNode(8 * B, 0, 1, kernel);
    // 1000 free order-0 pages (every other page: no buddies merge) and one free order-9 block: 1512 free
    for (let p = 0; p < 2000; p += 2) giveBlock(pg, p, 0);
    giveBlock(pg, 6 * B, 9);
    const z = pg.zones[1]!;
    // order 9, mark 100: 1512 - 511 > 100; at order 0 the 1000 single pages drop out: 1 <= 50
    const ok = zoneWatermarkOk(z, 9, 100, 1, 0);
    assert.equal(ok, kernel === KERNEL_6_1, kernel.version);
    assert.equal(zoneWatermarkOk(z, 0, 100, 1, 0), true);
  }
});

test('__setup_per_zone_wmarks (3.6): low = min + min/4, high = min + min/2, split by present pages', () => {
  const pg = miniNode(16 * B, 16 * B, 1, KERNEL_3_6);
  for (let b = 0; b < 32; b++) giveBlock(pg, b * B, 9);
  pg.zones[2]!.managedPages -= 1000; // managed below present: 3.6 shares by present pages
  pg.sysctl.minFreeKbytes = 8192;
  setupPerZoneWmarks(pg);
  const [d32, normal] = [pg.zones[1]!, pg.zones[2]!];
  assert.equal(d32.watermark[Wmark.min], 1024);
  assert.equal(normal.watermark[Wmark.min], 1024);
  assert.equal(d32.watermark[Wmark.low], 1280);
  assert.equal(d32.watermark[Wmark.high], 1536);
});

test('compaction_suitable (3.6): SKIPPED without low + 2<<order free at order 0, and when the fragmentation index says memory is short at any order', () => {
  const pg = miniNode(8 * B, 0, 1, KERNEL_3_6);
  const z = pg.zones[1]!;
  // 1500 free single pages, scattered (every other page): no order-2 block anywhere
  for (let p = 0; p < 3000; p += 2) giveBlock(pg, p, 0);
  z.watermark[Wmark.low] = 100;
  // order 9: 100 + 1024 <= 1500 free; fragindex(9) = 1000 - (1000 + 1500*1000/512)/1500 ~ 998 > 500: compact
  assert.equal(compactionSuitable(z, 9, 1), CompactResult.continue);
  // order 10: 100 + 2048 > 1500: skipped
  assert.equal(compactionSuitable(z, 10, 1), CompactResult.skipped);
  // order 2 (6.1 never asks the fragmentation index below order 4): fragindex = 1000 - (1000 + 1500*1000/4)/1500 = 750 > 500 -> continue
  assert.equal(compactionSuitable(z, 2, 1), CompactResult.continue);
});

test('the kernel profiles: every mechanism names the code of both eras, 3.6 and 6.1 differ in each, and values resolve', () => {
  const diffs = profileDifferences(KERNEL_3_6, KERNEL_6_1);
  assert.equal(diffs.length, KERNEL_MECHANISMS.length, 'every listed mechanism differs between the two');
  for (const m of KERNEL_MECHANISMS) {
    assert.ok(m.source['3.6'].length > 0 && m.source['6.1'].length > 0, m.field);
    assert.notEqual(profileValue(KERNEL_3_6, m.field), undefined, m.field);
  }
  assert.deepEqual(profileDifferences(KERNEL_6_1, KERNEL_6_1), []);
  void GFP_HIGHUSER_MOVABLE; void pageOwner;
});
