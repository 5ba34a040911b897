/**
 * The buddy allocator (mm/page_alloc.c, Linux 6.1 semantics).
 *
 * Free memory is kept in power-of-two blocks of order 0..MAX_ORDER-1 on per-zone,
 * per-order, per-migratetype free lists. Allocation takes the smallest block of the
 * wanted migratetype that fits and splits it (expand); freeing merges a block with
 * its buddy for as long as the buddy is free and of the same order (__free_one_page).
 * When the wanted migratetype has nothing, the allocator falls back to other types in
 * the kernel's order, and may steal the whole pageblock (__rmqueue_fallback,
 * steal_suitable_fallback) — the mechanism by which unmovable allocations pollute
 * movable pageblocks. Orders up to PAGE_ALLOC_COSTLY_ORDER, and the THP order, go
 * through per-cpu lists first.
 *
 * Allocation failure is a normal result: allocPages returns NO_PAGE. Reclaim and
 * compaction plug into the slow path through pgdat.hooks.slowpath.
 *
 * The mechanisms that changed since Linux 3.6 follow the node's kernel profile
 * (pgdat.kernel, kernel_era.ts): the 3.6 fallback (rmqueue36), MIGRATE_RESERVE blocks
 * (in the slot 6.1 gives HIGHATOMIC), the per-order watermark test, order-0-only pcp
 * lists, no ALLOC_NOFRAGMENT and no watermark boost.
 *
 * Free-list membership: a free block is represented by its head page only
 * (PageType.buddy, order = block order, mapping = the migratetype of the list it is
 * on, which can differ from its pageblock's type after a single-page steal). Its
 * other pages have Owner.free and no page type.
 */
import {
  type MemMap, NO_PAGE, MAX_ORDER, PAGEBLOCK_ORDER, PAGEBLOCK_NR_PAGES, MIGRATE_TYPES, MIGRATE_PCPTYPES,
  PAGE_ALLOC_COSTLY_ORDER, NR_OWNERS, MigrateType, Owner, PG,
  listAdd, listAddTail, listDel, listFirst, listLast, listEmpty, listNext,
  getPageblockMigratetype, setPageblockMigratetype,
  pageMapping, setPageMapping, setPageOrder, pageOwner, setOwnerRange, resetPages, PageBuddy, PageLRU, PageReported, buddyOrder,
  isBuddyOfOrder, setPageBuddy, clearPageBuddy, setPcpPage, setNewPage, setPageFlag,
} from './memmap.js';
import {
  type PgData, type Zone, type PerCpuPages, ZoneType, Wmark, PageWrite, NR_LOWORDER_PCP_LISTS, NR_PCP_LISTS, MAX_NR_ZONES,
  freeListHead, zoneEndPfn, pfnZone, totalramPages, populatedZone, wmarkPages,
} from './mmzone.js';
import {
  ALLOC_WMARK_LOW, ALLOC_WMARK_MIN, ALLOC_WMARK_MASK, ALLOC_NO_WATERMARKS, ALLOC_HARDER, ALLOC_HIGH, ALLOC_OOM,
  ALLOC_NOFRAGMENT, ALLOC_KSWAPD, ALLOC_CPUSET,
  __GFP_HIGH, __GFP_KSWAPD_RECLAIM, __GFP_ATOMIC, __GFP_NOMEMALLOC, __GFP_COMP, __GFP_ZERO,
  gfpMigratetype, gfpZone,
} from './gfp.js';
import { ZoneStat, NumaStat, NodeStat, VmEvent } from './vmstat_items.js';
import { type KernelProfile, KERNEL_6_1 } from './kernel_era.js';

/**
 * fallbacks[]: the order in which other migratetypes are tried when the wanted one
 * has no free pages (6.1, without CMA). Indexed [start_mt * 2 + i].
 */
const FALLBACKS = new Int8Array([
  /* UNMOVABLE   */ MigrateType.reclaimable, MigrateType.movable,
  /* MOVABLE     */ MigrateType.reclaimable, MigrateType.unmovable,
  /* RECLAIMABLE */ MigrateType.unmovable, MigrateType.movable,
]);

// ---------------------------------------------------------------------------------
// Free lists

/** fpi_t flags of __free_one_page: put the block at the tail; do not tell page reporting. */
const FPI_TO_TAIL = 1;
const FPI_SKIP_REPORT_NOTIFY = 2;

/** MemMap.blockFree as a free block of `order` at pfn joins (sign 1) or leaves (-1) the free lists. */
function blockFreeAdd(map: MemMap, pfn: number, order: number, sign: number): void {
  const bf = map.blockFree;
  if (order < PAGEBLOCK_ORDER) { bf[pfn >> PAGEBLOCK_ORDER]! += sign << order; return; }
  for (let b = pfn >> PAGEBLOCK_ORDER, e = b + (1 << (order - PAGEBLOCK_ORDER)); b < e; b++) bf[b]! += sign * PAGEBLOCK_NR_PAGES;
}

/**
 * @kernel mm/page_alloc.c add_to_free_list
 * The block at pfn becomes a free block of `order` on mt's list, at the head, or at
 * the tail (add_to_free_list_tail) where it is less likely to be allocated soon.
 */
function addToFreeList(map: MemMap, zone: Zone, pfn: number, order: number, mt: number, tail: boolean): void {
  setPageBuddy(map, pfn, order, mt);
  blockFreeAdd(map, pfn, order, 1);
  const head = freeListHead(zone, order, mt);
  if (tail) listAddTail(map, pfn, head);
  else listAdd(map, pfn, head);
  zone.nrFreeMt[order * MIGRATE_TYPES + mt]!++;
  zone.nrFree[order]!++;
}

/**
 * @kernel mm/page_alloc.c del_page_from_free_list
 * del_page_from_free_list(): also clears PageBuddy and PageReported.
 */
function delPageFromFreeList(map: MemMap, zone: Zone, pfn: number, order: number): void {
  const mt = pageMapping(map, pfn);
  listDel(map, pfn);
  clearPageBuddy(map, pfn);
  blockFreeAdd(map, pfn, order, -1);
  zone.nrFreeMt[order * MIGRATE_TYPES + mt]!--;
  zone.nrFree[order]!--;
}

/**
 * @kernel mm/page_alloc.c move_to_free_list
 * move_to_free_list(): onto the tail of another migratetype's list.
 */
function moveToFreeList(map: MemMap, zone: Zone, pfn: number, order: number, mt: number): void {
  const old = pageMapping(map, pfn);
  listDel(map, pfn);
  listAddTail(map, pfn, freeListHead(zone, order, mt));
  setPageMapping(map, pfn, mt);
  zone.nrFreeMt[order * MIGRATE_TYPES + old]!--;
  zone.nrFreeMt[order * MIGRATE_TYPES + mt]!++;
}

function modZoneFreepageState(zone: Zone, nr: number): void {
  zone.vmStat[ZoneStat.nr_free_pages] = zone.vmStat[ZoneStat.nr_free_pages]! + nr;
}

/**
 * @kernel mm/page_alloc.c expand
 * expand(): the block at pfn of order `high` was taken for an allocation of order
 * `low`; give the upper halves back as free blocks of decreasing order.
 */
function expand(map: MemMap, zone: Zone, pfn: number, low: number, high: number, mt: number): void {
  let size = 1 << high;
  while (high > low) {
    high--;
    size >>= 1;
    addToFreeList(map, zone, pfn + size, high, mt, false);
  }
}

/**
 * @kernel mm/page_alloc.c __rmqueue_smallest
 * __rmqueue_smallest(): the smallest free block of exactly this migratetype.
 */
function rmqueueSmallest(map: MemMap, zone: Zone, order: number, mt: number): number {
  for (let o = order; o < MAX_ORDER; o++) {
    const pfn = listFirst(map, freeListHead(zone, o, mt));
    if (pfn === NO_PAGE) continue;
    delPageFromFreeList(map, zone, pfn, o);
    expand(map, zone, pfn, order, o, mt);
    return pfn;
  }
  return NO_PAGE;
}

/**
 * @kernel mm/page_alloc.c can_steal_fallback
 * Whether a fallback may take the whole pageblock: always for blocks of pageblock
 * order, and for half-pageblock requests or unmovable/reclaimable ones, which would
 * otherwise scatter more such pages over movable blocks.
 */
function canStealFallback(order: number, startMt: number): boolean {
  if (order >= PAGEBLOCK_ORDER) return true;
  return order >= (PAGEBLOCK_ORDER >> 1) || startMt === MigrateType.reclaimable || startMt === MigrateType.unmovable;
}

