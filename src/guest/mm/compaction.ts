/**
 * Memory compaction (mm/compaction.c, Linux 6.1 semantics).
 *
 * Two scanners walk a zone towards each other one pageblock at a time: the migrate
 * scanner from the bottom isolates movable pages (LRU pages, and non-LRU movable pages
 * such as balloon pages through their owner's movable operations); the free scanner
 * from the top isolates free pages in pageblocks that are suitable targets. Isolated
 * pages are migrated from low to high, so free memory gathers at the bottom of the
 * zone in large blocks. A run ends when the scanners meet (COMPACT_COMPLETE) or, for a
 * request of some order, when a free block of that order exists in a suitable
 * migratetype (COMPACT_SUCCESS). Pageblocks where nothing could be isolated get a skip
 * hint; failures defer later attempts (defer_compaction).
 *
 * Before scanning linearly, each scanner tries the free lists (fast_isolate_freepages,
 * fast_find_migrateblock). The free scanner stops inside a block once it has enough
 * targets and samples sparsely in async mode; async direct compaction gives up a
 * cc->order block at its first page that will not move (skip_on_failure); the
 * compacting task captures the block its migrations free (compaction_capture).
 *
 * All state of one run is in a CompactControl. Costs: every scanned page and every
 * migrated page charges the cost table; the run reports the virtual time it took.
 *
 * Linux 3.6 (pgdat.kernel.compaction, kernel_era.ts) differs: no skip hints, the
 * migrate scanner always starts at the zone start, the free scanner resumes at
 * compact_cached_free_pfn and wraps once to the zone end, async runs scan only
 * Movable source blocks, free blocks of pageblock order are migration targets (never
 * MIGRATE_RESERVE blocks), no per-block pcp drain, whole-block free scanning, none of
 * the fast scanners, skip_on_failure or capture, and compaction_suitable /
 * compact_finished of the time.
 */
import {
  type MemMap, NO_PAGE, MAX_ORDER, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, PAGE_ALLOC_COSTLY_ORDER, MigrateType, PG, PageType,
  listAdd, listAddTail, listDel, listFirst, listHeadAlloc, listNext, listPrev, pageFlags, pageOwner, pageOrder, pageRefcount, pageTypeOf,
  setPageFlags, getPageblockMigratetype, getPageblockSkip, setPageblockSkip, sameOwnerRunEnd,
} from './memmap.js';
import { type PgData, type Zone, MigrateMode, Wmark, MAX_NR_ZONES, freeListHead } from './mmzone.js';
import { isolateFreePage, findSuitableFallback, zoneWatermarkOk, freePages, drainLocalPages, drainAllPages } from './page_alloc.js';
import { isolateLruPage } from './lru.js';
import { migratePages, putbackMovablePage } from './migrate.js';
import { fragmentationIndex } from './fragmentation.js';
import { VmEvent, ZoneStat } from './vmstat_items.js';
import { type CostTable } from '../../sim/cost.js';
import type { CaptureControl } from './mm_types.js';

/** enum compact_result (include/linux/compaction.h). */
export const enum CompactResult {
  /** For more detailed tracepoint output: the zone was not considered. */
  notSuitableZone = 0,
  /** Compaction did not start: not enough free pages to migrate into. */
  skipped = 1,
  /** Compaction was deferred after earlier failures. */
  deferred = 2,
  /** No suitable free page was found (the requested order could not be produced). */
  noSuitablePage = 3,
  /** Compaction should continue to another pageblock. */
  continue = 4,
  /** The scanners met: the whole zone was compacted. */
  complete = 5,
  /** The scanners met over part of the zone (skip hints or cached positions). */
  partialSkipped = 6,
  /** Gave up because of contention (async mode). */
  contended = 7,
  /** A free page of the requested order is now available. */
  success = 8,
}

/** compaction_made_progress(): the run produced what it was asked for, so another retry makes sense. */
export function compactionMadeProgress(r: CompactResult): boolean {
  return r === CompactResult.success;
}

/** compaction_failed(): the scanners met over the whole zone with no success (only more priority could help). */
export function compactionFailed(r: CompactResult): boolean {
  return r === CompactResult.complete;
}

/** compaction_needs_reclaim(): there were not enough free pages to migrate into; reclaim might help. */
export function compactionNeedsReclaim(r: CompactResult): boolean {
  return r === CompactResult.skipped;
}

/** compaction_withdrawn(): compaction did not try in earnest (deferred, contended, a partial pass). */
export function compactionWithdrawn(r: CompactResult): boolean {
  return r === CompactResult.deferred || r === CompactResult.contended || r === CompactResult.partialSkipped;
}

/** COMPACT_CLUSTER_MAX (SWAP_CLUSTER_MAX): pages isolated per migration batch. */
export const COMPACT_CLUSTER_MAX = 32;
/** COMPACT_MAX_DEFER_SHIFT */
export const COMPACT_MAX_DEFER_SHIFT = 6;
/** sysctl_extfrag_threshold */
export const EXTFRAG_THRESHOLD = 500;

/** struct compact_control: one compaction run. */
export type CompactControl = {
  zone: Zone;
  /** Requested order, or -1 for /proc/sys/vm/compact_memory (compact the whole zone). */
  order: number;
  /** Migratetype of the allocation that wants the page (gfp_migratetype). */
  migratetype: MigrateType;
  mode: MigrateMode;
  /** Scan the whole zone from its ends (compact_memory), ignoring cached positions. */
  wholeZone: boolean;
  ignoreSkipHint: boolean;
  /** Direct compaction from the allocator (affects async source suitability). */
  directCompaction: boolean;
  /** Where the migrate scanner is (next pfn to scan). */
  migratePfn: number;
  /** Start of the pageblock the free scanner will look at next. */
  freePfn: number;
  /** List heads (in the memmap) of isolated pages to migrate and of isolated free targets. */
  migrateHead: number;
  freeHead: number;
  nrMigratepages: number;
  nrFreepages: number;
  totalMigrateScanned: number;
  totalFreeScanned: number;
  /** Pages migrated and failed in this run. */
  migrated: number;
  migrateFailed: number;
  /** Virtual time the run cost, from the cost table. */
  costNs: number;
  costs: CostTable;
  /** Proactive compaction: stop when the zone's fragmentation score is at most this (-1: not proactive). */
  proactiveLow: number;
  /**
   * cc->search_order: the order fast_isolate_freepages searches first (the last that
   * gave a page, or the next after a failure); cc->fast_search_fail: fast searches
   * in a row that found nothing (each halves the next one's free-list scan limit).
   */
  searchOrder: number;
  fastSearchFail: number;
  /**
   * cc->fast_start_pfn: the lowest free page fast_find_migrateblock took a block for,
   * where the linear scan starts once the fast search fails (0: none yet; -1: used).
   */
  fastStartPfn: number;
  /** The run's migrate scanner started at or below compact_init_migrate_pfn (6.1 compact_zone sets cc->whole_zone then): met scanners are COMPLETE, not PARTIAL_SKIPPED. */
  fromZoneStart: boolean;
  /**
   * cc->rescan: this pass of the migrate scanner starts in the pageblock the last one
   * migrated from, so it takes the rest of the block at once and then marks it skipped
   * (6.1 with skip hints).
   */
  rescan: boolean;
  /** 3.6: the free scanner has restarted from the zone end (cc->wrapped), and where this run's free scanner started. */
  wrapped: boolean;
  startFreePfn: number;
};

/**
 * The compaction list heads of a node, a pair per context that compacts: the running
 * task (direct compaction, kswapd, compact_memory: each run is done before another
 * starts) and kcompactd, whose proactive run goes on in slices while the task's run.
 */
const compactHeads = new WeakMap<PgData, number[]>();

/** Which pair of list heads a run uses. */
export const enum CompactHeads { task = 0, kcompactd = 1 }

function compactListHeads(pgdat: PgData, who: CompactHeads): [number, number] {
  let h = compactHeads.get(pgdat);
  if (!h) { h = []; compactHeads.set(pgdat, h); }
  if (h[2 * who] === undefined) { h[2 * who] = listHeadAlloc(pgdat.map); h[2 * who + 1] = listHeadAlloc(pgdat.map); }
  return [h[2 * who]!, h[2 * who + 1]!];
}

function pageblockStart(pfn: number): number {
  return pfn & ~(PAGEBLOCK_NR_PAGES - 1);
}

function pageblockEnd(pfn: number): number {
  return pageblockStart(pfn) + PAGEBLOCK_NR_PAGES;
}

/** Creates the control block of a run. */
export function createCompactControl(pgdat: PgData, zone: Zone, order: number, migratetype: MigrateType, mode: MigrateMode, costs: CostTable = pgdat.costs, who: CompactHeads = CompactHeads.task): CompactControl {
  const [migrateHead, freeHead] = compactListHeads(pgdat, who);
  return {
    zone, order, migratetype, mode, wholeZone: order < 0, ignoreSkipHint: order < 0 || !pgdat.kernel.compaction.skipHints, directCompaction: false,
    migratePfn: zone.zoneStartPfn, freePfn: pageblockStart(zone.zoneStartPfn + zone.spannedPages - 1),
    migrateHead, freeHead, nrMigratepages: 0, nrFreepages: 0, totalMigrateScanned: 0, totalFreeScanned: 0,
    migrated: 0, migrateFailed: 0, costNs: 0, costs, proactiveLow: -1, searchOrder: Math.max(order, 0), fastSearchFail: 0, fastStartPfn: 0, fromZoneStart: false, rescan: false, wrapped: false, startFreePfn: 0,
  };
}

