/**
 * Page reclaim (mm/vmscan.c), the swap device, and the OOM killer (mm/oom_kill.c).
 *
 * Reclaim scans the LRU lists from their tails in batches of SWAP_CLUSTER_MAX pages.
 * A referenced page gets another trip round the list (an active one is kept active,
 * an inactive one is activated); an unreferenced one is reclaimed: a clean page-cache
 * page is dropped, a dirty one is written back first (it rotates to the tail and goes
 * at the next look), an anonymous page is written to swap if there is room. The
 * active lists are aged into the inactive ones when those run low
 * (inactive_is_low). How much of each list to scan follows get_scan_count: file only
 * without swap, otherwise in proportion to vm.swappiness.
 *
 * kswapd wakes when an allocation finds a zone below its low watermark (or a
 * fragmenting fallback boosted a watermark) and reclaims until every zone is above its
 * high watermark. Direct reclaim runs in the allocating task when the slow path finds
 * nothing at the min watermark; it stops once SWAP_CLUSTER_MAX pages are reclaimed.
 * When reclaim can do nothing more, the OOM killer kills the process with the most
 * memory and frees it.
 */
import {
  NO_PAGE, Owner, PG, PageLRU, listLast, listDel, listAdd, listAddTail, listNext, listPrev, pageFlags, pageMapping, pageOrder,
  pageOwner, pageRefcount, setPageFlags,
} from './memmap.js';
import { type PgData, type Shrinker, type Zone, Lru, Wmark } from './mmzone.js';
import { freePages, zoneWatermarkOk } from './page_alloc.js';
import { delPageFromLruList, lruCacheAdd, lruPages, pageLruList } from './lru.js';
import { NodeStat, VmEvent } from './vmstat_items.js';
import { gfpZoneIdx } from './gfp.js';
import { exitProcess, rmapSwapOut } from './process.js';
import { splitHugePage } from './huge_memory.js';
import { accountPageCleaned } from './page_writeback.js';
import { vfsFilePageFreed } from './dcache.js';

/** SWAP_CLUSTER_MAX */
export const SWAP_CLUSTER_MAX = 32;
/** DEF_PRIORITY: the first pass scans lru_size >> 12 pages. */
export const DEF_PRIORITY = 12;

/** struct scan_control: one reclaim run. */
export type ScanControl = {
  /** Pages wanted. */
  nrToReclaim: number;
  nrScanned: number;
  nrReclaimed: number;
  /** Scan priority: lru_size >> priority pages per list per pass. */
  priority: number;
  /** Whether anon pages may be swapped (may_swap) and dirty pages written (may_writepage). */
  maySwap: boolean;
  mayWritepage: boolean;
  /** kswapd or direct reclaim (decides which counters move). */
  kswapd: boolean;
  /** Virtual time the run cost. */
  costNs: number;
};

export function createScanControl(nrToReclaim: number, kswapd: boolean): ScanControl {
  return { nrToReclaim, nrScanned: 0, nrReclaimed: 0, priority: DEF_PRIORITY, maySwap: true, mayWritepage: true, kswapd, costNs: 0 };
}

function count(pgdat: PgData, e: VmEvent, n: number): void {
  pgdat.events[e] = pgdat.events[e]! + n;
}

/** Pages on an LRU list (the node counter). */
export function lruSize(pgdat: PgData, lru: Lru): number {
  const k = [NodeStat.nr_inactive_anon, NodeStat.nr_active_anon, NodeStat.nr_inactive_file, NodeStat.nr_active_file, NodeStat.nr_unevictable][lru]!;
  return pgdat.nodeStat[k]!;
}

/** Free swap slots. */
export function swapFree(pgdat: PgData): number {
  return pgdat.swap.totalPages - pgdat.swap.usedPages;
}

/**
 * @kernel mm/vmscan.c inactive_is_low
 * The inactive list is low when inactive * ratio < active, ratio = sqrt(10 * GiB of the
 * two lists), at least 1.
 */
