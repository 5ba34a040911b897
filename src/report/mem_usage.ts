/**
 * `makedumpfile --mem-usage`: what a kdump of the guest would hold (and, below, what a
 * hibernation image would save), computed from the
 * page map as makedumpfile computes it from the kernel's struct pages (makedumpfile.c
 * __exclude_unnecessary_pages and exclude_zero_pages at dump level 31, print_mem_usage).
 *
 * Each page (a compound page or a buddy block at its head, counted whole) falls in the
 * first class that takes it:
 *   FREE           a buddy block (PageBuddy; pages on the per-cpu lists are not)
 *   NON_PRI_CACHE  on an LRU list (or in the swap cache), not anonymous, without
 *                  PG_private: page cache, and tmpfs/shmem pages (their mapping is an
 *                  address_space, not an anon_vma)
 *   PRI_CACHE      the same with PG_private: page cache with buffer_heads attached
 *   USER           anonymous (PAGE_MAPPING_ANON) or hugetlb, free pool pages included
 *   offline        PageOffline (balloon pages since Linux 4.20): always excluded, and
 *                  not a row of the table (print_mem_usage leaves them out of every
 *                  row and of KERN_DATA)
 *   ZERO           any page left that reads as all zero
 *   KERN_DATA      the rest: what a `-d 31` dump writes
 * The model knows a page's contents from the host's side (what the guest last wrote
 * there, or nothing: never touched or discarded reads as zero), passed in as
 * `readsZero`. PG_private is per file set: a set has as many private pages as
 * buffer_heads (one 4 KiB block each).
 */
import type { Guest } from '../guest/guest.js';
import { Owner, PG, PageType, PAGE_SIZE, pageFlags, pageOrder, pageOwner, pageTypeOf } from '../guest/mm/memmap.js';

export type MemUsage = {
  zero: number;
  nonPriCache: number;
  priCache: number;
  user: number;
  free: number;
  /** PageOffline pages, excluded without a row. */
  offline: number;
  kernData: number;
  /** Pages on the system (the dump's memory: present pages). */
  total: number;
  /**
   * Pages the dump reads (the zero check reads every page no other class took) that
   * the host had discarded or never backed: each read faults one back in on the host.
   */
  readDiscarded: number;
};

/**
 * Classifies every page. `readsZero(pfn)` says whether the page at memmap PFN `pfn`
 * reads as all zero; `discarded(pfn)` whether the host holds no memory for it.
 * `offlineKnown`: the dump tool can tell PageOffline (makedumpfile 1.6.5 and later on a
 * kernel that exports PAGE_OFFLINE_MAPCOUNT_VALUE in vmcoreinfo, Linux 4.20 and later);
 * without it balloon pages are kernel data (or zero pages, if they read as zero).
 */
export function memUsage(g: Guest, readsZero: (pfn: number) => boolean, discarded: (pfn: number) => boolean, offlineKnown = true): MemUsage {
  const map = g.pgdat.map;
  const u: MemUsage = { zero: 0, nonPriCache: 0, priCache: 0, user: 0, free: 0, offline: 0, kernData: 0, total: map.nrPages, readDiscarded: 0 };
  let privatePages = 0;
  for (const s of g.pgdat.slab.sb?.sets.values() ?? []) privatePages += Math.min(s.bh.len, s.cachedPages);
  for (let pfn = 0; pfn < map.nrPages;) {
    const owner = pageOwner(map, pfn), flags = pageFlags(map, pfn), type = pageTypeOf(map, pfn);
    if (flags & PG.tail) { pfn++; continue; } // counted with its head
    const n = type === PageType.buddy || (flags & PG.head) ? 1 << pageOrder(map, pfn) : 1;
    if (type === PageType.buddy) u.free += n;
    else if ((owner === Owner.file || owner === Owner.shmem) && (flags & (PG.lru | PG.swapcache))) {
      if (owner === Owner.file && privatePages > 0) {
        const p = Math.min(n, privatePages);
        u.priCache += p;
        privatePages -= p;
        u.nonPriCache += n - p;
      } else u.nonPriCache += n;
    } else if (owner === Owner.anon || owner === Owner.hugetlb) u.user += n;
    else if (type === PageType.offline && offlineKnown) u.offline += n;
    else {
      for (let i = 0; i < n; i++) {
        if (discarded(pfn + i)) u.readDiscarded++;
        if (readsZero(pfn + i)) u.zero++;
        else u.kernData++;
      }
    }
    pfn += n;
  }
  return u;
}

/** print_mem_usage's table, byte for byte (tabs and the trailing space of KERN_DATA's description included). */
export function formatMemUsage(u: MemUsage): string {
  const p = (n: number) => String(n).padEnd(16);
  return '\n' +
    'TYPE\t\tPAGES\t\t\tEXCLUDABLE\tDESCRIPTION\n' +
    '----------------------------------------------------------------------\n' +
    `ZERO\t\t${p(u.zero)}\tyes\t\tPages filled with zero\n` +
    `NON_PRI_CACHE\t${p(u.nonPriCache)}\tyes\t\tCache pages without private flag\n` +
    `PRI_CACHE\t${p(u.priCache)}\tyes\t\tCache pages with private flag\n` +
    `USER\t\t${p(u.user)}\tyes\t\tUser process pages\n` +
    `FREE\t\t${p(u.free)}\tyes\t\tFree pages\n` +
    `KERN_DATA\t${p(u.kernData)}\tno\t\tDumpable kernel data \n` +
    '\n' +
    `page size:\t\t${String(PAGE_SIZE).padEnd(16)}\n` +
    `Total pages on system:\t${p(u.total)}\n` +
    `Total size on system:\t${p(u.total * PAGE_SIZE)} Byte\n`;
}

/**
 * @kernel kernel/power/snapshot.c count_data_pages (saveable_page)
 * The pages a hibernation image would save: every page of the zones but the free ones
 * (the buddy's, and the per-cpu lists', which hibernation drains first) and, since the
 * 2018 series that made balloon pages PageOffline, the offline ones. Before
 * hibernate_preallocate_memory frees reclaimable memory to fit image_size (2/5 of RAM
 * by default): an upper bound of the image, which the model does not shrink.
 */
export function hibernationSaveable(g: Guest, offlineSkipped: boolean): number {
  const map = g.pgdat.map;
  let n = 0;
  for (let pfn = 0; pfn < map.nrPages; pfn++) {
    const owner = pageOwner(map, pfn);
    if (owner === Owner.free || owner === Owner.pcp) continue;
    if (offlineSkipped && pageTypeOf(map, pfn) === PageType.offline) continue;
    n++;
  }
  return n;
}