// ---------------------------------------------------------------------------------
// Deferral and skip hints

/** @kernel mm/compaction.c defer_compaction: back off after a failure at this order. */
export function deferCompaction(zone: Zone, order: number): void {
  const c = zone.compact;
  c.considered = 0;
  if (++c.deferShift > COMPACT_MAX_DEFER_SHIFT) c.deferShift = COMPACT_MAX_DEFER_SHIFT;
  if (order < c.orderFailed) c.orderFailed = order;
}

/** @kernel mm/compaction.c compaction_deferred: skip this attempt? */
export function compactionDeferred(zone: Zone, order: number): boolean {
  const c = zone.compact;
  const limit = 1 << c.deferShift;
  if (order < c.orderFailed) return false;
  if (++c.considered >= limit) {
    c.considered = limit;
    return false;
  }
  return true;
}

/** @kernel mm/compaction.c compaction_defer_reset: success at this order clears the back-off. */
export function compactionDeferReset(zone: Zone, order: number, allocSuccess: boolean): void {
  const c = zone.compact;
  if (allocSuccess) {
    c.considered = 0;
    c.deferShift = 0;
  }
  if (order >= c.orderFailed) c.orderFailed = order + 1;
}

/**
 * @kernel mm/compaction.c reset_isolation_suitable
 * kswapd about to sleep (kswapd_try_to_sleep): the zones whose direct compaction met
 * its scanners (compact_blockskip_flush) lose their skip hints.
 */
export function resetIsolationSuitableNode(pgdat: PgData): void {
  for (const z of pgdat.zones) if (z.managedPages && z.compact.blockskipFlush) resetIsolationSuitable(pgdat, z);
}

/**
 * @kernel mm/compaction.c __reset_isolation_suitable
 * Only when a direct compaction asked for it (compact_blockskip_flush). Walks the zone
 * from both ends a pageblock at a time; a block's hint is cleared only where a sample
 * (__reset_isolation_pfn) finds a page the scanner at that end could use: an LRU page
 * for the migrate side, a free page in a Movable block for the free side, and either
 * once that side has found its first block. The first such block from each end
 * becomes the cached scanner position and compact_init_*_pfn; if the two cross, both
 * positions meet where the walk did.
 */
export function resetIsolationSuitable(pgdat: PgData, zone: Zone): void {
  const c = zone.compact;
  if (!c.blockskipFlush) return;
  c.blockskipFlush = false;
  let migratePfn = zone.zoneStartPfn;
  let freePfn = zone.zoneStartPfn + zone.spannedPages - 1;
  let resetMigrate = freePfn, resetFree = migratePfn;
  let sourceSet = false, freeSet = false;
  for (; migratePfn < freePfn; migratePfn += PAGEBLOCK_NR_PAGES, freePfn -= PAGEBLOCK_NR_PAGES) {
    if (resetIsolationPfn(pgdat, zone, migratePfn, true, sourceSet) && migratePfn < resetMigrate) {
      sourceSet = true;
      resetMigrate = migratePfn;
      c.initMigratePfn = resetMigrate;
      c.cachedMigratePfn[0] = c.cachedMigratePfn[1] = resetMigrate;
    }
    if (resetIsolationPfn(pgdat, zone, freePfn, freeSet, true) && freePfn > resetFree) {
      freeSet = true;
      resetFree = freePfn;
      c.initFreePfn = resetFree;
      c.cachedFreePfn = resetFree;
    }
  }
  // "Leave no distance if no suitable block was reset"
  if (resetMigrate >= resetFree) {
    c.cachedMigratePfn[0] = c.cachedMigratePfn[1] = migratePfn;
    c.cachedFreePfn = freePfn;
  }
}

/**
 * @kernel mm/compaction.c pageblock_skip_persistent
 * The pageblock holds (part of) a compound page of at least pageblock order: nothing
 * in it can be compacted or freed until that page goes, so its hint stays.
 */
function pageblockSkipPersistent(map: MemMap, pfn: number): boolean {
  const b = pageblockStart(pfn);
  if (pageFlags(map, b) & PG.head) return pageOrder(map, b) >= PAGEBLOCK_ORDER;
  const big = pfn & ~((1 << (MAX_ORDER - 1)) - 1);
  return (pageFlags(map, big) & PG.head) !== 0 && pageOrder(map, big) >= PAGEBLOCK_ORDER;
}

/**
 * @kernel mm/compaction.c __reset_isolation_pfn
 * Clears the skip hint of pfn's pageblock if a sample of it (every 2^PAGE_ALLOC_COSTLY_ORDER
 * pages) finds an LRU page (checkSource) or a free page (checkTarget). With both, a
 * block without a hint counts at once; a target-only check wants a Movable block.
 */
function resetIsolationPfn(pgdat: PgData, zone: Zone, pfn: number, checkSource: boolean, checkTarget: boolean): boolean {
  const map = pgdat.map;
  if (pageblockSkipPersistent(map, pfn)) return false;
  if (checkSource && checkTarget && !getPageblockSkip(map, pfn)) return true;
  if (!checkSource && checkTarget && getPageblockMigratetype(map, pfn) !== MigrateType.movable) return false;
  const start = Math.max(pageblockStart(pfn), zone.zoneStartPfn);
  const last = Math.min(pageblockEnd(pfn) - 1, zone.zoneStartPfn + zone.spannedPages - 1);
  for (let p = start; p <= last; p += 1 << PAGE_ALLOC_COSTLY_ORDER) {
    if ((checkSource && (pageFlags(map, p) & PG.lru) !== 0) || (checkTarget && pageTypeOf(map, p) === PageType.buddy)) {
      setPageblockSkip(map, start, false);
      return true;
    }
  }
  return false;
}

/** @kernel mm/compaction.c reset_cached_positions: both scanners start from the zone's ends next time. */
function resetCachedPositions(zone: Zone): void {
  const c = zone.compact;
  c.cachedMigratePfn[0] = c.cachedMigratePfn[1] = zone.zoneStartPfn;
  c.cachedFreePfn = pageblockStart(zone.zoneStartPfn + zone.spannedPages - 1);
}

/**
 * @kernel mm/compaction.c update_cached_migrate
 * Where the next async (and, for a sync run, sync) migrate scanner starts: past the
 * pageblock after pfn (pfn is a block's end; 6.1 rounds it up to the next block's end,
 * so the cached position also steps over the block that follows). Only moves forward.
 */
function updateCachedMigrate(cc: CompactControl, pfn: number): void {
  const c = cc.zone.compact;
  const to = pageblockEnd(pfn);
  if (to > c.cachedMigratePfn[0]) c.cachedMigratePfn[0] = to;
  if (cc.mode !== MigrateMode.async && to > c.cachedMigratePfn[1]) c.cachedMigratePfn[1] = to;
}

function isolationSuitable(pgdat: PgData, cc: CompactControl, pfn: number): boolean {
  return cc.ignoreSkipHint || !getPageblockSkip(pgdat.map, pfn);
}

// ---------------------------------------------------------------------------------
// The migrate scanner

/** @kernel mm/compaction.c suitable_migration_source */
function suitableMigrationSource(pgdat: PgData, cc: CompactControl, pfn: number): boolean {
  // 3.6 isolate_migratepages_range: async compaction scans only Movable blocks (migrate_async_suitable)
  if (pgdat.kernel.compaction.asyncSource === 'movable-blocks') return cc.mode !== MigrateMode.async || getPageblockMigratetype(pgdat.map, pfn) === MigrateType.movable;
  if (pageblockSkipPersistent(pgdat.map, pfn)) return false;
  if (cc.mode !== MigrateMode.async || !cc.directCompaction) return true;
  const mt = getPageblockMigratetype(pgdat.map, pfn);
  if (cc.migratetype === MigrateType.movable) return mt === MigrateType.movable;
  return mt === cc.migratetype;
}

/** block_end_pfn(): the end of the naturally aligned block of `order` holding pfn. */
function blockEndPfn(pfn: number, order: number): number {
  return (pfn + (1 << order)) & ~((1 << order) - 1);
}

/**
 * @kernel mm/compaction.c isolate_migratepages_block
 * Scans [lowPfn, endPfn) and isolates up to COMPACT_CLUSTER_MAX movable pages onto
 * cc's migrate list (all of the rest of the block when cc.rescan). Returns the pfn
 * where scanning stopped.
 *
 * Async direct compaction (6.1, skip_on_failure) wants a free block of cc->order, not
 * pages: a page it cannot isolate (pinned, locked, unmovable, on a pcp list, part of a
 * compound page) means that cc->order-aligned block cannot be freed, so the pages
 * isolated so far go back and the scan resumes at the next such block; once a block
 * has been scanned with pages isolated and no failure, they are migrated first.
 *
 * Skip hints (6.1): a scan that starts at a pageblock's first page gives up a block
 * that has one; the first LRU page it isolates, if it is the block's first page, sets
 * the hint (test_and_set_skip: the block is being worked on); a block scanned to its
 * end with nothing isolated, or rescanned, gets the hint if the scan began at its
 * start and none was set yet, and moves the cached migrate position past it.
 * (Exported for the unit tests.)
 */