export function inactiveIsLow(pgdat: PgData, inactive: Lru): boolean {
  const ina = lruSize(pgdat, inactive), act = lruSize(pgdat, inactive + 1);
  const gb = ((ina + act) * 4096) / 2 ** 30;
  const ratio = gb >= 1 ? Math.floor(Math.sqrt(10 * gb)) : 1;
  return ina * ratio < act;
}

/**
 * @kernel mm/vmscan.c shrink_active_list
 * Moves up to nrToScan pages from the active list's tail to the inactive list
 * (referenced page-cache pages stay active).
 */
function shrinkActiveList(pgdat: PgData, sc: ScanControl, active: Lru, nrToScan: number): void {
  const map = pgdat.map;
  const head = pgdat.lruBase + active;
  let moved = 0, scanned = 0;
  for (let pfn = listLast(map, head); pfn !== NO_PAGE && scanned < nrToScan; pfn = listLast(map, head)) {
    scanned++;
    const f = pageFlags(map, pfn);
    delPageFromLruList(pgdat, pfn);
    if ((f & PG.referenced) && active === Lru.activeFile) {
      setPageFlags(map, pfn, f & ~PG.referenced);
      lruCacheAdd(pgdat, pfn);
      listDel(map, pfn);
      listAdd(map, pfn, head);
      continue;
    }
    setPageFlags(map, pfn, f & ~(PG.active | PG.referenced));
    lruCacheAdd(pgdat, pfn);
    moved++;
  }
  count(pgdat, VmEvent.pgrefill, scanned);
  count(pgdat, VmEvent.pgdeactivate, moved);
  sc.costNs += scanned * pgdat.costs.reclaimScanPage;
}

/** The process a page belongs to, if it still exists. */
function pageProcess(pgdat: PgData, pfn: number) {
  return pgdat.tasks.procs.get(pageMapping(pgdat.map, pfn));
}

/**
 * @kernel mm/vmscan.c shrink_folio_list (one page)
 * Tries to reclaim one isolated inactive page; returns true when it was freed.
 * Otherwise the page is back on an LRU list (activated, rotated or kept).
 */
function shrinkPage(pgdat: PgData, sc: ScanControl, pfn: number): boolean {
  const map = pgdat.map;
  const f = pageFlags(map, pfn);
  const owner = pageOwner(map, pfn);
  const putBack = (flags: number, tail: boolean) => {
    setPageFlags(map, pfn, flags);
    lruCacheAdd(pgdat, pfn);
    if (tail) {
      listDel(map, pfn);
      listAddTail(map, pfn, pgdat.lruBase + pageLruList(map, pfn));
    }
  };
  if (pageRefcount(map, pfn) > 1 || (f & (PG.locked | PG.writeback))) {
    putBack(f, false);
    return false;
  }
  if (f & PG.referenced) {
    // Referenced since the last scan: activate (folio_check_references).
    putBack((f & ~PG.referenced) | PG.active, false);
    count(pgdat, VmEvent.pgactivate, 1);
    return false;
  }
  if (owner === Owner.anon || owner === Owner.shmem) {
    if (!sc.maySwap || swapFree(pgdat) < 1) {
      // Nowhere to put it: keep it (activate, as the kernel does for unswappable anon).
      putBack(f | PG.active, false);
      count(pgdat, VmEvent.pgactivate, 1);
      return false;
    }
    pgdat.swap.usedPages++;
    const proc = pageProcess(pgdat, pfn);
    // try_to_unmap: the pte holds the swap entry now
    if (proc && owner === Owner.anon) rmapSwapOut(pgdat, proc, pfn);
    count(pgdat, VmEvent.pswpout, 1);
    count(pgdat, VmEvent.pgpgout, 8); // sectors, as the kernel counts bios
    // swap_writepage submits the bio and reclaim goes on: the CPU's part, not the device's
    sc.costNs += pgdat.costs.pageoutSubmit;
  } else if (owner === Owner.file) {
    if (f & PG.dirty) {
      if (!sc.mayWritepage) { putBack(f, false); return false; }
      // pageout(): write it back; it comes round again, clean, at the tail.
      pgdat.nodeStat[NodeStat.nr_vmscan_write] = pgdat.nodeStat[NodeStat.nr_vmscan_write]! + 1;
      accountPageCleaned(pgdat, pfn, true);
      sc.costNs += pgdat.costs.pageoutSubmit;
      putBack(f & ~PG.dirty, true);
      count(pgdat, VmEvent.pgrotated, 1);
      return false;
    }
    const proc = pageProcess(pgdat, pfn);
    if (proc) proc.filePages--;
    vfsFilePageFreed(pgdat, pageMapping(map, pfn)); // __remove_mapping: its buffers and page-tree share go
  } else {
    putBack(f, false);
    return false;
  }
  const k = (f & PG.swapbacked) ? NodeStat.nr_isolated_anon : NodeStat.nr_isolated_file;
  pgdat.nodeStat[k] = pgdat.nodeStat[k]! - 1;
  freePages(pgdat, pfn, 0);
  return true;
}

