/**
 * Linux 6.1's direct compaction on hand-built layouts: each test is named after the
 * mm/compaction.c (or mm/page_alloc.c) function whose rule it checks, and its expected
 * scanner positions and counts are worked out from that function by hand.
 *
 * A layout is a row of pageblocks, each described page by page: 'A' an anonymous page
 * of one process (on the LRU, movable), '.' a free page, 'R' a reserved page (neither
 * free nor movable: compaction cannot isolate it). Pageblock 0 is Unmovable and free;
 * the process's page tables come from it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { miniNode } from '../helpers/mini.js';
import { MigrateType, NO_PAGE, Owner, pageOwner, PAGEBLOCK_NR_PAGES, getPageblockSkip, listDel, listFirst, listLast, setPageblockMigratetype, setPageblockSkip } from '../../src/guest/mm/memmap.js';
import { type PgData, type Zone, MigrateMode, ZoneType, freeListHead } from '../../src/guest/mm/mmzone.js';
import { freeBootBlock, freePages, setupPagesets } from '../../src/guest/mm/page_alloc.js';
import { getProcess, faultAnonPages } from '../../src/guest/mm/process.js';
import { type CompactControl, compactFinished, createCompactControl, CompactResult, proactiveCompactNode, fastFindMigrateblock, fastIsolateFreepages, isolateFreepagesSampled, isolateMigratepagesBlock, resetIsolationSuitable } from '../../src/guest/mm/compaction.js';
import { putbackMovablePage } from '../../src/guest/mm/migrate.js';
import { allocPagesDirectCompact } from '../../src/guest/mm/slowpath.js';
import { GFP_HIGHUSER_MOVABLE } from '../../src/guest/mm/gfp.js';
import { VmEvent, ZoneStat } from '../../src/guest/mm/vmstat_items.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { type KernelProfile, KERNEL_6_1 } from '../../src/guest/mm/kernel_era.js';

const B = PAGEBLOCK_NR_PAGES;

/** What a page of a layout is. */
type Cell = 'A' | '.' | 'R';

/**
 * Builds a node of 1 + blocks.length pageblocks: pageblock 0 Unmovable and free, then
 * one Movable pageblock per entry, each page as `cell(i)` says (i = pfn within the
 * block). The pcp lists are off (high 0, batch 1), so that every page the test frees
 * or allocates goes straight to or from the buddy lists it expects.
 */
function layout(blocks: Array<(i: number) => Cell>): { pg: PgData; zone: Zone } {
  const pg = miniNode((blocks.length + 1) * B);
  pg.sysctl.thp.enabled = 'never';
  setPageblockMigratetype(pg.map, 0, MigrateType.unmovable);
  const noPcp = () => { setupPagesets(pg); for (const z of pg.zones) for (const p of z.pcp) { p.high = 0; p.batch = 1; } };
  freeBootBlock(pg, 0, 9);
  let anon = 0;
  blocks.forEach((cell, b) => { for (let i = 0; i < B; i++) if (cell(i) === 'A') { freeBootBlock(pg, (b + 1) * B + i, 0); anon++; } });
  noPcp();
  assert.equal(faultAnonPages(pg, getProcess(pg.tasks.procs, 1), anon), anon);
  blocks.forEach((cell, b) => { for (let i = 0; i < B; i++) if (cell(i) === '.') freeBootBlock(pg, (b + 1) * B + i, 0); });
  noPcp();
  assert.equal(checkPgdat(pg), null);
  return { pg, zone: pg.zones[ZoneType.dma32]! };
}

const full = (): Cell => 'A';

/** Puts every page on cc's migrate list back (putback_movable_pages). */
function putbackAll(pg: PgData, cc: CompactControl): void {
  for (let pfn = listFirst(pg.map, cc.migrateHead); pfn !== NO_PAGE; pfn = listFirst(pg.map, cc.migrateHead)) {
    listDel(pg.map, pfn);
    putbackMovablePage(pg, pfn);
  }
  cc.nrMigratepages = 0;
}
const free = (): Cell => '.';

