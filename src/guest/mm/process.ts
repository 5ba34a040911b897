/**
 * The smallest process model reclaim and compaction need: a process owns anonymous
 * pages (faulted in on demand, on the LRU, swap-backed), can unmap some of them, and
 * exits. Pages record their process in page->mapping (the model's 16-bit id), which
 * is all the reverse map compaction needs: migrating a page moves the id with it.
 *
 * Simplification (docs/model-limits.md): no virtual addresses or page tables per
 * process; "which pages" is chosen over the process's pages in physical order (what
 * fragments memory) or at random. Workloads (src/workloads) build on these calls.
 */
import { NO_PAGE, Owner, PG, PAGEBLOCK_ORDER, PageLRU, pageFlags, pageMapping, pageOrder, pageOwner, setPageFlags, setPageMapping } from './memmap.js';
import { type PgData, PageWrite } from './mmzone.js';
import type { ThpDefrag } from './sysctl.js';
import { allocPages, freePages } from './page_alloc.js';
import { GFP_HIGHUSER_MOVABLE, GFP_TRANSHUGE, GFP_TRANSHUGE_LIGHT, __GFP_NORETRY, __GFP_KSWAPD_RECLAIM, __GFP_DIRECT_RECLAIM, __GFP_COMP, __GFP_ZERO } from './gfp.js';
import { lruCacheAdd, delPageFromLruList } from './lru.js';
import { VmEvent, NodeStat } from './vmstat_items.js';
import type { Process, ProcessTable } from './mm_types.js';
import { type Rng, rngBelow } from '../../sim/rng.js';

export type { Process, ProcessTable } from './mm_types.js';

/** HPAGE_PMD_NR: base pages in a PMD-mapped THP. */
const HPAGE_PMD_NR = 1 << PAGEBLOCK_ORDER;

/** Highest process id (page->mapping is 16 bits; 0 means "no process"). */
export const PID_MAX = 0xffff;

export function getProcess(procs: ProcessTable, pid: number): Process {
  if (!Number.isInteger(pid) || pid < 1 || pid > PID_MAX) throw new RangeError(`pid must be from 1 to ${PID_MAX}`);
  let p = procs.get(pid);
  if (!p) {
    p = { pid, madvised: false, rssAnon: 0, filePages: 0, swapPages: 0, pages: [] };
    procs.set(pid, p);
  }
  return p;
}

/**
 * @kernel mm/huge_memory.c vma_thp_gfp_mask
 * The GFP mask of a huge page fault under the defrag setting: whether it may reclaim
 * and compact directly, only wake kswapd, or neither.
 */
export function vmaThpGfpMask(defrag: ThpDefrag, madvised: boolean): number {
  switch (defrag) {
    case 'always': return GFP_TRANSHUGE | (madvised ? 0 : __GFP_NORETRY);
    case 'defer': return GFP_TRANSHUGE_LIGHT | __GFP_KSWAPD_RECLAIM;
    case 'defer+madvise': return GFP_TRANSHUGE_LIGHT | (madvised ? __GFP_DIRECT_RECLAIM : __GFP_KSWAPD_RECLAIM);
    case 'madvise': return GFP_TRANSHUGE_LIGHT | (madvised ? __GFP_DIRECT_RECLAIM : 0);
    case 'never': return GFP_TRANSHUGE_LIGHT;
  }
}

/** hugepage_vma_check(): may this process's anonymous memory get huge pages? */
export function thpAllowed(pgdat: PgData, proc: Process): boolean {
  return pgdat.sysctl.thp.enabled === 'always' || (pgdat.sysctl.thp.enabled === 'madvise' && proc.madvised);
}

/** Sets up a freshly allocated anonymous page (or THP head) and puts it on the LRU. */
function mapAnonPage(pgdat: PgData, proc: Process, pfn: number, order: number): void {
  const map = pgdat.map;
  setPageFlags(map, pfn, pageFlags(map, pfn) | PG.swapbacked | PG.uptodate | PG.dirty);
  for (let p = pfn; p < pfn + (1 << order); p++) setPageMapping(map, p, proc.pid);
  lruCacheAdd(pgdat, pfn);
  // the process writes its new memory (the fault happens because it touches it)
  if (pgdat.hooks.pageWrite !== null) pgdat.hooks.pageWrite(pfn, 1 << order, PageWrite.data);
  notePage(proc, pfn);
  proc.rssAnon += 1 << order; // per page: reclaim and the OOM killer may look at it mid-fault
}

/** Maps a freshly allocated order-9 compound page as the process's anonymous THP. */
export function mapAnonHugePage(pgdat: PgData, proc: Process, pfn: number): void {
  mapAnonPage(pgdat, proc, pfn, PAGEBLOCK_ORDER);
  pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages] = pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages]! + HPAGE_PMD_NR;
}

