/**
 * The allocation slow path (mm/page_alloc.c __alloc_pages_slowpath), direct
 * compaction (__alloc_pages_direct_compact, mm/compaction.c try_to_compact_pages) and
 * the wiring of kswapd.
 *
 * allocPages runs the fast path (low watermark), wakes kswapd and retries at the min
 * watermark; then it calls pgdat.hooks.slowpath, installed here:
 *
 * 1. Without __GFP_DIRECT_RECLAIM the allocation fails.
 * 2. Costly orders (> 3) and non-movable high-order requests try async compaction
 *    first; a costly __GFP_NORETRY request gives up if compaction was skipped or
 *    deferred (THP faults without madvise, balloon pages, hint blocks).
 * 3. Then, in a loop: direct reclaim (draining the pcp lists once if that finds
 *    nothing), direct compaction for high orders (async, then sync), retry
 *    decisions by GFP flags (__GFP_NORETRY fails, costly orders without
 *    __GFP_RETRY_MAYFAIL fail, should_reclaim_retry allows up to 16 loops without
 *    progress while reclaimable memory could meet the watermark), and finally the OOM
 *    killer (not for costly orders, __GFP_RETRY_MAYFAIL, or requests limited to
 *    lowmem). __GFP_NOFAIL keeps going while the OOM killer finds victims.
 */
import { NO_PAGE, PAGE_ALLOC_COSTLY_ORDER, MigrateType, MAX_ORDER } from './memmap.js';
import { type PgData, type Zone, MigrateMode, Lru, ZoneType, Wmark, pfnZone } from './mmzone.js';
import { getPageFromFreelist, gfpToAllocFlags, drainAllPages, zoneWatermarkOk, prepCapturedPage } from './page_alloc.js';
import type { CaptureControl } from './mm_types.js';
import {
  __GFP_DIRECT_RECLAIM, __GFP_NORETRY, __GFP_RETRY_MAYFAIL, __GFP_NOFAIL, __GFP_FS, __GFP_IO, __GFP_KSWAPD_RECLAIM,
  ALLOC_WMARK_HIGH, ALLOC_CPUSET, gfpMigratetype, gfpZone, gfpTraceNames,
} from './gfp.js';
import {
  CompactResult, createCompactControl, compactZone, compactionSuitable, compactionDeferred, deferCompaction,
  compactionMadeProgress, compactionFailed, compactionNeedsReclaim, compactionWithdrawn, compactionZonelistSuitable,
  compactionDeferReset, kcompactdDoWork, traceDefer, proactiveCompactStart, proactiveCompactSlice, fragmentationScoreNode, fragmentationScoreWmarks, COMPACT_MAX_DEFER_SHIFT,
  HPAGE_FRAG_CHECK_INTERVAL_NS, resetIsolationSuitableNode,
} from './compaction.js';
import { tryToFreePages, balancePgdat, pgdatBalanced, outOfMemory, lruSize, swapFree } from './vmscan.js';
import { VmEvent, ZoneStat } from './vmstat_items.js';

/** One capture control per node, reused by every direct compaction (compaction is not re-entered). */
const captureControls = new WeakMap<PgData, CaptureControl>();

function captureControlOf(pgdat: PgData, order: number): CaptureControl {
  let c = captureControls.get(pgdat);
  if (!c) {
    c = { zoneIdx: 0, order, page: NO_PAGE };
    captureControls.set(pgdat, c);
  }
  c.order = order;
  c.page = NO_PAGE;
  return c;
}

/** MAX_RECLAIM_RETRIES and MAX_COMPACT_RETRIES */
export const MAX_RECLAIM_RETRIES = 16;
export const MAX_COMPACT_RETRIES = 16;
/** A guard against a model bug looping forever (the kernel would hang). */
const SLOWPATH_LOOP_LIMIT = 1000;

function highestUsable(pgdat: PgData, gfp: number): number {
  let zi = gfpZone(gfp);
  while (zi > 0 && !pgdat.zones[zi]!.managedPages) zi--;
  return zi;
}

