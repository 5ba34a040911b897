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
import { type PgData, type Zone, MigrateMode, Lru, ZoneType } from './mmzone.js';
import { getPageFromFreelist, gfpToAllocFlags, drainAllPages } from './page_alloc.js';
import {
  __GFP_DIRECT_RECLAIM, __GFP_NORETRY, __GFP_RETRY_MAYFAIL, __GFP_NOFAIL, gfpMigratetype, gfpZone,
} from './gfp.js';
import {
  CompactResult, createCompactControl, compactZone, compactionSuitable, compactionDeferred, deferCompaction,
  compactionMadeProgress, compactionFailed, compactionNeedsReclaim, compactionWithdrawn, compactionZonelistSuitable,
  compactionDeferReset, kcompactdDoWork, proactiveCompactNode, fragmentationScoreNode, fragmentationScoreWmarks,
  HPAGE_FRAG_CHECK_INTERVAL_NS,
} from './compaction.js';
import { tryToFreePages, balancePgdat, outOfMemory, lruSize, swapFree } from './vmscan.js';
import { VmEvent, ZoneStat } from './vmstat_items.js';

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
 * page or NO_PAGE; `result` gets the best compaction result.
 */
export function allocPagesDirectCompact(pgdat: PgData, gfp: number, order: number, owner: number, mode: MigrateMode, result: { r: CompactResult }): number {
  const highest = highestUsable(pgdat, gfp);
  const mt = gfpMigratetype(gfp);
  let best = CompactResult.skipped;
  let tried = false;
  for (let zi = highest; zi >= 0; zi--) {
    const zone: Zone = pgdat.zones[zi]!;
    if (!zone.managedPages) continue;
    if (mode !== MigrateMode.sync && compactionDeferred(zone, order)) {
      best = Math.max(best, CompactResult.deferred);
      continue;
    }
    const suitable = compactionSuitable(zone, order, highest);
    if (suitable !== CompactResult.continue) {
      best = Math.max(best, suitable);
      continue;
    }
    if (!tried) pgdat.events[VmEvent.compact_stall] = pgdat.events[VmEvent.compact_stall]! + 1;
    tried = true;
    const cc = createCompactControl(pgdat, zone, order, mt as MigrateType, mode, pgdat.costs);
    cc.directCompaction = true;
    cc.ignoreSkipHint = false;
    cc.wholeZone = false;
    const r = compactZone(pgdat, cc);
    pgdat.tasks.stallNs += cc.costNs;
    best = Math.max(best, r);
    if (mode !== MigrateMode.async && r === CompactResult.complete) deferCompaction(zone, order);
    if (r === CompactResult.success) break;
  }
  result.r = best;
  if (!tried) return NO_PAGE;
  drainAllPages(pgdat, null);
  const pfn = getPageFromFreelist(pgdat, gfp, order, gfpToAllocFlags(gfp), highest, owner);
  if (pfn !== NO_PAGE) {
    for (const z of pgdat.zones) if (z.managedPages) compactionDeferReset(z, order, true);
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
  // NOTE: the kernel starts the loop's compaction at DEF_COMPACT_PRIORITY (sync-light)
  // unless a costly __GFP_NORETRY request set INIT_COMPACT_PRIORITY (async); the model
  // starts every request at async. A known divergence (docs/model-limits.md), kept
  // while the model's figures are checked against the real kernel.
  const compact = { priority: CompactPriority.async, retries: 0 };
  let drained = false;
  for (let loop = 0; loop < SLOWPATH_LOOP_LIMIT; loop++) {
    if (pgdat.hooks.wakeupKswapd) for (let zi = highest; zi >= 0; zi--) if (pgdat.zones[zi]!.managedPages) pgdat.hooks.wakeupKswapd(pgdat, pgdat.zones[zi]!, order);
    pfn = getPageFromFreelist(pgdat, gfp, order, flags, highest, owner);
    if (pfn !== NO_PAGE) return pfn;
    // direct reclaim
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

/** @kernel mm/compaction.c kcompactd_node_suitable: some zone where compaction could help. */
function kcompactdNodeSuitable(pgdat: PgData, order: number, highestZoneidx: number): boolean {
  for (let zi = 0; zi <= highestZoneidx && zi < pgdat.zones.length; zi++) {
    const z = pgdat.zones[zi]!;
    if (z.managedPages && compactionSuitable(z, order, highestZoneidx) === CompactResult.continue) return true;
  }
  return false;
}

/**
 * kcompactd's periodic proactive check (every HPAGE_FRAG_CHECK_INTERVAL_MSEC): when the
 * node's fragmentation score is above the high mark, compact until it is below the low
 * one. `every` schedules the next check.
 */
export function installKcompactd(pgdat: PgData, every: (ns: number, fn: () => void) => void): void {
  // A wakeup (proactive_compact_trigger) checks at once and restarts the period from
  // then: the ticks of the period before it are dropped by their generation.
  let gen = 0;
  const check = () => {
    const p = pgdat.sysctl.compactionProactiveness;
    if (p > 0 && fragmentationScoreNode(pgdat) > fragmentationScoreWmarks(p)[1]) proactiveCompactNode(pgdat, p);
  };
  const tick = (g: number) => () => {
    if (g !== gen) return;
    check();
    every(HPAGE_FRAG_CHECK_INTERVAL_NS, tick(g));
  };
  every(HPAGE_FRAG_CHECK_INTERVAL_NS, tick(gen));
  pgdat.hooks.kcompactdWake = () => {
    const g = ++gen;
    every(0, () => {
      if (g !== gen) return;
      check();
      every(HPAGE_FRAG_CHECK_INTERVAL_NS, tick(g));
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
  pgdat.hooks.slowpath = allocPagesSlowpath;
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
      balancePgdat(pg, 0, z);
      if (o > 0 && kcompactdNodeSuitable(pg, o, z)) kcompactd(() => kcompactdDoWork(pg, o, z));
    });
  };
}