export function isolateMigratepagesBlock(pgdat: PgData, cc: CompactControl, lowPfn: number, endPfn: number): number {
  const map = pgdat.map;
  const hints = pgdat.kernel.compaction.skipHints;
  let scanned = 0, isolated = 0;
  const skipOnFailure = pgdat.kernel.compaction.skipOnFailure && cc.directCompaction && cc.mode === MigrateMode.async;
  let nextSkipPfn = skipOnFailure ? blockEndPfn(lowPfn, cc.order) : 0;
  // valid_page: the scan began at the block's first page (the one that carries its hint)
  const validPage = hints && (lowPfn & (PAGEBLOCK_NR_PAGES - 1)) === 0;
  let skipUpdated = false;
  let pfn = lowPfn;
  for (; pfn < endPfn; pfn++) {
    if (skipOnFailure && pfn >= nextSkipPfn) {
      // the previous cc->order block was scanned without a failure: migrate what it gave
      if (isolated) break;
      nextSkipPfn = blockEndPfn(pfn, cc.order);
    }
    scanned++;
    if (validPage && pfn === lowPfn && !isolationSuitable(pgdat, cc, pfn)) {
      // isolate_abort: the block has a hint (fast_find_migrateblock may have set it)
      pfn = endPfn;
      break;
    }
    const type = pageTypeOf(map, pfn);
    if (type === PageType.buddy) {
      pfn += (1 << pageOrder(map, pfn)) - 1;
      continue;
    }
    const flags = pageFlags(map, pfn);
    let ok = false;
    if (flags & PG.head) {
      // Compound pages (THP) are not migrated by the model yet: skip the whole page.
      pfn += (1 << pageOrder(map, pfn)) - 1;
    } else if ((flags & PG.lru) === 0) {
      const owner = pageOwner(map, pfn);
      const ops = pgdat.movableOps[owner] ?? null;
      if (ops !== null && (flags & PG.isolated) === 0 && ops.isolatePage(pgdat, pfn, cc.mode)) {
        setPageFlags(map, pfn, pageFlags(map, pfn) | PG.isolated);
        ok = true;
      } else if (ops === null && !skipOnFailure) {
        // isolate_fail, then the same for every following page like this one (a kernel
        // allocation of 512 pages, the balloon's pages without movable ops): each is
        // scanned and fails, so the run is counted at once
        const runEnd = sameOwnerRunEnd(map, pfn + 1, endPfn, owner);
        scanned += runEnd - pfn - 1;
        pfn = runEnd - 1;
        continue;
      }
    } else if (pageRefcount(map, pfn) <= 1 && !(cc.mode === MigrateMode.async && (flags & (PG.locked | PG.writeback)))) {
      // Pinned pages (an extra reference) cannot be migrated; async skips locked ones.
      if (hints && !skipUpdated) {
        // test_and_set_skip, when the lru lock is first taken
        skipUpdated = true;
        if (!cc.ignoreSkipHint && (pfn & (PAGEBLOCK_NR_PAGES - 1)) === 0) {
          if (getPageblockSkip(map, pfn)) break;
          setPageblockSkip(map, pfn, true);
        }
      }
      ok = isolateLruPage(pgdat, pfn);
    }
    if (!ok) {
      // isolate_fail
      if (!skipOnFailure) continue;
      if (isolated) {
        putbackMigratepages(pgdat, cc);
        isolated = 0;
      }
      if (pfn < nextSkipPfn) {
        pfn = nextSkipPfn - 1;
        nextSkipPfn += 1 << cc.order;
      }
      continue;
    }
    listAddTail(map, pfn, cc.migrateHead);
    cc.nrMigratepages++;
    if (++isolated >= COMPACT_CLUSTER_MAX && !cc.rescan) {
      pfn++;
      break;
    }
  }
  // 6.1: a free page or a skip may have taken the scan past the block's end
  if (hints && pfn > endPfn) pfn = endPfn;
  cc.totalMigrateScanned += scanned;
  cc.costNs += scanned * cc.costs.compactScanPage;
  pgdat.events[VmEvent.compact_migrate_scanned] = pgdat.events[VmEvent.compact_migrate_scanned]! + scanned;
  pgdat.events[VmEvent.compact_isolated] = pgdat.events[VmEvent.compact_isolated]! + isolated;
  if (hints) {
    if (pfn === endPfn && (isolated === 0 || cc.rescan)) {
      if (validPage && !skipUpdated) setPageblockSkip(map, lowPfn, true);
      updateCachedMigrate(cc, pfn);
    }
  } else if (pfn >= endPfn && isolated === 0 && !cc.ignoreSkipHint) {
    setPageblockSkip(map, lowPfn, true);
  }
  return pfn;
}

/** @kernel mm/migrate.c putback_movable_pages: everything on cc's migrate list goes back where it came from. */
function putbackMigratepages(pgdat: PgData, cc: CompactControl): void {
  for (let pfn = listFirst(pgdat.map, cc.migrateHead); pfn !== NO_PAGE; pfn = listFirst(pgdat.map, cc.migrateHead)) {
    listDel(pgdat.map, pfn);
    putbackMovablePage(pgdat, pfn);
  }
  cc.nrMigratepages = 0;
}

/** @kernel mm/compaction.c update_fast_start_pfn */
function updateFastStartPfn(cc: CompactControl, pfn: number): void {
  if (cc.fastStartPfn === -1) return;
  if (!cc.fastStartPfn || pfn < cc.fastStartPfn) cc.fastStartPfn = pfn;
}

/** @kernel mm/compaction.c reinit_migrate_pfn: the fast search failed: go on linearly from its lowest find, once. */
function reinitMigratePfn(cc: CompactControl): number {
  if (!cc.fastStartPfn || cc.fastStartPfn === -1) return cc.migratePfn;
  cc.migratePfn = cc.fastStartPfn;
  cc.fastStartPfn = -1;
  return cc.migratePfn;
}

/**
 * @kernel mm/compaction.c fast_find_migrateblock
 * "Briefly search the free lists for a migration source that already has some free
 * pages": for a costly order, when the migrate scanner stands at a pageblock's start
 * (or the zone's) and skip hints are obeyed (not a direct compaction for a non-movable
 * request), the Movable free lists of orders cc->order - 1 down to
 * PAGE_ALLOC_COSTLY_ORDER are searched from their heads, freelist_scan_limit entries
 * in all, for a free block below the first half of the space between the scanners
 * (the first eighth once the scanner has left the zone's start) in an unhinted
 * pageblock. The list is rotated past it, its pageblock is hinted and returned as
 * where to scan. A failed search counts in cc->fast_search_fail and sends the scanner
 * back to the lowest find of this run (reinit_migrate_pfn).
 *
 * NOTE: 6.1 hints the block it found, and isolate_migratepages_block, starting at the
 * block's first page, then gives a hinted block up: the found block is passed over
 * (one page scanned) and the scan goes on after it. Later kernels changed this
 * (mm/compaction: fix set skip in fast_find_migrateblock); the model keeps 6.1's
 * order of events. (Exported for the unit tests.)
 */
export function fastFindMigrateblock(pgdat: PgData, cc: CompactControl): number {
  const zone = cc.zone;
  const map = pgdat.map;
  const limit = freelistScanLimit(cc);
  let pfn = cc.migratePfn;
  if (cc.ignoreSkipHint) return pfn;
  // "a continuation of a previous scan restarted due to COMPACT_CLUSTER_MAX"
  if (pfn !== zone.zoneStartPfn && pfn !== pageblockStart(pfn)) return pfn;
  if (cc.order <= PAGE_ALLOC_COSTLY_ORDER) return pfn;
  if (cc.directCompaction && cc.migratetype !== MigrateType.movable) return pfn;
  let distance = (cc.freePfn - cc.migratePfn) >> 1;
  if (cc.migratePfn !== zone.zoneStartPfn) distance >>= 2;
  const highPfn = pageblockStart(cc.migratePfn + distance);
  let scanned = 0;
  let found = false;
  for (let order = cc.order - 1; order >= PAGE_ALLOC_COSTLY_ORDER && !found && scanned < limit; order--) {
    if (!zone.nrFree[order]) continue;
    const head = freeListHead(zone, order, MigrateType.movable);
    for (let e = listNext(map, head); e !== head; e = listNext(map, e)) {
      if (scanned++ >= limit) {
        moveFreelistTail(map, head, e);
        break;
      }
      if (e < highPfn) {
        // "Avoid if skipped recently"
        if (getPageblockSkip(map, e)) continue;
        // "Reorder to so a future search skips recent pages"
        moveFreelistTail(map, head, e);
        updateFastStartPfn(cc, e);
        pfn = Math.max(pageblockStart(e), zone.zoneStartPfn);
        cc.fastSearchFail = 0;
        found = true;
        setPageblockSkip(map, e, true);
        break;
      }
    }
  }
  cc.totalMigrateScanned += scanned;
  cc.costNs += scanned * cc.costs.compactScanPage;
  pgdat.events[VmEvent.compact_migrate_scanned] = pgdat.events[VmEvent.compact_migrate_scanned]! + scanned;
  if (!found) {
    cc.fastSearchFail++;
    pfn = reinitMigratePfn(cc);
  }
  return pfn;
}

/**
 * @kernel mm/compaction.c isolate_migratepages
 * Advances the migrate scanner over unsuitable pageblocks to the next suitable one
 * below the free scanner and isolates from it (up to COMPACT_CLUSTER_MAX pages), then
 * returns, whether or not it isolated anything ("Either we isolated something and
 * proceed with migration. Or we failed and compact_zone should decide"): compact_zone
 * then drains the pcp lists once the scanner has left a block it migrated from.
 */