/**
 * @kernel mm/compaction.c try_to_compact_pages (with __alloc_pages_direct_compact)
 * Compacts the zones the allocation may use, then tries the allocation. Returns the
 * page or NO_PAGE; `result` gets the best compaction result. With compaction_capture
 * (6.1) the task compacts with a capture control: a block of the order that a free
 * during the run makes is handed to it (compact_zone_order), and it is prepared
 * without a watermark check; otherwise get_page_from_freelist tries.
 */
export function allocPagesDirectCompact(pgdat: PgData, gfp: number, order: number, owner: number, mode: MigrateMode, result: { r: CompactResult }): number {
  const highest = highestUsable(pgdat, gfp);
  const mt = gfpMigratetype(gfp);
  let best = CompactResult.skipped;
  const capc = pgdat.kernel.compaction.capture ? captureControlOf(pgdat, order) : null;
  let captured = NO_PAGE;
  if (pgdat.trace !== null) pgdat.trace('task', 'mm_compaction_try_to_compact_pages', `order=${order} gfp_mask=${gfpTraceNames(gfp)} priority=${mode === MigrateMode.async ? 2 : mode === MigrateMode.syncLight ? 1 : 0}`);
  for (let zi = highest; zi >= 0; zi--) {
    const zone: Zone = pgdat.zones[zi]!;
    if (!zone.managedPages) continue;
    if (mode !== MigrateMode.sync && compactionDeferred(zone, order)) {
      if (pgdat.trace !== null) traceDefer(pgdat, 'mm_compaction_deferred', zone, order);
      pgdat.compactDeferredEvents++;
      best = Math.max(best, CompactResult.deferred);
      continue;
    }
    const suitable = compactionSuitable(zone, order, highest);
    if (suitable !== CompactResult.continue) {
      best = Math.max(best, suitable);
      continue;
    }
    const cc = createCompactControl(pgdat, zone, order, mt as MigrateType, mode, pgdat.costs);
    cc.directCompaction = true;
    cc.ignoreSkipHint = false;
    cc.wholeZone = false;
    let r: CompactResult;
    if (capc !== null) {
      capc.zoneIdx = zi;
      capc.page = NO_PAGE;
      pgdat.tasks.captureControl = capc;
      r = compactZone(pgdat, cc, capc);
      pgdat.tasks.captureControl = null;
      if (capc.page !== NO_PAGE) {
        captured = capc.page;
        r = CompactResult.success;
      }
    } else {
      r = compactZone(pgdat, cc);
    }
    pgdat.tasks.stallNs += cc.costNs;
    best = Math.max(best, r);
    if (mode !== MigrateMode.async && (r === CompactResult.complete || r === CompactResult.partialSkipped)) {
      deferCompaction(zone, order);
      if (pgdat.trace !== null) traceDefer(pgdat, 'mm_compaction_defer_compaction', zone, order);
    }
    if (r === CompactResult.success) break;
  }
  result.r = best;
  // "At least in one zone compaction wasn't deferred or skipped, so let's count a
  // compaction stall": a deferred zone counts (and, without a page, fails) too
  if (best === CompactResult.skipped || best === CompactResult.notSuitableZone) return NO_PAGE;
  pgdat.events[VmEvent.compact_stall] = pgdat.events[VmEvent.compact_stall]! + 1;
  let pfn: number;
  if (captured !== NO_PAGE) {
    prepCapturedPage(pgdat, captured, order, gfp, owner);
    pfn = captured;
  } else {
    // 6.1 drains this cpu's pcp lists per cc->order block inside compact_zone; before
    // compaction_capture, the model drained every pcp list here
    if (!pgdat.kernel.compaction.capture) drainAllPages(pgdat, null);
    pfn = getPageFromFreelist(pgdat, gfp, order, gfpToAllocFlags(gfp), highest, owner);
  }
  if (pfn !== NO_PAGE) {
    const z = pfnZone(pgdat, pfn);
    z.compact.blockskipFlush = false;
    compactionDeferReset(z, order, true);
    pgdat.events[VmEvent.compact_success] = pgdat.events[VmEvent.compact_success]! + 1;
  } else {
    pgdat.events[VmEvent.compact_fail] = pgdat.events[VmEvent.compact_fail]! + 1;
  }
  return pfn;
}