test('__compact_finished looks for a suitable free block only when the migrate scanner stands at a pageblock boundary', () => {
  // B1 and B2 full of the process's pages, B3 free (a free order-9 Movable block)
  const { pg, zone } = layout([full, full, free]);
  const cc = createCompactControl(pg, zone, 9, MigrateType.movable, MigrateMode.async);
  cc.directCompaction = true;
  cc.freePfn = 3 * B;
  cc.migratePfn = B + 32; // inside B1: finish the block first
  assert.equal(compactFinished(cc), CompactResult.continue);
  cc.migratePfn = 2 * B; // at B2's start: the free block counts
  assert.equal(compactFinished(cc), CompactResult.success);
  // the scanners met: the free scanner's pfn may be inside a pageblock, the test compares pageblocks
  cc.freePfn = 2 * B + 100;
  assert.equal(compactFinished(cc), CompactResult.partialSkipped);
  assert.equal(zone.compact.blockskipFlush, true, 'a direct compaction asks kswapd to flush the skip hints');
});

test('isolate_migratepages_block (async direct, skip_on_failure): a page that cannot be isolated puts back the block\'s isolated pages and ends the cc->order block', () => {
  // B1: the process's pages at even pfns, free pages between, one reserved page at 40
  const cell = (i: number): Cell => (i === 40 ? 'R' : i % 2 ? '.' : 'A');
  for (const mode of [MigrateMode.async, MigrateMode.syncLight]) {
    const { pg, zone } = layout([cell, full]);
    const cc = createCompactControl(pg, zone, 9, MigrateType.movable, mode);
    cc.directCompaction = true;
    cc.ignoreSkipHint = false;
    const end = isolateMigratepagesBlock(pg, cc, B, 2 * B);
    if (mode === MigrateMode.async) {
      // 20 pages isolated (0..38), the reserved page fails: they go back, the order-9 block is done
      assert.equal(end, 2 * B, 'async: the rest of the pageblock is skipped');
      assert.equal(cc.nrMigratepages, 0);
      assert.equal(cc.totalMigrateScanned, 41, 'pfns 0..40 scanned');
      assert.equal(getPageblockSkip(pg.map, B), true, 'nothing isolated: the block gets a skip hint');
    } else {
      // sync-light scans on: 20 below the reserved page, 12 after it
      assert.equal(cc.nrMigratepages, 32);
      assert.equal(end, B + 65);
    }
    putbackAll(pg, cc);
    assert.equal(checkPgdat(pg), null);
  }
  // order 5: the cc->order blocks are 32 pages; pages isolated in a clean block are migrated first
  const { pg, zone } = layout([cell, full]);
  const cc = createCompactControl(pg, zone, 5, MigrateType.movable, MigrateMode.async);
  cc.directCompaction = true;
  assert.equal(isolateMigratepagesBlock(pg, cc, B, 2 * B), B + 32, '[0, 32) isolated cleanly: stop at the next block');
  assert.equal(cc.nrMigratepages, 16);
  putbackAll(pg, cc);
  // from 32: 32..38 isolated, 40 fails -> put back, skip to 64; [64, 96) isolates 16 and stops
  assert.equal(isolateMigratepagesBlock(pg, cc, B + 32, 2 * B), B + 96);
  assert.equal(cc.nrMigratepages, 16);
  assert.equal(listFirst(pg.map, cc.migrateHead), B + 64, 'the first page kept is the next block\'s');
  putbackAll(pg, cc);
  assert.equal(checkPgdat(pg), null);
});