/** Scratch results of findSuitableFallback / moveFreepagesBlock (hot path: no allocation). */
export const fallbackScratch = { canSteal: false, movablePages: 0 };
const scratch = fallbackScratch;

/**
 * @kernel mm/page_alloc.c find_suitable_fallback
 * find_suitable_fallback(): the first migratetype in fallback order with a free block
 * of this order; sets scratch.canSteal.
 */
export function findSuitableFallback(zone: Zone, order: number, mt: number, onlyStealable: boolean): number {
  if (zone.nrFree[order] === 0) return -1;
  scratch.canSteal = false;
  for (let i = 0; i < 2; i++) {
    const fmt = FALLBACKS[mt * 2 + i]!;
    if (zone.nrFreeMt[order * MIGRATE_TYPES + fmt] === 0) continue;
    if (canStealFallback(order, mt)) scratch.canSteal = true;
    if (!onlyStealable) return fmt;
    if (scratch.canSteal) return fmt;
  }
  return -1;
}

/**
 * @kernel mm/page_alloc.c move_freepages_block
 * move_freepages_block(): move every free block in pfn's pageblock to mt's lists.
 * Returns the number of free pages moved (0 if the block crosses the zone boundary)
 * and leaves in scratch.movablePages the pages in use that are movable (LRU or
 * non-LRU movable).
 */
export function moveFreepagesBlock(pgdat: PgData, zone: Zone, pfn: number, mt: number): number {
  const map = pgdat.map;
  const start = pfn & ~(PAGEBLOCK_NR_PAGES - 1);
  const end = start + PAGEBLOCK_NR_PAGES;
  scratch.movablePages = 0;
  if (start < zone.zoneStartPfn || end > zoneEndPfn(zone)) return 0;
  let moved = 0;
  for (let p = start; p < end;) {
    if (PageBuddy(map, p)) {
      const o = buddyOrder(map, p);
      moveToFreeList(map, zone, p, o, mt);
      p += 1 << o;
      moved += 1 << o;
      continue;
    }
    if (PageLRU(map, p) || pgdat.movableOps[pageOwner(map, p)] !== null) scratch.movablePages++;
    p++;
  }
  return moved;
}

/**
 * @kernel mm/page_alloc.c change_pageblock_range
 * change_pageblock_range(): set every pageblock of a >= pageblock_order block.
 */
function changePageblockRange(map: MemMap, pfn: number, order: number, mt: number): void {
  let n = 1 << (order - PAGEBLOCK_ORDER);
  while (n--) {
    setPageblockMigratetype(map, pfn, mt);
    pfn += PAGEBLOCK_NR_PAGES;
  }
}

/**
 * @kernel mm/page_alloc.c boost_watermark
 * A fragmenting fallback raises the zone's watermarks by one pageblock (up to
 * watermark_boost_factor of the high mark) so that kswapd reclaims and kcompactd
 * compacts before the next fallback has to. Not for zones of fewer than four
 * pageblocks. Returns whether the boost was applied.
 */
function boostWatermark(pgdat: PgData, zone: Zone): boolean {
  if (!pgdat.kernel.watermarkBoost || !pgdat.sysctl.watermarkBoostFactor) return false;
  if (PAGEBLOCK_NR_PAGES * 4 > zone.managedPages) return false;
  let maxBoost = Math.floor((zone.watermark[Wmark.high]! * pgdat.sysctl.watermarkBoostFactor) / 10000);
  if (!maxBoost) return false;
  maxBoost = Math.max(PAGEBLOCK_NR_PAGES, maxBoost);
  zone.watermarkBoost = Math.min(zone.watermarkBoost + PAGEBLOCK_NR_PAGES, maxBoost);
  pgdat.era.watermarkBoosts++;
  return true;
}

/**
 * @kernel mm/page_alloc.c steal_suitable_fallback
 * steal_suitable_fallback(): take the free block at pfn for startMt. A block of at
 * least pageblock order changes type outright; otherwise, if stealing is allowed, all
 * free pages of the pageblock move to startMt's lists, and the pageblock changes type
 * when at least half of it is free or already of a compatible kind.
 */
function stealSuitableFallback(pgdat: PgData, zone: Zone, pfn: number, allocFlags: number, startMt: number, wholeBlock: boolean): void {
  const map = pgdat.map;
  const currentOrder = buddyOrder(map, pfn);
  const oldBlockType = getPageblockMigratetype(map, pfn);
  if (oldBlockType === MigrateType.highatomic) {
    moveToFreeList(map, zone, pfn, currentOrder, startMt);
    return;
  }
  if (currentOrder >= PAGEBLOCK_ORDER) {
    changePageblockRange(map, pfn, currentOrder, startMt);
    moveToFreeList(map, zone, pfn, currentOrder, startMt);
    return;
  }
  if (boostWatermark(pgdat, zone) && (allocFlags & ALLOC_KSWAPD)) zone.boostedWatermark = true;
  if (!wholeBlock) {
    moveToFreeList(map, zone, pfn, currentOrder, startMt);
    return;
  }
  const freePages = moveFreepagesBlock(pgdat, zone, pfn, startMt);
  if (!freePages) {
    moveToFreeList(map, zone, pfn, currentOrder, startMt);
    return;
  }
  pgdat.era.blockMoves++;
  let alikePages: number;
  if (startMt === MigrateType.movable) {
    alikePages = scratch.movablePages;
  } else if (oldBlockType === MigrateType.movable) {
    alikePages = PAGEBLOCK_NR_PAGES - (freePages + scratch.movablePages);
  } else {
    alikePages = 0;
  }
  if (freePages + alikePages >= PAGEBLOCK_NR_PAGES >> 1) {
    setPageblockMigratetype(map, pfn, startMt);
    pgdat.era.blockClaims++;
  }
}

/**
 * @kernel mm/page_alloc.c __rmqueue_fallback
 * __rmqueue_fallback(): find the largest free block of another migratetype and steal
 * it (or, for movable allocations that may not steal the whole block, the smallest).
 * Returns true when a block was moved to startMt's free lists.
 */
function rmqueueFallback(pgdat: PgData, zone: Zone, order: number, startMt: number, allocFlags: number): boolean {
  let minOrder = order;
  if (order < PAGEBLOCK_ORDER && (allocFlags & ALLOC_NOFRAGMENT)) minOrder = PAGEBLOCK_ORDER;
  let currentOrder = MAX_ORDER - 1;
  let fmt = -1;
  for (; currentOrder >= minOrder; currentOrder--) {
    fmt = findSuitableFallback(zone, currentOrder, startMt, false);
    if (fmt === -1) continue;
    if (!scratch.canSteal && startMt === MigrateType.movable && currentOrder > order) {
      // find_smallest: splitting the smallest block of another type fragments less.
      for (currentOrder = order; currentOrder < MAX_ORDER; currentOrder++) {
        fmt = findSuitableFallback(zone, currentOrder, startMt, false);
        if (fmt !== -1) break;
      }
    }
    const pfn = listFirst(pgdat.map, freeListHead(zone, currentOrder, fmt));
    pgdat.extfragEvents++;
    pgdat.era.fallbacks++;
    stealSuitableFallback(pgdat, zone, pfn, allocFlags, startMt, scratch.canSteal);
    return true;
  }
  return false;
}

/**
 * @kernel mm/page_alloc.c __rmqueue
 * One block of `order` and migratetype mt: the smallest free block of that type, or
 * else a stolen one; the loop retries after a fallback moved a block to mt's lists.
 */
function rmqueueBlock(pgdat: PgData, zone: Zone, order: number, mt: number, allocFlags: number): number {
  if (pgdat.kernel.fallback === 'largest-claim-half') return rmqueue36(pgdat, zone, order, mt);
  for (;;) {
    const pfn = rmqueueSmallest(pgdat.map, zone, order, mt);
    if (pfn !== NO_PAGE) return pfn;
    if (!rmqueueFallback(pgdat, zone, order, mt, allocFlags)) return NO_PAGE;
  }
}

/**
 * @kernel mm/page_alloc.c __rmqueue_fallback (Linux 3.6)
 * The largest free block of another type, in fallback order, is taken and split for
 * startMt (expand puts the remainder on startMt's lists). When the block is at least
 * half a pageblock (pageblock_order / 2 = order 4, "breaking a large block") or the
 * request is reclaimable, every free page of its pageblock moves to startMt's lists
 * (move_freepages_block), and the pageblock becomes startMt's when at least half of
 * it (256 pages) was free. A block of pageblock order or more changes its
 * pageblocks' type outright. MIGRATE_RESERVE is never a fallback here. Returns the
 * allocated block or NO_PAGE.
 */