/**
 * @kernel mm/vmscan.c shrink_inactive_list
 * Isolates up to nrToScan pages from the inactive list's tail and reclaims what it can.
 */
function shrinkInactiveList(pgdat: PgData, sc: ScanControl, inactive: Lru, nrToScan: number): number {
  const map = pgdat.map;
  const head = pgdat.lruBase + inactive;
  const anon = inactive === Lru.inactiveAnon;
  let scanned = 0, reclaimed = 0;
  let pfn = listLast(map, head);
  while (pfn !== NO_PAGE && scanned < nrToScan) {
    const prev = listPrev(map, pfn);
    scanned++;
    if (pageOrder(map, pfn) !== 0) {
      // shrink_folio_list: an anonymous THP about to be swapped out is split first (the
      // model's swap device takes no THP whole: thp_swpout_fallback for a PMD-mapped
      // one), its subpages then reclaimed one by one; a referenced THP is activated whole.
      // Only the pages reclaim goes on to look at count as scanned.
      scanned--;
      const f = pageFlags(map, pfn);
      if (anon && pageOwner(map, pfn) === Owner.anon && sc.maySwap && swapFree(pgdat) >= 1) {
        if ((f & PG.referenced) !== 0) {
          delPageFromLruList(pgdat, pfn);
          setPageFlags(map, pfn, (f & ~PG.referenced) | PG.active);
          lruCacheAdd(pgdat, pfn);
          count(pgdat, VmEvent.pgactivate, lruPages(map, pfn));
          scanned += lruPages(map, pfn);
          pfn = prev === head ? NO_PAGE : prev;
          continue;
        }
        const pmdMapped = !pgdat.deferredSplitQueue.thps.has(pfn);
        const after = listNext(map, pfn);
        if (splitHugePage(pgdat, pfn)) {
          if (pmdMapped) count(pgdat, VmEvent.thp_swpout_fallback, 1);
          // the head (now a base page, or freed if it was unmapped) and then the subpages,
          // which went on the list just before it, are looked at next
          if (PageLRU(map, pfn)) continue;
          const p = listPrev(map, after);
          pfn = p === head ? NO_PAGE : p;
          continue;
        }
      }
      scanned++;
      pfn = prev === head ? NO_PAGE : prev;
      continue;
    }
    delPageFromLruList(pgdat, pfn);
    const k = anon ? NodeStat.nr_isolated_anon : NodeStat.nr_isolated_file;
    pgdat.nodeStat[k] = pgdat.nodeStat[k]! + 1;
    if (shrinkPage(pgdat, sc, pfn)) reclaimed++;
    else pgdat.nodeStat[k] = pgdat.nodeStat[k]! - 1;
    pfn = prev === head ? NO_PAGE : prev;
  }
  sc.nrScanned += scanned;
  sc.nrReclaimed += reclaimed;
  sc.costNs += scanned * pgdat.costs.reclaimScanPage;
  count(pgdat, sc.kswapd ? VmEvent.pgscan_kswapd : VmEvent.pgscan_direct, scanned);
  count(pgdat, sc.kswapd ? VmEvent.pgsteal_kswapd : VmEvent.pgsteal_direct, reclaimed);
  count(pgdat, anon ? VmEvent.pgscan_anon : VmEvent.pgscan_file, scanned);
  count(pgdat, anon ? VmEvent.pgsteal_anon : VmEvent.pgsteal_file, reclaimed);
  return reclaimed;
}