test('isolate_migratepages_block (sync-light, no skip_on_failure): every page of a run that cannot be isolated is scanned, a free block once', () => {
  // B1: reserved 0..99, free 100..109 (buddies of order 2 at 100 and 104, order 1 at 108),
  // reserved 110..299, then the process's pages
  const cell = (i: number): Cell => (i < 100 || (i >= 110 && i < 300) ? 'R' : i < 110 ? '.' : 'A');
  const { pg, zone } = layout([cell]);
  for (const k of [KERNEL_6_1, { ...KERNEL_6_1, compaction: { ...KERNEL_6_1.compaction, skipHints: false } } as KernelProfile]) {
    pg.kernel = k;
    const cc = createCompactControl(pg, zone, 9, MigrateType.movable, MigrateMode.syncLight);
    cc.directCompaction = true;
    const end = isolateMigratepagesBlock(pg, cc, B, 2 * B);
    // 100 reserved, 3 free blocks, 190 reserved, then 32 isolated (COMPACT_CLUSTER_MAX)
    assert.equal(cc.totalMigrateScanned, 100 + 3 + 190 + 32);
    assert.equal(cc.nrMigratepages, 32);
    assert.equal(end, B + 332);
    assert.equal(listFirst(pg.map, cc.migrateHead), B + 300, 'the first page isolated is the first after the run');
    putbackAll(pg, cc);
    // from inside the run: it ends at the block's end as well
    const cc2 = createCompactControl(pg, zone, 9, MigrateType.movable, MigrateMode.syncLight);
    assert.equal(isolateMigratepagesBlock(pg, cc2, B + 150, B + 250), B + 250);
    assert.equal(cc2.totalMigrateScanned, 100);
    assert.equal(cc2.nrMigratepages, 0);
  }
  pg.kernel = KERNEL_6_1;
  assert.equal(checkPgdat(pg), null);
});

test('compaction_capture: the block that migration frees goes to the compacting task, not to the free lists, and the run stops', () => {
  // B1: the process's pages at even pfns, free pages at odd ones; B2 the other way round;
  // B3 free but for its first page (enough free memory for compaction_suitable, no order-9 block)
  const even = (i: number): Cell => (i % 2 ? '.' : 'A');
  const odd = (i: number): Cell => (i % 2 ? 'A' : '.');
  const { pg, zone } = layout([even, odd, (i) => (i ? '.' : 'R')]);
  const free0 = zone.vmStat[ZoneStat.nr_free_pages]!;
  const before = pg.events[VmEvent.pgalloc_dma32]!;
  const result = { r: CompactResult.skipped };
  const pfn = allocPagesDirectCompact(pg, GFP_HIGHUSER_MOVABLE, 9, Owner.kernel, MigrateMode.syncLight, result);
  assert.equal(pfn, B, 'B1, emptied into B3, is the page');
  assert.equal(result.r, CompactResult.success);
  assert.equal(pg.events[VmEvent.pgmigrate_success], 256);
  assert.ok(pg.events[VmEvent.compact_migrate_scanned]! <= 2 * B, 'the run stopped with B1: B2 was never scanned');
  assert.equal(pg.events[VmEvent.compact_stall], 1);
  assert.equal(pg.events[VmEvent.compact_success], 1);
  assert.equal(zone.nrFree[9], 0, 'the captured block never reached a free list');
  assert.equal(pg.events[VmEvent.pgalloc_dma32], before, 'prep_new_page only: rmqueue never counted it');
  assert.equal(zone.vmStat[ZoneStat.nr_free_pages], free0 - 512);
  assert.equal(pageOwner(pg.map, B), Owner.kernel);
  assert.equal(pg.tasks.captureControl, null, 'the capture control is gone once compaction returns');
  assert.equal(checkPgdat(pg), null);
});

test('__reset_isolation_suitable clears a hint only where a sample finds a page the scanner could use, and starts the scanners at the first such blocks', () => {
  // B1 reserved, B2 the process's, B3 free at even pfns, B4 free at odd pfns; every
  // block has a hint. The sample looks at every 8th page from the block's start.
  const reserved = (): Cell => 'R';
  const odd = (i: number): Cell => (i % 2 ? 'A' : '.');
  const even = (i: number): Cell => (i % 2 ? '.' : 'A');
  const { pg, zone } = layout([reserved, full, odd, even]);
  for (let b = 0; b < 5; b++) setPageblockSkip(pg.map, b * B, true);
  const c = zone.compact;
  resetIsolationSuitable(pg, zone);
  assert.equal(getPageblockSkip(pg.map, B), true, 'nothing to flush: only a direct compaction\'s request resets');
  c.blockskipFlush = true;
  resetIsolationSuitable(pg, zone);
  assert.deepEqual([0, 1, 2, 3, 4].map((b) => getPageblockSkip(pg.map, b * B)), [true, true, false, false, true], 'B0 (no LRU page) and B1 (nothing) keep theirs, and B4, whose free pages the sample misses');
  // the migrate side found B2 first; the free side, walking down from the zone's last pfn, found B3
  assert.deepEqual(c.cachedMigratePfn, [2 * B, 2 * B]);
  assert.equal(c.initMigratePfn, 2 * B);
  assert.equal(c.cachedFreePfn, 4 * B - 1, 'the pfn the walk stood on, not the block start');
  assert.equal(c.initFreePfn, 4 * B - 1);
  assert.equal(c.blockskipFlush, false);
});

