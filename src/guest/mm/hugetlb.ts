/**
 * The hugetlb pool (mm/hugetlb.c) of the default huge page size, 2 MiB on x86-64:
 * what writing /proc/sys/vm/nr_hugepages does. Growing the pool allocates fresh huge
 * pages from the buddy allocator one at a time (GFP_HIGHUSER_MOVABLE | __GFP_THISNODE,
 * plus __GFP_COMP | __GFP_NOWARN | __GFP_RETRY_MAYFAIL: reclaim and compaction, no
 * OOM killer) and stops at the first failure, counting htlb_buddy_alloc_success and
 * htlb_buddy_alloc_fail; shrinking it gives free pool pages back to the buddy allocator.
 *
 * Pool pages are compound pages owned by Owner.hugetlb, not on the LRU, skipped by
 * compaction and reclaim as the kernel skips them. The model has no hugetlbfs, so no
 * pool page is ever mapped: HugePages_Free equals HugePages_Total, and reservations,
 * surplus pages and overcommit stay 0. One node, so __GFP_THISNODE and the per-node
 * retry mask change nothing. The state is PgData.hugetlb (struct hstate).
 */
import { NO_PAGE, Owner, setPageRefcount } from './memmap.js';
import { type PgData, type HState } from './mmzone.js';
import { allocPages, freePages } from './page_alloc.js';
import { GFP_HIGHUSER_MOVABLE, __GFP_THISNODE, __GFP_COMP, __GFP_NOWARN, __GFP_RETRY_MAYFAIL } from './gfp.js';
import { VmEvent } from './vmstat_items.js';

/** @kernel mm/hugetlb.c persistent_huge_pages: the pool less its surplus pages. */
export function persistentHugePages(h: HState): number {
  return h.nrHugePages - h.surplusHugePages;
}

/** Base pages of one huge page (pages_per_huge_page). */
export function pagesPerHugePage(h: HState): number {
  return 1 << h.order;
}

/** Pages the pool holds (hugetlb_total_pages): what CommitLimit leaves out and Hugetlb: shows. */
export function hugetlbTotalPages(h: HState): number {
  return h.nrHugePages * pagesPerHugePage(h);
}

/**
 * @kernel include/linux/hugetlb.h htlb_alloc_mask
 * GFP_HIGHUSER_MOVABLE, as hugepage_movable_supported() holds for 2 MiB pages on x86-64
 * (hugepage migration is supported and the size is not gigantic).
 */
export function htlbAllocMask(): number {
  return GFP_HIGHUSER_MOVABLE;
}

/**
 * @kernel mm/hugetlb.c alloc_buddy_huge_page
 * One huge page from the buddy allocator: __GFP_COMP | __GFP_NOWARN, and
 * __GFP_RETRY_MAYFAIL unless an earlier attempt on the node failed in this pool change
 * (tryHard false). Counts htlb_buddy_alloc_success or htlb_buddy_alloc_fail.
 */
export function allocBuddyHugePage(pgdat: PgData, h: HState, gfp: number, tryHard: boolean): number {
  const mask = gfp | __GFP_COMP | __GFP_NOWARN | (tryHard ? __GFP_RETRY_MAYFAIL : 0);
  const pfn = allocPages(pgdat, mask, h.order, Owner.hugetlb);
  const ev = pgdat.events;
  if (pfn === NO_PAGE) {
    ev[VmEvent.htlb_buddy_alloc_fail] = ev[VmEvent.htlb_buddy_alloc_fail]! + 1;
    return NO_PAGE;
  }
  // page_ref_freeze(page, 1): a pool page has no references
  setPageRefcount(pgdat.map, pfn, 0);
  ev[VmEvent.htlb_buddy_alloc_success] = ev[VmEvent.htlb_buddy_alloc_success]! + 1;
  return pfn;
}

/**
 * @kernel mm/hugetlb.c alloc_fresh_huge_page (with prep_new_huge_page)
 * A new huge page for the pool: nr_huge_pages counts it.
 */