function isolateMigratepages(pgdat: PgData, cc: CompactControl): void {
  const zone = cc.zone;
  const zoneEnd = zone.zoneStartPfn + zone.spannedPages;
  const fast = pgdat.kernel.compaction.fastScanners;
  let lowPfn = fast ? fastFindMigrateblock(pgdat, cc) : Math.max(cc.migratePfn, zone.zoneStartPfn);
  // the fast search hinted the block it found: the loop does not hold that against it
  let fastFindBlock = fast && lowPfn !== cc.migratePfn && !cc.fastSearchFail;
  let ran = false;
  // Only whole pageblocks below the free scanner's current block are scanned.
  for (; pageblockEnd(lowPfn) <= cc.freePfn; fastFindBlock = false) {
    ran = true;
    const blockEnd = Math.min(pageblockEnd(lowPfn), zoneEnd);
    // 3.6 counts every pageblock its migrate scanner steps over (COMPACTBLOCKS)
    pgdat.events[VmEvent.compact_blocks_moved] = pgdat.events[VmEvent.compact_blocks_moved]! + 1;
    // the hint is checked once, at the block's start: a scan that resumes inside a
    // block (after COMPACT_CLUSTER_MAX pages) carries on
    if ((lowPfn & (PAGEBLOCK_NR_PAGES - 1)) === 0 && !fastFindBlock && !isolationSuitable(pgdat, cc, lowPfn)) {
      pgdat.era.skipHintSkips++;
      lowPfn = blockEnd;
      continue;
    }
    if (!suitableMigrationSource(pgdat, cc, lowPfn)) {
      // "all remaining blocks between source and target may be unsuitable": the next
      // run need not look at this one again
      if (pgdat.kernel.compaction.skipHints) updateCachedMigrate(cc, blockEnd);
      lowPfn = blockEnd;
      continue;
    }
    lowPfn = isolateMigratepagesBlock(pgdat, cc, lowPfn, blockEnd);
    break;
  }
  // a scan that never began leaves the scanner where it was (the fast search's find is dropped)
  if (ran) cc.migratePfn = lowPfn;
}

// ---------------------------------------------------------------------------------
// The free scanner

/** @kernel mm/compaction.c suitable_migration_target */
function suitableMigrationTarget(pgdat: PgData, pfn: number): boolean {
  const map = pgdat.map;
  const freeBlock = pageTypeOf(map, pfn) === PageType.buddy && pageOrder(map, pfn) >= PAGEBLOCK_ORDER;
  const mt = getPageblockMigratetype(map, pfn);
  if (pgdat.kernel.compaction.targetFreePageblocks) {
    // 3.6: never Reserve or Isolate blocks; a free block of pageblock order always
    if (mt === MigrateType.reserve || mt === MigrateType.isolate) return false;
    return freeBlock || mt === MigrateType.movable;
  }
  if (freeBlock) return false;
  return mt === MigrateType.movable;
}

/** @kernel mm/compaction.c isolate_freepages_block: free pages of one pageblock onto cc's free list. */
function isolateFreepagesBlock(pgdat: PgData, cc: CompactControl, start: number, end: number): number {
  const map = pgdat.map;
  let scanned = 0, isolated = 0;
  // a block with no free page: every page scanned, none isolated (without looking)
  if (map.blockFree[start >> PAGEBLOCK_ORDER] === 0) scanned = end - start;
  else for (let pfn = start; pfn < end; pfn++) {
    scanned++;
    if (pageTypeOf(map, pfn) !== PageType.buddy) continue;
    const order = pageOrder(map, pfn);
    if (!isolateFreePage(pgdat, cc.zone, pfn, order)) break;
    for (let p = pfn; p < pfn + (1 << order); p++) listAddTail(map, p, cc.freeHead);
    isolated += 1 << order;
    pfn += (1 << order) - 1;
  }
  cc.nrFreepages += isolated;
  cc.totalFreeScanned += scanned;
  cc.costNs += scanned * cc.costs.compactScanPage;
  pgdat.events[VmEvent.compact_free_scanned] = pgdat.events[VmEvent.compact_free_scanned]! + scanned;
  pgdat.events[VmEvent.compact_isolated] = pgdat.events[VmEvent.compact_isolated]! + isolated;
  return isolated;
}

/**
 * @kernel mm/compaction.c isolate_freepages
 * Moves the free scanner down pageblock by pageblock, above the migrate scanner's
 * pageblock, until there are at least as many free targets as pages to migrate.
 */
function isolateFreepages(pgdat: PgData, cc: CompactControl): void {
  const zone = cc.zone;
  const zoneEnd = zone.zoneStartPfn + zone.spannedPages;
  const lowPfn = pageblockEnd(cc.migratePfn);
  let block = pageblockStart(cc.freePfn);
  for (; block >= lowPfn; block -= PAGEBLOCK_NR_PAGES) {
    const start = Math.max(block, zone.zoneStartPfn);
    const end = Math.min(block + PAGEBLOCK_NR_PAGES, zoneEnd);
    if (!suitableMigrationTarget(pgdat, start)) continue;
    if (!isolationSuitable(pgdat, cc, start)) { pgdat.era.skipHintSkips++; continue; }
    const got = isolateFreepagesBlock(pgdat, cc, start, end);
    if (got === 0 && !cc.ignoreSkipHint) setPageblockSkip(pgdat.map, start, true);
    // 3.6: after a wrap, the cached position follows the free scanner
    if (got > 0 && cc.wrapped && cc.order > 0) zone.compact.cachedFreePfn = start;
    if (cc.nrFreepages >= cc.nrMigratepages) break;
  }
  cc.freePfn = block;
  // 3.6: a first pass from the zone end leaves its position for the next run
  if (pgdat.kernel.compaction.freeScannerWrap && cc.order > 0 && !cc.wrapped && zone.compact.cachedFreePfn === zoneFreeStart(zone)) zone.compact.cachedFreePfn = Math.max(block, lowPfn);
}

/**
 * @kernel mm/compaction.c isolate_freepages_block (6.1, not strict)
 * Samples [start, end) every `stride` pages for free blocks and isolates them, until
 * cc has as many free pages as pages to migrate; a free block that fails
 * __isolate_free_page's watermark check ends the scan. Every scanned pfn counts, and
 * an isolated block counts all its pages (compact_free_scanned). Returns the pfn the
 * next scan of this block starts at (end when it was scanned to its end).
 */
function isolateFreepagesBlockSampled(pgdat: PgData, cc: CompactControl, start: number, end: number, stride: number): number {
  const map = pgdat.map;
  let scanned = 0, isolated = 0;
  let pfn = start;
  for (; pfn < end; pfn += stride) {
    scanned++;
    if (pageFlags(map, pfn) & PG.head) {
      pfn += (1 << pageOrder(map, pfn)) - 1;
      continue;
    }
    if (pageTypeOf(map, pfn) !== PageType.buddy) continue;
    const order = pageOrder(map, pfn);
    if (!isolateFreePage(pgdat, cc.zone, pfn, order)) break;
    const n = 1 << order;
    for (let p = pfn; p < pfn + n; p++) listAddTail(map, p, cc.freeHead);
    scanned += n - 1;
    isolated += n;
    cc.nrFreepages += n;
    if (cc.nrMigratepages <= cc.nrFreepages) {
      pfn += n;
      break;
    }
    pfn += n - 1;
  }
  if (pfn > end) pfn = end;
  cc.totalFreeScanned += scanned;
  cc.costNs += scanned * cc.costs.compactScanPage;
  pgdat.events[VmEvent.compact_free_scanned] = pgdat.events[VmEvent.compact_free_scanned]! + scanned;
  pgdat.events[VmEvent.compact_isolated] = pgdat.events[VmEvent.compact_isolated]! + isolated;
  return pfn;
}

/**
 * @kernel mm/compaction.c update_pageblock_skip
 * The free scanner went through a whole pageblock: hint it (it is full, or nearly) and
 * let the cached free position come down to it.
 */
function updatePageblockSkip(pgdat: PgData, cc: CompactControl, pfn: number): void {
  setPageblockSkip(pgdat.map, pfn, true);
  if (pfn < cc.zone.compact.cachedFreePfn) cc.zone.compact.cachedFreePfn = pfn;
}

/**
 * @kernel mm/compaction.c isolate_freepages (6.1)
 * The free scanner from cc->free_pfn, which may stand inside a pageblock where the
 * last isolation stopped, down to the pageblock above the migrate scanner's: in each
 * suitable, unhinted block it isolates free pages until there are enough for the
 * pages to migrate, and stops there (the next call resumes at that pfn, or at the
 * block below when this one was used up). Async compaction samples every
 * COMPACT_CLUSTER_MAX-th page of a block until a block gives something (the stride
 * doubles up to that after every barren block; one page after a fruitful one). A
 * block scanned to its end is hinted; a scan ended early by the watermark ends the
 * search. (Exported for the unit tests.)
 */