/**
 * @kernel mm/memory.c do_anonymous_page, mm/huge_memory.c do_huge_pmd_anonymous_page
 * Faults in `pages` anonymous pages for a process. Where THP is allowed, each full
 * 2 MiB chunk first tries an order-9 page with the defrag setting's GFP mask
 * (thp_fault_alloc) and falls back to small pages (thp_fault_fallback). Small pages
 * are GFP_HIGHUSER_MOVABLE. All go on the inactive anon LRU. Stops at the first
 * failed small allocation (or when the OOM killer took the process); returns the
 * number of base pages faulted.
 */
export function faultAnonPages(pgdat: PgData, proc: Process, pages: number): number {
  const thp = thpAllowed(pgdat, proc);
  const thpGfp = vmaThpGfpMask(pgdat.sysctl.thp.defrag, proc.madvised) | __GFP_COMP | __GFP_ZERO;
  const ev = pgdat.events;
  let n = 0;
  while (n < pages) {
    if (!pgdat.tasks.procs.has(proc.pid)) break;
    if (thp && pages - n >= HPAGE_PMD_NR) {
      const pfn = allocPages(pgdat, thpGfp, PAGEBLOCK_ORDER, Owner.anon);
      if (pfn !== NO_PAGE && !pgdat.tasks.procs.has(proc.pid)) { freePages(pgdat, pfn, PAGEBLOCK_ORDER); break; }
      if (pfn !== NO_PAGE) {
        mapAnonHugePage(pgdat, proc, pfn);
        ev[VmEvent.thp_fault_alloc] = ev[VmEvent.thp_fault_alloc]! + 1;
        ev[VmEvent.pgfault] = ev[VmEvent.pgfault]! + 1;
        n += HPAGE_PMD_NR;
        continue;
      }
      ev[VmEvent.thp_fault_fallback] = ev[VmEvent.thp_fault_fallback]! + 1;
      const got = faultSmallPages(pgdat, proc, HPAGE_PMD_NR);
      n += got;
      if (got < HPAGE_PMD_NR) break;
      continue;
    }
    const got = faultSmallPages(pgdat, proc, pages - n);
    n += got;
    break;
  }
  return n;
}

function faultSmallPages(pgdat: PgData, proc: Process, pages: number): number {
  let n = 0;
  for (; n < pages; n++) {
    // A process the OOM killer chose stops faulting (it is exiting).
    if (!pgdat.tasks.procs.has(proc.pid)) break;
    const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE | __GFP_ZERO, 0, Owner.anon);
    if (pfn === NO_PAGE) break;
    if (!pgdat.tasks.procs.has(proc.pid)) {
      // The allocation's own OOM kill chose this process: the page it got goes back
      // (the fault ends with the task's fatal signal; nothing is mapped).
      freePages(pgdat, pfn, 0);
      break;
    }
    mapAnonPage(pgdat, proc, pfn, 0);
  }
  pgdat.events[VmEvent.pgfault] = pgdat.events[VmEvent.pgfault]! + n;
  return n;
}

/**
 * Reads (or, with dirty, writes) `pages` pages of the process's file into the page
 * cache: GFP_HIGHUSER_MOVABLE page-cache pages on the inactive file LRU, tagged with
 * the process id as their file. Returns the pages cached.
 */
export function readFilePages(pgdat: PgData, proc: Process, pages: number, dirty: boolean): number {
  const map = pgdat.map;
  let n = 0;
  for (; n < pages; n++) {
    const pfn = allocPages(pgdat, GFP_HIGHUSER_MOVABLE, 0, Owner.file);
    if (pfn === NO_PAGE) break;
    // the read (or the write) fills the page
    if (pgdat.hooks.pageWrite !== null) pgdat.hooks.pageWrite(pfn, 1, PageWrite.data);
    setPageFlags(map, pfn, PG.uptodate | (dirty ? PG.dirty : 0));
    setPageMapping(map, pfn, proc.pid);
    lruCacheAdd(pgdat, pfn);
    proc.filePages++;
  }
  if (dirty) pgdat.nodeStat[NodeStat.nr_dirtied] = pgdat.nodeStat[NodeStat.nr_dirtied]! + n;
  else pgdat.events[VmEvent.pgpgin] = pgdat.events[VmEvent.pgpgin]! + 8 * n;
  return n;
}

/**
 * Unmaps and frees one anonymous page of a process (zap_pte_range for one pte, or
 * zap_huge_pmd for a whole THP); returns the base pages freed.
 */
function zapAnonPage(pgdat: PgData, proc: Process, pfn: number): number {
  const map = pgdat.map;
  const order = (pageFlags(map, pfn) & PG.head) !== 0 ? pageOrder(map, pfn) : 0;
  delPageFromLruList(pgdat, pfn);
  if (order) pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages] = pgdat.nodeStat[NodeStat.nr_anon_transparent_hugepages]! - (1 << order);
  freePages(pgdat, pfn, order);
  proc.rssAnon -= 1 << order;
  return 1 << order;
}

/**
 * Records that pfn now holds one of the process's anonymous pages (a fault, a collapse,
 * a migration's target). Entries go stale as pages are freed or moved; when stale ones
 * outnumber the live ones many times over, the list is pruned (live entries keep their
 * order), so it stays proportional to the process.
 */