export function allocFreshHugePage(pgdat: PgData, h: HState, gfp: number, tryHard: boolean): number {
  const pfn = allocBuddyHugePage(pgdat, h, gfp, tryHard);
  if (pfn === NO_PAGE) return NO_PAGE;
  h.nrHugePages++;
  return pfn;
}

/** @kernel mm/hugetlb.c enqueue_huge_page: onto the head of the pool's free list. */
function enqueueHugePage(h: HState, pfn: number): void {
  h.freelist.push(pfn);
  h.freeHugePages++;
}

/**
 * @kernel mm/hugetlb.c alloc_pool_huge_page
 * Allocates one huge page on the node (htlb_alloc_mask | __GFP_THISNODE) and frees it
 * into the pool (free_huge_page); false when the allocation failed.
 */
export function allocPoolHugePage(pgdat: PgData, h: HState, noretry: { node0: boolean }): boolean {
  const pfn = allocFreshHugePage(pgdat, h, htlbAllocMask() | __GFP_THISNODE, !noretry.node0);
  // node_alloc_noretry: a hard try that failed makes the next ones on the node light,
  // a light one that succeeded makes them hard again
  noretry.node0 = pfn === NO_PAGE;
  if (pfn === NO_PAGE) return false;
  enqueueHugePage(h, pfn);
  return true;
}

/**
 * @kernel mm/hugetlb.c remove_pool_huge_page (with remove_hugetlb_page)
 * Takes the free pool page at the head of the free list out of the pool; NO_PAGE when
 * none is free.
 */
export function removePoolHugePage(h: HState): number {
  const pfn = h.freelist.pop();
  if (pfn === undefined) return NO_PAGE;
  h.freeHugePages--;
  h.nrHugePages--;
  return pfn;
}

/**
 * @kernel mm/hugetlb.c update_and_free_page
 * A huge page out of the pool goes back to the buddy allocator (__free_pages of its order).
 */
export function updateAndFreePage(pgdat: PgData, h: HState, pfn: number): void {
  setPageRefcount(pgdat.map, pfn, 1);
  freePages(pgdat, pfn, h.order);
}

/**
 * @kernel mm/hugetlb.c set_max_huge_pages
 * Resizes the pool to `count` huge pages. Growing: fresh huge pages one at a time
 * (cond_resched between them) until the pool has count or an allocation fails — the
 * first failure ends it (goto out), so the pool may end smaller than asked. Shrinking:
 * free pool pages (taken from the head of the free list) are collected, then freed to
 * the buddy allocator in the reverse order (update_and_free_pages_bulk walks the
 * list_add-built list), never below the pages in use or reserved (none, in the model).
 * max_huge_pages, which /proc/sys/vm/nr_hugepages reads, becomes the pool's size.
 */
export function setMaxHugePages(pgdat: PgData, count: number): void {
  const h = pgdat.hugetlb;
  const noretry = { node0: false };
  let failed = false;
  // (no surplus pages to convert first: the model never makes them)
  while (count > persistentHugePages(h)) {
    if (!allocPoolHugePage(pgdat, h, noretry)) { failed = true; break; }
  }
  if (!failed) {
    const minCount = Math.max(count, h.resvHugePages + h.nrHugePages - h.freeHugePages);
    const list: number[] = [];
    while (minCount < persistentHugePages(h)) {
      const pfn = removePoolHugePage(h);
      if (pfn === NO_PAGE) break;
      list.push(pfn);
    }
    for (let i = list.length - 1; i >= 0; i--) updateAndFreePage(pgdat, h, list[i]!);
  }
  h.maxHugePages = persistentHugePages(h);
}

/**
 * @kernel mm/hugetlb.c hugetlb_sysctl_handler (__nr_hugepages_store_common)
 * Writing vm.nr_hugepages (an unsigned count): set_max_huge_pages over every node.
 */
export function hugetlbSysctlHandler(pgdat: PgData, count: number): void {
  if (!Number.isInteger(count) || count < 0) throw new RangeError('nr_hugepages must be a whole number, at least 0');
  setMaxHugePages(pgdat, count);
}