export function isolateFreepagesSampled(pgdat: PgData, cc: CompactControl): void {
  // "Try a small search of the free lists for a candidate"
  if (pgdat.kernel.compaction.fastScanners) {
    fastIsolateFreepages(pgdat, cc);
    if (cc.nrFreepages) return;
  }
  const zone = cc.zone;
  const zoneEnd = zone.zoneStartPfn + zone.spannedPages;
  let isolateStart = cc.freePfn;
  let blockStart = pageblockStart(isolateStart);
  let blockEnd = Math.min(blockStart + PAGEBLOCK_NR_PAGES, zoneEnd);
  const lowPfn = pageblockEnd(cc.migratePfn);
  let stride = cc.mode === MigrateMode.async ? COMPACT_CLUSTER_MAX : 1;
  for (; blockStart >= lowPfn; blockEnd = blockStart, blockStart -= PAGEBLOCK_NR_PAGES, isolateStart = blockStart) {
    // pageblock_pfn_to_page: a block that starts below the zone is not scanned
    if (blockStart < zone.zoneStartPfn) continue;
    if (!suitableMigrationTarget(pgdat, blockStart)) continue;
    if (!isolationSuitable(pgdat, cc, blockStart)) { pgdat.era.skipHintSkips++; continue; }
    const before = cc.nrFreepages;
    isolateStart = isolateFreepagesBlockSampled(pgdat, cc, isolateStart, blockEnd, stride);
    if (isolateStart === blockEnd) updatePageblockSkip(pgdat, cc, blockStart);
    if (cc.nrFreepages >= cc.nrMigratepages) {
      // "Restart at previous pageblock if more freepages can be isolated next time"
      if (isolateStart >= blockEnd) isolateStart = blockStart - PAGEBLOCK_NR_PAGES;
      break;
    } else if (isolateStart < blockEnd) {
      // "If isolation failed early, do not continue needlessly"
      break;
    }
    if (cc.nrFreepages > before) {
      stride = 1;
      continue;
    }
    stride = Math.min(COMPACT_CLUSTER_MAX, stride << 1);
  }
  cc.freePfn = isolateStart;
}

/**
 * @kernel mm/compaction.c freelist_scan_limit
 * How many free-list entries a fast search looks at: COMPACT_CLUSTER_MAX + 1, halved
 * for every fast search in a row that failed.
 */
function freelistScanLimit(cc: CompactControl): number {
  return (cc.fastSearchFail < 31 ? COMPACT_CLUSTER_MAX >> cc.fastSearchFail : 0) + 1;
}

/**
 * @kernel mm/compaction.c move_freelist_head
 * After a search from a free list's tail stopped at `entry`: rotate the list so that
 * entry comes first, and the entries not looked at are the next search's tail. A list
 * walked to its end (entry is the head) or stopped at its last entry stays as it is.
 * NOTE: rotating a circular list is moving its head node: O(1), no walk.
 */
function moveFreelistHead(map: MemMap, head: number, entry: number): void {
  if (entry === head || listNext(map, entry) === head) return;
  listDel(map, head);
  listAddTail(map, head, entry);
}

/** @kernel mm/compaction.c move_freelist_tail: the same for a search from the head: entry becomes the last. */
function moveFreelistTail(map: MemMap, head: number, entry: number): void {
  if (entry === head || listPrev(map, entry) === head) return;
  listDel(map, head);
  listAdd(map, head, entry);
}

/**
 * @kernel mm/compaction.c next_search_order
 * The free lists are searched from cc->search_order down, wrapping to cc->order - 1;
 * when the search comes round to where it began, it ends (-1) and the next one starts
 * an order lower.
 */
function nextSearchOrder(cc: CompactControl, order: number): number {
  order--;
  if (order < 0) order = cc.order - 1;
  if (order === cc.searchOrder) {
    cc.searchOrder--;
    if (cc.searchOrder < 0) cc.searchOrder = cc.order - 1;
    return -1;
  }
  return order;
}

/**
 * @kernel mm/compaction.c fast_isolate_around
 * Sync (or kcompactd) compaction that took a block off the free lists also scans the
 * rest of its pageblock for targets, and hints the block if that was still not enough.
 */
function fastIsolateAround(pgdat: PgData, cc: CompactControl, pfn: number): void {
  if (cc.nrFreepages >= cc.nrMigratepages) return;
  // "Minimise scanning during async compaction"
  if (cc.directCompaction && cc.mode === MigrateMode.async) return;
  const zone = cc.zone;
  const start = Math.max(pageblockStart(pfn), zone.zoneStartPfn);
  const end = Math.min(pageblockEnd(pfn), zone.zoneStartPfn + zone.spannedPages);
  isolateFreepagesBlockSampled(pgdat, cc, start, end, 1);
  if (cc.nrFreepages < cc.nrMigratepages) setPageblockSkip(pgdat.map, start, true);
}

/**
 * @kernel mm/compaction.c fast_isolate_freepages
 * Before the linear scan, look for a target on the Movable free lists of the orders
 * below cc->order: from each list's tail (the blocks freed longest ago), a free block
 * in the top quarter of the space between the scanners is taken at once; failing
 * that, the highest one seen in the top half. Each list gets a limited look (half of
 * freelist_scan_limit, or half a pageblock's worth when the free scanner is only
 * starting; halved again by each candidate and each list used up) and is rotated so
 * the next search starts where this one stopped. A search that finds nothing counts
 * in cc->fast_search_fail and, when the scan is starting, moves the free scanner to
 * the highest pageblock it saw with a free page (or, for direct compaction, the
 * middle of the space). The cached free pfn comes down to a block below the highest
 * seen. Returns the pfn found (or the free scanner's). (Exported for the unit tests.)
 */
export function fastIsolateFreepages(pgdat: PgData, cc: CompactControl): number {
  const zone = cc.zone;
  const map = pgdat.map;
  if (cc.order <= 0) return cc.freePfn;
  let limit = Math.max(1, freelistScanLimit(cc) >> 1);
  let scanned = 0, isolated = 0;
  let highest = 0;
  let page = NO_PAGE;
  let scanStart = false;
  // "If starting the scan, use a deeper search and use the highest PFN found if a
  // suitable one is not found"
  if (cc.freePfn >= zone.compact.initFreePfn) {
    limit = PAGEBLOCK_NR_PAGES >> 1;
    scanStart = true;
  }
  const distance = cc.freePfn - cc.migratePfn;
  let lowPfn = pageblockStart(cc.freePfn - (distance >> 2));
  const minPfn = pageblockStart(cc.freePfn - (distance >> 1));
  if (minPfn > lowPfn) lowPfn = minPfn;
  cc.searchOrder = Math.min(cc.order - 1, cc.searchOrder);
  for (let order = cc.searchOrder; page === NO_PAGE && order >= 0; order = nextSearchOrder(cc, order)) {
    if (!zone.nrFree[order]) continue;
    const head = freeListHead(zone, order, MigrateType.movable);
    let orderScanned = 0;
    let highPfn = 0;
    // where the walk stopped; the head itself when it went through the whole list
    let stop = head;
    for (let e = listPrev(map, head); e !== head; e = listPrev(map, e)) {
      orderScanned++;
      scanned++;
      if (e >= highest) highest = Math.max(pageblockStart(e), zone.zoneStartPfn);
      if (e >= lowPfn) {
        cc.fastSearchFail = 0;
        cc.searchOrder = order;
        page = e;
        stop = e;
        break;
      }
      if (e >= minPfn && e > highPfn) {
        highPfn = e;
        // "Shorten the scan if a candidate is found"
        limit >>= 1;
      }
      if (orderScanned >= limit) {
        stop = e;
        break;
      }
    }
    // "Use a minimum pfn if a preferred one was not found"
    if (page === NO_PAGE && highPfn) page = stop = highPfn;
    // "Reorder to so a future search skips recent pages"
    moveFreelistHead(map, head, stop);
    if (page !== NO_PAGE) {
      if (isolateFreePage(pgdat, zone, page, order)) {
        const n = 1 << order;
        for (let p = page; p < page + n; p++) listAddTail(map, p, cc.freeHead);
        scanned += n - 1;
        isolated += n;
        cc.nrFreepages += n;
      } else {
        // "If isolation fails, abort the search"
        order = cc.searchOrder + 1;
        page = NO_PAGE;
      }
    }
    // "Smaller scan on next order so the total scan is related to freelist_scan_limit"
    if (orderScanned >= limit) limit = Math.max(1, limit >> 1);
  }
  if (page === NO_PAGE) {
    cc.fastSearchFail++;
    if (scanStart) {
      // "Use the highest PFN found above min. If one was not found, be pessimistic for
      // direct compaction and use the min mark."
      if (highest >= minPfn) {
        page = highest;
        cc.freePfn = highest;
      } else if (cc.directCompaction && minPfn >= zone.zoneStartPfn && minPfn < zone.zoneStartPfn + zone.spannedPages) {
        page = minPfn;
        cc.freePfn = minPfn;
      }
    }
  }
  if (highest && highest >= zone.compact.cachedFreePfn) zone.compact.cachedFreePfn = highest - PAGEBLOCK_NR_PAGES;
  cc.totalFreeScanned += scanned;
  cc.costNs += scanned * cc.costs.compactScanPage;
  pgdat.events[VmEvent.compact_free_scanned] = pgdat.events[VmEvent.compact_free_scanned]! + scanned;
  pgdat.events[VmEvent.compact_isolated] = pgdat.events[VmEvent.compact_isolated]! + isolated;
  if (page === NO_PAGE) return cc.freePfn;
  fastIsolateAround(pgdat, cc, page);
  return page;
}