export function rmqueueFallback36(pgdat: PgData, zone: Zone, order: number, startMt: number): number {
  const map = pgdat.map;
  for (let currentOrder = MAX_ORDER - 1; currentOrder >= order; currentOrder--) {
    for (let i = 0; i < 2; i++) {
      const fmt = FALLBACKS[startMt * 2 + i]!;
      const pfn = listFirst(map, freeListHead(zone, currentOrder, fmt));
      if (pfn === NO_PAGE) continue;
      if (currentOrder >= (PAGEBLOCK_ORDER >> 1) || startMt === MigrateType.reclaimable) {
        const pages = moveFreepagesBlock(pgdat, zone, pfn, startMt);
        pgdat.era.blockMoves++;
        // "Claim the whole block if over half of it is free"
        if (pages >= 1 << (PAGEBLOCK_ORDER - 1)) {
          setPageblockMigratetype(map, pfn, startMt);
          pgdat.era.blockClaims++;
        }
      }
      delPageFromFreeList(map, zone, pfn, currentOrder);
      // "Take ownership for orders >= pageblock_order"
      if (currentOrder >= PAGEBLOCK_ORDER) changePageblockRange(map, pfn, currentOrder, startMt);
      expand(map, zone, pfn, order, currentOrder, startMt);
      pgdat.extfragEvents++;
      pgdat.era.fallbacks++;
      return pfn;
    }
  }
  return NO_PAGE;
}

/**
 * @kernel mm/page_alloc.c __rmqueue (Linux 3.6)
 * The smallest block of the wanted type; else a fallback; else, rather than fail,
 * the MIGRATE_RESERVE blocks (retry_reserve). The reserve lives in the migratetype
 * slot 6.1 gives HIGHATOMIC.
 */
function rmqueue36(pgdat: PgData, zone: Zone, order: number, mt: number): number {
  const map = pgdat.map;
  let pfn = rmqueueSmallest(map, zone, order, mt);
  if (pfn !== NO_PAGE || mt === MigrateType.reserve) return pfn;
  pfn = rmqueueFallback36(pgdat, zone, order, mt);
  if (pfn !== NO_PAGE) return pfn;
  pfn = rmqueueSmallest(map, zone, order, MigrateType.reserve);
  if (pfn !== NO_PAGE) pgdat.era.reserveAllocs++;
  return pfn;
}

/**
 * @kernel mm/page_alloc.c setup_zone_migrate_reserve (Linux 3.6)
 * Keeps min(2, the min watermark rounded up to pageblocks) MIGRATE_RESERVE pageblocks
 * at the start of the zone: Movable blocks (without reserved pages) become Reserve,
 * and Reserve blocks past the quota go back to Movable, with their free pages.
 * Run whenever the watermarks are set up.
 */
export function setupZoneMigrateReserve(pgdat: PgData, zone: Zone): void {
  const map = pgdat.map;
  const end = zoneEndPfn(zone);
  const start = Math.ceil(zone.zoneStartPfn / PAGEBLOCK_NR_PAGES) * PAGEBLOCK_NR_PAGES;
  let reserve = Math.min(2, Math.ceil(zone.watermark[Wmark.min]! / PAGEBLOCK_NR_PAGES));
  for (let pfn = start; pfn < end; pfn += PAGEBLOCK_NR_PAGES) {
    const mt = getPageblockMigratetype(map, pfn);
    if (reserve > 0) {
      if (pageblockIsReserved(map, pfn, Math.min(pfn + PAGEBLOCK_NR_PAGES, end))) continue;
      if (mt === MigrateType.reserve) { reserve--; continue; }
      if (mt === MigrateType.movable) {
        setPageblockMigratetype(map, pfn, MigrateType.reserve);
        moveFreepagesBlock(pgdat, zone, pfn, MigrateType.reserve);
        reserve--;
        continue;
      }
    }
    if (mt === MigrateType.reserve) {
      setPageblockMigratetype(map, pfn, MigrateType.movable);
      moveFreepagesBlock(pgdat, zone, pfn, MigrateType.movable);
    }
  }
}

/** pageblock_is_reserved: some page of [start, end) is PageReserved (a hole, memblock). */
function pageblockIsReserved(map: MemMap, start: number, end: number): boolean {
  for (let p = start; p < end; p++) if (pageOwner(map, p) === Owner.reserved) return true;
  return false;
}

// ---------------------------------------------------------------------------------
// Per-cpu lists

/**
 * @kernel mm/page_alloc.c pcp_allowed_order
 * pcp_allowed_order(): orders up to PAGE_ALLOC_COSTLY_ORDER, and the THP order.
 */
export function pcpAllowedOrder(pgdat: PgData, order: number): boolean {
  if (!order) return true;
  return pgdat.kernel.pcpHighOrders && (order <= PAGE_ALLOC_COSTLY_ORDER || order === PAGEBLOCK_ORDER);
}

/**
 * @kernel mm/page_alloc.c order_to_pindex
 * The pcp list of an (order, migratetype): low orders by type, the THP order on its own list.
 */
function orderToPindex(mt: number, order: number): number {
  return order > PAGE_ALLOC_COSTLY_ORDER ? NR_LOWORDER_PCP_LISTS : MIGRATE_PCPTYPES * order + mt;
}

/**
 * @kernel mm/page_alloc.c pindex_to_order
 * The order of the blocks on a pcp list (the inverse of orderToPindex).
 */
function pindexToOrder(pindex: number): number {
  return pindex >= NR_LOWORDER_PCP_LISTS ? PAGEBLOCK_ORDER : Math.floor(pindex / MIGRATE_PCPTYPES);
}

/**
 * @kernel mm/page_alloc.c rmqueue_bulk
 * rmqueue_bulk(): take `count` blocks of `order` from the buddy onto a pcp list (at
 * the tail, so they are handed out in physical order).
 */
function rmqueueBulk(pgdat: PgData, zone: Zone, order: number, count: number, list: number, mt: number, allocFlags: number): number {
  const map = pgdat.map;
  if (zone.lockHeldUntil !== 0) zoneLockSpin(pgdat, zone);
  let i = 0;
  for (; i < count; i++) {
    const pfn = rmqueueBlock(pgdat, zone, order, mt, allocFlags);
    if (pfn === NO_PAGE) break;
    // get_pcppage_migratetype: the pageblock's type at the time the page entered the list
    setOwnerRange(map, pfn, pfn + (1 << order), Owner.pcp);
    setPageOrder(map, pfn, order);
    setPageMapping(map, pfn, getPageblockMigratetype(map, pfn));
    listAddTail(map, pfn, list);
  }
  modZoneFreepageState(zone, -(i << order));
  return i;
}

/**
 * @kernel mm/page_alloc.c rmqueue_pcplist
 * An allocation from this cpu's list for (order, mt), refilled in a batch from the
 * buddy when empty (smaller batches for higher orders). An allocation resets the
 * free_factor that consecutive frees had built up.
 */
function rmqueuePcplist(pgdat: PgData, zone: Zone, order: number, mt: number, allocFlags: number): number {
  const map = pgdat.map;
  const pcp = zone.pcp[pgdat.tasks.cpu]!;
  pcp.freeFactor >>= 1;
  const list = pcp.listBase + orderToPindex(mt, order);
  if (listEmpty(map, list)) {
    let batch = pcp.batch;
    if (batch > 1) batch = Math.max(batch >> order, 2);
    const got = rmqueueBulk(pgdat, zone, order, batch, list, mt, allocFlags);
    pcp.count += got << order;
    if (!got) return NO_PAGE;
  }
  const pfn = listFirst(map, list);
  listDel(map, pfn);
  pcp.count -= 1 << order;
  if (order) pgdat.era.pcpHighOrderAllocs++;
  return pfn;
}

/**
 * @kernel mm/page_alloc.c free_pcppages_bulk
 * free_pcppages_bulk(): return `count` base pages from the pcp lists to the buddy,
 * round-robin over the lists starting at pindex, oldest (tail) pages first.
 */