/**
 * @kernel mm/vmscan.c shrink_node (shrink_lruvec with get_scan_count, shrink_slab)
 * One pass at sc.priority over the node's lists. Anonymous memory is scanned only with
 * swap space left, weighted by swappiness against file pages (200 - swappiness). Then
 * the shrinkers; slab pages freed during the pass count as reclaimed
 * (reclaim_state->reclaimed_slab).
 */
export function shrinkNode(pgdat: PgData, sc: ScanControl): void {
  // reclaim_state: slab pages freed while this pass runs count as reclaimed
  const slabFreed0 = pgdat.slab.freedPages;
  const canSwap = sc.maySwap && swapFree(pgdat) > 0;
  const anonSize = lruSize(pgdat, Lru.inactiveAnon) + lruSize(pgdat, Lru.activeAnon);
  const fileSize = lruSize(pgdat, Lru.inactiveFile) + lruSize(pgdat, Lru.activeFile);
  const anonW = canSwap ? pgdat.sysctl.swappiness : 0;
  let fileW = 200 - pgdat.sysctl.swappiness;
  if (fileSize === 0) fileW = 0;
  if (anonW + fileW === 0) {
    shrinkSlab(pgdat, sc.priority);
    sc.nrReclaimed += pgdat.slab.freedPages - slabFreed0;
    return;
  }
  // scan at least a cluster at the lowest priorities so small lists get reclaimed
  const share = (size: number, w: number) => {
    if (w === 0 || size === 0) return 0;
    let n = Math.floor(size / 2 ** sc.priority);
    if (n === 0 && sc.priority < DEF_PRIORITY - 2) n = Math.min(size, SWAP_CLUSTER_MAX);
    return Math.ceil((n * w) / (anonW + fileW));
  };
  const nrAnon = share(anonSize, anonW);
  const nrFile = share(fileSize, fileW);
  for (const [inactive, nr] of [[Lru.inactiveFile, nrFile], [Lru.inactiveAnon, nrAnon]] as const) {
    if (nr === 0) continue;
    if (inactiveIsLow(pgdat, inactive)) shrinkActiveList(pgdat, sc, inactive + 1, nr);
    let left = nr;
    while (left > 0 && sc.nrReclaimed < sc.nrToReclaim) {
      const batch = Math.min(left, SWAP_CLUSTER_MAX);
      shrinkInactiveList(pgdat, sc, inactive, batch);
      left -= batch;
      if (lruSize(pgdat, inactive) === 0) {
        if (lruSize(pgdat, inactive + 1) === 0) break;
        shrinkActiveList(pgdat, sc, inactive + 1, SWAP_CLUSTER_MAX);
      }
    }
  }
  shrinkSlab(pgdat, sc.priority);
  sc.nrReclaimed += pgdat.slab.freedPages - slabFreed0;
}

/** SHRINK_BATCH: objects a shrinker is asked to scan per call unless it sets its own batch. */
export const SHRINK_BATCH = 128;

/**
 * @kernel mm/vmscan.c do_shrink_slab
 * One shrinker at one priority: delta = (freeable >> priority) * 4 / seeks new work
 * (freeable / 2 for seeks 0), plus the work deferred from earlier calls >> priority,
 * at most twice what it holds, scanned in batches (SHRINK_BATCH or the shrinker's own;
 * a last short batch only when the work covers everything it holds). What was not
 * scanned of nr_deferred + delta is deferred to the next call, capped at 2 * freeable.
 * Each batch counts slabs_scanned. Returns the objects freed.
 */