/**
 * @kernel mm/page_alloc.c should_reclaim_retry
 * Another reclaim round is worth it while fewer than MAX_RECLAIM_RETRIES rounds made
 * no progress and the free plus reclaimable pages of some zone would meet its min
 * watermark for this order.
 */
function shouldReclaimRetry(pgdat: PgData, order: number, noProgressLoops: number): boolean {
  if (noProgressLoops > MAX_RECLAIM_RETRIES) return false;
  const reclaimable = lruSize(pgdat, Lru.inactiveFile) + lruSize(pgdat, Lru.activeFile) +
    (swapFree(pgdat) > 0 ? lruSize(pgdat, Lru.inactiveAnon) + lruSize(pgdat, Lru.activeAnon) : 0);
  if (reclaimable === 0) return false;
  for (const z of pgdat.zones) {
    if (!z.managedPages) continue;
    if (z.vmStat[ZoneStat.nr_free_pages]! + reclaimable > z.watermark[0]! + (1 << order)) return true;
  }
  return false;
}

/** enum compact_priority (include/linux/compaction.h): lower tries harder. */
export const enum CompactPriority {
  syncFull = 0,
  syncLight = 1,
  async = 2,
}
/** MIN_COMPACT_PRIORITY, MIN_COMPACT_COSTLY_PRIORITY (costly orders never go to sync-full). */
const MIN_COMPACT_PRIORITY = CompactPriority.syncFull;
const MIN_COMPACT_COSTLY_PRIORITY = CompactPriority.syncLight;

/** The migrate mode a compaction priority runs in (compact_zone_order: ASYNC, SYNC_LIGHT, SYNC). */
function priorityMode(p: CompactPriority): MigrateMode {
  return p === CompactPriority.async ? MigrateMode.async : p === CompactPriority.syncLight ? MigrateMode.syncLight : MigrateMode.sync;
}

/**
 * @kernel mm/page_alloc.c should_compact_retry
 * Another round of reclaim and compaction for a high-order request? Retries count
 * only the rounds in which compaction made progress. A run that failed over the whole
 * zone, or withdrew (deferred, contended), is worth retrying only at a higher priority;
 * one skipped for want of free pages only if reclaim could give it some. Costly orders
 * get a quarter of the retries and stop at sync-light.
 */
export function shouldCompactRetry(pgdat: PgData, order: number, highestZoneidx: number, r: CompactResult, c: { priority: CompactPriority; retries: number }): boolean {
  if (!order) return false;
  if (compactionMadeProgress(r)) c.retries++;
  if (!compactionFailed(r)) {
    if (compactionNeedsReclaim(r)) return compactionZonelistSuitable(pgdat, order, highestZoneidx, swapFree(pgdat) > 0);
    if (!compactionWithdrawn(r)) {
      const maxRetries = order > PAGE_ALLOC_COSTLY_ORDER ? MAX_COMPACT_RETRIES / 4 : MAX_COMPACT_RETRIES;
      if (c.retries <= maxRetries) return true;
    }
  }
  // check_priority: make sure the strongest priority allowed has been tried
  const minPriority = order > PAGE_ALLOC_COSTLY_ORDER ? MIN_COMPACT_COSTLY_PRIORITY : MIN_COMPACT_PRIORITY;
  if (c.priority > minPriority) {
    c.priority--;
    c.retries = 0;
    return true;
  }
  return false;
}

