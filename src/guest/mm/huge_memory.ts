/**
 * Transparent huge pages (mm/huge_memory.c): the sysfs knobs
 * /sys/kernel/mm/transparent_hugepage/{enabled,defrag}, and the deferred split — an
 * anonymous THP mapped only in part (process.ts zapThpSubpage) waits on the node's
 * deferred split queue until memory pressure runs the deferred split shrinker, which
 * splits it into base pages and frees the subpages no longer mapped.
 *
 * Reclaim splits a THP it is about to swap out (splitHugePage on a PMD-mapped THP
 * splits the PMD first), as 6.1's shrink_folio_list does when the swap device cannot
 * take the THP whole. The fault path (do_huge_pmd_anonymous_page, vma_thp_gfp_mask) is
 * in process.ts and khugepaged in khugepaged.ts. Not modelled: splitting for migration
 * (compaction skips THPs, as 6.1's does outside alloc_contig), THP swap-out whole, the
 * huge zero page and its shrinker, file THPs.
 */
import { Owner, PG, pageFlags, pageIndex, pageMapping, pageOrder, pageOwner, resetPages, setPageMapping } from './memmap.js';
import { type PgData, type Shrinker } from './mmzone.js';
import type { ThpDefrag, ThpEnabled } from './sysctl.js';
import { freePages } from './page_alloc.js';
import { delPageFromLruList, lruAddPageTail, pageLruList, updateLruSize } from './lru.js';
import { HPAGE_PMD_NR, splitHugePmd } from './process.js';
import { NodeStat, VmEvent } from './vmstat_items.js';
import { startStopKhugepaged } from './khugepaged.js';

/**
 * @kernel mm/huge_memory.c enabled_store
 * Writing transparent_hugepage/enabled: the mode changes, khugepaged starts or stops,
 * and min_free_kbytes follows (start_stop_khugepaged: raised for THP, recomputed
 * without it).
 */
export function enabledStore(pgdat: PgData, mode: ThpEnabled): void {
  pgdat.sysctl.thp.enabled = mode;
  startStopKhugepaged(pgdat);
}

/**
 * @kernel mm/huge_memory.c defrag_store
 * Writing transparent_hugepage/defrag: how hard later huge page faults try
 * (vma_thp_gfp_mask); nothing else changes.
 */
export function defragStore(pgdat: PgData, mode: ThpDefrag): void {
  pgdat.sysctl.thp.defrag = mode;
}

/** Page flags a subpage inherits from its head in a split (__split_huge_page_tail, those the model keeps). */
const SPLIT_KEEP_FLAGS = PG.referenced | PG.swapbacked | PG.swapcache | PG.uptodate | PG.active | PG.workingset | PG.dirty;

/**
 * @kernel mm/huge_memory.c split_huge_page (__split_huge_page for an anonymous THP)
 * Splits an anonymous THP into base pages. A THP still mapped by its PMD has the PMD
 * split first (the ptes then map the subpages). The subpages still mapped stay the
 * process's, on the head's LRU list (each just before the head), at their virtual
 * places; those a partial unmap took (a THP on the deferred split queue) are freed
 * (ascending, the head last). Counts thp_split_page. Returns false when the THP cannot
 * be split now (isolated, or no process maps it).
 */
export function splitHugePage(pgdat: PgData, head: number): boolean {
  const map = pgdat.map;
  const q = pgdat.deferredSplitQueue.thps;
  if ((pageFlags(map, head) & (PG.head | PG.lru)) !== (PG.head | PG.lru) || pageOwner(map, head) !== Owner.anon) return false;
  const pid = pageMapping(map, head);
  const proc = pgdat.tasks.procs.get(pid);
  if (proc === undefined) return false;
  const d = q.get(head);
  const n = 1 << pageOrder(map, head);
  if (d === undefined) {
    // still PMD-mapped: unmap_folio splits the PMD (the deposited table takes the ptes)
    const vpn = pageIndex(map, head);
    const pmd = proc.mm.pmds.get(Math.floor(vpn / HPAGE_PMD_NR));
    if (pmd === undefined || pmd.huge !== head) return false;
    splitHugePmd(pgdat, pmd);
  }
  const lru = pageLruList(map, head);
  const keep = pageFlags(map, head) & SPLIT_KEEP_FLAGS;
  // the head stays where it is on the LRU, now one page instead of n
  resetPages(map, head, head + 1, Owner.anon, keep | PG.lru, 1);
  setPageMapping(map, head, pid);
  updateLruSize(pgdat, head, lru, 1 - n);
  q.delete(head);
  for (let sub = n - 1; sub >= 1; sub--) {
    const p = head + sub;
    resetPages(map, p, p + 1, Owner.anon, keep, 1);
    setPageMapping(map, p, pid);
    if (d !== undefined && d.unmapped[sub]) continue;
    lruAddPageTail(pgdat, head, p);
  }
  if (d !== undefined) {
    // the unmapped subpages go back to the allocator (they left AnonPages when unmapped)
    const ns = pgdat.nodeStat;
    for (let sub = 1; sub < n; sub++) {
      if (!d.unmapped[sub]) continue;
      ns[NodeStat.nr_anon_pages] = ns[NodeStat.nr_anon_pages]! + 1;
      freePages(pgdat, head + sub, 0);
    }
    if (d.unmapped[0]) {
      ns[NodeStat.nr_anon_pages] = ns[NodeStat.nr_anon_pages]! + 1;
      delPageFromLruList(pgdat, head);
      freePages(pgdat, head, 0);
    }
  }
  pgdat.events[VmEvent.thp_split_page] = pgdat.events[VmEvent.thp_split_page]! + 1;
  return true;
}

/**
 * @kernel mm/huge_memory.c deferred_split_scan
 * Takes up to nrToScan THPs from the front of the queue and splits them (in the reverse
 * of the order taken, as the kernel's local list holds them); returns how many were
 * split, or -1 (SHRINK_STOP) when none was and the queue is empty.
 */
export function deferredSplitScan(pgdat: PgData, nrToScan: number): number {
  const taken: number[] = [];
  for (const head of pgdat.deferredSplitQueue.thps.keys()) {
    taken.push(head);
    if (taken.length >= nrToScan) break;
  }
  let split = 0;
  for (let i = taken.length - 1; i >= 0; i--) if (splitHugePage(pgdat, taken[i]!)) split++;
  if (split === 0 && pgdat.deferredSplitQueue.thps.size === 0) return -1;
  return split;
}

/**
 * @kernel mm/huge_memory.c deferred_split_shrinker
 * The shrinker reclaim asks (shrink_slab): its objects are the queued THPs
 * (deferred_split_count), DEFAULT_SEEKS.
 */
export function deferredSplitShrinker(): Shrinker {
  return {
    name: 'thp-deferred_split',
    countObjects: (pgdat) => pgdat.deferredSplitQueue.thps.size,
    scanObjects: (pgdat, nr) => deferredSplitScan(pgdat, nr),
    seeks: 2,
  };
}