export function doShrinkSlab(pgdat: PgData, s: Shrinker, priority: number): number {
  const freeable = s.countObjects(pgdat);
  if (freeable <= 0) return 0;
  const batch = s.batch || SHRINK_BATCH;
  const nr = s.nrDeferred ?? 0; // xchg_nr_deferred
  s.nrDeferred = 0;
  const delta = s.seeks ? Math.floor((Math.floor(freeable / 2 ** priority) * 4) / s.seeks) : Math.floor(freeable / 2);
  let totalScan = Math.min(Math.floor(nr / 2 ** priority) + delta, 2 * freeable);
  let freed = 0, scanned = 0;
  while (totalScan >= batch || totalScan >= freeable) {
    const nrToScan = Math.min(batch, totalScan);
    const ret = s.scanObjects(pgdat, nrToScan);
    if (ret < 0) break; // SHRINK_STOP
    freed += ret;
    count(pgdat, VmEvent.slabs_scanned, nrToScan);
    totalScan -= nrToScan;
    scanned += nrToScan;
  }
  // add_nr_deferred
  s.nrDeferred = Math.min(Math.max(nr + delta - scanned, 0), 2 * freeable);
  return freed;
}

/**
 * @kernel mm/vmscan.c shrink_slab
 * Asks every registered shrinker, in registration order, to free objects at the
 * reclaim priority (do_shrink_slab). Returns the objects freed.
 */
export function shrinkSlab(pgdat: PgData, priority: number): number {
  let freed = 0;
  for (const s of pgdat.shrinkers) freed += doShrinkSlab(pgdat, s, priority);
  return freed;
}

/**
 * @kernel mm/vmscan.c drop_slab_node
 * echo 2 > /proc/sys/vm/drop_caches: shrink_slab at priority 0 again and again while
 * a round still frees more than 2^shift objects (shift grows each round). Returns the
 * objects freed.
 */
export function dropSlab(pgdat: PgData): number {
  let total = 0, freed = 0, shift = 0;
  do {
    freed = shrinkSlab(pgdat, 0);
    total += freed;
  } while (Math.floor(freed / 2 ** shift++) > 1);
  return total;
}

/** allocstall_<zone> by the zone index do_try_to_free_pages counts it under. */
const ALLOCSTALL_BY_ZONE: readonly VmEvent[] = [VmEvent.allocstall_dma, VmEvent.allocstall_dma32, VmEvent.allocstall_normal, VmEvent.allocstall_movable];

/**
 * @kernel mm/vmscan.c try_to_free_pages (do_try_to_free_pages)
 * Direct reclaim: passes of rising priority until SWAP_CLUSTER_MAX pages are freed.
 * The stall is counted as allocstall_<zone> of sc->reclaim_idx = gfp_zone(gfp): an
 * anonymous fault (GFP_HIGHUSER_MOVABLE) counts allocstall_movable even in a guest
 * without a Movable zone, as the real 6.1 guest's /proc/vmstat shows.
 * Returns the pages reclaimed; the time spent is added to pgdat.tasks.stallNs.
 */
export function tryToFreePages(pgdat: PgData, gfp: number): number {
  const sc = createScanControl(SWAP_CLUSTER_MAX, false);
  count(pgdat, ALLOCSTALL_BY_ZONE[gfpZoneIdx(gfp)]!, 1);
  for (sc.priority = DEF_PRIORITY; sc.priority >= 0 && sc.nrReclaimed < sc.nrToReclaim; sc.priority--) shrinkNode(pgdat, sc);
  pgdat.tasks.stallNs += sc.costNs;
  return sc.nrReclaimed;
}

/** pgdat_balanced(): every populated zone up to highestZoneidx above its high watermark (plus boost). */
export function pgdatBalanced(pgdat: PgData, order: number, highestZoneidx: number): boolean {
  for (let zi = 0; zi <= highestZoneidx && zi < pgdat.zones.length; zi++) {
    const z = pgdat.zones[zi]!;
    if (!z.managedPages) continue;
    if (!zoneWatermarkOk(z, order, z.watermark[Wmark.high]! + z.watermarkBoost, highestZoneidx, 0)) return false;
  }
  return true;
}