/** @kernel mm/page_alloc.c __alloc_pages_slowpath (after the first min-watermark attempt) */
export function allocPagesSlowpath(pgdat: PgData, gfp: number, order: number, owner: number): number {
  if (!(gfp & __GFP_DIRECT_RECLAIM) || order >= MAX_ORDER) return NO_PAGE;
  const costly = order > PAGE_ALLOC_COSTLY_ORDER;
  const highest = highestUsable(pgdat, gfp);
  const flags = gfpToAllocFlags(gfp);
  const result = { r: CompactResult.skipped };
  let pfn: number;
  if (order > 0 && (costly || gfpMigratetype(gfp) !== MigrateType.movable)) {
    pfn = allocPagesDirectCompact(pgdat, gfp, order, owner, MigrateMode.async, result);
    if (pfn !== NO_PAGE) return pfn;
    if (costly && (gfp & __GFP_NORETRY) && (result.r === CompactResult.skipped || result.r === CompactResult.deferred)) return NO_PAGE;
  }
  let noProgressLoops = 0;
  // restart: the loop's compaction starts at DEF_COMPACT_PRIORITY (sync-light); a costly
  // __GFP_NORETRY request (THP faults) keeps INIT_COMPACT_PRIORITY (async)
  const compact = { priority: costly && (gfp & __GFP_NORETRY) ? CompactPriority.async : CompactPriority.syncLight, retries: 0 };
  let drained = false;
  for (let loop = 0; loop < SLOWPATH_LOOP_LIMIT; loop++) {
    if (pgdat.hooks.wakeupKswapd) for (let zi = highest; zi >= 0; zi--) if (pgdat.zones[zi]!.managedPages) pgdat.hooks.wakeupKswapd(pgdat, pgdat.zones[zi]!, order);
    pfn = getPageFromFreelist(pgdat, gfp, order, flags, highest, owner);
    if (pfn !== NO_PAGE) return pfn;
    // direct reclaim
    if (pgdat.trace !== null) pgdat.trace('task', 'mm_vmscan_direct_reclaim_begin', `order=${order} gfp_flags=${gfpTraceNames(gfp)}`);
    const reclaimed = tryToFreePages(pgdat, gfp);
    pfn = getPageFromFreelist(pgdat, gfp, order, flags, highest, owner);
    if (pfn !== NO_PAGE) return pfn;
    if (!drained) {
      drainAllPages(pgdat, null);
      drained = true;
      pfn = getPageFromFreelist(pgdat, gfp, order, flags, highest, owner);
      if (pfn !== NO_PAGE) return pfn;
    }
    // direct compaction
    if (order > 0) {
      pfn = allocPagesDirectCompact(pgdat, gfp, order, owner, priorityMode(compact.priority), result);
      if (pfn !== NO_PAGE) return pfn;
    }
    if (gfp & __GFP_NORETRY) return NO_PAGE;
    if (costly && !(gfp & __GFP_RETRY_MAYFAIL)) return NO_PAGE;
    noProgressLoops = reclaimed > 0 ? 0 : noProgressLoops + 1;
    if (shouldReclaimRetry(pgdat, order, noProgressLoops)) continue;
    if (reclaimed > 0 && shouldCompactRetry(pgdat, order, highest, result.r, compact)) continue;
    // __alloc_pages_may_oom
    if (costly || (gfp & __GFP_RETRY_MAYFAIL) || gfpZone(gfp) < ZoneType.normal) return NO_PAGE;
    if (!outOfMemory(pgdat)) return NO_PAGE;
    noProgressLoops = 0;
    if (!(gfp & __GFP_NOFAIL)) {
      pfn = getPageFromFreelist(pgdat, gfp, order, flags, highest, owner);
      if (pfn !== NO_PAGE) return pfn;
    }
  }
  return NO_PAGE;
}

// ---------------------------------------------------------------------------------
// Linux 3.6 (pgdat.kernel.slowpath === '3.6', kernel_era.ts)

/** What one 3.6 direct compaction reports back: deferred, and the best result (did_some_progress). */
type DirectCompact36 = { deferred: boolean; rc: CompactResult };

/**
 * @kernel mm/page_alloc.c __alloc_pages_direct_compact, mm/compaction.c try_to_compact_pages (Linux 3.6)
 * Deferral is checked on the preferred zone only. Each zone is compacted (async, or
 * SYNC_LIGHT once `sync`) until one meets its low watermark at the order; unless every
 * zone skipped, this cpu's pcp lists are drained and the allocation tried. Success
 * resets the preferred zone's deferral; failure counts compact_fail, and defers the
 * preferred zone only after a sync run ("async compaction considers a subset of
 * pageblocks").
 */