test('isolate_migratepages_block (6.1 skip hints): the first LRU page at a block\'s start sets its hint; a rescan takes the rest of the block and moves the cached migrate pfn past the next block', () => {
  const { pg, zone } = layout([full, full]);
  const cc = createCompactControl(pg, zone, 9, MigrateType.movable, MigrateMode.syncLight);
  cc.directCompaction = true;
  cc.ignoreSkipHint = false;
  assert.equal(isolateMigratepagesBlock(pg, cc, B, 2 * B), B + 32, 'COMPACT_CLUSTER_MAX pages');
  assert.equal(getPageblockSkip(pg.map, B), true, 'test_and_set_skip at B1\'s first page');
  assert.deepEqual(zone.compact.cachedMigratePfn, [0, 0], 'pages were isolated: the cached position stays');
  putbackAll(pg, cc);
  cc.rescan = true;
  assert.equal(isolateMigratepagesBlock(pg, cc, B + 32, 2 * B), 2 * B, 'a rescan does not stop at COMPACT_CLUSTER_MAX');
  assert.equal(cc.nrMigratepages, B - 32);
  // update_cached_migrate(2B): pageblock_end_pfn of a block end is the next block's end
  assert.deepEqual(zone.compact.cachedMigratePfn, [3 * B, 3 * B]);
  putbackAll(pg, cc);
  // a scan from a block's start gives up a block that has a hint
  cc.rescan = false;
  assert.equal(isolateMigratepagesBlock(pg, cc, B, 2 * B), 2 * B);
  assert.equal(cc.nrMigratepages, 0);
  assert.equal(cc.totalMigrateScanned, 32 + (B - 32) + 1);
  assert.equal(checkPgdat(pg), null);
});

/** Gives cc's isolated free pages back (release_freepages). */
function releaseAll(pg: PgData, cc: CompactControl): void {
  for (let pfn = listFirst(pg.map, cc.freeHead); pfn !== NO_PAGE; pfn = listFirst(pg.map, cc.freeHead)) {
    listDel(pg.map, pfn);
    freePages(pg, pfn, 0);
  }
  cc.nrFreepages = 0;
}

/** The 6.1 profile without the fast scanners, to see isolate_freepages' linear scan alone. */
const LINEAR_ONLY: KernelProfile = { ...KERNEL_6_1, compaction: { ...KERNEL_6_1.compaction, fastScanners: false } };