function freePcppagesBulk(pgdat: PgData, zone: Zone, count: number, pcp: PerCpuPages, pindex: number): void {
  const map = pgdat.map;
  if (zone.lockHeldUntil !== 0) zoneLockSpin(pgdat, zone);
  count = Math.min(pcp.count, count);
  while (count > 0) {
    let list: number;
    do {
      pindex++;
      if (pindex >= NR_PCP_LISTS) pindex = 0;
      list = pcp.listBase + pindex;
    } while (listEmpty(map, list));
    const order = pindexToOrder(pindex);
    const nrPages = 1 << order;
    do {
      const pfn = listLast(map, list);
      const mt = pageMapping(map, pfn);
      listDel(map, pfn);
      count -= nrPages;
      pcp.count -= nrPages;
      resetPages(map, pfn, pfn + nrPages, Owner.free, 0);
      freeOneBlock(pgdat, zone, pfn, order, mt, 0);
    } while (count > 0 && !listEmpty(map, list));
  }
}

/**
 * @kernel mm/page_alloc.c nr_pcp_free
 * How many pages to return to the buddy when a pcp list passes its high mark: a
 * batch, doubled for each recent free in a row (free_factor), but never so many that
 * the list falls below one batch.
 */
function nrPcpFree(pcp: PerCpuPages, high: number, batch: number, freeHigh: boolean): number {
  if (freeHigh) return pcp.count;
  if (high < batch) return 1;
  const minNrFree = batch;
  const maxNrFree = high - batch;
  batch <<= pcp.freeFactor;
  if (batch < maxNrFree) pcp.freeFactor++;
  return Math.min(Math.max(batch, minNrFree), maxNrFree);
}

/**
 * @kernel mm/page_alloc.c nr_pcp_high
 * The pcp high mark a free compares against: none after a run of high-order frees
 * (free_high), and at most four batches while kswapd reclaims for the zone
 * (ZONE_RECLAIM_ACTIVE), so that reclaimed pages reach the buddy lists.
 */
function nrPcpHigh(pcp: PerCpuPages, zone: Zone, freeHigh: boolean): number {
  if (pcp.high === 0 || freeHigh) return 0;
  if (!zone.reclaimActive) return pcp.high;
  return Math.min(pcp.batch << 2, pcp.high);
}

/**
 * @kernel mm/page_alloc.c free_unref_page_commit
 * A freed block goes on this cpu's pcp list; when the list grows past its high mark
 * (or at once for high orders after a run of frees) a batch goes back to the buddy.
 */
function freeUnrefPageCommit(pgdat: PgData, zone: Zone, pcp: PerCpuPages, pfn: number, mt: number, order: number): void {
  const map = pgdat.map;
  const pindex = orderToPindex(mt, order);
  listAdd(map, pfn, pcp.listBase + pindex);
  pcp.count += 1 << order;
  if (!pgdat.kernel.pcpHighOrders) {
    // 3.6 free_hot_cold_page: a batch back to the buddy once the list reaches high
    if (pcp.count >= pcp.high) freePcppagesBulk(pgdat, zone, pcp.batch, pcp, pindex);
    return;
  }
  const freeHigh = pcp.freeFactor > 0 && order > 0 && order <= PAGE_ALLOC_COSTLY_ORDER;
  const high = nrPcpHigh(pcp, zone, freeHigh);
  if (pcp.count >= high) {
    freePcppagesBulk(pgdat, zone, nrPcpFree(pcp, high, pcp.batch, freeHigh), pcp, pindex);
  }
}

/**
 * @kernel mm/page_alloc.c drain_pages_zone
 * drain_pages_zone(): for every cpu: empty the pcp lists of a zone (or all zones).
 */
/**
 * @kernel mm/page_alloc.c drain_local_pages
 * Empties this cpu's per-cpu lists of one zone back into the buddy allocator.
 */
export function drainLocalPages(pgdat: PgData, zone: Zone): void {
  const pcp = zone.pcp[pgdat.tasks.cpu]!;
  if (pcp.count) freePcppagesBulk(pgdat, zone, pcp.count, pcp, 0);
}

export function drainAllPages(pgdat: PgData, zone: Zone | null): void {
  for (const z of pgdat.zones) {
    if (zone && z !== zone) continue;
    for (const pcp of z.pcp) if (pcp.count) freePcppagesBulk(pgdat, z, pcp.count, pcp, 0);
  }
}

// ---------------------------------------------------------------------------------
// Freeing

/** The PFN of the buddy of the block at pfn of this order (__find_buddy_pfn). */
export function findBuddyPfn(pfn: number, order: number): number {
  return pfn ^ (1 << order);
}

/**
 * @kernel mm/page_alloc.c page_is_buddy
 * page_is_buddy(): the buddy is a free block of exactly this order in the same zone.
 */
function pageIsBuddy(map: MemMap, zone: Zone, buddy: number, order: number): boolean {
  return buddy >= zone.zoneStartPfn && buddy < zone.zoneStartPfn + zone.spannedPages &&
    isBuddyOfOrder(map, buddy, order);
}

/**
 * @kernel mm/page_alloc.c buddy_merge_likely
 * buddy_merge_likely(): if the block's buddy at the next order up is free, put this
 * block at the tail of its list so it is less likely to be allocated before the
 * buddy frees and the two can merge.
 */
function buddyMergeLikely(map: MemMap, zone: Zone, pfn: number, buddyPfn: number, order: number): boolean {
  if (order >= MAX_ORDER - 2) return false;
  const combined = buddyPfn & pfn;
  const higherBuddy = combined ^ (1 << (order + 1));
  return pageIsBuddy(map, zone, higherBuddy, order + 1);
}

/**
 * @kernel mm/page_alloc.c __free_one_page
 * __free_one_page(): merge the block with its buddies and put the result on a free
 * list. With FPI_TO_TAIL (boot, page reporting) the block goes to the tail; otherwise
 * buddy_merge_likely chooses. A block of at least the reporting order tells page
 * reporting, unless FPI_SKIP_REPORT_NOTIFY. The caller has made the block's pages
 * Owner.free.
 *
 * While the current task compacts this zone directly (tasks.captureControl), a block
 * that reaches the order it compacts for is handed to it instead of the free lists
 * (compaction_capture): it leaves here as a free block on no list, its pages still
 * Owner.free, for the allocator to prepare (prepCapturedPage).
 */
function freeOneBlock(pgdat: PgData, zone: Zone, pfn: number, order: number, mt: number, fpi: number): void {
  const map = pgdat.map;
  modZoneFreepageState(zone, 1 << order);
  const capc = pgdat.tasks.captureControl;
  let buddy = 0;
  while (order < MAX_ORDER - 1) {
    if (capc !== null && order === capc.order && capc.page === NO_PAGE && capc.zoneIdx === zone.idx && compactionCapture(mt, order)) {
      capc.page = pfn;
      modZoneFreepageState(zone, -(1 << order));
      return;
    }
    buddy = findBuddyPfn(pfn, order);
    if (!pageIsBuddy(map, zone, buddy, order)) break;
    if (order >= PAGEBLOCK_ORDER && pgdat.kernel.mergeTypeCheck) {
      // Do not merge across pageblocks of incompatible types (isolate/highatomic).
      const bmt = getPageblockMigratetype(map, buddy);
      if (bmt !== mt && (bmt === MigrateType.isolate || mt === MigrateType.isolate ||
        bmt === MigrateType.highatomic || mt === MigrateType.highatomic)) break;
    }
    delPageFromFreeList(map, zone, buddy, order);
    pfn &= buddy;
    order++;
  }
  let toTail = (fpi & FPI_TO_TAIL) !== 0;
  if (!toTail && order < MAX_ORDER - 1) toTail = buddyMergeLikely(map, zone, pfn, buddy, order);
  addToFreeList(map, zone, pfn, order, mt, toTail);
  // page_reporting_notify_free()
  const pr = pgdat.hooks.pageReporting;
  if (pr !== null && order >= pr.order && !(fpi & FPI_SKIP_REPORT_NOTIFY)) pr.notify();
}

/**
 * @kernel mm/page_alloc.c compaction_capture
 * May the block a compacting task freed be captured? Not from isolated pageblocks,
 * and not a block smaller than a pageblock from a Movable one (a small allocation
 * must not pollute a movable pageblock; falling back would not do worse).
 */
function compactionCapture(mt: number, order: number): boolean {
  if (mt === MigrateType.isolate) return false;
  return !(order < PAGEBLOCK_ORDER && mt === MigrateType.movable);
}