function allocPagesDirectCompact36(pgdat: PgData, gfp: number, order: number, owner: number, sync: boolean, st: DirectCompact36): number {
  if (!order) return NO_PAGE;
  const highest = highestUsable(pgdat, gfp);
  const preferred = pgdat.zones[highest]!;
  if (compactionDeferred(preferred, order)) { st.deferred = true; pgdat.compactDeferredEvents++; return NO_PAGE; }
  st.rc = CompactResult.skipped;
  if (!(gfp & __GFP_FS) || !(gfp & __GFP_IO)) return NO_PAGE;
  pgdat.events[VmEvent.compact_stall] = pgdat.events[VmEvent.compact_stall]! + 1;
  const mt = gfpMigratetype(gfp) as MigrateType;
  for (let zi = highest; zi >= 0; zi--) {
    const zone = pgdat.zones[zi]!;
    if (!zone.managedPages) continue;
    // compact_zone() starts with compaction_suitable()
    let status = compactionSuitable(zone, order, highest);
    if (status === CompactResult.continue) {
      const cc = createCompactControl(pgdat, zone, order, mt, sync ? MigrateMode.syncLight : MigrateMode.async, pgdat.costs);
      cc.directCompaction = true;
      status = compactZone(pgdat, cc);
      pgdat.tasks.stallNs += cc.costNs;
    }
    st.rc = Math.max(st.rc, status);
    if (zoneWatermarkOk(zone, order, zone.watermark[Wmark.low]!, 0, 0)) break;
  }
  if (st.rc === CompactResult.skipped) return NO_PAGE;
  drainAllPages(pgdat, null);
  const pfn = getPageFromFreelist(pgdat, gfp, order, gfpToAllocFlags(gfp), highest, owner);
  if (pfn !== NO_PAGE) {
    compactionDeferReset(preferred, order, true);
    pgdat.events[VmEvent.compact_success] = pgdat.events[VmEvent.compact_success]! + 1;
    return pfn;
  }
  pgdat.events[VmEvent.compact_fail] = pgdat.events[VmEvent.compact_fail]! + 1;
  if (sync) deferCompaction(preferred, order);
  return NO_PAGE;
}

/**
 * @kernel mm/page_alloc.c should_alloc_retry (Linux 3.6)
 * Loop again? Never with __GFP_NORETRY, always with __GFP_NOFAIL and for orders up to
 * PAGE_ALLOC_COSTLY_ORDER; a costly order only with __GFP_REPEAT (the model's
 * __GFP_RETRY_MAYFAIL, its 4.13 successor) until it reclaimed 2^order pages.
 */
function shouldAllocRetry36(gfp: number, order: number, pagesReclaimed: number): boolean {
  if (gfp & __GFP_NORETRY) return false;
  if (gfp & __GFP_NOFAIL) return true;
  if (order <= PAGE_ALLOC_COSTLY_ORDER) return true;
  return (gfp & __GFP_RETRY_MAYFAIL) !== 0 && pagesReclaimed < 1 << order;
}

/**
 * @kernel mm/page_alloc.c __alloc_pages_slowpath (Linux 3.6, after the first min-watermark attempt)
 * Async direct compaction; then, if compaction was deferred and the request does not
 * wake kswapd (THP's __GFP_NO_KSWAPD), fail; direct reclaim (draining the pcp lists
 * once if the page still is not there); no progress: the OOM killer for orders up to
 * 3 (a costly order fails); should_alloc_retry loops; when it says no, one last
 * SYNC_LIGHT compaction.
 */