test('isolate_freepages (6.1) stops inside a pageblock once it has enough targets and resumes there; async samples every 32nd page and hints the blocks it went through', () => {
  // B1 the process's (the migrate scanner is there), B2 free at even pfns, B3 free at odd pfns
  const odd = (i: number): Cell => (i % 2 ? 'A' : '.');
  const even = (i: number): Cell => (i % 2 ? '.' : 'A');
  {
    const { pg, zone } = layout([full, odd, even]);
    pg.kernel = LINEAR_ONLY;
    const cc = createCompactControl(pg, zone, 9, MigrateType.movable, MigrateMode.async);
    cc.directCompaction = true;
    cc.ignoreSkipHint = false;
    cc.migratePfn = B;
    cc.freePfn = 3 * B;
    cc.nrMigratepages = 32;
    isolateFreepagesSampled(pg, cc);
    // B3 sampled at even pfns: all in use; B2 sampled at even pfns: 16 free pages
    assert.equal(cc.nrFreepages, 16);
    assert.equal(cc.totalFreeScanned, 32, '16 samples in each of B3 and B2');
    assert.deepEqual([getPageblockSkip(pg.map, 3 * B), getPageblockSkip(pg.map, 2 * B)], [true, true], 'both were scanned to their end');
    assert.equal(zone.compact.cachedFreePfn, 2 * B, 'update_pageblock_skip brings the cached free pfn down');
    assert.equal(cc.freePfn, B, 'not enough: the scanner went down to the migrate scanner');
    releaseAll(pg, cc);
    cc.nrMigratepages = 0;
    assert.equal(checkPgdat(pg), null);
  }
  const { pg, zone } = layout([full, odd, even]);
  pg.kernel = LINEAR_ONLY;
  const cc = createCompactControl(pg, zone, 9, MigrateType.movable, MigrateMode.syncLight);
  cc.directCompaction = true;
  cc.ignoreSkipHint = false;
  cc.migratePfn = B;
  cc.freePfn = 3 * B;
  cc.nrMigratepages = 32;
  isolateFreepagesSampled(pg, cc);
  assert.equal(cc.nrFreepages, 32);
  assert.equal(cc.freePfn, 3 * B + 64, 'the 32nd free page is at 3B + 63: the next scan starts after it');
  assert.equal(cc.totalFreeScanned, 64);
  assert.equal(getPageblockSkip(pg.map, 3 * B), false, 'B3 was not scanned through');
  cc.nrMigratepages = 64;
  isolateFreepagesSampled(pg, cc);
  assert.equal(cc.nrFreepages, 64);
  assert.equal(cc.freePfn, 3 * B + 128, 'resumed inside B3');
  releaseAll(pg, cc);
  cc.nrMigratepages = 0;
  assert.equal(checkPgdat(pg), null);
});

test('fast_isolate_freepages takes a free block from the top quarter of the scan space without a linear scan, rotates the free list past what it saw, and moves the free scanner when it finds nothing', () => {
  // B1 the process's (the migrate scanner), B2 free at odd pfns, B3..B6 and B8 full, B7
  // two free pages. The pages are freed in pfn order to the free lists' tail, so a
  // search from the tail meets B7's first, then B2's from the top down.
  const odd = (i: number): Cell => (i % 2 ? '.' : 'A');
  const b7 = (i: number): Cell => (i === 100 || i === 200 ? '.' : 'A');
  const { pg, zone } = layout([full, odd, full, full, full, full, b7, full]);
  const cc = createCompactControl(pg, zone, 9, MigrateType.movable, MigrateMode.async);
  cc.directCompaction = true;
  cc.ignoreSkipHint = false;
  cc.migratePfn = B;
  cc.freePfn = 8 * B;
  cc.nrMigratepages = 32;
  // distance 7B: the top quarter starts at pageblock_start(8B - 7B/4) = 6B, the top half at 4B
  assert.equal(fastIsolateFreepages(pg, cc), 7 * B + 200);
  assert.equal(cc.nrFreepages, 1);
  assert.equal(cc.totalFreeScanned, 1, 'the first entry from the tail was in the top quarter');
  assert.equal(cc.freePfn, 8 * B, 'the linear scanner did not move');
  assert.equal(cc.searchOrder, 0, 'the order that gave a page is searched first next time');
  assert.equal(fastIsolateFreepages(pg, cc), 7 * B + 100);
  assert.equal(cc.nrFreepages, 2);
  // now only B2's pages are left: the starting scan (compact_init_free_pfn is 0) looks at
  // half a pageblock's worth, 256 entries, finds none above 4B, and jumps the scanner
  assert.equal(fastIsolateFreepages(pg, cc), 4 * B);
  assert.equal(cc.nrFreepages, 2);
  assert.equal(cc.totalFreeScanned, 2 + 256);
  assert.equal(cc.fastSearchFail, 1);
  assert.equal(cc.freePfn, 4 * B, 'direct compaction starts the linear scan at the top half\'s bottom');
  // a search that is not starting looks at max(1, freelist_scan_limit >> 1) entries:
  // (32 >> 1) + 1 = 17 >> 1 = 8; the list is rotated so the next one goes on from there
  zone.compact.initFreePfn = 9 * B;
  cc.freePfn = 8 * B;
  const head = freeListHead(zone, 0, MigrateType.movable);
  const tail = listLast(pg.map, head);
  assert.equal(fastIsolateFreepages(pg, cc), 8 * B);
  assert.equal(cc.totalFreeScanned, 2 + 256 + 8);
  assert.equal(cc.fastSearchFail, 2);
  assert.equal(listLast(pg.map, head), tail - 16, 'the eight entries seen went to the head: the tail is the ninth');
  cc.nrMigratepages = 0;
  releaseAll(pg, cc);
  assert.equal(checkPgdat(pg), null);
});