/**
 * @kernel mm/page_alloc.c prep_new_page (__alloc_pages_direct_compact's captured page)
 * The block compaction captured becomes the caller's. It never went through rmqueue,
 * so pgalloc_* and the NUMA counters do not count it, as in the kernel.
 */
export function prepCapturedPage(pgdat: PgData, pfn: number, order: number, gfp: number, owner: number): void {
  prepNewPage(pgdat, pfn, order, gfp, owner);
}

/**
 * @kernel mm/page_alloc.c free_pages_prepare
 * free_pages_prepare() and __free_pages(): give a block back. Small orders go to this
 * cpu's pcp list; larger ones straight to the buddy. The caller must pass the order
 * it allocated.
 */
export function freePages(pgdat: PgData, pfn: number, order: number): void {
  const map = pgdat.map;
  const zone = pfnZone(pgdat, pfn);
  const n = 1 << order;
  accountOwner(pgdat, pageOwner(map, pfn), -n);
  pgdat.events[VmEvent.pgfree] = pgdat.events[VmEvent.pgfree]! + n;
  if (pgdat.boot.initOnFree && pgdat.hooks.pageWrite !== null) pgdat.hooks.pageWrite(pfn, n, pgdat.boot.pagePoisoning ? PageWrite.poison : PageWrite.zero);
  const mt = getPageblockMigratetype(map, pfn);
  if (pcpAllowedOrder(pgdat, order) && mt !== MigrateType.isolate) {
    // HighAtomic pages wait on the movable pcp list but remember their type.
    const pcpMt = mt >= MIGRATE_PCPTYPES ? MigrateType.movable : mt;
    if (order) resetPages(map, pfn + 1, pfn + n, Owner.pcp, 0);
    setPcpPage(map, pfn, order, mt);
    freeUnrefPageCommit(pgdat, zone, zone.pcp[pgdat.tasks.cpu]!, pfn, pcpMt, order);
    return;
  }
  resetPages(map, pfn, pfn + n, Owner.free, 0);
  if (zone.lockHeldUntil !== 0) zoneLockSpin(pgdat, zone);
  freeOneBlock(pgdat, zone, pfn, order, mt, 0);
}

/**
 * @kernel mm/page_alloc.c __free_pages_core
 * __free_pages_core() as called by memblock_free_all() at boot: hand a block of
 * never-allocated memory to the buddy (to the tail of its list), growing managed pages.
 */
export function freeBootBlock(pgdat: PgData, pfn: number, order: number): void {
  const zone = pfnZone(pgdat, pfn);
  const n = 1 << order;
  zone.managedPages += n;
  pgdat.ownerPages[Owner.reserved] = pgdat.ownerPages[Owner.reserved]! - n;
  const map = pgdat.map;
  resetPages(map, pfn, pfn + n, Owner.free, 0);
  pgdat.events[VmEvent.pgfree] = pgdat.events[VmEvent.pgfree]! + n;
  freeOneBlock(pgdat, zone, pfn, order, getPageblockMigratetype(map, pfn), FPI_TO_TAIL);
}

// ---------------------------------------------------------------------------------
// Allocating

/**
 * The node counter each owner feeds, or -1 (OWNER_STAT_PAGES: the counter's unit in
 * pages: nr_kernel_stack is kept in KiB, as in the kernel). Shmem also counts as file
 * pages.
 */
const OWNER_STAT = new Int8Array(NR_OWNERS).fill(-1);
const OWNER_STAT_UNIT = new Int8Array(NR_OWNERS).fill(1);
OWNER_STAT[Owner.slabReclaimable] = NodeStat.nr_slab_reclaimable;
OWNER_STAT[Owner.slabUnreclaimable] = NodeStat.nr_slab_unreclaimable;
OWNER_STAT[Owner.kernelStack] = NodeStat.nr_kernel_stack;
OWNER_STAT_UNIT[Owner.kernelStack] = 4;
OWNER_STAT[Owner.pageTable] = NodeStat.nr_page_table_pages;
OWNER_STAT[Owner.anon] = NodeStat.nr_anon_pages;
OWNER_STAT[Owner.file] = NodeStat.nr_file_pages;
OWNER_STAT[Owner.shmem] = NodeStat.nr_shmem;

/** Adds n pages to the counters that follow an owner (slab, stacks, page tables, ...). */
export function accountOwner(pgdat: PgData, owner: number, n: number): void {
  pgdat.ownerPages[owner] = pgdat.ownerPages[owner]! + n;
  const k = OWNER_STAT[owner]!;
  if (k < 0) return;
  const ns = pgdat.nodeStat;
  ns[k] = ns[k]! + n * OWNER_STAT_UNIT[owner]!;
  if (owner === Owner.shmem) ns[NodeStat.nr_file_pages] = ns[NodeStat.nr_file_pages]! + n;
}

/** Moves one page's worth of the per-owner page count from one owner to another (the page changes hands). */
export function moveOwnerCount(pgdat: PgData, from: number, to: number): void {
  pgdat.ownerPages[from] = pgdat.ownerPages[from]! - 1;
  pgdat.ownerPages[to] = pgdat.ownerPages[to]! + 1;
}

/**
 * @kernel mm/page_alloc.c prep_new_page
 * prep_new_page(): the block becomes the caller's (refcount 1 on the head) and is
 * zeroed when init_on_alloc is on or the caller asked for __GFP_ZERO.
 */
function prepNewPage(pgdat: PgData, pfn: number, order: number, gfp: number, owner: number): void {
  const map = pgdat.map;
  const n = 1 << order;
  const compound = order > 0 && (gfp & __GFP_COMP) !== 0;
  if (order) resetPages(map, pfn + 1, pfn + n, owner, compound ? PG.tail : 0);
  setNewPage(map, pfn, order, compound ? PG.head : 0, owner);
  accountOwner(pgdat, owner, n);
  // post_alloc_hook: init_on_alloc or __GFP_ZERO zeroes the pages (the host sees the writes)
  if (pgdat.hooks.pageWrite !== null && (pgdat.boot.initOnAlloc || (gfp & __GFP_ZERO))) pgdat.hooks.pageWrite(pfn, n, PageWrite.zero);
}

/**
 * @kernel mm/page_alloc.c __zone_watermark_unusable_free
 * Free pages an allocation cannot count: the remainder below its own order, and the
 * highatomic reserve unless the request may use it (ALLOC_HARDER, ALLOC_OOM).
 */
function zoneWatermarkUnusableFree(zone: Zone, order: number, allocFlags: number): number {
  let unusable = (1 << order) - 1;
  if (!(allocFlags & (ALLOC_HARDER | ALLOC_OOM))) unusable += zone.nrReservedHighatomic;
  return unusable;
}

/**
 * @kernel mm/page_alloc.c __zone_watermark_ok
 * Whether the zone has `mark` pages free above the lowmem reserve for the requesting
 * zone (less for ALLOC_HIGH, ALLOC_HARDER and ALLOC_OOM), and, for high orders, a
 * free block of that order in a type the request may use.
 */
export function zoneWatermarkOk(zone: Zone, order: number, mark: number, highestZoneidx: number, allocFlags: number, freePagesIn?: number): boolean {
  const freePages = (freePagesIn ?? zone.vmStat[ZoneStat.nr_free_pages]!) - zoneWatermarkUnusableFree(zone, order, allocFlags);
  let min = mark;
  if (allocFlags & ALLOC_HIGH) min -= Math.floor(min / 2);
  if (allocFlags & (ALLOC_HARDER | ALLOC_OOM)) {
    min -= Math.floor(min / (allocFlags & ALLOC_OOM ? 2 : 4));
  }
  if (freePages <= min + zone.lowmemReserve[highestZoneidx]!) return false;
  if (!order) return true;
  if (zone.kernel.watermarkCheck === 'order-halving') {
    // 3.6: at each lower order, its free pages become unusable and min halves
    let free = freePages;
    for (let o = 0; o < order; o++) {
      free -= zone.nrFree[o]! << o;
      min >>= 1;
      if (free <= min) return false;
    }
    return true;
  }
  for (let o = order; o < MAX_ORDER; o++) {
    if (!zone.nrFree[o]) continue;
    for (let mt = 0; mt < MIGRATE_PCPTYPES; mt++) if (zone.nrFreeMt[o * MIGRATE_TYPES + mt]) return true;
    if ((allocFlags & ALLOC_HARDER) && zone.nrFreeMt[o * MIGRATE_TYPES + MigrateType.highatomic]) return true;
  }
  return false;
}