export function allocPagesSlowpath36(pgdat: PgData, gfp: number, order: number, owner: number): number {
  if (!(gfp & __GFP_DIRECT_RECLAIM) || order >= MAX_ORDER) return NO_PAGE;
  const highest = highestUsable(pgdat, gfp);
  const flags = gfpToAllocFlags(gfp);
  const st: DirectCompact36 = { deferred: false, rc: CompactResult.skipped };
  let sync = false;
  let pagesReclaimed = 0;
  let pfn: number;
  for (let loop = 0; loop < SLOWPATH_LOOP_LIMIT; loop++) {
    // rebalance:
    pfn = getPageFromFreelist(pgdat, gfp, order, flags, highest, owner);
    if (pfn !== NO_PAGE) return pfn;
    pfn = allocPagesDirectCompact36(pgdat, gfp, order, owner, sync, st);
    if (pfn !== NO_PAGE) return pfn;
    sync = true;
    if (st.deferred && !(gfp & __GFP_KSWAPD_RECLAIM)) return NO_PAGE;
    // __alloc_pages_direct_reclaim
    const progress = tryToFreePages(pgdat, gfp);
    if (progress) {
      pfn = getPageFromFreelist(pgdat, gfp, order, flags, highest, owner);
      if (pfn !== NO_PAGE) return pfn;
      drainAllPages(pgdat, null);
      pfn = getPageFromFreelist(pgdat, gfp, order, flags, highest, owner);
      if (pfn !== NO_PAGE) return pfn;
    } else if ((gfp & __GFP_FS) && !(gfp & __GFP_NORETRY)) {
      // __alloc_pages_may_oom: one try at the high watermark, then the OOM killer
      pfn = getPageFromFreelist(pgdat, gfp, order, ALLOC_WMARK_HIGH | ALLOC_CPUSET, highest, owner);
      if (pfn !== NO_PAGE) return pfn;
      const mayKill = (gfp & __GFP_NOFAIL) !== 0 || (order <= PAGE_ALLOC_COSTLY_ORDER && gfpZone(gfp) >= ZoneType.normal);
      if (mayKill && !outOfMemory(pgdat)) return NO_PAGE;
      if (!(gfp & __GFP_NOFAIL) && (order > PAGE_ALLOC_COSTLY_ORDER || gfpZone(gfp) < ZoneType.normal)) return NO_PAGE;
      // restart: wake kswapd again
      if (pgdat.hooks.wakeupKswapd && (gfp & __GFP_KSWAPD_RECLAIM)) for (let zi = highest; zi >= 0; zi--) if (pgdat.zones[zi]!.managedPages) pgdat.hooks.wakeupKswapd(pgdat, pgdat.zones[zi]!, order);
      continue;
    }
    pagesReclaimed += progress;
    if (shouldAllocRetry36(gfp, order, pagesReclaimed)) continue;
    // "High-order allocations do not necessarily loop after direct reclaim": compact once more
    return allocPagesDirectCompact36(pgdat, gfp, order, owner, sync, st);
  }
  return NO_PAGE;
}

/**
 * @kernel mm/compaction.c compact_pgdat, __compact_pgdat (Linux 3.6)
 * kswapd's compaction after it balanced the node for a high order: every populated
 * zone whose compaction is not deferred, async; a zone that then meets its low
 * watermark at the order raises compact_order_failed (async never defers).
 */
export function compactPgdat36(pgdat: PgData, order: number): void {
  pgdat.era.kswapdCompactions++;
  for (const zone of pgdat.zones) {
    if (!zone.presentPages || !zone.managedPages) continue;
    if (!compactionDeferred(zone, order) && compactionSuitable(zone, order, zone.idx) === CompactResult.continue) {
      const cc = createCompactControl(pgdat, zone, order, MigrateType.movable, MigrateMode.async, pgdat.costs);
      compactZone(pgdat, cc);
      pgdat.daemonNs += cc.costNs;
    }
    if (zoneWatermarkOk(zone, order, zone.watermark[Wmark.low]!, 0, 0) && order >= zone.compact.orderFailed) zone.compact.orderFailed = order + 1;
  }
}

/** Whether reclaim in the zone could free enough for compaction at `order` (the model's reading of 3.6's all_unreclaimable). */
function zoneReclaimableWanted(pgdat: PgData, z: Zone, order: number): boolean {
  const v = z.vmStat;
  let lru = v[ZoneStat.nr_zone_inactive_file]! + v[ZoneStat.nr_zone_active_file]!;
  if (swapFree(pgdat) > 0) lru += v[ZoneStat.nr_zone_inactive_anon]! + v[ZoneStat.nr_zone_active_anon]!;
  return v[ZoneStat.nr_free_pages]! + lru > z.watermark[Wmark.low]! + (2 << order);
}