test('fast_find_migrateblock jumps the migrate scanner to a pageblock with a free block of order 3..8 in the bottom half, hints it (and 6.1\'s isolate_migratepages_block then passes it over); a failed search goes back to the lowest find', () => {
  // B3 holds a free order-4 block at 3B + 16; every other page of B1..B8 is the process's
  const b3 = (i: number): Cell => (i >= 16 && i < 32 ? '.' : 'A');
  const { pg, zone } = layout([full, full, b3, full, full, full, full, full]);
  const cc = createCompactControl(pg, zone, 9, MigrateType.movable, MigrateMode.syncLight);
  cc.directCompaction = true;
  cc.ignoreSkipHint = false;
  cc.migratePfn = zone.zoneStartPfn;
  cc.freePfn = 8 * B;
  // from the zone's start the search takes anything below the first half: pageblock_start(4B)
  assert.equal(fastFindMigrateblock(pg, cc), 3 * B);
  assert.equal(getPageblockSkip(pg.map, 3 * B), true, 'the block found is hinted');
  assert.equal(cc.fastSearchFail, 0);
  assert.equal(cc.fastStartPfn, 3 * B + 16);
  assert.equal(cc.totalMigrateScanned, 1, 'one free-list entry looked at');
  // isolate_migratepages_block from the block's first page sees the hint and gives it up
  assert.equal(isolateMigratepagesBlock(pg, cc, 3 * B, 4 * B), 4 * B);
  assert.equal(cc.nrMigratepages, 0);
  assert.equal(cc.totalMigrateScanned, 2);
  assert.deepEqual(zone.compact.cachedMigratePfn, [5 * B, 5 * B]);
  // from 4B the bound is pageblock_start(4B + (4B >> 1 >> 2)) = 4B: B3's block is below it
  // but hinted, so nothing is found: the scan goes back to the lowest find, once
  cc.migratePfn = 4 * B;
  assert.equal(fastFindMigrateblock(pg, cc), 3 * B + 16);
  assert.equal(cc.migratePfn, 3 * B + 16);
  assert.equal(cc.fastSearchFail, 1);
  assert.equal(cc.fastStartPfn, -1, 'reinit_migrate_pfn is used once');
  cc.migratePfn = 4 * B;
  assert.equal(fastFindMigrateblock(pg, cc), 4 * B);
  assert.equal(cc.fastSearchFail, 2);
  // not at a pageblock's start: a scan resumed after COMPACT_CLUSTER_MAX pages goes on
  cc.migratePfn = 4 * B + 32;
  assert.equal(fastFindMigrateblock(pg, cc), 4 * B + 32);
  assert.equal(cc.fastSearchFail, 2);
  assert.equal(checkPgdat(pg), null);
});

test('proactive_compact_node: order -1, whole_zone and ignore_skip_hint — it compacts blocks every skip hint marks, from the zone\'s ends', () => {
  // four half-used blocks (every other page), then two free ones
  const half = (i: number): Cell => (i % 2 === 0 ? 'A' : '.');
  const { pg, zone } = layout([half, half, half, half, () => '.', () => '.']);
  // every block hinted: a compaction that obeyed the hints would do nothing
  for (let b = 0; b < 7; b++) setPageblockSkip(pg.map, b * B, true);
  zone.compact.cachedMigratePfn[1] = zone.compact.cachedFreePfn = zone.zoneStartPfn + 3 * B;
  const moved0 = pg.events[VmEvent.compact_pages_moved]!;
  proactiveCompactNode(pg, 100);
  const moved = pg.events[VmEvent.compact_pages_moved]! - moved0;
  assert.ok(moved >= B / 2, `migrated ${moved} pages through hinted blocks`);
  assert.equal(checkPgdat(pg), null);
});