/** start_free_pfn(): the last pageblock of the zone, where a free scanner starts. */
function zoneFreeStart(zone: Zone): number {
  return pageblockStart(zone.zoneStartPfn + zone.spannedPages - 1);
}

/** compaction_alloc: a free target for migration. */
function compactionAlloc(pgdat: PgData, cc: CompactControl): number {
  if (cc.nrFreepages === 0) {
    if (pgdat.kernel.compaction.freeScanner === 'until-enough') isolateFreepagesSampled(pgdat, cc);
    else isolateFreepages(pgdat, cc);
  }
  const pfn = listFirst(pgdat.map, cc.freeHead);
  if (pfn === NO_PAGE) return NO_PAGE;
  listDel(pgdat.map, pfn);
  cc.nrFreepages--;
  return pfn;
}

/** compaction_free: an unused target goes back on the free list. */
function compactionFree(pgdat: PgData, cc: CompactControl, pfn: number): void {
  listAddTail(pgdat.map, pfn, cc.freeHead);
  cc.nrFreepages++;
}

/** @kernel mm/compaction.c release_freepages: unused targets back to the allocator; returns the highest pfn freed (-1: none). */
function releaseFreepages(pgdat: PgData, cc: CompactControl): number {
  const map = pgdat.map;
  let high = -1;
  for (let pfn = listFirst(map, cc.freeHead); pfn !== NO_PAGE; pfn = listFirst(map, cc.freeHead)) {
    listDel(map, pfn);
    freePages(pgdat, pfn, 0);
    if (pfn > high) high = pfn;
  }
  cc.nrFreepages = 0;
  return high;
}

// ---------------------------------------------------------------------------------
// Running

/**
 * @kernel mm/compaction.c compact_finished (Linux 3.6)
 * The scanners met: the first time, for an order, the free scanner restarts from the
 * zone end (compact_cached_free_pfn reset); after that, or once the wrapped scanner
 * passes where the run started, the zone is done. A run for an order succeeds when the
 * zone meets its low watermark plus the request at that order (the 3.6 per-order
 * test) and a free block of the order is on the request's list, or any free block
 * of pageblock order exists.
 */
function compactFinished36(pgdat: PgData, cc: CompactControl): CompactResult {
  const zone = cc.zone;
  if (cc.freePfn <= cc.migratePfn) {
    if (cc.order > 0 && !cc.wrapped) {
      cc.freePfn = zone.compact.cachedFreePfn = zoneFreeStart(zone);
      cc.wrapped = true;
      pgdat.era.freeScannerWraps++;
      return CompactResult.continue;
    }
    return CompactResult.complete;
  }
  if (cc.wrapped && cc.freePfn <= cc.startFreePfn) return CompactResult.complete;
  if (cc.order < 0) return CompactResult.continue;
  if (!zoneWatermarkOk(zone, cc.order, zone.watermark[Wmark.low]! + (1 << cc.order), 0, 0)) return CompactResult.continue;
  for (let o = cc.order; o < MAX_ORDER; o++) {
    if (zone.nrFreeMt[o * 5 + cc.migratetype]) return CompactResult.success;
    if (o >= PAGEBLOCK_ORDER && zone.nrFree[o]) return CompactResult.success;
  }
  return CompactResult.continue;
}

/**
 * @kernel mm/compaction.c compact_scanners_met
 * The free scanner has come down to the migrate scanner's pageblock (or below it).
 * Either may stand inside a pageblock: the test compares pageblocks, not pfns.
 */
function compactScannersMet(cc: CompactControl): boolean {
  return cc.freePfn >> PAGEBLOCK_ORDER <= cc.migratePfn >> PAGEBLOCK_ORDER;
}

/**
 * @kernel mm/compaction.c __compact_finished
 * The scanners met: a direct compaction asks for the skip hints to be cleared
 * (compact_blockskip_flush; the model clears them at the next run, the kernel when
 * kswapd next sleeps); a run that covered the zone from its start is COMPLETE, one
 * that resumed from cached positions PARTIAL_SKIPPED. Otherwise a run for an order
 * looks for a suitable free block only when its migrate scanner stands at a pageblock
 * boundary: "always finish scanning a pageblock to reduce the possibility of
 * fallbacks in the future", so a block half migrated is finished first.
 */
export function compactFinished(cc: CompactControl): CompactResult {
  if (compactScannersMet(cc)) {
    // "Let the next compaction start anew"
    resetCachedPositions(cc.zone);
    if (cc.directCompaction) cc.zone.compact.blockskipFlush = true;
    return cc.wholeZone || cc.fromZoneStart ? CompactResult.complete : CompactResult.partialSkipped;
  }
  if (cc.proactiveLow >= 0) return fragmentationScoreZone(cc.zone) > cc.proactiveLow ? CompactResult.continue : CompactResult.success;
  if (cc.order < 0) return CompactResult.continue;
  if ((cc.migratePfn & (PAGEBLOCK_NR_PAGES - 1)) !== 0) return CompactResult.continue;
  const zone = cc.zone;
  for (let o = cc.order; o < MAX_ORDER; o++) {
    // a free block of the request's type; or one a fallback would steal (a non-movable
    // request takes a whole block, which the alignment test above has finished)
    if (zone.nrFreeMt[o * 5 + cc.migratetype]) return CompactResult.success;
    if (findSuitableFallback(zone, o, cc.migratetype, true) !== -1) return CompactResult.success;
  }
  return CompactResult.continue;
}

/**
 * @kernel mm/compaction.c compaction_suitable
 * Is compaction worth trying for this order? SKIPPED when there are not enough free
 * pages to migrate into (order-0 watermark plus compact_gap), SUCCESS when a page of
 * the order is already free, NOT_SUITABLE_ZONE when the fragmentation index says the
 * failure is lack of memory rather than fragmentation.
 */
export function compactionSuitable(zone: Zone, order: number, highestZoneidx: number): CompactResult {
  if (zone.kernel.compaction.rules === '3.6') return compactionSuitable36(zone, order);
  const r = __compactionSuitable(zone, order, highestZoneidx, zone.vmStat[ZoneStat.nr_free_pages]!);
  if (r !== CompactResult.continue || order < 0) return r;
  if (order > 3) {
    const fragindex = fragmentationIndex(zone, order);
    if (fragindex >= 0 && fragindex <= EXTFRAG_THRESHOLD) return CompactResult.notSuitableZone;
  }
  return CompactResult.continue;
}

/**
 * @kernel mm/compaction.c compaction_suitable (Linux 3.6)
 * SKIPPED without the low watermark plus twice the request free at order 0, and also
 * when the fragmentation index (at any order) says the failure is lack of memory;
 * SUCCESS (COMPACT_PARTIAL) when a suitable block is free and the watermark holds.
 */
function compactionSuitable36(zone: Zone, order: number): CompactResult {
  if (order < 0) return CompactResult.continue;
  const mark = zone.watermark[Wmark.low]! + (2 << order);
  if (!zoneWatermarkOk(zone, 0, mark, 0, 0)) return CompactResult.skipped;
  const fragindex = fragmentationIndex(zone, order);
  if (fragindex >= 0 && fragindex <= EXTFRAG_THRESHOLD) return CompactResult.skipped;
  if (fragindex === -1000 && zoneWatermarkOk(zone, order, mark, 0, 0)) return CompactResult.success;
  return CompactResult.continue;
}

/**
 * @kernel mm/compaction.c __compaction_suitable
 * compactionSuitable without the fragmentation index, with the free pages to count
 * given (`wmarkTarget`): compaction_zonelist_suitable asks what it would say if reclaim
 * freed some.
 */
function __compactionSuitable(zone: Zone, order: number, highestZoneidx: number, wmarkTarget: number): CompactResult {
  if (order < 0) return CompactResult.continue;
  if (zoneWatermarkOk(zone, order, zone.watermark[Wmark.low]! + zone.watermarkBoost, highestZoneidx, 0)) return CompactResult.success;
  const mark = (order > 3 ? zone.watermark[Wmark.low]! : zone.watermark[Wmark.min]!) + (2 << order);
  if (!zoneWatermarkOk(zone, 0, mark, highestZoneidx, 0, wmarkTarget)) return CompactResult.skipped;
  return CompactResult.continue;
}

/**
 * @kernel mm/compaction.c compaction_zonelist_suitable
 * Would compaction have enough to work with in some zone if reclaim freed part of the
 * reclaimable pages (a share of them: 1/order, not to thrash for one allocation)?
 */
export function compactionZonelistSuitable(pgdat: PgData, order: number, highestZoneidx: number, canSwap: boolean): boolean {
  for (let zi = highestZoneidx; zi >= 0; zi--) {
    const zone = pgdat.zones[zi];
    if (!zone || !zone.managedPages) continue;
    const v = zone.vmStat;
    let reclaimable = v[ZoneStat.nr_zone_inactive_file]! + v[ZoneStat.nr_zone_active_file]!;
    if (canSwap) reclaimable += v[ZoneStat.nr_zone_inactive_anon]! + v[ZoneStat.nr_zone_active_anon]!;
    const available = Math.floor(reclaimable / order) + v[ZoneStat.nr_free_pages]!;
    if (__compactionSuitable(zone, order, highestZoneidx, available) === CompactResult.continue) return true;
  }
  return false;
}

/** compaction_status_string: the names the tracepoints print for a CompactResult. */
const COMPACT_STATUS = ['not_suitable_zone', 'skipped', 'deferred', 'no_suitable_page', 'continue', 'complete', 'partial_skipped', 'contended', 'success'] as const;