/**
 * @kernel mm/vmscan.c balance_pgdat, kswapd_shrink_node
 * kswapd's work: reclaim at rising priority until the node is balanced at `order` (or
 * nothing more can be reclaimed); clears watermark boosts. With `compactGap` (4.x on),
 * once it has reclaimed compact_gap(order) = 2 << order pages it checks the
 * watermarks at order 0 only ("Fragmentation may mean that the system cannot be
 * rebalanced for high-order allocations"). Returns the order it ended at (sc->order:
 * lower than `order` when it gave the high order up).
 */
export function balancePgdat(pgdat: PgData, order: number, highestZoneidx: number, compactGap = false): number {
  count(pgdat, VmEvent.pageoutrun, 1);
  const sc = createScanControl(Number.MAX_SAFE_INTEGER, true);
  // set_reclaim_active: while kswapd works, the zones' pcp lists hold at most four batches
  for (let zi = 0; zi <= highestZoneidx && zi < pgdat.zones.length; zi++) if (pgdat.zones[zi]!.managedPages) pgdat.zones[zi]!.reclaimActive = true;
  if (pgdatBalanced(pgdat, order, highestZoneidx)) {
    count(pgdat, VmEvent.kswapd_low_wmark_hit_quickly, 1);
  } else {
    for (sc.priority = DEF_PRIORITY; sc.priority >= 0; sc.priority--) {
      const before = sc.nrReclaimed;
      sc.nrToReclaim = sc.nrReclaimed + Math.max(SWAP_CLUSTER_MAX, highWatermarkDeficit(pgdat, highestZoneidx));
      shrinkNode(pgdat, sc);
      if (compactGap && order > 0 && sc.nrReclaimed >= 2 << order) order = 0;
      if (pgdatBalanced(pgdat, order, highestZoneidx)) break;
      if (sc.nrReclaimed === before && sc.priority < DEF_PRIORITY - 2 && sc.nrScanned > 0 && lruSize(pgdat, Lru.inactiveFile) + lruSize(pgdat, Lru.inactiveAnon) === 0) break;
    }
  }
  for (const z of pgdat.zones) { z.watermarkBoost = 0; z.reclaimActive = false; }
  pgdat.daemonNs += sc.costNs;
  return order;
}

function highWatermarkDeficit(pgdat: PgData, highestZoneidx: number): number {
  let d = 0;
  for (let zi = 0; zi <= highestZoneidx && zi < pgdat.zones.length; zi++) {
    const z: Zone = pgdat.zones[zi]!;
    if (!z.managedPages) continue;
    d += Math.max(0, z.watermark[Wmark.high]! + z.watermarkBoost - z.vmStat[0]!);
  }
  return d;
}

/**
 * @kernel mm/oom_kill.c out_of_memory
 * First asks the OOM notifiers (the balloon's deflate-on-OOM) to free memory; if any
 * did, that is enough for now. Otherwise kills the process with the largest footprint (resident anonymous pages plus swap
 * entries, oom_badness without adjustments) and frees its memory. Returns false when
 * there is no process to kill.
 */
export function outOfMemory(pgdat: PgData): boolean {
  // blocking_notifier_call_chain(&oom_notify_list): "got some memory back" ends it here
  let freed = 0;
  for (const fn of pgdat.oomNotifiers) freed += fn(pgdat);
  if (freed > 0) return true;
  let victim = null;
  let worst = -1;
  for (const p of pgdat.tasks.procs.values()) {
    const badness = p.rssAnon + p.swapPages + p.mm.nrPgtables; // oom_badness: rss, swap entries, page tables
    if (badness > worst) { worst = badness; victim = p; }
  }
  if (!victim || worst <= 0) return false;
  count(pgdat, VmEvent.oom_kill, 1);
  pgdat.tasks.stallNs += pgdat.costs.oomKill;
  exitProcess(pgdat, pgdat.tasks.procs, victim);
  return true;
}