export function notePage(proc: Process, pfn: number): void {
  proc.pages.push(pfn);
  if (proc.pages.length > 4 * proc.rssAnon + 4096) proc.prune = true;
}

/** Drops the stale entries of a process's page list (and duplicates), keeping the order of the rest. */
function prunePages(pgdat: PgData, proc: Process): void {
  const map = pgdat.map;
  const seen = new Set<number>();
  proc.pages = proc.pages.filter((pfn) => {
    if (seen.has(pfn) || pageOwner(map, pfn) !== Owner.anon || pageMapping(map, pfn) !== proc.pid || (pageFlags(map, pfn) & PG.tail) !== 0) return false;
    seen.add(pfn);
    return true;
  });
  proc.prune = false;
}

/**
 * The process's anonymous pages in physical order: base pages and THP heads (a THP
 * is listed once), isolated ones included. From the process's own page list: work
 * proportional to the process, not to the guest.
 */
export function processPages(pgdat: PgData, proc: Process): Int32Array {
  if (proc.prune) prunePages(pgdat, proc);
  const map = pgdat.map, pid = proc.pid;
  const out = new Int32Array(proc.pages.length);
  let n = 0;
  for (const pfn of proc.pages) {
    if (pageOwner(map, pfn) === Owner.anon && pageMapping(map, pfn) === pid && (pageFlags(map, pfn) & PG.tail) === 0) out[n++] = pfn;
  }
  const sorted = out.subarray(0, n).sort();
  // the same page noted twice (freed, then faulted again at the same PFN) is listed once
  let k = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[k++] = sorted[i]!;
  return sorted.slice(0, k);
}

/** Base pages of a process's anonymous memory as listed by processPages. */
export function processRss(pgdat: PgData, proc: Process): number {
  let n = 0;
  for (const pfn of processPages(pgdat, proc)) n += (pageFlags(pgdat.map, pfn) & PG.head) !== 0 ? 1 << pageOrder(pgdat.map, pfn) : 1;
  return n;
}

export type UnmapPick = 'alternate' | 'random' | 'lowest' | 'highest';

/**
 * munmap of a share of a process's anonymous memory. `alternate` frees every other
 * page in physical order: the classic way to leave memory free but fragmented.
 * Isolated pages (mid-migration) are skipped. Returns the base pages freed.
 */
export function unmapAnonPages(pgdat: PgData, rng: Rng, proc: Process, fraction: number, pick: UnmapPick): number {
  const pages = processPages(pgdat, proc);
  const n = pages.length;
  const want = Math.round(n * fraction);
  // `freed` counts the entries unmapped (a THP is one, as the fraction is of entries);
  // the result counts base pages.
  let freed = 0, basePages = 0;
  const free = (pfn: number) => {
    if (!PageLRU(pgdat.map, pfn)) return;
    basePages += zapAnonPage(pgdat, proc, pfn);
    freed++;
  };
  if (pick === 'alternate') {
    for (let i = 0; i < n && freed < want; i += 2) free(pages[i]!);
  } else if (pick === 'lowest') {
    for (let i = 0; i < want; i++) free(pages[i]!);
  } else if (pick === 'highest') {
    for (let i = n - 1; i >= n - want; i--) free(pages[i]!);
  } else {
    for (let i = 0; i < want; i++) {
      const j = i + rngBelow(rng, n - i);
      const t = pages[i]!; pages[i] = pages[j]!; pages[j] = t;
      free(pages[i]!);
    }
  }
  return basePages;
}

/** Whether pfn is (still) a mapped anonymous base page or THP head of the process. */
export function isProcessPage(pgdat: PgData, pid: number, pfn: number): boolean {
  const map = pgdat.map;
  return pageOwner(map, pfn) === Owner.anon && pageMapping(map, pfn) === pid && (pageFlags(map, pfn) & (PG.tail | PG.lru)) === PG.lru;
}

/**
 * @kernel kernel/exit.c do_exit (exit_mmap)
 * Frees all of a process's anonymous memory; returns the base pages freed (a THP counts 512).
 */
export function exitProcess(pgdat: PgData, procs: ProcessTable, proc: Process): number {
  let freed = 0;
  // in the order the pages were faulted (exit_mmap walks the address space in order)
  for (const pfn of proc.pages) {
    if (!isProcessPage(pgdat, proc.pid, pfn)) continue;
    freed += zapAnonPage(pgdat, proc, pfn);
  }
  if (proc.rssAnon > 0) {
    // pages not on the LRU when their entry was reached (none in a single-threaded model, but cheap to be sure)
    for (const pfn of processPages(pgdat, proc)) {
      if (!PageLRU(pgdat.map, pfn)) continue;
      freed += zapAnonPage(pgdat, proc, pfn);
    }
  }
  pgdat.swap.usedPages -= proc.swapPages;
  proc.swapPages = 0;
  procs.delete(proc.pid);
  return freed;
}