/** Who runs a compaction, for the tracepoints: the task for direct compaction and compact_memory, else kcompactd. */
function compactComm(cc: CompactControl): string {
  return cc.directCompaction || (cc.order < 0 && cc.proactiveLow < 0) ? 'task' : 'kcompactd0';
}

/** mm_compaction_begin / mm_compaction_end's fields. */
function traceCompaction(pgdat: PgData, cc: CompactControl, event: string, status: number): void {
  const z = cc.zone, hex = (n: number) => '0x' + n.toString(16);
  pgdat.trace!(compactComm(cc), event, `zone_start=${hex(z.zoneStartPfn)} migrate_pfn=${hex(cc.migratePfn)} free_pfn=${hex(cc.freePfn)} zone_end=${hex(z.zoneStartPfn + z.spannedPages)}, mode=${cc.mode === MigrateMode.async ? 'async' : 'sync'}${status >= 0 ? ` status=${COMPACT_STATUS[status as number]}` : ''}`);
}

/** mm_compaction_deferred / _defer_compaction / _defer_reset's fields. */
export function traceDefer(pgdat: PgData, event: string, zone: Zone, order: number): void {
  const c = zone.compact;
  pgdat.trace!('task', event, `node=0 zone=${zone.name.padEnd(8)} order=${order} order_failed=${c.orderFailed} consider=${c.considered} limit=${1 << c.deferShift}`);
}

/**
 * A compact_zone run in progress: compactZoneBegin sets it up, each compactZoneStep is
 * one pass of its loop (compact_finished, isolate_migratepages, migrate_pages), and
 * compactZoneEnd gives back its free targets and returns the result. A kernel thread
 * that yields (cond_resched) between passes runs them in slices; compactZone runs
 * them all at once.
 */
export type CompactRun = {
  cc: CompactControl;
  capc: CaptureControl | null;
  ret: CompactResult;
  done: boolean;
  /** "Until a pageblock with isolation candidates is found, keep the cached PFNs in sync". */
  updateCached: boolean;
  /** The block migrated from last (last_migrated_pfn), 0 when none since the last drain. */
  lastMigratedPfn: number;
};

/**
 * @kernel mm/compaction.c compact_zone
 * Runs the scanners until compactFinished says stop; migrates what the migrate
 * scanner isolates into what the free scanner isolates. Returns the result; the
 * counters and cost are in cc. A direct compaction passes its capture control: once
 * a freed block of its order has been captured (compaction_capture) the run stops
 * with SUCCESS.
 */
export function compactZone(pgdat: PgData, cc: CompactControl, capc: CaptureControl | null = null): CompactResult {
  const run = compactZoneBegin(pgdat, cc, capc);
  while (!compactZoneStep(pgdat, run));
  return compactZoneEnd(pgdat, run);
}

/** compact_zone up to its loop: the scanners' starting positions. */
export function compactZoneBegin(pgdat: PgData, cc: CompactControl, capc: CaptureControl | null = null): CompactRun {
  const zone = cc.zone;
  const c = zone.compact;
  const era = pgdat.kernel.compaction;
  if (era.freeScannerWrap) {
    // 3.6 compact_zone: the migrate scanner from the zone start, the free scanner from
    // compact_cached_free_pfn for an order (the zone end for compact_memory)
    cc.migratePfn = zone.zoneStartPfn;
    cc.freePfn = cc.order > 0 ? c.cachedFreePfn : zoneFreeStart(zone);
    cc.startFreePfn = cc.freePfn;
    cc.wrapped = false;
  } else if (!cc.wholeZone) {
    // compaction_restarting: after the longest deferral, start again without skip hints
    // (if a direct compaction asked for them to be flushed)
    if (era.skipHints && cc.order >= c.orderFailed && c.deferShift === COMPACT_MAX_DEFER_SHIFT && c.considered >= 1 << COMPACT_MAX_DEFER_SHIFT) resetIsolationSuitable(pgdat, zone);
    const start = zone.zoneStartPfn, end = start + zone.spannedPages;
    cc.migratePfn = c.cachedMigratePfn[cc.mode === MigrateMode.async ? 0 : 1];
    cc.freePfn = c.cachedFreePfn;
    // cached positions out of the zone (update_cached_migrate runs ahead) start over
    if (cc.freePfn < start || cc.freePfn >= end) cc.freePfn = c.cachedFreePfn = zoneFreeStart(zone);
    if (cc.migratePfn < start || cc.migratePfn >= end) {
      cc.migratePfn = start;
      c.cachedMigratePfn[0] = c.cachedMigratePfn[1] = start;
    }
    cc.fromZoneStart = cc.migratePfn <= (era.skipHints ? c.initMigratePfn : start);
  }
  cc.fastStartPfn = 0;
  const sync = cc.mode !== MigrateMode.async;
  if (pgdat.trace !== null) traceCompaction(pgdat, cc, 'mm_compaction_begin', -1);
  return { cc, capc, ret: CompactResult.continue, done: false, updateCached: era.skipHints && !sync && c.cachedMigratePfn[0] === c.cachedMigratePfn[1], lastMigratedPfn: 0 };
}

/**
 * Once the migrate scanner has left the last migrated-from cc->order block, this cpu's
 * pcp lists are flushed (lru_add_drain_cpu_zone) so the freed sources can merge for
 * the allocation.
 */
function checkDrain(pgdat: PgData, run: CompactRun): void {
  const cc = run.cc;
  if (pgdat.kernel.compaction.drainPerBlock && cc.order > 0 && run.lastMigratedPfn !== 0 && run.lastMigratedPfn < cc.migratePfn - (cc.migratePfn % (1 << cc.order))) {
    drainLocalPages(pgdat, cc.zone);
    run.lastMigratedPfn = 0;
  }
}

function finishRun(run: CompactRun, r: CompactResult): true {
  run.ret = r;
  run.done = true;
  return true;
}

/** One pass of compact_zone's loop; true when the run is finished (run.ret is its result). */
export function compactZoneStep(pgdat: PgData, run: CompactRun): boolean {
  if (run.done) return true;
  const { cc, capc } = run;
  const c = cc.zone.compact;
  const era = pgdat.kernel.compaction;
  const sync = cc.mode !== MigrateMode.async;
  const ret = era.rules === '3.6' ? compactFinished36(pgdat, cc) : compactFinished(cc);
  if (ret !== CompactResult.continue) return finishRun(run, ret);
  const from = cc.migratePfn;
  // rescan: this pass starts in the block the last one migrated from
  cc.rescan = era.skipHints && pageblockStart(run.lastMigratedPfn) === pageblockStart(from);
  isolateMigratepages(pgdat, cc);
  if (cc.nrMigratepages === 0) {
    if (run.updateCached) c.cachedMigratePfn[1] = c.cachedMigratePfn[0];
    // Nothing left below the free scanner's block: the scanners have met.
    if (cc.migratePfn === from) cc.migratePfn = Math.max(cc.migratePfn, cc.freePfn);
    checkDrain(pgdat, run);
    if (capc !== null && capc.page !== NO_PAGE) return finishRun(run, CompactResult.success);
    return false;
  }
  run.updateCached = false;
  run.lastMigratedPfn = from;
  const out = migratePages(pgdat, cc.migrateHead, () => compactionAlloc(pgdat, cc), (pg, pfn) => compactionFree(pg, cc, pfn), cc.mode);
  cc.migrated += out.succeeded;
  cc.migrateFailed += out.failed;
  const ev = pgdat.events;
  ev[VmEvent.compact_pages_moved] = ev[VmEvent.compact_pages_moved]! + out.succeeded;
  ev[VmEvent.compact_pagemigrate_failed] = ev[VmEvent.compact_pagemigrate_failed]! + out.failed;
  cc.costNs += out.succeeded * cc.costs.migratePage;
  cc.nrMigratepages = 0;
  if (out.outOfTargets) {
    putbackMigratepages(pgdat, cc);
    if (era.freeScanner === 'until-enough') {
      // -ENOMEM: the free scanner met the migrate scanner (compact_finished sees it),
      // or stopped short of it (the watermark): then the run ends COMPACT_CONTENDED
      if (!compactScannersMet(cc)) return finishRun(run, CompactResult.contended);
    } else {
      // The free scanner met the migrate scanner: put back what is left and finish.
      cc.freePfn = Math.min(cc.freePfn, cc.migratePfn);
    }
  }
  if ((out.failed || out.outOfTargets) && era.skipOnFailure && cc.directCompaction && !sync) {
    // "We failed to migrate at least one page in the current order-aligned block, so
    // skip the rest of it"; draining for it would be useless
    cc.migratePfn = blockEndPfn(cc.migratePfn - 1, cc.order);
    run.lastMigratedPfn = 0;
  }
  checkDrain(pgdat, run);
  // "Stop if a page has been captured"
  if (capc !== null && capc.page !== NO_PAGE) return finishRun(run, CompactResult.success);
  return false;
}