/**
 * @kernel mm/page_alloc.c zone_watermark_fast
 * The order-0 shortcut of zoneWatermarkOk, taken on every allocation: only the free
 * count against the mark; high orders fall through to the full check.
 */
function zoneWatermarkFast(zone: Zone, order: number, mark: number, highestZoneidx: number, allocFlags: number): boolean {
  const freePages = zone.vmStat[ZoneStat.nr_free_pages]!;
  if (!order) {
    // order-0 fast check: reserved may over-estimate the highatomic reserve
    const reserved = allocFlags & (ALLOC_HARDER | ALLOC_OOM) ? 0 : zone.nrReservedHighatomic;
    const usable = freePages - (reserved < freePages ? reserved : freePages);
    if (usable > mark + zone.lowmemReserve[highestZoneidx]!) return true;
  }
  return zoneWatermarkOk(zone, order, mark, highestZoneidx, allocFlags, freePages);
}

/**
 * @kernel mm/page_alloc.c reserve_highatomic_pageblock
 * A high-order atomic allocation succeeded: reserve its pageblock as HIGHATOMIC so that
 * the next such request finds a free block there, up to 1% of the zone plus a block.
 */
function reserveHighatomicPageblock(pgdat: PgData, zone: Zone, pfn: number): void {
  const maxManaged = Math.floor(zone.managedPages / 100) + PAGEBLOCK_NR_PAGES;
  if (zone.nrReservedHighatomic >= maxManaged) return;
  const mt = getPageblockMigratetype(pgdat.map, pfn);
  if (mt < MIGRATE_PCPTYPES) {
    zone.nrReservedHighatomic += PAGEBLOCK_NR_PAGES;
    setPageblockMigratetype(pgdat.map, pfn, MigrateType.highatomic);
    moveFreepagesBlock(pgdat, zone, pfn, MigrateType.highatomic);
  }
}

/**
 * @kernel include/linux/spinlock.h spin_lock_irqsave (of zone->lock, contended)
 * Another cpu holds zone->lock for long (get_from_free_page_list, lockHeldFrom/Until):
 * this cpu spins until it lets go, and that is system time of the task running here
 * (pgdat.tasks.stallNs). One wait per hold and cpu: the model runs a burst's
 * allocations at one instant, and after its first wait the cpu is past the hold.
 * NOTE: callers test `zone.lockHeldUntil !== 0` first, so an uncontended zone costs
 * the allocator's hot path one load.
 */
function zoneLockSpin(pgdat: PgData, zone: Zone): void {
  const now = pgdat.nowNs();
  const until = zone.lockHeldUntil;
  if (now >= until) { zone.lockHeldUntil = 0; return; }
  if (now < zone.lockHeldFrom) return;
  const cpu = pgdat.tasks.cpu;
  if (zone.lockSpunUntil[cpu] === until) return;
  zone.lockSpunUntil[cpu] = until;
  zone.lockWaits++;
  zone.lockWaitNs += until - now;
  pgdat.tasks.stallNs += until - now;
}

/**
 * @kernel mm/page_alloc.c get_from_free_page_list (Wei Wang, "[PATCH v33 1/4] mm: add a
 * function to get free page blocks", linux-mm 2018-06-15, Message-Id
 * <1529037793-35521-2-git-send-email-wei.w.wang@intel.com>; acked by Linus Torvalds the
 * next day, never merged)
 * For each populated zone in turn, under its zone->lock, walks
 * free_area[order].free_list[mt] for every migratetype and copies each free block into
 * the caller's array, until `size` entries are taken (the patch stores
 * cpu_to_le64(page_to_pfn(page) << PAGE_SHIFT) into a __le64 buf[]; here the memmap PFN,
 * which the caller turns into an address). Nothing is taken off the lists: the blocks
 * stay free, and the moment a zone's lock drops any of them may be allocated and
 * written — the entries are hints. `perZone[zone.idx]` gets how many entries each zone
 * gave (-1 for a zone not walked: unpopulated, or after the array filled up), so that the
 * caller can price each zone's lock hold. Returns the entries taken.
 */
export function getFromFreePageList(pgdat: PgData, order: number, pfns: Int32Array, size: number, perZone: Int32Array): number {
  perZone.fill(-1);
  if (order < 0 || order >= MAX_ORDER) return 0;
  const map = pgdat.map;
  let index = 0;
  for (const zone of pgdat.zones) {
    if (!populatedZone(zone)) continue;
    // spin_lock_irqsave(&zone->lock, flags)
    const start = index;
    for (let mt = 0; mt < MIGRATE_TYPES && index < size; mt++) {
      const head = freeListHead(zone, order, mt);
      for (let pfn = listNext(map, head); pfn !== head && index < size; pfn = listNext(map, pfn)) pfns[index++] = pfn;
    }
    perZone[zone.idx] = index - start;
    if (index >= size) break;
  }
  return index;
}

/**
 * @kernel mm/page_alloc.c rmqueue
 * rmqueue(): one block from a zone, through the pcp lists when the order allows.
 * NOTE: the buddy path lives in rmqueueBuddy so this stays small enough for V8 to
 * inline into getPageFromFreelist (bench alloc).
 */
function rmqueue(pgdat: PgData, zone: Zone, order: number, allocFlags: number, mt: number): number {
  const pfn = pcpAllowedOrder(pgdat, order) ? rmqueuePcplist(pgdat, zone, order, mt, allocFlags) : rmqueueBuddy(pgdat, zone, order, allocFlags, mt);
  if (zone.boostedWatermark) {
    zone.boostedWatermark = false;
    if (pgdat.hooks.wakeupKswapd) pgdat.hooks.wakeupKswapd(pgdat, zone, 0);
  }
  return pfn;
}

/**
 * @kernel mm/page_alloc.c rmqueue_buddy
 * rmqueue_buddy(): orders the pcp lists do not hold, straight from the free lists.
 */
function rmqueueBuddy(pgdat: PgData, zone: Zone, order: number, allocFlags: number, mt: number): number {
  let pfn = NO_PAGE;
  if (zone.lockHeldUntil !== 0) zoneLockSpin(pgdat, zone);
  if (order > 0 && (allocFlags & ALLOC_HARDER) && pgdat.kernel.reserve === 'highatomic') {
    pfn = rmqueueSmallest(pgdat.map, zone, order, MigrateType.highatomic);
    if (pfn !== NO_PAGE) pgdat.era.reserveAllocs++;
  }
  if (pfn === NO_PAGE) pfn = rmqueueBlock(pgdat, zone, order, mt, allocFlags);
  if (pfn !== NO_PAGE) modZoneFreepageState(zone, -(1 << order));
  return pfn;
}

/**
 * @kernel mm/page_alloc.c get_page_from_freelist
 * get_page_from_freelist(): walk the zonelist from the highest allowed zone down,
 * taking the first zone whose watermark allows the allocation. With ALLOC_NOFRAGMENT
 * (set when the preferred zone is Normal) a first pass refuses fallbacks that would
 * split a pageblock of another type; if that finds nothing, the walk is repeated
 * without it.
 */
export function getPageFromFreelist(pgdat: PgData, gfp: number, order: number, allocFlags: number, highestZoneidx: number, owner: number): number {
  const mt = gfpMigratetype(gfp);
  for (;;) {
    for (let zi = highestZoneidx; zi >= 0; zi--) {
      const zone = pgdat.zones[zi];
      if (!zone || !zone.managedPages) continue;
      if (!(allocFlags & ALLOC_NO_WATERMARKS)) {
        const mark = zone.watermark[allocFlags & ALLOC_WMARK_MASK]! + zone.watermarkBoost;
        if (!zoneWatermarkFast(zone, order, mark, highestZoneidx, allocFlags)) continue;
      }
      const pfn = rmqueue(pgdat, zone, order, allocFlags, mt);
      if (pfn === NO_PAGE) continue;
      prepNewPage(pgdat, pfn, order, gfp, owner);
      const ev = pgdat.events;
      const e = VmEvent.pgalloc_dma + zi; // pgalloc_dma, _dma32, _normal are consecutive
      ev[e] = ev[e]! + (1 << order);
      zone.numaStat[NumaStat.numa_hit]!++;
      zone.numaStat[NumaStat.numa_local]!++;
      if (order && (allocFlags & ALLOC_HARDER) && pgdat.kernel.reserve === 'highatomic') reserveHighatomicPageblock(pgdat, zone, pfn);
      return pfn;
    }
    if (!(allocFlags & ALLOC_NOFRAGMENT)) return NO_PAGE;
    pgdat.era.nofragmentRetries++;
    allocFlags &= ~ALLOC_NOFRAGMENT;
  }
}