/**
 * @kernel mm/vmscan.c balance_pgdat (Linux 3.6)
 * kswapd for a high order: reclaim is tested at order 0 in zones where compaction
 * could run (testorder), at the order elsewhere; once balanced, if no zone meets its
 * low watermark at the order while all meet the high one at order 0, kswapd
 * compacts the node itself (there is no kcompactd).
 */
function balancePgdat36(pgdat: PgData, order: number, highestZoneidx: number): void {
  let testorder = 0;
  if (order > 0) {
    for (let zi = 0; zi <= highestZoneidx && zi < pgdat.zones.length; zi++) {
      const z = pgdat.zones[zi]!;
      if (z.managedPages && compactionSuitable(z, order, highestZoneidx) === CompactResult.skipped) testorder = order;
    }
  }
  balancePgdat(pgdat, testorder, highestZoneidx);
  if (!order) return;
  let needCompaction = true;
  for (let zi = 0; zi <= highestZoneidx && zi < pgdat.zones.length; zi++) {
    const z = pgdat.zones[zi]!;
    if (!z.managedPages) continue;
    if (compactionSuitable(z, order, highestZoneidx) === CompactResult.skipped) {
      // 3.6 reclaims again (loop_again) unless the zone is all_unreclaimable: here, when
      // its LRU pages could not lift it to the low watermark plus 2 << order
      if (zoneReclaimableWanted(pgdat, z, order)) return;
      continue;
    }
    if (!zoneWatermarkOk(z, 0, z.watermark[Wmark.high]!, 0, 0)) return;
    if (zoneWatermarkOk(z, order, z.watermark[Wmark.low]!, highestZoneidx, 0)) needCompaction = false;
  }
  if (needCompaction) compactPgdat36(pgdat, order);
}

/** @kernel mm/compaction.c kcompactd_node_suitable: some zone where compaction could help. */
function kcompactdNodeSuitable(pgdat: PgData, order: number, highestZoneidx: number): boolean {
  for (let zi = 0; zi <= highestZoneidx && zi < pgdat.zones.length; zi++) {
    const z = pgdat.zones[zi]!;
    if (z.managedPages && compactionSuitable(z, order, highestZoneidx) === CompactResult.continue) return true;
  }
  return false;
}

/**
 * @kernel mm/compaction.c kcompactd (the proactive branch), should_proactive_compact_node
 * kcompactd's periodic proactive check (every HPAGE_FRAG_CHECK_INTERVAL_MSEC): when the
 * node's fragmentation score is above the high mark, compact until it is below the low
 * one. `every(ns, fn)` wakes kcompactd after ns; `slice(fn)` runs fn as kcompactd's
 * next slice, queued behind what runs on its vCPU (cond_resched): the run goes on in
 * slices of `sliceNs` of its cost, taking turns with the tasks there. The next check
 * is an interval after the run ends, 64 times that (default_timeout <<
 * COMPACT_MAX_DEFER_SHIFT) when the score did not go down. While the run lasts,
 * kcompactd is busy: the work kswapd asks of it waits until the run is over.
 */