/** compact_zone after its loop: the free targets left go back, the cached free pfn follows. */
export function compactZoneEnd(pgdat: PgData, run: CompactRun): CompactResult {
  const { cc } = run;
  const c = cc.zone.compact;
  const era = pgdat.kernel.compaction;
  const high = releaseFreepages(pgdat, cc);
  // the migrate scanner's cached position moved with update_cached_migrate, and met
  // scanners reset both (reset_cached_positions); the free scanner's moved down with
  // update_pageblock_skip, and goes back up to the highest target it gives back
  // ("so we don't leave any returned pages behind in the next attempt")
  if (era.freeScanner === 'until-enough') {
    if (high >= 0 && pageblockStart(high) > c.cachedFreePfn) c.cachedFreePfn = pageblockStart(high);
  } else if (!cc.wholeZone && !era.freeScannerWrap && !compactScannersMet(cc)) {
    c.cachedFreePfn = pageblockStart(cc.freePfn);
  }
  if (pgdat.trace !== null) traceCompaction(pgdat, cc, 'mm_compaction_end', run.ret);
  return run.ret;
}

/** The figures of one compact_memory run (for the scenario event and bench). */
export type CompactMemoryReport = {
  migrateScanned: number;
  freeScanned: number;
  migrated: number;
  failed: number;
  costNs: number;
};

/**
 * @kernel mm/compaction.c compact_nodes, compact_node (via /proc/sys/vm/compact_memory)
 * Compacts every populated zone completely in sync mode, ignoring skip hints. Before,
 * compact_nodes flushes the LRU's per-cpu pagevecs (lru_add_drain_all: nothing to do
 * in the model, whose pages join the LRU at once) — not the per-cpu free lists: pages
 * on them stay there, and so do the sources compaction frees (order -1 never drains
 * them, unlike compact_zone for an allocation's order).
 */
export function compactMemory(pgdat: PgData, costs: CostTable = pgdat.costs): CompactMemoryReport {
  const rep: CompactMemoryReport = { migrateScanned: 0, freeScanned: 0, migrated: 0, failed: 0, costNs: 0 };
  for (let zi = 0; zi < Math.min(MAX_NR_ZONES, pgdat.zones.length); zi++) {
    const zone = pgdat.zones[zi]!;
    if (!zone.managedPages) continue;
    const cc = createCompactControl(pgdat, zone, -1, MigrateType.movable, MigrateMode.sync, costs);
    compactZone(pgdat, cc);
    rep.migrateScanned += cc.totalMigrateScanned;
    rep.freeScanned += cc.totalFreeScanned;
    rep.migrated += cc.migrated;
    rep.failed += cc.migrateFailed;
    rep.costNs += cc.costNs;
  }
  return rep;
}

// ---------------------------------------------------------------------------------
// kcompactd and proactive compaction

/** vm.compaction_proactiveness (default 20; 0 disables proactive compaction). */
export const DEFAULT_COMPACTION_PROACTIVENESS = 20;

/**
 * @kernel mm/compaction.c compaction_proactiveness_sysctl_handler
 * Writing vm.compaction_proactiveness (0 .. 100): a non-zero value wakes kcompactd for
 * a proactive check at once (proactive_compact_trigger); its period restarts from there.
 */
export function compactionProactivenessSysctlHandler(pgdat: PgData, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 100) throw new RangeError('compaction_proactiveness must be a whole number from 0 to 100');
  pgdat.sysctl.compactionProactiveness = value;
  if (value) pgdat.hooks.kcompactdWake?.();
}
/** HPAGE_FRAG_CHECK_INTERVAL_MSEC: how often kcompactd checks the fragmentation score. */
export const HPAGE_FRAG_CHECK_INTERVAL_NS = 500e6;
/** COMPACTION_HPAGE_ORDER */
const COMPACTION_HPAGE_ORDER = 9;

/**
 * @kernel mm/compaction.c fragmentation_score_zone (extfrag_for_order)
 * The percentage of a zone's free memory that is not in blocks of huge page order.
 */
export function fragmentationScoreZone(zone: Zone): number {
  let free = 0, suitable = 0;
  for (let o = 0; o < MAX_ORDER; o++) {
    free += zone.nrFree[o]! << o;
    if (o >= COMPACTION_HPAGE_ORDER) suitable += zone.nrFree[o]! << (o - COMPACTION_HPAGE_ORDER);
  }
  if (!free) return 0;
  return Math.floor(((free - (suitable << COMPACTION_HPAGE_ORDER)) * 100) / free);
}

/** @kernel mm/compaction.c fragmentation_score_node: zone scores weighted by present pages. */
export function fragmentationScoreNode(pgdat: PgData): number {
  let present = 0;
  for (const z of pgdat.zones) present += z.presentPages;
  let score = 0;
  for (const z of pgdat.zones) if (z.presentPages) score += Math.floor((fragmentationScoreZone(z) * z.presentPages) / (present + 1));
  return score;
}

/** @kernel mm/compaction.c fragmentation_score_wmark: [low, high] for a proactiveness. */
export function fragmentationScoreWmarks(proactiveness: number): [number, number] {
  const low = Math.max(100 - proactiveness, 5);
  return [low, Math.min(low + 10, 100)];
}

/** Adds a daemon run's scan counts to the compact_daemon_* counters. */
/** kcompactd's scanning (KCOMPACTD_MIGRATE_SCANNED, _FREE_SCANNED) and its vCPU time. */
function countDaemon(pgdat: PgData, costNs: number, migrateScanned: number, freeScanned: number): void {
  const ev = pgdat.events;
  ev[VmEvent.compact_daemon_migrate_scanned] = ev[VmEvent.compact_daemon_migrate_scanned]! + migrateScanned;
  ev[VmEvent.compact_daemon_free_scanned] = ev[VmEvent.compact_daemon_free_scanned]! + freeScanned;
  pgdat.daemonNs += costNs;
}

/** A proactive_compact_node run in progress (kcompactd runs it in slices). */
export type ProactiveRun = { low: number; zi: number; run: CompactRun | null };

/**
 * @kernel mm/compaction.c proactive_compact_node
 * Compacts each zone in sync-light mode until its fragmentation score is at most the
 * low mark (__compact_finished's proactive branch). As 6.1 sets its compact_control up
 * (order -1, ignore_skip_hint, whole_zone): from the zone's start and end, every block
 * whatever its skip hint. proactiveCompactStart sets a run up; proactiveCompactSlice
 * runs it on for about `budgetNs` of its cost (kcompactd's slice before cond_resched
 * lets a task in: compact_zone calls it at every isolate_migratepages_block) and says
 * whether it is done; proactiveCompactNode runs it whole.
 */
export function proactiveCompactStart(proactiveness: number): ProactiveRun {
  return { low: fragmentationScoreWmarks(proactiveness)[0], zi: 0, run: null };
}

export function proactiveCompactSlice(pgdat: PgData, pr: ProactiveRun, budgetNs: number): boolean {
  let spent = 0;
  while (pr.zi < pgdat.zones.length) {
    if (pr.run === null) {
      const zone = pgdat.zones[pr.zi]!;
      if (!zone.managedPages || fragmentationScoreZone(zone) <= pr.low) { pr.zi++; continue; }
      // createCompactControl gives order -1 whole_zone and ignore_skip_hint
      const cc = createCompactControl(pgdat, zone, -1, MigrateType.movable, MigrateMode.syncLight, pgdat.costs, CompactHeads.kcompactd);
      cc.proactiveLow = pr.low;
      pr.run = compactZoneBegin(pgdat, cc);
    }
    const run = pr.run, cc = run.cc;
    const cost0 = cc.costNs, m0 = cc.totalMigrateScanned, f0 = cc.totalFreeScanned;
    let done = false;
    while (!(done = compactZoneStep(pgdat, run)) && spent + cc.costNs - cost0 < budgetNs);
    if (done) compactZoneEnd(pgdat, run);
    countDaemon(pgdat, cc.costNs - cost0, cc.totalMigrateScanned - m0, cc.totalFreeScanned - f0);
    spent += cc.costNs - cost0;
    if (done) { pr.run = null; pr.zi++; }
    if (spent >= budgetNs) return pr.zi >= pgdat.zones.length;
  }
  return true;
}

export function proactiveCompactNode(pgdat: PgData, proactiveness: number): void {
  proactiveCompactSlice(pgdat, proactiveCompactStart(proactiveness), Infinity);
}

/**
 * @kernel mm/compaction.c kcompactd_do_work
 * Background compaction for the order kswapd asked for: every zone where compaction
 * is suitable and not deferred, in sync-light mode.
 */
export function kcompactdDoWork(pgdat: PgData, order: number, highestZoneidx: number): void {
  pgdat.events[VmEvent.compact_daemon_wake] = pgdat.events[VmEvent.compact_daemon_wake]! + 1;
  for (let zi = 0; zi <= highestZoneidx && zi < pgdat.zones.length; zi++) {
    const zone = pgdat.zones[zi]!;
    if (!zone.managedPages || compactionDeferred(zone, order)) continue;
    if (compactionSuitable(zone, order, zi) !== CompactResult.continue) continue;
    const cc = createCompactControl(pgdat, zone, order, MigrateType.movable, MigrateMode.syncLight, pgdat.costs);
    cc.wholeZone = false;
    cc.ignoreSkipHint = false;
    const r = compactZone(pgdat, cc);
    countDaemon(pgdat, cc.costNs, cc.totalMigrateScanned, cc.totalFreeScanned);
    if (r === CompactResult.success) compactionDeferReset(zone, order, false);
    else if (r === CompactResult.complete || r === CompactResult.partialSkipped) {
      // "Buddy pages may become stranded on pcps that could otherwise coalesce"
      drainAllPages(pgdat, zone);
      deferCompaction(zone, order);
    }
  }
}