/**
 * @kernel mm/page_alloc.c alloc_flags_nofragment
 * alloc_flags_nofragment(): avoid fragmenting fallbacks when the preferred zone is Normal.
 */
function allocFlagsNofragment(pgdat: PgData, highestZoneidx: number, gfp: number): number {
  let flags = gfp & __GFP_KSWAPD_RECLAIM ? ALLOC_KSWAPD : 0;
  if (!pgdat.kernel.allocNofragment) return flags;
  const normal = pgdat.zones[ZoneType.normal];
  if (highestZoneidx === ZoneType.normal && normal && normal.managedPages > 0) flags |= ALLOC_NOFRAGMENT;
  return flags;
}

/**
 * @kernel mm/page_alloc.c gfp_to_alloc_flags
 * The slow path's allocation flags: the min watermark, ALLOC_HIGH for __GFP_HIGH,
 * ALLOC_HARDER for atomic requests that may dip into reserves.
 */
export function gfpToAllocFlags(gfp: number): number {
  let f = ALLOC_WMARK_MIN | ALLOC_CPUSET;
  if (gfp & __GFP_HIGH) f |= ALLOC_HIGH;
  if (gfp & __GFP_KSWAPD_RECLAIM) f |= ALLOC_KSWAPD;
  if (gfp & __GFP_ATOMIC) {
    if (!(gfp & __GFP_NOMEMALLOC)) f |= ALLOC_HARDER;
    f &= ~ALLOC_CPUSET;
  }
  return f;
}

/** The highest zone index with memory at or below gfp's zone. */
function highestUsableZone(pgdat: PgData, gfp: number): number {
  let zi = gfpZone(gfp);
  while (zi > 0 && !(pgdat.zones[zi]?.managedPages)) zi--;
  return zi;
}

/**
 * @kernel mm/page_alloc.c alloc_pages
 * alloc_pages(): allocate a block of 2^order pages for `owner`. Returns its first
 * PFN, or NO_PAGE when the allocation fails (a normal outcome, never an exception).
 *
 * Fast path: the low watermark. Slow path (__alloc_pages_slowpath): wake kswapd, retry
 * at the min watermark with the caller's rights (__GFP_HIGH, __GFP_ATOMIC), then hand
 * over to pgdat.hooks.slowpath (reclaim and compaction) when one is installed.
 */
export function allocPages(pgdat: PgData, gfp: number, order: number, owner: number): number {
  if (order >= MAX_ORDER) return NO_PAGE;
  const highest = highestUsableZone(pgdat, gfp);
  let pfn = getPageFromFreelist(pgdat, gfp, order, ALLOC_WMARK_LOW | allocFlagsNofragment(pgdat, highest, gfp), highest, owner);
  if (pfn !== NO_PAGE) return pfn;
  // __alloc_pages_slowpath
  if ((gfp & __GFP_KSWAPD_RECLAIM) && pgdat.hooks.wakeupKswapd) {
    for (let zi = highest; zi >= 0; zi--) {
      const z = pgdat.zones[zi];
      if (z && z.managedPages) pgdat.hooks.wakeupKswapd(pgdat, z, order);
    }
  }
  pfn = getPageFromFreelist(pgdat, gfp, order, gfpToAllocFlags(gfp), highest, owner);
  if (pfn !== NO_PAGE) return pfn;
  if (pgdat.hooks.slowpath) { pgdat.tasks.slowpathEpoch++; return pgdat.hooks.slowpath(pgdat, gfp, order, owner); }
  return NO_PAGE;
}

/** Free base pages of a zone including its pcp lists (what MemFree does not count). */
export function zonePcpCount(zone: Zone): number {
  let n = 0;
  for (const p of zone.pcp) n += p.count;
  return n;
}


/** __isolate_free_page: a block of at least half a pageblock turns its (mergeable) pageblocks Movable. */
function isolatedPageblocksMovable(map: MemMap, pfn: number, order: number): void {
  if (order < PAGEBLOCK_ORDER - 1) return;
  const end = pfn + (1 << order);
  for (let p = pfn; p < end; p += PAGEBLOCK_NR_PAGES) {
    const mt = getPageblockMigratetype(map, p);
    if (mt !== MigrateType.isolate && mt !== MigrateType.highatomic) setPageblockMigratetype(map, p, MigrateType.movable);
  }
}

/**
 * @kernel mm/page_alloc.c __isolate_free_page
 * Takes the free block at pfn (PageBuddy, of `order`) off its free list for
 * compaction's free scanner, unless that would take the zone below its min watermark.
 * A block of at least half a pageblock turns its pageblock Movable. The block is split
 * into order-0 pages owned by compaction (Owner.compactFree, one reference each), as
 * split_map_pages does. Returns false (and changes nothing) on the watermark check.
 */
export function isolateFreePage(pgdat: PgData, zone: Zone, pfn: number, order: number): boolean {
  const map = pgdat.map;
  const mark = zone.watermark[Wmark.min]! + (1 << order);
  if (!zoneWatermarkOk(zone, 0, mark, 0, 0)) return false;
  delPageFromFreeList(map, zone, pfn, order);
  modZoneFreepageState(zone, -(1 << order));
  isolatedPageblocksMovable(map, pfn, order);
  const n = 1 << order;
  resetPages(map, pfn, pfn + n, Owner.compactFree, 0, 1);
  pgdat.ownerPages[Owner.compactFree] = pgdat.ownerPages[Owner.compactFree]! + n;
  return true;
}

/**
 * @kernel mm/page_alloc.c __isolate_free_page
 * Page reporting's use of __isolate_free_page: the free block at pfn leaves its free
 * list whole (not split), held by `owner`, unless that would take the zone below its
 * min watermark. Returns false (and changes nothing) on the watermark check.
 */
export function isolateFreeBlock(pgdat: PgData, zone: Zone, pfn: number, order: number, owner: Owner): boolean {
  const map = pgdat.map;
  if (!zoneWatermarkOk(zone, 0, zone.watermark[Wmark.min]! + (1 << order), 0, 0)) return false;
  const reported = PageReported(map, pfn);
  delPageFromFreeList(map, zone, pfn, order);
  modZoneFreepageState(zone, -(1 << order));
  isolatedPageblocksMovable(map, pfn, order);
  const n = 1 << order;
  resetPages(map, pfn, pfn + n, owner, 0);
  setPageOrder(map, pfn, order);
  if (reported) setPageFlag(map, pfn, PG.reported);
  pgdat.ownerPages[owner] = pgdat.ownerPages[owner]! + n;
  return true;
}

/**
 * @kernel mm/page_alloc.c __putback_isolated_page
 * Returns a block taken with isolateFreeBlock to the tail of its free list without
 * telling page reporting (FPI_SKIP_REPORT_NOTIFY | FPI_TO_TAIL). It may merge.
 */
export function putbackIsolatedPage(pgdat: PgData, pfn: number, order: number): void {
  const map = pgdat.map;
  const n = 1 << order;
  const owner = pageOwner(map, pfn);
  pgdat.ownerPages[owner] = pgdat.ownerPages[owner]! - n;
  resetPages(map, pfn, pfn + n, Owner.free, 0);
  freeOneBlock(pgdat, pfnZone(pgdat, pfn), pfn, order, getPageblockMigratetype(map, pfn), FPI_TO_TAIL | FPI_SKIP_REPORT_NOTIFY);
}

// ---------------------------------------------------------------------------------
// Setup: min_free_kbytes, watermarks, lowmem reserves and pagesets (boot, and again
// whenever a sysctl they depend on changes)

/**
 * @kernel lib/math/int_sqrt.c int_sqrt
 * The integer square root, rounded down (calculate_min_free_kbytes takes it of lowmem in KiB x 16).
 */
function intSqrt(x: number): number {
  return Math.floor(Math.sqrt(x));
}

/**
 * @kernel mm/page_alloc.c calculate_min_free_kbytes
 * calculate_min_free_kbytes() (init_per_zone_wmark_min): sqrt(lowmem_kbytes * 16),
 * clamped to [128, 262144]; then, with THP enabled, set_recommended_min_free_kbytes()
 * raises it to cover two free pageblocks per zone plus MIGRATE_PCPTYPES^2 pageblocks
 * per zone for fallbacks, capped at 5% of lowmem.
 */