export function installKcompactd(pgdat: PgData, every: (ns: number, fn: () => void) => void, slice: (fn: () => void) => void = (fn) => fn(), sliceNs = Infinity): void {
  // A wakeup (proactive_compact_trigger) checks at once and restarts the period from
  // then: the ticks of the period before it are dropped by their generation.
  let gen = 0;
  const kd = pgdat.kcompactd;
  /** Starts a proactive run if one is due; false if none was (the caller rearms the period). */
  const check = (g: number): boolean => {
    const p = pgdat.sysctl.compactionProactiveness;
    if (kd.busy || !(p > 0 && fragmentationScoreNode(pgdat) > fragmentationScoreWmarks(p)[1])) return false;
    pgdat.era.proactiveRuns++;
    const prev = fragmentationScoreNode(pgdat);
    const pr = proactiveCompactStart(p);
    kd.busy = true;
    const go = () => {
      if (!proactiveCompactSlice(pgdat, pr, sliceNs)) { slice(go); return; }
      kd.busy = false;
      const timeout = fragmentationScoreNode(pgdat) >= prev ? HPAGE_FRAG_CHECK_INTERVAL_NS << COMPACT_MAX_DEFER_SHIFT : HPAGE_FRAG_CHECK_INTERVAL_NS;
      // kcompactd_work_requested: the work woken for meanwhile, now
      if (kd.pendingOrder > 0) {
        const o = kd.pendingOrder, z = kd.pendingZone;
        kd.pendingOrder = 0; kd.pendingZone = 0;
        pgdat.era.kcompactdRuns++;
        kcompactdDoWork(pgdat, o, z);
      }
      if (g === gen) every(timeout, tick(g));
    };
    go();
    return true;
  };
  const tick = (g: number) => () => {
    if (g !== gen) return;
    if (!check(g)) every(HPAGE_FRAG_CHECK_INTERVAL_NS, tick(g));
  };
  every(HPAGE_FRAG_CHECK_INTERVAL_NS, tick(gen));
  pgdat.hooks.kcompactdWake = () => {
    const g = ++gen;
    every(0, () => {
      if (g !== gen) return;
      if (!check(g)) every(HPAGE_FRAG_CHECK_INTERVAL_NS, tick(g));
    });
  };
}

/**
 * Installs the slow path and kswapd on a node. `schedule` runs a callback later at
 * the same virtual instant (after the current event), as a woken kernel thread would;
 * `kcompactd` runs kcompactd's work when kswapd wakes it (wakeup_kcompactd), at once
 * unless the caller says otherwise.
 */
export function installReclaim(pgdat: PgData, schedule: (fn: () => void) => void, kcompactd: (fn: () => void) => void = (fn) => fn()): void {
  let pending = false;
  let wantOrder = 0;
  let wantZone = 0;
  const k = pgdat.kernel;
  pgdat.hooks.slowpath = k.slowpath === '3.6' ? allocPagesSlowpath36 : allocPagesSlowpath;
  pgdat.hooks.wakeupKswapd = (pg, zone, order) => {
    wantOrder = Math.max(wantOrder, order);
    wantZone = Math.max(wantZone, zone.idx);
    if (pending) return;
    pending = true;
    schedule(() => {
      pending = false;
      // kswapd balances at order 0, then hands high orders to kcompactd (wakeup_kcompactd).
      const z = wantZone, o = wantOrder;
      wantOrder = 0;
      wantZone = 0;
      if (pg.trace !== null) pg.trace('kswapd0', 'mm_vmscan_kswapd_wake', `nid=0 order=${o}`);
      if (!k.kcompactd) { balancePgdat36(pg, o, z); return; }
      // kswapd(): balance_pgdat at the order it was woken for; it returns the order it
      // ended at, lower once it reclaimed compact_gap(order) pages. Then
      // kswapd_try_to_sleep(alloc_order, reclaim_order): when reclaim gave the high
      // order up, it tries to sleep at order 0 and wakes kcompactd for the order; when
      // it did not (nothing to reclaim, or the order is there), the loop comes round
      // with the order it was woken for since (none: no task ran meanwhile) and tries
      // to sleep at order 0 without waking kcompactd. Either way, balanced at order 0,
      // it clears the skip hints direct compaction asked to flush (prepare_kswapd_sleep,
      // reset_isolation_suitable).
      const reclaimOrder = balancePgdat(pg, o, z, true);
      if (!pgdatBalanced(pg, 0, z)) return;
      resetIsolationSuitableNode(pg);
      if (o > 0 && reclaimOrder < o && kcompactdNodeSuitable(pg, o, z)) {
        // wakeup_kcompactd: a kcompactd busy with a proactive run takes the work after it
        const kd = pg.kcompactd;
        if (kd.busy) { kd.pendingOrder = Math.max(kd.pendingOrder, o); kd.pendingZone = Math.max(kd.pendingZone, z); }
        else {
          pg.era.kcompactdRuns++;
          if (pg.trace !== null) pg.trace('kswapd0', 'mm_compaction_wakeup_kcompactd', `nid=0 order=${o} highest_zoneidx=${pg.zones[z]!.name}`);
          kcompactd(() => kcompactdDoWork(pg, o, z));
        }
      }
    });
  };
}