export function defaultMinFreeKbytes(pgdat: PgData, thp: boolean): number {
  const lowmemPages = totalramPages(pgdat);
  const lowmemKbytes = lowmemPages * 4;
  let minFree = intSqrt(lowmemKbytes * 16);
  minFree = Math.min(Math.max(minFree, 128), pgdat.kernel.minFreeKbytesMax);
  if (thp) {
    let nrZones = 0;
    for (const z of pgdat.zones) if (populatedZone(z)) nrZones++;
    let recommended = PAGEBLOCK_NR_PAGES * nrZones * 2;
    recommended += PAGEBLOCK_NR_PAGES * nrZones * MIGRATE_PCPTYPES * MIGRATE_PCPTYPES;
    recommended = Math.min(recommended, Math.floor(lowmemPages / 20));
    recommended *= 4;
    if (recommended > minFree) minFree = recommended;
  }
  return minFree;
}

/**
 * @kernel mm/page_alloc.c __setup_per_zone_wmarks
 * __setup_per_zone_wmarks(): min is min_free_kbytes split across zones by managed
 * size; low and high each add max(min/4, managed * watermark_scale_factor / 10000).
 */
export function setupPerZoneWmarks(pgdat: PgData): void {
  const k = pgdat.kernel;
  const pagesMin = pgdat.sysctl.minFreeKbytes >> 2;
  const share = (z: Zone) => (k.watermarkShare === 'present' ? z.presentPages : z.managedPages);
  let lowmemPages = 0;
  for (const z of pgdat.zones) lowmemPages += share(z);
  for (const z of pgdat.zones) {
    const tmp = lowmemPages ? Math.floor((pagesMin * share(z)) / lowmemPages) : 0;
    z.watermark[Wmark.min] = tmp;
    z.watermarkBoost = 0;
    if (k.watermarkGap === 'quarter-half') {
      // 3.6: low = min + min/4, high = min + min/2
      z.watermark[Wmark.low] = tmp + (tmp >> 2);
      z.watermark[Wmark.high] = tmp + (tmp >> 1);
      z.watermark[Wmark.promo] = z.watermark[Wmark.high]!;
    } else {
      const gap = Math.max(tmp >> 2, Math.floor((z.managedPages * pgdat.sysctl.watermarkScaleFactor) / 10000));
      z.watermark[Wmark.low] = tmp + gap;
      z.watermark[Wmark.high] = tmp + 2 * gap;
      z.watermark[Wmark.promo] = tmp + 3 * gap;
    }
    if (k.reserve === 'migrate-reserve' && z.managedPages) setupZoneMigrateReserve(pgdat, z);
  }
}

/**
 * @kernel mm/page_alloc.c setup_per_zone_wmarks
 * What the kernel runs whenever min_free_kbytes changes at run time: the watermarks
 * (__setup_per_zone_wmarks, which also clears watermark boosts), then every pageset's
 * high and batch from the new low watermark (zone_pcp_update).
 */
export function updatePerZoneWmarks(pgdat: PgData): void {
  setupPerZoneWmarks(pgdat);
  setupPagesets(pgdat);
}

/**
 * @kernel mm/page_alloc.c nr_free_buffer_pages
 * Managed pages above the high watermark (boost included) in the zones GFP_USER may
 * use (DMA, DMA32, Normal): the "lowmem" the min_free_kbytes formulas take at run time.
 */
export function nrFreeBufferPages(pgdat: PgData): number {
  let sum = 0;
  for (let zi = 0; zi <= ZoneType.normal && zi < pgdat.zones.length; zi++) {
    const z = pgdat.zones[zi]!;
    const high = wmarkPages(z, Wmark.high);
    if (z.managedPages > high) sum += z.managedPages - high;
  }
  return sum;
}

/**
 * @kernel mm/page_alloc.c calculate_min_free_kbytes
 * min_free_kbytes recomputed at run time (khugepaged stopping, memory hotplug):
 * sqrt(lowmem KiB x 16) clamped to [128, 262144], kept only if above what the user
 * last wrote to vm.min_free_kbytes.
 */
export function calculateMinFreeKbytes(pgdat: PgData): void {
  const fresh = intSqrt(nrFreeBufferPages(pgdat) * 4 * 16);
  if (fresh > pgdat.sysctl.userMinFreeKbytes) pgdat.sysctl.minFreeKbytes = Math.min(Math.max(fresh, 128), pgdat.kernel.minFreeKbytesMax);
}

/** /proc/sys/vm/min_free_kbytes' bounds (proc_dointvec_minmax: 0 .. INT_MAX). */
export const MIN_FREE_KBYTES_MAX = 0x7fffffff;

/**
 * @kernel mm/page_alloc.c min_free_kbytes_sysctl_handler
 * Writing vm.min_free_kbytes: the value (0 .. INT_MAX) becomes min_free_kbytes and
 * user_min_free_kbytes, and the watermarks and pagesets are set up again from it.
 */
export function minFreeKbytesSysctlHandler(pgdat: PgData, kbytes: number): void {
  if (!Number.isInteger(kbytes) || kbytes < 0 || kbytes > MIN_FREE_KBYTES_MAX) throw new RangeError(`min_free_kbytes must be an integer from 0 to ${MIN_FREE_KBYTES_MAX}`);
  pgdat.sysctl.minFreeKbytes = kbytes;
  pgdat.sysctl.userMinFreeKbytes = kbytes;
  updatePerZoneWmarks(pgdat);
}

/**
 * @kernel mm/page_alloc.c setup_per_zone_lowmem_reserve
 * How many pages each zone keeps back from allocations that could have used a higher
 * zone: the managed pages of the zones above, divided by that zone's
 * lowmem_reserve_ratio (256 for DMA and DMA32, 32 for Normal). A zone with a ratio of
 * 0 or no managed pages reserves nothing.
 */
export function setupPerZoneLowmemReserve(pgdat: PgData): void {
  const zones = pgdat.zones;
  for (let i = 0; i < MAX_NR_ZONES - 1; i++) {
    const z = zones[i];
    if (!z) continue;
    const ratio = pgdat.sysctl.lowmemReserveRatio[i] ?? 0;
    const clear = !ratio || !z.managedPages;
    let managed = 0;
    for (let j = i + 1; j < MAX_NR_ZONES; j++) {
      managed += zones[j]?.managedPages ?? 0;
      z.lowmemReserve[j] = clear ? 0 : Math.floor(managed / ratio);
    }
  }
}

/**
 * @kernel include/linux/log2.h rounddown_pow_of_two
 * The largest power of two not above x (0 for x < 1).
 */
function rounddownPow2(x: number): number {
  return x < 1 ? 0 : 2 ** Math.floor(Math.log2(x));
}

/**
 * @kernel mm/page_alloc.c zone_batchsize
 * The pcp batch: about a quarter of a thousandth of the zone (at most 1 MiB worth),
 * then rounded to 2^n - 1 so that batches do not keep hitting the same cache colours.
 */
export function zoneBatchsize(zone: Zone, kernel: KernelProfile = KERNEL_6_1): number {
  // 3.6 sizes the batch from present pages, at most 512 KiB
  const pages = kernel.pcpHigh === 'six-batches' ? zone.presentPages : zone.managedPages;
  let batch = Math.min(pages >> 10, kernel.pcpBatchMaxBytes / 4096);
  batch = Math.floor(batch / 4);
  if (batch < 1) batch = 1;
  return rounddownPow2(batch + (batch >> 1)) - 1;
}

/**
 * @kernel mm/page_alloc.c zone_highsize
 * zone_highsize(): the low watermark split across the node's cpus, at least 4 batches.
 */
export function zoneHighsize(zone: Zone, batch: number, nrCpus: number): number {
  const high = Math.floor(zone.watermark[Wmark.low]! / nrCpus);
  return Math.max(high, batch << 2);
}

/**
 * @kernel mm/page_alloc.c zone_set_pageset_high_and_batch
 * Sets every cpu's pageset in every zone to the zone's batch and high marks; called
 * again whenever the watermarks change (min_free_kbytes).
 */
export function setupPagesets(pgdat: PgData): void {
  for (const z of pgdat.zones) {
    const batch = Math.max(1, zoneBatchsize(z, pgdat.kernel));
    // 3.6 setup_pageset: high = 6 * batch
    const high = pgdat.kernel.pcpHigh === 'six-batches' ? 6 * batch : zoneHighsize(z, batch, pgdat.nrCpus);
    for (const p of z.pcp) { p.batch = batch; p.high = high; }
  }
}
